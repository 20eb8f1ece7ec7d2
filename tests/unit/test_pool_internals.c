/* SPDX-License-Identifier: MIT */
/*
 * unit suite (cmocka): pool internals, white-box.
 *
 * Close with a producer stalled between reserve and publish. The workers,
 * woken by close, find nothing to take and the queue not drained, so they
 * sleep again. The stalled producer then publishes and wakes one worker,
 * which runs the task and finds the queue drained. Regression: it exited
 * without waking the other sleepers, and close waited for them forever (the
 * meson timeout fails the test).
 *
 * The high lane's rings: small unless the pool is bounded (where a ring's
 * size is the lane's limit).
 *
 * A settle asleep on a count that a refused submit then takes back
 * (wp_port_refund) wakes and returns: the refund signals the port.
 *
 * The ticker's start returns once its thread runs.
 */
#include "pool.h"
#include "port.h"
#include "task.h"

#include <errno.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cmocka.h>

static atomic_int ran;

static int work_mark(struct wpool_task *t)
{
    atomic_store_explicit(&ran, 1, memory_order_relaxed);
    return 7;
}

static void done_nop(struct wpool_task *t, int status) {}

/* FUTEX_WAKE calls aimed at the workers' park nodes (syscall is wrapped). */
static struct wpool *_Atomic g_pool;
static atomic_long g_worker_wakes;

static void on_futex(int cmd, uintptr_t addr)
{
    struct wpool *pool = atomic_load(&g_pool);
    if (pool && cmd == FUTEX_WAKE && addr >= (uintptr_t)pool->workers &&
        addr < (uintptr_t)(pool->workers + pool->nthreads))
        atomic_fetch_add(&g_worker_wakes, 1);
}
#include "../common/futex_hook.h"
#include "../common/helpers.h"

static void *closer(void *arg)
{
    wpool_close(arg);
    return NULL;
}

static void wait_all_asleep(struct wpool *pool)
{
    while (wp_park_waiters(&pool->park) < pool->nthreads)
        sched_yield();
}

static void test_close_with_stalled_producer(void **state)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 4;
    o.queue_capacity = 16;
    wpool_t *pool;
    assert_int_equal(wpool_create(&pool, &o), 0);
    wait_all_asleep(pool);

    /* The first half of wpool_submit, then a stall. */
    struct wpool_task t = {0};
    wpool_task_init(&t, work_mark, done_nop);
    struct wp_queue *q = &wp_lane(pool, 0)[0];
    uint64_t pos;
    assert_int_equal(wp_queue_reserve(q, &pos), 0);
    wp_t(&t)->state = wp_state_word(WP_TASK_INFLIGHT, 0);
    wp_t(&t)->port = pool->default_port;
    wp_port_count(pool->default_port);
    wp_t(&t)->slot = wp_slot(0, pos);

    pthread_t th;
    atomic_store(&g_worker_wakes, 0);
    atomic_store(&g_pool, pool);
    pthread_create(&th, NULL, closer, pool);
    /* Close's wakeup: it takes every sleeping node off the park (under the
     * park's lock), then wakes each one. Once all the wakes are made, every
     * worker has left the park, so all of them asleep again means each woke,
     * found nothing to take and the queue not drained, and slept again. */
    while (atomic_load(&g_worker_wakes) < (long)pool->nthreads)
        sched_yield();
    atomic_store(&g_pool, NULL);
    assert_true(wp_queue_closed(q));
    wait_all_asleep(pool);
    assert_false(wp_queue_finished(q));

    /* The producer resumes: the second half of wpool_submit. */
    wp_queue_publish(q, pos, &t);
    wp_park_notify(&pool->park, 1);

    pthread_join(th, NULL); /* hangs without the fix */
    assert_int_equal(atomic_load_explicit(&ran, memory_order_relaxed), 1);
    assert_int_equal(wpool_port_settle(wpool_default_port(pool), 0), 1);
    assert_int_equal(wpool_destroy(pool), 0);
}

/* Capacity of queue i of the pool's lane. */
static uint64_t ring_cap(wpool_t *pool, int lane, unsigned int i)
{
    return wp_lane(pool, lane)[i].mask + 1;
}

static void test_high_lane_rings(void **state)
{
    (void)state;
    struct {
        unsigned int capacity, bounded, placement;
        uint64_t normal, high;
    } cases[] = {
        {4096, 0, WPOOL_FIRST_FREE, 4096, WP_HIGH_RING},
        {4096, 0, WPOOL_ROUND_ROBIN, 4096, WP_HIGH_RING},
        {64, 0, WPOOL_FIRST_FREE, 64, 64},
        {4096, 1, WPOOL_FIRST_FREE, 4096, 4096},
        {4096, 1, WPOOL_ROUND_ROBIN, 4096, 4096},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct wpool_options o = WPOOL_OPTIONS_INIT;
        o.threads = 2;
        o.queue_capacity = cases[c].capacity;
        o.bounded = cases[c].bounded;
        o.placement = (int)cases[c].placement;
        wpool_t *pool;
        assert_int_equal(wpool_create(&pool, &o), 0);
        for (unsigned int i = 0; i < pool->nqueues; i++) {
            assert_int_equal(ring_cap(pool, WPOOL_PRIORITY_NORMAL, i), cases[c].normal);
            assert_int_equal(ring_cap(pool, WPOOL_PRIORITY_HIGH, i), cases[c].high);
        }
        assert_int_equal(wpool_destroy(pool), 0);
    }
}

