/* SPDX-License-Identifier: MIT */
/* api suite: the Piscina-parity features -- cancel tokens, cancel-all, close
 * modes and timeouts, backpressure (max_queue, blocking submit, drain
 * notification), batch submit, deadlines, priorities, statistics, worker hooks
 * and identity, and the fork policy. Black-box: only the public header. */
#include "../common/helpers.h"
#include <wpool.h>

#include <check.h>
#include "../common/fastcheck.h"
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

struct job {
    struct wpool_task task;
    int id;
    atomic_int ran;
    int status;
    int done_calls;
    struct gate *gate;
    atomic_int *started;
    int *order;          /* appends id at order[(*order_n)++] when it runs */
    atomic_int *order_n; /* (one worker: no race) */
    int spin_us;         /* busy work */
    int poll_token;      /* run until the task's token is cancelled */
};

static void spin_for_us(int us)
{
    uint64_t end = wpool_now_ns() + (uint64_t)us * 1000u;
    while (wpool_now_ns() < end)
        ;
}

static int job_work(struct wpool_task *t)
{
    struct job *j = (struct job *)t;
    if (j->started)
        atomic_fetch_add(j->started, 1);
    if (j->order)
        j->order[atomic_fetch_add(j->order_n, 1)] = j->id;
    if (j->gate)
        gate_wait(j->gate);
    if (j->spin_us)
        spin_for_us(j->spin_us);
    if (j->poll_token) {
        while (!wpool_task_cancelled(t))
            sched_yield();
        atomic_fetch_add(&j->ran, 1);
        return -EINTR; /* stopped early */
    }
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
    ck_assert_int_eq(wpool_task_init(&j->task, job_work, job_done), 0);
}

static wpool_t *make_pool_opts(struct wpool_options *o)
{
    wpool_t *pool = NULL;
    ck_assert_int_eq(wpool_create(&pool, o), 0);
    return pool;
}

static wpool_t *make_pool(unsigned threads, int dispatch, unsigned cap)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = threads;
    o.dispatch = dispatch;
    o.queue_capacity = cap;
    return make_pool_opts(&o);
}

static int policy(int i)
{
    return i ? WPOOL_ROUND_ROBIN : WPOOL_FIRST_FREE;
}

/* Submits a job that holds its worker until the gate opens; returns once the
 * worker is inside it. */
static void hold_worker(wpool_t *pool, struct job *blocker, struct gate *g, atomic_int *started)
{
    int before = atomic_load(started);
    job_init(blocker, 1000);
    blocker->gate = g;
    blocker->started = started;
    ck_assert_int_eq(wpool_submit(pool, &blocker->task), 0);
    while (atomic_load(started) == before)
        sched_yield();
}

static int drain_all(wpool_t *pool)
{
    return wpool_port_drain(wpool_default_port(pool), -1);
}

/* ---- cancel tokens ---------------------------------------------------------- */

START_TEST(test_token_cancels_queued)
{
    enum { N = 30 };
    wpool_t *pool = make_pool(1, policy(_i), 64);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job blocker, tok_jobs[N], free_jobs[N];
    hold_worker(pool, &blocker, &g, &started);
    wpool_token_t *tok;
    ck_assert_int_eq(wpool_token_create(&tok), 0);
    ck_assert_int_eq(wpool_token_cancelled(tok), 0);
    for (int i = 0; i < N; i++) {
        job_init(&tok_jobs[i], i);
        ck_assert_int_eq(wpool_task_set_token(&tok_jobs[i].task, tok), 0);
        ck_assert_int_eq(wpool_submit(pool, &tok_jobs[i].task), 0);
        job_init(&free_jobs[i], 100 + i);
        ck_assert_int_eq(wpool_submit(pool, &free_jobs[i].task), 0);
    }
    ck_assert_int_eq(wpool_token_destroy(tok), -EBUSY); /* tasks in flight carry it */
    ck_assert_int_eq(wpool_token_cancel(tok), N);
    ck_assert_int_eq(wpool_token_cancel(tok), 0); /* again: nothing left */
    ck_assert_int_eq(wpool_token_cancelled(tok), 1);
    /* The cancelled completions arrive while the worker is still held. */
    int got = 0;
    while (got < N) {
        ck_assert_int_eq(wpool_port_wait(wpool_default_port(pool), -1), 0);
        got += wpool_dispatch(pool, UINT_MAX);
    }
    ck_assert_int_eq(got, N);
    /* A task carrying a cancelled token is refused and never queued. */
    struct job late;
    job_init(&late, 7);
    ck_assert_int_eq(wpool_task_set_token(&late.task, tok), 0);
    ck_assert_int_eq(wpool_submit(pool, &late.task), -ECANCELED);
    struct wpool_task *batch[1] = {&late.task};
    ck_assert_int_eq(wpool_submit_batch(pool, batch, 1), -ECANCELED);
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), N + 1);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(tok_jobs[i].done_calls, 1);
        ck_assert_int_eq(tok_jobs[i].status, -ECANCELED);
        ck_assert_int_eq(atomic_load(&tok_jobs[i].ran), 0);
        ck_assert_int_eq(free_jobs[i].done_calls, 1);
        ck_assert_int_eq(free_jobs[i].status, 100 + i);
    }
    ck_assert_int_eq(late.done_calls, 0);
    ck_assert_int_eq(wpool_token_destroy(tok), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

START_TEST(test_token_flag_stops_running_work)
{
    wpool_t *pool = make_pool(2, policy(_i), 16);
    wpool_token_t *tok;
    ck_assert_int_eq(wpool_token_create(&tok), 0);
    atomic_int started = 0;
    struct job j;
    job_init(&j, 1);
    j.poll_token = 1;
    j.started = &started;
    ck_assert_int_eq(wpool_task_cancelled(&j.task), 0); /* no token */
    ck_assert_int_eq(wpool_task_set_token(&j.task, tok), 0);
    ck_assert_int_eq(wpool_submit(pool, &j.task), 0);
    while (atomic_load(&started) == 0)
        sched_yield();
    /* Running: not cancellable, but it sees the flag and stops. */
    ck_assert_int_eq(wpool_token_cancel(tok), 0);
    ck_assert_int_eq(drain_all(pool), 1);
    ck_assert_int_eq(j.status, -EINTR);
    ck_assert_int_eq(atomic_load(&j.ran), 1);
    ck_assert_int_eq(wpool_token_destroy(tok), 0);
    ck_assert_int_eq(wpool_token_create(NULL), -EINVAL);
    ck_assert_int_eq(wpool_token_cancel(NULL), -EINVAL);
    ck_assert_int_eq(wpool_token_cancelled(NULL), -EINVAL);
    ck_assert_int_eq(wpool_token_destroy(NULL), 0);
    ck_assert_int_eq(wpool_task_cancelled(NULL), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* ---- cancel all ------------------------------------------------------------- */

START_TEST(test_cancel_all)
{
    enum { N = 50 };
    wpool_t *pool = make_pool(1, policy(_i), 64);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job blocker, jobs[N];
    hold_worker(pool, &blocker, &g, &started);
    for (int i = 0; i < N; i++) {
        job_init(&jobs[i], i);
        ck_assert_int_eq(wpool_task_set_priority(&jobs[i].task, i % 3 == 0), 0);
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    }
    ck_assert_int_eq(wpool_cancel(&jobs[5].task), 0); /* one already gone */
    ck_assert_int_eq(wpool_cancel_all(pool), N - 1);
    ck_assert_int_eq(wpool_cancel_all(pool), 0);
    ck_assert_int_eq(wpool_cancel_all(NULL), -EINVAL);
    /* Room again: a full queue's cancelled cells are reused. */
    struct job after;
    job_init(&after, 77);
    ck_assert_int_eq(wpool_submit(pool, &after.task), 0);
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), N + 2);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(jobs[i].done_calls, 1);
        ck_assert_int_eq(jobs[i].status, -ECANCELED);
        ck_assert_int_eq(atomic_load(&jobs[i].ran), 0);
    }
    ck_assert_int_eq(blocker.status, 1000);
    ck_assert_int_eq(after.status, 77);
    struct wpool_statistics st;
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.cancelled, N);
    ck_assert_uint_eq(st.completed, 2);
    ck_assert_uint_eq(st.submitted, N + 2);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* ---- close modes and timeouts -------------------------------------------------- */

