/* SPDX-License-Identifier: MIT */
/* The task record as wpool sees it: the layout behind the public
 * struct wpool_task (`data`, then a private area of fixed size and alignment).
 * Fields shared between threads are C11 atomics, each access stating its
 * order where it is made. The library reaches a record's fields only through
 * wp_t(); the caller only through `data`. */
#ifndef WP_TASK_H
#define WP_TASK_H

#include "wpool.h"

#include <assert.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define WP_TASK_MAGIC 0x7770746bu /* "wptk" */

/* A record's phase, the low half of its state word; the high half is the
 * status once it is known (deferred completion: defer.c). */
enum wp_task_state {
    WP_TASK_IDLE = 0,     /* initialised, or its completion callback has started */
    WP_TASK_INFLIGHT = 1, /* accepted: queued, or finished and on its way to its port */
    WP_TASK_RUNNING = 2,  /* its work function is running on a worker */
    WP_TASK_PENDING = 3,  /* its work returned WPOOL_PENDING; wpool_task_complete finishes it */
    WP_TASK_EARLY = 4,    /* completed (status set) while its work was still running */
};

/* The first 64 bytes hold what the owner touches for every task and most of
 * what the worker does; the worker also clears `slot` and, with timing on,
 * reads `stamp`, both in the next 64 bytes. So a task moves two cache lines
 * between threads (if the caller aligns the record to 64 bytes), the second
 * one only between the submitter and the worker. may_alias: the caller's
 * record is a struct wpool_task, read and written here as this type. */
struct __attribute__((__may_alias__)) wp_task {
    void *data;              /* the caller's */
    struct wpool_task *next; /* the port's stack and list */
    wpool_done_fn done;
    wpool_work_fn work;
    _Atomic(struct wpool_port *) port; /* port of the current submission */
    struct wpool_token *token;         /* cancel token, or NULL */
    /* Phase (enum wp_task_state) | status << 32: one word, so that a
     * deferred completion hands its status over with its phase in one CAS. */
    _Atomic uint64_t state;
    uint64_t deadline; /* wpool_now_ns() value, 0 = none */
    /* Where the current submission waits: 0 (nowhere: not queued, or taken),
     * a ring cell (wp_slot), or its strand's list (wp_slot_strand, behind
     * the strand's head: strand.h). */
    _Atomic uint64_t slot;
    uint64_t stamp; /* submit time (timing on) */
    /* Chosen by wpool_task_set_strand, or NULL. Atomic (relaxed): a
     * canceller reads it racily (strand.c), as it does `port`. */
    _Atomic(struct wpool_strand *) strand;
    struct wpool_port *target;        /* port chosen by wpool_task_set_port, or NULL */
    struct wpool_task *tprev, *tnext; /* the token's list */
    _Atomic uint32_t magic;           /* WP_TASK_MAGIC once initialised */
    int prio;                         /* lane */
    /* On a lane's overflow list (overflow.h): the list while it is there,
     * NULL otherwise; the list's backward link (`next` is the forward one:
     * the port's stack does not need it before the task is taken). */
    _Atomic(struct wp_overflow *) over;
    struct wpool_task *oprev;
};

static_assert(sizeof(struct wp_task) <= sizeof(struct wpool_task),
              "the private layout must fit the public record");
static_assert(alignof(struct wp_task) <= alignof(struct wpool_task),
              "the private layout may not need a stricter alignment than the public record");
static_assert(offsetof(struct wp_task, data) == offsetof(struct wpool_task, data),
              "data is where the caller finds it");
static_assert(alignof(struct wpool_task) >= 8, "64-bit atomics in the record need 8 bytes");
#if UINTPTR_MAX == UINT64_MAX
static_assert(sizeof(struct wpool_task) == 136, "the record's size is part of the ABI (LP64)");
#endif

/* Waiting on a strand's list: the strand's address with the top bit set
 * (a ring slot's top bit is clear), so that a canceller that finds the
 * slot unchanged under that strand's lock knows the task is on its list. */
