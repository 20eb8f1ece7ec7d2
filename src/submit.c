/* SPDX-License-Identifier: MIT */
/*
 * The submit path: task attributes, claim, admit, reserve, publish, wake.
 *
 * wpool_submit claims the record (IDLE -> INFLIGHT, one CAS), admits the
 * task under max_queue (a CAS on `waiting`), counts it on its port (one RMW;
 * refused once a port other than the default one is being destroyed,
 * port.h), reserves a cell in its lane (queue.h), publishes the record there
 * and wakes one parked worker (park.h).
 * A task that carries a token is linked to it under the token's lock first
 * (token.c). Batch and wait are loops over the same path.
 */
#include "pool.h"
#include "port.h"
#include "task.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <string.h>

int wpool_task_init(struct wpool_task *task, wpool_work_fn work, wpool_done_fn done)
{
    if (!task || !work || !done)
        return -EINVAL;
    if (wp_task_valid(task) && wp_task_state(task) != WP_TASK_IDLE)
        return -EBUSY;
    /* Field by field, keeping data: wpool_cancel on another thread may still
     * be reading `slot` and `port` of the completed submission (atomically),
     * so those are written atomically too (relaxed: the canceller trusts
     * only its CAS on the cell). */
    struct wp_task *w = wp_t(task);
    atomic_store_explicit(&w->slot, 0, memory_order_relaxed);
    atomic_store_explicit(&w->port, NULL, memory_order_relaxed);
    w->next = NULL;
    w->work = work;
    w->done = done;
    w->token = NULL;
    w->deadline = 0;
    w->stamp = 0;
    w->target = NULL;
    atomic_store_explicit(&w->strand, NULL, memory_order_relaxed);
    w->tprev = w->tnext = NULL;
    w->prio = WPOOL_PRIORITY_NORMAL;
    atomic_store_explicit(&w->over, NULL, memory_order_relaxed);
    w->oprev = NULL;
    atomic_store_explicit(&w->state, WP_TASK_IDLE, memory_order_relaxed);
    atomic_store_explicit(&w->magic, WP_TASK_MAGIC, memory_order_relaxed);
    return 0;
}

/* An attribute may change only while the task is idle. */
static int wp_task_settable(const struct wpool_task *task)
{
    if (!wp_task_valid(task))
        return -EINVAL;
    return wp_task_state(task) == WP_TASK_IDLE ? 0 : -EBUSY;
}

int wpool_task_set_port(struct wpool_task *task, wpool_port_t *port)
{
    int rc = wp_task_settable(task);
    if (rc == 0)
        wp_t(task)->target = port;
    return rc;
}

/* A task's lane: its class (a priority is one of the two built-in
 * classes). Whether the class exists is checked at submit (wp_claim). */
static int wp_task_set_lane(struct wpool_task *task, int lane, int lanes)
{
    int rc = wp_task_settable(task);
    if (rc == 0 && (lane < 0 || lane >= lanes))
        rc = -EINVAL;
    if (rc == 0)
        wp_t(task)->prio = lane;
    return rc;
}

int wpool_task_set_priority(struct wpool_task *task, int priority)
{
    return wp_task_set_lane(task, priority, 2);
}

int wpool_task_set_class(struct wpool_task *task, int cls)
{
    return wp_task_set_lane(task, cls, WP_LANES);
}

int wpool_task_set_deadline(struct wpool_task *task, uint64_t deadline_ns)
{
    int rc = wp_task_settable(task);
    if (rc == 0)
        wp_t(task)->deadline = deadline_ns;
    return rc;
}

int wpool_task_set_token(struct wpool_task *task, wpool_token_t *token)
{
    int rc = wp_task_settable(task);
    if (rc == 0)
        wp_t(task)->token = token;
    return rc;
}

/* Reserves a slot in the task's lane: the policy's queue first; with
 * ROUND_ROBIN the others if it is full. A full queue first gets its cancelled
 * cells at the tail reclaimed. */
