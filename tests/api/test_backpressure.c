/* SPDX-License-Identifier: MIT */
/* api suite: backpressure: max_queue, the blocking submit and the drain notification. Black-box:
 * only the public header. */
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

/* ---- backpressure --------------------------------------------------------------- */

static atomic_int g_drains;

static void on_drain_count(wpool_t *pool, void *arg)
{
    ck_assert_ptr_eq(arg, &g_drains);
    ck_assert_int_eq(wpool_needs_drain(pool), 0); /* room again, level-triggered */
    atomic_fetch_add(&g_drains, 1);
}

START_TEST(test_max_queue_and_drain)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 1;
    o.placement = policy(_i);
    o.queue_capacity = 64;
    o.max_queue = 3;
    wpool_t *pool = make_pool_opts(&o);
    atomic_store(&g_drains, 0);
    ck_assert_int_eq(wpool_on_drain(pool, NULL, on_drain_count, &g_drains), 0);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job blocker, jobs[4];
    hold_worker(pool, &blocker, 1000, &g, &started);
    ck_assert_int_eq(wpool_needs_drain(pool), 0);
    for (int i = 0; i < 3; i++) {
        job_init(&jobs[i], i);
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    }
    ck_assert_int_eq(wpool_needs_drain(pool), 1);
    job_init(&jobs[3], 3);
    ck_assert_int_eq(wpool_submit(pool, &jobs[3].task), -EAGAIN);
    ck_assert_int_eq(wpool_submit_wait(pool, &jobs[3].task, 0), -ETIMEDOUT);
    ck_assert_int_eq(wpool_submit_wait(pool, &jobs[3].task, 10), -ETIMEDOUT);
    /* No callback while the pool is still full. */
    ck_assert_int_eq(wpool_dispatch(pool, WPOOL_DISPATCH_ALL), 0);
    ck_assert_int_eq(atomic_load(&g_drains), 0);
    gate_open(&g);
    /* Four completions and the drain notification, dispatched like one. */
    ck_assert_int_eq(drain_all(pool), 5);
    ck_assert_int_eq(atomic_load(&g_drains), 1); /* exactly one for the refusals */
    ck_assert_int_eq(wpool_submit(pool, &jobs[3].task), 0);
    ck_assert_int_eq(drain_all(pool), 1);
    ck_assert_int_eq(atomic_load(&g_drains), 1); /* no refusal, no callback */
    ck_assert_int_eq(wpool_needs_drain(NULL), -EINVAL);
    ck_assert_int_eq(wpool_on_drain(NULL, NULL, NULL, NULL), -EINVAL);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* max_queue = 0: a task is accepted only while a worker is free. */
START_TEST(test_max_queue_zero)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 2;
    o.placement = policy(_i);
    o.max_queue = 0;
    wpool_t *pool = make_pool_opts(&o);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job b1, b2, extra;
    hold_worker(pool, &b1, 1000, &g, &started);
    hold_worker(pool, &b2, 1000, &g, &started);
    job_init(&extra, 3);
    ck_assert_int_eq(wpool_submit(pool, &extra.task), -EAGAIN);
    ck_assert_int_eq(wpool_needs_drain(pool), 1);
    gate_open(&g);
    /* A worker frees up: the blocking submit gets in. */
    ck_assert_int_eq(wpool_submit_wait(pool, &extra.task, -1), 0);
    ck_assert_int_eq(drain_all(pool), 3);
    ck_assert_int_eq(extra.status, 3);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

struct waiter {
    wpool_t *pool;
    struct job *job;
    int rc;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    w->rc = wpool_submit_wait(w->pool, &w->job->task, -1);
    return NULL;
}

static int wait_in_task(struct wpool_task *t)
{
    return wpool_submit_wait((wpool_t *)t->data, t, -1);
}

static void noop_done(struct wpool_task *t, int status)
{
    *(int *)((struct job *)t)->order = status;
}

