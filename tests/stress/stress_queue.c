/* SPDX-License-Identifier: MIT */
/*
 * stress suite: the queue alone. P producers push disjoint ranges of items,
 * C consumers pop until all are taken; every item must be consumed exactly
 * once, and a random fraction is withdrawn with wp_queue_cancel by the
 * producers racing the consumers (each item: consumed xor cancelled).
 * White-box: links the library's internals.
 */
#include "../common/helpers.h"
#include "queue.h"

#include <check.h>
#include "../common/fastcheck.h"
#include <errno.h>
#include <sched.h>
#include <stdlib.h>

#define ITEMS_PER_PRODUCER 200000

struct shared {
    struct wp_queue q;
    atomic_uchar *taken; /* 1 consumed, 2 cancelled */
    atomic_long done;    /* consumed + cancelled */
    long total;
};

struct pctx {
    struct shared *s;
    long first;
    uint64_t rng;
};

static void *qproducer(void *arg)
{
    struct pctx *c = arg;
    struct shared *s = c->s;
    for (long i = 0; i < ITEMS_PER_PRODUCER; i++) {
        long id = c->first + i;
        uint64_t pos;
        int rc;
        while ((rc = wp_queue_reserve(&s->q, &pos)) == -EAGAIN)
            sched_yield();
        REQUIRE(rc == 0, "reserve: %d", rc);
        /* Items are id + 1 so that none is NULL. */
        wp_queue_publish(&s->q, pos, (void *)(uintptr_t)(id + 1));
        if ((rng_next(&c->rng) & 15) == 0 &&
            wp_queue_cancel(&s->q, pos, (void *)(uintptr_t)(id + 1))) {
            unsigned char prev = atomic_exchange(&s->taken[id], 2);
            REQUIRE(prev == 0, "item %ld cancelled after being taken", id);
            atomic_fetch_add(&s->done, 1);
        }
    }
    return NULL;
}

static void *qconsumer(void *arg)
{
    struct shared *s = arg;
    while (atomic_load(&s->done) < s->total) {
        void *item;
        if (!wp_queue_pop(&s->q, &item)) {
            sched_yield();
            continue;
        }
        if (!item)
            continue; /* tombstone of a cancelled item */
        long id = (long)(uintptr_t)item - 1;
        unsigned char prev = atomic_exchange(&s->taken[id], 1);
        REQUIRE(prev == 0, "item %ld taken twice (%d)", id, prev);
        atomic_fetch_add(&s->done, 1);
    }
    return NULL;
}

static void run_queue(int producers, int consumers, uint32_t capacity)
{
    struct shared s;
    ck_assert_int_eq(wp_queue_init(&s.q, capacity), 0);
    s.total = (long)producers * ITEMS_PER_PRODUCER;
    s.taken = calloc((size_t)s.total, 1);
    atomic_init(&s.done, 0);
    pthread_t pt[8], ct[8];
    struct pctx pc[8];
    for (int i = 0; i < consumers; i++)
        pthread_create(&ct[i], NULL, qconsumer, &s);
    for (int i = 0; i < producers; i++) {
        pc[i] = (struct pctx){&s, (long)i * ITEMS_PER_PRODUCER, 0x1234567ull * (uint64_t)(i + 1)};
        pthread_create(&pt[i], NULL, qproducer, &pc[i]);
    }
    for (int i = 0; i < producers; i++)
        pthread_join(pt[i], NULL);
    for (int i = 0; i < consumers; i++)
        pthread_join(ct[i], NULL);
    long consumed = 0, cancelled = 0;
    for (long id = 0; id < s.total; id++) {
        unsigned char v = atomic_load(&s.taken[id]);
        REQUIRE(v == 1 || v == 2, "item %ld lost", id);
        consumed += v == 1;
        cancelled += v == 2;
    }
    ck_assert_int_eq(consumed + cancelled, s.total);
    ck_assert_int_gt(cancelled, 0);
    /* Only tombstones of cancelled items may be left; then it is empty and
     * closing drains it. */
    void *item;
    while (wp_queue_pop(&s.q, &item))
        REQUIRE(item == NULL, "live item left behind");
    wp_queue_close(&s.q);
    ck_assert(wp_queue_finished(&s.q));
    wp_queue_fini(&s.q);
    free(s.taken);
}

START_TEST(test_queue_mpmc)
{
    static const int shapes[][3] = {{1, 1, 64}, {2, 2, 64}, {4, 4, 1024},
                                    {4, 1, 16}, {1, 4, 16}, {3, 3, 2}};
    run_queue(shapes[_i][0], shapes[_i][1], (uint32_t)shapes[_i][2]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stress-queue");
    TCase *tc = tcase_create("queue");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_queue_mpmc, 0, 6);
    suite_add_tcase(s, tc);
    return wp_run_suite(s);
}
