/* SPDX-License-Identifier: MIT */
/* api suite: deadlines and priority lanes. Black-box: only the public header. */
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

/* ---- deadlines ------------------------------------------------------------------ */

START_TEST(test_deadlines)
{
    wpool_t *pool = make_pool(1, policy(_i), 16);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job blocker, late, early, none;
    hold_worker(pool, &blocker, 1000, &g, &started);
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
    hold_worker(pool, &blocker, 1000, &g, &started);
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

static Suite *scheduling_suite(void)
{
    Suite *s = suite_create("scheduling");
    TCase *tc = tcase_create("scheduling");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_deadlines, 0, 2);
    tcase_add_loop_test(tc, test_priorities_and_starvation_rule, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(scheduling_suite());
}
