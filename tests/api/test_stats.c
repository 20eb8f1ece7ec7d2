/* SPDX-License-Identifier: MIT */
/* api suite: statistics. Black-box: only the public header. */
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
    hold_worker(pool, &b1, 1000, &g, &started);
    hold_worker(pool, &b2, 1000, &g, &started);
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

static Suite *stats_suite(void)
{
    Suite *s = suite_create("stats");
    TCase *tc = tcase_create("stats");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_stats, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(stats_suite());
}
