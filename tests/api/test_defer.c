/* SPDX-License-Identifier: MIT */
/* api suite: deferred completion. A work function returns WPOOL_PENDING and
 * another thread (or the work function itself, before returning) finishes
 * the task with wpool_task_complete; its completion runs once, on its port,
 * with that status. Errors; cancel and tokens; shutdown with a timeout, close
 * and destroy waiting for pending tasks; groups; fork; statistics; and
 * thousands of tasks completed from several threads in random order, racing
 * the work functions' returns. Black-box: only the public header. */
#include <wpool.h>

#include <check.h>
#include "../common/fastcheck.h"
#include "../common/jobs.h"
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* A mailbox of pending tasks: the work functions put them in, completer
 * threads take them out (any one of them, at random). */
struct mailbox {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct wpool_task **items;
    int n, cap;
    int closed;
};

static void mailbox_init(struct mailbox *m, int cap)
{
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->cv, NULL);
    m->items = calloc((size_t)cap, sizeof(*m->items));
    ck_assert_ptr_nonnull(m->items);
    m->n = 0;
    m->cap = cap;
    m->closed = 0;
}

static void mailbox_fini(struct mailbox *m)
{
    free(m->items);
    pthread_mutex_destroy(&m->mu);
    pthread_cond_destroy(&m->cv);
}

