/* SPDX-License-Identifier: MIT */
/*
 * Pairs of public calls that the reference lets run at the same time on
 * different threads, each raced with its outcome asserted (issue: tests that
 * cannot fail). Each test names the bug that makes it fail; tests/mutants has
 * the planted versions.
 */
#include <wpool.h>

#include <check.h>
#include "../common/fastcheck.h"
#include "../common/jobs.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

/* Waits for *flag with a bound; true if it was raised. */
static bool flag_within(atomic_int *flag, int ms)
{
    return wait_at_least(flag, 1, ms);
}

/* ---- two concurrent shutdowns: the second waits for the first's join ---- */

static atomic_int g_stopping, g_stopped;
static struct gate g_stop_gate;

static void stop_hook(void *arg, unsigned int index)
{
    (void)arg;
    (void)index;
    atomic_fetch_add(&g_stopping, 1);
    gate_wait(&g_stop_gate);
    atomic_fetch_add(&g_stopped, 1);
}

struct shutter {
    wpool_t *pool;
    int rc;
    int stopped_at_return; /* workers past their stop hook when the call returned */
    atomic_int entered, returned;
};

static void *shutter_main(void *arg)
{
    struct shutter *s = arg;
    atomic_store(&s->entered, 1);
    s->rc = wpool_shutdown(s->pool, WPOOL_CLOSE_RUN, -1);
    s->stopped_at_return = atomic_load(&g_stopped);
    atomic_store(&s->returned, 1);
    return NULL;
}

/* The first caller joins the workers; the second must wait for that join to
 * end (both return 0 only once every worker has stopped). Fails if the second
 * returns at once. */
START_TEST(test_two_shutdowns_second_waits)
{
    enum { THREADS = 2 };
    atomic_store(&g_stopping, 0);
    atomic_store(&g_stopped, 0);
    gate_init(&g_stop_gate);
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = THREADS;
    o.placement = policy(_i);
    o.on_worker_stop = stop_hook;
    wpool_t *pool = make_pool_opts(&o);
    struct shutter first = {.pool = pool}, second = {.pool = pool};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, shutter_main, &first);
    /* The first has closed the pool (and, in the same critical section,
     * become the joiner) once a submit is refused. */
    struct job probe;
    job_init(&probe, 1);
    int rc;
    while ((rc = wpool_submit(pool, &probe.task)) == 0) {
        ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), -1), 1);
        sched_yield();
    }
    ck_assert_int_eq(rc, -ESHUTDOWN);
    pthread_create(&t2, NULL, shutter_main, &second);
    ck_assert(flag_within(&second.entered, 10000));
    ck_assert(wait_at_least(&g_stopping, THREADS, 10000)); /* workers in their stop hook */
    /* Neither call may return while the workers are held: give a buggy
     * second caller the time to return early. */
    pause_ms(100);
    ck_assert_int_eq(atomic_load(&first.returned), 0);
    ck_assert_int_eq(atomic_load(&second.returned), 0);
    gate_open(&g_stop_gate);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    ck_assert_int_eq(first.rc, 0);
    ck_assert_int_eq(second.rc, 0);
    ck_assert_int_eq(first.stopped_at_return, THREADS);
    ck_assert_int_eq(second.stopped_at_return, THREADS);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g_stop_gate);
}
END_TEST

/* ---- a batch engages every idle worker ----------------------------------- */

/* A batch makes one wakeup; each woken worker must pass it on while tasks
 * remain, so that every worker gets busy. Every task blocks on a gate until
 * all workers have started one: with the hand-off gone only one worker runs
 * and the wait fails. Several rounds, so that workers are asleep (not still
 * spinning) when a batch comes. */
