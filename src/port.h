/*
 * Completion port: a multi-producer single-consumer channel from workers (and
 * cancellers) to the thread that owns an event loop.
 *
 * Producers push finished tasks on a lock-free stack (`head`, linked through
 * wp_next). The owner takes the whole stack with one exchange, reverses it into
 * a private FIFO (`ready`) and runs callbacks from there.
 *
 * Coalescing: `pending` is QUIET or ARMED. A producer writes the eventfd only
 * when it moves QUIET -> ARMED, so a burst of completions costs one write and
 * one wakeup. The owner, having run everything, clears ARMED, re-checks head
 * (Dekker: producer pushes then loads pending; owner clears pending then loads
 * head; all seq_cst) and re-arms if a completion slipped in. Each cleared epoch
 * owes exactly one write; the owner reads the counter while any is owed, so a
 * write that lands late costs one spurious wakeup, never a spin.
 */
#ifndef WP_PORT_H
#define WP_PORT_H

#include "common.h"
#include "wpool.h"
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum wp_port_signal_state {
    WP_PORT_QUIET = 0, /* the owner knows of everything posted */
    WP_PORT_ARMED = 1, /* a producer wrote (or is about to write) the eventfd */
};

struct wpool_port {
    /* Written by producers. */
    WP_ALIGNED struct wpool_task *_Atomic head;
    _Atomic int pending;
    /* Producers between the start of wp_port_post and the end of their
     * signal: the task they posted may already be dispatched, so the port
     * must outlive them (wp_port_quiesce). */
    _Atomic int posting;
    /* Owner's. */
    WP_ALIGNED struct wpool_task *ready;
    struct wpool_task *ready_tail;
    _Atomic int in_dispatch; /* nesting depth of dispatch on the owner */
    int64_t owed;            /* eventfd writes of cleared epochs not yet read */
    /* Completions past wp_port_complete. Written only by the consumer (the
     * owner, or wpool_destroy once nobody else can dispatch), so a plain
     * store: no locked instruction per completion, and no line shared with
     * the submitters. */
    _Atomic int64_t completed;
    int efd;
    bool is_default;
    /* Destroyed: its memory is kept (on the pool's dead list) until the pool
     * is destroyed, so that a call through a stale handle gets -EINVAL. */
    _Atomic int dead;
    pthread_t owner;
    struct wpool *pool;
    struct wpool_port *next; /* pool's list of ports, under the pool lock */
    /* Submitters: tasks ever submitted (or posted) to this port. Minus
     * `completed`: the tasks in flight (wp_port_inflight). */
    WP_ALIGNED _Atomic int64_t submitted;
};

/* 0, -ENOMEM or the eventfd's -errno. The calling thread becomes the owner. */
int wp_port_new(struct wpool *pool, bool is_default, struct wpool_port **portp);
void wp_port_free(struct wpool_port *port);
/* Hands a finished task (wp_status set) to the port's owner. Any thread. */
void wp_port_post(struct wpool_port *port, struct wpool_task *task);
/* wp_port_post in two halves, for a worker that coalesces completions on the
 * default port: push the task now, signal later (at the latest before the
 * worker looks for work in vain or exits). wp_port_push returns whether a
 * signal is owed: false when the port is armed, which covers this push and
 * every earlier one (the owner has yet to clear the epoch and re-checks head
 * after the clear, the Dekker argument of wp_port_signal). Everything pushed
 * before a signal is covered by it, exactly as if each post had been slow to
 * signal; the port must outlive the signal, which only the default port,
 * freed after the workers are joined, is sure to. */
bool wp_port_push(struct wpool_port *port, struct wpool_task *task);
void wp_port_signal(struct wpool_port *port);
/* Waits until no producer is still inside wp_port_post. Call before freeing a
 * port that has no task in flight. */
void wp_port_quiesce(struct wpool_port *port);
/* Runs up to max callbacks; no owner check. Returns how many ran. */
int wp_port_run(struct wpool_port *port, unsigned int max);
/* A task is being submitted to the port (before it is published). */
static inline void wp_port_count(struct wpool_port *port)
{
    /* Relaxed: published to the owner with the task through the port. */
    atomic_fetch_add_explicit(&port->submitted, 1, memory_order_relaxed);
}
/* Tasks submitted to the port and not yet past wp_port_complete (which runs
 * just before the callback). The consumer's view: call it on the owner. */
static inline int64_t wp_port_inflight(struct wpool_port *port)
{
    /* Relaxed: it orders nothing (task fields come through head's acquire
     * exchange). Each completion we ran was counted before it was published
     * and reached us through that exchange, so `submitted` as read here
     * covers it: the difference never falls below what is in flight. */
    return atomic_load_explicit(&port->submitted, memory_order_relaxed) -
           atomic_load_explicit(&port->completed, memory_order_relaxed);
}
/* Anything posted and not yet run? */
bool wp_port_has_work(struct wpool_port *port);

#endif
