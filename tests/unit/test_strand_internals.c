/* SPDX-License-Identifier: MIT */
/*
 * unit suite (cmocka): strands, white-box. A canceller reads a task's slot
 * without a lock; by the time it acts on it, the task may have left that
 * strand, run, been resubmitted on another strand, and the first strand may
 * have been destroyed and freed. wp_strand_withdraw with such a stale slot
 * must answer -EAGAIN and touch neither strand (a review found it unlinking
 * the task from the wrong strand's list, and locking a freed strand).
 */
#include "pool.h"
#include "strand.h"
#include "task.h"

#include <errno.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

static atomic_int hold; /* the blocker task spins while it is 1 */
static atomic_int blocker_in;

static int block_work(struct wpool_task *t)
{
    (void)t;
    atomic_store(&blocker_in, 1);
    while (atomic_load(&hold))
        sched_yield();
    return 0;
}

static int plain_work(struct wpool_task *t)
{
    (void)t;
    return 1;
}

static void nop_done(struct wpool_task *t, int status)
{
    (void)t;
    (void)status;
}

/* A one-worker pool whose worker is held inside a task. */
static wpool_t *held_pool(struct wpool_task *blocker)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 1;
    wpool_t *pool;
    assert_int_equal(wpool_create(&pool, &o), 0);
    atomic_store(&hold, 1);
    atomic_store(&blocker_in, 0);
    assert_int_equal(wpool_task_init(blocker, block_work, nop_done), 0);
    assert_int_equal(wpool_submit(pool, blocker), 0);
    while (!atomic_load(&blocker_in))
        sched_yield();
    return pool;
}

static void submit_on_done(wpool_t *pool, struct wpool_task *t, struct wpool_strand *s,
                           wpool_done_fn done)
{
    assert_int_equal(wpool_task_init(t, plain_work, done), 0);
    assert_int_equal(wpool_task_set_strand(t, s), 0);
    assert_int_equal(wpool_submit(pool, t), 0);
}

static void submit_on(wpool_t *pool, struct wpool_task *t, struct wpool_strand *s)
{
    submit_on_done(pool, t, s, nop_done);
}

/* T waited on s1 (the stale slot), then was resubmitted on s2; s1 has a
 * new waiting task V. The stale withdraw must leave both lists alone. */
static void test_stale_slot_other_strand(void **state)
{
    (void)state;
    struct wpool_task blocker = {0}, h1 = {0}, t = {0}, h2 = {0}, h3 = {0}, v = {0};
    wpool_t *pool = held_pool(&blocker);
    struct wpool_strand s1 = {0}, s2 = {0};
    assert_int_equal(wpool_strand_init(&s1, pool), 0);
    assert_int_equal(wpool_strand_init(&s2, pool), 0);
    submit_on(pool, &h1, &s1);
    submit_on(pool, &t, &s1);
    uint64_t stale = atomic_load(&wp_t(&t)->slot);
    assert_true(wp_slot_is_strand(stale));
    /* T moves on (its head withdrawn), is withdrawn itself, and completes. */
    assert_int_equal(wpool_cancel(&h1), 0);
    assert_int_equal(wpool_cancel(&t), 0);
    assert_int_equal(wpool_dispatch(pool, 16), 2);
    /* ... then waits on s2; s1 gets a new waiting task V. */
    submit_on(pool, &h2, &s2);
    submit_on(pool, &t, &s2);
    submit_on(pool, &h3, &s1);
    submit_on(pool, &v, &s1);
    assert_int_equal(wp_strand_withdraw(&t, stale), -EAGAIN);
    /* Both lists intact: each task is withdrawn exactly where it waits. */
    assert_int_equal(wpool_cancel(&v), 0);
    assert_int_equal(wpool_cancel(&t), 0);
    atomic_store(&hold, 0);
    assert_int_equal(wpool_port_settle(wpool_default_port(pool), 10000), 5);
    assert_int_equal(wpool_strand_destroy(&s1), 0);
    assert_int_equal(wpool_strand_destroy(&s2), 0);
    assert_int_equal(wpool_destroy(pool), 0);
}

/* T waited on s1 (the stale slot); s1 was then destroyed and freed (the
 * contract allows it once T's completion has started). The stale withdraw
 * must not touch it: under AddressSanitizer, a use after free fails here. */
