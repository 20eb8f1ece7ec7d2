/* SPDX-License-Identifier: MIT */
/*
 * Completion port: a multi-producer single-consumer channel from workers (and
 * cancellers) to the thread that owns an event loop.
 *
 * Producers push finished tasks on a lock-free stack (`head`, linked through
 * `next`). The owner takes the whole stack with one exchange, reverses it into
 * a private FIFO (`ready`) and runs callbacks from there.
 *
 * Coalescing: `pending` is QUIET, ARMED or HELD. A producer writes the eventfd
 * only when it moves QUIET (or HELD) -> ARMED, so a burst of completions costs
 * one write and one wakeup. HELD (the default port only): a worker handed its
 * held signal to the pool's ticker (ticker.c), which arms it within the
 * coalescing window unless a worker that runs dry arms it first. The owner,
 * having run everything, clears ARMED (or HELD), re-checks head (Dekker:
 * producer pushes then loads pending; owner clears pending then loads head;
 * all seq_cst) and re-arms if a completion slipped in. Each cleared epoch
 * owes exactly one write; the owner reads the counter while any is owed, so a
 * write that lands late costs one spurious wakeup, never a spin.
 *
 * Counting: `gate` counts the tasks ever sent to the port in its low bits
 * (one RMW per submit, the same word that refuses a closing port), except
 * those counted with wp_port_count on the owner's own thread, which go to
 * `own_sent` (a plain add); their sum minus `completed`, the owner's count
 * of what it ran, is what is in flight. Only the owner reads it. The
 * default port, never closed, counts a task once its queue has accepted it
 * (before it is published); other ports count it first, as below.
 *
 * Lifetime (every port but the default one, which lives as long as the pool):
 * a submitter counts its task with a CAS on `gate` that fails once CLOSING
 * or DEAD is set. wpool_port_destroy sets CLOSING with an RMW on the same
 * word, so each count is ordered before or after it in that one word's
 * modification order: before, and the destroy sees the task and returns
 * -EBUSY; after, and the submitter sees CLOSING and backs out without a
 * trace. CLOSING is sticky, so the owner's retries converge. A submitter
 * whose counted task is then refused (full bounded ring, pool closed) takes
 * its count back, and wakes the owner only if it is settling (waiting on the
 * count): an event loop is never woken for a refusal.
 *
 * Once nothing is in flight the destroy waits until no thread is still
 * posting to the port, then closes the eventfd: no write reaches a closed or
 * reused fd. A worker announces its post in its own guard word (two plain
 * stores on its own cache line, no locked instruction); any other poster
 * (a canceller, the drain notification, a refund) counts itself in
 * `posting`. wp_port_quiesce waits for both. tests/model/port_life.pml
 * models this; docs/model.md has the argument.
 */
#ifndef WP_PORT_H
#define WP_PORT_H

#include "common.h"
#include "wpool.h"
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

/* In `gate`: the count of tasks ever sent to the port is in the low bits. */
#define WP_PORT_CLOSING (UINT64_C(1) << 62) /* wpool_port_destroy was called: refuse */
#define WP_PORT_DEAD    (UINT64_C(1) << 61) /* destroyed; only its memory is left */
/* In `posting`: the owner waits in wp_port_quiesce for the count to reach 0. */
#define WP_PORT_WAITER (UINT32_C(1) << 31)

enum wp_port_signal_state {
    WP_PORT_QUIET = 0, /* the owner knows of everything posted */
    WP_PORT_ARMED = 1, /* a producer wrote (or is about to write) the eventfd */
    WP_PORT_HELD = 2,  /* a signal is owed; the ticker (or a dry worker) arms it */
};

struct wpool_port {
    /* Written by producers. */
    WP_ALIGNED struct wpool_task *_Atomic head;
    _Atomic int pending;
    /* Posters other than workers (whose own guard words say it) between the
     * start of wp_port_post and the end of their signal, plus WP_PORT_WAITER:
     * the task they posted may already be dispatched, so the eventfd must
     * outlive them (wp_port_quiesce). A futex word. */
    _Atomic uint32_t posting;
    /* Owner's. */
    WP_ALIGNED struct wpool_task *ready;
    struct wpool_task *ready_tail;
    _Atomic int in_dispatch; /* nesting depth of dispatch on the owner */
    int64_t owed;            /* eventfd writes of cleared epochs not yet read */
    /* Tasks the owner itself sent to the port (wp_port_count on the owner):
     * its own word, a plain add, no locked instruction per submit. The rest
     * of the count is in `gate`; only the owner reads the sum. */
    int64_t own_sent;
    /* Completions past wp_port_complete. Written only by the consumer (the
     * owner, or wpool_destroy once nobody else can dispatch), so a plain
     * store: no locked instruction per completion, and no line shared with
     * the submitters. */
    _Atomic int64_t completed;
    int efd;
    bool is_default;
    struct wpool *pool;
    struct wpool_port *next; /* pool's list of ports, under the pool lock */
    /* Tasks ever sent to the port | CLOSING | DEAD (see the top of this
     * file). A destroyed port's memory is kept on the pool's dead list until
     * the pool is destroyed, so that a call through a stale handle gets
     * -EINVAL. Submitters' line. */
    WP_ALIGNED
    _Atomic uint64_t gate;
    /* Written once, at creation. On the submitters' line: every count reads
     * it (wp_port_count), and the owner's line changes with each callback. */
    pthread_t owner;
    /* Nesting depth of wpool_port_settle on the owner (its only writer); a
     * refund wakes the owner only while it is not 0. */
    _Atomic int settling;
};

/* A worker's announcement that it is posting to a port (NULL: it is not).
 * Written only by its worker; wp_port_quiesce reads every worker's. */
