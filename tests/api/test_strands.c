/* SPDX-License-Identifier: MIT */
/* api suite: strands. The tasks of one strand start in the order it accepted
 * them and never overlap; other strands run meanwhile. Withdrawn tasks
 * (wpool_cancel, tokens, wpool_cancel_all) are skipped and the rest keep
 * their order; deadlines, deferred completion, priorities, batches,
 * max_queue, a bounded pool, close, destroy and fork compose with them.
 * Black-box: only the public header. */
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

/* One key's shared state: who is inside, and the order tasks started in. */
struct key {
    struct wpool_strand strand;
    atomic_int inside;  /* tasks of this key running now */
    atomic_int overlap; /* times a task found another one inside */
    atomic_int n;       /* tasks started */
    int order[512];
};

struct sjob {
    struct wpool_task task;
    struct key *key;
    int id;
    int status;
    int done_calls;
    int spin_us;
    struct gate *gate;   /* waited for inside the work */
    atomic_int *started; /* raised as the work begins */
    int pending;         /* return WPOOL_PENDING (its completer finishes it) */
};

static int sjob_work(struct wpool_task *t)
{
    struct sjob *j = (struct sjob *)t;
    struct key *k = j->key;
    if (atomic_fetch_add(&k->inside, 1) != 0)
        atomic_fetch_add(&k->overlap, 1);
    int slot = atomic_fetch_add(&k->n, 1);
    if (slot < 512)
        k->order[slot] = j->id;
    if (j->started)
        atomic_fetch_add(j->started, 1);
    if (j->spin_us)
        spin_for_us(j->spin_us);
    if (j->gate)
        gate_wait(j->gate);
    atomic_fetch_sub(&k->inside, 1);
    return j->pending ? WPOOL_PENDING : j->id;
}

static void sjob_done(struct wpool_task *t, int status)
{
    struct sjob *j = (struct sjob *)t;
    j->status = status;
    j->done_calls++;
}

static void sjob_init(struct sjob *j, struct key *k, int id)
{
    memset(j, 0, sizeof(*j));
    j->key = k;
    j->id = id;
    ck_assert_int_eq(wpool_task_init(&j->task, sjob_work, sjob_done), 0);
    ck_assert_int_eq(wpool_task_set_strand(&j->task, &k->strand), 0);
}

static struct key *key_new(wpool_t *pool)
{
    struct key *k = calloc(1, sizeof(*k));
    ck_assert_ptr_nonnull(k);
    ck_assert_int_eq(wpool_strand_init(&k->strand, pool), 0);
    return k;
}

static void key_free(struct key *k)
{
    ck_assert_int_eq(wpool_strand_destroy(&k->strand), 0);
    free(k);
}

/* The key's tasks started in the order of want[0..n), none overlapping. */
static void key_check(struct key *k, const int *want, int n)
{
    ck_assert_int_eq(atomic_load(&k->overlap), 0);
    ck_assert_int_eq(atomic_load(&k->n), n);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(k->order[i], want[i]);
}

static void key_check_all(struct key *k, int n)
{
    int want[512];
    for (int i = 0; i < n; i++)
        want[i] = i;
    key_check(k, want, n);
}

/* Dispatches the default port until n completions have run (a failed
 * assertion if none comes for 10 s); returns how many ran. */
static int dispatch_n(wpool_t *pool, int n)
{
    int got = 0;
    while (got < n) {
        ck_assert_int_eq(wpool_port_wait(wpool_default_port(pool), 10000), 0);
        got += wpool_dispatch(pool, UINT32_MAX);
    }
    return got;
}

