/* SPDX-License-Identifier: MIT */
/*
 * unit suite (cmocka): no allocation per task. The library is linked
 * statically with -Wl,--wrap for every allocator entry point, so each call the
 * library makes is counted. After a warm-up, 100k tasks go through submit ->
 * run -> complete -> dispatch on both policies with zero allocations and zero
 * frees; destroy then frees exactly what create allocated.
 */
#include <wpool.h>

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

/* When > 0: the fail_at-th allocation from now fails (returns NULL). */
static atomic_long g_fail_at;

static bool alloc_shim_fail(void)
{
    long n = atomic_load(&g_fail_at);
    return n > 0 && atomic_fetch_sub(&g_fail_at, 1) == 1;
}

#include "../common/alloc_shim.h"

static long g_done;

static int nop_work(struct wpool_task *t)
{
    return 0;
}

static void count_done(struct wpool_task *t, int status)
{
    g_done++;
}

/* Holds its worker until g_release: the rings fill and the rest overflows. */
static atomic_int g_blocked, g_release;

static int block_work(struct wpool_task *t)
{
    atomic_fetch_add(&g_blocked, 1);
    while (!atomic_load(&g_release))
        sched_yield();
    return 0;
}

static void run_tasks(wpool_t *pool, struct wpool_task *tasks, int window, long total)
{
    long submitted = 0;
    g_done = 0;
    while (g_done < total) {
        /* Resubmit every idle record in the window. */
        for (int i = 0; i < window && submitted < total; i++) {
            int rc = wpool_submit(pool, &tasks[i]);
            if (rc == 0)
                submitted++;
            else
                assert_true(rc == -EBUSY || rc == -EAGAIN);
        }
        int rc = wpool_port_wait(wpool_default_port(pool), -1);
        assert_int_equal(rc, 0);
        assert_true(wpool_dispatch(pool, 4096) >= 0);
    }
    assert_int_equal(wpool_port_settle(wpool_default_port(pool), -1), 0);
}

static void zero_allocs_per_task(int dispatch, unsigned cap)
{
    enum { WINDOW = 512 };
    static struct wpool_task tasks[WINDOW];
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 2;
    o.placement = dispatch;
    o.queue_capacity = cap;
    long a0 = atomic_load(&g_allocs), f0 = atomic_load(&g_frees);
    wpool_t *pool;
    assert_int_equal(wpool_create(&pool, &o), 0);
    long create_allocs = atomic_load(&g_allocs) - a0;
    assert_true(create_allocs > 0); /* the wrap is really counting */
    for (int i = 0; i < WINDOW; i++)
        assert_int_equal(wpool_task_init(&tasks[i], nop_work, count_done), 0);
    run_tasks(pool, tasks, WINDOW, 1000); /* warm-up */
    long a1 = atomic_load(&g_allocs), f1 = atomic_load(&g_frees);
    run_tasks(pool, tasks, WINDOW, 100000);
    if (cap < WINDOW) {
        /* Past the rings: with both workers held, all WINDOW tasks are
         * accepted at once (what does not fit waits in the overflow), and
         * run when released, still without an allocation. */
        static struct wpool_task blockers[2];
        atomic_store(&g_blocked, 0);
        atomic_store(&g_release, 0);
        for (int i = 0; i < 2; i++) {
            assert_int_equal(wpool_task_init(&blockers[i], block_work, count_done), 0);
            assert_int_equal(wpool_submit(pool, &blockers[i]), 0);
        }
        while (atomic_load(&g_blocked) < 2)
            sched_yield();
        for (int i = 0; i < WINDOW; i++)
            assert_int_equal(wpool_submit(pool, &tasks[i]), 0);
        atomic_store(&g_release, 1);
        assert_int_equal(wpool_port_settle(wpool_default_port(pool), -1), WINDOW + 2);
    }
    assert_int_equal(atomic_load(&g_allocs) - a1, 0);
    assert_int_equal(atomic_load(&g_frees) - f1, 0);
    assert_int_equal(wpool_destroy(pool), 0);
    /* Everything create allocated is freed by destroy. */
    assert_int_equal(atomic_load(&g_frees) - f0, atomic_load(&g_allocs) - a0);
}

static void test_zero_allocs_first_free(void **state)
{
    zero_allocs_per_task(WPOOL_FIRST_FREE, 1024);
}

static void test_zero_allocs_round_robin(void **state)
{
    zero_allocs_per_task(WPOOL_ROUND_ROBIN, 1024);
}

/* Rings of 16 slots, 512 tasks in flight: the overflow holds the rest, and
 * still nothing is allocated per task. */
static void test_zero_allocs_past_the_ring(void **state)
{
    zero_allocs_per_task(WPOOL_FIRST_FREE, 16);
    zero_allocs_per_task(WPOOL_ROUND_ROBIN, 16);
}

/* Each allocation of wpool_create fails in turn: -ENOMEM, nothing leaked, no
 * crash (regression: a failed worker array crashed the cleanup), and a pool
 * created afterwards works. */
static void test_create_fails_at_each_allocation(void **state)
{
    for (int policy = 0; policy < 2; policy++) {
        int k;
        for (k = 1; k < 64; k++) {
            struct wpool_options o = WPOOL_OPTIONS_INIT;
            o.threads = 3;
            o.placement = policy;
            long a0 = atomic_load(&g_allocs), f0 = atomic_load(&g_frees);
            wpool_t *pool = NULL;
            atomic_store(&g_fail_at, k);
            int rc = wpool_create(&pool, &o);
            long left = atomic_load(&g_fail_at);
            atomic_store(&g_fail_at, 0);
            if (rc == 0) {
                assert_true(left > 0); /* every allocation succeeded */
                assert_int_equal(wpool_destroy(pool), 0);
                break;
            }
            assert_int_equal(rc, -ENOMEM);
            assert_null(pool);
            assert_int_equal(atomic_load(&g_frees) - f0, atomic_load(&g_allocs) - a0);
        }
        assert_true(k > 3); /* create allocates several things, each was failed */
        static struct wpool_task tasks[16];
        wpool_t *pool;
        assert_int_equal(wpool_create(&pool, NULL), 0);
        for (int i = 0; i < 16; i++)
            assert_int_equal(wpool_task_init(&tasks[i], nop_work, count_done), 0);
        run_tasks(pool, tasks, 16, 100);
        assert_int_equal(wpool_destroy(pool), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_allocs_first_free),
        cmocka_unit_test(test_zero_allocs_round_robin),
        cmocka_unit_test(test_zero_allocs_past_the_ring),
        cmocka_unit_test(test_create_fails_at_each_allocation),
    };
    return cmocka_run_group_tests_name("alloc", tests, NULL, NULL);
}