START_TEST(test_batch_engages_every_worker)
{
    enum { THREADS = 4, B = 16, ROUNDS = 5 };
    wpool_t *pool = make_pool(THREADS, policy(_i), 64);
    struct job jobs[B];
    struct wpool_task *ptrs[B];
    for (int round = 0; round < ROUNDS; round++) {
        struct gate g;
        gate_init(&g);
        atomic_int started = 0;
        for (int k = 0; k < B; k++) {
            job_init(&jobs[k], k);
            jobs[k].gate = &g;
            jobs[k].started = &started;
            ptrs[k] = &jobs[k].task;
        }
        ck_assert_int_eq(wpool_submit_batch(pool, ptrs, B), B);
        bool all = wait_at_least(&started, THREADS, 10000);
        gate_open(&g);
        ck_assert_msg(all, "round %d: only %d of %d workers started a task of the batch", round,
                      atomic_load(&started), THREADS);
        ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), -1), B);
        for (int k = 0; k < B; k++) {
            ck_assert_int_eq(jobs[k].done_calls, 1);
            ck_assert_int_eq(jobs[k].status, k);
        }
        gate_fini(&g);
    }
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* ---- wpool_submit_wait(-1) blocked vs a close ---------------------------- */

struct waiter {
    wpool_t *pool;
    struct job *job;
    int rc;
    atomic_int entered, returned;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    atomic_store(&w->entered, 1);
    w->rc = wpool_submit_wait(w->pool, &w->job->task, -1);
    atomic_store(&w->returned, 1);
    return NULL;
}

/* A thread blocked for room without a limit must return -ESHUTDOWN when the
 * pool closes (both close modes), not sleep on. */
START_TEST(test_submit_wait_blocked_vs_close)
{
    for (int mode = WPOOL_CLOSE_RUN; mode <= WPOOL_CLOSE_CANCEL; mode++) {
        wpool_t *pool = make_bounded_pool(1, policy(_i), 2);
        struct gate g;
        gate_init(&g);
        atomic_int started = 0;
        struct job blocker, queued[2], extra;
        hold_worker(pool, &blocker, 100, &g, &started);
        for (int i = 0; i < 2; i++) {
            job_init(&queued[i], i);
            ck_assert_int_eq(wpool_submit(pool, &queued[i].task), 0);
        }
        job_init(&extra, 7);
        ck_assert_int_eq(wpool_submit(pool, &extra.task), -EAGAIN); /* full */
        struct waiter w = {.pool = pool, .job = &extra};
        pthread_t th;
        pthread_create(&th, NULL, waiter_main, &w);
        ck_assert(flag_within(&w.entered, 10000));
        pause_ms(50); /* let it go to sleep (a buggy close would leave it there) */
        ck_assert_int_eq(atomic_load(&w.returned), 0);
        ck_assert_int_eq(wpool_shutdown(pool, mode, 0), -ETIMEDOUT); /* held worker */
        bool back = flag_within(&w.returned, 10000);
        gate_open(&g);
        pthread_join(th, NULL);
        ck_assert_msg(back, "wpool_submit_wait still blocked after the close");
        ck_assert_int_eq(w.rc, -ESHUTDOWN);
        ck_assert_int_eq(wpool_close(pool), 0);
        ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), -1), 3);
        ck_assert_int_eq(blocker.status, 100);
        for (int i = 0; i < 2; i++)
            ck_assert_int_eq(queued[i].status, mode == WPOOL_CLOSE_RUN ? i : -ECANCELED);
        ck_assert_int_eq(extra.done_calls, 0); /* refused: no completion */
        ck_assert_int_eq(wpool_destroy(pool), 0);
        gate_fini(&g);
    }
}
END_TEST

/* ---- a wake for room is one slot's: passed on when unused ---------------- */

/* Two threads wait for room in one lane; the first one's token is cancelled
 * while it sleeps. One slot is freed: the first waiter is woken, its submit
 * now fails with -ECANCELED, and the wake must go on to the second, which
 * takes the slot (not sleep on beside free room). */
