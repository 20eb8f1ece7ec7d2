/* SPDX-License-Identifier: MIT */
/* api suite: the unbounded queue. Tasks that do not fit their lane's ring wait
 * in an overflow list, in order, and every path a queued task can take works
 * for them too: run, cancel, cancel-all, a token, close in both modes, the
 * statistics. Black-box: only the public header. */
#include <wpool.h>

#include <check.h>
#include "../common/fastcheck.h"
#include "../common/jobs.h"
#include <errno.h>
#include <stdlib.h>

enum { CAP = 4, N = 40 }; /* ten times the ring */

/* One worker held at a gate; N jobs submitted behind it (the ring takes
 * CAP, the overflow the rest): every submit is accepted. */
struct held {
    wpool_t *pool;
    struct gate g;
    atomic_int started;
    struct job blocker;
    struct job *jobs;
    int order[N + 1];
    atomic_int order_n;
};

static void held_start(struct held *h, int placement, int prio)
{
    h->pool = make_pool(1, placement, CAP);
    gate_init(&h->g);
    atomic_store(&h->started, 0);
    atomic_store(&h->order_n, 0);
    hold_worker(h->pool, &h->blocker, 1000, &h->g, &h->started);
    h->jobs = calloc(N, sizeof(*h->jobs));
    for (int i = 0; i < N; i++) {
        job_init(&h->jobs[i], i);
        h->jobs[i].order = h->order;
        h->jobs[i].order_n = &h->order_n;
        ck_assert_int_eq(wpool_task_set_priority(&h->jobs[i].task, prio), 0);
        ck_assert_int_eq(wpool_submit(h->pool, &h->jobs[i].task), 0);
    }
}

static void held_finish(struct held *h)
{
    ck_assert_int_eq(wpool_destroy(h->pool), 0);
    gate_fini(&h->g);
    free(h->jobs);
}

/* Accepted past the ring, and run in the order submitted, in both lanes.
 * A slot freed in the ring while tasks wait in the overflow (a cancel of the
 * ring's oldest task frees its slot at once) must not let a later task
 * overtake them. */
START_TEST(test_overflow_keeps_order)
{
    for (int prio = WPOOL_PRIORITY_NORMAL; prio <= WPOOL_PRIORITY_HIGH; prio++) {
        struct held h;
        held_start(&h, policy(_i), prio);
        struct wpool_statistics st;
        ck_assert_int_eq(wpool_stats(h.pool, &st), 0);
        ck_assert_uint_eq(st.submitted, N + 1); /* the overflowed ones counted */
        ck_assert_uint_eq(st.queued, N);
        ck_assert_int_eq(wpool_needs_drain(h.pool), 0);     /* never full unbounded */
        ck_assert_int_eq(wpool_cancel(&h.jobs[0].task), 0); /* the ring's oldest */
        struct job last;
        job_init(&last, N);
        last.order = h.order;
        last.order_n = &h.order_n;
        ck_assert_int_eq(wpool_task_set_priority(&last.task, prio), 0);
        ck_assert_int_eq(wpool_submit(h.pool, &last.task), 0);
        gate_open(&h.g);
        ck_assert_int_eq(drain_all(h.pool), N + 2);
        ck_assert_int_eq(atomic_load(&h.order_n), N);
        int k = 0;
        for (int i = 0; i <= N; i++) {
            if (i == 0)
                continue;
            ck_assert_msg(h.order[k] == i, "position %d ran job %d, expected %d", k, h.order[k], i);
            k++;
        }
        for (int i = 0; i < N; i++) {
            ck_assert_int_eq(h.jobs[i].status, i == 0 ? -ECANCELED : i);
            ck_assert_int_eq(h.jobs[i].done_calls, 1);
        }
        ck_assert_int_eq(last.status, N);
        held_finish(&h);
    }
}
END_TEST

/* A task waiting in the overflow is cancelled like one in the ring: once,
 * with -ECANCELED, its work never run; a second cancel finds it gone. */
START_TEST(test_overflow_cancel)
{
    struct held h;
    held_start(&h, policy(_i), WPOOL_PRIORITY_NORMAL);
    const int victims[] = {CAP, N / 2, N - 1}; /* first, middle and last of the overflow */
    for (size_t k = 0; k < sizeof(victims) / sizeof(victims[0]); k++) {
        ck_assert_int_eq(wpool_cancel(&h.jobs[victims[k]].task), 0);
        ck_assert_int_eq(wpool_cancel(&h.jobs[victims[k]].task), -EBUSY);
    }
    gate_open(&h.g);
    ck_assert_int_eq(drain_all(h.pool), N + 1);
    int next = 0;
    for (int i = 0; i < N; i++) {
        bool victim = i == CAP || i == N / 2 || i == N - 1;
        ck_assert_int_eq(h.jobs[i].done_calls, 1);
        ck_assert_int_eq(h.jobs[i].status, victim ? -ECANCELED : i);
        ck_assert_int_eq(atomic_load(&h.jobs[i].ran), victim ? 0 : 1);
        if (!victim)
            ck_assert_int_eq(h.order[next++], i); /* the rest still in order */
    }
    ck_assert_int_eq(next, N - 3);
    held_finish(&h);
}
END_TEST