static int wp_reserve(struct wpool *pool, int lane, struct wp_queue **qp, uint64_t *pos)
{
    unsigned int n = pool->nqueues, i = 0;
    struct wp_queue *qs = wp_lane(pool, lane);
    if (n > 1) {
        /* Relaxed load + store, not an RMW: a lost update only skews the
         * rotation, and submitters do not contend on a locked instruction. */
        i = atomic_load_explicit(&pool->rr_next, memory_order_relaxed);
        if (i >= n)
            i = 0;
        atomic_store_explicit(&pool->rr_next, i + 1 < n ? i + 1 : 0, memory_order_relaxed);
    }
    for (unsigned int k = 0; k < n; k++) {
        struct wp_queue *q = &qs[i];
        int rc = wp_queue_reserve(q, pos);
        if (rc == -EAGAIN) {
            wp_queue_reclaim(q);
            rc = wp_queue_reserve(q, pos);
        }
        if (rc != -EAGAIN) {
            *qp = q;
            return rc;
        }
        if (++i == n)
            i = 0;
    }
    return -EAGAIN;
}

/* Limited pools: claims a place among the waiting tasks, exactly (a CAS).
 * seq_cst loads and CAS: in one total order with the workers' seq_cst RMWs on
 * waiting and idle (wp_run lowers idle before waiting). A worker may lower
 * idle between our load of it and our CAS, so the backlog we admit against
 * can be one below the true one for a moment; that worker's own decrement of
 * waiting follows, so max_queue holds once it has. */
static int wp_admit(struct wpool *pool)
{
    int64_t w = atomic_load_explicit(&pool->waiting, memory_order_seq_cst);
    for (;;) {
        int64_t idle = atomic_load_explicit(&pool->idle, memory_order_seq_cst);
        if (w - idle >= pool->max_queue)
            return -EAGAIN;
        /* seq_cst: the admission test reads idle and claims a place in one
         * order with the workers' seq_cst RMWs on idle and waiting (wp_run). */
        if (atomic_compare_exchange_weak_explicit(&pool->waiting, &w, w + 1, memory_order_seq_cst,
                                                  memory_order_seq_cst))
            return 0;
    }
}

/* A class with a max_queue of its own: claims a place among its waiting
 * tasks (a CAS; seq_cst: in one order with the workers' seq_cst decrements,
 * the backpressure Dekker of room.c). */
static int wp_class_admit(struct wp_class *c)
{
    int64_t w = atomic_load_explicit(&c->waiting, memory_order_seq_cst);
    while (w < c->max_queue)
        /* seq_cst: see above. */
        if (atomic_compare_exchange_weak_explicit(&c->waiting, &w, w + 1, memory_order_seq_cst,
                                                  memory_order_seq_cst))
            return 0;
    return -EAGAIN;
}

/* A refusal after the pool's admission: its place is given back. */
static void wp_unadmit_pool(struct wpool *pool)
{
    if (pool->limited) {
        /* seq_cst: the admission undone, then `refused` read in
         * wp_room_made (the backpressure Dekker, room.c). */
        atomic_fetch_sub_explicit(&pool->waiting, 1, memory_order_seq_cst);
        wp_room_made(pool, WP_ALL_LANES, 1);
    }
}

/* A refusal after both admissions: the class's place too. */
static void wp_unadmit(struct wpool *pool, int lane)
{
    struct wp_class *c = &pool->lanes[lane];
    if (c->limited) {
        /* seq_cst: the admission undone, then the class's `refused` read
         * in wp_room_made (the backpressure Dekker, room.c). */
        atomic_fetch_sub_explicit(&c->waiting, 1, memory_order_seq_cst);
        wp_room_made(pool, lane, 1);
    }
    wp_unadmit_pool(pool);
}

/* Before a lane's first task is queued: workers look at that lane from then
 * on. */
static inline void wp_lane_used(struct wpool *pool, int lane)
{
    uint32_t bit = UINT32_C(1) << lane;
    if (WP_UNLIKELY(!(atomic_load_explicit(&pool->used, memory_order_relaxed) & bit)))
        /* seq_cst: before the publish; a worker re-reads it (seq_cst) after
         * its park prepare, so it cannot sleep on a task in a lane it
         * missed. */
        atomic_fetch_or_explicit(&pool->used, bit, memory_order_seq_cst);
}

/* Queues an accepted t (admitted, counted on a gated port) in its lane:
 * reserves and publishes, or pushes it on the overflow. On a refusal the
 * caller undoes the acceptance. */
