/* SPDX-License-Identifier: MIT */
/* api suite: a destroyed port's handle stays safe to pass. Black-box: only the public header. */
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

/* ---- a destroyed port's handle ------------------------------------------------ */

/* Registered only where the registration must be refused. */
static void drain_never(wpool_t *pool, void *arg)
{
    (void)pool;
    (void)arg;
    ck_abort_msg("a drain callback ran for a refused registration");
}

/* A destroyed port's handle stays safe to pass: every call on it says -EINVAL
 * (its memory is kept until the pool is destroyed). */
START_TEST(test_destroyed_port_handle)
{
    wpool_t *pool = make_pool(1, policy(_i), 16);
    wpool_port_t *port;
    ck_assert_int_eq(wpool_port_create(pool, &port), 0);
    ck_assert_int_ge(wpool_port_fd(port), 0);
    ck_assert_int_eq(wpool_port_destroy(port), 0);
    ck_assert_int_eq(wpool_port_fd(port), -EINVAL);
    ck_assert_int_eq(wpool_port_dispatch(port, 1), -EINVAL);
    ck_assert_int_eq(wpool_port_wait(port, 0), -EINVAL);
    ck_assert_int_eq(wpool_port_settle(port, 0), -EINVAL);
    ck_assert_int_eq(wpool_port_destroy(port), -EINVAL);
    ck_assert_int_eq(wpool_on_drain(pool, port, drain_never, NULL), -EINVAL);
    struct job j;
    job_init(&j, 4);
    ck_assert_int_eq(wpool_task_set_port(&j.task, port), 0);
    ck_assert_int_eq(wpool_submit(pool, &j.task), -EINVAL); /* nothing queued */
    ck_assert_int_eq(wpool_task_set_port(&j.task, NULL), 0);
    ck_assert_int_eq(wpool_submit(pool, &j.task), 0);
    ck_assert_int_eq(drain_all(pool), 1);
    ck_assert_int_eq(j.status, 4);
    ck_assert_int_eq(wpool_destroy(pool), 0); /* frees the dead port too */
}
END_TEST

static Suite *ports_suite(void)
{
    Suite *s = suite_create("ports");
    TCase *tc = tcase_create("ports");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_destroyed_port_handle, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(ports_suite());
}
