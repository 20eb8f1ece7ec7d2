/* SPDX-License-Identifier: MIT */
/* api suite: worker hooks, identity, stack size and nice; option validation. Black-box: only the
 * public header. */
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

/* ---- worker hooks and identity ------------------------------------------------------- */

struct hooks {
    atomic_int started, stopped;
    atomic_uint start_mask, stop_mask;
    atomic_int bad;
};

static void hook_start(void *arg, unsigned index)
{
    struct hooks *h = arg;
    if (wpool_worker_index() != (int)index)
        atomic_store(&h->bad, 1);
    atomic_fetch_or(&h->start_mask, 1u << index);
    atomic_fetch_add(&h->started, 1);
}

static void hook_stop(void *arg, unsigned index)
{
    struct hooks *h = arg;
    atomic_fetch_or(&h->stop_mask, 1u << index);
    atomic_fetch_add(&h->stopped, 1);
}

struct probe {
    struct wpool_task task;
    int index;
    size_t stack;
    int nice;
};

static int probe_work(struct wpool_task *t)
{
    struct probe *p = (struct probe *)t;
    p->index = wpool_worker_index();
    pthread_attr_t attr;
    pthread_getattr_np(pthread_self(), &attr);
    pthread_attr_getstacksize(&attr, &p->stack);
    pthread_attr_destroy(&attr);
    errno = 0;
    p->nice = getpriority(PRIO_PROCESS, (id_t)gettid());
    return 0;
}

static void probe_done(struct wpool_task *t, int status)
{
    (void)t;
    ck_assert_int_eq(status, 0);
}

START_TEST(test_hooks_identity_stack_nice)
{
    enum { T = 3 };
    struct hooks h = {0};
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = T;
    o.placement = policy(_i);
    o.on_worker_start = hook_start;
    o.on_worker_stop = hook_stop;
    o.hook_arg = &h;
    o.stack_size = 256 * 1024;
    o.nice = 3;
    errno = 0;
    int base_nice = getpriority(PRIO_PROCESS, (id_t)gettid());
    ck_assert_int_eq(wpool_worker_index(), -1);
    wpool_t *pool = make_pool_opts(&o);
    /* Every start hook ran before wpool_create returned. */
    ck_assert_int_eq(atomic_load(&h.started), T);
    ck_assert_uint_eq(atomic_load(&h.start_mask), (1u << T) - 1);
    ck_assert_int_eq(atomic_load(&h.stopped), 0);
    struct probe p[16];
    for (int i = 0; i < 16; i++) {
        memset(&p[i], 0, sizeof(p[i]));
        p[i].index = -2;
        ck_assert_int_eq(wpool_task_init(&p[i].task, probe_work, probe_done), 0);
        ck_assert_int_eq(wpool_submit(pool, &p[i].task), 0);
    }
    ck_assert_int_eq(drain_all(pool), 16);
    for (int i = 0; i < 16; i++) {
        ck_assert_int_ge(p[i].index, 0);
        ck_assert_int_lt(p[i].index, T);
        ck_assert_uint_ge(p[i].stack, o.stack_size);
        ck_assert_uint_lt(p[i].stack, 1024 * 1024); /* not the 8 MiB default */
        ck_assert_int_eq(p[i].nice, base_nice + 3 > 19 ? 19 : base_nice + 3);
    }
    ck_assert_int_eq(wpool_worker_index(), -1); /* the owner is no worker */
    ck_assert_int_eq(wpool_destroy(pool), 0);
    ck_assert_int_eq(atomic_load(&h.stopped), T);
    ck_assert_uint_eq(atomic_load(&h.stop_mask), (1u << T) - 1);
    ck_assert_int_eq(atomic_load(&h.bad), 0);
}
END_TEST

START_TEST(test_new_options_validated)
{
    wpool_t *pool = NULL;
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    struct wpool_options d;
    wpool_options_init(&d);
    ck_assert_int_eq(memcmp(&o, &d, sizeof(o)), 0); /* macro == function */
    o.threads = 1;
    o.stack_size = 1024; /* below PTHREAD_STACK_MIN */
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL);
    o.stack_size = 0;
    o.nice = 20;
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL);
    o.nice = -21;
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL);
    o.nice = 0;
    o.timing = 2;
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL);
    o.timing = 1;
    o.drain_low_water = 4; /* needs a max_queue */
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL);
    o.max_queue = 4; /* low water must be below it */
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL);
    o.drain_low_water = 3;
    o.queue_capacity = 2;
    o.bounded = 1;
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL); /* above what the rings hold */
    o.bounded = 0;                                      /* unbounded: the overflow holds the rest */
    ck_assert_int_eq(wpool_create(&pool, &o), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    o.bounded = 1;
    o.queue_capacity = 4;
    ck_assert_int_eq(wpool_create(&pool, &o), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    o.reserved[2] = 1;
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL);
    o.reserved[2] = 0;
    o.bounded = 2;
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL);
    o.bounded = 0;
    o.coalesce_us = WPOOL_MAX_COALESCE_US + 1;
    ck_assert_int_eq(wpool_create(&pool, &o), -EINVAL);
    o.coalesce_us = WPOOL_MAX_COALESCE_US;
    ck_assert_int_eq(wpool_create(&pool, &o), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

static Suite *hooks_suite(void)
{
    Suite *s = suite_create("hooks");
    TCase *tc = tcase_create("hooks");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_hooks_identity_stack_nice, 0, 2);
    tcase_add_test(tc, test_new_options_validated);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(hooks_suite());
}
