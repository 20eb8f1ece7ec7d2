/* SPDX-License-Identifier: MIT */
/* unit suite (cmocka): the ring, white-box and single-threaded. */
#include "queue.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#define ITEM(i) ((void *)(uintptr_t)((i) + 1))

static void push(struct wp_queue *q, uintptr_t i)
{
    uint64_t pos;
    assert_int_equal(wp_queue_reserve(q, &pos), 0);
    wp_queue_publish(q, pos, ITEM(i));
}

static uintptr_t pop(struct wp_queue *q)
{
    void *item = NULL;
    assert_true(wp_queue_pop(q, &item));
    return (uintptr_t)item - 1;
}

/* FIFO order, exact capacity, and -EAGAIN when full, at every size 2..2^12
 * (this also proves the cell spreading is a bijection: a collision would lose
 * or reorder an item). */
static void test_fifo_full_all_capacities(void **state)
{
    for (uint32_t cap = 2; cap <= 4096; cap *= 2) {
        struct wp_queue q;
        assert_int_equal(wp_queue_init(&q, cap), 0);
        for (int lap = 0; lap < 3; lap++) {
            for (uintptr_t i = 0; i < cap; i++)
                push(&q, i);
            uint64_t pos;
            assert_int_equal(wp_queue_reserve(&q, &pos), -EAGAIN);
            assert_int_equal(wp_queue_size(&q), cap);
            for (uintptr_t i = 0; i < cap; i++)
                assert_int_equal(pop(&q), i);
            void *item;
            assert_false(wp_queue_pop(&q, &item));
            assert_int_equal(wp_queue_size(&q), 0);
        }
        wp_queue_fini(&q);
    }
}

static void test_close_and_drained(void **state)
{
    struct wp_queue q;
    assert_int_equal(wp_queue_init(&q, 8), 0);
    push(&q, 1);
    push(&q, 2);
    assert_false(wp_queue_closed(&q));
    assert_false(wp_queue_finished(&q));
    wp_queue_close(&q);
    assert_true(wp_queue_closed(&q));
    uint64_t pos;
    assert_int_equal(wp_queue_reserve(&q, &pos), -ESHUTDOWN);
    assert_false(wp_queue_finished(&q)); /* two items left */
    assert_int_equal(pop(&q), 1);
    assert_false(wp_queue_finished(&q));
    assert_int_equal(pop(&q), 2);
    assert_true(wp_queue_finished(&q));
    wp_queue_fini(&q);
}

/* A reserved but unpublished slot hides nothing: drained stays false and the
 * item behind it is not skipped. */
static void test_stalled_producer(void **state)
{
    struct wp_queue q;
    assert_int_equal(wp_queue_init(&q, 8), 0);
    uint64_t stalled;
    assert_int_equal(wp_queue_reserve(&q, &stalled), 0);
    push(&q, 7);
    void *item;
    assert_false(wp_queue_pop(&q, &item)); /* blocked behind the stalled slot */
    wp_queue_close(&q);
    assert_false(wp_queue_finished(&q));
    wp_queue_publish(&q, stalled, ITEM(6));
    assert_int_equal(pop(&q), 6);
    assert_int_equal(pop(&q), 7);
    assert_true(wp_queue_finished(&q));
    wp_queue_fini(&q);
}

static void test_cancel_tombstone_reclaim(void **state)
{
    struct wp_queue q;
    uint64_t pos[4];
    assert_int_equal(wp_queue_init(&q, 4), 0);
    for (uintptr_t i = 0; i < 4; i++) {
        assert_int_equal(wp_queue_reserve(&q, &pos[i]), 0);
        wp_queue_publish(&q, pos[i], ITEM(i));
    }
    assert_true(wp_queue_cancel(&q, pos[0], ITEM(0)));
    assert_false(wp_queue_cancel(&q, pos[0], ITEM(0))); /* only once */
    assert_false(wp_queue_cancel(&q, pos[1], ITEM(9))); /* not that item */
    assert_true(wp_queue_cancel(&q, pos[1], ITEM(1)));
    assert_true(wp_queue_cancel(&q, pos[3], ITEM(3))); /* behind a live one */
    uint64_t p;
    assert_int_equal(wp_queue_reserve(&q, &p), -EAGAIN);
    wp_queue_reclaim(&q); /* frees the two tombstones at the tail only */
    assert_int_equal(wp_queue_size(&q), 2);
    push(&q, 4);
    push(&q, 5);
    assert_int_equal(wp_queue_reserve(&q, &p), -EAGAIN);
    assert_int_equal(pop(&q), 2);
    void *item = ITEM(0);
    assert_true(wp_queue_pop(&q, &item));
    assert_null(item); /* the tombstone of item 3 */
    assert_int_equal(pop(&q), 4);
    assert_false(wp_queue_cancel(&q, pos[2], ITEM(2))); /* already consumed */
    assert_int_equal(pop(&q), 5);
    wp_queue_fini(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_full_all_capacities),
        cmocka_unit_test(test_close_and_drained),
        cmocka_unit_test(test_stalled_producer),
        cmocka_unit_test(test_cancel_tombstone_reclaim),
    };
    return cmocka_run_group_tests_name("queue", tests, NULL, NULL);
}
