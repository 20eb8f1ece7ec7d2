/* SPDX-License-Identifier: MIT */
/*
 * Strands: ordered execution per key. The tasks of one strand start in the
 * order the strand accepted them and never run at the same time; different
 * strands run in parallel. No allocation per task: a strand is a caller-owned
 * record whose waiting tasks are linked through their own records.
 *
 * Protocol. A strand has a mutex, a `busy` flag and a list of waiting tasks.
 * At most one of its tasks, the head, is in the pool proper (a ring, an
 * overflow, running, or pending): `busy` says there is one. A submit, after
 * its admission and its port's gate (so an accepted task is counted once,
 * as any other), takes the lock: an idle strand becomes busy and the task
 * is queued as usual while the lock is held (refused: idle again); a busy
 * one gets the task appended to its list (slot WP_SLOT_STRAND).
 *
 * Whoever ends the head releases the strand before posting the head's
 * completion (after that the record, and the strand, may be freed): a worker
 * after the work returns (or after completing it -ECANCELED/-ETIMEDOUT), a
 * canceller that withdrew it from its cell or overflow, wpool_task_complete
 * for a pending one. The release takes the lock and moves the oldest waiting
 * task into the pool (a ring, or the lane's overflow, ignoring `bounded` and
 * the close: it was accepted when it was appended), or clears `busy`.
 *
 * A waiting task is withdrawn under the lock (wpool_cancel, a token,
 * wpool_cancel_all through the pool's strand registry): the rest keep their
 * order. Its slot names the strand (task.h) while it is on the list. A
 * canceller that finds the slot changed under the lock looks again where
 * the task went: the move into the pool is made under the same lock, and
 * the slot keeps naming the strand until the placement overwrites it.
 *
 * Cancel. A canceller reads the slot without a lock, so the strand it names
 * may have been destroyed and freed meanwhile. It raises a process-wide
 * count of cancellers, then reads the slot again (seq_cst), and locks the
 * strand only if it still names it; wpool_strand_destroy, after the last
 * task left the list (a seq_cst slot store), sleeps until the count is 0.
 *
 * Close. Waiting tasks are counted in the pool's `strand_waiting` until they
 * are in the pool proper: workers do not exit while it is not 0, since the
 * end of a head (possibly on a completer's thread, after every queue is
 * empty) still has to hand them over. An append raises the count, then looks
 * whether the pool is closed (seq_cst, Dekker with a worker that sees the
 * close and then reads the count): so either the worker waits for it, or the
 * append is refused. Whoever lowers the count to 0 in a closed pool wakes
 * every worker.
 *
 * The pool keeps a registry of its strands (wpool_cancel_all walks it;
 * wpool_destroy detaches them). Lock order: token, pool registry, strand,
 * overflow.
 */
#ifndef WP_STRAND_H
#define WP_STRAND_H

#include "wpool.h"

#include <stdbool.h>
#include <stdint.h>

struct wpool;

/* The registry's lock and list (wpool_create). */
void wp_strands_init(struct wpool *pool);
/* wpool_destroy, every task done: detaches every strand still registered
 * (wpool_strand_destroy then leaves the pool alone) and frees the lock. */
void wp_strands_fini(struct wpool *pool);
/* Whether strand is an initialised strand of pool. */
bool wp_strand_of(const struct wpool_strand *strand, const struct wpool *pool);
/* The submit of t (claimed, admitted, counted on a gated port): 1 if the
 * strand was idle, now busy with t as its head, its lock held: the caller
 * queues t and then calls wp_strand_head_queued. 0 if t was appended behind
 * the head (counted on count_port first, the default port, unless NULL).
 * -ESHUTDOWN if the pool is closed. */
struct wpool_port;
int wp_strand_enter(struct wpool *pool, struct wpool_task *t, struct wpool_port *count_port);
/* The head's queueing (rc: the queue's answer) is done: idle again if it was
 * refused; the lock released. */
void wp_strand_head_queued(struct wpool_strand *strand, int rc);
/* t, a strand's head, has ended (not yet posted): the next waiting task goes
 * into the pool, or the strand becomes idle. No-op without a strand. */
void wp_strand_release(struct wpool *pool, struct wpool_task *t);
/* Withdraws t if it still waits on the strand its slot named (slot, as the
 * canceller read it): 0 (-ECANCELED posted); -EAGAIN if it has moved on;
 * -EOWNERDEAD in a forked child. */
int wp_strand_withdraw(struct wpool_task *t, uint64_t slot);
/* The child's side of fork (fork.c): no canceller is running there. */
void wp_strands_fork_child(void);
/* Takes every waiting task of every strand of pool and calls fn on each
 * (no lock held). */
void wp_strands_cancel_all(struct wpool *pool, void (*fn)(void *item, void *arg), void *arg);
/* Waiting tasks of the pool (a snapshot, seq_cst: see the top). */
int64_t wp_strands_waiting(struct wpool *pool);
/* Submits accepted by strands that no ring or overflow counted: waiting
 * now, or withdrawn while waiting (statistics). */
uint64_t wp_strands_accepted(struct wpool *pool);

#endif