START_TEST(test_shutdown_timeout_then_cancel)
{
    enum { N = 10 };
    wpool_t *pool = make_pool(1, policy(_i), 16);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job blocker, jobs[N];
    hold_worker(pool, &blocker, &g, &started);
    for (int i = 0; i < N; i++) {
        job_init(&jobs[i], i);
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    }
    ck_assert_int_eq(wpool_shutdown(pool, 2, -1), -EINVAL);
    ck_assert_int_eq(wpool_shutdown(pool, WPOOL_CLOSE_DRAIN, -2), -EINVAL);
    ck_assert_int_eq(wpool_shutdown(NULL, WPOOL_CLOSE_DRAIN, 0), -EINVAL);
    /* The held worker cannot finish: the close times out, the pool is closed. */
    ck_assert_int_eq(wpool_shutdown(pool, WPOOL_CLOSE_DRAIN, 20), -ETIMEDOUT);
    struct job late;
    job_init(&late, 5);
    ck_assert_int_eq(wpool_submit(pool, &late.task), -ESHUTDOWN);
    /* A second call switches to cancelling what is still queued. */
    ck_assert_int_eq(wpool_shutdown(pool, WPOOL_CLOSE_CANCEL, 0), -ETIMEDOUT);
    gate_open(&g);
    ck_assert_int_eq(wpool_close(pool), 0);
    ck_assert_int_eq(wpool_shutdown(pool, WPOOL_CLOSE_CANCEL, 0), 0); /* closed: at once */
    ck_assert_int_eq(drain_all(pool), N + 1);
    ck_assert_int_eq(blocker.status, 1000);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(jobs[i].status, -ECANCELED);
        ck_assert_int_eq(atomic_load(&jobs[i].ran), 0);
    }
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

struct closer {
    wpool_t *pool;
    int mode;
    int rc;
};

static void *closer_main(void *arg)
{
    struct closer *c = arg;
    c->rc = wpool_shutdown(c->pool, c->mode, -1);
    return NULL;
}

START_TEST(test_shutdown_modes)
{
    enum { N = 10 };
    for (int mode = WPOOL_CLOSE_DRAIN; mode <= WPOOL_CLOSE_CANCEL; mode++) {
        wpool_t *pool = make_pool(1, policy(_i), 16);
        struct gate g;
        atomic_int started = 0;
        gate_init(&g);
        struct job blocker, jobs[N], probe;
        job_init(&probe, 9);
        hold_worker(pool, &blocker, &g, &started);
        for (int i = 0; i < N; i++) {
            job_init(&jobs[i], i);
            ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
        }
        /* Begins the close in the mode and returns at once. */
        ck_assert_int_eq(wpool_shutdown(pool, mode, 0), -ETIMEDOUT);
        ck_assert_int_eq(wpool_submit(pool, &probe.task), -ESHUTDOWN);
        /* Two threads wait for the same close: one joins, one waits. */
        struct closer c = {pool, mode, 1};
        pthread_t th;
        pthread_create(&th, NULL, closer_main, &c);
        gate_open(&g);
        ck_assert_int_eq(wpool_shutdown(pool, WPOOL_CLOSE_DRAIN, -1), 0);
        pthread_join(th, NULL);
        ck_assert_int_eq(c.rc, 0);
        ck_assert_int_eq(drain_all(pool), N + 1);
        for (int i = 0; i < N; i++)
            ck_assert_int_eq(jobs[i].status, mode == WPOOL_CLOSE_DRAIN ? i : -ECANCELED);
        ck_assert_int_eq(blocker.status, 1000);
        ck_assert_int_eq(wpool_destroy(pool), 0);
        gate_fini(&g);
    }
}
END_TEST