struct refunder {
    wpool_port_t *port;
    pid_t owner_tid;
};

static void *refund_when_asleep(void *arg)
{
    struct refunder *r = arg;
    /* Until the owner sleeps in settle's poll: only then is a refund that
     * does not wake it a hang. */
    while (thread_syscall(r->owner_tid) != SYS_poll)
        sched_yield();
    wp_port_refund(r->port);
    return NULL;
}

/* The owner's go-idle clears a HELD default port (a held completion signal
 * handed to the ticker) without counting an eventfd write: none was made for
 * HELD. A debt counted there would later swallow the write of a real epoch,
 * a lost wakeup. Then the next completion still makes the fd readable. */
static void test_idle_clears_held(void **state)
{
    (void)state;
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 1;
    o.coalesce_us = WPOOL_MAX_COALESCE_US; /* the ticker, never kicked, stays asleep */
    wpool_t *pool;
    assert_int_equal(wpool_create(&pool, &o), 0);
    struct wpool_port *port = wpool_default_port(pool);
    struct pollfd pfd = {.fd = wpool_fd(pool), .events = POLLIN};
    for (int round = 0; round < 3; round++) {
        assert_true(wp_port_hold(port)); /* QUIET -> HELD, as a worker's hand-over */
        assert_int_equal(wpool_dispatch(pool, WPOOL_DISPATCH_ALL), 0); /* goes idle */
        assert_int_equal(atomic_load(&port->pending), WP_PORT_QUIET);
        assert_int_equal(port->owed, 0);
        assert_int_equal(poll(&pfd, 1, 0), 0);
        struct wpool_task t = {0};
        assert_int_equal(wpool_task_init(&t, work_mark, done_nop), 0);
        assert_int_equal(wpool_submit(pool, &t), 0);
        assert_int_equal(poll(&pfd, 1, 10000), 1); /* the worker ran dry: at once */
        assert_int_equal(wpool_dispatch(pool, WPOOL_DISPATCH_ALL), 1);
        assert_int_equal(port->owed, 0);
        assert_int_equal(poll(&pfd, 1, 0), 0);
    }
    assert_int_equal(wpool_destroy(pool), 0);
}

/* wp_ticker_start returns only once the ticker's thread runs its own code,
 * checked at once, before anything else could give it the time: a
 * wpool_create that returned sooner would let a fork copy that thread in the
 * middle of its runtime set-up (GCC 12 ASan's allocator lock, held in the
 * child forever). */
static void test_ticker_start_waits(void **state)
{
    (void)state;
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 1;
    o.coalesce_us = 0; /* the pool has no ticker of its own */
    wpool_t *pool;
    assert_int_equal(wpool_create(&pool, &o), 0);
    for (int round = 0; round < 20; round++) {
        struct wp_ticker tk;
        assert_int_equal(wp_ticker_start(&tk, wpool_default_port(pool), 1000000), 0);
        assert_int_equal(atomic_load(&tk.running), 1);
        wp_ticker_stop(&tk);
    }
    assert_int_equal(wpool_destroy(pool), 0);
}

static void test_settle_wakes_on_refund(void **state)
{
    (void)state;
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 1;
    wpool_t *pool;
    assert_int_equal(wpool_create(&pool, &o), 0);
    wpool_port_t *port;
    assert_int_equal(wpool_port_create(pool, &port), 0);
    /* A submit to the port has counted its task (the rest of it is the
     * refunder: refused after all). */
    assert_int_equal(wp_port_gate_enter(port), 0);
    struct refunder r = {port, gettid()};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, refund_when_asleep, &r), 0);
    assert_int_equal(wpool_port_settle(port, 5000), 0); /* not -ETIMEDOUT */
    pthread_join(th, NULL);
    assert_int_equal(wpool_port_destroy(port), 0);
    assert_int_equal(wpool_destroy(pool), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_with_stalled_producer), cmocka_unit_test(test_high_lane_rings),
        cmocka_unit_test(test_settle_wakes_on_refund),      cmocka_unit_test(test_idle_clears_held),
        cmocka_unit_test(test_ticker_start_waits),
    };
    return cmocka_run_group_tests_name("pool-internals", tests, NULL, NULL);
}
