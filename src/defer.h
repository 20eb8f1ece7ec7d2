/* SPDX-License-Identifier: MIT */
/*
 * Deferred completion (defer.c): a work function that returns WPOOL_PENDING
 * leaves its task unfinished; wpool_task_complete, on any thread, finishes it
 * and posts it to its port.
 *
 * The record's state word carries the phase and the status (task.h), so the
 * worker and a completer meet in one word:
 *   worker:    RUNNING before the work function; after it, INFLIGHT|status
 *              (a plain store), or for WPOOL_PENDING a CAS RUNNING -> PENDING;
 *              if that finds EARLY|status, the task was completed while its
 *              work ran: the worker posts it.
 *   completer: PENDING -> INFLIGHT|status (CAS; then it posts the task), or
 *              RUNNING -> EARLY|status (CAS; the worker posts it); any other
 *              phase: -EALREADY.
 * Exactly one of them posts: whichever CAS takes the word last. The pool
 * counts pending tasks (raised by the worker before its CAS, lowered by the
 * completer under the pool's lock after its post), and close, shutdown and
 * destroy wait for the count to reach 0 after joining the workers. The
 * statistics count a completed task before its post, as for a task a worker
 * ran: `later` (completed later) and `deferred` (ever pending) say how many
 * are pending, for the statistics.
 * tests/model/defer.pml models it.
 */
#ifndef WP_DEFER_H
#define WP_DEFER_H

#include "task.h"

#include <stdbool.h>

struct wpool;

/* The worker is about to call the task's work function. Relaxed: only a
 * completer reads it, and it learns of the task from the work function. */
static inline void wp_defer_start(struct wpool_task *t)
{
    atomic_store_explicit(&wp_t(t)->state, wp_state_word(WP_TASK_RUNNING, 0), memory_order_relaxed);
}

/* The work function returned WPOOL_PENDING (the worker's call; since_ticks:
 * when, 0 with timing off). True: the task is pending, a completer will post
 * it. False: it was completed while it ran; its status is set, the worker
 * posts it. */
bool wp_defer_hold(struct wpool *pool, struct wpool_task *t, uint64_t since_ticks);

/* A pending task was completed with status (pend_ticks: how long it was
 * pending): counts it (completed, or cancelled or timed out by its status;
 * the pend histogram) under the pool's lock, before
 * its post. release: also lower the count of pending tasks (a worker's call:
 * the pool outlives it); a completer lowers it after its post, with
 * wp_pool_pending_release_locked under the pool's lock, as its last touch of
 * the pool. The last one wakes close, shutdown and destroy. */
void wp_pool_completed_later(struct wpool *pool, uint64_t pend_ticks, int status, bool release);
void wp_pool_pending_release_locked(struct wpool *pool);

#endif
