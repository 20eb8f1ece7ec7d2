/* SPDX-License-Identifier: MIT */
/* api suite: submit, cancel, full queues, completion threads, ports and
 * coalescing. Black-box: only the public header. */
#include "../common/helpers.h"
#include <wpool.h>

#include <check.h>
#include "../common/fastcheck.h"
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

static pthread_t g_owner;

struct job {
    struct wpool_task task;
    int id;
    atomic_int ran;
    pthread_t worker;   /* thread that ran work */
    pthread_t finisher; /* thread that ran done */
    int status;
    int done_calls;
    struct gate *gate;
    atomic_int *started;
};

static int job_work(struct wpool_task *t)
{
    struct job *j = (struct job *)t;
    j->worker = pthread_self();
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
    j->finisher = pthread_self();
    j->status = status;
    j->done_calls++;
}

static void job_init(struct job *j, int id)
{
    memset(j, 0, sizeof(*j));
    j->id = id;
    ck_assert_int_eq(wpool_task_init(&j->task, job_work, job_done), 0);
}

static wpool_t *make_pool_bounded(unsigned threads, int dispatch, unsigned cap, unsigned bounded)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = threads;
    o.placement = dispatch;
    o.queue_capacity = cap;
    o.bounded = bounded;
    wpool_t *pool = NULL;
    ck_assert_int_eq(wpool_create(&pool, &o), 0);
    g_owner = pthread_self();
    return pool;
}

static wpool_t *make_pool(unsigned threads, int dispatch, unsigned cap)
{
    return make_pool_bounded(threads, dispatch, cap, 0);
}

static int policy(int i)
{
    return i ? WPOOL_ROUND_ROBIN : WPOOL_FIRST_FREE;
}

START_TEST(test_submit_and_dispatch)
{
    enum { N = 5000 };
    wpool_t *pool = make_pool(3, policy(_i), 8192);
    struct job *jobs = calloc(N, sizeof(*jobs));
    for (int i = 0; i < N; i++) {
        job_init(&jobs[i], i);
        jobs[i].task.data = &jobs[i];
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    }
    int total = 0;
    while (total < N) {
        ck_assert_int_eq(wpool_port_wait(wpool_default_port(pool), -1), 0);
        int rc = wpool_dispatch(pool, 100);
        ck_assert_int_ge(rc, 0);
        ck_assert_int_le(rc, 100);
        total += rc;
    }
    ck_assert_int_eq(total, N);
    ck_assert_int_eq(wpool_dispatch(pool, 1), 0);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(jobs[i].done_calls, 1);
        ck_assert_int_eq(jobs[i].status, i);
        ck_assert_int_eq(atomic_load(&jobs[i].ran), 1);
        ck_assert_ptr_eq(jobs[i].task.data, &jobs[i]); /* untouched */
        ck_assert(pthread_equal(jobs[i].finisher, g_owner));
        ck_assert(!pthread_equal(jobs[i].worker, g_owner));
    }
    ck_assert_int_eq(wpool_destroy(pool), 0);
    free(jobs);
}
END_TEST

START_TEST(test_double_submit_busy)
{
    wpool_t *pool = make_pool(1, policy(_i), 16);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job j;
    job_init(&j, 5);
    j.gate = &g;
    j.started = &started;
    ck_assert_int_eq(wpool_submit(pool, &j.task), 0);
    ck_assert_int_eq(wpool_submit(pool, &j.task), -EBUSY);                  /* queued or running */
    ck_assert_int_eq(wpool_task_init(&j.task, job_work, job_done), -EBUSY); /* in flight */
    ck_assert_int_eq(wpool_task_set_port(&j.task, NULL), -EBUSY);
    gate_open(&g);
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), -1), 1);
    ck_assert_int_eq(j.done_calls, 1);
    /* Idle again: can be resubmitted. */
    j.gate = NULL;
    ck_assert_int_eq(wpool_submit(pool, &j.task), 0);
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), -1), 1);
    ck_assert_int_eq(j.done_calls, 2);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* One worker held in a blocker; capacity 4 per queue. */