/* cancel-all and a token reach the overflow too. */
START_TEST(test_overflow_cancel_all_and_token)
{
    struct held h;
    held_start(&h, policy(_i), WPOOL_PRIORITY_NORMAL);
    ck_assert_int_eq(wpool_cancel_all(h.pool), N);
    gate_open(&h.g);
    ck_assert_int_eq(drain_all(h.pool), N + 1);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(h.jobs[i].status, -ECANCELED);
    held_finish(&h);

    /* A token carried by every other task: those complete cancelled, the
     * others run, in order. */
    wpool_t *pool = make_pool(1, policy(_i), CAP);
    struct gate g;
    gate_init(&g);
    atomic_int started = 0;
    struct job blocker;
    hold_worker(pool, &blocker, 1000, &g, &started);
    wpool_token_t *tok;
    ck_assert_int_eq(wpool_token_create(&tok), 0);
    struct job *jobs = calloc(N, sizeof(*jobs));
    for (int i = 0; i < N; i++) {
        job_init(&jobs[i], i);
        if (i % 2)
            ck_assert_int_eq(wpool_task_set_token(&jobs[i].task, tok), 0);
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    }
    ck_assert_int_eq(wpool_token_cancel(tok), N / 2);
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), N + 1);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(jobs[i].status, i % 2 ? -ECANCELED : i);
    ck_assert_int_eq(wpool_token_destroy(tok), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
    free(jobs);
}
END_TEST

/* Close runs (WPOOL_CLOSE_RUN) or cancels (WPOOL_CLOSE_CANCEL) what waits in
 * the overflow, and refuses new tasks. */
START_TEST(test_overflow_close)
{
    for (int mode = WPOOL_CLOSE_RUN; mode <= WPOOL_CLOSE_CANCEL; mode++) {
        struct held h;
        held_start(&h, policy(_i), WPOOL_PRIORITY_NORMAL);
        ck_assert_int_eq(wpool_shutdown(h.pool, mode, 0), -ETIMEDOUT); /* begin, held */
        struct job late;
        job_init(&late, 99);
        ck_assert_int_eq(wpool_submit(h.pool, &late.task), -ESHUTDOWN);
        gate_open(&h.g);
        ck_assert_int_eq(wpool_close(h.pool), 0);
        ck_assert_int_eq(drain_all(h.pool), N + 1);
        for (int i = 0; i < N; i++) {
            ck_assert_int_eq(h.jobs[i].done_calls, 1);
            /* A cancelling close may lose the race for the job the worker
             * was taking as it began: that one ran. */
            if (mode == WPOOL_CLOSE_RUN)
                ck_assert_int_eq(h.jobs[i].status, i);
            else if (i > 0)
                ck_assert_int_eq(h.jobs[i].status, -ECANCELED);
        }
        held_finish(&h);
    }
}
END_TEST

/* With bounded = 1 the ring is a hard limit again (0.2's behaviour). */
START_TEST(test_bounded_refuses)
{
    wpool_t *pool = make_bounded_pool(1, policy(_i), CAP);
    struct gate g;
    gate_init(&g);
    atomic_int started = 0;
    struct job blocker, jobs[CAP + 1];
    hold_worker(pool, &blocker, 1000, &g, &started);
    for (int i = 0; i < CAP; i++) {
        job_init(&jobs[i], i);
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    }
    job_init(&jobs[CAP], CAP);
    ck_assert_int_eq(wpool_submit(pool, &jobs[CAP].task), -EAGAIN);
    ck_assert_int_eq(wpool_needs_drain(pool), 1);
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), CAP + 1);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

static Suite *overflow_suite(void)
{
    Suite *s = suite_create("overflow");
    TCase *tc = tcase_create("overflow");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_overflow_keeps_order, 0, 2);
    tcase_add_loop_test(tc, test_overflow_cancel, 0, 2);
    tcase_add_loop_test(tc, test_overflow_cancel_all_and_token, 0, 2);
    tcase_add_loop_test(tc, test_overflow_close, 0, 2);
    tcase_add_loop_test(tc, test_bounded_refuses, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(overflow_suite());
}