/* ---- backpressure --------------------------------------------------------------- */

static atomic_int g_drains;

static void on_drain_count(wpool_t *pool, void *arg)
{
    ck_assert_ptr_eq(arg, &g_drains);
    ck_assert_int_eq(wpool_needs_drain(pool), 0); /* room again, level-triggered */
    atomic_fetch_add(&g_drains, 1);
}

START_TEST(test_max_queue_and_drain)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 1;
    o.dispatch = policy(_i);
    o.queue_capacity = 64;
    o.max_queue = 3;
    wpool_t *pool = make_pool_opts(&o);
    atomic_store(&g_drains, 0);
    ck_assert_int_eq(wpool_on_drain(pool, NULL, on_drain_count, &g_drains), 0);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job blocker, jobs[4];
    hold_worker(pool, &blocker, &g, &started);
    ck_assert_int_eq(wpool_needs_drain(pool), 0);
    for (int i = 0; i < 3; i++) {
        job_init(&jobs[i], i);
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    }
    ck_assert_int_eq(wpool_needs_drain(pool), 1);
    job_init(&jobs[3], 3);
    ck_assert_int_eq(wpool_submit(pool, &jobs[3].task), -EAGAIN);
    ck_assert_int_eq(wpool_submit_wait(pool, &jobs[3].task, 0), -ETIMEDOUT);
    ck_assert_int_eq(wpool_submit_wait(pool, &jobs[3].task, 10), -ETIMEDOUT);
    /* No callback while the pool is still full. */
    ck_assert_int_eq(wpool_dispatch(pool, UINT_MAX), 0);
    ck_assert_int_eq(atomic_load(&g_drains), 0);
    gate_open(&g);
    /* Four completions and the drain notification, dispatched like one. */
    ck_assert_int_eq(drain_all(pool), 5);
    ck_assert_int_eq(atomic_load(&g_drains), 1); /* exactly one for the refusals */
    ck_assert_int_eq(wpool_submit(pool, &jobs[3].task), 0);
    ck_assert_int_eq(drain_all(pool), 1);
    ck_assert_int_eq(atomic_load(&g_drains), 1); /* no refusal, no callback */
    ck_assert_int_eq(wpool_needs_drain(NULL), -EINVAL);
    ck_assert_int_eq(wpool_on_drain(NULL, NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* max_queue = 0: a task is accepted only while a worker is free. */
START_TEST(test_max_queue_zero)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 2;
    o.dispatch = policy(_i);
    o.max_queue = 0;
    wpool_t *pool = make_pool_opts(&o);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job b1, b2, extra;
    hold_worker(pool, &b1, &g, &started);
    hold_worker(pool, &b2, &g, &started);
    job_init(&extra, 3);
    ck_assert_int_eq(wpool_submit(pool, &extra.task), -EAGAIN);
    ck_assert_int_eq(wpool_needs_drain(pool), 1);
    gate_open(&g);
    /* A worker frees up: the blocking submit gets in. */
    ck_assert_int_eq(wpool_submit_wait(pool, &extra.task, -1), 0);
    ck_assert_int_eq(drain_all(pool), 3);
    ck_assert_int_eq(extra.status, 3);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

struct waiter {
    wpool_t *pool;
    struct job *job;
    int rc;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    w->rc = wpool_submit_wait(w->pool, &w->job->task, -1);
    return NULL;
}

static int wait_in_task(struct wpool_task *t)
{
    return wpool_submit_wait((wpool_t *)t->data, t, -1);
}

static void noop_done(struct wpool_task *t, int status)
{
    *(int *)((struct job *)t)->order = status;
}

START_TEST(test_submit_wait_blocks_until_room)
{
    enum { W = 4 };
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 1;
    o.dispatch = policy(_i);
    o.queue_capacity = 4; /* ring mode: capacity is the limit */
    wpool_t *pool = make_pool_opts(&o);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job blocker, fill[4], wj[W];
    hold_worker(pool, &blocker, &g, &started);
    for (int i = 0; i < 4; i++) {
        job_init(&fill[i], i);
        ck_assert_int_eq(wpool_submit(pool, &fill[i].task), 0);
    }
    struct waiter w[W];
    pthread_t th[W];
    for (int i = 0; i < W; i++) {
        job_init(&wj[i], 10 + i);
        w[i] = (struct waiter){pool, &wj[i], 1};
        pthread_create(&th[i], NULL, waiter_main, &w[i]);
    }
    gate_open(&g);
    for (int i = 0; i < W; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(w[i].rc, 0);
    }
    ck_assert_int_eq(drain_all(pool), 5 + W);
    for (int i = 0; i < W; i++)
        ck_assert_int_eq(wj[i].status, 10 + i);
    /* From inside a task: refused, every worker could end up waiting. */
    struct job in;
    int in_status = 1;
    job_init(&in, 0);
    ck_assert_int_eq(wpool_task_init(&in.task, wait_in_task, noop_done), 0);
    in.task.data = pool;
    in.order = &in_status;
    ck_assert_int_eq(wpool_submit(pool, &in.task), 0);
    ck_assert_int_eq(drain_all(pool), 1);
    ck_assert_int_eq(in_status, -EDEADLK);
    ck_assert_int_eq(wpool_submit_wait(pool, &in.task, -2), -EINVAL);
    ck_assert_int_eq(wpool_close(pool), 0);
    ck_assert_int_eq(wpool_submit_wait(pool, &wj[0].task, -1), -ESHUTDOWN);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* The drain notification is never lost (Piscina #796) nor owed forever: a
 * producer fills the pool, waits for the drain callback, and repeats. A lost
 * notification hangs the test (Check's timeout fails it). */
static int g_round_drained;

static void on_drain_flag(wpool_t *pool, void *arg)
{
    (void)pool;
    (void)arg;
    g_round_drained = 1;
}

static int tiny_work(struct wpool_task *t)
{
    (void)t;
    return 0;
}

static void tiny_done(struct wpool_task *t, int status)
{
    (void)t;
    ck_assert_int_eq(status, 0);
}

START_TEST(test_drain_never_lost)
{
    enum { ROUNDS = 2000, M = 8 };
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 2;
    o.dispatch = policy(_i);
    o.max_queue = M;
    wpool_t *pool = make_pool_opts(&o);
    ck_assert_int_eq(wpool_on_drain(pool, NULL, on_drain_flag, NULL), 0);
    struct wpool_task *tasks = calloc(64, sizeof(*tasks));
    unsigned next = 0;
    for (int r = 0; r < ROUNDS; r++) {
        g_round_drained = 0;
        for (;;) {
            struct wpool_task *t = &tasks[next % 64];
            if (wpool_task_init(t, tiny_work, tiny_done) == -EBUSY) {
                wpool_dispatch(pool, UINT_MAX);
                continue;
            }
            int rc = wpool_submit(pool, t);
            if (rc == -EAGAIN)
                break;
            ck_assert_int_eq(rc, 0);
            next++;
        }
        while (!g_round_drained) {
            ck_assert_int_eq(wpool_port_wait(wpool_default_port(pool), -1), 0);
            wpool_dispatch(pool, UINT_MAX);
        }
    }
    drain_all(pool);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    free(tasks);
}
END_TEST

/* ---- batch submit --------------------------------------------------------------- */

START_TEST(test_submit_batch)
{
    enum { N = 12 };
    wpool_t *pool = make_pool(1, policy(_i), 8);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job blocker, jobs[N];
    struct wpool_task *ptrs[N];
    hold_worker(pool, &blocker, &g, &started);
    for (int i = 0; i < N; i++) {
        job_init(&jobs[i], i);
        ptrs[i] = &jobs[i].task;
    }
    ck_assert_int_eq(wpool_submit_batch(pool, NULL, 1), -EINVAL);
    ck_assert_int_eq(wpool_submit_batch(pool, ptrs, 0), -EINVAL);
    ck_assert_int_eq(wpool_submit_batch(NULL, ptrs, 1), -EINVAL);
    /* 8 slots (ROUND_ROBIN: one queue per worker, here one): 8 accepted. */
    ck_assert_int_eq(wpool_submit_batch(pool, ptrs, N), 8);
    ck_assert_int_eq(wpool_submit_batch(pool, ptrs + 8, N - 8), -EAGAIN);
    /* A task in flight stops the batch before it. */
    ck_assert_int_eq(wpool_submit_batch(pool, ptrs + 7, 2), -EBUSY);
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 9);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(jobs[i].done_calls, i < 8 ? 1 : 0); /* the rest untouched */
    ck_assert_int_eq(wpool_submit_batch(pool, ptrs + 8, N - 8), N - 8);
    ck_assert_int_eq(drain_all(pool), N - 8);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(jobs[i].done_calls, 1);
        ck_assert_int_eq(jobs[i].status, i);
    }
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* A batch wakes sleeping workers through the hand-on rule: all tasks run even
 * though only one wakeup is issued. */
START_TEST(test_batch_runs_everything)
{
    enum { N = 4096, B = 64 };
    wpool_t *pool = make_pool(4, policy(_i), 4096);
    struct job *jobs = calloc(N, sizeof(*jobs));
    struct wpool_task *ptrs[B];
    for (int base = 0; base < N; base += B) {
        for (int k = 0; k < B; k++) {
            job_init(&jobs[base + k], base + k);
            jobs[base + k].spin_us = 2;
            ptrs[k] = &jobs[base + k].task;
        }
        ck_assert_int_eq(wpool_submit_batch(pool, ptrs, B), B);
    }
    ck_assert_int_eq(drain_all(pool), N);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(jobs[i].status, i);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    free(jobs);
}
END_TEST

/* ---- completion coalescing ---------------------------------------------------- */

static bool fd_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int rc = poll(&p, 1, timeout_ms);
    ck_assert_int_ge(rc, 0);
    return rc == 1 && (p.revents & POLLIN);
}

/* One worker: a blocker holds it while N jobs (each spinning spin_us) and a
 * gated tail job queue behind it; the blocker is released and the worker runs
 * the N jobs back to back. While it sits in the tail job, returns whether the
 * port's fd is readable. Then checks that the N + 1 completions are posted (a
 * dispatch runs them, signalled or not), that the tail's completion comes
 * through the fd once the worker runs out of work, and that every job
 * completed exactly once. */
static bool readable_while_busy(int dispatch, unsigned coalesce_us, int spin_us, bool own_port,
                                uint64_t *held_ns)
{
    enum { N = 200 };
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 1;
    o.dispatch = dispatch;
    o.queue_capacity = 256;
    o.coalesce_us = coalesce_us;
    wpool_t *pool = make_pool_opts(&o);
    wpool_port_t *port = wpool_default_port(pool);
    if (own_port)
        ck_assert_int_eq(wpool_port_create(pool, &port), 0);
    struct gate first, last;
    gate_init(&first);
    gate_init(&last);
    atomic_int started = 0;
    struct job *jobs = calloc(N + 2, sizeof(*jobs));
    struct job *blocker = &jobs[N], *tail = &jobs[N + 1];
    job_init(blocker, N);
    blocker->gate = &first;
    blocker->started = &started;
    for (int i = 0; i < N; i++) {
        job_init(&jobs[i], i);
        jobs[i].spin_us = spin_us;
    }
    job_init(tail, N + 1);
    tail->gate = &last;
    tail->started = &started;
    ck_assert_int_eq(wpool_task_set_port(&blocker->task, port), 0);
    ck_assert_int_eq(wpool_submit(pool, &blocker->task), 0);
    while (atomic_load(&started) == 0)
        sched_yield();
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(wpool_task_set_port(&jobs[i].task, port), 0);
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    }
    ck_assert_int_eq(wpool_task_set_port(&tail->task, port), 0);
    ck_assert_int_eq(wpool_submit(pool, &tail->task), 0);
    uint64_t released = wpool_now_ns();
    gate_open(&first);
    while (atomic_load(&started) < 2) /* the worker is in the tail job */
        sched_yield();
    bool readable = fd_readable(wpool_port_fd(port), 0);
    /* How long the worker has been at it: a held signal may be released
     * once the window has passed, and on a slow machine it may have. */
    if (held_ns)
        *held_ns = wpool_now_ns() - released;
    /* Posted at once either way: N jobs and the blocker. */
    ck_assert_int_eq(wpool_port_dispatch(port, UINT_MAX), N + 1);
    gate_open(&last);
    /* No task left: the tail's completion is signalled at once. A hang here
     * is a held signal never released; the test's timeout fails it. */
    while (tail->done_calls == 0) {
        ck_assert(fd_readable(wpool_port_fd(port), -1));
        wpool_port_dispatch(port, UINT_MAX);
    }
    for (int i = 0; i < N + 2; i++) {
        ck_assert_int_eq(jobs[i].done_calls, 1);
        ck_assert_int_eq(jobs[i].status, i);
    }
    if (own_port)
        ck_assert_int_eq(wpool_port_destroy(port), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&first);
    gate_fini(&last);
    free(jobs);
    return readable;
}

/* coalesce_us holds the loop's wakeup while the worker has more work; off, the
 * first completion signals at once. */
START_TEST(test_coalesce_holds_signal_while_work_waits)
{
    ck_assert(readable_while_busy(policy(_i), 0, 0, false, NULL));
    uint64_t held_ns;
    bool readable = readable_while_busy(policy(_i), WPOOL_MAX_COALESCE_US, 0, false, &held_ns);
    /* Held for the whole window, whatever the machine's speed. */
    ck_assert_msg(!readable || held_ns >= (uint64_t)WPOOL_MAX_COALESCE_US * 1000u,
                  "signalled after %llu ns of a %u us window", (unsigned long long)held_ns,
                  WPOOL_MAX_COALESCE_US);
}
END_TEST

/* The window bounds the hold: with 1 us and jobs of 20 us, the worker signals
 * before it starts the tail job. */
START_TEST(test_coalesce_window_expires)
{
    ck_assert(readable_while_busy(policy(_i), 1, 20, false, NULL));
}
END_TEST

/* Only the pool's own port is coalesced: a port made with wpool_port_create
 * (which may be destroyed while the pool runs) is signalled at once. */
START_TEST(test_coalesce_only_default_port)
{
    ck_assert(readable_while_busy(policy(_i), WPOOL_MAX_COALESCE_US, 0, true, NULL));
}
END_TEST

/* Several workers and a stream of submits through the owner's loop: every
 * completion exactly once, none stranded (a held signal never released would
 * hang the poll, which the timeout fails). */
START_TEST(test_coalesce_stream_exactly_once)
{
    enum { N = 20000, WINDOW = 512 };
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 3;
    o.dispatch = policy(_i);
    o.queue_capacity = 1024;
    o.coalesce_us = 200;
    wpool_t *pool = make_pool_opts(&o);
    struct job *jobs = calloc(N, sizeof(*jobs));
    int submitted = 0, done = 0;
    while (done < N) {
        while (submitted < N && submitted - done < WINDOW) {
            job_init(&jobs[submitted], submitted);
            jobs[submitted].spin_us = submitted % 7 == 0;
            /* Half the slots are free, but a worker preempted between taking
             * a cell and freeing it keeps that one busy: -EAGAIN is allowed
             * (dispatch, then go on), anything else is not. */
            int rc = wpool_submit(pool, &jobs[submitted].task);
            if (rc == -EAGAIN && submitted > done)
                break;
            ck_assert_int_eq(rc, 0);
            submitted++;
        }
        ck_assert(fd_readable(wpool_fd(pool), -1));
        int ran = wpool_dispatch(pool, UINT_MAX);
        ck_assert_int_ge(ran, 0);
        done += ran;
    }
    ck_assert_int_eq(done, N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(jobs[i].done_calls, 1);
        ck_assert_int_eq(jobs[i].status, i);
    }
    ck_assert_int_eq(drain_all(pool), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    free(jobs);
}
END_TEST

/* ---- deadlines ------------------------------------------------------------------ */

START_TEST(test_deadlines)
{
    wpool_t *pool = make_pool(1, policy(_i), 16);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job blocker, late, early, none;
    hold_worker(pool, &blocker, &g, &started);
    uint64_t now = wpool_now_ns();
    job_init(&late, 1);
    ck_assert_int_eq(wpool_task_set_deadline(&late.task, now), 0); /* passes while queued */
    job_init(&early, 2);
    ck_assert_int_eq(wpool_task_set_deadline(&early.task, now + 3600u * 1000000000ull), 0);
    job_init(&none, 3);
    ck_assert_int_eq(wpool_submit(pool, &late.task), 0);
    ck_assert_int_eq(wpool_submit(pool, &early.task), 0);
    ck_assert_int_eq(wpool_submit(pool, &none.task), 0);
    ck_assert_int_eq(wpool_task_set_deadline(&late.task, 0), -EBUSY);
    ck_assert_int_eq(wpool_task_set_deadline(NULL, 0), -EINVAL);
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 4);
    ck_assert_int_eq(late.status, -ETIMEDOUT);
    ck_assert_int_eq(atomic_load(&late.ran), 0);
    ck_assert_int_eq(early.status, 2);
    ck_assert_int_eq(none.status, 3);
    struct wpool_statistics st;
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.timed_out, 1);
    ck_assert_uint_eq(st.completed, 3);
    /* The deadline is kept across submissions until changed. */
    ck_assert_int_eq(wpool_submit(pool, &late.task), 0);
    ck_assert_int_eq(drain_all(pool), 1);
    ck_assert_int_eq(late.status, -ETIMEDOUT);
    ck_assert_int_eq(wpool_task_set_deadline(&late.task, 0), 0);
    ck_assert_int_eq(wpool_submit(pool, &late.task), 0);
    ck_assert_int_eq(drain_all(pool), 1);
    ck_assert_int_eq(late.status, 1);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* ---- priorities ------------------------------------------------------------------ */

START_TEST(test_priorities_and_starvation_rule)
{
    enum { NN = 20, NH = 20 };
    wpool_t *pool = make_pool(1, policy(_i), 64);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job blocker, jobs[NN + NH];
    int order[NN + NH];
    atomic_int order_n = 0;
    hold_worker(pool, &blocker, &g, &started);
    ck_assert_int_eq(wpool_task_set_priority(&blocker.task, 2), -EBUSY);
    for (int i = 0; i < NN + NH; i++) {
        job_init(&jobs[i], i); /* ids < NN: normal, submitted first */
        jobs[i].order = order;
        jobs[i].order_n = &order_n;
        if (i >= NN)
            ck_assert_int_eq(wpool_task_set_priority(&jobs[i].task, WPOOL_PRIORITY_HIGH), 0);
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    }
    struct job bad;
    job_init(&bad, 0);
    ck_assert_int_eq(wpool_task_set_priority(&bad.task, 2), -EINVAL);
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), NN + NH + 1);
    ck_assert_int_eq(atomic_load(&order_n), NN + NH);
    /* Expected: WPOOL_HIGH_BURST high, one normal, and so on; FIFO per lane. */
    int next_n = 0, next_h = NN, streak = 0;
    for (int k = 0; k < NN + NH; k++) {
        int want;
        if (next_h < NN + NH && (streak < (int)WPOOL_HIGH_BURST || next_n >= NN)) {
            want = next_h++;
            streak++;
        } else {
            want = next_n++;
            streak = 0;
        }
        ck_assert_int_eq(order[k], want);
    }
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* ---- statistics ------------------------------------------------------------------- */

START_TEST(test_stats)
{
    enum { N = 200, SPIN = 300 };
    wpool_t *pool = make_pool(2, policy(_i), 256);
    struct wpool_statistics st;
    ck_assert_int_eq(wpool_stats(NULL, &st), -EINVAL);
    ck_assert_int_eq(wpool_stats(pool, NULL), -EINVAL);
    ck_assert_int_eq(wpool_stats_reset(NULL), -EINVAL);
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.threads, 2);
    ck_assert_uint_eq(st.submitted, 0);
    ck_assert_uint_eq(st.run.count, 0);
    ck_assert_int_eq(st.timing, 1);

    /* Both workers held, three more queued. */
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job b1, b2, q[3];
    hold_worker(pool, &b1, &g, &started);
    hold_worker(pool, &b2, &g, &started);
    for (int i = 0; i < 3; i++) {
        job_init(&q[i], i);
        ck_assert_int_eq(wpool_submit(pool, &q[i].task), 0);
    }
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.running, 2);
    ck_assert_uint_eq(st.idle, 0);
    ck_assert_uint_eq(st.queued, 3);
    ck_assert_uint_eq(st.submitted, 5);
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 5);

    ck_assert_int_eq(wpool_stats_reset(pool), 0);
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.run.count, 0);
    ck_assert_uint_eq(st.completed, 5); /* totals are not reset */

    struct job *jobs = calloc(N, sizeof(*jobs));
    for (int i = 0; i < N; i++) {
        job_init(&jobs[i], i);
        jobs[i].spin_us = SPIN;
    }
    uint64_t submit_start = wpool_now_ns();
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    uint64_t submit_us = (wpool_now_ns() - submit_start) / 1000 + 1;
    ck_assert_int_eq(drain_all(pool), N);
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.completed, N + 5);
    ck_assert_uint_eq(st.submitted, N + 5);
    ck_assert_uint_eq(st.queued, 0);
    ck_assert_uint_eq(st.running, 0);
    ck_assert_uint_eq(st.idle, 2);
    ck_assert_uint_eq(st.run.count, N);
    ck_assert_uint_eq(st.wait.count, N);
    /* Every task spun SPIN us of CLOCK_MONOTONIC time, so each run is at
     * least that long; the histograms count TSC ticks converted at a rate
     * estimated over the pool's life, so allow that estimate 5%. */
    ck_assert_uint_ge(st.run.p50_us * 100, SPIN * 95);
    ck_assert_uint_le(st.run.p50_us, st.run.p90_us);
    ck_assert_uint_le(st.run.p90_us, st.run.p99_us);
    ck_assert_uint_le(st.run.p99_us, st.run.p999_us);
    ck_assert_uint_le(st.run.p999_us, st.run.max_us);
    ck_assert(st.run.mean_us >= SPIN * 0.95);
    /* Queued behind each other: the last waited for most of the run, less
     * the time it took to submit them all (its clock started last). */
    uint64_t least = (uint64_t)SPIN * (N / 2 - 1);
    ck_assert_uint_ge(st.wait.max_us * 100, (least > submit_us ? least - submit_us : 0) * 95);
    ck_assert(st.utilization > 0.0 && st.utilization <= 1.0);
    ck_assert_int_eq(wpool_destroy(pool), 0);

    /* Timing off: the counters still count, no histograms. */
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 1;
    o.timing = 0;
    pool = make_pool_opts(&o);
    for (int i = 0; i < 10; i++) {
        job_init(&jobs[i], i);
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    }
    ck_assert_int_eq(drain_all(pool), 10);
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.completed, 10);
    ck_assert_uint_eq(st.run.count, 0);
    ck_assert_int_eq(st.timing, 0);
    ck_assert(st.utilization == 0.0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    free(jobs);
    gate_fini(&g);
}
END_TEST

