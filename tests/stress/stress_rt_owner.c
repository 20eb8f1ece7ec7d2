/* SPDX-License-Identifier: MIT */
/*
 * stress suite, run under `taskset -c 0`: a port owner at real-time priority
 * (SCHED_FIFO) destroys its port right after dispatching the last completion.
 *
 * On one CPU the worker's eventfd write wakes the owner, which may preempt
 * the worker at once: the worker is then still inside wp_port_post (its
 * guard word still names the port) when the owner's wpool_port_destroy runs,
 * and the destroy must wait for it. It yields, then sleeps (nanosleep): a
 * FIFO thread's sched_yield never gives the CPU to a SCHED_OTHER one, its
 * sleep does, so the worker finishes and the destroy goes on. The 0.2 code
 * only spun with sched_yield there: each such round lasted until real-time
 * throttling stepped in (about a second; 90 of 300 rounds in a probe on this
 * machine kind). The Linux throttle keeps that from hanging for ever, so
 * this test catches only a wait that never ends (its timeout), not the 0.2
 * stall; it keeps the sleeping path of wp_port_quiesce exercised under real preemption. Needs
 * CAP_SYS_NICE (CI runs as root): without it the test fails, saying so.
 */
#include <wpool.h>

#include <check.h>
#include "../common/fastcheck.h"
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

enum { ROUNDS = 200 };

struct owner {
    wpool_t *pool;
    int rounds, failures, setsched;
};

static int noop_work(struct wpool_task *t)
{
    (void)t;
    return 7;
}

static void count_done(struct wpool_task *t, int status)
{
    int *n = t->data;
    *n += status == 7;
}

static void *owner_main(void *arg)
{
    struct owner *o = arg;
    struct sched_param sp = {.sched_priority = 1};
    o->setsched = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
    if (o->setsched)
        return NULL;
    for (int r = 0; r < ROUNDS; r++) {
        wpool_port_t *port;
        if (wpool_port_create(o->pool, &port) != 0) {
            o->failures++;
            break;
        }
        int done = 0;
        struct wpool_task t;
        memset(&t, 0, sizeof(t));
        t.data = &done;
        wpool_task_init(&t, noop_work, count_done);
        wpool_task_set_port(&t, port);
        if (wpool_submit(o->pool, &t) != 0)
            o->failures++;
        while (done == 0) {
            struct pollfd p = {.fd = wpool_port_fd(port), .events = POLLIN};
            if (poll(&p, 1, -1) < 0 && errno != EINTR)
                o->failures++;
            if (wpool_port_dispatch(port, WPOOL_DISPATCH_ALL) < 0)
                o->failures++;
        }
        /* The worker that signalled may still be inside wp_port_post. */
        if (wpool_port_destroy(port) != 0)
            o->failures++;
        o->rounds++;
    }
    return NULL;
}

START_TEST(test_rt_owner_destroys_port)
{
    struct wpool_options opts = WPOOL_OPTIONS_INIT;
    opts.threads = 1;
    wpool_t *pool = NULL;
    ck_assert_int_eq(wpool_create(&pool, &opts), 0); /* workers stay SCHED_OTHER */
    struct owner o = {.pool = pool};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, owner_main, &o), 0);
    pthread_join(th, NULL);
    ck_assert_msg(o.setsched == 0, "SCHED_FIFO refused (%s): run as root or with CAP_SYS_NICE",
                  strerror(o.setsched));
    ck_assert_int_eq(o.failures, 0);
    ck_assert_int_eq(o.rounds, ROUNDS);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("rt_owner");
    TCase *tc = tcase_create("rt_owner");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_rt_owner_destroys_port);
    suite_add_tcase(s, tc);
    return wp_run_suite(s);
}
