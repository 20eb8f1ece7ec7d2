/* SPDX-License-Identifier: MIT */
/*
 * Parking lot: lets workers (and submitters waiting for room) sleep on "no
 * work" without losing a wakeup, and lets a producer with no sleeper notify
 * without any system call or lock.
 *
 * Each waiter brings a node with a private futex word. A park keeps the
 * waiting nodes in a FIFO list under a mutex, and a count of them that
 * notifiers read without the lock.
 *
 * Waiter:   wp_park_prepare(p, &node);   // queue the node; RMW on the count
 *           if (work is visible) wp_park_cancel(p, &node);
 *           else wp_park_wait(p, &node);  // sleeps until a notifier signals it
 * Notifier: make work visible with a seq_cst store or RMW, then wp_park_notify.
 *
 * Why no wakeup is lost: the waiter's count increment is a seq_cst RMW
 * followed by a seq_cst re-check of the work; the notifier's publication is
 * seq_cst followed by a seq_cst load of the count. In the single total order
 * either the notifier sees the waiter (count > 0) and, under the lock, takes a
 * queued node off the list and signals it, or the waiter's re-check sees the
 * work. A notify dequeues exactly the nodes it signals, so a wake is tied to
 * the waiter it was meant for: no waiter can be counted out without being
 * signalled, and a woken waiter that has not run yet costs later notifies
 * nothing. The signal is written under the lock, so a waiter whose cancel
 * finds its node already taken knows the notifier writes to it no more.
 *
 * The futex wake: a park made with late_wake makes it after the unlock, so a
 * woken waiter never finds the lock held by a notifier in a system call. The
 * waiter may by then have seen its signal and moved on, so a late wake names
 * a node the notifier no longer owns: every node of such a park must stay
 * allocated, its word a live futex word, until wp_park_fini (the workers'
 * nodes live in struct wp_worker). A late wake is then at worst a spurious
 * wake of the same node's next wait, never a futex call on memory that has
 * become something else (a returned stack frame, which Valgrind reports as a
 * system call reading uninitialised bytes). A park without late_wake makes
 * the wake under the lock, and its nodes may live on the waiters' stacks.
 * Both orders are checked by the Spin model (tests/model/park.pml,
 * docs/model.md).
 */
#ifndef WP_PARK_H
#define WP_PARK_H

#include "common.h"
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct wp_park_node {
    struct wp_park_node *next, *prev;
    _Atomic uint32_t signaled; /* the waiter's futex word */
    bool queued;               /* on the park's list (under its lock) */
};

struct wp_park {
    WP_ALIGNED _Atomic uint32_t nwaiters; /* queued nodes; read by notifiers without the lock */
    pthread_mutex_t lock;
    struct wp_park_node *head, *tail;
    bool late_wake; /* futex wakes after the unlock; nodes outlive their waits */
    char pad[WP_CACHELINE];
};

/* late_wake: make futex wakes after the unlock; then every node used with
 * this park must stay allocated until wp_park_fini (see above). */
void wp_park_init(struct wp_park *p, bool late_wake);
void wp_park_fini(struct wp_park *p);
/* Queues the caller's node; the caller then re-checks for work. */
void wp_park_prepare(struct wp_park *p, struct wp_park_node *node);
/* After prepare, when the caller found work and will not wait. If a notifier
 * took the node meanwhile, its wake is passed on to the next waiter, and
 * true is returned (the caller may owe more: a worker also passes it to
 * other parks). */
bool wp_park_cancel(struct wp_park *p, struct wp_park_node *node);
/* Sleeps until a notifier signals the node. */
void wp_park_wait(struct wp_park *p, struct wp_park_node *node);
/* wp_park_wait for at most timeout_ns: 0 when signalled, -ETIMEDOUT (the node
 * is dequeued) otherwise. */
int wp_park_wait_for(struct wp_park *p, struct wp_park_node *node, uint64_t timeout_ns);
/* Signals up to n waiters, oldest first; no lock and no system call when none
 * waits. Call after publishing work with a seq_cst store or RMW. Returns how
 * many it signalled. */
int wp_park_notify(struct wp_park *p, int n);
/* Signals every waiter. Call after an RMW that makes the waiters' condition
 * true (the lock orders it before their re-check). */
void wp_park_notify_all(struct wp_park *p);
/* Waiters queued now (a snapshot, for the chain wake and tests). */
uint32_t wp_park_waiters(struct wp_park *p);

/* Thin futex(2) wrappers, private flavour. */
int wp_futex_wait(_Atomic uint32_t *addr, uint32_t expected);
/* The same, for at most ns nanoseconds (-ETIMEDOUT then). */
int wp_futex_wait_ns(_Atomic uint32_t *addr, uint32_t expected, uint64_t ns);
int wp_futex_wake(_Atomic uint32_t *addr, int n);

#endif
