/* SPDX-License-Identifier: MIT */
/*
 * Cancel: a queued task is withdrawn from its cell by one CAS that races the
 * workers' pops (wp_queue_cancel); whoever wins owns the task, so it completes
 * exactly once. The winner posts its -ECANCELED completion at once and makes
 * room. A task waiting behind its strand's head is unlinked under the
 * strand's lock instead (strand.h). Tokens cancel through the same path
 * (token.c).
 */
#include "pool.h"
#include "port.h"
#include "task.h"

#include <errno.h>
#include <limits.h>

/* One look at where t waits: 0 (withdrawn and posted), -EBUSY (not
 * queued), -EOWNERDEAD, or -EAGAIN (it moved on from its strand's list into
 * the pool meanwhile: look again). */
static int wp_withdraw_once(struct wpool_task *t)
{
    /* In an overflow list: whoever unlinks it under the list's lock owns it
     * (the unlink checks again under the lock). Acquire: pairs with the
     * release store of NULL when it leaves the list (overflow.c), so a task
     * moved into a ring is seen there below. */
    struct wp_overflow *ov = atomic_load_explicit(&wp_t(t)->over, memory_order_acquire);
    if (ov) {
        struct wpool *opool = wp_overflow_owner(ov);
        if (wp_pool_forked(opool)) /* before the lock: the child may never get it */
            return -EOWNERDEAD;
        if (wp_overflow_remove(ov, t)) {
            wp_pool_withdrawn(opool, t, true);
            return 0;
        }
        /* Taken by a worker, or moved into a ring (then `slot` names it,
         * stored before the list's lock was released): as below. */
    }
    /* Acquire: pairs with the release store of the slot (submit, or a move
     * out of an overflow), made after `port` was stored. These are read
     * racily (the task may be taken and even resubmitted meanwhile): only
     * the CAS on the cell is trusted (see wp_queue_cancel). */
    uint64_t slot = atomic_load_explicit(&wp_t(t)->slot, memory_order_acquire);
    if (!slot) {
        /* Not queued; or moved from its strand's list into an overflow
         * since `over` was read (the push names the overflow before it
         * clears the slot: acquire pairs with that seq_cst store), and
         * maybe on into a ring (the move writes the cell's slot before it
         * clears `over`: acquire pairs with its release CAS). */
        if (atomic_load_explicit(&wp_t(t)->over, memory_order_acquire))
            return -EAGAIN;
        return atomic_load_explicit(&wp_t(t)->slot, memory_order_acquire) ? -EAGAIN : -EBUSY;
    }
    if (wp_slot_is_strand(slot))
        /* Behind its strand's head: unlinked under the strand's lock (and
         * posted), or moved on meanwhile (-EAGAIN). */
        return wp_strand_withdraw(t, slot);
    /* In a forked child the copy is the parent's: check before the CAS, so
     * that the child's copy of the cell is left as it was. */
    struct wpool_port *port = atomic_load_explicit(&wp_t(t)->port, memory_order_relaxed);
    if (!port) /* completed and re-initialised since we looked: not queued */
        return -EBUSY;
    struct wpool *pool = wp_port_pool(port);
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    /* A stale slot may name a ring of another pool (resubmitted there). */
    struct wp_queue *q = wp_pool_ring(pool, wp_slot_ring(slot));
    if (!q)
        return -EBUSY;
    if (!wp_queue_cancel(q, wp_slot_pos(slot), t)) {
        /* Taken; or being moved out of an overflow (the move names the
         * cell before it fills it, then clears `over`): still there, look
         * again; or just moved (`over` cleared after the fill, acquire:
         * the cell is filled now), one more try on the cell. */
        if (atomic_load_explicit(&wp_t(t)->over, memory_order_acquire))
            return -EAGAIN;
        if (!wp_queue_cancel(q, wp_slot_pos(slot), t))
            return -EBUSY;
    }
    /* We own the task now, exactly as a worker that popped it would (the
     * CAS acquired its fields). Free the slot now if the tombstone is at the
     * tail, so that the backlog a refused submitter waits on falls at once. */
    wp_queue_reclaim(q);
    wp_pool_withdrawn(pool, t, true);
    return 0;
}