static void mailbox_put(struct mailbox *m, struct wpool_task *t)
{
    pthread_mutex_lock(&m->mu);
    ck_assert_int_lt(m->n, m->cap);
    m->items[m->n++] = t;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

/* A random item, or NULL once the mailbox is closed and empty. */
static struct wpool_task *mailbox_take(struct mailbox *m, uint64_t *rng)
{
    pthread_mutex_lock(&m->mu);
    while (m->n == 0 && !m->closed)
        pthread_cond_wait(&m->cv, &m->mu);
    struct wpool_task *t = NULL;
    if (m->n) {
        int i = (int)(rng_next(rng) % (uint64_t)m->n);
        t = m->items[i];
        m->items[i] = m->items[--m->n];
    }
    pthread_mutex_unlock(&m->mu);
    return t;
}

static int mailbox_count(struct mailbox *m)
{
    pthread_mutex_lock(&m->mu);
    int n = m->n;
    pthread_mutex_unlock(&m->mu);
    return n;
}

static void mailbox_close(struct mailbox *m)
{
    pthread_mutex_lock(&m->mu);
    m->closed = 1;
    pthread_cond_broadcast(&m->cv);
    pthread_mutex_unlock(&m->mu);
}

/* A deferred job: its work puts it in the mailbox and returns WPOOL_PENDING. */
struct djob {
    struct job j; /* first: the task */
    struct mailbox *box;
    int self_complete; /* the work completes it itself first, with status id */
    int returns;       /* what the work returns (WPOOL_PENDING unless set) */
    atomic_int calls;  /* completion callbacks */
    pthread_t done_thread;
};

static int djob_work(struct wpool_task *t)
{
    struct djob *d = (struct djob *)t;
    atomic_fetch_add(&d->j.ran, 1);
    if (d->self_complete)
        ck_assert_int_eq(wpool_task_complete(t, d->j.id), 0);
    else if (d->box)
        mailbox_put(d->box, t);
    return d->returns;
}

static void djob_done(struct wpool_task *t, int status)
{
    struct djob *d = (struct djob *)t;
    d->j.status = status;
    d->done_thread = pthread_self();
    atomic_fetch_add(&d->calls, 1);
}

static void djob_init(struct djob *d, int id, struct mailbox *box)
{
    memset(d, 0, sizeof(*d));
    d->j.id = id;
    d->box = box;
    d->returns = WPOOL_PENDING;
    ck_assert_int_eq(wpool_task_init(&d->j.task, djob_work, djob_done), 0);
}

/* Runs the default port's completions until none is in flight; a hang is a
 * failure after 20 s, not a stall until the test's timeout. */
static int settle(wpool_t *pool)
{
    int n = wpool_port_settle(wpool_default_port(pool), 20000);
    ck_assert_int_ge(n, 0);
    return n;
}

static void wait_pending(wpool_t *pool, uint64_t want)
{
    struct wpool_statistics st;
    uint64_t end = wpool_now_ns() + 10000000000u;
    for (;;) {
        ck_assert_int_eq(wpool_stats(pool, &st), 0);
        if (st.pending == want)
            return;
        ck_assert_msg(wpool_now_ns() < end, "pending stuck at %llu, want %llu",
                      (unsigned long long)st.pending, (unsigned long long)want);
        sched_yield();
    }
}

/* Pending until another thread completes them; each completion runs once,
 * on the port's owner, with the completer's status; the errors. */
START_TEST(test_defer_basic)
{
    wpool_t *pool = make_pool(2, policy(_i), 64);
    struct mailbox box;
    mailbox_init(&box, 16);
    enum { N = 8 };
    struct djob d[N];
    for (int i = 0; i < N; i++) {
        djob_init(&d[i], i, &box);
        ck_assert_int_eq(wpool_submit(pool, &d[i].j.task), 0);
    }
    wait_pending(pool, N);
    struct wpool_statistics st;
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.deferred, N);
    ck_assert_uint_eq(st.completed, 0);
    ck_assert_uint_eq(st.queued, 0);
    ck_assert_uint_eq(st.running, 0); /* the workers are free */
    /* Pending is in flight: nothing to run, the settle times out. */
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), 0), -ETIMEDOUT);
    ck_assert_int_eq(atomic_load(&d[0].calls), 0);
    /* Errors: no task, the reserved status, a pending task's cancel. */
    ck_assert_int_eq(wpool_task_complete(NULL, 0), -EINVAL);
    ck_assert_int_eq(wpool_task_complete(&d[0].j.task, WPOOL_PENDING), -EINVAL);
    ck_assert_int_eq(wpool_cancel(&d[0].j.task), -EBUSY);
    struct djob idle;
    djob_init(&idle, 99, NULL);
    ck_assert_int_eq(wpool_task_complete(&idle.j.task, 0), -EALREADY); /* never submitted */
    /* Completed from this thread, in reverse order. */
    uint64_t rng = 1;
    for (int i = 0; i < N; i++)
        ck_assert_ptr_nonnull(mailbox_take(&box, &rng));
    for (int i = N - 1; i >= 0; i--) {
        ck_assert_int_eq(wpool_task_complete(&d[i].j.task, 1000 + i), 0);
        ck_assert_int_eq(wpool_task_complete(&d[i].j.task, 0), -EALREADY); /* twice */
    }
    ck_assert_int_eq(settle(pool), N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(atomic_load(&d[i].calls), 1);
        ck_assert_int_eq(d[i].j.status, 1000 + i);
        ck_assert(pthread_equal(d[i].done_thread, pthread_self()));
        ck_assert_int_eq(atomic_load(&d[i].j.ran), 1);
        ck_assert_int_eq(wpool_task_complete(&d[i].j.task, 0), -EALREADY); /* idle again */
    }
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_eq(st.deferred, N);
    ck_assert_uint_eq(st.completed, N);
    ck_assert_uint_eq(st.queued, 0);
    ck_assert_uint_eq(st.pend.count, N);
    ck_assert_uint_eq(st.run.count, N);
    /* A record completed and idle can be submitted again. */
    ck_assert_int_eq(wpool_submit(pool, &d[0].j.task), 0);
    ck_assert_ptr_eq(mailbox_take(&box, &rng), &d[0].j.task);
    ck_assert_int_eq(wpool_task_complete(&d[0].j.task, -EIO), 0);
    ck_assert_int_eq(settle(pool), 1);
    ck_assert_int_eq(d[0].j.status, -EIO);
    ck_assert_int_eq(atomic_load(&d[0].calls), 2);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    mailbox_fini(&box);
}
END_TEST

