/* SPDX-License-Identifier: MIT */
/* api suite: cancel tokens and cancel-all: queued tasks complete with -ECANCELED exactly once,
 * running work sees the flag. Black-box: only the public header. */
#include <wpool.h>

#include <check.h>
#include "../common/fastcheck.h"
#include "../common/jobs.h"
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- cancel tokens ---------------------------------------------------------- */

START_TEST(test_token_cancels_queued)
{
    enum { N = 30 };
    wpool_t *pool = make_pool(1, policy(_i), 64);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job blocker, tok_jobs[N], free_jobs[N];
    hold_worker(pool, &blocker, 1000, &g, &started);
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
        got += wpool_dispatch(pool, WPOOL_DISPATCH_ALL);
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
    hold_worker(pool, &blocker, 1000, &g, &started);
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

static Suite *cancel_suite(void)
{
    Suite *s = suite_create("cancel");
    TCase *tc = tcase_create("cancel");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_token_cancels_queued, 0, 2);
    tcase_add_loop_test(tc, test_token_flag_stops_running_work, 0, 2);
    tcase_add_loop_test(tc, test_cancel_all, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(cancel_suite());
}