START_TEST(test_full_queue_eagain)
{
    const unsigned cap = 4;
    wpool_t *pool = make_pool_bounded(1, policy(_i), cap, 1);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job blocker, q[4], extra;
    job_init(&blocker, 100);
    blocker.gate = &g;
    blocker.started = &started;
    ck_assert_int_eq(wpool_submit(pool, &blocker.task), 0);
    while (atomic_load(&started) == 0)
        sched_yield();
    for (unsigned i = 0; i < cap; i++) {
        job_init(&q[i], (int)i);
        ck_assert_int_eq(wpool_submit(pool, &q[i].task), 0);
    }
    job_init(&extra, 42);
    for (int tries = 0; tries < 3; tries++)
        ck_assert_int_eq(wpool_submit(pool, &extra.task), -EAGAIN);
    /* Refused: not in flight, can be cancelled? No: not queued. */
    ck_assert_int_eq(wpool_cancel(&extra.task), -EBUSY);
    /* Cancelling a queued task frees its slot for a new submission. */
    ck_assert_int_eq(wpool_cancel(&q[0].task), 0);
    ck_assert_int_eq(wpool_submit(pool, &extra.task), 0);
    gate_open(&g);
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), -1), (int)cap + 2);
    ck_assert_int_eq(q[0].status, -ECANCELED);
    ck_assert_int_eq(atomic_load(&q[0].ran), 0);
    for (unsigned i = 1; i < cap; i++)
        ck_assert_int_eq(q[i].status, (int)i);
    ck_assert_int_eq(extra.status, 42);
    ck_assert_int_eq(extra.done_calls, 1);
    ck_assert_int_eq(blocker.status, 100);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

START_TEST(test_cancel_queued)
{
    enum { N = 40 };
    wpool_t *pool = make_pool(1, policy(_i), 64);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job blocker, jobs[N], never;
    job_init(&blocker, 100);
    blocker.gate = &g;
    blocker.started = &started;
    ck_assert_int_eq(wpool_submit(pool, &blocker.task), 0);
    while (atomic_load(&started) == 0)
        sched_yield();
    for (int i = 0; i < N; i++) {
        job_init(&jobs[i], i);
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    }
    job_init(&never, 9);
    ck_assert_int_eq(wpool_cancel(&never.task), -EBUSY);   /* never submitted */
    ck_assert_int_eq(wpool_cancel(&blocker.task), -EBUSY); /* running */
    for (int i = 0; i < N; i += 2)
        ck_assert_int_eq(wpool_cancel(&jobs[i].task), 0);
    for (int i = 0; i < N; i += 2)
        ck_assert_int_eq(wpool_cancel(&jobs[i].task), -EBUSY); /* already cancelled */
    /* Cancelled completions arrive promptly, while the worker is still held. */
    int got = 0;
    while (got < N / 2) {
        ck_assert_int_eq(wpool_port_wait(wpool_default_port(pool), -1), 0);
        got += wpool_dispatch(pool, 1000);
    }
    ck_assert_int_eq(got, N / 2);
    for (int i = 0; i < N; i += 2) {
        ck_assert_int_eq(jobs[i].done_calls, 1);
        ck_assert_int_eq(jobs[i].status, -ECANCELED);
        ck_assert(pthread_equal(jobs[i].finisher, g_owner));
    }
    gate_open(&g);
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), -1), N / 2 + 1);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(jobs[i].done_calls, 1);
        ck_assert_int_eq(atomic_load(&jobs[i].ran), i % 2);
        ck_assert_int_eq(jobs[i].status, i % 2 ? i : -ECANCELED);
    }
    ck_assert_int_eq(wpool_cancel(&jobs[1].task), -EBUSY); /* completed */
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* A canceller thread races the workers; each completion must agree with what
 * cancel returned. Rounds alternate between a canceller that goes at once and
 * one that yields a varying number of times first, and go on until both
 * outcomes (a cancel that won, a task that ran) have been seen: on some
 * machines one round gives only one of them. */
struct race {
    struct job *jobs;
    int n;
    int *cancel_rc;
    int lag; /* 0: cancel at once; else yield up to lag times first */
    atomic_int submitted;
};

