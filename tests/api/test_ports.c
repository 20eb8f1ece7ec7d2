/* SPDX-License-Identifier: MIT */
/* api suite: a destroyed port's handle stays safe to pass; a refused submit
 * does not wake the port's owner; the owner's submits and other threads'
 * are both counted for a settle. Black-box: only the public header. */
#include <wpool.h>

#include <check.h>
#include "../common/fastcheck.h"
#include "../common/jobs.h"
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
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

/* ---- a refusal wakes nobody --------------------------------------------------- */

/* Submits to a port of a bounded pool whose ring is full are refused, and the
 * port's fd stays quiet: an event loop is not woken for a refusal (on any
 * error nothing changed). Then the queued tasks complete there, in order. */
START_TEST(test_refusal_leaves_fd_quiet)
{
    enum { CAP = 4 };
    wpool_t *pool = make_bounded_pool(1, WPOOL_FIRST_FREE, CAP);
    wpool_port_t *port;
    ck_assert_int_eq(wpool_port_create(pool, &port), 0);
    struct gate g;
    gate_init(&g);
    atomic_int started = 0;
    struct job blocker, jobs[CAP + 1];
    hold_worker(pool, &blocker, 100, &g, &started);
    int queued = 0;
    for (int i = 0; i < CAP + 1; i++) {
        job_init(&jobs[i], i);
        ck_assert_int_eq(wpool_task_set_port(&jobs[i].task, port), 0);
    }
    while (queued < CAP + 1 && wpool_submit(pool, &jobs[queued].task) == 0)
        queued++;
    ck_assert_int_eq(queued, CAP); /* the ring is full */
    for (int k = 0; k < 1000; k++) {
        ck_assert_int_eq(wpool_submit(pool, &jobs[CAP].task), -EAGAIN);
        if (_i) /* a settle that times out meanwhile: still nothing posted */
            ck_assert_int_eq(wpool_port_settle(port, 0), -ETIMEDOUT);
    }
    struct pollfd pfd = {.fd = wpool_port_fd(port), .events = POLLIN};
    ck_assert_int_eq(poll(&pfd, 1, 0), 0);
    gate_open(&g);
    ck_assert_int_eq(wpool_port_settle(port, -1), CAP);
    for (int i = 0; i < CAP; i++)
        ck_assert_int_eq(jobs[i].status, i);
    ck_assert_int_eq(wpool_port_destroy(port), 0);
    ck_assert_int_eq(drain_all(pool), 1); /* the blocker */
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* ---- the owner and other threads submit to the default port at once ----- */

struct sender {
    wpool_t *pool;
    struct job *jobs;
    int n, refused;
    pthread_barrier_t *start;
};

static void *sender_main(void *arg)
{
    struct sender *s = arg;
    pthread_barrier_wait(s->start);
    for (int i = 0; i < s->n; i++)
        if (wpool_submit(s->pool, &s->jobs[i].task) != 0)
            s->refused++;
    return NULL;
}

/* The default port counts the owner's own submits in a word only the owner
 * reads, and other threads' in the shared gate word; a settle must see the
 * sum. Both kinds of submit run at once, then the settle must run every
 * callback exactly once (bug: a settle that misses either count returns
 * early or never). */
START_TEST(test_owner_and_others_submit_to_default_port)
{
    enum { SENDERS = 2, N = 2000, ROUNDS = 5 };
    wpool_t *pool = make_pool(2, policy(_i), 1024);
    struct job *jobs = calloc((size_t)(SENDERS + 1) * N, sizeof(*jobs));
    ck_assert_ptr_nonnull(jobs);
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < (SENDERS + 1) * N; i++) {
            job_init(&jobs[i], i);
            jobs[i].spin_us = i % 7 == 0 ? 20 : 0;
        }
        pthread_barrier_t start;
        pthread_barrier_init(&start, NULL, SENDERS + 1);
        struct sender s[SENDERS];
        pthread_t th[SENDERS];
        for (int k = 0; k < SENDERS; k++) {
            s[k] = (struct sender){pool, &jobs[(k + 1) * N], N, 0, &start};
            pthread_create(&th[k], NULL, sender_main, &s[k]);
        }
        pthread_barrier_wait(&start);
        int ran = 0;
        for (int i = 0; i < N; i++) {
            ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
            if (i % 64 == 63) { /* some callbacks run while the others still send */
                int r = wpool_dispatch(pool, 16);
                ck_assert_int_ge(r, 0);
                ran += r;
            }
        }
        for (int k = 0; k < SENDERS; k++) {
            pthread_join(th[k], NULL);
            ck_assert_int_eq(s[k].refused, 0);
        }
        pthread_barrier_destroy(&start);
        int settled = wpool_port_settle(wpool_default_port(pool), -1);
        ck_assert_int_eq(ran + settled, (SENDERS + 1) * N);
        for (int i = 0; i < (SENDERS + 1) * N; i++) {
            ck_assert_int_eq(jobs[i].done_calls, 1);
            ck_assert_int_eq(jobs[i].status, i);
        }
        ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), 0), 0);
    }
    ck_assert_int_eq(wpool_destroy(pool), 0);
    free(jobs);
}
END_TEST

static Suite *ports_suite(void)
{
    Suite *s = suite_create("ports");
    TCase *tc = tcase_create("ports");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_destroyed_port_handle, 0, 2);
    tcase_add_loop_test(tc, test_refusal_leaves_fd_quiet, 0, 2);
    tcase_add_loop_test(tc, test_owner_and_others_submit_to_default_port, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(ports_suite());
}
