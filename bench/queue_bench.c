/* SPDX-License-Identifier: MIT */
/*
 * The queue alone: wpool's lock-free ring (src/queue.c) against a bounded ring
 * behind one pthread mutex, same capacity, P producer and P consumer threads.
 * Full or empty: spin a little, then sched_yield (same for both rings), so the
 * numbers compare the data structures, not a sleeping strategy.
 *
 *   wpool-bench-queue RING PAIRS ITEMS_PER_PRODUCER     RING: wpool | mutex
 *
 * Prints one JSON object; exits non-zero if an item is lost or duplicated
 * (checked with a sum and a count).
 */
#include "queue.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CAPACITY 4096u

struct mutex_ring {
    pthread_mutex_t lock;
    uint64_t head, tail;
    void *cells[CAPACITY];
};

static struct wp_queue ring;
static struct mutex_ring mring = {PTHREAD_MUTEX_INITIALIZER, 0, 0, {0}};
static bool use_wpool;
static uint64_t per_producer;
static _Atomic uint64_t consumed, consumed_sum;
static uint64_t total;
static _Atomic int go;

static bool push(void *item)
{
    if (use_wpool) {
        uint64_t pos;
        int rc = wp_queue_reserve(&ring, &pos);
        if (rc)
            return false;
        wp_queue_publish(&ring, pos, item);
        return true;
    }
    pthread_mutex_lock(&mring.lock);
    bool ok = mring.head - mring.tail < CAPACITY;
    if (ok)
        mring.cells[mring.head++ % CAPACITY] = item;
    pthread_mutex_unlock(&mring.lock);
    return ok;
}

static bool pop(void **item)
{
    if (use_wpool)
        return wp_queue_pop(&ring, item);
    pthread_mutex_lock(&mring.lock);
    bool ok = mring.head != mring.tail;
    if (ok)
        *item = mring.cells[mring.tail++ % CAPACITY];
    pthread_mutex_unlock(&mring.lock);
    return ok;
}

static void wait_a_bit(unsigned int *spins)
{
    if (++*spins < 64)
        return;
    *spins = 0;
    sched_yield();
}

static void *producer(void *arg)
{
    uint64_t base = (uint64_t)(uintptr_t)arg * per_producer;
    while (!atomic_load(&go))
        sched_yield();
    unsigned int spins = 0;
    for (uint64_t i = 1; i <= per_producer; i++)
        while (!push((void *)(uintptr_t)(base + i)))
            wait_a_bit(&spins);
    return NULL;
}

static void *consumer(void *arg)
{
    uint64_t n = 0, sum = 0;
    unsigned int spins = 0;
    while (!atomic_load(&go))
        sched_yield();
    while (atomic_load_explicit(&consumed, memory_order_relaxed) < total) {
        void *item;
        if (pop(&item)) {
            n++;
            sum += (uint64_t)(uintptr_t)item;
            /* Publish progress in chunks, so the shared counter is not the
             * bottleneck being measured. */
            if (n == 256) {
                atomic_fetch_add(&consumed, n);
                atomic_fetch_add(&consumed_sum, sum);
                n = sum = 0;
            }
        } else {
            if (n) {
                atomic_fetch_add(&consumed, n);
                atomic_fetch_add(&consumed_sum, sum);
                n = sum = 0;
            }
            wait_a_bit(&spins);
        }
    }
    atomic_fetch_add(&consumed, n);
    atomic_fetch_add(&consumed_sum, sum);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 4 || (strcmp(argv[1], "wpool") && strcmp(argv[1], "mutex"))) {
        fprintf(stderr, "usage: wpool-bench-queue wpool|mutex PAIRS ITEMS_PER_PRODUCER\n");
        return 2;
    }
    use_wpool = strcmp(argv[1], "wpool") == 0;
    unsigned int pairs = (unsigned int)strtoul(argv[2], NULL, 10);
    per_producer = strtoull(argv[3], NULL, 10);
    if (pairs == 0 || pairs > 64 || per_producer == 0)
        return 2;
    total = pairs * per_producer;
    if (use_wpool && wp_queue_init(&ring, CAPACITY)) {
        fprintf(stderr, "wp_queue_init failed\n");
        return 2;
    }
    pthread_t th[128];
    for (unsigned int i = 0; i < pairs; i++) {
        pthread_create(&th[2 * i], NULL, producer, (void *)(uintptr_t)i);
        pthread_create(&th[2 * i + 1], NULL, consumer, NULL);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    atomic_store(&go, 1);
    for (unsigned int i = 0; i < 2 * pairs; i++)
        pthread_join(th[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* Items are 1..total, each exactly once. */
    uint64_t want = total * (total + 1) / 2;
    if (atomic_load(&consumed) != total || atomic_load(&consumed_sum) != want) {
        fprintf(stderr, "wpool-bench-queue: FAILED: %" PRIu64 " of %" PRIu64 " items, sum %s\n",
                atomic_load(&consumed), total, atomic_load(&consumed_sum) == want ? "ok" : "wrong");
        return 1;
    }
    printf("{\"workload\": \"queue\", \"peer\": \"%s-ring\", \"pairs\": %u, \"n\": %" PRIu64
           ", \"wall_s\": %.6g, \"mops_per_s\": %.6g}\n",
           argv[1], pairs, total, secs, (double)total / secs / 1e6);
    if (use_wpool)
        wp_queue_fini(&ring);
    return 0;
}