static void *canceller(void *arg)
{
    struct race *r = arg;
    unsigned int seed = 12345u;
    for (int i = 0; i < r->n; i++) {
        while (atomic_load(&r->submitted) <= i)
            sched_yield();
        if (r->lag) {
            seed = seed * 1103515245u + 12345u;
            for (int k = (int)((seed >> 16) % (unsigned int)r->lag); k > 0; k--)
                sched_yield();
        }
        r->cancel_rc[i] = wpool_cancel(&r->jobs[i].task);
    }
    return NULL;
}

/* One round; returns how many cancels won (the rest ran). */
static int cancel_race_round(int dispatch, int n, int lag)
{
    wpool_t *pool = make_pool(2, dispatch, 32768);
    struct race r = {.jobs = calloc((size_t)n, sizeof(struct job)),
                     .n = n,
                     .cancel_rc = calloc((size_t)n, sizeof(int)),
                     .lag = lag};
    atomic_init(&r.submitted, 0);
    pthread_t th;
    pthread_create(&th, NULL, canceller, &r);
    for (int i = 0; i < n; i++) {
        job_init(&r.jobs[i], i);
        ck_assert_int_eq(wpool_submit(pool, &r.jobs[i].task), 0);
        atomic_store(&r.submitted, i + 1);
    }
    pthread_join(th, NULL);
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), -1), n);
    int cancelled = 0;
    for (int i = 0; i < n; i++) {
        struct job *j = &r.jobs[i];
        ck_assert_int_eq(j->done_calls, 1);
        if (r.cancel_rc[i] == 0) {
            cancelled++;
            ck_assert_int_eq(j->status, -ECANCELED);
            ck_assert_int_eq(atomic_load(&j->ran), 0);
        } else {
            ck_assert_int_eq(r.cancel_rc[i], -EBUSY);
            ck_assert_int_eq(j->status, i);
            ck_assert_int_eq(atomic_load(&j->ran), 1);
        }
    }
    ck_assert_int_eq(wpool_destroy(pool), 0);
    free(r.jobs);
    free(r.cancel_rc);
    return cancelled;
}

START_TEST(test_cancel_race)
{
    enum { N = 5000, ROUNDS = 24 };
    int won = 0, ran = 0, round = 0;
    for (; round < ROUNDS && (won == 0 || ran == 0); round++) {
        int c = cancel_race_round(policy(_i), N, round % 2 ? 8 << (round / 2 % 4) : 0);
        won += c;
        ran += N - c;
    }
    /* Both outcomes must occur, or the test says nothing about the race. */
    ck_assert_msg(won > 0 && ran > 0, "after %d rounds: %d cancels won, %d tasks ran", round, won,
                  ran);
}
END_TEST

/* Many submitting threads; completions all on the owner. */
struct producer {
    wpool_t *pool;
    struct job *jobs;
    int n;
};

static void *produce(void *arg)
{
    struct producer *p = arg;
    for (int i = 0; i < p->n; i++) {
        int rc;
        while ((rc = wpool_submit(p->pool, &p->jobs[i].task)) == -EAGAIN)
            sched_yield(); /* queue full: the owner is draining */
        ck_assert_int_eq(rc, 0);
    }
    return NULL;
}