/* Many keys, several tasks each, on every worker: each key in order. */
START_TEST(test_strand_order)
{
    wpool_t *pool = make_pool(4, policy(_i), 64);
    enum { KEYS = 8, PER = 200 };
    struct key *keys[KEYS];
    struct sjob *jobs = calloc(KEYS * PER, sizeof(*jobs));
    ck_assert_ptr_nonnull(jobs);
    for (int k = 0; k < KEYS; k++)
        keys[k] = key_new(pool);
    /* Interleaved: key k's task i is submitted after every key's task i-1. */
    for (int i = 0; i < PER; i++)
        for (int k = 0; k < KEYS; k++) {
            struct sjob *j = &jobs[i * KEYS + k];
            sjob_init(j, keys[k], i);
            j->spin_us = i % 7 == 0 ? 20 : 0;
            ck_assert_int_eq(wpool_submit(pool, &j->task), 0);
        }
    ck_assert_int_eq(drain_all(pool), KEYS * PER);
    for (int n = 0; n < KEYS * PER; n++) {
        ck_assert_int_eq(jobs[n].done_calls, 1);
        ck_assert_int_eq(jobs[n].status, jobs[n].id);
    }
    for (int k = 0; k < KEYS; k++) {
        key_check_all(keys[k], PER);
        key_free(keys[k]);
    }
    struct wpool_statistics st;
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.submitted, KEYS * PER);
    ck_assert_uint_eq(st.completed, KEYS * PER);
    ck_assert_uint_eq(st.queued, 0);
    free(jobs);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* A key whose task is held does not hold up another key. */
START_TEST(test_strand_keys_parallel)
{
    wpool_t *pool = make_pool(2, policy(_i), 64);
    struct key *a = key_new(pool), *b = key_new(pool);
    struct gate g;
    gate_init(&g);
    atomic_int started = 0;
    struct sjob ja[3], jb[3];
    for (int i = 0; i < 3; i++) {
        sjob_init(&ja[i], a, i);
        sjob_init(&jb[i], b, i);
    }
    ja[0].gate = &g;
    ja[0].started = &started;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(wpool_submit(pool, &ja[i].task), 0);
    ck_assert(wait_at_least(&started, 1, 10000));
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(wpool_submit(pool, &jb[i].task), 0);
    /* b's three complete while a's first is held (the other worker). */
    ck_assert_int_eq(dispatch_n(pool, 3), 3);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(jb[i].status, i);
    ck_assert_int_eq(atomic_load(&a->n), 1); /* a's second waits for its first */
    ck_assert_int_eq(wpool_strand_destroy(&a->strand), -EBUSY);
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 3);
    key_check_all(a, 3);
    key_check_all(b, 3);
    key_free(a);
    key_free(b);
    gate_fini(&g);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* Withdrawn waiting tasks are skipped; the rest keep their order. The head
 * held at a gate; 1..6 waiting; 2 cancelled, 4 and 5 by their token. */