int wp_task_withdraw(struct wpool_task *t)
{
    /* A task moves only forward: strand list, overflow, ring, taken. Each
     * -EAGAIN means a move out of the strand's list (into a ring, or into an
     * overflow in two steps) happened after the look began, so a few looks
     * end it; one more is a guard. */
    int rc = -EAGAIN;
    for (int tries = 0; rc == -EAGAIN && tries < 4; tries++)
        rc = wp_withdraw_once(t);
    return rc == -EAGAIN ? -EBUSY : rc;
}

void wp_pool_withdrawn(struct wpool *pool, struct wpool_task *t, bool head)
{
    atomic_store_explicit(&wp_t(t)->slot, 0, memory_order_relaxed);
    /* A strand's head ended: the next one goes on before this completion
     * is posted (after it the record, and the strand, may be freed). */
    if (head)
        wp_strand_release(pool, t);
    wp_task_finish(t, -ECANCELED);
    atomic_fetch_add_explicit(&pool->cancelled, 1, memory_order_relaxed);
    /* seq_cst: room made, then wp_room_made reads `refused` (Dekker with
     * wp_refused, which sets it and then reads the backlog). */
    if (pool->limited)
        atomic_fetch_sub_explicit(&pool->waiting, 1, memory_order_seq_cst);
    int lane = wp_t(t)->prio;
    struct wp_class *c = &pool->lanes[lane];
    /* seq_cst: the class's backlog fell, then wp_room_made reads its
     * `refused` (the same Dekker, per class). */
    if (c->limited)
        atomic_fetch_sub_explicit(&c->waiting, 1, memory_order_seq_cst);
    atomic_fetch_add_explicit(&c->withdrawn, 1, memory_order_relaxed);
    /* Relaxed: ours since the CAS on its cell (it acquired the fields). */
    struct wpool_port *port = atomic_load_explicit(&wp_t(t)->port, memory_order_relaxed);
    wp_port_post(port, t, NULL);
    wp_room_made(pool, lane, 1);
    if (pool->limited)
        wp_room_made(pool, WP_ALL_LANES, 1);
}

int wpool_cancel(struct wpool_task *t)
{
    if (!wp_task_valid(t))
        return -EINVAL;
    if (wp_task_state(t) != WP_TASK_INFLIGHT)
        return -EBUSY;
    return wp_task_withdraw(t);
}

struct wp_cancel_all_ctx {
    struct wpool *pool;
    int n;
    bool head; /* from a ring or overflow (not a strand's list) */
};

static void wp_cancel_one(void *item, void *arg)
{
    struct wp_cancel_all_ctx *ctx = arg;
    wp_pool_withdrawn(ctx->pool, item, ctx->head);
    if (ctx->n < INT_MAX)
        ctx->n++;
}

int wpool_cancel_all(wpool_t *pool)
{
    if (!pool)
        return -EINVAL;
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    struct wp_cancel_all_ctx ctx = {pool, 0, false};
    /* Strands' lists first, then the overflows, then the rings: tasks move
     * only in that direction, so one moved during the call is found where
     * it went. */
    wp_strands_cancel_all(pool, wp_cancel_one, &ctx);
    ctx.head = true;
    unsigned int lanes = wp_nlanes(pool);
    for (unsigned int l = 0; l < lanes; l++)
        wp_overflow_remove_all(&pool->lanes[l].overflow, wp_cancel_one, &ctx);
    for (unsigned int l = 0; l < lanes; l++) {
        struct wp_queue *qs = wp_lane(pool, (int)l);
        for (unsigned int i = 0; i < pool->nqueues; i++) {
            wp_queue_cancel_all(&qs[i], wp_cancel_one, &ctx);
            wp_queue_reclaim(&qs[i]);
        }
    }
    if (ctx.n)
        wp_room_made(pool, WP_ALL_LANES, ctx.n); /* after the reclaim: the backlog has fallen */
    return ctx.n;
}