static int wp_queue_task(struct wpool *pool, struct wpool_task *t, struct wpool_port *port,
                         bool gated, bool notify)
{
    int lane = wp_t(t)->prio;
    struct wp_queue *q;
    uint64_t pos;
    struct wp_overflow *ov = &pool->lanes[lane].overflow;
    /* Behind the overflow while it holds tasks: a thread's tasks keep their
     * order (everything in a ring is older than everything there). */
    int rc = !pool->bounded && WP_UNLIKELY(wp_overflow_size(ov)) ? -EAGAIN
                                                                 : wp_reserve(pool, lane, &q, &pos);
    if (WP_UNLIKELY(rc == -EAGAIN) && !pool->bounded) {
        /* The ring is full: the task waits in the overflow, linked through
         * its own record. */
        rc = wp_overflow_push(ov, t, gated ? NULL : port);
        if (rc == 0) {
            /* The push's count increment was a seq_cst RMW, as
             * wp_park_notify requires. Nothing may touch t any more. */
            if (notify)
                wp_wake_for(pool, lane);
            return 0;
        }
        /* closed meanwhile: -ESHUTDOWN */
    }
    if (WP_UNLIKELY(rc))
        return rc;
    if (!gated)
        wp_port_count(port);
    /* wpool_cancel reads it racily and trusts only its CAS on the cell (see
     * wp_queue_cancel). Release: a canceller that sees the slot (acquire)
     * sees `port`. */
    atomic_store_explicit(&wp_t(t)->slot, wp_slot(wp_ring_number(pool, lane, q), pos),
                          memory_order_release);
    wp_queue_publish(q, pos, t);
    /* Nothing may touch t from here on: a worker may already have completed
     * it. The publish was a seq_cst RMW, as wp_park_notify requires. */
    if (notify)
        wp_wake_for(pool, lane);
    return 0;
}

/* A task with a strand: queued as its head if the strand is idle, else
 * appended behind it (strand.h). */
static int wp_queue_stranded(struct wpool *pool, struct wpool_task *t, struct wpool_port *port,
                             bool gated, bool notify)
{
    struct wpool_strand *strand = wp_task_strand(t); /* t is not ours once queued */
    /* Appended: counted on the default port under the strand's lock. */
    int rc = wp_strand_enter(pool, t, gated ? NULL : port);
    if (rc == 1) {
        /* The head; the strand's lock held, so no release can look at it
         * before the strand knows whether it was queued. */
        rc = wp_queue_task(pool, t, port, gated, notify);
        wp_strand_head_queued(strand, rc);
    }
    return rc;
}

/* Admits, counts, reserves and publishes t for port (its completion's
 * destination). */
static int wp_enqueue(struct wpool *pool, struct wpool_task *t, struct wpool_port *port,
                      bool notify)
{
    int lane = wp_t(t)->prio;
    /* The default port lives as long as the pool: no gate, and its count is
     * taken once the queue has accepted the task (nothing to refund). A
     * pool field: the port's own lines are busy with its counts. */
    bool gated = port != pool->default_port;
    /* A closing port wins over a lack of room (wp_port_gate_enter decides). */
    if (gated && WP_UNLIKELY(wp_port_closed(port)))
        return wp_port_dead(port) ? -EINVAL : -ESHUTDOWN;
    if (pool->limited) {
        int rc = wp_admit(pool);
        if (rc) {
            /* A closed pool reports -ESHUTDOWN, not a lack of room. */
            if (wp_pool_closed(pool))
                return -ESHUTDOWN;
            wp_refused(pool, WP_ALL_LANES);
            return rc;
        }
    }
    struct wp_class *c = &pool->lanes[lane];
    if (WP_UNLIKELY(c->limited) && wp_class_admit(c)) {
        wp_unadmit_pool(pool);
        if (wp_pool_closed(pool))
            return -ESHUTDOWN;
        atomic_fetch_add_explicit(&c->refusals, 1, memory_order_relaxed);
        wp_refused(pool, lane);
        return -EAGAIN;
    }
    /* Counted on another port before it can be seen anywhere: a destroy
     * that comes after this count finds the port busy; one before, refuses
     * it. */
    int rc = gated ? wp_port_gate_enter(port) : 0;
    if (WP_UNLIKELY(rc)) {
        wp_unadmit(pool, lane);
        return rc;
    }
    wp_lane_used(pool, lane);
    /* Before the reserve: a submitter preempted between reserve and publish
     * holds up every task behind its cell, so that window stays short. */
    if (pool->timing)
        wp_t(t)->stamp = wp_ticks();
    /* Relaxed: a canceller reads it after its acquire load of the slot (or
     * under the strand's lock). */
    atomic_store_explicit(&wp_t(t)->port, port, memory_order_relaxed);
    rc = WP_UNLIKELY(wp_task_strand(t)) ? wp_queue_stranded(pool, t, port, gated, notify)
                                        : wp_queue_task(pool, t, port, gated, notify);
    if (WP_UNLIKELY(rc)) {
        if (gated)
            wp_port_refund(port);
        wp_unadmit(pool, lane);
        if (rc == -EAGAIN)
            wp_refused(pool, WP_ALL_LANES);
    }
    return rc;
}

