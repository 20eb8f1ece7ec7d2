/* SPDX-License-Identifier: MIT */
/*
 * unit suite (cmocka): wpool_submit_wait, white-box. syscall() is wrapped
 * (-Wl,--wrap) to count the futex calls the library makes.
 *
 * - Wakeups per freed slot: submitters blocked on a full pool must be woken
 *   about once per slot that a worker frees, not all of them for every slot
 *   (regression: wp_room_made notified the space park with INT_MAX, so with 8
 *   waiters each task cost every waiter a wakeup and a futex call).
 * - The deadline holds while room is seen but the reserve still fails (a
 *   consumer preempted between advancing the tail and releasing its cell).
 *   Regression: that retry branch looped without looking at the deadline.
 *
 * Each test arms a watchdog (SIGALRM) so that a hang fails the test instead
 * of waiting for meson's timeout.
 */
#include "../common/helpers.h"
#include "pool.h"

#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

/* ---- futex call counting --------------------------------------------------- */

/* Counting is on while g_pool is set. A wake aimed at a worker's node (they
 * live in pool->workers) is a worker wakeup; every other futex wake the
 * library makes is a room waiter's (the space park). A wait made on a
 * submitter thread is a room waiter going to sleep. */
static struct wpool *_Atomic g_pool;
static atomic_long g_space_wakes, g_worker_wakes, g_submitter_waits;
static _Thread_local bool t_submitter;

static bool on_worker_node(const struct wpool *pool, uintptr_t addr)
{
    uintptr_t lo = (uintptr_t)pool->workers;
    uintptr_t hi = (uintptr_t)(pool->workers + pool->nthreads);
    return addr >= lo && addr < hi;
}

static void on_futex(int cmd, uintptr_t addr)
{
    struct wpool *pool = atomic_load(&g_pool);
    if (!pool)
        return;
    if (cmd == FUTEX_WAKE)
        atomic_fetch_add(on_worker_node(pool, addr) ? &g_worker_wakes : &g_space_wakes, 1);
    else if (cmd == FUTEX_WAIT && t_submitter)
        atomic_fetch_add(&g_submitter_waits, 1);
}
#include "../common/futex_hook.h"

/* ---- helpers ----------------------------------------------------------------- */

/* Per-test timeout: a hang fails the test, as SIGALRM's default action ends
 * the process. Stretched like Check's timeouts under valgrind
 * (CK_TIMEOUT_MULTIPLIER). */
enum { TEST_TIMEOUT_S = 60 };

static int watchdog_arm(void **state)
{
    (void)state;
    const char *m = getenv("CK_TIMEOUT_MULTIPLIER");
    unsigned int mult = m && atoi(m) > 0 ? (unsigned int)atoi(m) : 1;
    alarm(TEST_TIMEOUT_S * mult);
    return 0;
}

static int watchdog_disarm(void **state)
{
    (void)state;
    alarm(0);
    return 0;
}

struct job {
    struct wpool_task task;
    int id;
    struct gate *gate;
    atomic_int *started;
    atomic_int ran;
    int status;
    int done_calls;
};

static int job_work(struct wpool_task *t)
{
    struct job *j = (struct job *)t;
    if (j->started)
        atomic_fetch_add(j->started, 1);
    if (j->gate)
        gate_wait(j->gate);
    atomic_fetch_add(&j->ran, 1);
    return j->id;
}

static void job_done(struct wpool_task *t, int status)
{
    struct job *j = (struct job *)t;
    j->status = status;
    j->done_calls++;
}

static void job_init(struct job *j, int id)
{
    memset(j, 0, sizeof(*j));
    j->id = id;
    assert_int_equal(wpool_task_init(&j->task, job_work, job_done), 0);
}

/* Every job completed exactly once, its work ran once and its status is its id. */
static void check_once(struct job *jobs, int n)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(jobs[i].done_calls, 1);
        assert_int_equal(atomic_load(&jobs[i].ran), 1);
        assert_int_equal(jobs[i].status, jobs[i].id);
    }
}

