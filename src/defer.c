/* SPDX-License-Identifier: MIT */
/* Deferred completion: the protocol is in defer.h. */
#include "defer.h"
#include "pool.h"
#include "port.h"

#include <errno.h>

bool wp_defer_hold(struct wpool *pool, struct wpool_task *t, uint64_t since_ticks)
{
    wp_t(t)->stamp = since_ticks; /* the pending time's start, the completer's */
    /* Counted before the CAS that lets a completer finish it, so the count
     * never goes below the pending tasks. Relaxed: the completer's decrement
     * follows our release CAS, read by its acquire CAS. */
    atomic_fetch_add_explicit(&pool->pending, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&pool->deferred, 1, memory_order_relaxed);
    uint64_t running = wp_state_word(WP_TASK_RUNNING, 0);
    /* Release: pairs with the completer's acquire CAS (PENDING -> INFLIGHT),
     * handing it the record (stamp above). Acquire on failure: the word then
     * holds EARLY and the completer's status. */
    if (atomic_compare_exchange_strong_explicit(&wp_t(t)->state, &running,
                                                wp_state_word(WP_TASK_PENDING, 0),
                                                memory_order_release, memory_order_acquire))
        return true;
    /* EARLY: completed while the work ran (only a completer moves RUNNING).
     * Counted, and the count of pending tasks lowered, before the post: the
     * pool outlives its workers. */
    int status = wp_state_status(running);
    wp_task_finish(t, status);
    wp_pool_completed_later(pool, 0, status, true);
    return false;
}

void wp_pool_completed_later(struct wpool *pool, uint64_t pend_ticks, int status, bool release)
{
    pthread_mutex_lock(&pool->lock);
    pool->later++;
    if (status == -ECANCELED)
        pool->later_cancelled++;
    else if (status == -ETIMEDOUT)
        pool->later_timed_out++;
    if (pool->timing)
        wp_ehist_record(&pool->pend_hist,
                        atomic_load_explicit(&pool->stats_epoch, memory_order_relaxed), pend_ticks);
    if (release)
        wp_pool_pending_release_locked(pool);
    pthread_mutex_unlock(&pool->lock);
}

void wp_pool_pending_release_locked(struct wpool *pool)
{
    /* Relaxed: under the lock, which the waiters take to read the count. */
    if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_relaxed) == 1)
        pthread_cond_broadcast(&pool->life_changed);
}

int wpool_task_complete(struct wpool_task *task, int status)
{
    if (!wp_task_valid(task) || status == WPOOL_PENDING)
        return -EINVAL;
    struct wp_task *w = wp_t(task);
    /* Relaxed: the CASs below decide; a stale look only costs a retry. */
    uint64_t word = atomic_load_explicit(&w->state, memory_order_relaxed);
    for (;;) {
        uint32_t phase = wp_state_phase(word);
        if (phase != WP_TASK_RUNNING && phase != WP_TASK_PENDING)
            return -EALREADY;
        /* In a forked child the record is the parent's: leave it as it was.
         * `port` is fixed while the task is in flight (relaxed: we learnt of
         * the task from its work function, after the worker took it). */
        struct wpool_port *port = atomic_load_explicit(&w->port, memory_order_relaxed);
        if (wp_pool_forked(wp_port_pool(port)))
            return -EOWNERDEAD;
        if (phase == WP_TASK_RUNNING) {
            /* The work function has not returned yet: leave the status (it
             * travels in the word) for the worker, which posts the task when
             * it returns WPOOL_PENDING. Release: pairs with the acquire of
             * the worker's failed CAS, so what the caller wrote before this
             * call reaches the callback. */
            if (atomic_compare_exchange_weak_explicit(&w->state, &word,
                                                      wp_state_word(WP_TASK_EARLY, status),
                                                      memory_order_release, memory_order_relaxed))
                return 0;
            continue;
        }
        /* Acquire: pairs with the worker's release CAS to PENDING. */
        if (atomic_compare_exchange_weak_explicit(&w->state, &word,
                                                  wp_state_word(WP_TASK_INFLIGHT, status),
                                                  memory_order_acquire, memory_order_relaxed))
            break;
    }
    /* Ours now, as a worker's task is after its work returns. Read what we
     * need first: once posted, the record is its owner's. */
    struct wpool_port *port = atomic_load_explicit(&w->port, memory_order_relaxed);
    struct wpool *pool = wp_port_pool(port);
    uint64_t pend = 0;
    if (pool->timing) {
        uint64_t now = wp_ticks();
        pend = now > w->stamp ? now - w->stamp : 0;
    }
    /* Counted before the post, as a worker counts a task it ran: once its
     * callback has run, the statistics include it. */
    wp_pool_completed_later(pool, pend, status, false);
    wp_strand_release(pool, task); /* its strand's next task, before the post */
    wp_port_post(port, task, NULL);
    /* The pool outlives this: close, shutdown and destroy wait for the
     * pending count, lowered only now, under the pool's lock. */
    pthread_mutex_lock(&pool->lock);
    wp_pool_pending_release_locked(pool);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}