/* Completed while the work still runs: by the work itself, and by another
 * thread that finishes before the work returns. The task completes once,
 * with that status; a work function that then returns a status of its own
 * wins (the early call had no effect). */
struct handoff {
    struct djob d;
    struct gate go, completed;
    int rc;
};

static void *handoff_completer(void *arg)
{
    struct handoff *h = arg;
    gate_wait(&h->go);
    h->rc = wpool_task_complete(&h->d.j.task, 77);
    gate_open(&h->completed);
    return NULL;
}

static int handoff_work(struct wpool_task *t)
{
    struct handoff *h = (struct handoff *)t;
    gate_open(&h->go);
    gate_wait(&h->completed); /* the completer is done before we return */
    return WPOOL_PENDING;
}

START_TEST(test_defer_early)
{
    wpool_t *pool = make_pool(2, policy(_i), 64);
    struct djob self, own;
    djob_init(&self, 5, NULL);
    self.self_complete = 1;
    djob_init(&own, 6, NULL);
    own.self_complete = 1;
    own.returns = 42; /* completes itself, then returns a status of its own */
    ck_assert_int_eq(wpool_submit(pool, &self.j.task), 0);
    ck_assert_int_eq(wpool_submit(pool, &own.j.task), 0);
    struct handoff h;
    memset(&h, 0, sizeof(h));
    gate_init(&h.go);
    gate_init(&h.completed);
    ck_assert_int_eq(wpool_task_init(&h.d.j.task, handoff_work, djob_done), 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, handoff_completer, &h), 0);
    ck_assert_int_eq(wpool_submit(pool, &h.d.j.task), 0);
    ck_assert_int_eq(settle(pool), 3);
    pthread_join(th, NULL);
    ck_assert_int_eq(h.rc, 0);
    ck_assert_int_eq(atomic_load(&h.d.calls), 1);
    ck_assert_int_eq(h.d.j.status, 77);
    ck_assert_int_eq(atomic_load(&self.calls), 1);
    ck_assert_int_eq(self.j.status, 5);
    ck_assert_int_eq(atomic_load(&own.calls), 1);
    ck_assert_int_eq(own.j.status, 42);
    struct wpool_statistics st;
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.deferred, 2); /* `own` returned a status */
    ck_assert_uint_eq(st.completed, 3);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&h.go);
    gate_fini(&h.completed);
}
END_TEST

/* A pending task's cancel is a running task's: wpool_cancel says -EBUSY, a
 * token cancel sets the flag its completer reads. */
START_TEST(test_defer_cancel)
{
    wpool_t *pool = make_pool(2, WPOOL_FIRST_FREE, 64);
    wpool_token_t *tok;
    ck_assert_int_eq(wpool_token_create(&tok), 0);
    struct mailbox box;
    mailbox_init(&box, 4);
    struct djob d;
    djob_init(&d, 1, &box);
    ck_assert_int_eq(wpool_task_set_token(&d.j.task, tok), 0);
    ck_assert_int_eq(wpool_submit(pool, &d.j.task), 0);
    wait_pending(pool, 1);
    ck_assert_int_eq(wpool_cancel(&d.j.task), -EBUSY);
    ck_assert_int_eq(wpool_task_cancelled(&d.j.task), 0);
    ck_assert_int_eq(wpool_token_cancel(tok), 0); /* nothing queued to withdraw */
    ck_assert_int_eq(wpool_task_cancelled(&d.j.task), 1);
    ck_assert_int_eq(wpool_task_complete(&d.j.task, -ECANCELED), 0);
    ck_assert_int_eq(settle(pool), 1);
    ck_assert_int_eq(d.j.status, -ECANCELED);
    ck_assert_int_eq(atomic_load(&d.calls), 1);
    /* Counted by the status its completer gave it, like any completion. */
    struct wpool_statistics st;
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.cancelled, 1);
    ck_assert_uint_eq(st.completed, 0);
    ck_assert_int_eq(wpool_task_set_token(&d.j.task, NULL), 0);
    ck_assert_int_eq(wpool_submit(pool, &d.j.task), 0);
    wait_pending(pool, 1);
    ck_assert_int_eq(wpool_task_complete(&d.j.task, -ETIMEDOUT), 0);
    ck_assert_int_eq(settle(pool), 1);
    ck_assert_int_eq(d.j.status, -ETIMEDOUT);
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.timed_out, 1);
    ck_assert_uint_eq(st.cancelled, 1);
    ck_assert_uint_eq(st.completed, 0);
    ck_assert_uint_eq(st.deferred, 2);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_int_eq(wpool_token_destroy(tok), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    mailbox_fini(&box);
}
END_TEST

