/* SPDX-License-Identifier: MIT */
/* api suite: close modes and timeouts (wpool_shutdown). Black-box: only the public header. */
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

/* ---- close modes and timeouts -------------------------------------------------- */

START_TEST(test_shutdown_timeout_then_cancel)
{
    enum { N = 10 };
    wpool_t *pool = make_pool(1, policy(_i), 16);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job blocker, jobs[N];
    hold_worker(pool, &blocker, 1000, &g, &started);
    for (int i = 0; i < N; i++) {
        job_init(&jobs[i], i);
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    }
    ck_assert_int_eq(wpool_shutdown(pool, 2, -1), -EINVAL);
    ck_assert_int_eq(wpool_shutdown(pool, WPOOL_CLOSE_RUN, -2), -EINVAL);
    ck_assert_int_eq(wpool_shutdown(NULL, WPOOL_CLOSE_RUN, 0), -EINVAL);
    /* The held worker cannot finish: the close times out, the pool is closed. */
    ck_assert_int_eq(wpool_shutdown(pool, WPOOL_CLOSE_RUN, 20), -ETIMEDOUT);
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
    for (int mode = WPOOL_CLOSE_RUN; mode <= WPOOL_CLOSE_CANCEL; mode++) {
        wpool_t *pool = make_pool(1, policy(_i), 16);
        struct gate g;
        atomic_int started = 0;
        gate_init(&g);
        struct job blocker, jobs[N], probe;
        job_init(&probe, 9);
        hold_worker(pool, &blocker, 1000, &g, &started);
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
        ck_assert_int_eq(wpool_shutdown(pool, WPOOL_CLOSE_RUN, -1), 0);
        pthread_join(th, NULL);
        ck_assert_int_eq(c.rc, 0);
        ck_assert_int_eq(drain_all(pool), N + 1);
        for (int i = 0; i < N; i++)
            ck_assert_int_eq(jobs[i].status, mode == WPOOL_CLOSE_RUN ? i : -ECANCELED);
        ck_assert_int_eq(blocker.status, 1000);
        ck_assert_int_eq(wpool_destroy(pool), 0);
        gate_fini(&g);
    }
}
END_TEST

static Suite *close_suite(void)
{
    Suite *s = suite_create("close");
    TCase *tc = tcase_create("close");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_shutdown_timeout_then_cancel, 0, 2);
    tcase_add_loop_test(tc, test_shutdown_modes, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(close_suite());
}
