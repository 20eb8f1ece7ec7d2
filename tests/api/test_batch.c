/* SPDX-License-Identifier: MIT */
/* api suite: batch submit. Black-box: only the public header. */
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

/* ---- batch submit --------------------------------------------------------------- */

START_TEST(test_submit_batch)
{
    enum { N = 12 };
    wpool_t *pool = make_bounded_pool(1, policy(_i), 8);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job blocker, jobs[N];
    struct wpool_task *ptrs[N];
    hold_worker(pool, &blocker, 1000, &g, &started);
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

static Suite *batch_suite(void)
{
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("batch");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_submit_batch, 0, 2);
    tcase_add_loop_test(tc, test_batch_runs_everything, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(batch_suite());
}
