/* SPDX-License-Identifier: MIT */
/* A test job (a task record with counters), its pool helpers, and a bounded
 * wait, for the Check test programs. Include after <check.h>, fastcheck.h
 * and <wpool.h>. Header-only, test code only. */
#ifndef WP_TEST_JOBS_H
#define WP_TEST_JOBS_H

#include "helpers.h"

#include <errno.h>
#include <sched.h>
#include <string.h>
#include <time.h>

/* The work, in this order, each step optional: raise `started`, call the
 * hook, append the id to `order`, spin `spin_us`, raise `spun`, wait at the
 * gate; then count the run and return the id (with `poll_token`: first run
 * until the task's token is cancelled, and return -EINTR, stopped early). */
struct job {
    struct wpool_task task;
    int id;
    atomic_int ran;
    int status;
    int done_calls;
    atomic_int *started;         /* raised when the work begins */
    void (*hook)(struct job *j); /* called at the start of the work */
    void *arg;                   /* for the hook */
    int *order;                  /* appends id at order[(*order_n)++] */
    atomic_int *order_n;
    int spin_us;       /* busy work */
    atomic_int *spun;  /* raised once the busy work is done */
    struct gate *gate; /* waited for last */
    int poll_token;    /* run until the task's token is cancelled */
};

static inline void spin_for_us(int us)
{
    uint64_t end = wpool_now_ns() + (uint64_t)us * 1000u;
    while (wpool_now_ns() < end)
        ;
}

static inline int job_work(struct wpool_task *t)
{
    struct job *j = (struct job *)t;
    if (j->started)
        atomic_fetch_add(j->started, 1);
    if (j->hook)
        j->hook(j);
    if (j->order)
        j->order[atomic_fetch_add(j->order_n, 1)] = j->id;
    if (j->spin_us)
        spin_for_us(j->spin_us);
    if (j->spun)
        atomic_store(j->spun, 1);
    if (j->gate)
        gate_wait(j->gate);
    if (j->poll_token) {
        while (!wpool_task_cancelled(t))
            sched_yield();
        atomic_fetch_add(&j->ran, 1);
        return -EINTR; /* stopped early */
    }
    atomic_fetch_add(&j->ran, 1);
    return j->id;
}

static inline void job_done(struct wpool_task *t, int status)
{
    struct job *j = (struct job *)t;
    j->status = status;
    j->done_calls++;
}

static inline void job_init(struct job *j, int id)
{
    memset(j, 0, sizeof(*j));
    j->id = id;
    ck_assert_int_eq(wpool_task_init(&j->task, job_work, job_done), 0);
}

static inline wpool_t *make_pool_opts(struct wpool_options *o)
{
    wpool_t *pool = NULL;
    ck_assert_int_eq(wpool_create(&pool, o), 0);
    return pool;
}

static inline wpool_t *make_pool(unsigned threads, int dispatch, unsigned cap)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = threads;
    o.placement = dispatch;
    o.queue_capacity = cap;
    return make_pool_opts(&o);
}

/* A pool whose rings are a hard limit (the bounded option): a submit that
 * finds its ring full is refused with -EAGAIN instead of waiting in the
 * overflow. For the tests of a full pool. */
static inline wpool_t *make_bounded_pool(unsigned threads, int placement, unsigned cap)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = threads;
    o.placement = placement;
    o.queue_capacity = cap;
    o.bounded = 1;
    return make_pool_opts(&o);
}

static inline int policy(int i)
{
    return i ? WPOOL_ROUND_ROBIN : WPOOL_FIRST_FREE;
}

/* Waits until *v >= want, yielding; false if that takes longer than
 * limit_ms (a hang becomes a failed assertion with a message, not a stall
 * until the test's timeout). Never a condition for correctness: callers use
 * it only for progress that must come, or, negated, as a window in which
 * something that must never happen would show (a slow machine can make
 * such a check miss a bug, never fail a correct pool). */
static inline bool wait_at_least(atomic_int *v, int want, int limit_ms)
{
    uint64_t end = wpool_now_ns() + (uint64_t)limit_ms * 1000000u;
    while (atomic_load(v) < want) {
        if (wpool_now_ns() > end)
            return false;
        sched_yield();
    }
    return true;
}

/* Pacing only: gives a buggy call the time to show itself (a worker the
 * time to park, a wrong wake the time to land); no outcome may depend on
 * it. */
static inline void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Submits job `id`, which holds its worker at gate g; returns once the
 * worker is inside it (started raised; a failed assertion after 10 s). */
static inline void hold_worker(wpool_t *pool, struct job *blocker, int id, struct gate *g,
                               atomic_int *started)
{
    int before = atomic_load(started);
    job_init(blocker, id);
    blocker->gate = g;
    blocker->started = started;
    ck_assert_int_eq(wpool_submit(pool, &blocker->task), 0);
    ck_assert(wait_at_least(started, before + 1, 10000));
}

/* Runs every completion of the pool's default port until none is in flight;
 * returns how many ran. */
static inline int drain_all(wpool_t *pool)
{
    return wpool_port_settle(wpool_default_port(pool), -1);
}

#endif