START_TEST(test_submit_from_many_threads)
{
    enum { THREADS = 8, PER = 5000 };
    wpool_t *pool = make_pool(2, policy(_i), 1024);
    struct job *jobs = calloc(THREADS * PER, sizeof(*jobs));
    for (int i = 0; i < THREADS * PER; i++)
        job_init(&jobs[i], i);
    pthread_t th[THREADS];
    struct producer p[THREADS];
    for (int t = 0; t < THREADS; t++) {
        p[t] = (struct producer){pool, jobs + t * PER, PER};
        pthread_create(&th[t], NULL, produce, &p[t]);
    }
    int total = 0;
    while (total < THREADS * PER) {
        int rc = wpool_port_wait(wpool_default_port(pool), -1);
        ck_assert_int_eq(rc, 0);
        total += wpool_dispatch(pool, 256);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    for (int i = 0; i < THREADS * PER; i++) {
        ck_assert_int_eq(jobs[i].done_calls, 1);
        ck_assert_int_eq(jobs[i].status, i);
        ck_assert(pthread_equal(jobs[i].finisher, g_owner));
    }
    ck_assert_int_eq(wpool_destroy(pool), 0);
    free(jobs);
}
END_TEST

/* A task submits its follow-up from inside its work (message-channel style). */
struct chain {
    struct wpool_task task;
    wpool_t *pool;
    struct chain *next;
    int submit_rc;
    int done_calls;
};

static int chain_work(struct wpool_task *t)
{
    struct chain *c = (struct chain *)t;
    c->submit_rc = c->next ? wpool_submit(c->pool, &c->next->task) : 0;
    return 0;
}

static void chain_done(struct wpool_task *t, int status)
{
    ((struct chain *)t)->done_calls++;
}

START_TEST(test_submit_from_inside_tasks)
{
    enum { N = 2000 };
    wpool_t *pool = make_pool(2, policy(_i), 64);
    struct chain *c = calloc(N, sizeof(*c));
    for (int i = 0; i < N; i++) {
        wpool_task_init(&c[i].task, chain_work, chain_done);
        c[i].pool = pool;
        c[i].next = i + 1 < N ? &c[i + 1] : NULL;
    }
    ck_assert_int_eq(wpool_submit(pool, &c[0].task), 0);
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), -1), N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(c[i].done_calls, 1);
        ck_assert_int_eq(c[i].submit_rc, 0);
    }
    ck_assert_int_eq(wpool_destroy(pool), 0);
    free(c);
}
END_TEST

/* A completion callback resubmits its own task. */
static wpool_t *g_pool;
static int g_rounds;

static int nop_work(struct wpool_task *t)
{
    return 0;
}

static void resubmit_done(struct wpool_task *t, int status)
{
    if (++g_rounds < 500)
        ck_assert_int_eq(wpool_submit(g_pool, t), 0);
}

START_TEST(test_resubmit_from_completion)
{
    g_pool = make_pool(2, policy(_i), 8);
    struct wpool_task t = {0};
    wpool_task_init(&t, nop_work, resubmit_done);
    g_rounds = 0;
    ck_assert_int_eq(wpool_submit(g_pool, &t), 0);
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(g_pool), -1), 500);
    ck_assert_int_eq(g_rounds, 500);
    ck_assert_int_eq(wpool_destroy(g_pool), 0);
}
END_TEST

/* 100k completions posted while the owner is not looking cost one eventfd
 * write: the counter reads 1. */
static int g_counted;

static void count_done(struct wpool_task *t, int status)
{
    g_counted++;
}

START_TEST(test_completion_coalescing)
{
    enum { N = 100000 };
    wpool_t *pool = make_pool(2, policy(_i), 131072);
    struct wpool_task *t = calloc(N, sizeof(*t));
    for (int i = 0; i < N; i++) {
        wpool_task_init(&t[i], nop_work, count_done);
        ck_assert_int_eq(wpool_submit(pool, &t[i]), 0);
    }
    ck_assert_int_eq(wpool_close(pool), 0); /* all ran, all posted */
    uint64_t writes = 0;
    ck_assert_int_eq(read(wpool_fd(pool), &writes, sizeof(writes)), (ssize_t)sizeof(writes));
    ck_assert_uint_eq(writes, 1);
    g_counted = 0;
    ck_assert_int_eq(wpool_dispatch(pool, UINT32_MAX), N);
    ck_assert_int_eq(g_counted, N);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    free(t);
}
END_TEST