/* ---- worker hooks and identity ------------------------------------------------------- */

struct hooks {
    atomic_int started, stopped;
    atomic_uint start_mask, stop_mask;
    atomic_int bad;
};

static void hook_start(void *arg, unsigned index)
{
    struct hooks *h = arg;
    if (wpool_worker_index() != (int)index)
        atomic_store(&h->bad, 1);
    atomic_fetch_or(&h->start_mask, 1u << index);
    atomic_fetch_add(&h->started, 1);
}

static void hook_stop(void *arg, unsigned index)
{
    struct hooks *h = arg;
    atomic_fetch_or(&h->stop_mask, 1u << index);
    atomic_fetch_add(&h->stopped, 1);
}

struct probe {
    struct wpool_task task;
    int index;
    size_t stack;
    int nice;
};

static int probe_work(struct wpool_task *t)
{
    struct probe *p = (struct probe *)t;
    p->index = wpool_worker_index();
    pthread_attr_t attr;
    pthread_getattr_np(pthread_self(), &attr);
    pthread_attr_getstacksize(&attr, &p->stack);
    pthread_attr_destroy(&attr);
    errno = 0;
    p->nice = getpriority(PRIO_PROCESS, (id_t)gettid());
    return 0;
}

static void probe_done(struct wpool_task *t, int status)
{
    (void)t;
    ck_assert_int_eq(status, 0);
}