START_TEST(test_room_wake_passed_on)
{
    wpool_t *pool = make_bounded_pool(1, policy(_i), 2);
    wpool_token_t *tok;
    ck_assert_int_eq(wpool_token_create(&tok), 0);
    struct gate g;
    gate_init(&g);
    atomic_int started = 0;
    struct job blocker, queued[2], first, second;
    hold_worker(pool, &blocker, 100, &g, &started);
    for (int i = 0; i < 2; i++) {
        job_init(&queued[i], i);
        ck_assert_int_eq(wpool_submit(pool, &queued[i].task), 0);
    }
    job_init(&first, 1);
    ck_assert_int_eq(wpool_task_set_token(&first.task, tok), 0);
    job_init(&second, 2);
    struct waiter w1 = {.pool = pool, .job = &first}, w2 = {.pool = pool, .job = &second};
    pthread_t t1, t2;
    pthread_create(&t1, NULL, waiter_main, &w1);
    ck_assert(flag_within(&w1.entered, 10000));
    pause_ms(50); /* the first is asleep before the second queues */
    pthread_create(&t2, NULL, waiter_main, &w2);
    ck_assert(flag_within(&w2.entered, 10000));
    pause_ms(50);
    ck_assert_int_eq(wpool_token_cancel(tok), 0);       /* nothing of it queued yet */
    ck_assert_int_eq(wpool_cancel(&queued[0].task), 0); /* one slot: one wake */
    bool first_back = flag_within(&w1.returned, 10000);
    bool second_back = flag_within(&w2.returned, 10000);
    gate_open(&g); /* frees the rest (unblocks a second still asleep) */
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    ck_assert(first_back);
    ck_assert_int_eq(w1.rc, -ECANCELED);
    ck_assert_msg(second_back, "the second waiter slept beside a free slot");
    ck_assert_int_eq(w2.rc, 0);
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), -1), 4);
    ck_assert_int_eq(queued[0].status, -ECANCELED);
    ck_assert_int_eq(queued[1].status, 1);
    ck_assert_int_eq(second.status, 2);
    ck_assert_int_eq(first.done_calls, 0);
    ck_assert_int_eq(wpool_token_destroy(tok), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* ---- wpool_destroy vs a close still joining on another thread ------------ */

struct closer {
    wpool_t *pool;
    int rc;
};

static void *closer_main(void *arg)
{
    struct closer *c = arg;
    c->rc = wpool_close(c->pool);
    return NULL;
}

struct opener {
    struct gate *gate;
    atomic_int *destroying;
};

static void *opener_main(void *arg)
{
    struct opener *op = arg;
    (void)flag_within(op->destroying, 10000);
    pause_ms(100); /* destroy is (or soon will be) waiting for the joiner */
    gate_open(op->gate);
    return NULL;
}

/* A close (drain) is joining the workers while another thread destroys the
 * pool: destroy must wait for that join, so the drain finishes as the close
 * promised (every queued task runs) instead of destroy cancelling the queue
 * and joining the same threads a second time. */
START_TEST(test_destroy_waits_for_joiner)
{
    enum { N = 8 };
    wpool_t *pool = make_pool(1, policy(_i), 16);
    int rc;
    struct gate g;
    gate_init(&g);
    atomic_int started = 0, destroying = 0;
    struct job blocker, jobs[N];
    hold_worker(pool, &blocker, 100, &g, &started);
    for (int i = 0; i < N; i++) {
        job_init(&jobs[i], i);
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    }
    struct closer c = {pool, 1};
    pthread_t tc, to;
    pthread_create(&tc, NULL, closer_main, &c);
    /* Until the close has begun (port creation is refused under the pool lock
     * from then on, and the closer became the joiner in the same critical
     * section). */
    wpool_port_t *p;
    while ((rc = wpool_port_create(pool, &p)) == 0) {
        ck_assert_int_eq(wpool_port_destroy(p), 0);
        sched_yield();
    }
    ck_assert_int_eq(rc, -ESHUTDOWN);
    struct opener op = {&g, &destroying};
    pthread_create(&to, NULL, opener_main, &op);
    atomic_store(&destroying, 1);
    ck_assert_int_eq(wpool_destroy(pool), 0); /* runs the completions here */
    pthread_join(to, NULL);
    pthread_join(tc, NULL);
    ck_assert_int_eq(c.rc, 0);
    ck_assert_int_eq(blocker.done_calls, 1);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(jobs[i].done_calls, 1);
        ck_assert_int_eq(jobs[i].status, i); /* drained by the close, not cancelled */
    }
    gate_fini(&g);
}
END_TEST