/* Shutdown waits for pending tasks with its timeout and says -ETIMEDOUT,
 * the statistics show them; completed later (after the workers are gone),
 * they complete once and the next shutdown returns 0. */
START_TEST(test_defer_shutdown)
{
    wpool_t *pool = make_pool(2, policy(_i), 64);
    struct mailbox box;
    mailbox_init(&box, 4);
    struct djob a, b;
    djob_init(&a, 1, &box);
    djob_init(&b, 2, &box);
    ck_assert_int_eq(wpool_submit(pool, &a.j.task), 0);
    ck_assert_int_eq(wpool_submit(pool, &b.j.task), 0);
    wait_pending(pool, 2);
    ck_assert_int_eq(wpool_shutdown(pool, WPOOL_CLOSE_CANCEL, 20), -ETIMEDOUT);
    struct wpool_statistics st;
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.pending, 2);
    ck_assert_int_eq(wpool_submit(pool, &a.j.task), -ESHUTDOWN); /* closed wins over busy */
    ck_assert_int_eq(wpool_task_init(&a.j.task, djob_work, djob_done), -EBUSY); /* in flight */
    ck_assert_int_eq(wpool_task_complete(&a.j.task, 11), 0);
    ck_assert_int_eq(wpool_shutdown(pool, WPOOL_CLOSE_RUN, 0), -ETIMEDOUT); /* b is left */
    ck_assert_int_eq(wpool_task_complete(&b.j.task, 12), 0);
    ck_assert_int_eq(wpool_close(pool), 0);
    ck_assert_int_eq(settle(pool), 2);
    ck_assert_int_eq(a.j.status, 11);
    ck_assert_int_eq(b.j.status, 12);
    ck_assert_int_eq(atomic_load(&a.calls) + atomic_load(&b.calls), 2);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    mailbox_fini(&box);
}
END_TEST

/* Runs the calling thread only when nothing else on its CPU wants to. */
static void idle_class(void)
{
    struct sched_param sp = {0};
    ck_assert_int_eq(pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp), 0);
}

static void pin_to_cpu0(void)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(0, &one);
    ck_assert_int_eq(sched_setaffinity(0, sizeof(one), &one), 0);
}

/* Destroy waits for pending tasks before it runs the leftover completions:
 * the completer (at SCHED_IDLE, everything on one CPU) completes them only
 * once destroy is joining the workers (their stop hook opens its gate) and
 * then blocks; a plain task's completion, left undispatched, runs among the
 * leftovers and must see every pending task completed by then. Each still
 * completes exactly once before destroy returns. */
static struct gate stop_gate;
static atomic_int completed_n;
static int seen_by_leftover = -1;

static void leftover_done(struct wpool_task *t, int status)
{
    job_done(t, status);
    seen_by_leftover = atomic_load(&completed_n);
}

static void on_stop(void *arg, unsigned int index)
{
    (void)arg;
    (void)index;
    gate_open(&stop_gate);
}

struct completer {
    struct mailbox *box;
    int n;
    int status;
};

static void *complete_n(void *arg)
{
    struct completer *c = arg;
    uint64_t rng = 12345;
    idle_class();
    gate_wait(&stop_gate);
    for (int i = 0; i < c->n; i++) {
        struct wpool_task *t = mailbox_take(c->box, &rng);
        ck_assert_ptr_nonnull(t);
        atomic_fetch_add(&completed_n, 1); /* before: the last call lets destroy go on */
        ck_assert_int_eq(wpool_task_complete(t, c->status), 0);
    }
    return NULL;
}

