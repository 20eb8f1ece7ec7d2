/* SPDX-License-Identifier: MIT */
/* Strands: the protocol is in strand.h. */
#include "strand.h"
#include "pool.h"
#include "task.h"

#include <errno.h>
#include <stddef.h>

#define WP_STRAND_MAGIC 0x77707374u /* "wpst" */

struct __attribute__((__may_alias__)) wp_strand {
    void *data; /* the caller's */
    pthread_mutex_t lock;
    /* Under lock: */
    struct wp_tlist list; /* waiting, oldest first */
    bool busy;            /* a task of the strand is in the pool proper */
    /* The pool, from init until the pool's destroy detaches the strand (then
     * NULL); under the pool's strand_lock, read without it by submits (the
     * pool's destroy may not race them). */
    struct wpool *pool;
    struct wp_strand *rprev, *rnext; /* the pool's registry, under its strand_lock */
    unsigned int generation;         /* fork.h */
    _Atomic uint32_t magic;
};

static_assert(sizeof(struct wp_strand) <= sizeof(struct wpool_strand),
              "the private layout must fit the public record");
static_assert(_Alignof(struct wp_strand) <= _Alignof(struct wpool_strand),
              "the private layout may not need a stricter alignment than the public record");
static_assert(offsetof(struct wp_strand, data) == offsetof(struct wpool_strand, data),
              "data is where the caller finds it");

#define wp_s(strand) ((struct wp_strand *)(strand))

/* Cancellers that may be about to touch a strand they found in a task's
 * slot, process-wide (the task may have moved to another pool's strand
 * meanwhile), and a flag: a destroy sleeps on the word (futex) until the
 * count is 0. The strand's memory is the caller's, who may free it once
 * wpool_strand_destroy returned (strand.h, "Cancel"). Reset in a forked
 * child, which has none of the threads. */
#define WP_CANCELLERS_WAITER (UINT32_C(1) << 31)
static _Atomic uint32_t wp_strand_cancellers;

void wp_strands_fork_child(void)
{
    atomic_store_explicit(&wp_strand_cancellers, 0, memory_order_relaxed);
}

/* A canceller is done with the strand. acq_rel: its touches of the strand
 * are done before a destroy that reads the count goes on; and it reads the
 * flag a sleeping destroy set. */
static void wp_canceller_leave(void)
{
    uint32_t v = atomic_fetch_sub_explicit(&wp_strand_cancellers, 1, memory_order_acq_rel);
    if (v == (WP_CANCELLERS_WAITER | 1)) {
        /* Relaxed: the flag only says someone may sleep; a destroy
         * re-checks the count after every wake. */
        atomic_fetch_and_explicit(&wp_strand_cancellers, ~WP_CANCELLERS_WAITER,
                                  memory_order_relaxed);
        wp_futex_wake(&wp_strand_cancellers, INT32_MAX);
    }
}

/* A destroy waits until no canceller is in flight (sleeping, not spinning:
 * a canceller preempted in its short section may have a lower priority). */
static void wp_cancellers_wait(void)
{
    /* seq_cst: after the move off the list (seq_cst, seen through the
     * lock): the Dekker with the canceller's count then slot. */
    uint32_t v = atomic_load_explicit(&wp_strand_cancellers, memory_order_seq_cst);
    while (v & ~WP_CANCELLERS_WAITER) {
        /* Relaxed on failure: v is re-read and re-tested. Acquire on
         * success: nothing to pair with but the count itself. */
        if (!(v & WP_CANCELLERS_WAITER) && !atomic_compare_exchange_weak_explicit(
                                               &wp_strand_cancellers, &v, v | WP_CANCELLERS_WAITER,
                                               memory_order_acquire, memory_order_relaxed))
            continue;
        wp_futex_wait(&wp_strand_cancellers, v | WP_CANCELLERS_WAITER);
        /* seq_cst: re-read as above (acquire would do after the first). */
        v = atomic_load_explicit(&wp_strand_cancellers, memory_order_seq_cst);
    }
}

static bool wp_strand_valid(const struct wpool_strand *strand)
{
    return strand &&
           atomic_load_explicit(&wp_s(strand)->magic, memory_order_relaxed) == WP_STRAND_MAGIC;
}

void wp_strands_init(struct wpool *pool)
{
    pthread_mutex_init(&pool->strand_lock, NULL);
    pool->strands = NULL;
    atomic_init(&pool->strand_waiting, 0);
    atomic_init(&pool->strand_withdrawn, 0);
}

void wp_strands_fini(struct wpool *pool)
{
    pthread_mutex_lock(&pool->strand_lock);
    for (struct wp_strand *s = pool->strands; s; s = s->rnext)
        s->pool = NULL;
    pool->strands = NULL;
    pthread_mutex_unlock(&pool->strand_lock);
    pthread_mutex_destroy(&pool->strand_lock);
}

