/* SPDX-License-Identifier: MIT */
/* api suite: work classes. A class's cap holds; its reserved workers run its
 * tasks while every other worker is busy, and lend themselves only after
 * lend_after_us; weights share a worker by weighted round robin; a class's
 * own max_queue refuses it alone and its drain notification follows; its
 * statistics count what happened; the priorities are classes 0 and 1; a
 * class composes with strands; creation races submits and close.
 * Black-box: only the public header. */
#include <wpool.h>

#include <check.h>
#include "../common/fastcheck.h"
#include "../common/jobs.h"
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>

/* Workers inside a class's work now, and the most seen at once. */
struct meter {
    atomic_int inside, most;
};

static struct meter meters[WPOOL_MAX_CLASSES];

static void meter_hook(struct job *j)
{
    struct meter *m = j->arg;
    int now = atomic_fetch_add(&m->inside, 1) + 1;
    int most = atomic_load(&m->most);
    while (now > most && !atomic_compare_exchange_weak(&m->most, &most, now))
        ;
}

/* A job of class cls, metered: its hook raises the meter; its work spins
 * spin_us and lowers it (through the `spun` flag, which we do not use:
 * lowered in meter_done instead would count the dispatch). */
static int metered_work(struct wpool_task *t)
{
    struct job *j = (struct job *)t;
    struct meter *m = j->arg;
    int rc = job_work(t);
    atomic_fetch_sub(&m->inside, 1);
    return rc;
}

static void metered_init(struct job *j, int id, int cls, int spin_us)
{
    job_init(j, id);
    ck_assert_int_eq(wpool_task_init(&j->task, metered_work, job_done), 0);
    ck_assert_int_eq(wpool_task_set_class(&j->task, cls), 0);
    j->hook = meter_hook;
    j->arg = &meters[cls];
    j->spin_us = spin_us;
}

static int make_class(wpool_t *pool, unsigned cap, unsigned reserved, unsigned weight,
                      unsigned lend_us)
{
    struct wpool_class_options co;
    wpool_class_options_init(&co);
    co.max_workers = cap;
    co.reserved_workers = reserved;
    co.weight = weight;
    co.lend_after_us = lend_us;
    int id = wpool_class_create(pool, &co);
    ck_assert_int_ge(id, 2);
    return id;
}