START_TEST(test_strand_cancel_waiting)
{
    wpool_t *pool = make_pool(2, policy(_i), 64);
    struct key *k = key_new(pool);
    wpool_token_t *tok;
    ck_assert_int_eq(wpool_token_create(&tok), 0);
    struct gate g;
    gate_init(&g);
    atomic_int started = 0;
    struct sjob j[7];
    for (int i = 0; i < 7; i++) {
        sjob_init(&j[i], k, i);
        if (i == 4 || i == 5)
            ck_assert_int_eq(wpool_task_set_token(&j[i].task, tok), 0);
    }
    j[0].gate = &g;
    j[0].started = &started;
    for (int i = 0; i < 7; i++)
        ck_assert_int_eq(wpool_submit(pool, &j[i].task), 0);
    ck_assert(wait_at_least(&started, 1, 10000));
    ck_assert_int_eq(wpool_cancel(&j[2].task), 0);
    ck_assert_int_eq(wpool_cancel(&j[2].task), -EBUSY); /* once */
    ck_assert_int_eq(wpool_token_cancel(tok), 2);
    ck_assert_int_eq(wpool_cancel(&j[0].task), -EBUSY); /* running */
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 7);
    int want[] = {0, 1, 3, 6};
    key_check(k, want, 4);
    for (int i = 0; i < 7; i++) {
        ck_assert_int_eq(j[i].done_calls, 1);
        ck_assert_int_eq(j[i].status, i == 2 || i == 4 || i == 5 ? -ECANCELED : i);
    }
    struct wpool_statistics st;
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.cancelled, 3);
    ck_assert_uint_eq(st.completed, 4);
    key_free(k);
    gate_fini(&g);
    ck_assert_int_eq(wpool_token_destroy(tok), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* The head withdrawn from its queue (every worker busy): the next one goes
 * on in its place. */
START_TEST(test_strand_cancel_head)
{
    wpool_t *pool = make_pool(1, policy(_i), 64);
    struct gate g;
    gate_init(&g);
    atomic_int started = 0;
    struct job blocker;
    hold_worker(pool, &blocker, 99, &g, &started);
    struct key *k = key_new(pool);
    struct sjob j[4];
    for (int i = 0; i < 4; i++) {
        sjob_init(&j[i], k, i);
        ck_assert_int_eq(wpool_submit(pool, &j[i].task), 0);
    }
    ck_assert_int_eq(wpool_cancel(&j[0].task), 0); /* the head, in the ring */
    ck_assert_int_eq(wpool_cancel(&j[1].task), 0); /* the new head, moved into the ring */
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 5);
    int want[] = {2, 3};
    key_check(k, want, 2);
    ck_assert_int_eq(j[0].status, -ECANCELED);
    ck_assert_int_eq(j[1].status, -ECANCELED);
    ck_assert_int_eq(j[3].status, 3);
    key_free(k);
    gate_fini(&g);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* wpool_cancel_all takes the heads and every waiting task; the strand is
 * idle afterwards and takes new tasks. */
START_TEST(test_strand_cancel_all)
{
    wpool_t *pool = make_pool(1, policy(_i), 64);
    struct gate g;
    gate_init(&g);
    atomic_int started = 0;
    struct job blocker;
    hold_worker(pool, &blocker, 99, &g, &started);
    struct key *k[3];
    struct sjob j[3][5];
    for (int s = 0; s < 3; s++) {
        k[s] = key_new(pool);
        for (int i = 0; i < 5; i++) {
            sjob_init(&j[s][i], k[s], i);
            ck_assert_int_eq(wpool_submit(pool, &j[s][i].task), 0);
        }
    }
    ck_assert_int_eq(wpool_cancel_all(pool), 15);
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 16);
    for (int s = 0; s < 3; s++) {
        ck_assert_int_eq(atomic_load(&k[s]->n), 0);
        for (int i = 0; i < 5; i++) {
            ck_assert_int_eq(j[s][i].done_calls, 1);
            ck_assert_int_eq(j[s][i].status, -ECANCELED);
        }
        /* Idle again: a new task runs. */
        sjob_init(&j[s][0], k[s], 7);
        ck_assert_int_eq(wpool_submit(pool, &j[s][0].task), 0);
    }
    ck_assert_int_eq(drain_all(pool), 3);
    for (int s = 0; s < 3; s++) {
        int want[] = {7};
        key_check(k[s], want, 1);
        key_free(k[s]);
    }
    gate_fini(&g);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* A waiting task whose deadline passes while it waits ends -ETIMEDOUT when
 * its turn comes; the next one still runs. */
START_TEST(test_strand_deadline)
{
    wpool_t *pool = make_pool(2, policy(_i), 64);
    struct key *k = key_new(pool);
    struct gate g;
    gate_init(&g);
    atomic_int started = 0;
    struct sjob j[3];
    for (int i = 0; i < 3; i++)
        sjob_init(&j[i], k, i);
    j[0].gate = &g;
    j[0].started = &started;
    uint64_t soon = wpool_now_ns() + 2000000u;
    ck_assert_int_eq(wpool_task_set_deadline(&j[1].task, soon), 0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(wpool_submit(pool, &j[i].task), 0);
    ck_assert(wait_at_least(&started, 1, 10000));
    while (wpool_now_ns() <= soon) /* the deadline passes while j[1] waits */
        sched_yield();
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 3);
    int want[] = {0, 2};
    key_check(k, want, 2);
    ck_assert_int_eq(j[1].status, -ETIMEDOUT);
    ck_assert_int_eq(j[2].status, 2);
    key_free(k);
    gate_fini(&g);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* A pending head keeps its strand busy until wpool_task_complete; a close
 * meanwhile waits for it and then runs the waiting tasks. */
struct closer {
    wpool_t *pool;
    atomic_int returned;
    int rc;
};

static void *close_pool(void *arg)
{
    struct closer *c = arg;
    c->rc = wpool_close(c->pool);
    atomic_store(&c->returned, 1);
    return NULL;
}

static atomic_int g_stops;

static void count_stop(void *arg, unsigned int index)
{
    (void)arg;
    (void)index;
    atomic_fetch_add(&g_stops, 1);
}

START_TEST(test_strand_pending_head_and_close)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 2;
    o.placement = policy(_i);
    o.on_worker_stop = count_stop;
    atomic_store(&g_stops, 0);
    wpool_t *pool = make_pool_opts(&o);
    struct key *k = key_new(pool);
    atomic_int started = 0;
    struct sjob j[4];
    for (int i = 0; i < 4; i++)
        sjob_init(&j[i], k, i);
    j[0].pending = 1;
    j[0].started = &started;
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(wpool_submit(pool, &j[i].task), 0);
    ck_assert(wait_at_least(&started, 1, 10000));
    struct closer c = {pool, 0, 0};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, close_pool, &c), 0);
    /* Once the pool is closed (a plain probe is refused), a new task for
     * the busy strand is refused too. */
    struct job probe;
    int rc;
    for (;;) {
        job_init(&probe, 50);
        if ((rc = wpool_submit(pool, &probe.task)) != 0)
            break;
        ck_assert_int_eq(dispatch_n(pool, 1), 1);
        ck_assert_int_eq(probe.done_calls, 1);
    }
    ck_assert_int_eq(rc, -ESHUTDOWN);
    struct sjob late;
    sjob_init(&late, k, 9);
    rc = wpool_submit(pool, &late.task);
    ck_assert_int_eq(rc, -ESHUTDOWN);
    ck_assert_int_eq(atomic_load(&k->n), 1); /* the rest wait for the head */
    ck_assert_int_eq(atomic_load(&c.returned), 0);
    /* No worker may exit while tasks wait behind the pending head: they
     * would never run. Watched for 200 ms (a worker that wrongly exits does
     * so at once, as the close wakes it). */
    ck_assert(!wait_at_least(&g_stops, 1, 200));
    ck_assert_int_eq(wpool_task_complete(&j[0].task, 40), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_eq(c.rc, 0);
    /* Bounded: a task the closed pool never ran fails here, not at the
     * test's timeout. */
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), 10000), 4);
    key_check_all(k, 4);
    ck_assert_int_eq(j[0].status, 40);
    for (int i = 1; i < 4; i++)
        ck_assert_int_eq(j[i].status, i);
    key_free(k);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* Priorities do not reorder a strand: a high task waits behind its key's
 * older normal ones (and still counts as high when its turn comes). */