bool wp_strand_of(const struct wpool_strand *strand, const struct wpool *pool)
{
    return wp_strand_valid(strand) && wp_s(strand)->pool == pool;
}

int wpool_strand_init(struct wpool_strand *strand, wpool_t *pool)
{
    if (!strand || !pool)
        return -EINVAL;
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    if (wp_strand_valid(strand))
        return -EBUSY; /* initialised and not destroyed */
    struct wp_strand *s = wp_s(strand);
    pthread_mutex_init(&s->lock, NULL);
    s->list.head = s->list.tail = NULL;
    s->busy = false;
    s->generation = pool->generation;
    s->rprev = NULL;
    pthread_mutex_lock(&pool->strand_lock);
    s->pool = pool;
    s->rnext = pool->strands;
    if (s->rnext)
        s->rnext->rprev = s;
    pool->strands = s;
    pthread_mutex_unlock(&pool->strand_lock);
    atomic_store_explicit(&s->magic, WP_STRAND_MAGIC, memory_order_relaxed);
    return 0;
}

int wpool_strand_destroy(struct wpool_strand *strand)
{
    if (!wp_strand_valid(strand))
        return -EINVAL;
    struct wp_strand *s = wp_s(strand);
    if (wp_forked(s->generation)) {
        /* The parent's: its locks may be held by threads that are gone. */
        atomic_store_explicit(&s->magic, 0, memory_order_relaxed);
        return 0;
    }
    struct wpool *pool = s->pool;
    if (pool)
        pthread_mutex_lock(&pool->strand_lock);
    pthread_mutex_lock(&s->lock);
    bool busy = s->busy || s->list.head;
    pthread_mutex_unlock(&s->lock);
    if (!busy && pool) {
        if (s->rprev)
            s->rprev->rnext = s->rnext;
        else
            pool->strands = s->rnext;
        if (s->rnext)
            s->rnext->rprev = s->rprev;
        s->pool = NULL;
    }
    if (pool)
        pthread_mutex_unlock(&pool->strand_lock);
    if (busy)
        return -EBUSY;
    /* A canceller that still saw one of its tasks on the list may be about
     * to lock it. */
    wp_cancellers_wait();
    atomic_store_explicit(&s->magic, 0, memory_order_relaxed);
    pthread_mutex_destroy(&s->lock);
    return 0;
}

int wpool_task_set_strand(struct wpool_task *task, struct wpool_strand *strand)
{
    if (!wp_task_valid(task) || (strand && !wp_strand_valid(strand)))
        return -EINVAL;
    if (wp_task_state(task) != WP_TASK_IDLE)
        return -EBUSY;
    atomic_store_explicit(&wp_t(task)->strand, strand, memory_order_relaxed);
    return 0;
}

int64_t wp_strands_waiting(struct wpool *pool)
{
    /* seq_cst: a worker reads it after the close and before the rings
     * (wp_all_taken), pairing with the appends' and releases' RMWs. */
    return atomic_load_explicit(&pool->strand_waiting, memory_order_seq_cst);
}

uint64_t wp_strands_accepted(struct wpool *pool)
{
    /* Relaxed: statistics. Withdrawn first: a task withdrawn between the
     * loads is counted in neither rather than twice. */
    uint64_t gone = atomic_load_explicit(&pool->strand_withdrawn, memory_order_relaxed);
    int64_t waiting = atomic_load_explicit(&pool->strand_waiting, memory_order_relaxed);
    return gone + (waiting > 0 ? (uint64_t)waiting : 0);
}

/* n tasks left the strands' lists (into the pool, or withdrawn). seq_cst:
 * after the move into the pool (a worker reads the count, then the rings);
 * and Dekker with the appends (strand.h). The last one in a closed pool
 * wakes the workers that stayed for it. */
static void wp_strands_left(struct wpool *pool, int64_t n, bool withdrawn)
{
    if (withdrawn) /* relaxed: a statistic */
        atomic_fetch_add_explicit(&pool->strand_withdrawn, (uint64_t)n, memory_order_relaxed);
    /* seq_cst: pairs with the workers' seq_cst read in wp_all_taken. */
    if (atomic_fetch_sub_explicit(&pool->strand_waiting, n, memory_order_seq_cst) == n &&
        wp_pool_closed(pool))
        wp_park_notify_all(&pool->park);
}

/* t has left the strand's list for good (withdrawn). seq_cst: a strand's
 * destroy that follows (through the lock) reads the cancellers' count
 * after it (the Dekker in wp_strand_withdraw). */
static void wp_strand_slot_gone(struct wpool_task *t)
{
    atomic_store_explicit(&wp_t(t)->slot, 0, memory_order_seq_cst);
}