/* ---- wpool_token_cancel from a task and from a completion callback ------- */

static wpool_token_t *g_tok;
static int g_cancel_rc;

static void cancel_from_task(struct job *j)
{
    (void)j;
    g_cancel_rc = wpool_token_cancel(g_tok);
}

/* A task carrying the token cancels it: every other task carrying it that is
 * still queued completes once with -ECANCELED; the canceller itself runs on
 * and sees its own flag. */
START_TEST(test_token_cancel_from_task)
{
    enum { K = 6 };
    wpool_t *pool = make_pool(1, policy(_i), 16);
    ck_assert_int_eq(wpool_token_create(&g_tok), 0);
    g_cancel_rc = -1;
    struct job canceller, rest[K];
    job_init(&canceller, 50);
    canceller.hook = cancel_from_task;
    struct gate g;
    gate_init(&g);
    canceller.gate = &g; /* holds the worker until the rest is queued */
    atomic_int started = 0;
    canceller.started = &started;
    ck_assert_int_eq(wpool_task_set_token(&canceller.task, g_tok), 0);
    ck_assert_int_eq(wpool_submit(pool, &canceller.task), 0);
    ck_assert(wait_at_least(&started, 1, 10000));
    gate_open(&g);
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), -1), 1);
    /* Alone in flight: nothing to withdraw, the canceller itself runs on. */
    ck_assert_int_eq(g_cancel_rc, 0);
    ck_assert_int_eq(wpool_token_cancelled(g_tok), 1);
    ck_assert_int_eq(canceller.status, 50);
    ck_assert_int_eq(wpool_token_destroy(g_tok), 0);

    /* Now with tasks queued behind it: a fresh token. */
    ck_assert_int_eq(wpool_token_create(&g_tok), 0);
    struct gate g2;
    gate_init(&g2);
    atomic_int started2 = 0;
    struct job blocker;
    hold_worker(pool, &blocker, 60, &g2, &started2);
    job_init(&canceller, 50);
    canceller.hook = cancel_from_task;
    ck_assert_int_eq(wpool_task_set_token(&canceller.task, g_tok), 0);
    ck_assert_int_eq(wpool_submit(pool, &canceller.task), 0);
    for (int i = 0; i < K; i++) {
        job_init(&rest[i], i);
        ck_assert_int_eq(wpool_task_set_token(&rest[i].task, g_tok), 0);
        ck_assert_int_eq(wpool_submit(pool, &rest[i].task), 0);
    }
    gate_open(&g2); /* the worker runs the canceller next; the rest are queued */
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), -1), K + 2);
    ck_assert_int_eq(g_cancel_rc, K);
    ck_assert_int_eq(canceller.done_calls, 1);
    ck_assert_int_eq(canceller.status, 50); /* running work is never stopped */
    for (int i = 0; i < K; i++) {
        ck_assert_int_eq(rest[i].done_calls, 1);
        ck_assert_int_eq(rest[i].status, -ECANCELED);
        ck_assert_int_eq(atomic_load(&rest[i].ran), 0);
    }
    ck_assert_int_eq(wpool_token_destroy(g_tok), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
    gate_fini(&g2);
}
END_TEST

static void done_then_cancel(struct wpool_task *t, int status)
{
    job_done(t, status);
    g_cancel_rc = wpool_token_cancel(g_tok);
}

/* A completion callback (on the owner, in a dispatch) cancels the token of
 * the task it completes: the tasks still queued with it are cancelled once
 * each, while a worker is busy. */