START_TEST(test_defer_destroy_waits)
{
    pin_to_cpu0();
    gate_init(&stop_gate);
    atomic_store(&completed_n, 0);
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 2;
    o.on_worker_stop = on_stop;
    wpool_t *pool = make_pool_opts(&o);
    wpool_port_t *port;
    ck_assert_int_eq(wpool_port_create(pool, &port), 0);
    struct mailbox box;
    mailbox_init(&box, 8);
    enum { N = 6 };
    struct djob d[N];
    for (int i = 0; i < N; i++) {
        djob_init(&d[i], i, &box);
        if (i % 2)
            ck_assert_int_eq(wpool_task_set_port(&d[i].j.task, port), 0);
        ck_assert_int_eq(wpool_submit(pool, &d[i].j.task), 0);
    }
    wait_pending(pool, N);
    ck_assert_int_eq(wpool_port_destroy(port), -EBUSY); /* pending is in flight */
    struct job leftover;                                /* ran, its completion not dispatched */
    job_init(&leftover, 0);
    ck_assert_int_eq(wpool_task_init(&leftover.task, job_work, leftover_done), 0);
    ck_assert_int_eq(wpool_submit(pool, &leftover.task), 0);
    ck_assert(wait_at_least(&leftover.ran, 1, 10000));
    struct completer c = {&box, N, 3};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, complete_n, &c), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    ck_assert_int_eq(leftover.done_calls, 1);
    ck_assert_int_eq(seen_by_leftover, N); /* destroy waited before the leftovers */
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(atomic_load(&d[i].calls), 1);
        ck_assert_int_eq(d[i].j.status, 3);
    }
    pthread_join(th, NULL);
    mailbox_fini(&box);
    gate_fini(&stop_gate);
}
END_TEST

/* Pending members of a group: the group completes once they are. */
static int group_calls;
static struct wpool_group_result group_res;

static void group_done(struct wpool_group *g, const struct wpool_group_result *r)
{
    (void)g;
    group_res = *r;
    group_calls++;
}

START_TEST(test_defer_group)
{
    wpool_t *pool = make_pool(2, policy(_i), 64);
    struct mailbox box;
    mailbox_init(&box, 8);
    struct wpool_group g = {0};
    group_calls = 0;
    ck_assert_int_eq(wpool_group_init(&g, pool, NULL, group_done), 0);
    enum { N = 5 };
    struct djob d[N];
    for (int i = 0; i < N; i++) {
        djob_init(&d[i], i, &box);
        ck_assert_int_eq(wpool_task_set_group(&d[i].j.task, &g), 0);
        ck_assert_int_eq(wpool_submit(pool, &d[i].j.task), 0);
    }
    ck_assert_int_eq(wpool_group_seal(&g), 0);
    wait_pending(pool, N);
    ck_assert_int_eq(wpool_dispatch(pool, WPOOL_DISPATCH_ALL), 0);
    ck_assert_int_eq(group_calls, 0);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(wpool_task_complete(&d[i].j.task, i == 3 ? -EIO : 0), 0);
    ck_assert_int_eq(settle(pool), N + 1);
    ck_assert_int_eq(group_calls, 1);
    ck_assert_uint_eq(group_res.succeeded, N - 1);
    ck_assert_uint_eq(group_res.failed, 1);
    ck_assert_int_eq(group_res.first_error, -EIO);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    mailbox_fini(&box);
}
END_TEST

