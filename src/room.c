/* SPDX-License-Identifier: MIT */
/*
 * Backpressure and the drain notification.
 *
 * Room: a submit is refused (-EAGAIN) when its lane's queues are full or, with
 * max_queue (a limited pool), when `waiting - idle` reached max_queue. Every
 * place that makes room (a worker takes a task, becomes idle again, a task is
 * cancelled, a cancelled cell is reclaimed) calls wp_room_made, which wakes
 * as many wpool_submit_wait callers of that lane and delivers a pending drain
 * notification. The refusal flag and the backlog form a Dekker pair: the
 * refusing submitter sets the flag and then reads the level; whoever makes
 * room changes the level and then reads the flag (both seq_cst), so a drain
 * is never lost (docs/design.md).
 */
#include "pool.h"
#include "port.h"
#include "task.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

/* Tasks waiting beyond the idle workers (limited), or tasks in the queues
 * (tombstones included). seq_cst loads: read after a refusal flag or a park
 * registration (Dekker with the workers' RMWs on the counters or the tail). */
static int64_t wp_backlog_level(struct wpool *pool)
{
    if (pool->limited)
        return atomic_load_explicit(&pool->waiting, memory_order_seq_cst) -
               atomic_load_explicit(&pool->idle, memory_order_seq_cst);
    int64_t n = 0;
    unsigned int lanes = wp_nlanes(pool);
    for (unsigned int l = 0; l < lanes; l++) {
        struct wp_queue *qs = wp_lane(pool, (int)l);
        for (unsigned int i = 0; i < pool->nqueues; i++)
            n += (int64_t)wp_queue_size(&qs[i]);
    }
    return n;
}

/* A drain's level: the pool's backlog, or its class's waiting tasks (seq_cst:
 * Dekker with the RMW that lowers it, then reads `refused`). */
static int64_t wp_drain_level(struct wp_drain *d)
{
    if (d->lane == WP_ALL_LANES)
        return wp_backlog_level(d->pool);
    return atomic_load_explicit(&d->pool->lanes[d->lane].waiting, memory_order_seq_cst);
}

/* Would a submit to this lane find room? (A snapshot.) */
bool wp_has_room(struct wpool *pool, int lane)
{
    struct wp_class *c = &pool->lanes[lane];
    /* seq_cst: read after a space park registration (Dekker with the
     * worker's decrement of `waiting`, then its notify in wp_room_made). */
    if (c->limited && atomic_load_explicit(&c->waiting, memory_order_seq_cst) >= c->max_queue)
        return false;
    if (pool->limited && wp_backlog_level(pool) >= pool->max_queue)
        return false;
    if (!pool->bounded)
        return true; /* what does not fit a ring waits in the overflow */
    struct wp_queue *qs = wp_lane(pool, lane);
    for (unsigned int i = 0; i < pool->nqueues; i++)
        if (wp_queue_size(&qs[i]) < pool->capacity)
            return true;
    return false;
}

/* The notification's completion, on the owner of the port it was posted to.
 * It calls the registration of that moment, if it is still for this port (a
 * callback registered since for another port must not run on this thread).
 * The notification counts as posted until this look-up: no re-post can move
 * the record to another port before we compare, and a refusal in between is
 * covered by the callback that runs after it. */
static void wp_drain_done(struct wpool_task *t, int status)
{
    (void)status;
    struct wp_drain *d = t->data;
    pthread_mutex_lock(&d->lock);
    /* Relaxed: the record is posted and read under the drain's lock. */
    struct wpool_port *posted_to = atomic_load_explicit(&wp_t(t)->port, memory_order_relaxed);
    wpool_drain_fn fn = d->port == posted_to ? d->fn : NULL;
    void *arg = d->arg;
    d->posted = false;
    pthread_mutex_unlock(&d->lock);
    if (fn)
        fn(d->pool, arg);
}