/* Holds every worker inside a gated job; returns once all are inside. */
static void hold_workers(wpool_t *pool, struct job *blockers, unsigned int n, struct gate *g,
                         atomic_int *started)
{
    for (unsigned int i = 0; i < n; i++) {
        job_init(&blockers[i], 1000 + (int)i);
        blockers[i].gate = g;
        blockers[i].started = started;
        assert_int_equal(wpool_submit(pool, &blockers[i].task), 0);
    }
    while (atomic_load(started) < (int)n)
        sched_yield();
}

/* ---- wakeups per freed slot -------------------------------------------------- */

/* Lets tasks through one at a time (each pass takes a permit), or all once
 * opened. */
struct turnstile {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int permits;
    bool open;
};

static void turnstile_pass(struct turnstile *ts)
{
    pthread_mutex_lock(&ts->mu);
    while (!ts->open && ts->permits == 0)
        pthread_cond_wait(&ts->cv, &ts->mu);
    if (!ts->open)
        ts->permits--;
    pthread_mutex_unlock(&ts->mu);
}

static void turnstile_post(struct turnstile *ts, bool open)
{
    pthread_mutex_lock(&ts->mu);
    if (open)
        ts->open = true;
    else
        ts->permits++;
    pthread_cond_broadcast(&ts->cv);
    pthread_mutex_unlock(&ts->mu);
}

static struct turnstile g_turnstile = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0,
                                       false};

static int stepped_work(struct wpool_task *t)
{
    struct job *j = (struct job *)t;
    if (j->started)
        atomic_fetch_add(j->started, 1);
    turnstile_pass(&g_turnstile);
    atomic_fetch_add(&j->ran, 1);
    return j->id;
}

static void stepped_init(struct job *j, int id)
{
    memset(j, 0, sizeof(*j));
    j->id = id;
    assert_int_equal(wpool_task_init(&j->task, stepped_work, job_done), 0);
}

enum { NSUB = 8, STEPS = 200, MAX_WAKES_PER_TASK = 3 };

struct submitter {
    wpool_t *pool;
    struct job *jobs; /* STEPS + 1: enough if one thread wins every step */
    atomic_int *accepted;
    atomic_bool *stop;
    int used;
    int failures;
};

static void *submitter_main(void *arg)
{
    struct submitter *s = arg;
    t_submitter = true;
    while (!atomic_load(s->stop) && s->used <= STEPS) {
        int rc = wpool_submit_wait(s->pool, &s->jobs[s->used].task, -1);
        if (rc) {
            s->failures++;
            break;
        }
        s->used++;
        atomic_fetch_add(s->accepted, 1);
    }
    return NULL;
}

/* Waits until `accepted` tasks were accepted and every submitter sleeps on
 * the space park again. */
static void wait_settled(struct wpool *pool, atomic_int *accepted, int want)
{
    while (atomic_load(accepted) < want ||
           wp_park_waiters(&pool->lanes[WPOOL_PRIORITY_NORMAL].space) < NSUB)
        sched_yield();
}

/* NSUB threads block in wpool_submit_wait on a full pool of two-slot queues.
 * The workers run tasks that each wait for a permit; the test hands out one
 * permit at a time, and only once every submitter sleeps again: each step
 * frees exactly one slot while NSUB threads wait, and exactly one task is
 * accepted into it. Freeing one slot should cost about one futex wake (plus a
 * wake passed on by a waiter that found room without sleeping), not one per
 * waiter. */
