/* SPDX-License-Identifier: MIT */
#include "queue.h"
#include "alloc.h"

#include <errno.h>

/*
 * Consecutive positions would share a cache line (four 16-byte cells per line),
 * so a producer filling cell k and a consumer emptying cell k-1 would fight over
 * it. Rotating the two low index bits to the top spreads neighbours a quarter of
 * the ring apart. A bijection on [0, capacity).
 */
static inline struct wp_cell *wp_queue_cell(struct wp_queue *q, uint64_t pos)
{
    uint64_t i = pos & q->mask;
    if (q->spread)
        i = ((i & 3) << q->spread) | (i >> 2);
    return &q->cells[i];
}

int wp_queue_init(struct wp_queue *q, uint32_t capacity)
{
    unsigned int log2 = 0;
    while ((UINT32_C(1) << log2) < capacity)
        log2++;
    q->cells = wp_alloc(sizeof(struct wp_cell) * capacity);
    if (!q->cells)
        return -ENOMEM;
    q->mask = capacity - 1;
    q->spread = log2 >= 4 ? log2 - 2 : 0;
    for (uint64_t pos = 0; pos < capacity; pos++) {
        struct wp_cell *c = wp_queue_cell(q, pos);
        atomic_init(&c->seq, pos);
        atomic_init(&c->data, NULL);
    }
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    return 0;
}

void wp_queue_fini(struct wp_queue *q)
{
    wp_free(q->cells);
    q->cells = NULL;
}

int wp_queue_reserve(struct wp_queue *q, uint64_t *posp)
{
    /* Acquire (free on x86): a submitter that finds the queue closed sees
     * what the closer did before closing (destroy's cancel flag). */
    uint64_t pos = atomic_load_explicit(&q->head, memory_order_acquire);
    for (;;) {
        if (pos & WP_QUEUE_CLOSED)
            return -ESHUTDOWN;
        struct wp_cell *c = wp_queue_cell(q, pos);
        /* Acquire: pairs with the consumer's release store in wp_queue_pop, so
         * its exchange of the old data is done before we overwrite it. */
        uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        int64_t dif = (int64_t)(seq - pos);
        if (dif == 0) {
            /* The CAS only claims the position: the cell's seq carries the
             * data ordering. Acquire on failure (and on the reload below):
             * pairs with wp_queue_close's seq_cst fetch_or, so a submitter
             * that sees the queue closed sees what the closer set before it.
             * On success it reads another submitter's CAS and pairs with
             * nothing (relaxed would do). A concurrent close makes it fail
             * and retry. */
            if (atomic_compare_exchange_weak_explicit(&q->head, &pos, pos + 1, memory_order_acquire,
                                                      memory_order_acquire)) {
                *posp = pos;
                return 0;
            }
        } else if (dif < 0) {
            /* The cell still holds the item from the previous lap. */
            return -EAGAIN;
        } else {
            /* Acquire: as the CAS above (the closed bit). */
            pos = atomic_load_explicit(&q->head, memory_order_acquire);
        }
    }
}

void wp_queue_publish(struct wp_queue *q, uint64_t pos, void *item)
{
    struct wp_cell *c = wp_queue_cell(q, pos);
    /* Release: a canceller that swaps the item out sees the task's fields. */
    atomic_store_explicit(&c->data, item, memory_order_release);
    /* seq_cst RMW: releases the item to consumers (pairs with the acquire load
     * in wp_queue_pop) and, being a full barrier, keeps the caller's following
     * seq_cst load of the parker's waiter count after it (Dekker with
     * wp_park_prepare, see park.h). */
    atomic_exchange_explicit(&c->seq, pos + 1, memory_order_seq_cst);
}

void wp_queue_fill(struct wp_queue *q, uint64_t pos, void *item)
{
    /* Release: as in wp_queue_publish. */
    atomic_store_explicit(&wp_queue_cell(q, pos)->data, item, memory_order_release);
}

void wp_queue_release(struct wp_queue *q, uint64_t pos)
{
    /* seq_cst RMW: as in wp_queue_publish. */
    atomic_exchange_explicit(&wp_queue_cell(q, pos)->seq, pos + 1, memory_order_seq_cst);
}

bool wp_queue_pop(struct wp_queue *q, void **item)
{
    uint64_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    struct wp_cell *c;
    for (;;) {
        c = wp_queue_cell(q, pos);
        /* seq_cst (a plain load on x86): pairs with the publish exchange for
         * the item, and is the second half of the Dekker pattern with
         * wp_park_prepare for a worker re-checking before it sleeps. */
        uint64_t seq = atomic_load_explicit(&c->seq, memory_order_seq_cst);
        int64_t dif = (int64_t)(seq - (pos + 1));
        if (dif == 0) {
            /* seq_cst (the same locked instruction on x86): the worker's
             * following seq_cst loads of the pool's refusal flag and of the
             * room waiters' count must not pass it (Dekker with a submitter
             * that registers and then reads tail, see worker.c). */
            if (atomic_compare_exchange_weak_explicit(&q->tail, &pos, pos + 1, memory_order_seq_cst,
                                                      memory_order_relaxed))
                break;
        } else if (dif < 0) {
            return false;
        } else {
            pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
        }
    }
    /* Acquire: pairs with the publisher's release store of data (the task's
     * fields). The exchange races wp_queue_cancel's CAS: exactly one wins. */
    *item = atomic_exchange_explicit(&c->data, NULL, memory_order_acquire);
    /* Release: our exchange is done before the next producer reuses the cell. */
    atomic_store_explicit(&c->seq, pos + q->mask + 1, memory_order_release);
    return true;
}