START_TEST(test_class_errors)
{
    struct wpool_class_options co, def = WPOOL_CLASS_OPTIONS_INIT;
    wpool_class_options_init(&co);
    ck_assert_mem_eq(&co, &def, sizeof(co));
    ck_assert_uint_eq(co.weight, 1);
    ck_assert_uint_eq(co.max_queue, WPOOL_UNLIMITED);
    ck_assert_uint_eq(co.lend_after_us, WPOOL_DEFAULT_LEND_AFTER_US);
    wpool_class_options_init(NULL); /* no crash */
    ck_assert_int_eq(wpool_class_create(NULL, &co), -EINVAL);
    wpool_t *pool = make_pool(2, WPOOL_FIRST_FREE, 64);
    struct wpool_class_options bad = co;
    bad.weight = 0;
    ck_assert_int_eq(wpool_class_create(pool, &bad), -EINVAL);
    bad.weight = WPOOL_MAX_WEIGHT + 1;
    ck_assert_int_eq(wpool_class_create(pool, &bad), -EINVAL);
    bad = co;
    bad.max_workers = 3; /* more than the pool has */
    ck_assert_int_eq(wpool_class_create(pool, &bad), -EINVAL);
    bad = co;
    bad.max_workers = 1;
    bad.reserved_workers = 2;
    ck_assert_int_eq(wpool_class_create(pool, &bad), -EINVAL);
    bad = co;
    bad.max_queue = 4;
    bad.drain_low_water = 4;
    ck_assert_int_eq(wpool_class_create(pool, &bad), -EINVAL);
    bad = co;
    bad.drain_low_water = 1; /* without a max_queue */
    ck_assert_int_eq(wpool_class_create(pool, &bad), -EINVAL);
    bad = co;
    bad.lend_after_us = 10000001;
    ck_assert_int_eq(wpool_class_create(pool, &bad), -EINVAL);
    bad = co;
    bad.spare[3] = 1;
    ck_assert_int_eq(wpool_class_create(pool, &bad), -EINVAL);
    bad = co;
    bad.reserved_workers = 2; /* the pool keeps one worker unreserved */
    ck_assert_int_eq(wpool_class_create(pool, &bad), -ENOSPC);
    /* Ids from 2 up; NULL options are the defaults. */
    ck_assert_int_eq(make_class(pool, 0, 1, 1, 1000), 2);
    bad = co;
    bad.reserved_workers = 1; /* the one left must stay unreserved */
    ck_assert_int_eq(wpool_class_create(pool, &bad), -ENOSPC);
    for (int id = 3; id < WPOOL_MAX_CLASSES; id++)
        ck_assert_int_eq(wpool_class_create(pool, NULL), id);
    ck_assert_int_eq(wpool_class_create(pool, NULL), -ENOSPC);
    /* Task side: an id out of range at once; one the pool lacks at submit. */
    struct job j;
    job_init(&j, 1);
    ck_assert_int_eq(wpool_task_set_class(&j.task, -1), -EINVAL);
    ck_assert_int_eq(wpool_task_set_class(&j.task, WPOOL_MAX_CLASSES), -EINVAL);
    ck_assert_int_eq(wpool_task_set_class(NULL, 0), -EINVAL);
    wpool_t *other = make_pool(1, WPOOL_FIRST_FREE, 64);
    ck_assert_int_eq(wpool_task_set_class(&j.task, 5), 0);
    ck_assert_int_eq(wpool_submit(other, &j.task), -EINVAL);
    ck_assert_int_eq(j.done_calls, 0);
    ck_assert_int_eq(wpool_submit(pool, &j.task), 0);
    ck_assert_int_eq(wpool_task_set_class(&j.task, 0), -EBUSY); /* in flight */
    ck_assert_int_eq(drain_all(pool), 1);
    ck_assert_int_eq(j.status, 1);
    /* Statistics and drains: bad ids and pools. */
    struct wpool_class_statistics cs;
    ck_assert_int_eq(wpool_class_stats(NULL, 0, &cs), -EINVAL);
    ck_assert_int_eq(wpool_class_stats(pool, 0, NULL), -EINVAL);
    ck_assert_int_eq(wpool_class_stats(pool, WPOOL_MAX_CLASSES, &cs), -EINVAL);
    ck_assert_int_eq(wpool_class_stats(other, 2, &cs), -EINVAL);
    ck_assert_int_eq(wpool_class_needs_drain(NULL, 0), -EINVAL);
    ck_assert_int_eq(wpool_class_needs_drain(other, 2), -EINVAL);
    ck_assert_int_eq(wpool_class_needs_drain(pool, 2), 0);
    ck_assert_int_eq(wpool_class_on_drain(pool, 2, NULL, NULL, NULL), -ENOTSUP);
    ck_assert_int_eq(wpool_class_on_drain(NULL, 2, NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(wpool_class_on_drain(pool, -1, NULL, NULL, NULL), -EINVAL);
    /* Closed: no new class. */
    ck_assert_int_eq(wpool_close(other), 0);
    ck_assert_int_eq(wpool_class_create(other, NULL), -ESHUTDOWN);
    ck_assert_int_eq(wpool_destroy(other), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* A capped class never has more workers than its cap; the others go on. */
START_TEST(test_class_cap)
{
    enum { N = 40, NN = 40 };
    wpool_t *pool = make_pool(4, policy(_i), 64);
    int capped = make_class(pool, 1, 0, 1, 0);
    int pair = make_class(pool, 2, 0, 1, 0);
    memset(meters, 0, sizeof(meters));
    struct job *jobs = calloc(2 * N + NN, sizeof(*jobs));
    ck_assert_ptr_nonnull(jobs);
    for (int i = 0; i < 2 * N + NN; i++) {
        int cls = i % 3 == 0 ? capped : i % 3 == 1 ? pair : WPOOL_CLASS_NORMAL;
        metered_init(&jobs[i], i, cls, 300);
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    }
    ck_assert_int_eq(drain_all(pool), 2 * N + NN);
    for (int i = 0; i < 2 * N + NN; i++) {
        ck_assert_int_eq(jobs[i].done_calls, 1);
        ck_assert_int_eq(jobs[i].status, i);
    }
    ck_assert_int_eq(atomic_load(&meters[capped].most), 1);
    ck_assert_int_le(atomic_load(&meters[pair].most), 2);
    struct wpool_class_statistics cs;
    ck_assert_int_eq(wpool_class_stats(pool, capped, &cs), 0);
    ck_assert_uint_eq(cs.completed, (2 * N + NN + 2) / 3);
    ck_assert_uint_eq(cs.running, 0);
    ck_assert_uint_eq(cs.queued, 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    free(jobs);
}
END_TEST

/* The cap holds a class's second task while its first runs, though a
 * worker is free; it runs once the first ends, while another class's task
 * holds the other worker. */
START_TEST(test_class_cap_wake)
{
    wpool_t *pool = make_pool(2, policy(_i), 64);
    int capped = make_class(pool, 1, 0, 1, 0);
    struct gate g1, g2;
    gate_init(&g1);
    gate_init(&g2);
    atomic_int started = 0;
    struct job a, b, n1;
    job_init(&a, 1);
    ck_assert_int_eq(wpool_task_set_class(&a.task, capped), 0);
    a.gate = &g1;
    a.started = &started;
    ck_assert_int_eq(wpool_submit(pool, &a.task), 0);
    ck_assert(wait_at_least(&started, 1, 10000));
    /* b waits for the cap; n1 goes to the other worker and holds it. */
    job_init(&b, 2);
    ck_assert_int_eq(wpool_task_set_class(&b.task, capped), 0);
    b.started = &started;
    ck_assert_int_eq(wpool_submit(pool, &b.task), 0);
    job_init(&n1, 3);
    n1.gate = &g2;
    n1.started = &started;
    ck_assert_int_eq(wpool_submit(pool, &n1.task), 0);
    ck_assert(wait_at_least(&started, 2, 10000));
    ck_assert_int_eq(atomic_load(&b.ran), 0); /* the cap holds it */
    gate_open(&g1);
    /* b runs on the worker a freed, while n1 still holds the other. */
    ck_assert(wait_at_least(&started, 3, 10000));
    ck_assert_int_eq(atomic_load(&n1.ran), 0);
    gate_open(&g2);
    ck_assert_int_eq(drain_all(pool), 3);
    ck_assert_int_eq(b.status, 2);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g1);
    gate_fini(&g2);
}
END_TEST

/* A hook that records the index of the worker running the job (in arg). */
static void note_worker(struct job *j)
{
    atomic_store((atomic_int *)j->arg, wpool_worker_index());
}

/* A reserved worker runs its class's task while the unreserved one is held
 * and normal tasks wait (it does not lend itself within lend_after_us): the
 * blocker can only be on the unreserved worker, and after the class's task
 * ran no normal task starts for a while (a reserved worker lending itself
 * would start one at once). */
START_TEST(test_class_reserved)
{
    wpool_t *pool = make_pool(2, policy(_i), 64);
    int lat = make_class(pool, 0, 1, 1, 10000000); /* lends after 10 s */
    struct gate g;
    gate_init(&g);
    atomic_int nstarted = 0, lstarted = 0, where = -1;
    struct job blocker, normal[5], quick;
    job_init(&blocker, 100);
    blocker.gate = &g;
    blocker.hook = note_worker;
    blocker.arg = &where;
    ck_assert_int_eq(wpool_submit(pool, &blocker.task), 0);
    ck_assert(wait_at_least(&where, 0, 10000));
    ck_assert_int_eq(atomic_load(&where), 0); /* the unreserved worker (the lowest index) */
    for (int i = 0; i < 5; i++) {
        job_init(&normal[i], i);
        normal[i].started = &nstarted;
        ck_assert_int_eq(wpool_submit(pool, &normal[i].task), 0);
    }
    job_init(&quick, 7);
    ck_assert_int_eq(wpool_task_set_class(&quick.task, lat), 0);
    quick.started = &lstarted;
    ck_assert_int_eq(wpool_submit(pool, &quick.task), 0);
    ck_assert(wait_at_least(&lstarted, 1, 10000));
    ck_assert(wait_at_least((atomic_int *)&quick.ran, 1, 10000));
    /* The reserved worker kept to its class: no normal task started, nor
     * starts in the next 20 ms (the check a lending worker fails). */
    ck_assert(!wait_at_least(&nstarted, 1, 20));
    ck_assert_int_eq(atomic_load(&nstarted), 0);
    struct wpool_class_statistics cs;
    ck_assert_int_eq(wpool_class_stats(pool, WPOOL_CLASS_NORMAL, &cs), 0);
    ck_assert_uint_eq(cs.queued, 5);
    ck_assert_uint_eq(cs.running, 1); /* the blocker */
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 7);
    ck_assert_int_eq(quick.status, 7);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* A class task that arrives while its reserved worker is busy runs on a
 * free unreserved worker (the submit's wake falls back to the pool's park
 * when no reserved worker sleeps). Each round first puts a held class task
 * on the reserved worker (the highest index): the first one submitted, or,
 * when the unreserved worker took that one, a second one, which only the
 * reserved worker is left to take; then lets the unreserved worker go. No
 * round depends on which worker wins a race. */
START_TEST(test_class_reserved_busy)
{
    wpool_t *pool = make_pool(2, policy(_i), 64);
    int cls = make_class(pool, 0, 1, 1, 10000000);
    for (int round = 0; round < 10; round++) {
        struct gate g[2];
        atomic_int where[2] = {-1, -1}, where_b = -1;
        struct job held[2], b;
        int n = 0;
        do {
            gate_init(&g[n]);
            job_init(&held[n], 1 + n);
            ck_assert_int_eq(wpool_task_set_class(&held[n].task, cls), 0);
            held[n].gate = &g[n];
            held[n].hook = note_worker;
            held[n].arg = &where[n];
            ck_assert_int_eq(wpool_submit(pool, &held[n].task), 0);
            ck_assert(wait_at_least(&where[n], 0, 10000)); /* it started, on that worker */
            n++;
        } while (n < 2 && atomic_load(&where[n - 1]) != 1);
        ck_assert_int_eq(atomic_load(&where[n - 1]), 1); /* the reserved worker is held */
        if (n == 2) {
            gate_open(&g[0]); /* the unreserved worker's task ends: it is free */
            ck_assert(wait_at_least((atomic_int *)&held[0].ran, 1, 10000));
        }
        /* Pacing only: the unreserved worker's spin runs out and it parks,
         * so that b's submit must wake it through the fallback to the
         * pool's park. No outcome depends on it (a worker still spinning
         * finds b without a wake). */
        pause_ms(2);
        job_init(&b, 3);
        ck_assert_int_eq(wpool_task_set_class(&b.task, cls), 0);
        b.hook = note_worker;
        b.arg = &where_b;
        ck_assert_int_eq(wpool_submit(pool, &b.task), 0);
        ck_assert(
            wait_at_least((atomic_int *)&b.ran, 1, 10000)); /* while the reserved one is held */
        ck_assert_int_eq(atomic_load(&where_b), 0);
        ck_assert_int_eq(atomic_load(&held[n - 1].ran), 0);
        gate_open(&g[n - 1]);
        ck_assert_int_eq(drain_all(pool), n + 1);
        ck_assert_int_eq(b.status, 3);
        for (int i = 0; i < n; i++) {
            ck_assert_int_eq(held[i].status, 1 + i);
            gate_fini(&g[i]);
        }
    }
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* Work-conserving: with nothing of its class to run, a reserved worker runs
 * other tasks after lend_after_us (0: at once; 20 ms: later). */
START_TEST(test_class_lend)
{
    unsigned lend_us = _i ? 20000 : 0;
    wpool_t *pool = make_pool(2, WPOOL_FIRST_FREE, 64);
    make_class(pool, 0, 1, 1, lend_us);
    struct gate g;
    gate_init(&g);
    atomic_int started = 0, nstarted = 0;
    struct job blocker, normal;
    hold_worker(pool, &blocker, 100, &g, &started);
    job_init(&normal, 1);
    normal.started = &nstarted;
    ck_assert_int_eq(wpool_submit(pool, &normal.task), 0);
    /* It runs while the unreserved worker is still held. */
    ck_assert(wait_at_least(&nstarted, 1, 10000));
    ck_assert(wait_at_least((atomic_int *)&normal.ran, 1, 10000));
    ck_assert_int_eq(atomic_load(&blocker.ran), 0);
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 2);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* One worker, two backlogged classes of weight 3 and 1: three of the first
 * for every one of the second, each class in its order. */
START_TEST(test_class_weights)
{
    enum { NA = 12, NB = 12 };
    wpool_t *pool = make_pool(1, WPOOL_FIRST_FREE, 64);
    int a = make_class(pool, 0, 0, 3, 0);
    int b = make_class(pool, 0, 0, 1, 0);
    struct gate g;
    gate_init(&g);
    atomic_int started = 0, order_n = 0;
    int order[NA + NB];
    struct job blocker, jobs[NA + NB];
    hold_worker(pool, &blocker, 100, &g, &started);
    for (int i = 0; i < NA + NB; i++) {
        job_init(&jobs[i], i); /* even: a, odd: b */
        ck_assert_int_eq(wpool_task_set_class(&jobs[i].task, i % 2 ? b : a), 0);
        jobs[i].order = order;
        jobs[i].order_n = &order_n;
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    }
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), NA + NB + 1);
    int na = 0, nb = 0, k = 0;
    while (na < NA || nb < NB) {
        for (int s = 0; s < 3 && na < NA; s++)
            ck_assert_int_eq(order[k++], 2 * na++);
        if (nb < NB)
            ck_assert_int_eq(order[k++], 2 * nb++ + 1);
    }
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* A capped task does not upset the round robin: after it, the normal lane
 * still gives one task per turn while high tasks wait (a review found the
 * cap's recheck resetting the worker's share: nine normal tasks in a row). */
START_TEST(test_class_weights_after_cap)
{
    enum { NH = 16, NN = 10 };
    wpool_t *pool = make_pool(1, WPOOL_FIRST_FREE, 64);
    int capped = make_class(pool, 1, 0, 8, 0);
    struct gate g;
    gate_init(&g);
    atomic_int started = 0, order_n = 0;
    int order[NH + NN + 1];
    struct job blocker, jobs[NH + NN + 1];
    hold_worker(pool, &blocker, 100, &g, &started);
    for (int i = 0; i < NH + NN + 1; i++) {
        job_init(&jobs[i], i); /* < NH: high; NH: the capped one; then normal */
        int cls = i < NH ? WPOOL_CLASS_HIGH : i == NH ? capped : WPOOL_CLASS_NORMAL;
        ck_assert_int_eq(wpool_task_set_class(&jobs[i].task, cls), 0);
        jobs[i].order = order;
        jobs[i].order_n = &order_n;
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    }
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), NH + NN + 2);
    /* While high tasks wait, never two normal tasks in a row. */
    int high_left = NH, run = 0;
    for (int k = 0; k < NH + NN + 1; k++) {
        if (order[k] < NH) {
            high_left--;
            run = 0;
        } else if (order[k] > NH) {
            run++;
            if (high_left > 0)
                ck_assert_int_le(run, 1);
        }
    }
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* A batch of a class's tasks with two reserved workers asleep: both run
 * (the first one woken passes the wake on to the class's park). */
static atomic_int b_started;
static int wait_for_b(struct wpool_task *t)
{
    (void)t;
    uint64_t end = wpool_now_ns() + 10000000000u;
    while (!atomic_load(&b_started) && wpool_now_ns() < end)
        sched_yield();
    return atomic_load(&b_started) ? 0 : -ETIMEDOUT;
}
static int start_b(struct wpool_task *t)
{
    (void)t;
    atomic_store(&b_started, 1);
    return 0;
}

START_TEST(test_class_batch_reserved)
{
    wpool_t *pool = make_pool(3, policy(_i), 64);
    int cls = make_class(pool, 0, 2, 1, 10000000);
    struct gate g;
    gate_init(&g);
    atomic_int started = 0;
    struct job blocker, a, b;
    hold_worker(pool, &blocker, 100, &g, &started); /* the unreserved worker */
    /* Rounds: in some of them both reserved workers are asleep when the
     * batch comes (in others one may still be looking for work). */
    for (int round = 0; round < 10; round++) {
        atomic_store(&b_started, 0);
        job_init(&a, 1);
        ck_assert_int_eq(wpool_task_init(&a.task, wait_for_b, job_done), 0);
        ck_assert_int_eq(wpool_task_set_class(&a.task, cls), 0);
        job_init(&b, 2);
        ck_assert_int_eq(wpool_task_init(&b.task, start_b, job_done), 0);
        ck_assert_int_eq(wpool_task_set_class(&b.task, cls), 0);
        struct wpool_task *batch[2] = {&a.task, &b.task};
        ck_assert_int_eq(wpool_submit_batch(pool, batch, 2), 2);
        /* Both complete while the unreserved worker is still held. */
        while (!a.done_calls || !b.done_calls) {
            ck_assert_int_eq(wpool_port_wait(wpool_default_port(pool), 20000), 0);
            wpool_dispatch(pool, WPOOL_DISPATCH_ALL);
        }
        ck_assert_int_eq(a.status, 0); /* b started while a waited for it */
    }
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 1);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

static atomic_int drains;
static void on_class_drain(wpool_t *pool, void *arg)
{
    ck_assert_ptr_nonnull(pool);
    ck_assert_ptr_eq(arg, &drains);
    atomic_fetch_add(&drains, 1);
}

/* A class's max_queue refuses that class alone; its drain follows; the pool
 * keeps accepting other work. */
START_TEST(test_class_max_queue)
{
    wpool_t *pool = make_pool(2, policy(_i), 64);
    struct wpool_class_options co = WPOOL_CLASS_OPTIONS_INIT;
    co.max_queue = 3;
    co.drain_low_water = 1;
    int cls = wpool_class_create(pool, &co);
    ck_assert_int_ge(cls, 2);
    ck_assert_int_eq(wpool_class_on_drain(pool, cls, NULL, on_class_drain, &drains), 0);
    atomic_store(&drains, 0);
    struct gate g;
    gate_init(&g);
    atomic_int started = 0;
    struct job b1, b2, jobs[5], other;
    hold_worker(pool, &b1, 100, &g, &started);
    hold_worker(pool, &b2, 101, &g, &started);
    for (int i = 0; i < 4; i++) {
        job_init(&jobs[i], i);
        ck_assert_int_eq(wpool_task_set_class(&jobs[i].task, cls), 0);
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), i < 3 ? 0 : -EAGAIN);
    }
    ck_assert_int_eq(wpool_class_needs_drain(pool, cls), 1);
    ck_assert_int_eq(wpool_needs_drain(pool), 0);
    job_init(&other, 9);
    ck_assert_int_eq(wpool_submit(pool, &other.task), 0); /* other work goes on */
    /* A cancel makes room in the class. */
    ck_assert_int_eq(wpool_cancel(&jobs[0].task), 0);
    ck_assert_int_eq(wpool_class_needs_drain(pool, cls), 0);
    ck_assert_int_eq(wpool_submit(pool, &jobs[3].task), 0);
    gate_open(&g);
    /* Seven tasks and the drain notification (posted when the class's
     * backlog fell to 1, before its last task ended). */
    ck_assert_int_eq(drain_all(pool), 8);
    ck_assert_int_eq(atomic_load(&drains), 1);
    ck_assert_int_eq(jobs[0].status, -ECANCELED);
    ck_assert_int_eq(jobs[3].status, 3);
    struct wpool_class_statistics cs;
    ck_assert_int_eq(wpool_class_stats(pool, cls, &cs), 0);
    ck_assert_uint_eq(cs.refused, 1);
    ck_assert_uint_eq(cs.cancelled, 1);
    ck_assert_uint_eq(cs.completed, 3);
    /* wpool_submit_wait waits for room in the class. */
    job_init(&jobs[4], 4);
    ck_assert_int_eq(wpool_task_set_class(&jobs[4].task, cls), 0);
    ck_assert_int_eq(wpool_submit_wait(pool, &jobs[4].task, 10000), 0);
    ck_assert_int_eq(drain_all(pool), 1);
    ck_assert_int_eq(wpool_class_on_drain(pool, cls, NULL, NULL, NULL), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

static int late_work(struct wpool_task *t)
{
    (void)t;
    return 0;
}

/* Counters and histograms of a class; the priorities are classes 0 and 1. */
START_TEST(test_class_stats)
{
    wpool_t *pool = make_pool(1, WPOOL_FIRST_FREE, 64);
    int cls = make_class(pool, 0, 0, 1, 0);
    struct gate g;
    gate_init(&g);
    atomic_int started = 0;
    struct job held, ran[4], gone, late, high;
    job_init(&held, 50);
    ck_assert_int_eq(wpool_task_set_class(&held.task, cls), 0);
    held.gate = &g;
    held.started = &started;
    ck_assert_int_eq(wpool_submit(pool, &held.task), 0);
    ck_assert(wait_at_least(&started, 1, 10000));
    for (int i = 0; i < 4; i++) {
        job_init(&ran[i], i);
        ck_assert_int_eq(wpool_task_set_class(&ran[i].task, cls), 0);
        ran[i].spin_us = 100;
        ck_assert_int_eq(wpool_submit(pool, &ran[i].task), 0);
    }
    job_init(&gone, 5);
    ck_assert_int_eq(wpool_task_set_class(&gone.task, cls), 0);
    ck_assert_int_eq(wpool_submit(pool, &gone.task), 0);
    job_init(&late, 6);
    ck_assert_int_eq(wpool_task_init(&late.task, late_work, job_done), 0);
    ck_assert_int_eq(wpool_task_set_class(&late.task, cls), 0);
    ck_assert_int_eq(wpool_task_set_deadline(&late.task, 1), 0);
    ck_assert_int_eq(wpool_submit(pool, &late.task), 0);
    job_init(&high, 7);
    ck_assert_int_eq(wpool_task_set_class(&high.task, WPOOL_CLASS_HIGH), 0);
    ck_assert_int_eq(wpool_submit(pool, &high.task), 0);
    struct wpool_class_statistics cs;
    ck_assert_int_eq(wpool_class_stats(pool, cls, &cs), 0);
    ck_assert_uint_eq(cs.running, 1);
    ck_assert_uint_eq(cs.queued, 6);
    ck_assert_int_eq(wpool_cancel(&gone.task), 0);
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 8);
    ck_assert_int_eq(wpool_class_stats(pool, cls, &cs), 0);
    ck_assert_uint_eq(cs.running, 0);
    ck_assert_uint_eq(cs.queued, 0);
    ck_assert_uint_eq(cs.completed, 5);
    ck_assert_uint_eq(cs.cancelled, 1);
    ck_assert_uint_eq(cs.timed_out, 1);
    ck_assert_uint_eq(cs.refused, 0);
    ck_assert_uint_eq(cs.wait.count, 5);
    ck_assert_uint_eq(cs.run.count, 5);
    ck_assert_uint_ge(cs.run.max_us, 90);
    /* A priority is a class: the high task is counted in class 1. */
    ck_assert_int_eq(wpool_class_stats(pool, WPOOL_CLASS_HIGH, &cs), 0);
    ck_assert_uint_eq(cs.completed, 1);
    ck_assert_uint_eq(cs.wait.count, 0); /* times of the built-in classes: wpool_stats */
    ck_assert_int_eq(wpool_class_stats(pool, WPOOL_CLASS_NORMAL, &cs), 0);
    ck_assert_uint_eq(cs.completed, 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* A strand's tasks keep their order across classes. */
START_TEST(test_class_strand_order)
{
    enum { N = 60 };
    wpool_t *pool = make_pool(2, policy(_i), 64);
    int capped = make_class(pool, 1, 0, 1, 0);
    int heavy = make_class(pool, 0, 0, 5, 0);
    struct wpool_strand strand = {0};
    ck_assert_int_eq(wpool_strand_init(&strand, pool), 0);
    atomic_int order_n = 0;
    int order[N];
    struct job jobs[N];
    for (int i = 0; i < N; i++) {
        job_init(&jobs[i], i);
        int cls = i % 3 == 0 ? capped : i % 3 == 1 ? heavy : WPOOL_CLASS_HIGH;
        ck_assert_int_eq(wpool_task_set_class(&jobs[i].task, cls), 0);
        ck_assert_int_eq(wpool_task_set_strand(&jobs[i].task, &strand), 0);
        jobs[i].order = order;
        jobs[i].order_n = &order_n;
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    }
    ck_assert_int_eq(drain_all(pool), N);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(order[i], i);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    ck_assert_int_eq(wpool_strand_destroy(&strand), 0);
}
END_TEST

/* Class creation racing submits (to the classes as they appear) and close:
 * each create gets an id or -ESHUTDOWN; every accepted task completes once. */
struct race {
    wpool_t *pool;
    atomic_int ids[WPOOL_MAX_CLASSES]; /* created, 1 when usable */
    atomic_int stop;
    struct job jobs[400];
    atomic_int accepted;
};

static void *race_submitter(void *arg)
{
    struct race *r = arg;
    for (int i = 0; i < 400; i++) {
        int cls = i % WPOOL_MAX_CLASSES;
        if (!atomic_load(&r->ids[cls]))
            cls = 0;
        job_init(&r->jobs[i], i);
        ck_assert_int_eq(wpool_task_set_class(&r->jobs[i].task, cls), 0);
        int rc = wpool_submit(r->pool, &r->jobs[i].task);
        ck_assert(rc == 0 || rc == -ESHUTDOWN);
        if (rc == 0)
            atomic_fetch_add(&r->accepted, 1);
        if (i % 16 == 0)
            sched_yield();
    }
    return NULL;
}

static void *race_closer(void *arg)
{
    ck_assert_int_eq(wpool_close(arg), 0);
    return NULL;
}

START_TEST(test_class_create_races)
{
    for (int round = 0; round < 20; round++) {
        struct race *r = calloc(1, sizeof(*r));
        ck_assert_ptr_nonnull(r);
        r->pool = make_pool(2, policy(_i), 64);
        atomic_store(&r->ids[0], 1);
        atomic_store(&r->ids[1], 1);
        pthread_t sub, closer;
        bool closing = false;
        ck_assert_int_eq(pthread_create(&sub, NULL, race_submitter, r), 0);
        for (int k = 2; k < WPOOL_MAX_CLASSES; k++) {
            struct wpool_class_options co = WPOOL_CLASS_OPTIONS_INIT;
            co.max_workers = k % 2 ? 1 : 0;
            co.reserved_workers = k == 3;
            co.lend_after_us = 0;
            co.weight = (unsigned)k;
            int id = wpool_class_create(r->pool, &co);
            if (closing && id == -ESHUTDOWN)
                break;
            ck_assert_int_eq(id, k);
            atomic_store(&r->ids[k], 1);
            if (k == 3 + round % 3) { /* close with classes still to create */
                ck_assert_int_eq(pthread_create(&closer, NULL, race_closer, r->pool), 0);
                closing = true;
            }
        }
        ck_assert_int_eq(pthread_join(sub, NULL), 0);
        ck_assert_int_eq(pthread_join(closer, NULL), 0);
        ck_assert_int_eq(wpool_class_create(r->pool, NULL), -ESHUTDOWN);
        ck_assert_int_eq(drain_all(r->pool), atomic_load(&r->accepted));
        for (int i = 0; i < 400; i++)
            ck_assert_int_le(r->jobs[i].done_calls, 1);
        ck_assert_int_eq(wpool_destroy(r->pool), 0);
        free(r);
    }
}
END_TEST

static Suite *classes_suite(void)
{
    Suite *s = suite_create("classes");
    TCase *tc = tcase_create("classes");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_class_errors);
    tcase_add_loop_test(tc, test_class_cap, 0, 2);
    tcase_add_loop_test(tc, test_class_cap_wake, 0, 2);
    tcase_add_loop_test(tc, test_class_reserved, 0, 2);
    tcase_add_loop_test(tc, test_class_reserved_busy, 0, 2);
    tcase_add_loop_test(tc, test_class_lend, 0, 2);
    tcase_add_test(tc, test_class_weights);
    tcase_add_test(tc, test_class_weights_after_cap);
    tcase_add_loop_test(tc, test_class_batch_reserved, 0, 2);
    tcase_add_loop_test(tc, test_class_max_queue, 0, 2);
    tcase_add_test(tc, test_class_stats);
    tcase_add_loop_test(tc, test_class_strand_order, 0, 2);
    tcase_add_loop_test(tc, test_class_create_races, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(classes_suite());
}