static void wakes_per_freed_slot(unsigned int threads, int dispatch)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = threads;
    o.placement = dispatch;
    o.queue_capacity = 2;
    o.bounded = 1; /* a full ring refuses: the waits under test */
    wpool_t *pool;
    assert_int_equal(wpool_create(&pool, &o), 0);
    g_turnstile.permits = 0;
    g_turnstile.open = false;

    /* Every worker inside a stepped task, every queue full. */
    enum { MAXPRE = 6 };
    unsigned int npre = threads + 2 * pool->nqueues;
    assert_true(npre <= MAXPRE);
    struct job pre[MAXPRE], extra;
    atomic_int started = 0;
    for (unsigned int i = 0; i < npre; i++) {
        stepped_init(&pre[i], 1000 + (int)i);
        pre[i].started = &started;
        assert_int_equal(wpool_submit(pool, &pre[i].task), 0);
        if (i < threads)
            while (atomic_load(&started) <= (int)i)
                sched_yield();
    }
    stepped_init(&extra, 1);
    assert_int_equal(wpool_submit(pool, &extra.task), -EAGAIN);

    struct job *jobs = calloc(NSUB * (STEPS + 1), sizeof(*jobs));
    assert_non_null(jobs);
    for (int i = 0; i < NSUB * (STEPS + 1); i++)
        stepped_init(&jobs[i], i);
    atomic_int accepted = 0;
    atomic_bool stop = false;
    struct submitter subs[NSUB];
    pthread_t th[NSUB];
    for (int i = 0; i < NSUB; i++) {
        subs[i] = (struct submitter){pool, &jobs[i * (STEPS + 1)], &accepted, &stop, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, submitter_main, &subs[i]), 0);
    }
    wait_settled(pool, &accepted, 0);
    assert_int_equal(atomic_load(&accepted), 0);

    atomic_store(&g_space_wakes, 0);
    atomic_store(&g_worker_wakes, 0);
    atomic_store(&g_submitter_waits, 0);
    atomic_store(&g_pool, pool);
    for (int k = 1; k <= STEPS; k++) {
        turnstile_post(&g_turnstile, false);
        wait_settled(pool, &accepted, k);
    }
    atomic_store(&g_pool, NULL);
    long space = atomic_load(&g_space_wakes), sleeps = atomic_load(&g_submitter_waits);
    int stepped = atomic_load(&accepted);

    /* Let everything through; each submitter gets at most one more task in. */
    atomic_store(&stop, true);
    turnstile_post(&g_turnstile, true);
    int total = 0;
    for (int i = 0; i < NSUB; i++) {
        assert_int_equal(pthread_join(th[i], NULL), 0);
        assert_int_equal(subs[i].failures, 0);
        total += subs[i].used;
    }
    printf("# %u worker(s), %d waiters, %d slots freed one at a time: %ld room wakes "
           "(%.2f per slot), %ld waiter sleeps (%.2f per slot), %ld worker wakes\n",
           threads, NSUB, stepped, space, (double)space / stepped, sleeps, (double)sleeps / stepped,
           atomic_load(&g_worker_wakes));

    assert_int_equal(total, atomic_load(&accepted));
    assert_int_equal(wpool_port_settle(wpool_default_port(pool), -1), (int)npre + total);
    check_once(pre, (int)npre);
    for (int i = 0; i < NSUB; i++) {
        check_once(subs[i].jobs, subs[i].used);
        if (subs[i].used <= STEPS)
            assert_int_equal(subs[i].jobs[subs[i].used].done_calls, 0);
    }
    assert_int_equal(extra.done_calls, 0);
    assert_int_equal(wpool_destroy(pool), 0);
    free(jobs);
    assert_int_equal(stepped, STEPS);
    /* Counts, not times: about one wake per freed slot, not one per waiter.
     * At least one: every step hands its slot to a sleeping submitter (a
     * count of 0 would mean the wakes went uncounted). */
    assert_true(space >= stepped);
    assert_true(space <= MAX_WAKES_PER_TASK * stepped);
    assert_true(sleeps <= MAX_WAKES_PER_TASK * stepped);
}

static void test_wakes_per_freed_slot_one_worker(void **state)
{
    (void)state;
    wakes_per_freed_slot(1, WPOOL_FIRST_FREE);
}

static void test_wakes_per_freed_slot_round_robin(void **state)
{
    (void)state;
    wakes_per_freed_slot(2, WPOOL_ROUND_ROBIN);
}

/* ---- the deadline while room is seen ------------------------------------------ */

struct timed_submit {
    wpool_t *pool;
    struct wpool_task *task;
    int timeout_ms;
    int rc;
    uint64_t took_ns;
};

static void *timed_submit_main(void *arg)
{
    struct timed_submit *ts = arg;
    uint64_t start = wpool_now_ns();
    ts->rc = wpool_submit_wait(ts->pool, ts->task, ts->timeout_ms);
    ts->took_ns = wpool_now_ns() - start;
    return NULL;
}