/* An epoll owner counts its wakeups while 100k tasks stream through. */
START_TEST(test_coalescing_under_epoll)
{
    enum { N = 100000 };
    wpool_t *pool = make_pool(2, policy(_i), 1024);
    struct wpool_task *t = calloc(N, sizeof(*t));
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = wpool_fd(pool)};
    ck_assert_int_eq(epoll_ctl(ep, EPOLL_CTL_ADD, wpool_fd(pool), &ev), 0);
    int submitted = 0, completed = 0, wakeups = 0;
    g_counted = 0;
    while (completed < N) {
        while (submitted < N) {
            wpool_task_init(&t[submitted], nop_work, count_done);
            int rc = wpool_submit(pool, &t[submitted]);
            if (rc == -EAGAIN)
                break;
            ck_assert_int_eq(rc, 0);
            submitted++;
        }
        ck_assert_int_eq(epoll_wait(ep, &ev, 1, -1), 1);
        wakeups++;
        int rc = wpool_dispatch(pool, UINT32_MAX);
        ck_assert_int_ge(rc, 0);
        completed += rc;
    }
    ck_assert_int_eq(completed, N);
    ck_assert_int_eq(g_counted, N);
    /* Each wakeup delivers a batch: far fewer wakeups than completions. */
    ck_assert_int_lt(wakeups, N / 4);
    close(ep);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    free(t);
}
END_TEST

/* Completions run on the owner of the port each task was sent to. */
struct loop_thread {
    wpool_t *pool;
    wpool_port_t *port;
    struct job *jobs;
    int n;
    pthread_t self;
};

static void *own_loop(void *arg)
{
    struct loop_thread *l = arg;
    l->self = pthread_self();
    ck_assert_int_eq(wpool_port_create(l->pool, &l->port), 0);
    for (int i = 0; i < l->n; i++) {
        ck_assert_int_eq(wpool_task_set_port(&l->jobs[i].task, l->port), 0);
        int rc;
        while ((rc = wpool_submit(l->pool, &l->jobs[i].task)) == -EAGAIN)
            wpool_port_dispatch(l->port, 64);
        ck_assert_int_eq(rc, 0);
    }
    wpool_port_settle(l->port, -1);
    ck_assert_int_eq(wpool_port_destroy(l->port), 0);
    return NULL;
}

START_TEST(test_ports_per_loop_thread)
{
    enum { LOOPS = 4, PER = 3000 };
    wpool_t *pool = make_pool(2, policy(_i), 256);
    struct job *jobs = calloc(LOOPS * PER, sizeof(*jobs));
    for (int i = 0; i < LOOPS * PER; i++)
        job_init(&jobs[i], i);
    struct loop_thread l[LOOPS];
    pthread_t th[LOOPS];
    for (int k = 0; k < LOOPS; k++) {
        l[k] = (struct loop_thread){.pool = pool, .jobs = jobs + k * PER, .n = PER};
        pthread_create(&th[k], NULL, own_loop, &l[k]);
    }
    for (int k = 0; k < LOOPS; k++)
        pthread_join(th[k], NULL);
    for (int k = 0; k < LOOPS; k++)
        for (int i = 0; i < PER; i++) {
            struct job *j = &l[k].jobs[i];
            ck_assert_int_eq(j->done_calls, 1);
            ck_assert_int_eq(j->status, k * PER + i);
            ck_assert(pthread_equal(j->finisher, l[k].self));
        }
    ck_assert_int_eq(wpool_destroy(pool), 0);
    free(jobs);
}
END_TEST

/* Only the owner may dispatch, wait, drain or destroy a port. */
struct foreign {
    wpool_port_t *port;
    wpool_t *pool;
    int rc_dispatch, rc_wait, rc_drain, rc_destroy, rc_pool_dispatch;
};

static void *foreign_thread(void *arg)
{
    struct foreign *f = arg;
    f->rc_dispatch = wpool_port_dispatch(f->port, 10);
    f->rc_wait = wpool_port_wait(f->port, 0);
    f->rc_drain = wpool_port_settle(f->port, 0);
    f->rc_destroy = wpool_port_destroy(f->port);
    f->rc_pool_dispatch = wpool_dispatch(f->pool, 10);
    return NULL;
}