START_TEST(test_submit_wait_blocks_until_room)
{
    enum { W = 4 };
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 1;
    o.placement = policy(_i);
    o.queue_capacity = 4; /* ring mode: capacity is the limit */
    wpool_t *pool = make_pool_opts(&o);
    struct gate g;
    atomic_int started = 0;
    gate_init(&g);
    struct job blocker, fill[4], wj[W];
    hold_worker(pool, &blocker, 1000, &g, &started);
    for (int i = 0; i < 4; i++) {
        job_init(&fill[i], i);
        ck_assert_int_eq(wpool_submit(pool, &fill[i].task), 0);
    }
    struct waiter w[W];
    pthread_t th[W];
    for (int i = 0; i < W; i++) {
        job_init(&wj[i], 10 + i);
        w[i] = (struct waiter){pool, &wj[i], 1};
        pthread_create(&th[i], NULL, waiter_main, &w[i]);
    }
    gate_open(&g);
    for (int i = 0; i < W; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(w[i].rc, 0);
    }
    ck_assert_int_eq(drain_all(pool), 5 + W);
    for (int i = 0; i < W; i++)
        ck_assert_int_eq(wj[i].status, 10 + i);
    /* From inside a task: refused, every worker could end up waiting. */
    struct job in;
    int in_status = 1;
    job_init(&in, 0);
    ck_assert_int_eq(wpool_task_init(&in.task, wait_in_task, noop_done), 0);
    in.task.data = pool;
    in.order = &in_status;
    ck_assert_int_eq(wpool_submit(pool, &in.task), 0);
    ck_assert_int_eq(drain_all(pool), 1);
    ck_assert_int_eq(in_status, -EDEADLK);
    ck_assert_int_eq(wpool_submit_wait(pool, &in.task, -2), -EINVAL);
    ck_assert_int_eq(wpool_close(pool), 0);
    ck_assert_int_eq(wpool_submit_wait(pool, &wj[0].task, -1), -ESHUTDOWN);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&g);
}
END_TEST

/* The drain notification is never lost (Piscina #796) nor owed forever: a
 * producer fills the pool, waits for the drain callback, and repeats. A lost
 * notification hangs the test (Check's timeout fails it). */
static int g_round_drained;

static void on_drain_flag(wpool_t *pool, void *arg)
{
    (void)pool;
    (void)arg;
    g_round_drained = 1;
}

static int tiny_work(struct wpool_task *t)
{
    (void)t;
    return 0;
}

static void tiny_done(struct wpool_task *t, int status)
{
    (void)t;
    ck_assert_int_eq(status, 0);
}

START_TEST(test_drain_never_lost)
{
    enum { ROUNDS = 2000, M = 8 };
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 2;
    o.placement = policy(_i);
    o.max_queue = M;
    wpool_t *pool = make_pool_opts(&o);
    ck_assert_int_eq(wpool_on_drain(pool, NULL, on_drain_flag, NULL), 0);
    struct wpool_task *tasks = calloc(64, sizeof(*tasks));
    unsigned next = 0;
    for (int r = 0; r < ROUNDS; r++) {
        g_round_drained = 0;
        for (;;) {
            struct wpool_task *t = &tasks[next % 64];
            if (wpool_task_init(t, tiny_work, tiny_done) == -EBUSY) {
                wpool_dispatch(pool, WPOOL_DISPATCH_ALL);
                continue;
            }
            int rc = wpool_submit(pool, t);
            if (rc == -EAGAIN)
                break;
            ck_assert_int_eq(rc, 0);
            next++;
        }
        while (!g_round_drained) {
            ck_assert_int_eq(wpool_port_wait(wpool_default_port(pool), -1), 0);
            wpool_dispatch(pool, WPOOL_DISPATCH_ALL);
        }
    }
    drain_all(pool);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    free(tasks);
}
END_TEST

static Suite *backpressure_suite(void)
{
    Suite *s = suite_create("backpressure");
    TCase *tc = tcase_create("backpressure");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_max_queue_and_drain, 0, 2);
    tcase_add_loop_test(tc, test_max_queue_zero, 0, 2);
    tcase_add_loop_test(tc, test_submit_wait_blocks_until_room, 0, 2);
    tcase_add_loop_test(tc, test_drain_never_lost, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(backpressure_suite());
}