/* Joins th within ms milliseconds: true if it ended. */
static bool join_within(pthread_t th, unsigned int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)ms * 1000000u;
    ts.tv_sec += (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    return pthread_timedjoin_np(th, NULL, &ts) == 0;
}

/* One worker held in a gated task, a queue of two slots full. Then the queue
 * is put in the state a consumer leaves when it is preempted between its tail
 * CAS and the release of its cell: the tail has moved (wp_has_room sees a
 * free slot), but the cell the next reserve needs still holds last lap's
 * item (wp_queue_reserve: -EAGAIN). A wpool_submit_wait with a 50 ms timeout
 * must still return -ETIMEDOUT at its deadline. Then the tail is put back
 * exactly, and every task completes exactly once. */
static void test_deadline_while_room_seen(void **state)
{
    (void)state;
    enum { TIMEOUT_MS = 50, GRACE_MS = 5000 };
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 1;
    o.queue_capacity = 2;
    o.bounded = 1;
    wpool_t *pool;
    assert_int_equal(wpool_create(&pool, &o), 0);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job jobs[4]; /* the blocker, two to fill the queue, the late one */
    hold_workers(pool, &jobs[0], 1, &g, &started);
    for (int i = 1; i <= 3; i++)
        job_init(&jobs[i], i);
    assert_int_equal(wpool_submit(pool, &jobs[1].task), 0);
    assert_int_equal(wpool_submit(pool, &jobs[2].task), 0);
    assert_int_equal(wpool_submit(pool, &jobs[3].task), -EAGAIN);

    struct wp_queue *q = &wp_lane(pool, 0)[0];
    uint64_t tail = atomic_load(&q->tail), moved = tail + 1;
    assert_int_equal(wp_queue_size(q), 2);
    assert_true(atomic_compare_exchange_strong(&q->tail, &tail, moved));
    /* Room is seen, the reserve still fails. */
    assert_int_equal(wp_queue_size(q), 1);
    assert_int_equal(wpool_submit(pool, &jobs[3].task), -EAGAIN);

    struct timed_submit ts = {pool, &jobs[3].task, TIMEOUT_MS, 1, 0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, timed_submit_main, &ts), 0);
    bool returned = join_within(th, TIMEOUT_MS + GRACE_MS);
    /* Put the tail back exactly (no task lost or run twice): the queue is then
     * plainly full, and a caller still looping sees its deadline passed. */
    assert_true(atomic_compare_exchange_strong(&q->tail, &moved, tail));
    if (!returned)
        assert_int_equal(pthread_join(th, NULL), 0);
    printf("# wpool_submit_wait(%d ms) %s after %.1f ms: %d\n", TIMEOUT_MS,
           returned ? "returned" : "still looping, returned once the tail was put back",
           (double)ts.took_ns / 1e6, ts.rc);

    gate_open(&g);
    assert_int_equal(wpool_port_settle(wpool_default_port(pool), -1), 3);
    check_once(jobs, 3);
    assert_int_equal(jobs[3].done_calls, 0);
    assert_int_equal(atomic_load(&jobs[3].ran), 0);
    /* The refused record is idle: it can be submitted and completes once. */
    assert_int_equal(wpool_submit(pool, &jobs[3].task), 0);
    assert_int_equal(wpool_port_settle(wpool_default_port(pool), -1), 1);
    check_once(jobs, 4);
    assert_int_equal(wpool_destroy(pool), 0);
    gate_fini(&g);

    /* It returned by its deadline, not only once the queue changed. */
    assert_true(returned);
    assert_int_equal(ts.rc, -ETIMEDOUT);
    assert_true(ts.took_ns >= (uint64_t)TIMEOUT_MS * 1000000u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_wakes_per_freed_slot_one_worker, watchdog_arm,
                                        watchdog_disarm),
        cmocka_unit_test_setup_teardown(test_wakes_per_freed_slot_round_robin, watchdog_arm,
                                        watchdog_disarm),
        cmocka_unit_test_setup_teardown(test_deadline_while_room_seen, watchdog_arm,
                                        watchdog_disarm),
    };
    return cmocka_run_group_tests_name("submit-wait", tests, NULL, NULL);
}