void wp_place_released(struct wpool *pool, struct wpool_task *t)
{
    int lane = wp_t(t)->prio;
    wp_lane_used(pool, lane);
    struct wp_overflow *ov = &pool->lanes[lane].overflow;
    struct wp_queue *q;
    uint64_t pos;
    /* Behind the overflow while it holds tasks, as a submit: its tasks
     * would wait for as long as the rings never ran dry. */
    if (wp_overflow_size(ov) || wp_reserve(pool, lane, &q, &pos) != 0) {
        /* Full (or bounded and full), or closed: accepted all the same
         * (the push clears the slot, under the overflow's lock). */
        wp_overflow_push_released(ov, t);
    } else {
        /* The cell filled before the slot names it: a canceller that reads
         * the slot finds the task there (it was accepted long ago: it must
         * not be told "not queued"). The strand's lock is held, so even a
         * canceller that won the cell through a stale slot cannot post the
         * task before the slot store below (its release takes the lock).
         * seq_cst: the task leaves the strand (the Dekker with a strand's
         * destroy, strand.c). Then the cell is published to the workers. */
        wp_queue_fill(q, pos, t);
        atomic_store_explicit(&wp_t(t)->slot, wp_slot(wp_ring_number(pool, lane, q), pos),
                              memory_order_seq_cst);
        wp_queue_release(q, pos);
    }
    /* After a seq_cst RMW (the publish, or the push's count). */
    wp_wake_for(pool, lane);
}

static int wp_submit_plain(struct wpool *pool, struct wpool_task *t, bool notify)
{
    return wp_enqueue(pool, t, wp_t(t)->target ? wp_t(t)->target : pool->default_port, notify);
}

/* Checks and claims the task for one submission; on success it is INFLIGHT
 * and must be queued or put back to IDLE. */
static int wp_claim(struct wpool *pool, struct wpool_task *t)
{
    if (!wp_task_valid(t))
        return -EINVAL;
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    /* A destroyed (or closing) target is refused by its gate. */
    if (wp_t(t)->target && wp_port_pool(wp_t(t)->target) != pool)
        return -EINVAL;
    if (wp_task_strand(t) && !wp_strand_of(wp_task_strand(t), pool))
        return -EINVAL;
    /* A class of this pool: counted in nlanes, which is published after
     * everything a worker reads of the lane (class.c). */
    if (WP_UNLIKELY(wp_t(t)->prio > WPOOL_CLASS_HIGH) &&
        (unsigned int)wp_t(t)->prio >= wp_nlanes(pool))
        return -EINVAL;                             /* no such class in this pool */
    uint64_t idle = wp_state_word(WP_TASK_IDLE, 0); /* every IDLE store writes status 0 */
    /* Acquire: pairs with the release in wp_port_complete when the previous
     * completion of this record ran on another thread. A closed pool wins
     * over a busy task; checked only here, off the hot path (the reserve
     * reports a close by itself). */
    if (!atomic_compare_exchange_strong_explicit(&wp_t(t)->state, &idle, WP_TASK_INFLIGHT,
                                                 memory_order_acquire, memory_order_relaxed))
        return wp_pool_closed(pool) ? -ESHUTDOWN : -EBUSY;
    return 0;
}