/* In a forked child the parent's pending task is the parent's. */
START_TEST(test_defer_fork)
{
    wpool_t *pool = make_pool(1, WPOOL_FIRST_FREE, 64);
    struct mailbox box;
    mailbox_init(&box, 4);
    struct djob d;
    djob_init(&d, 1, &box);
    ck_assert_int_eq(wpool_submit(pool, &d.j.task), 0);
    wait_pending(pool, 1);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(wpool_task_complete(&d.j.task, 5) == -EOWNERDEAD ? 0 : 1);
    int ws;
    ck_assert_int_eq(waitpid(pid, &ws, 0), pid);
    ck_assert(WIFEXITED(ws) && WEXITSTATUS(ws) == 0);
    ck_assert_int_eq(wpool_task_complete(&d.j.task, 6), 0);
    ck_assert_int_eq(settle(pool), 1);
    ck_assert_int_eq(d.j.status, 6);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    mailbox_fini(&box);
}
END_TEST

/* Stress: thousands of tasks, each submitted several times; a quarter of
 * the runs complete themselves before returning, the rest are completed by
 * four threads in random order, racing the work functions' returns (a task
 * is in the mailbox before its work returns). Each run completes exactly
 * once, with its status; a second complete is refused. */
enum { MANY = 4000, ROUNDS = 3, COMPLETERS = 4 };

struct many {
    struct djob d[MANY];
    struct mailbox box;
    wpool_t *pool;
    atomic_int rounds_done;
    int wrong;
};

static struct many *g_many;

static int many_work(struct wpool_task *t)
{
    struct djob *d = (struct djob *)t;
    int round = atomic_fetch_add(&d->j.ran, 1);
    if ((d->j.id + round) % 4 == 0) {
        ck_assert_int_eq(wpool_task_complete(t, d->j.id * 8 + round), 0);
        return WPOOL_PENDING;
    }
    mailbox_put(d->box, t);
    return WPOOL_PENDING;
}

static void many_done(struct wpool_task *t, int status)
{
    struct djob *d = (struct djob *)t;
    int round = atomic_fetch_add(&d->calls, 1);
    if (status != d->j.id * 8 + round)
        g_many->wrong++;
    if (round + 1 < ROUNDS)
        ck_assert_int_eq(wpool_submit(g_many->pool, t), 0);
    else
        atomic_fetch_add(&g_many->rounds_done, 1);
}

static void *many_completer(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15u + 1;
    struct wpool_task *t;
    while ((t = mailbox_take(&g_many->box, &rng))) {
        struct djob *d = (struct djob *)t;
        int round = atomic_load(&d->j.ran) - 1; /* raised before it was put here */
        ck_assert_int_eq(wpool_task_complete(t, d->j.id * 8 + round), 0);
    }
    return NULL;
}

START_TEST(test_defer_many)
{
    struct many *m = calloc(1, sizeof(*m));
    ck_assert_ptr_nonnull(m);
    g_many = m;
    m->pool = make_pool(2, policy(_i), 256);
    mailbox_init(&m->box, MANY);
    for (int i = 0; i < MANY; i++) {
        djob_init(&m->d[i], i, &m->box);
        ck_assert_int_eq(wpool_task_init(&m->d[i].j.task, many_work, many_done), 0);
    }
    pthread_t th[COMPLETERS];
    for (uintptr_t i = 0; i < COMPLETERS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, many_completer, (void *)i), 0);
    for (int i = 0; i < MANY; i++)
        ck_assert_int_eq(wpool_submit(m->pool, &m->d[i].j.task), 0);
    uint64_t end = wpool_now_ns() + 20000000000u;
    while (atomic_load(&m->rounds_done) < MANY) {
        ck_assert_msg(wpool_now_ns() < end, "%d of %d tasks done", atomic_load(&m->rounds_done),
                      MANY);
        int rc = wpool_port_wait(wpool_default_port(m->pool), 100);
        ck_assert(rc == 0 || rc == -ETIMEDOUT);
        ck_assert_int_ge(wpool_dispatch(m->pool, WPOOL_DISPATCH_ALL), 0);
    }
    mailbox_close(&m->box);
    for (int i = 0; i < COMPLETERS; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(m->wrong, 0);
    ck_assert_int_eq(mailbox_count(&m->box), 0);
    for (int i = 0; i < MANY; i++) {
        ck_assert_int_eq(atomic_load(&m->d[i].calls), ROUNDS);
        ck_assert_int_eq(atomic_load(&m->d[i].j.ran), ROUNDS);
    }
    struct wpool_statistics st;
    ck_assert_int_eq(wpool_stats(m->pool, &st), 0);
    ck_assert_uint_eq(st.deferred, (uint64_t)MANY * ROUNDS);
    ck_assert_uint_eq(st.completed, (uint64_t)MANY * ROUNDS);
    ck_assert_uint_eq(st.pending, 0);
    ck_assert_uint_eq(st.pend.count, (uint64_t)MANY * ROUNDS);
    ck_assert_int_eq(wpool_destroy(m->pool), 0);
    mailbox_fini(&m->box);
    free(m);
}
END_TEST