START_TEST(test_strand_priority_and_batch)
{
    wpool_t *pool = make_pool(2, policy(_i), 64);
    struct key *k = key_new(pool);
    enum { N = 40 };
    struct sjob j[N];
    struct wpool_task *batch[N];
    for (int i = 0; i < N; i++) {
        sjob_init(&j[i], k, i);
        if (i % 3 == 1)
            ck_assert_int_eq(wpool_task_set_priority(&j[i].task, WPOOL_PRIORITY_HIGH), 0);
        batch[i] = &j[i].task;
    }
    ck_assert_int_eq(wpool_submit_batch(pool, batch, N), N);
    ck_assert_int_eq(drain_all(pool), N);
    key_check_all(k, N);
    key_free(k);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* max_queue counts a strand's waiting tasks as queued. */
START_TEST(test_strand_max_queue)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 1;
    o.max_queue = 3;
    wpool_t *pool = make_pool_opts(&o);
    struct key *k = key_new(pool);
    struct gate g;
    gate_init(&g);
    atomic_int started = 0;
    struct sjob j[5];
    for (int i = 0; i < 5; i++)
        sjob_init(&j[i], k, i);
    j[0].gate = &g;
    j[0].started = &started;
    ck_assert_int_eq(wpool_submit(pool, &j[0].task), 0);
    ck_assert(wait_at_least(&started, 1, 10000));
    for (int i = 1; i < 4; i++)
        ck_assert_int_eq(wpool_submit(pool, &j[i].task), 0);
    ck_assert_int_eq(wpool_submit(pool, &j[4].task), -EAGAIN);
    ck_assert_int_eq(wpool_needs_drain(pool), 1);
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 4);
    key_check_all(k, 4);
    ck_assert_int_eq(wpool_submit(pool, &j[4].task), 0);
    ck_assert_int_eq(drain_all(pool), 1);
    key_check_all(k, 5);
    key_free(k);
    gate_fini(&g);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* In a bounded pool whose ring is full when the head ends, its next task is
 * still handed over (it was accepted), behind the ring's tasks. */