static int wp_submit_one(struct wpool *pool, struct wpool_task *t, bool notify)
{
    int rc = wp_claim(pool, t);
    if (WP_UNLIKELY(rc))
        return rc;
    if (wp_t(t)->token) {
        /* Linked to its token under the token's lock, queued, then the lock
         * released (unlinked again if refused). */
        struct wpool_token *tok = wp_t(t)->token;
        uint64_t deadline = wp_t(t)->deadline; /* a group's join may lower it */
        rc = wp_token_link(t, pool);
        if (rc == 0) {
            rc = wp_submit_plain(pool, t, notify);
            if (WP_UNLIKELY(rc)) /* refused: it joined nothing (ours again) */
                wp_t(t)->deadline = deadline;
            wp_token_unlock(tok, t, rc);
        }
    } else {
        rc = wp_submit_plain(pool, t, notify);
    }
    if (WP_UNLIKELY(rc))
        /* Release: the claim undone; pairs with the next claim's acquire
         * CAS (wp_claim), possibly on another thread. */
        atomic_store_explicit(&wp_t(t)->state, WP_TASK_IDLE, memory_order_release);
    return rc;
}

int wpool_submit(wpool_t *pool, struct wpool_task *t)
{
    if (!pool)
        return -EINVAL;
    return wp_submit_one(pool, t, true);
}

int wpool_submit_batch(wpool_t *pool, struct wpool_task *const *tasks, unsigned int n)
{
    if (!pool || !tasks || n == 0)
        return -EINVAL;
    unsigned int k = 0;
    uint32_t lanes = 0;
    int rc = 0;
    for (; k < n && k < INT_MAX; k++) {
        /* Read before the submit (the task is not ours once queued). */
        int lane = wp_task_valid(tasks[k]) ? wp_t(tasks[k])->prio : 0;
        rc = wp_submit_one(pool, tasks[k], false);
        if (rc)
            break;
        lanes |= UINT32_C(1) << lane;
    }
    if (k == 0)
        return rc;
    /* One wakeup per class: a woken worker passes it on while a backlog
     * remains (a class's reserved workers sleep apart). */
    for (int l = 0; lanes; l++, lanes >>= 1)
        if (lanes & 1)
            wp_wake_for(pool, l);
    return (int)k;
}

/* Sleeps on a space park until signalled (0) or the deadline. */
static int wp_space_wait(struct wp_park *space, struct wp_park_node *node, uint64_t deadline_ns)
{
    if (!deadline_ns) {
        wp_park_wait(space, node);
        return 0;
    }
    uint64_t now = wp_clock_ns();
    return wp_park_wait_for(space, node, now >= deadline_ns ? 0 : deadline_ns - now);
}

int wpool_submit_wait(wpool_t *pool, struct wpool_task *t, int timeout_ms)
{
    if (!pool || timeout_ms < -1)
        return -EINVAL;
    if (wp_on_own_worker(pool))
        return -EDEADLK;
    uint64_t deadline = wp_deadline_ns(timeout_ms);
    bool woken = false;
    for (unsigned int spins = 0;; spins++) {
        int rc = wpool_submit(pool, t);
        if (rc != -EAGAIN) {
            /* A wake is one slot's: leaving without using it (token
             * cancelled, port or pool closing, ...) hands it to the next
             * waiter of the lane. */
            if (woken && rc != 0)
                wp_park_notify(&pool->lanes[wp_t(t)->prio].space, 1);
            return rc;
        }
        /* Refused after a wake: the room went to someone else (used). */
        woken = false;
        /* The task is valid (not -EINVAL) and ours: its lane is stable. */
        struct wp_park *space = &pool->lanes[wp_t(t)->prio].space;
        /* Register, then re-check for room (Dekker with the worker that makes
         * room and then looks for waiters, see wp_room_made). */
        struct wp_park_node node;
        wp_park_prepare(space, &node);
        if (wp_has_room(pool, wp_t(t)->prio) || wp_pool_closed(pool)) {
            wp_park_cancel(space, &node);
            /* Room is seen but the submit may still be refused (a worker
             * preempted between taking a cell and freeing it): the deadline
             * holds here too. */
            if (deadline && wp_clock_ns() >= deadline) {
                rc = wpool_submit(pool, t);
                return rc == -EAGAIN ? -ETIMEDOUT : rc;
            }
            if (spins > 16) /* room is being made by a preempted worker */
                sched_yield();
            continue;
        }
        spins = 0;
        if (wp_space_wait(space, &node, deadline) == -ETIMEDOUT) {
            rc = wpool_submit(pool, t);
            return rc == -EAGAIN ? -ETIMEDOUT : rc;
        }
        woken = true;
    }
}