START_TEST(test_hooks_identity_stack_nice)
{
    enum { T = 3 };
    struct hooks h = {0};
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = T;
    o.dispatch = policy(_i);
    o.on_worker_start = hook_start;
    o.on_worker_stop = hook_stop;
    o.hook_arg = &h;
    o.stack_size = 256 * 1024;
    o.nice = 3;
    errno = 0;
    int base_nice = getpriority(PRIO_PROCESS, (id_t)gettid());
    ck_assert_int_eq(wpool_worker_index(), -1);
    wpool_t *pool = make_pool_opts(&o);
    /* Every start hook ran before wpool_create returned. */
    ck_assert_int_eq(atomic_load(&h.started), T);
    ck_assert_uint_eq(atomic_load(&h.start_mask), (1u << T) - 1);
    ck_assert_int_eq(atomic_load(&h.stopped), 0);
    struct probe p[16];
    for (int i = 0; i < 16; i++) {
        memset(&p[i], 0, sizeof(p[i]));
        p[i].index = -2;
        ck_assert_int_eq(wpool_task_init(&p[i].task, probe_work, probe_done), 0);
        ck_assert_int_eq(wpool_submit(pool, &p[i].task), 0);
    }
    ck_assert_int_eq(drain_all(pool), 16);
    for (int i = 0; i < 16; i++) {
        ck_assert_int_ge(p[i].index, 0);
        ck_assert_int_lt(p[i].index, T);
        ck_assert_uint_ge(p[i].stack, o.stack_size);
        ck_assert_uint_lt(p[i].stack, 1024 * 1024); /* not the 8 MiB default */
        ck_assert_int_eq(p[i].nice, base_nice + 3 > 19 ? 19 : base_nice + 3);
    }
    ck_assert_int_eq(wpool_worker_index(), -1); /* the owner is no worker */
    ck_assert_int_eq(wpool_destroy(pool), 0);
    ck_assert_int_eq(atomic_load(&h.stopped), T);
    ck_assert_uint_eq(atomic_load(&h.stop_mask), (1u << T) - 1);
    ck_assert_int_eq(atomic_load(&h.bad), 0);
}
END_TEST

