/* SPDX-License-Identifier: MIT */
/*
 * A lane's overflow: the tasks that did not fit its ring(s), in submission
 * order, linked through the task records themselves (no allocation), under a
 * mutex of its own. It is the slow path: a submit goes here only when its
 * ring is full, or while the overflow is not empty (so that a thread's tasks
 * stay in the order it submitted them: everything in a ring is older than
 * everything here). Workers take from the rings first, then from here.
 *
 * Waking: a push raises `count` with a seq_cst RMW before the submitter
 * notifies the parking lot, and a worker reads `count` (seq_cst) in its
 * re-check after registering to sleep, as for a ring (park.h).
 *
 * Closing: wp_overflow_close, under the lock, before the rings are closed; a
 * push after it is refused. A worker that sees a ring closed (acquire) sees
 * every push made before the close, so it does not exit while one waits.
 * A strand's released task is pushed even after the close: the pool's count
 * of strand tasks keeps the workers until it is here (strand.h).
 *
 * Ownership: a task is on the list while its `over` field names the list
 * (written under the lock); whoever unlinks it under the lock (a worker's pop
 * or a canceller's remove) owns it, exactly once.
 */
#ifndef WP_OVERFLOW_H
#define WP_OVERFLOW_H

#include "common.h"
#include "queue.h"
#include "task.h"
#include "wpool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct wp_overflow {
    pthread_mutex_t lock;
    void *owner;          /* the pool (wp_overflow_owner) */
    struct wp_tlist list; /* under lock */
    bool closed;          /* under lock */
    /* Tasks on the list: raised under the lock, read without it. */
    WP_ALIGNED _Atomic uint64_t count;
    _Atomic uint64_t pushed; /* tasks ever pushed (statistics) */
    _Atomic uint64_t moved;  /* of those, moved on into a ring (statistics) */
};

void wp_overflow_init(struct wp_overflow *o, void *owner);
/* The owner given to init (read-only after it). */
void *wp_overflow_owner(const struct wp_overflow *o);
void wp_overflow_fini(struct wp_overflow *o);
/* Appends t: 0, or -ESHUTDOWN once closed. Counts it on port (the pool's
 * default port; NULL: counted by the caller) once accepted. */
struct wpool_port;
int wp_overflow_push(struct wp_overflow *o, struct wpool_task *t, struct wpool_port *port);
/* Appends t even once closed, counting it on no port: a strand's next task,
 * accepted before (strand.h). Its slot, which names the strand, becomes 0
 * once `over` names the list. */
void wp_overflow_push_released(struct wp_overflow *o, struct wpool_task *t);
/* Takes the oldest task, or NULL when there is none, or while one of the
 * lane's rings[0..nrings) still holds tasks (older than the list's: checked
 * under the lock, which every push takes after its thread's earlier ring
 * publishes). Also moves up to max of the tasks behind it, oldest first,
 * into the ring `into` (the pool's ring number into_ring: task.h's slot)
 * while it has room, so that a backlog returns to the
 * lock-free path; *moved says how many (the caller wakes a sleeper for
 * them). The count falls only after they hold their ring positions: a
 * submitter that sees it fall to 0 and goes to the ring lands behind them
 * (order kept). */
struct wpool_task *wp_overflow_pop(struct wp_overflow *o, struct wp_queue *rings,
                                   unsigned int nrings, struct wp_queue *into,
                                   unsigned int into_ring, unsigned int max, unsigned int *moved);
/* Unlinks t if it is still on the list: true if this call took it. */
bool wp_overflow_remove(struct wp_overflow *o, struct wpool_task *t);
/* Takes every task on the list and calls fn on each (outside the lock);
 * returns how many. */
unsigned int wp_overflow_remove_all(struct wp_overflow *o, void (*fn)(void *item, void *arg),
                                    void *arg);
/* Refuses pushes from now on. */
void wp_overflow_close(struct wp_overflow *o);
/* Tasks on the list (a snapshot; seq_cst, see the top of this file). */
uint64_t wp_overflow_size(struct wp_overflow *o);
/* Tasks ever pushed and not moved into a ring (the submits it accepted). */
uint64_t wp_overflow_accepted(struct wp_overflow *o);

#endif
