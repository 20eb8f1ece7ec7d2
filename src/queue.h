/* SPDX-License-Identifier: MIT */
/*
 * Bounded lock-free multi-producer multi-consumer ring of pointers.
 *
 * Algorithm: Dmitry Vyukov's bounded MPMC queue (per-cell sequence numbers),
 * extended in two ways:
 *  - bit 63 of `head` is a "closed" flag: the reservation CAS compares the
 *    whole word, so a push either reserves a slot before close or fails with
 *    -ESHUTDOWN; no separate gate and no extra atomic per push.
 *  - a published item can be withdrawn (wp_queue_cancel) by swapping its cell's
 *    data to NULL; consumers take data with an exchange, so exactly one of the
 *    consumer and the canceller gets the item. A withdrawn cell stays behind as
 *    a tombstone that consumers skip.
 * Positions are 63-bit counters that never wrap in practice; "drained" is
 * decided from them (closed && tail == head), never from a cell looking empty,
 * so a producer stalled between reserve and publish cannot hide an item.
 */
#ifndef WP_QUEUE_H
#define WP_QUEUE_H

#include "common.h"
#include <stdbool.h>
#include <stdint.h>

#define WP_QUEUE_CLOSED (UINT64_C(1) << 63)

struct wp_cell {
    _Atomic uint64_t seq;
    void *_Atomic data;
};

struct wp_queue {
    WP_ALIGNED _Atomic uint64_t head; /* next position to reserve | CLOSED */
    WP_ALIGNED _Atomic uint64_t tail; /* next position to consume */
    WP_ALIGNED struct wp_cell *cells;
    uint64_t mask;
    unsigned int spread; /* log2(capacity) - 2, or 0: see wp_queue_cell() */
};

/* capacity must be a power of two >= 2: with one cell, "published for pos"
 * (seq == pos + 1) would read as "free for pos + 1". Returns 0 or -ENOMEM. */
int wp_queue_init(struct wp_queue *q, uint32_t capacity);
void wp_queue_fini(struct wp_queue *q);

/* Reserves the next position. 0 and *pos on success; -EAGAIN when full;
 * -ESHUTDOWN when closed. A reserved position must be published. */
int wp_queue_reserve(struct wp_queue *q, uint64_t *pos);
/* Makes item (not NULL) visible to consumers at a reserved position. Sequentially
 * consistent, so that a following load of a parker's waiter count (wp_park_notify)
 * cannot be ordered before it. */
void wp_queue_publish(struct wp_queue *q, uint64_t pos, void *item);
/* wp_queue_publish in two steps: the item (wp_queue_cancel can withdraw it
 * from then on), then the cell's seq (consumers see it). */
void wp_queue_fill(struct wp_queue *q, uint64_t pos, void *item);
void wp_queue_release(struct wp_queue *q, uint64_t pos);
/* Takes the oldest published position. Returns false when nothing is published
 * at the tail. On true, *item is the item or NULL for a cancelled one. */
bool wp_queue_pop(struct wp_queue *q, void **item);
/* Withdraws item published (or being published) at pos. True if this call
 * removed it: no consumer will ever see it. */
bool wp_queue_cancel(struct wp_queue *q, uint64_t pos, void *item);
/* Withdraws every item published between tail and head when it looks, calling
 * fn(item, arg) for each one it removed. Returns how many. */
unsigned int wp_queue_cancel_all(struct wp_queue *q, void (*fn)(void *item, void *arg), void *arg);
/* Consumes cancelled cells at the tail, freeing their slots. */
void wp_queue_reclaim(struct wp_queue *q);
/* Sets the closed flag; later reserves fail with -ESHUTDOWN. */
void wp_queue_close(struct wp_queue *q);
bool wp_queue_closed(struct wp_queue *q);
/* Closed and every reserved position consumed. Once true, stays true. */
bool wp_queue_finished(struct wp_queue *q);
/* Reserved-but-not-consumed positions (tombstones included); a snapshot,
 * read with seq_cst loads. */
uint64_t wp_queue_size(struct wp_queue *q);
/* Positions ever reserved (submits accepted into this queue). A snapshot. */
uint64_t wp_queue_reserved(struct wp_queue *q);

#endif
