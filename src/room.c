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

/* Tasks waiting beyond the idle workers (limited), or tasks in the queues
 * (tombstones included). seq_cst loads: read after a refusal flag or a park
 * registration (Dekker with the workers' RMWs on the counters or the tail). */
static int64_t wp_backlog_level(struct wpool *pool)
{
    if (pool->limited)
        return atomic_load_explicit(&pool->waiting, memory_order_seq_cst) -
               atomic_load_explicit(&pool->idle, memory_order_seq_cst);
    int64_t n = 0;
    for (unsigned int i = 0; i < WP_LANES * pool->nqueues; i++)
        n += (int64_t)wp_queue_size(&pool->queues[i]);
    return n;
}

/* Would a submit to this lane find room? (A snapshot.) */
bool wp_has_room(struct wpool *pool, int lane)
{
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
    struct wpool *pool = t->data;
    pthread_mutex_lock(&pool->drain_lock);
    /* Relaxed: the record is posted and read under drain_lock. */
    struct wpool_port *posted_to = atomic_load_explicit(&wp_t(t)->port, memory_order_relaxed);
    wpool_drain_fn fn = pool->drain_port == posted_to ? pool->drain_fn : NULL;
    void *arg = pool->drain_arg;
    pool->drain_posted = false;
    pthread_mutex_unlock(&pool->drain_lock);
    if (fn)
        fn(pool, arg);
}

void wp_drain_init(struct wpool *pool)
{
    pthread_mutex_init(&pool->drain_lock, NULL);
    pool->drain_posted = false;
    pool->drain_task.data = pool;
    wp_t(&pool->drain_task)->done = wp_drain_done;
    atomic_init(&wp_t(&pool->drain_task)->magic, WP_TASK_MAGIC);
}

/* Posts the drain notification to the registered port unless one is still on
 * its way (it runs after this point, so it covers this refusal too). Under
 * drain_lock: the port is registered, hence not closed (wpool_port_destroy
 * refuses a registered port under the same lock), and counted in its
 * in-flight total before the lock is released. */
static void wp_drain_post(struct wpool *pool)
{
    if (pool->drain_posted)
        return;
    pool->drain_posted = true;
    struct wpool_task *t = &pool->drain_task;
    struct wpool_port *port = pool->drain_port;
    atomic_store_explicit(&wp_t(t)->port, port, memory_order_relaxed); /* under drain_lock */
    wp_task_finish(t, 0);
    wp_port_count(port);
    wp_port_post(port, t, NULL);
}

/* After a refusal: once the backlog is at the low-water mark, consume the
 * refusal and post one drain notification (unless one is already posted and
 * not yet run: it runs after this point, so it covers this refusal too). */
static void wp_drain_check(struct wpool *pool)
{
    if (wp_backlog_level(pool) > pool->low_water)
        return;
    int one = 1;
    /* seq_cst: consumes the refusal exactly once (one notification per
     * burst), after the level was seen low. */
    if (!atomic_compare_exchange_strong_explicit(&pool->refused, &one, 0, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return;
    pthread_mutex_lock(&pool->drain_lock);
    if (pool->drain_fn)
        wp_drain_post(pool);
    pthread_mutex_unlock(&pool->drain_lock);
}

/* Room was made for n tasks in a lane (tasks left its queues), or in every
 * lane (a limited pool's backlog fell): wake as many submitters waiting for
 * room there, and deliver a pending drain notification. A woken waiter that
 * finds the room taken waits again; one that leaves without using it (its
 * submit failed otherwise, or its wait timed out as it was woken) passes the
 * wake on (wpool_submit_wait, park.h). */
void wp_room_made(struct wpool *pool, int lane, int n)
{
    /* seq_cst: after the caller's RMW that made room (Dekker with a refusing
     * submitter, which sets the flag and then reads the backlog). */
    if (WP_UNLIKELY(atomic_load_explicit(&pool->refused, memory_order_seq_cst)))
        wp_drain_check(pool);
    for (int l = 0; l < WP_LANES; l++)
        if (lane == WP_ALL_LANES || lane == l)
            wp_park_notify(&pool->space[l], n);
}

/* A submit found no room. */
void wp_refused(struct wpool *pool)
{
    /* seq_cst store, then the backlog read in wp_drain_check: Dekker with
     * whoever makes room (its RMW on the level, then its seq_cst read of
     * `refused` in wp_room_made). */
    if (!atomic_load_explicit(&pool->refused, memory_order_relaxed))
        atomic_store_explicit(&pool->refused, 1, memory_order_seq_cst);
    /* The workers may have made room before they could see the flag. */
    wp_drain_check(pool);
}

int wpool_needs_drain(const wpool_t *cpool)
{
    if (!cpool)
        return -EINVAL;
    struct wpool *pool = (struct wpool *)cpool; /* reads only */
    return !wp_has_room(pool, WPOOL_PRIORITY_NORMAL);
}

int wpool_on_drain(wpool_t *pool, wpool_port_t *port, wpool_drain_fn fn, void *arg)
{
    if (!pool)
        return -EINVAL;
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    if (!port)
        port = pool->default_port;
    if (wp_port_pool(port) != pool)
        return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&pool->drain_lock);
    if (wp_port_dead(port)) {
        rc = -EINVAL;
    } else if (fn && wp_port_closed(port)) {
        rc = -ESHUTDOWN; /* being destroyed: it could never be destroyed then */
    } else if (pool->drain_posted && pool->drain_port != port) {
        rc = -EBUSY; /* a notification is on its way to the old port */
    } else {
        pool->drain_port = port;
        pool->drain_fn = fn;
        pool->drain_arg = arg;
    }
    pthread_mutex_unlock(&pool->drain_lock);
    return rc;
}

/* Under drain_lock, so that wpool_on_drain sees the port closed exactly:
 * close it (from here on, for good, submits are refused); a registered port
 * stays busy (its notifications are counted in flight under this lock), an
 * unregistered one stops being the drain's destination. */
int wp_drain_close_port(struct wpool *pool, struct wpool_port *port)
{
    pthread_mutex_lock(&pool->drain_lock);
    int rc = wp_port_close(port);
    if (pool->drain_port == port) {
        if (pool->drain_fn)
            rc = -EBUSY;  /* registered with wpool_on_drain */
        else if (rc == 0) /* nothing in flight, the drain record included */
            pool->drain_port = pool->default_port;
    }
    pthread_mutex_unlock(&pool->drain_lock);
    return rc;
}