START_TEST(test_port_ownership)
{
    wpool_t *pool = make_pool(1, policy(_i), 16);
    wpool_port_t *port;
    ck_assert_int_eq(wpool_port_create(pool, &port), 0);
    struct job j;
    job_init(&j, 3);
    ck_assert_int_eq(wpool_task_set_port(&j.task, port), 0);
    ck_assert_int_eq(wpool_submit(pool, &j.task), 0);
    ck_assert_int_eq(wpool_port_wait(port, -1), 0);
    struct foreign f = {.port = port, .pool = pool};
    pthread_t th;
    pthread_create(&th, NULL, foreign_thread, &f);
    pthread_join(th, NULL);
    ck_assert_int_eq(f.rc_dispatch, -EPERM);
    ck_assert_int_eq(f.rc_wait, -EPERM);
    ck_assert_int_eq(f.rc_drain, -EPERM);
    ck_assert_int_eq(f.rc_destroy, -EPERM);
    ck_assert_int_eq(f.rc_pool_dispatch, -EPERM);
    ck_assert_int_eq(j.done_calls, 0);                  /* nothing ran on the foreign thread */
    ck_assert_int_eq(wpool_port_destroy(port), -EBUSY); /* completion pending */
    ck_assert_int_eq(wpool_port_dispatch(port, 10), 1);
    ck_assert_int_eq(j.status, 3);
    ck_assert_int_eq(wpool_port_destroy(port), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

START_TEST(test_port_of_other_pool)
{
    wpool_t *a = make_pool(1, policy(_i), 16), *b = make_pool(1, policy(_i), 16);
    wpool_port_t *pb;
    ck_assert_int_eq(wpool_port_create(b, &pb), 0);
    struct job j;
    job_init(&j, 1);
    ck_assert_int_eq(wpool_task_set_port(&j.task, pb), 0);
    ck_assert_int_eq(wpool_submit(a, &j.task), -EINVAL);
    ck_assert_int_eq(wpool_task_set_port(&j.task, wpool_default_port(b)), 0);
    ck_assert_int_eq(wpool_submit(a, &j.task), -EINVAL);
    ck_assert_int_eq(wpool_submit(b, &j.task), 0);
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(b), -1), 1);
    ck_assert_int_eq(j.status, 1);
    ck_assert_int_eq(wpool_task_set_port(&j.task, NULL), 0); /* back to default */
    ck_assert_int_eq(wpool_submit(a, &j.task), 0);
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(a), -1), 1);
    ck_assert_int_eq(j.done_calls, 2);
    ck_assert_int_eq(wpool_destroy(a), 0);
    ck_assert_int_eq(wpool_close(b), 0);
    wpool_port_t *late;
    ck_assert_int_eq(wpool_port_create(b, &late), -ESHUTDOWN);
    wpool_destroy(b); /* also destroys pb */
}
END_TEST

START_TEST(test_wait_and_drain_timeouts)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 1;
    o.placement = policy(_i);
    o.queue_capacity = 16;
    o.coalesce_us = 0;
    wpool_t *pool = NULL;
    ck_assert_int_eq(wpool_create(&pool, &o), 0);
    g_owner = pthread_self();
    wpool_port_t *port = wpool_default_port(pool);
    ck_assert_int_eq(wpool_port_wait(port, 0), -ETIMEDOUT);
    ck_assert_int_eq(wpool_port_wait(port, 20), -ETIMEDOUT);
    ck_assert_int_eq(wpool_port_settle(port, 20), 0); /* nothing in flight */
    struct gate g;
    gate_init(&g);
    struct job j;
    job_init(&j, 8);
    j.gate = &g;
    ck_assert_int_eq(wpool_submit(pool, &j.task), 0);
    ck_assert_int_eq(wpool_port_settle(port, 20), -ETIMEDOUT); /* still running */
    ck_assert_int_eq(j.done_calls, 0);
    gate_open(&g);
    ck_assert_int_eq(wpool_port_wait(port, -1), 0);
    ck_assert_int_eq(wpool_port_settle(port, -1), 1);
    ck_assert_int_eq(j.status, 8);
    /* The fd is not left readable once everything is dispatched (the pool
     * signals at once: a held signal may land after the settle). */
    struct pollfd pfd = {.fd = wpool_fd(pool), .events = POLLIN};
    ck_assert_int_eq(poll(&pfd, 1, 0), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* A completion callback that submits a follow-up and drains its own port must
 * not wait for itself (regression: it counted its own task as in flight). */
static struct wpool_task g_follow;
static int g_nested_drain_rc = 1;

static void drain_inside_done(struct wpool_task *t, int status)
{
    ck_assert_int_eq(wpool_submit(g_pool, &g_follow), 0);
    g_nested_drain_rc = wpool_port_settle(wpool_default_port(g_pool), 10000);
}

START_TEST(test_drain_nested_in_callback)
{
    g_pool = make_pool(2, policy(_i), 16);
    struct wpool_task first = {0};
    wpool_task_init(&first, nop_work, drain_inside_done);
    wpool_task_init(&g_follow, nop_work, count_done);
    g_counted = 0;
    ck_assert_int_eq(wpool_submit(g_pool, &first), 0);
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(g_pool), 10000), 1);
    ck_assert_int_eq(g_nested_drain_rc, 1); /* ran the follow-up, no timeout */
    ck_assert_int_eq(g_counted, 1);
    ck_assert_int_eq(wpool_destroy(g_pool), 0);
}
END_TEST