START_TEST(test_new_options_validated)
{
    wpool_t *pool = NULL;
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    struct wpool_options d;
    wpool_options_init(&d);
    ck_assert_int_eq(memcmp(&o, &d, sizeof(o)), 0); /* macro == function */
    o.threads = 1;
    o.stack_size = 1024; /* below PTHREAD_STACK_MIN */
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL);
    o.stack_size = 0;
    o.nice = 20;
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL);
    o.nice = -21;
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL);
    o.nice = 0;
    o.timing = 2;
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL);
    o.timing = 1;
    o.drain_low_water = 4; /* needs a max_queue */
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL);
    o.max_queue = 4; /* low water must be below it */
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL);
    o.drain_low_water = 3;
    o.queue_capacity = 2;
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL); /* above the capacity */
    o.queue_capacity = 4;
    ck_assert_int_eq(wpool_create(&pool, &o), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    o.reserved[2] = 1;
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL);
    o.reserved[2] = 0;
    o.reserved_int = 1;
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL);
    o.reserved_int = 0;
    o.coalesce_us = WPOOL_MAX_COALESCE_US + 1;
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL);
    o.coalesce_us = WPOOL_MAX_COALESCE_US;
    ck_assert_int_eq(wpool_create(&pool, &o), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* A destroyed port's handle stays safe to pass: every call on it says -EINVAL
 * (its memory is kept until the pool is destroyed). */
START_TEST(test_destroyed_port_handle)
{
    wpool_t *pool = make_pool(1, policy(_i), 16);
    wpool_port_t *port;
    ck_assert_int_eq(wpool_port_create(pool, &port), 0);
    ck_assert_int_ge(wpool_port_fd(port), 0);
    ck_assert_int_eq(wpool_port_destroy(port), 0);
    ck_assert_int_eq(wpool_port_fd(port), -EINVAL);
    ck_assert_int_eq(wpool_port_dispatch(port, 1), -EINVAL);
    ck_assert_int_eq(wpool_port_wait(port, 0), -EINVAL);
    ck_assert_int_eq(wpool_port_drain(port, 0), -EINVAL);
    ck_assert_int_eq(wpool_port_destroy(port), -EINVAL);
    ck_assert_int_eq(wpool_on_drain(pool, port, on_drain_count, &g_drains), -EINVAL);
    struct job j;
    job_init(&j, 4);
    ck_assert_int_eq(wpool_task_set_port(&j.task, port), 0);
    ck_assert_int_eq(wpool_submit(pool, &j.task), -EINVAL); /* nothing queued */
    ck_assert_int_eq(wpool_task_set_port(&j.task, NULL), 0);
    ck_assert_int_eq(wpool_submit(pool, &j.task), 0);
    ck_assert_int_eq(drain_all(pool), 1);
    ck_assert_int_eq(j.status, 4);
    ck_assert_int_eq(wpool_destroy(pool), 0); /* frees the dead port too */
}
END_TEST

/* ---- fork policy ------------------------------------------------------------------ */

START_TEST(test_fork_child_gets_eownerdead)
{
    wpool_t *pool = make_pool(2, policy(_i), 16);
    wpool_token_t *tok;
    ck_assert_int_eq(wpool_token_create(&tok), 0);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job b1, b2, queued, fresh;
    hold_worker(pool, &b1, &g, &started);
    hold_worker(pool, &b2, &g, &started);
    job_init(&queued, 5);
    ck_assert_int_eq(wpool_submit(pool, &queued.task), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* The child: the pool's threads are not here. */
        int bad = 0;
        job_init(&fresh, 1);
        bad |= wpool_submit(pool, &fresh.task) != -EOWNERDEAD;
        bad |= wpool_cancel(&queued.task) != -EOWNERDEAD;
        bad |= wpool_cancel_all(pool) != -EOWNERDEAD;
        bad |= wpool_dispatch(pool, 1) != -EOWNERDEAD;
        bad |= wpool_close(pool) != -EOWNERDEAD;
        bad |= wpool_token_cancel(tok) != -EOWNERDEAD;
        struct wpool_statistics st;
        bad |= wpool_stats(pool, &st) != -EOWNERDEAD;
        bad |= wpool_destroy(pool) != 0; /* frees the copy */
        bad |= wpool_token_destroy(tok) != 0;
        /* A pool made in the child works. */
        wpool_t *mine = NULL;
        struct wpool_options o = WPOOL_OPTIONS_INIT;
        o.threads = 1;
        bad |= wpool_create(&mine, &o) != 0;
        job_init(&fresh, 8);
        bad |= wpool_submit(mine, &fresh.task) != 0;
        bad |= wpool_port_drain(wpool_default_port(mine), -1) != 1;
        bad |= fresh.status != 8;
        bad |= wpool_destroy(mine) != 0;
        _exit(bad ? 1 : 0);
    }
    int wstatus = 0;
    ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
    ck_assert(WIFEXITED(wstatus));
    ck_assert_int_eq(WEXITSTATUS(wstatus), 0);
    /* The parent's pool is untouched by the fork. */
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 3);
    ck_assert_int_eq(queued.status, 5);
    ck_assert_int_eq(queued.done_calls, 1);
    ck_assert_int_eq(wpool_token_destroy(tok), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

static Suite *features_suite(void)
{
    Suite *s = suite_create("features");
    TCase *tc = tcase_create("features");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_token_cancels_queued, 0, 2);
    tcase_add_loop_test(tc, test_token_flag_stops_running_work, 0, 2);
    tcase_add_loop_test(tc, test_cancel_all, 0, 2);
    tcase_add_loop_test(tc, test_shutdown_timeout_then_cancel, 0, 2);
    tcase_add_loop_test(tc, test_shutdown_modes, 0, 2);
    tcase_add_loop_test(tc, test_max_queue_and_drain, 0, 2);
    tcase_add_loop_test(tc, test_max_queue_zero, 0, 2);
    tcase_add_loop_test(tc, test_submit_wait_blocks_until_room, 0, 2);
    tcase_add_loop_test(tc, test_drain_never_lost, 0, 2);
    tcase_add_loop_test(tc, test_submit_batch, 0, 2);
    tcase_add_loop_test(tc, test_batch_runs_everything, 0, 2);
    tcase_add_loop_test(tc, test_coalesce_holds_signal_while_work_waits, 0, 2);
    tcase_add_loop_test(tc, test_coalesce_window_expires, 0, 2);
    tcase_add_loop_test(tc, test_coalesce_only_default_port, 0, 2);
    tcase_add_loop_test(tc, test_coalesce_stream_exactly_once, 0, 2);
    tcase_add_loop_test(tc, test_deadlines, 0, 2);
    tcase_add_loop_test(tc, test_priorities_and_starvation_rule, 0, 2);
    tcase_add_loop_test(tc, test_stats, 0, 2);
    tcase_add_loop_test(tc, test_hooks_identity_stack_nice, 0, 2);
    tcase_add_test(tc, test_new_options_validated);
    tcase_add_loop_test(tc, test_destroyed_port_handle, 0, 2);
    tcase_add_loop_test(tc, test_fork_child_gets_eownerdead, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(features_suite());
}