struct wp_post_guard {
    _Atomic(struct wpool_port *) port;
};

/* 0, -ENOMEM or the eventfd's -errno. The calling thread becomes the owner. */
int wp_port_new(struct wpool *pool, bool is_default, struct wpool_port **portp);
void wp_port_free(struct wpool_port *port);
/* Hands a finished task (wp_status set) to the port's owner. Any thread: a
 * worker passes its guard, any other thread NULL. */
void wp_port_post(struct wpool_port *port, struct wpool_task *task, struct wp_post_guard *guard);
/* wp_port_post in two halves, for a worker that coalesces completions on the
 * default port: push the task now, and signal later, or hand the signal to
 * the ticker (wp_port_hold) before running another task. wp_port_push
 * returns whether a signal is owed: false when the port is armed or held,
 * which covers this push and every earlier one (an armed or held state is
 * left only by an eventfd write, or by the owner's clear, after which it
 * re-checks head: the Dekker argument of wp_port_signal). Everything pushed
 * before a signal is covered by it, exactly as if each post had been slow to
 * signal; the port must outlive the signal, which only the default port,
 * freed after the workers and the ticker are joined, is sure to. */
bool wp_port_push(struct wpool_port *port, struct wpool_task *task);
/* Arms the port (QUIET or HELD -> ARMED) and writes the eventfd, unless it is
 * armed already. */
void wp_port_signal(struct wpool_port *port);
/* A held signal's hand-over: QUIET -> HELD. True when it made the port HELD
 * (the caller must then make sure the ticker runs); false when the port was
 * armed or held already (covered). */
bool wp_port_hold(struct wpool_port *port);
/* The port is HELD (a snapshot). */
bool wp_port_held(struct wpool_port *port);
/* Arms a HELD port (HELD -> ARMED, then the eventfd write); does nothing to
 * a QUIET or ARMED one (a hold cleared by the owner needs no signal). */
void wp_port_arm_held(struct wpool_port *port);
/* Waits (blocking) until no thread is still inside wp_port_post or
 * wp_port_refund. The owner's call, once nothing is in flight to the port. */
void wp_port_quiesce(struct wpool_port *port);
/* A task is about to be queued for a port other than the pool's default
 * one: counts it, 0; or -ESHUTDOWN when the port is being destroyed, -EINVAL
 * when it was (nothing counted then). The default port, never closed, counts
 * a task with wp_port_count once its queue has accepted it. */
int wp_port_gate_enter(struct wpool_port *port);
/* The queue refused a task that wp_port_gate_enter counted: takes the count
 * back and wakes the owner if it is settling (waiting on the count). */
void wp_port_refund(struct wpool_port *port);
/* wpool_port_destroy's two steps, on the owner. wp_port_close refuses every
 * later submit (for good) and returns 0 when nothing is in flight, else
 * -EBUSY. wp_port_bury then waits for the last poster, closes the eventfd
 * and marks the port dead. */
int wp_port_close(struct wpool_port *port);
void wp_port_bury(struct wpool_port *port);
/* Destroyed (DEAD), or (closed) being destroyed. Any thread. */
bool wp_port_dead(const struct wpool_port *port);
bool wp_port_closed(const struct wpool_port *port);
/* Runs up to max callbacks; no owner check. Returns how many ran. */
int wp_port_run(struct wpool_port *port, unsigned int max);
/* Counts a task sent to a port that cannot be closing: the default port's,
 * once its queue has accepted it (before it is published), or the drain
 * notification's, registered and so not destroyed (see room.c). On the
 * owner, in own_sent: program order puts it before anything the owner does
 * with the task, and only the owner reads the count. */
static inline void wp_port_count(struct wpool_port *port)
{
    if (pthread_equal(port->owner, pthread_self())) {
        port->own_sent++;
        return;
    }
    /* Relaxed: published to the owner with the task through the port. */
    atomic_fetch_add_explicit(&port->gate, 1, memory_order_relaxed);
}
/* The count of tasks ever sent to a port, from its gate word and the
 * owner's own count. On the owner. */
static inline int64_t wp_port_sent(const struct wpool_port *port, uint64_t gate)
{
    return (int64_t)(gate & ~(WP_PORT_CLOSING | WP_PORT_DEAD)) + port->own_sent;
}
/* Tasks sent to the port and not yet past wp_port_complete (which runs just
 * before the callback). The consumer's view: call it on the owner. */
static inline int64_t wp_port_inflight(struct wpool_port *port)
{
    /* seq_cst: after a settle has raised `settling`, Dekker with a refund's
     * decrement and its load of `settling` (wp_port_refund). Each
     * completion we ran was counted before it was published and reached us
     * through head's acquire exchange, so the count as read here covers it:
     * the difference never falls below what is in flight. */
    return wp_port_sent(port, atomic_load_explicit(&port->gate, memory_order_seq_cst)) -
           atomic_load_explicit(&port->completed, memory_order_relaxed);
}
/* Anything posted and not yet run? */
bool wp_port_has_work(struct wpool_port *port);
/* The pool the port belongs to. */
static inline struct wpool *wp_port_pool(const struct wpool_port *port)
{
    return port->pool;
}
/* A dispatch is running on the port (its owner is inside a callback). */
bool wp_port_dispatching(struct wpool_port *port);
/* The pool's lists of ports (live and dead), threaded through the ports:
 * under the pool's lock. */
void wp_port_list_push(struct wpool_port **list, struct wpool_port *port);
void wp_port_list_remove(struct wpool_port **list, struct wpool_port *port);
struct wpool_port *wp_port_list_next(const struct wpool_port *port);

#endif