/* A task that calls wpool_port_create while another thread closes the pool:
 * close must not hold the pool lock while it waits for the workers
 * (regression: deadlock). */
static atomic_int g_task_started;
static int g_port_create_rc = 1;
static struct wpool_task g_probe; /* outlives the task: its completion may be pending */

static int work_port_create_during_close(struct wpool_task *t)
{
    atomic_store(&g_task_started, 1);
    int rc;
    while ((rc = wpool_submit(g_pool, &g_probe)) != -ESHUTDOWN) /* until close began */
        sched_yield();
    wpool_port_t *port = NULL;
    g_port_create_rc = wpool_port_create(g_pool, &port);
    return 0;
}

START_TEST(test_port_create_from_task_during_close)
{
    g_pool = make_pool(2, policy(_i), 16);
    struct wpool_task t = {0};
    wpool_task_init(&t, work_port_create_during_close, count_done);
    wpool_task_init(&g_probe, nop_work, count_done);
    atomic_store(&g_task_started, 0);
    ck_assert_int_eq(wpool_submit(g_pool, &t), 0);
    while (!atomic_load(&g_task_started))
        sched_yield();
    ck_assert_int_eq(wpool_close(g_pool), 0);
    ck_assert_int_eq(g_port_create_rc, -ESHUTDOWN);
    ck_assert_int_eq(wpool_destroy(g_pool), 0);
}
END_TEST

static Suite *tasks_suite(void)
{
    Suite *s = suite_create("tasks");
    TCase *tc = tcase_create("tasks");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_submit_and_dispatch, 0, 2);
    tcase_add_loop_test(tc, test_double_submit_busy, 0, 2);
    tcase_add_loop_test(tc, test_full_queue_eagain, 0, 2);
    tcase_add_loop_test(tc, test_cancel_queued, 0, 2);
    tcase_add_loop_test(tc, test_cancel_race, 0, 2);
    tcase_add_loop_test(tc, test_submit_from_many_threads, 0, 2);
    tcase_add_loop_test(tc, test_submit_from_inside_tasks, 0, 2);
    tcase_add_loop_test(tc, test_resubmit_from_completion, 0, 2);
    tcase_add_loop_test(tc, test_completion_coalescing, 0, 2);
    tcase_add_loop_test(tc, test_coalescing_under_epoll, 0, 2);
    tcase_add_loop_test(tc, test_ports_per_loop_thread, 0, 2);
    tcase_add_loop_test(tc, test_port_ownership, 0, 2);
    tcase_add_loop_test(tc, test_port_of_other_pool, 0, 2);
    tcase_add_loop_test(tc, test_wait_and_drain_timeouts, 0, 2);
    tcase_add_loop_test(tc, test_drain_nested_in_callback, 0, 2);
    tcase_add_loop_test(tc, test_port_create_from_task_during_close, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(tasks_suite());
}