int wp_strand_enter(struct wpool *pool, struct wpool_task *t, struct wpool_port *count_port)
{
    struct wpool_strand *strand = wp_task_strand(t);
    struct wp_strand *s = wp_s(strand);
    pthread_mutex_lock(&s->lock);
    if (!s->busy) {
        s->busy = true;
        return 1; /* the lock stays held until wp_strand_head_queued */
    }
    /* seq_cst, then the close read seq_cst: Dekker with a worker that sees
     * the close and then reads the count (strand.h). */
    atomic_fetch_add_explicit(&pool->strand_waiting, 1, memory_order_seq_cst);
    if (WP_UNLIKELY(wp_pool_closed(pool))) {
        pthread_mutex_unlock(&s->lock);
        wp_strands_left(pool, 1, false);
        return -ESHUTDOWN;
    }
    /* Counted on the default port before anyone can move it on (a
     * release takes this lock): a settle never misses it. */
    if (count_port)
        wp_port_count(count_port);
    wp_tlist_append(&s->list, t);
    /* Relaxed: a canceller checks it again under the lock. */
    atomic_store_explicit(&wp_t(t)->slot, wp_slot_strand(strand), memory_order_relaxed);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void wp_strand_head_queued(struct wpool_strand *strand, int rc)
{
    struct wp_strand *s = wp_s(strand);
    if (rc)
        s->busy = false; /* refused: nothing was appended behind it (the lock) */
    pthread_mutex_unlock(&s->lock);
}

void wp_strand_release(struct wpool *pool, struct wpool_task *t)
{
    struct wpool_strand *strand = wp_task_strand(t);
    if (!strand)
        return;
    struct wp_strand *s = wp_s(strand);
    pthread_mutex_lock(&s->lock);
    struct wpool_task *next = s->list.head;
    if (!next) {
        s->busy = false;
        pthread_mutex_unlock(&s->lock);
        return;
    }
    wp_tlist_cut(&s->list, next);
    /* Under the lock, the slot naming the strand until the placement
     * overwrites it: a canceller looks again where this puts it. */
    wp_place_released(pool, next);
    pthread_mutex_unlock(&s->lock);
    wp_strands_left(pool, 1, false);
}

int wp_strand_withdraw(struct wpool_task *t, uint64_t slot)
{
    /* The strand is the caller's memory and may have been destroyed and
     * freed since the slot was read: counted first, then the slot read
     * again (both seq_cst). A destroy reads the count after the task left
     * the list (seq_cst), so if the slot still names the strand here, the
     * destroy has not passed its wait and the strand is alive. */
    atomic_fetch_add_explicit(&wp_strand_cancellers, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&wp_t(t)->slot, memory_order_seq_cst) != slot) {
        wp_canceller_leave();
        return -EAGAIN;
    }
    struct wp_strand *s = wp_s(wp_slot_strand_of(slot));
    if (wp_forked(s->generation)) {
        wp_canceller_leave();
        return -EOWNERDEAD;
    }
    pthread_mutex_lock(&s->lock);
    struct wpool *pool = s->pool; /* under the lock: the append's view */
    /* Relaxed: the slot names this strand only while the task is on its
     * list, and is written under this lock (appends, the release's move
     * on; the withdraw below). */
    bool here = atomic_load_explicit(&wp_t(t)->slot, memory_order_relaxed) == slot;
    if (here) {
        wp_tlist_cut(&s->list, t);
        wp_strand_slot_gone(t);
    }
    pthread_mutex_unlock(&s->lock);
    wp_canceller_leave(); /* the last touch of the strand */
    if (!here)
        return -EAGAIN;
    wp_strands_left(pool, 1, true);
    wp_pool_withdrawn(pool, t, false);
    return 0;
}

void wp_strands_cancel_all(struct wpool *pool, void (*fn)(void *item, void *arg), void *arg)
{
    struct wpool_task *taken = NULL, **end = &taken;
    int64_t n = 0;
    pthread_mutex_lock(&pool->strand_lock);
    for (struct wp_strand *s = pool->strands; s; s = s->rnext) {
        pthread_mutex_lock(&s->lock);
        for (struct wpool_task *t = s->list.head; t; t = wp_t(t)->next) {
            wp_strand_slot_gone(t); /* ours now */
            n++;
        }
        if (s->list.head) {
            *end = s->list.head;
            end = &wp_t(s->list.tail)->next;
        }
        s->list.head = s->list.tail = NULL;
        pthread_mutex_unlock(&s->lock);
    }
    pthread_mutex_unlock(&pool->strand_lock);
    if (n)
        wp_strands_left(pool, n, true);
    while (taken) {
        struct wpool_task *next = wp_t(taken)->next;
        wp_t(taken)->next = wp_t(taken)->oprev = NULL;
        fn(taken, arg);
        taken = next;
    }
}
