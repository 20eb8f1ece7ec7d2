/* SPDX-License-Identifier: MIT */
/* api suite: the fork policy. Black-box: only the public header. */
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

/* ---- fork policy ------------------------------------------------------------------ */

START_TEST(test_fork_child_gets_eownerdead)
{
    wpool_t *pool = make_pool(2, policy(_i), 16);
    wpool_token_t *tok;
    ck_assert_int_eq(wpool_token_create(&tok), 0);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job b1, b2, queued, fresh;
    hold_worker(pool, &b1, 1000, &g, &started);
    hold_worker(pool, &b2, 1000, &g, &started);
    job_init(&queued, 5);
    ck_assert_int_eq(wpool_submit(pool, &queued.task), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* The child: the pool's threads are not here. */
        int bad = 0;
        job_init(&fresh, 1);
        bad |= wpool_submit(pool, &fresh.task) != -EOWNERDEAD;
        bad |= wpool_cancel(&queued.task) != -EOWNERDEAD;
        bad |= wpool_cancel_all(pool) != -EOWNERDEAD;
        bad |= wpool_dispatch(pool, 1) != -EOWNERDEAD;
        bad |= wpool_close(pool) != -EOWNERDEAD;
        bad |= wpool_token_cancel(tok) != -EOWNERDEAD;
        struct wpool_statistics st;
        bad |= wpool_stats(pool, &st) != -EOWNERDEAD;
        bad |= wpool_destroy(pool) != 0; /* frees the copy */
        bad |= wpool_token_destroy(tok) != 0;
        /* A pool made in the child works. */
        wpool_t *mine = NULL;
        struct wpool_options o = WPOOL_OPTIONS_INIT;
        o.threads = 1;
        bad |= wpool_create(&mine, &o) != 0;
        job_init(&fresh, 8);
        bad |= wpool_submit(mine, &fresh.task) != 0;
        bad |= wpool_port_settle(wpool_default_port(mine), -1) != 1;
        bad |= fresh.status != 8;
        bad |= wpool_destroy(mine) != 0;
        _exit(bad ? 1 : 0);
    }
    int wstatus = 0;
    ck_assert_int_eq(waitpid(pid, &wstatus, 0), pid);
    ck_assert(WIFEXITED(wstatus));
    ck_assert_int_eq(WEXITSTATUS(wstatus), 0);
    /* The parent's pool is untouched by the fork. */
    gate_open(&g);
    ck_assert_int_eq(drain_all(pool), 3);
    ck_assert_int_eq(queued.status, 5);
    ck_assert_int_eq(queued.done_calls, 1);
    ck_assert_int_eq(wpool_token_destroy(tok), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

static Suite *fork_suite(void)
{
    Suite *s = suite_create("fork");
    TCase *tc = tcase_create("fork");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_fork_child_gets_eownerdead, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(fork_suite());
}
