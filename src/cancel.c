/* SPDX-License-Identifier: MIT */
/*
 * Cancel: a queued task is withdrawn from its cell by one CAS that races the
 * workers' pops (wp_queue_cancel); whoever wins owns the task, so it completes
 * exactly once. The winner posts its -ECANCELED completion at once and makes
 * room. Tokens cancel through the same path (token.c).
 */
#include "pool.h"
#include "port.h"
#include "task.h"

#include <errno.h>
#include <limits.h>

int wp_task_withdraw(struct wpool_task *t)
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
            wp_pool_withdrawn(opool, t);
            return 0;
        }
        /* Taken by a worker, or moved into a ring (then `queue` names it,
         * stored before the list's lock was released): as below. */
    }
    /* Acquire: pairs with the submitter's release store of `queue`, made
     * after it stored `port` and `pos`. These are read racily (the task may
     * be taken and even resubmitted meanwhile): only the CAS on the cell is
     * trusted (see wp_queue_cancel). */
    struct wp_queue *q = atomic_load_explicit(&wp_t(t)->queue, memory_order_acquire);
    if (!q)
        return -EBUSY;
    /* In a forked child the copy is the parent's: check before the CAS, so
     * that the child's copy of the cell is left as it was. */
    struct wpool_port *port = atomic_load_explicit(&wp_t(t)->port, memory_order_relaxed);
    if (!port) /* completed and re-initialised since we looked: not queued */
        return -EBUSY;
    struct wpool *pool = wp_port_pool(port);
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    uint64_t pos = atomic_load_explicit(&wp_t(t)->pos, memory_order_relaxed);
    if (!wp_queue_cancel(q, pos, t))
        return -EBUSY;
    /* We own the task now, exactly as a worker that popped it would (the
     * CAS acquired its fields). Free the slot now if the tombstone is at the
     * tail, so that the backlog a refused submitter waits on falls at once. */
    wp_queue_reclaim(q);
    wp_pool_withdrawn(pool, t);
    return 0;
}

void wp_pool_withdrawn(struct wpool *pool, struct wpool_task *t)
{
    atomic_store_explicit(&wp_t(t)->queue, NULL, memory_order_relaxed);
    wp_task_finish(t, -ECANCELED);
    atomic_fetch_add_explicit(&pool->cancelled, 1, memory_order_relaxed);
    /* seq_cst: room made, then wp_room_made reads `refused` (Dekker with
     * wp_refused, which sets it and then reads the backlog). */
    if (pool->limited)
        atomic_fetch_sub_explicit(&pool->waiting, 1, memory_order_seq_cst);
    int lane = wp_t(t)->prio;
    /* Relaxed: ours since the CAS on its cell (it acquired the fields). */
    struct wpool_port *port = atomic_load_explicit(&wp_t(t)->port, memory_order_relaxed);
    wp_port_post(port, t, NULL);
    wp_room_made(pool, pool->limited ? WP_ALL_LANES : lane, 1);
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
};

static void wp_cancel_one(void *item, void *arg)
{
    struct wp_cancel_all_ctx *ctx = arg;
    wp_pool_withdrawn(ctx->pool, item);
    if (ctx->n < INT_MAX)
        ctx->n++;
}

int wpool_cancel_all(wpool_t *pool)
{
    if (!pool)
        return -EINVAL;
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    struct wp_cancel_all_ctx ctx = {pool, 0};
    /* Overflows first: tasks move only from an overflow into a ring, so one
     * moved during the call is in a ring when the rings are scanned. */
    for (int l = 0; l < WP_LANES; l++)
        wp_overflow_remove_all(&pool->overflow[l], wp_cancel_one, &ctx);
    for (unsigned int i = 0; i < WP_LANES * pool->nqueues; i++) {
        wp_queue_cancel_all(&pool->queues[i], wp_cancel_one, &ctx);
        wp_queue_reclaim(&pool->queues[i]);
    }
    if (ctx.n)
        wp_room_made(pool, WP_ALL_LANES, ctx.n); /* after the reclaim: the backlog has fallen */
    return ctx.n;
}