START_TEST(test_token_cancel_from_callback)
{
    enum { K = 5 };
    wpool_t *pool = make_pool(1, policy(_i), 16);
    ck_assert_int_eq(wpool_token_create(&g_tok), 0);
    g_cancel_rc = -1;
    struct gate g;
    gate_init(&g);
    atomic_int started = 0;
    struct job first, blocker, rest[K];
    job_init(&first, 1);
    ck_assert_int_eq(wpool_task_init(&first.task, job_work, done_then_cancel), 0);
    ck_assert_int_eq(wpool_task_set_token(&first.task, g_tok), 0);
    job_init(&blocker, 2);
    blocker.gate = &g;
    blocker.started = &started;
    ck_assert_int_eq(wpool_submit(pool, &first.task), 0);
    ck_assert_int_eq(wpool_submit(pool, &blocker.task), 0);
    for (int i = 0; i < K; i++) {
        job_init(&rest[i], 10 + i);
        ck_assert_int_eq(wpool_task_set_token(&rest[i].task, g_tok), 0);
        ck_assert_int_eq(wpool_submit(pool, &rest[i].task), 0);
    }
    ck_assert(wait_at_least(&started, 1, 10000)); /* first is done, the blocker holds */
    ck_assert_int_eq(wpool_dispatch(pool, WPOOL_DISPATCH_ALL), 1 + K);
    ck_assert_int_eq(first.done_calls, 1);
    ck_assert_int_eq(first.status, 1);
    ck_assert_int_eq(g_cancel_rc, K);
    for (int i = 0; i < K; i++) {
        ck_assert_int_eq(rest[i].done_calls, 1);
        ck_assert_int_eq(rest[i].status, -ECANCELED);
    }
    gate_open(&g);
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), -1), 1);
    ck_assert_int_eq(blocker.status, 2);
    ck_assert_int_eq(wpool_token_destroy(g_tok), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* ---- create and destroy of different pools on several threads ------------ */

struct maker {
    int iterations, completed, failures;
};

static void *maker_main(void *arg)
{
    enum { JOBS = 64 };
    struct maker *m = arg;
    struct job *jobs = calloc(JOBS, sizeof(*jobs));
    for (int it = 0; it < m->iterations; it++) {
        wpool_t *pool = NULL;
        wpool_token_t *tok = NULL;
        struct wpool_options o = WPOOL_OPTIONS_INIT;
        o.threads = 1 + (unsigned)(it % 3);
        o.placement = policy(it % 2);
        if (wpool_create(&pool, &o) != 0 || wpool_token_create(&tok) != 0) {
            m->failures++;
            break;
        }
        for (int i = 0; i < JOBS; i++) {
            job_init(&jobs[i], i);
            if (i % 2)
                wpool_task_set_token(&jobs[i].task, tok);
            if (wpool_submit(pool, &jobs[i].task) != 0)
                m->failures++;
        }
        if (wpool_port_settle(wpool_default_port(pool), -1) != JOBS)
            m->failures++;
        for (int i = 0; i < JOBS; i++)
            if (jobs[i].done_calls != 1 || jobs[i].status != i)
                m->failures++;
        if (wpool_token_destroy(tok) != 0 || wpool_destroy(pool) != 0)
            m->failures++;
        m->completed++;
    }
    free(jobs);
    return NULL;
}

/* Pools are independent: creating and destroying several at once on several
 * threads (the process-wide fork handler is registered once) loses nothing. */
START_TEST(test_create_destroy_on_threads)
{
    enum { THREADS = 4, ITERATIONS = 25 };
    struct maker m[THREADS];
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++) {
        m[i] = (struct maker){.iterations = ITERATIONS};
        pthread_create(&th[i], NULL, maker_main, &m[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(m[i].failures, 0);
        ck_assert_int_eq(m[i].completed, ITERATIONS);
    }
}
END_TEST

static Suite *races_suite(void)
{
    Suite *s = suite_create("races");
    TCase *tc = tcase_create("pairs");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_two_shutdowns_second_waits, 0, 2);
    tcase_add_loop_test(tc, test_batch_engages_every_worker, 0, 2);
    tcase_add_loop_test(tc, test_submit_wait_blocked_vs_close, 0, 2);
    tcase_add_loop_test(tc, test_room_wake_passed_on, 0, 2);
    tcase_add_loop_test(tc, test_destroy_waits_for_joiner, 0, 2);
    tcase_add_loop_test(tc, test_token_cancel_from_task, 0, 2);
    tcase_add_loop_test(tc, test_token_cancel_from_callback, 0, 2);
    tcase_add_test(tc, test_create_destroy_on_threads);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(races_suite());
}