/* Two threads complete the same tasks, one from each end, while the workers
 * are still running them (and returning WPOOL_PENDING), and the main thread
 * reads statistics and cancels the tasks' token: for each task exactly one
 * call succeeds, the other gets -EALREADY (or retries while the task is
 * still queued), and the completion carries the winner's status. */
enum { DOUBLE_N = 2000 };

struct dbl {
    struct djob d[DOUBLE_N];
    atomic_int claimed[DOUBLE_N];
    int winner[DOUBLE_N];
    atomic_int wins[3];
    atomic_int go;
};

static struct dbl *g_dbl;

static void *dbl_completer(void *arg)
{
    int me = (int)(uintptr_t)arg; /* 1 or 2 */
    struct dbl *x = g_dbl;
    while (!atomic_load(&x->go))
        sched_yield();
    for (int left = DOUBLE_N; left;) {
        left = 0;
        for (int k = 0; k < DOUBLE_N; k++) {
            int i = me == 1 ? k : DOUBLE_N - 1 - k;
            if (atomic_load(&x->claimed[i]))
                continue;
            (void)wpool_task_cancelled(&x->d[i].j.task); /* the flag a completer reads */
            int rc = wpool_task_complete(&x->d[i].j.task, me);
            if (rc == 0) {
                ck_assert_int_eq(atomic_exchange(&x->claimed[i], me), 0);
                x->winner[i] = me;
                atomic_fetch_add(&x->wins[me], 1);
            } else {
                ck_assert_int_eq(rc, -EALREADY); /* queued still, or the other won */
                left++;
            }
        }
        if (left)
            sched_yield();
    }
    return NULL;
}

START_TEST(test_defer_double)
{
    struct dbl *x = calloc(1, sizeof(*x));
    ck_assert_ptr_nonnull(x);
    g_dbl = x;
    wpool_t *pool = make_pool(2, policy(_i), 256);
    wpool_token_t *tok;
    ck_assert_int_eq(wpool_token_create(&tok), 0);
    pthread_t th[2];
    for (uintptr_t i = 0; i < 2; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, dbl_completer, (void *)(i + 1)), 0);
    for (int i = 0; i < DOUBLE_N; i++) {
        djob_init(&x->d[i], i, NULL);
        ck_assert_int_eq(wpool_task_set_token(&x->d[i].j.task, tok), 0);
    }
    atomic_store(&x->go, 1);
    for (int i = 0; i < DOUBLE_N; i++)
        ck_assert_int_eq(wpool_submit(pool, &x->d[i].j.task), 0);
    struct wpool_statistics st;
    uint64_t end = wpool_now_ns() + 20000000000u;
    do { /* every task taken: the cancel below withdraws none */
        ck_assert_int_eq(wpool_stats(pool, &st), 0);
        ck_assert(wpool_now_ns() < end);
    } while (st.queued || st.running);
    ck_assert_int_eq(wpool_token_cancel(tok), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    ck_assert_int_eq(atomic_load(&x->wins[1]) + atomic_load(&x->wins[2]), DOUBLE_N);
    ck_assert_int_eq(settle(pool), DOUBLE_N);
    for (int i = 0; i < DOUBLE_N; i++) {
        ck_assert_int_eq(atomic_load(&x->d[i].calls), 1);
        ck_assert_int_eq(x->d[i].j.status, x->winner[i]);
    }
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.completed, DOUBLE_N);
    ck_assert_uint_eq(st.cancelled, 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    ck_assert_int_eq(wpool_token_destroy(tok), 0);
    free(x);
}
END_TEST