static void test_stale_slot_freed_strand(void **state)
{
    (void)state;
    struct wpool_task blocker = {0}, h1 = {0}, t = {0};
    wpool_t *pool = held_pool(&blocker);
    struct wpool_strand *s1 = calloc(1, sizeof(*s1));
    assert_non_null(s1);
    assert_int_equal(wpool_strand_init(s1, pool), 0);
    submit_on(pool, &h1, s1);
    submit_on(pool, &t, s1);
    uint64_t stale = atomic_load(&wp_t(&t)->slot);
    assert_int_equal(wpool_cancel(&h1), 0);
    assert_int_equal(wpool_cancel(&t), 0);
    assert_int_equal(wpool_dispatch(pool, 16), 2);
    assert_int_equal(wpool_strand_destroy(s1), 0);
    memset(s1, 0xa5, sizeof(*s1));
    free(s1);
    assert_int_equal(wp_strand_withdraw(&t, stale), -EAGAIN);
    atomic_store(&hold, 0);
    assert_int_equal(wpool_port_settle(wpool_default_port(pool), 10000), 1);
    assert_int_equal(wpool_destroy(pool), 0);
}

static atomic_int hold2, second_in;

static int block2_work(struct wpool_task *t)
{
    (void)t;
    atomic_store(&second_in, 1);
    while (atomic_load(&hold2))
        sched_yield();
    return 0;
}

static int status_of[3];

static void record_done(struct wpool_task *t, int status)
{
    status_of[(intptr_t)t->data] = status;
}

/* A strand's next task handed over while the ring is full goes to the
 * overflow (its slot cleared once `over` names the list), and from there
 * into a ring with the tasks a worker moves: a cancel finds it at each step
 * (a review found the overflow step's clear overwriting a move's cell, and
 * a cancel answering "not queued" between the steps). */
static void test_released_through_overflow(void **state)
{
    (void)state;
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 1;
    o.queue_capacity = 2;
    wpool_t *pool;
    assert_int_equal(wpool_create(&pool, &o), 0);
    struct wpool_task b1 = {0}, p1 = {0}, p2 = {0}, b2 = {0}, h = {0}, t1 = {0}, t2 = {0};
    atomic_store(&hold, 1);
    atomic_store(&hold2, 1);
    atomic_store(&blocker_in, 0);
    atomic_store(&second_in, 0);
    assert_int_equal(wpool_task_init(&b1, block_work, nop_done), 0);
    assert_int_equal(wpool_submit(pool, &b1), 0);
    while (!atomic_load(&blocker_in))
        sched_yield();
    assert_int_equal(wpool_task_init(&p1, plain_work, nop_done), 0);
    assert_int_equal(wpool_task_init(&p2, plain_work, nop_done), 0);
    assert_int_equal(wpool_submit(pool, &p1), 0); /* the ring is full */
    assert_int_equal(wpool_submit(pool, &p2), 0);
    assert_int_equal(wpool_task_init(&b2, block2_work, nop_done), 0);
    assert_int_equal(wpool_submit(pool, &b2), 0); /* the overflow: b2 */
    struct wpool_strand s = {0};
    assert_int_equal(wpool_strand_init(&s, pool), 0);
    submit_on(pool, &h, &s); /* the overflow: b2, h */
    t1.data = (void *)1;
    t2.data = (void *)2;
    submit_on_done(pool, &t1, &s, record_done); /* waiting: t1, t2 */
    submit_on_done(pool, &t2, &s, record_done);
    assert_int_equal(wpool_task_set_port(&t1, NULL), -EBUSY); /* in flight */
    /* h withdrawn: t1 is handed over, behind b2 in the overflow. */
    assert_int_equal(wpool_cancel(&h), 0);
    assert_non_null(atomic_load(&wp_t(&t1)->over));
    assert_int_equal(atomic_load(&wp_t(&t1)->slot), 0);
    /* The worker runs p1, p2, then takes b2 from the overflow and moves t1
     * into the ring; b2 holds it. */
    atomic_store(&hold, 0);
    while (!atomic_load(&second_in))
        sched_yield();
    assert_null(atomic_load(&wp_t(&t1)->over));
    uint64_t slot = atomic_load(&wp_t(&t1)->slot);
    assert_true(slot != 0 && !wp_slot_is_strand(slot));
    /* Withdrawn from its cell: t2 is handed over in turn. */
    assert_int_equal(wpool_cancel(&t1), 0);
    assert_false(wp_slot_is_strand(atomic_load(&wp_t(&t2)->slot)));
    atomic_store(&hold2, 0);
    assert_int_equal(wpool_port_settle(wpool_default_port(pool), 10000), 7);
    assert_int_equal(status_of[1], -ECANCELED);
    assert_int_equal(status_of[2], 1);
    assert_int_equal(wpool_strand_destroy(&s), 0);
    assert_int_equal(wpool_destroy(pool), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stale_slot_other_strand),
        cmocka_unit_test(test_stale_slot_freed_strand),
        cmocka_unit_test(test_released_through_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
