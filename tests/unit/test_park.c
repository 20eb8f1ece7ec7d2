/* SPDX-License-Identifier: MIT */
/* unit suite (cmocka): the eventcount. syscall() is wrapped (-Wl,--wrap) to
 * count FUTEX_WAKE calls made by the library's own code. */
#include "../common/helpers.h"
#include "park.h"

#include <linux/futex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <cmocka.h>

static atomic_long g_futex_wakes;
/* When set, each FUTEX_WAKE also records whether this park's lock was held
 * (by the caller: the wake is made under it) at the time of the call. */
static struct wp_park *g_watched;
static atomic_long g_wakes_locked, g_wakes_unlocked;

static void on_futex(int cmd, uintptr_t addr)
{
    (void)addr;
    if (cmd != FUTEX_WAKE)
        return;
    atomic_fetch_add(&g_futex_wakes, 1);
    if (g_watched) {
        if (pthread_mutex_trylock(&g_watched->lock) == 0) {
            pthread_mutex_unlock(&g_watched->lock);
            atomic_fetch_add(&g_wakes_unlocked, 1);
        } else {
            atomic_fetch_add(&g_wakes_locked, 1);
        }
    }
}
#include "../common/futex_hook.h"

static void test_notify_without_waiter_no_syscall(void **state)
{
    struct wp_park p;
    wp_park_init(&p, true);
    atomic_store(&g_futex_wakes, 0);
    for (int i = 0; i < 100000; i++)
        wp_park_notify(&p, 1);
    assert_int_equal(atomic_load(&g_futex_wakes), 0);
    /* prepare + cancel leaves no waiter behind */
    struct wp_park_node node;
    wp_park_prepare(&p, &node);
    assert_int_equal(wp_park_waiters(&p), 1);
    wp_park_cancel(&p, &node);
    assert_int_equal(wp_park_waiters(&p), 0);
    wp_park_notify(&p, 1);
    assert_int_equal(atomic_load(&g_futex_wakes), 0);
    wp_park_fini(&p);
}

/* A notify takes the node it signals off the list: while that waiter has not
 * run yet, further notifies make no system call (the cost a busy producer
 * would otherwise pay per task). FIFO: the oldest waiter is signalled first. */
static void test_notify_claims_oldest(void **state)
{
    struct wp_park p;
    wp_park_init(&p, true);
    atomic_store(&g_futex_wakes, 0);
    struct wp_park_node a, b;
    wp_park_prepare(&p, &a);
    wp_park_prepare(&p, &b);
    wp_park_notify(&p, 1);
    assert_int_equal(wp_park_waiters(&p), 1);
    assert_int_equal(atomic_load(&a.signaled), 1);
    assert_int_equal(atomic_load(&b.signaled), 0);
    assert_int_equal(atomic_load(&g_futex_wakes), 1);
    wp_park_wait(&p, &a); /* signalled: returns at once */
    /* A waiter whose cancel finds its node already taken (it found work on
     * its re-check) passes the wake on: b is signalled instead. */
    wp_park_cancel(&p, &a);
    assert_int_equal(atomic_load(&b.signaled), 1);
    assert_int_equal(wp_park_waiters(&p), 0);
    for (int i = 0; i < 1000; i++)
        wp_park_notify(&p, 1);
    assert_int_equal(atomic_load(&g_futex_wakes), 2);
    /* A timed wait that times out dequeues its node. */
    wp_park_prepare(&p, &a);
    assert_int_equal(wp_park_wait_for(&p, &a, 1000), -ETIMEDOUT);
    assert_int_equal(wp_park_waiters(&p), 0);
    /* One signalled before the timed wait returns 0. */
    wp_park_prepare(&p, &a);
    wp_park_notify(&p, 1);
    assert_int_equal(wp_park_wait_for(&p, &a, 1000), 0);
    /* notify_all signals everyone. */
    wp_park_prepare(&p, &a);
    wp_park_prepare(&p, &b);
    wp_park_notify_all(&p);
    assert_int_equal(wp_park_waiters(&p), 0);
    assert_int_equal(atomic_load(&a.signaled) + atomic_load(&b.signaled), 2);
    wp_park_fini(&p);
}

/* Ping-pong: each side waits for the other's counter through its own park.
 * A lost wakeup hangs, which the meson timeout turns into a failure. Each side
 * parks one node of its own, which outlives its waits (required by a
 * late-wake park, see park.h). */
struct pingpong {
    struct wp_park park[2];
    struct wp_park_node node[2];
    _Atomic long turn[2];
    long rounds;
};

static void wait_for(struct wp_park *p, struct wp_park_node *node, _Atomic long *v, long want)
{
    while (atomic_load(v) < want) {
        wp_park_prepare(p, node);
        if (atomic_load(v) >= want) {
            wp_park_cancel(p, node);
            break;
        }
        wp_park_wait(p, node);
    }
}

static void *ponger(void *arg)
{
    struct pingpong *pp = arg;
    for (long i = 1; i <= pp->rounds; i++) {
        wait_for(&pp->park[1], &pp->node[1], &pp->turn[0], i);
        atomic_store(&pp->turn[1], i);
        wp_park_notify(&pp->park[0], 1);
    }
    return NULL;
}