/* wpool_destroy may overlap a close or shutdown still in progress on another
 * thread, and that call then touches the pool no more: also when it is
 * waiting for a pending task (every other round is a shutdown). Everything on one CPU, the closer
 * and the completer at SCHED_IDLE: destroy, on this thread, runs until it waits, and is first to
 * wake when the task completes, so a close that still had to come back to
 * the pool would do it after the free (AddressSanitizer reports it; a plain
 * build may crash or hang). */
static struct wpool_task *_Atomic cd_parked;
static atomic_int cd_stopped;
static wpool_t *cd_pool;

static int cd_work(struct wpool_task *t)
{
    atomic_store(&cd_parked, t);
    return WPOOL_PENDING;
}

static void cd_stop(void *arg, unsigned int index)
{
    (void)arg, (void)index;
    atomic_store(&cd_stopped, 1);
}

static void *cd_closer(void *arg)
{
    bool shutdown = arg != NULL; /* or a close */
    idle_class();
    ck_assert_int_eq(
        shutdown ? wpool_shutdown(cd_pool, WPOOL_CLOSE_RUN, 20000) : wpool_close(cd_pool), 0);
    return NULL;
}

static void *cd_completer(void *arg)
{
    (void)arg;
    idle_class();
    ck_assert_int_eq(wpool_task_complete(atomic_load(&cd_parked), 9), 0);
    return NULL;
}

START_TEST(test_defer_close_vs_destroy)
{
    pin_to_cpu0();
    for (int i = 0; i < 20; i++) {
        struct wpool_options o = WPOOL_OPTIONS_INIT;
        o.threads = 1;
        o.on_worker_stop = cd_stop;
        cd_pool = make_pool_opts(&o);
        atomic_store(&cd_parked, NULL);
        atomic_store(&cd_stopped, 0);
        struct djob d;
        djob_init(&d, i, NULL);
        ck_assert_int_eq(wpool_task_init(&d.j.task, cd_work, djob_done), 0);
        ck_assert_int_eq(wpool_submit(cd_pool, &d.j.task), 0);
        wait_pending(cd_pool, 1);
        pthread_t closer, completer;
        ck_assert_int_eq(pthread_create(&closer, NULL, cd_closer, i % 2 ? &closer : NULL), 0);
        atomic_int *stopped = (atomic_int *)&cd_stopped;
        ck_assert(wait_at_least(stopped, 1, 10000)); /* the close is joining */
        ck_assert_int_eq(pthread_create(&completer, NULL, cd_completer, NULL), 0);
        ck_assert_int_eq(wpool_destroy(cd_pool), 0);
        ck_assert_int_eq(atomic_load(&d.calls), 1);
        ck_assert_int_eq(d.j.status, 9);
        pthread_join(closer, NULL);
        pthread_join(completer, NULL);
    }
}
END_TEST

static Suite *defer_suite(void)
{
    Suite *s = suite_create("defer");
    TCase *tc = tcase_create("defer");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_defer_basic, 0, 2);
    tcase_add_loop_test(tc, test_defer_early, 0, 2);
    tcase_add_test(tc, test_defer_cancel);
    tcase_add_loop_test(tc, test_defer_shutdown, 0, 2);
    tcase_add_test(tc, test_defer_destroy_waits);
    tcase_add_loop_test(tc, test_defer_group, 0, 2);
    tcase_add_test(tc, test_defer_fork);
    tcase_add_loop_test(tc, test_defer_many, 0, 2);
    tcase_add_loop_test(tc, test_defer_double, 0, 2);
    tcase_add_test(tc, test_defer_close_vs_destroy);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(defer_suite());
}