START_TEST(test_strand_bounded_full)
{
    wpool_t *pool = make_bounded_pool(1, policy(_i), 2);
    struct key *k = key_new(pool);
    struct gate g;
    gate_init(&g);
    atomic_int started = 0;
    struct sjob j[2];
    sjob_init(&j[0], k, 0);
    sjob_init(&j[1], k, 1);
    j[0].gate = &g;
    j[0].started = &started;
    ck_assert_int_eq(wpool_submit(pool, &j[0].task), 0);
    ck_assert(wait_at_least(&started, 1, 10000));
    ck_assert_int_eq(wpool_submit(pool, &j[1].task), 0);
    struct job fill[3];
    for (int i = 0; i < 2; i++) {
        job_init(&fill[i], 10 + i);
        ck_assert_int_eq(wpool_submit(pool, &fill[i].task), 0);
    }
    job_init(&fill[2], 12);
    ck_assert_int_eq(wpool_submit(pool, &fill[2].task), -EAGAIN); /* full */
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 4);
    key_check_all(k, 2);
    ck_assert_int_eq(fill[0].status, 10);
    ck_assert_int_eq(fill[1].status, 11);
    key_free(k);
    gate_fini(&g);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* Destroy with tasks waiting on strands: each completes once (run, or
 * -ECANCELED); the strands can be destroyed after the pool. */
START_TEST(test_strand_destroy_pool)
{
    wpool_t *pool = make_pool(2, policy(_i), 64);
    enum { KEYS = 4, PER = 50 };
    struct key *keys[KEYS];
    static struct sjob j[KEYS][PER];
    for (int s = 0; s < KEYS; s++) {
        keys[s] = key_new(pool);
        for (int i = 0; i < PER; i++) {
            sjob_init(&j[s][i], keys[s], i);
            j[s][i].spin_us = 5;
            ck_assert_int_eq(wpool_submit(pool, &j[s][i].task), 0);
        }
    }
    ck_assert_int_eq(wpool_destroy(pool), 0);
    for (int s = 0; s < KEYS; s++) {
        int ran = 0;
        for (int i = 0; i < PER; i++) {
            ck_assert_int_eq(j[s][i].done_calls, 1);
            if (j[s][i].status == i)
                ran++;
            else
                ck_assert_int_eq(j[s][i].status, -ECANCELED);
        }
        ck_assert_int_eq(atomic_load(&keys[s]->n), ran);
        ck_assert_int_eq(atomic_load(&keys[s]->overlap), 0);
        key_free(keys[s]); /* after the pool: detached by its destroy */
    }
}
END_TEST