#define WP_SLOT_STRAND_BIT (UINT64_C(1) << 63)
static inline uint64_t wp_slot_strand(const struct wpool_strand *strand)
{
    return WP_SLOT_STRAND_BIT | (uint64_t)(uintptr_t)strand;
}
static inline bool wp_slot_is_strand(uint64_t slot)
{
    return slot & WP_SLOT_STRAND_BIT;
}
static inline struct wpool_strand *wp_slot_strand_of(uint64_t slot)
{
    return (struct wpool_strand *)(uintptr_t)(slot & ~WP_SLOT_STRAND_BIT);
}
/* A ring cell as a slot word: the ring's index among the pool's queues, plus
 * one, in the high half; the position's low half, which names the cell (a
 * ring has at most WPOOL_MAX_QUEUE_CAPACITY < 2^32 cells), in the low half.
 * One word, so that a canceller reads ring and cell in one load. */
static inline uint64_t wp_slot(unsigned int ring, uint64_t pos)
{
    return (uint64_t)(ring + 1) << 32 | (uint32_t)pos;
}
static inline unsigned int wp_slot_ring(uint64_t slot)
{
    return (unsigned int)(slot >> 32) - 1;
}
static inline uint64_t wp_slot_pos(uint64_t slot)
{
    return (uint32_t)slot;
}

/* The record's private view. */
#define wp_t(task) ((struct wp_task *)(task))

static inline int wp_task_valid(const struct wpool_task *t)
{
    return t && atomic_load_explicit(&wp_t(t)->magic, memory_order_relaxed) == WP_TASK_MAGIC;
}

/* A list of records linked through `next` and `oprev` (an overflow, a
 * strand's waiting tasks), under its owner's lock. */
struct wp_tlist {
    struct wpool_task *head, *tail;
};

static inline void wp_tlist_append(struct wp_tlist *l, struct wpool_task *t)
{
    wp_t(t)->next = NULL;
    wp_t(t)->oprev = l->tail;
    if (l->tail)
        wp_t(l->tail)->next = t;
    else
        l->head = t;
    l->tail = t;
}

static inline void wp_tlist_cut(struct wp_tlist *l, struct wpool_task *t)
{
    struct wp_task *w = wp_t(t);
    if (w->oprev)
        wp_t(w->oprev)->next = w->next;
    else
        l->head = w->next;
    if (w->next)
        wp_t(w->next)->oprev = w->oprev;
    else
        l->tail = w->oprev;
    w->next = w->oprev = NULL;
}

/* The task's strand (relaxed: an attribute, set while the task is idle). */
static inline struct wpool_strand *wp_task_strand(const struct wpool_task *t)
{
    return atomic_load_explicit(&wp_t(t)->strand, memory_order_relaxed);
}

/* The state word's halves. */
static inline uint64_t wp_state_word(uint32_t phase, int status)
{
    return (uint64_t)(uint32_t)status << 32 | phase;
}
static inline uint32_t wp_state_phase(uint64_t word)
{
    return (uint32_t)word;
}
static inline int wp_state_status(uint64_t word)
{
    return (int)(uint32_t)(word >> 32);
}

/* The record's phase. Acquire: pairs with the release store of IDLE in
 * wp_port_complete (the previous completion, on another thread, is done with
 * the record). */
static inline uint32_t wp_task_state(const struct wpool_task *t)
{
    return wp_state_phase(atomic_load_explicit(&wp_t(t)->state, memory_order_acquire));
}

/* A finished task's status, set by whoever owns it (the worker that ran it,
 * the canceller that won it, a deferred completion): INFLIGHT again, ready to
 * post. Relaxed: published to the owner with the task through its port. */
static inline void wp_task_finish(struct wpool_task *t, int status)
{
    atomic_store_explicit(&wp_t(t)->state, wp_state_word(WP_TASK_INFLIGHT, status),
                          memory_order_relaxed);
}

#endif