static void pingpong(bool late_wake)
{
    struct pingpong pp;
    wp_park_init(&pp.park[0], late_wake);
    wp_park_init(&pp.park[1], late_wake);
    atomic_init(&pp.turn[0], 0);
    atomic_init(&pp.turn[1], 0);
    pp.rounds = 100000;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, ponger, &pp), 0);
    for (long i = 1; i <= pp.rounds; i++) {
        atomic_store(&pp.turn[0], i);
        wp_park_notify(&pp.park[1], 1);
        wait_for(&pp.park[0], &pp.node[0], &pp.turn[1], i);
    }
    pthread_join(th, NULL);
    assert_int_equal(atomic_load(&pp.turn[1]), pp.rounds);
    wp_park_fini(&pp.park[0]);
    wp_park_fini(&pp.park[1]);
}

static void test_pingpong_no_lost_wakeup(void **state)
{
    pingpong(true);
}

static void test_pingpong_locked_wake_no_lost_wakeup(void **state)
{
    pingpong(false);
}

struct sleeper {
    struct wp_park *park;
    struct wp_park_node node; /* this sleeper's, for all its waits */
    _Atomic int *flag;
    _Atomic int *asleep;
};

static void *sleeper_main(void *arg)
{
    struct sleeper *s = arg;
    while (!atomic_load(s->flag)) {
        wp_park_prepare(s->park, &s->node);
        atomic_fetch_add(s->asleep, 1);
        if (atomic_load(s->flag)) {
            wp_park_cancel(s->park, &s->node);
            break;
        }
        wp_park_wait(s->park, &s->node);
    }
    return NULL;
}

/* notify_all wakes every sleeper, across several lock holds. */
static void notify_all_wakes_everyone(bool late_wake)
{
    struct wp_park p;
    _Atomic int flag = 0, asleep = 0;
    wp_park_init(&p, late_wake);
    /* More sleepers than one lock hold of a notify takes (8). */
    enum { NSLEEPERS = 20 };
    pthread_t th[NSLEEPERS];
    struct sleeper s[NSLEEPERS];
    for (int i = 0; i < NSLEEPERS; i++) {
        s[i] = (struct sleeper){.park = &p, .flag = &flag, .asleep = &asleep};
        assert_int_equal(pthread_create(&th[i], NULL, sleeper_main, &s[i]), 0);
    }
    /* Every sleeper has queued its node (counted after its prepare). */
    while (atomic_load(&asleep) < NSLEEPERS)
        sched_yield();
    atomic_store(&flag, 1);
    wp_park_notify_all(&p);
    for (int i = 0; i < NSLEEPERS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(wp_park_waiters(&p), 0);
    wp_park_fini(&p);
}

static void test_notify_all_wakes_everyone(void **state)
{
    notify_all_wakes_everyone(true);
}

static void test_notify_all_locked_wake(void **state)
{
    notify_all_wakes_everyone(false);
}

/* A notify takes at most 8 nodes per lock hold: notify(n) across several
 * holds still signals exactly the n oldest, one wake each, and notify_all the
 * rest. A late-wake park makes every futex wake after the unlock, a park
 * without late_wake makes every one under the lock. */
static void notify_many_in_batches(bool late_wake)
{
    enum { N = 20, FIRST = 11 };
    struct wp_park p;
    struct wp_park_node nodes[N];
    wp_park_init(&p, late_wake);
    atomic_store(&g_futex_wakes, 0);
    atomic_store(&g_wakes_locked, 0);
    atomic_store(&g_wakes_unlocked, 0);
    g_watched = &p;
    for (int i = 0; i < N; i++)
        wp_park_prepare(&p, &nodes[i]);
    assert_int_equal(wp_park_waiters(&p), N);
    wp_park_notify(&p, FIRST);
    assert_int_equal(wp_park_waiters(&p), N - FIRST);
    for (int i = 0; i < N; i++)
        assert_int_equal(atomic_load(&nodes[i].signaled), i < FIRST);
    assert_int_equal(atomic_load(&g_futex_wakes), FIRST);
    wp_park_notify_all(&p);
    assert_int_equal(wp_park_waiters(&p), 0);
    for (int i = 0; i < N; i++)
        assert_int_equal(atomic_load(&nodes[i].signaled), 1);
    assert_int_equal(atomic_load(&g_futex_wakes), N);
    /* Nothing queued: no lock, no call. */
    wp_park_notify(&p, N);
    assert_int_equal(atomic_load(&g_futex_wakes), N);
    g_watched = NULL;
    assert_int_equal(atomic_load(&g_wakes_locked), late_wake ? 0 : N);
    assert_int_equal(atomic_load(&g_wakes_unlocked), late_wake ? N : 0);
    wp_park_fini(&p);
}

static void test_notify_many_in_batches(void **state)
{
    notify_many_in_batches(true);
}

static void test_notify_many_locked_wake(void **state)
{
    notify_many_in_batches(false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notify_without_waiter_no_syscall),
        cmocka_unit_test(test_notify_claims_oldest),
        cmocka_unit_test(test_pingpong_no_lost_wakeup),
        cmocka_unit_test(test_pingpong_locked_wake_no_lost_wakeup),
        cmocka_unit_test(test_notify_all_wakes_everyone),
        cmocka_unit_test(test_notify_all_locked_wake),
        cmocka_unit_test(test_notify_many_in_batches),
        cmocka_unit_test(test_notify_many_locked_wake),
    };
    return cmocka_run_group_tests_name("park", tests, NULL, NULL);
}