void wp_drain_init(struct wp_drain *d, struct wpool *pool, int lane, int64_t low_water)
{
    pthread_mutex_init(&d->lock, NULL);
    d->posted = false;
    d->pool = pool;
    d->lane = lane;
    d->low_water = low_water;
    d->fn = NULL;
    d->arg = NULL;
    d->port = pool->default_port;
    atomic_init(&d->refused, 0);
    memset(&d->task, 0, sizeof(d->task));
    d->task.data = d;
    wp_t(&d->task)->done = wp_drain_done;
    atomic_init(&wp_t(&d->task)->magic, WP_TASK_MAGIC);
}

void wp_drain_fini(struct wp_drain *d)
{
    pthread_mutex_destroy(&d->lock);
}

/* Posts the drain notification to the registered port unless one is still on
 * its way (it runs after this point, so it covers this refusal too). Under
 * the drain's lock: the port is registered, hence not closed
 * (wpool_port_destroy refuses a registered port under the same lock), and
 * counted in its in-flight total before the lock is released. */
static void wp_drain_post(struct wp_drain *d)
{
    if (d->posted)
        return;
    d->posted = true;
    struct wpool_task *t = &d->task;
    struct wpool_port *port = d->port;
    atomic_store_explicit(&wp_t(t)->port, port, memory_order_relaxed); /* under the lock */
    wp_task_finish(t, 0);
    wp_port_count(port);
    wp_port_post(port, t, NULL);
}

/* After a refusal: once the level is at the low-water mark, consume the
 * refusal and post one drain notification (unless one is already posted and
 * not yet run: it runs after this point, so it covers this refusal too). */