START_TEST(test_strand_errors)
{
    wpool_t *pool = make_pool(1, WPOOL_FIRST_FREE, 64);
    wpool_t *other = make_pool(1, WPOOL_FIRST_FREE, 64);
    struct wpool_strand s = {0}, z = {0};
    ck_assert_int_eq(wpool_strand_init(NULL, pool), -EINVAL);
    ck_assert_int_eq(wpool_strand_init(&s, NULL), -EINVAL);
    ck_assert_int_eq(wpool_strand_destroy(NULL), -EINVAL);
    ck_assert_int_eq(wpool_strand_destroy(&z), -EINVAL); /* never initialised */
    ck_assert_int_eq(wpool_strand_init(&s, pool), 0);
    ck_assert_int_eq(wpool_strand_init(&s, pool), -EBUSY);
    struct sjob j;
    memset(&j, 0, sizeof(j));
    ck_assert_int_eq(wpool_task_set_strand(&j.task, &s), -EINVAL); /* task not initialised */
    ck_assert_int_eq(wpool_task_init(&j.task, sjob_work, sjob_done), 0);
    static struct key unused;
    j.key = &unused;
    ck_assert_int_eq(wpool_task_set_strand(&j.task, &z), -EINVAL);
    ck_assert_int_eq(wpool_task_set_strand(&j.task, &s), 0);
    ck_assert_int_eq(wpool_submit(other, &j.task), -EINVAL); /* another pool's strand */
    ck_assert_int_eq(wpool_task_set_strand(&j.task, NULL), 0);
    ck_assert_int_eq(wpool_submit(other, &j.task), 0);
    ck_assert_int_eq(drain_all(other), 1);
    ck_assert_int_eq(wpool_strand_destroy(&s), 0);
    ck_assert_int_eq(wpool_strand_destroy(&s), -EINVAL);
    ck_assert_int_eq(wpool_strand_init(&s, pool), 0); /* again after destroy */
    ck_assert_int_eq(wpool_strand_destroy(&s), 0);
    ck_assert_int_eq(wpool_destroy(other), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* A busy task's strand cannot change; a strand with a task in flight cannot
 * be destroyed. */
START_TEST(test_strand_busy)
{
    wpool_t *pool = make_pool(1, WPOOL_FIRST_FREE, 64);
    struct key *k = key_new(pool), *k2 = key_new(pool);
    struct gate g;
    gate_init(&g);
    atomic_int started = 0;
    struct sjob j;
    sjob_init(&j, k, 0);
    j.gate = &g;
    j.started = &started;
    ck_assert_int_eq(wpool_submit(pool, &j.task), 0);
    ck_assert(wait_at_least(&started, 1, 10000));
    ck_assert_int_eq(wpool_task_set_strand(&j.task, &k2->strand), -EBUSY);
    ck_assert_int_eq(wpool_strand_destroy(&k->strand), -EBUSY);
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 1);
    key_free(k);
    key_free(k2);
    gate_fini(&g);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

START_TEST(test_strand_fork)
{
    wpool_t *pool = make_pool(1, WPOOL_FIRST_FREE, 64);
    struct key *k = key_new(pool);
    pid_t pid = fork();
    ck_assert_int_ne(pid, -1);
    if (pid == 0) {
        struct wpool_strand s2 = {0};
        struct sjob j;
        memset(&j, 0, sizeof(j));
        int ok = wpool_strand_init(&s2, pool) == -EOWNERDEAD &&
                 wpool_task_init(&j.task, sjob_work, sjob_done) == 0 &&
                 wpool_task_set_strand(&j.task, &k->strand) == 0 &&
                 wpool_submit(pool, &j.task) == -EOWNERDEAD &&
                 wpool_strand_destroy(&k->strand) == 0 && wpool_destroy(pool) == 0;
        _exit(ok ? 0 : 1);
    }
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    struct sjob j;
    sjob_init(&j, k, 5);
    ck_assert_int_eq(wpool_submit(pool, &j.task), 0);
    ck_assert_int_eq(drain_all(pool), 1);
    ck_assert_int_eq(j.status, 5);
    key_free(k);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

static Suite *strands_suite(void)
{
    Suite *s = suite_create("strands");
    TCase *tc = tcase_create("strands");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_strand_order, 0, 2);
    tcase_add_loop_test(tc, test_strand_keys_parallel, 0, 2);
    tcase_add_loop_test(tc, test_strand_cancel_waiting, 0, 2);
    tcase_add_loop_test(tc, test_strand_cancel_head, 0, 2);
    tcase_add_loop_test(tc, test_strand_cancel_all, 0, 2);
    tcase_add_loop_test(tc, test_strand_deadline, 0, 2);
    tcase_add_loop_test(tc, test_strand_pending_head_and_close, 0, 2);
    tcase_add_loop_test(tc, test_strand_priority_and_batch, 0, 2);
    tcase_add_test(tc, test_strand_max_queue);
    tcase_add_loop_test(tc, test_strand_bounded_full, 0, 2);
    tcase_add_loop_test(tc, test_strand_destroy_pool, 0, 2);
    tcase_add_test(tc, test_strand_errors);
    tcase_add_test(tc, test_strand_busy);
    tcase_add_test(tc, test_strand_fork);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(strands_suite());
}