bool wp_queue_cancel(struct wp_queue *q, uint64_t pos, void *item)
{
    /*
     * A cell holds `item` only between its publish and the consumer's exchange
     * (consumers leave NULL behind), and a task is in at most one cell at a
     * time. So if the CAS succeeds, item was queued there and no consumer will
     * get it — even if pos was read stale and the cell has since been reused
     * for a later submission of the same task: that one is the one in flight.
     * acq_rel: acquire the task's fields from the publisher; release our view.
     */
    struct wp_cell *c = wp_queue_cell(q, pos);
    void *expected = item;
    return atomic_compare_exchange_strong_explicit(&c->data, &expected, NULL, memory_order_acq_rel,
                                                   memory_order_relaxed);
}

unsigned int wp_queue_cancel_all(struct wp_queue *q, void (*fn)(void *item, void *arg), void *arg)
{
    /* Every position between tail and head, looked at once: a cell published
     * for its position whose item we swap out is ours (the same argument as
     * wp_queue_cancel). Cells not yet published (a stalled producer) or
     * already taken are skipped. Acquire (tail, head, seq): pair with the
     * consumers' tail CAS, the close's fetch_or and the publishers' release
     * store of seq. */
    unsigned int n = 0;
    uint64_t pos = atomic_load_explicit(&q->tail, memory_order_acquire);
    uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire) & ~WP_QUEUE_CLOSED;
    for (; pos < head; pos++) {
        struct wp_cell *c = wp_queue_cell(q, pos);
        if (atomic_load_explicit(&c->seq, memory_order_acquire) != pos + 1)
            continue;
        /* Acquire (seq, data): pair with the publisher's release store of
         * seq; the acq_rel CAS makes the item ours against a worker's pop or
         * another canceller's CAS on the same cell. */
        void *item = atomic_load_explicit(&c->data, memory_order_acquire);
        if (item && atomic_compare_exchange_strong_explicit(
                        &c->data, &item, NULL, memory_order_acq_rel, memory_order_relaxed)) {
            fn(item, arg);
            n++;
        }
    }
    return n;
}

void wp_queue_reclaim(struct wp_queue *q)
{
    uint64_t pos = atomic_load_explicit(&q->tail, memory_order_relaxed);
    for (;;) {
        struct wp_cell *c = wp_queue_cell(q, pos);
        /* Acquire: pairs with the publisher's release store of seq (the
         * cell's data is then the published one, or a canceller's NULL). */
        uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        if (seq != pos + 1)
            return; /* not published, or already consumed */
        if (atomic_load_explicit(&c->data, memory_order_relaxed) != NULL)
            return; /* a live item: leave it to the workers */
        /* Once published, data only goes item -> NULL within this lap, so a
         * NULL seen here stays NULL while tail == pos. seq_cst, like the
         * consumers' tail CAS in wp_queue_pop: this is the RMW that frees the
         * slot, and the caller's wp_room_made then loads the refusal flag and
         * the room waiters' count (seq_cst); a refused submitter stores the
         * flag or registers as a waiter, then reads tail (seq_cst). In the
         * total order one of the two sees the other, so no waiter sleeps
         * through the room this makes. */
        if (!atomic_compare_exchange_strong_explicit(&q->tail, &pos, pos + 1, memory_order_seq_cst,
                                                     memory_order_relaxed))
            continue; /* pos now holds the current tail */
        /* Release: the cell is free for the next lap; pairs with the
         * submitter's acquire load of seq in wp_queue_reserve. */
        atomic_store_explicit(&c->seq, pos + q->mask + 1, memory_order_release);
        pos++;
    }
}

void wp_queue_close(struct wp_queue *q)
{
    /* seq_cst RMW: ordered before the close's notify of sleeping workers. */
    atomic_fetch_or_explicit(&q->head, WP_QUEUE_CLOSED, memory_order_seq_cst);
}

bool wp_queue_closed(struct wp_queue *q)
{
    /* seq_cst (a plain load on x86): pairs with the close's RMW (see
     * wp_queue_reserve), and a strand's append reads it after raising the
     * pool's count of waiting tasks (the Dekker in strand.h). */
    return atomic_load_explicit(&q->head, memory_order_seq_cst) & WP_QUEUE_CLOSED;
}

bool wp_queue_finished(struct wp_queue *q)
{
    /* seq_cst: read after wp_park_prepare, see the close's fetch_or. Once the
     * flag is set head never moves, so tail == head is final. */
    uint64_t head = atomic_load_explicit(&q->head, memory_order_seq_cst);
    if (!(head & WP_QUEUE_CLOSED))
        return false;
    return atomic_load_explicit(&q->tail, memory_order_seq_cst) == (head & ~WP_QUEUE_CLOSED);
}

uint64_t wp_queue_size(struct wp_queue *q)
{
    /* seq_cst (plain loads on x86): the pool reads the size after a refusal
     * flag or a park registration (Dekker with the consumers' tail RMW). Tail
     * first: head only grows, so head >= tail unless tail moved between. */
    uint64_t tail = atomic_load_explicit(&q->tail, memory_order_seq_cst);
    uint64_t head = atomic_load_explicit(&q->head, memory_order_seq_cst) & ~WP_QUEUE_CLOSED;
    return head > tail ? head - tail : 0;
}

uint64_t wp_queue_reserved(struct wp_queue *q)
{
    /* Relaxed: a counter for statistics. */
    return atomic_load_explicit(&q->head, memory_order_relaxed) & ~WP_QUEUE_CLOSED;
}