static void wp_drain_check(struct wp_drain *d)
{
    if (wp_drain_level(d) > d->low_water)
        return;
    int one = 1;
    /* seq_cst: consumes the refusal exactly once (one notification per
     * burst), after the level was seen low. */
    if (!atomic_compare_exchange_strong_explicit(&d->refused, &one, 0, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return;
    pthread_mutex_lock(&d->lock);
    if (d->fn)
        wp_drain_post(d);
    pthread_mutex_unlock(&d->lock);
}

/* A refused drain whose level may have fallen. seq_cst: after the caller's
 * RMW that made room (Dekker with a refusing submitter, which sets the flag
 * and then reads the level). */
static void wp_drain_poke(struct wp_drain *d)
{
    if (WP_UNLIKELY(atomic_load_explicit(&d->refused, memory_order_seq_cst)))
        wp_drain_check(d);
}

/* Room was made for n tasks in a lane (tasks left its queues), or in every
 * lane (a limited pool's backlog fell): wake as many submitters waiting for
 * room there, and deliver a pending drain notification. A woken waiter that
 * finds the room taken waits again; one that leaves without using it (its
 * submit failed otherwise, or its wait timed out as it was woken) passes the
 * wake on (wpool_submit_wait, park.h). */
void wp_room_made(struct wpool *pool, int lane, int n)
{
    wp_drain_poke(&pool->drain);
    if (lane != WP_ALL_LANES) {
        struct wp_class *c = &pool->lanes[lane];
        if (c->limited)
            wp_drain_poke(&c->drain);
        wp_park_notify(&c->space, n);
        return;
    }
    unsigned int lanes = wp_nlanes(pool);
    for (unsigned int l = 0; l < lanes; l++) {
        if (pool->lanes[l].limited)
            wp_drain_poke(&pool->lanes[l].drain);
        wp_park_notify(&pool->lanes[l].space, n);
    }
}

/* A submit found no room. */
void wp_refused(struct wpool *pool, int lane)
{
    struct wp_drain *d = lane == WP_ALL_LANES ? &pool->drain : &pool->lanes[lane].drain;
    /* seq_cst store, then the level read in wp_drain_check: Dekker with
     * whoever makes room (its RMW on the level, then its seq_cst read of
     * `refused` in wp_room_made). */
    if (!atomic_load_explicit(&d->refused, memory_order_relaxed))
        atomic_store_explicit(&d->refused, 1, memory_order_seq_cst);
    /* The workers may have made room before they could see the flag. */
    wp_drain_check(d);
}

int wpool_needs_drain(const wpool_t *cpool)
{
    if (!cpool)
        return -EINVAL;
    struct wpool *pool = (struct wpool *)cpool; /* reads only */
    return !wp_has_room(pool, WPOOL_PRIORITY_NORMAL);
}

int wpool_class_needs_drain(const wpool_t *cpool, int cls)
{
    if (!cpool || cls < 0 || cls >= WP_LANES || !wp_lane(cpool, cls))
        return -EINVAL;
    return !wp_has_room((struct wpool *)cpool, cls); /* reads only */
}

/* Registers fn for port on drain d. */
static int wp_drain_register(struct wpool *pool, struct wp_drain *d, wpool_port_t *port,
                             wpool_drain_fn fn, void *arg)
{
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    if (!port)
        port = pool->default_port;
    if (wp_port_pool(port) != pool)
        return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&d->lock);
    if (wp_port_dead(port)) {
        rc = -EINVAL;
    } else if (fn && wp_port_closed(port)) {
        rc = -ESHUTDOWN; /* being destroyed: it could never be destroyed then */
    } else if (d->posted && d->port != port) {
        rc = -EBUSY; /* a notification is on its way to the old port */
    } else {
        d->port = port;
        d->fn = fn;
        d->arg = arg;
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

int wpool_on_drain(wpool_t *pool, wpool_port_t *port, wpool_drain_fn fn, void *arg)
{
    if (!pool)
        return -EINVAL;
    return wp_drain_register(pool, &pool->drain, port, fn, arg);
}

int wpool_class_on_drain(wpool_t *pool, int cls, wpool_port_t *port, wpool_drain_fn fn, void *arg)
{
    if (!pool || cls < 0 || cls >= WP_LANES || !wp_lane(pool, cls))
        return -EINVAL;
    if (!pool->lanes[cls].limited)
        return -ENOTSUP; /* no max_queue: it never refuses on its own */
    return wp_drain_register(pool, &pool->lanes[cls].drain, port, fn, arg);
}

/* Under d's lock, so that a registration sees the port closed exactly: a
 * registered port stays busy (its notifications are counted in flight under
 * this lock), an unregistered one stops being the drain's destination. */
static int wp_drain_release_port(struct wp_drain *d, struct wpool_port *port, int rc)
{
    pthread_mutex_lock(&d->lock);
    if (d->port == port) {
        if (d->fn || d->posted)
            rc = -EBUSY;  /* registered, or its notification is on its way there */
        else if (rc == 0) /* nothing in flight, the drain's record included */
            d->port = d->pool->default_port;
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

/* wpool_port_destroy's first step: closes the port (from here on, for
 * good, submits and registrations are refused), then looks at every drain
 * in turn: one registered for the port keeps it busy. A registration that
 * takes a drain's lock before we do is seen here; one after, sees the port
 * closed. A drain may have posted to the port between the close and our
 * look at it (a registration since withdrawn): so the port's in-flight
 * count is read again at the end (every post counts the port under its
 * drain's lock, which we took since). */
int wp_drain_close_port(struct wpool *pool, struct wpool_port *port)
{
    pthread_mutex_lock(&pool->drain.lock);
    int rc = wp_port_close(port);
    pthread_mutex_unlock(&pool->drain.lock);
    rc = wp_drain_release_port(&pool->drain, port, rc);
    unsigned int lanes = wp_nlanes(pool);
    for (unsigned int l = 0; l < lanes; l++)
        if (pool->lanes[l].limited)
            rc = wp_drain_release_port(&pool->lanes[l].drain, port, rc);
    return rc ? rc : wp_port_close(port);
}
