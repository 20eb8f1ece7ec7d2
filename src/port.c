/* SPDX-License-Identifier: MIT */
#include "port.h"
#include "alloc.h"
#include "group.h"
#include "park.h"
#include "pool.h"
#include "task.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <time.h>
#include <sys/eventfd.h>
#include <unistd.h>

int wp_port_new(struct wpool *pool, bool is_default, struct wpool_port **portp)
{
    struct wpool_port *port = wp_alloc(sizeof(*port));
    if (!port)
        return -ENOMEM;
    port->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (port->efd < 0) {
        int err = -errno;
        wp_free(port);
        return err;
    }
    atomic_init(&port->head, NULL);
    atomic_init(&port->pending, WP_PORT_QUIET);
    port->owed = 0;
    port->own_sent = 0;
    atomic_init(&port->posting, 0);
    atomic_init(&port->in_dispatch, 0);
    atomic_init(&port->completed, 0);
    atomic_init(&port->gate, 0);
    atomic_init(&port->settling, 0);
    port->is_default = is_default;
    port->owner = pthread_self();
    port->pool = pool;
    *portp = port;
    return 0;
}

void wp_port_free(struct wpool_port *port)
{
    if (!port)
        return;
    if (!wp_port_dead(port)) /* a destroyed port closed it already */
        close(port->efd);
    wp_free(port);
}

/* The write an ARMED epoch owes, by the thread that armed it. Cannot fail:
 * the owner reads the counter back as it clears epochs, so it stays far
 * below its 2^64 - 2 limit. Nothing after it depends on it having happened:
 * the owner copes with it landing late (see wp_port_go_idle). */
static void wp_port_write_armed(struct wpool_port *port)
{
    uint64_t one = 1;
    ssize_t rc = write(port->efd, &one, sizeof(one));
    (void)rc;
}

void wp_port_signal(struct wpool_port *port)
{
    /* Cheap test first so that a busy stream of completions does not bounce
     * the line with RMWs; the CAS makes exactly one producer write per ARMED
     * epoch. seq_cst (load and CAS): after the poster's seq_cst CAS on head,
     * Dekker with the owner, which clears `pending` and then re-reads head
     * (wp_port_go_idle). A failed CAS reloads: HELD may have become QUIET or
     * ARMED meanwhile (the owner's clear, the ticker's arm). */
    int state = atomic_load_explicit(&port->pending, memory_order_seq_cst);
    while (state != WP_PORT_ARMED) {
        if (atomic_compare_exchange_strong_explicit(&port->pending, &state, WP_PORT_ARMED,
                                                    memory_order_seq_cst, memory_order_seq_cst)) {
            wp_port_write_armed(port);
            return;
        }
    }
}

bool wp_port_hold(struct wpool_port *port)
{
    int quiet = WP_PORT_QUIET;
    /* seq_cst: after the holder's push CAS and its load of pending; in one
     * order with the owner's clear (exchange) and the ticker's load of
     * pending after it announced its sleep (ticker.c, Dekker). */
    return atomic_compare_exchange_strong_explicit(&port->pending, &quiet, WP_PORT_HELD,
                                                   memory_order_seq_cst, memory_order_relaxed);
}

void wp_port_arm_held(struct wpool_port *port)
{
    int held = WP_PORT_HELD;
    /* seq_cst: as wp_port_signal's CAS (one write per ARMED epoch); a lost
     * CAS means the owner cleared the hold or someone armed it. */
    if (atomic_compare_exchange_strong_explicit(&port->pending, &held, WP_PORT_ARMED,
                                                memory_order_seq_cst, memory_order_relaxed))
        wp_port_write_armed(port);
}

bool wp_port_held(struct wpool_port *port)
{
    /* seq_cst: the ticker's check after announcing its sleep (Dekker with
     * wp_port_hold then the kick, ticker.c); a dry worker's check is a hint. */
    return atomic_load_explicit(&port->pending, memory_order_seq_cst) == WP_PORT_HELD;
}

static void wp_port_push_task(struct wpool_port *port, struct wpool_task *task)
{
    struct wpool_task *head = atomic_load_explicit(&port->head, memory_order_relaxed);
    do {
        wp_t(task)->next = head;
        /* seq_cst RMW: releases the task (status, next) to the owner's
         * exchange, and orders a following load of pending (Dekker). */
    } while (!atomic_compare_exchange_weak_explicit(&port->head, &head, task, memory_order_seq_cst,
                                                    memory_order_relaxed));
}

/* The end of a post counted in `posting` (a non-worker's, or a refund).
 * Release: pairs with the acquire loads in wp_port_quiesce. The owner may be
 * asleep there waiting for the last of us. */
static void wp_port_unpost(struct wpool_port *port)
{
    if (atomic_fetch_sub_explicit(&port->posting, 1, memory_order_release) == (WP_PORT_WAITER | 1))
        wp_futex_wake(&port->posting, 1);
}

void wp_port_post(struct wpool_port *port, struct wpool_task *task, struct wp_post_guard *guard)
{
    /* Announced before the push: from the push on, the task may be
     * dispatched and the port's last completion run, and only this keeps the
     * port (and its eventfd) alive. A worker's guard: release stores (plain
     * ones on x86), so that wp_port_quiesce, having taken the task with an
     * acquire exchange of head, reads this port here or a later value whose
     * release makes our signal visible. Another poster: a relaxed increment,
     * published by the seq_cst CAS on head in the same way. */
    if (guard)
        atomic_store_explicit(&guard->port, port, memory_order_release);
    else
        atomic_fetch_add_explicit(&port->posting, 1, memory_order_relaxed);
    wp_port_push_task(port, task);
    wp_port_signal(port);
    if (guard) {
        /* Release: pairs with the acquire load in wp_port_guard_wait. */
        atomic_store_explicit(&guard->port, NULL, memory_order_release);
        return;
    }
    wp_port_unpost(port);
}

bool wp_port_push(struct wpool_port *port, struct wpool_task *task)
{
    /* No `posting`: the caller's later signal keeps the port alive by other
     * means (the default port outlives the workers). */
    wp_port_push_task(port, task);
    /* The signal's own first test (seq_cst, after the push CAS): an armed or
     * held port covers this push and every earlier one. */
    return atomic_load_explicit(&port->pending, memory_order_seq_cst) == WP_PORT_QUIET;
}

/* Waits until the worker behind guard is not posting to port. Its post is a
 * few instructions and one eventfd write from done, but it may be preempted:
 * yield, then sleep, rather than spin (a spinning real-time owner could keep
 * it off the CPU for good). */
static void wp_port_guard_wait(const struct wp_post_guard *guard, const struct wpool_port *port)
{
    /* Acquire: pairs with the worker's release stores in wp_port_post; NULL
     * or another port means its post to this one, signal included, is done.
     * Reading this port again may be a later post (a new task): also
     * bounded. */
    for (unsigned int n = 0; atomic_load_explicit(&guard->port, memory_order_acquire) == port;
         n++) {
        if (n < 64) {
            sched_yield();
        } else {
            struct timespec nap = {.tv_sec = 0, .tv_nsec = 50 * 1000};
            nanosleep(&nap, NULL);
        }
    }
}

void wp_port_quiesce(struct wpool_port *port)
{
    /* Workers first: each has its own guard word. */
    for (unsigned int i = 0; i < wp_pool_nguards(port->pool); i++)
        wp_port_guard_wait(wp_pool_guard(port->pool, i), port);
    /* Then the other posters, counted in `posting`. Bounded as above; the
     * owner is the only waiter: it sets WAITER, and the poster whose
     * decrement leaves WAITER alone wakes it. Acquire: pairs with the
     * posters' release decrements, so their eventfd writes are done before
     * we go on. */
    uint32_t v = atomic_load_explicit(&port->posting, memory_order_acquire);
    while (v & ~WP_PORT_WAITER) {
        if (!(v & WP_PORT_WAITER)) {
            /* Acquire on both: a failed CAS reloads v as a fresh look. */
            if (!atomic_compare_exchange_weak_explicit(&port->posting, &v, v | WP_PORT_WAITER,
                                                       memory_order_acquire, memory_order_acquire))
                continue;
            v |= WP_PORT_WAITER;
        }
        wp_futex_wait(&port->posting, v); /* EAGAIN: v changed; EINTR: look again */
        /* Acquire: pairs with the posters' release decrement (wp_port_post),
         * so their last touch of the port is done when the count reads 0. */
        v = atomic_load_explicit(&port->posting, memory_order_acquire);
    }
    if (v & WP_PORT_WAITER)
        atomic_fetch_and_explicit(&port->posting, ~WP_PORT_WAITER, memory_order_relaxed);
}

int wp_port_gate_enter(struct wpool_port *port)
{
    /* A CAS, not an add: a refused submitter never shows in the count, so
     * submitters hammering a closing port cannot keep its destroy busy.
     * Relaxed: the decision is the CAS's own success, ordered against the
     * destroy's fetch_or in the one word's modification order (port.h). */
    uint64_t gate = atomic_load_explicit(&port->gate, memory_order_relaxed);
    do {
        if (WP_UNLIKELY(gate & (WP_PORT_CLOSING | WP_PORT_DEAD)))
            return gate & WP_PORT_DEAD ? -EINVAL : -ESHUTDOWN;
    } while (!atomic_compare_exchange_weak_explicit(&port->gate, &gate, gate + 1,
                                                    memory_order_relaxed, memory_order_relaxed));
    return 0;
}

void wp_port_refund(struct wpool_port *port)
{
    /* Counted in `posting` first: once the count drops, a destroy may
     * succeed, and it must wait for our signal before it closes the eventfd.
     * Relaxed: published by the release decrement below, which the destroy's
     * acquire fetch_or reads from or follows (wp_port_close). */
    atomic_fetch_add_explicit(&port->posting, 1, memory_order_relaxed);
    /* seq_cst: pairs with the acquire RMW in wp_port_close; and Dekker with
     * a settle, which raises `settling` and then reads the count (both
     * seq_cst): it sees this decrement, or we see it settling. */
    atomic_fetch_sub_explicit(&port->gate, 1, memory_order_seq_cst);
    /* Only a settle waits on the count: wake it to look again. Nobody else
     * is woken (an event loop would find nothing to run). seq_cst: after
     * the decrement, Dekker with wpool_port_settle's raise of settling. */
    if (atomic_load_explicit(&port->settling, memory_order_seq_cst))
        wp_port_signal(port);
    wp_port_unpost(port);
}

int wp_port_close(struct wpool_port *port)
{
    /* Acquire RMW: a submitter's count is ordered before or after it in the
     * gate's modification order, and a refund it reads from or follows
     * (release) makes that refunder's `posting` increment visible to
     * wp_port_quiesce. Every later count is refused. */
    uint64_t gate = atomic_fetch_or_explicit(&port->gate, WP_PORT_CLOSING, memory_order_acquire);
    int64_t done = atomic_load_explicit(&port->completed, memory_order_relaxed);
    return wp_port_sent(port, gate) == done ? 0 : -EBUSY;
}

void wp_port_bury(struct wpool_port *port)
{
    wp_port_quiesce(port);
    /* efd keeps its (now closed) number: it is written only at creation, so
     * wpool_port_fd on another thread reads it without a race. */
    close(port->efd);
    /* Relaxed: stale-handle calls only need to see it eventually, and the
     * owner itself (program order) at once. */
    atomic_fetch_or_explicit(&port->gate, WP_PORT_DEAD, memory_order_relaxed);
}

bool wp_port_dead(const struct wpool_port *port)
{
    return atomic_load_explicit(&port->gate, memory_order_relaxed) & WP_PORT_DEAD;
}

bool wp_port_closed(const struct wpool_port *port)
{
    return atomic_load_explicit(&port->gate, memory_order_relaxed) &
           (WP_PORT_CLOSING | WP_PORT_DEAD);
}

bool wp_port_has_work(struct wpool_port *port)
{
    /* seq_cst: pairs with the posters' seq_cst CAS on head (wp_port_push_task). */
    return port->ready || atomic_load_explicit(&port->head, memory_order_seq_cst);
}

/* Moves everything posted so far to the owner's FIFO, oldest first. */
static void wp_port_collect(struct wpool_port *port)
{
    /* Acquire: pairs with the producers' CAS, making each task's fields ours. */
    struct wpool_task *t = atomic_exchange_explicit(&port->head, NULL, memory_order_acquire);
    struct wpool_task *fifo = NULL, *last = t;
    while (t) {
        struct wpool_task *next = wp_t(t)->next;
        wp_t(t)->next = fifo;
        fifo = t;
        t = next;
    }
    if (!fifo)
        return;
    if (port->ready)
        wp_t(port->ready_tail)->next = fifo;
    else
        port->ready = fifo;
    port->ready_tail = last;
}

/*
 * Called when the owner has run everything. Each ARMED epoch owes exactly one
 * eventfd write, which may land late (a producer preempted between winning
 * ARMED and writing). The owner clears ARMED (the epoch's write is now owed),
 * reads the counter while writes are owed, then re-checks head for a
 * completion that slipped in (Dekker with wp_port_signal: we clear pending,
 * then load head; a producer pushes, then loads pending; all seq_cst).
 *
 * Invariant: owed >= 0 after each pass. Then, once every write has landed,
 * the counter is owed + (1 if ARMED), so an armed epoch always leaves the fd
 * readable: no lost wakeup. A read that comes too early (EAGAIN) keeps the
 * debt: the late write makes the fd readable once more and the next pass
 * consumes it: one spurious wakeup, never a spin. A read that also takes the
 * write of an epoch armed since (owed < 0) gives that much back.
 */
static void wp_port_go_idle(struct wpool_port *port)
{
    bool cleared = false;
    /* HELD is cleared as well: nothing was written for it, and the re-check
     * below signals what it covered at once (the ticker then finds QUIET). */
    if (atomic_load_explicit(&port->pending, memory_order_relaxed) != WP_PORT_QUIET) {
        /* seq_cst: the Dekker with wp_port_signal and wp_port_hold (below). */
        if (atomic_exchange_explicit(&port->pending, WP_PORT_QUIET, memory_order_seq_cst) ==
            WP_PORT_ARMED)
            port->owed++;
        cleared = true;
    }
    if (port->owed > 0) {
        uint64_t value;
        if (read(port->efd, &value, sizeof(value)) == (ssize_t)sizeof(value)) {
            port->owed -= (int64_t)value;
            if (port->owed < 0) {
                uint64_t back = (uint64_t)-port->owed;
                ssize_t rc = write(port->efd, &back, sizeof(back));
                (void)rc;
                port->owed = 0;
            }
        }
    }
    /* seq_cst: the signal was cleared, then head is read (Dekker with a
     * poster's CAS on head followed by its read of the signal state). */
    if (cleared && atomic_load_explicit(&port->head, memory_order_seq_cst))
        wp_port_signal(port);
}

static void wp_port_complete(struct wpool_port *port, struct wpool_task *t)
{
    wpool_done_fn done = wp_t(t)->done;
    /* Relaxed: the task reached us through head's acquire exchange. */
    int status = wp_state_status(atomic_load_explicit(&wp_t(t)->state, memory_order_relaxed));
    struct wp_group *group = wp_t(t)->token ? wp_token_detach(t) : NULL;
    /* Before the callback: a drain nested in it must not wait for the very
     * task whose callback is running. port_destroy from the callback is still
     * refused (in_dispatch). One writer at a time (the consumer; a later
     * one, wpool_destroy, comes after the pool lock): a load and a relaxed
     * store, no locked instruction. */
    atomic_store_explicit(&port->completed,
                          atomic_load_explicit(&port->completed, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    /* Release: the task is idle before the callback, which may resubmit,
     * re-initialise or free it; nothing below touches it. */
    atomic_store_explicit(&wp_t(t)->state, WP_TASK_IDLE, memory_order_release);
    done(t, status);
    /* A group member: counted out once its own callback has returned (it
     * may have resubmitted or freed t; the group outlives its members). */
    if (group)
        wp_group_member_done(group, status);
}

int wp_port_run(struct wpool_port *port, unsigned int max)
{
    int ran = 0;
    atomic_fetch_add_explicit(&port->in_dispatch, 1, memory_order_relaxed);
    while ((unsigned int)ran < max && ran < INT32_MAX) {
        if (!port->ready) {
            wp_port_collect(port);
            if (!port->ready)
                break;
        }
        struct wpool_task *t = port->ready;
        port->ready = wp_t(t)->next;
        wp_port_complete(port, t);
        ran++;
    }
    if (!port->ready && !atomic_load_explicit(&port->head, memory_order_relaxed))
        wp_port_go_idle(port);
    atomic_fetch_sub_explicit(&port->in_dispatch, 1, memory_order_relaxed);
    return ran;
}

/* ---- public calls --------------------------------------------------------- */

static bool wp_port_owned(const struct wpool_port *port)
{
    return pthread_equal(port->owner, pthread_self());
}

int wpool_port_fd(const wpool_port_t *port)
{
    return port && !wp_port_dead(port) ? port->efd : -EINVAL;
}

int wpool_fd(const wpool_t *pool)
{
    return pool ? wpool_port_fd(wpool_default_port((wpool_t *)pool)) : -EINVAL;
}

int wpool_port_dispatch(wpool_port_t *port, unsigned int max)
{
    if (!port || max == 0 || wp_port_dead(port))
        return -EINVAL;
    if (wp_pool_forked(port->pool))
        return -EOWNERDEAD;
    if (!wp_port_owned(port))
        return -EPERM;
    return wp_port_run(port, max);
}

int wpool_dispatch(wpool_t *pool, unsigned int max)
{
    if (!pool)
        return -EINVAL;
    return wpool_port_dispatch(wpool_default_port(pool), max);
}

static int64_t wp_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for completions with a deadline (-1: none); no argument checks.
 * any_wake: return on any wakeup, even one with nothing posted (a settle,
 * whose count a refund may have dropped, looks again). */
static int wp_port_wait_until(struct wpool_port *port, int64_t deadline, bool any_wake)
{
    for (;;) {
        if (wp_port_has_work(port))
            return 0;
        int timeout = -1;
        if (deadline >= 0) {
            int64_t left = deadline - wp_now_ms();
            timeout = left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
        }
        struct pollfd pfd = {.fd = port->efd, .events = POLLIN};
        int rc = poll(&pfd, 1, timeout);
        if (rc < 0 && errno != EINTR)
            return -errno;
        if (rc == 0 && !wp_port_has_work(port))
            return -ETIMEDOUT;
        /* Readable with nothing posted: a late write for a completion
         * already run (see wp_port_go_idle). Consume it and wait again. */
        if (rc > 0 && !wp_port_has_work(port)) {
            wp_port_go_idle(port);
            if (any_wake)
                return 0;
        }
    }
}

static int64_t wp_deadline(int timeout_ms)
{
    return timeout_ms < 0 ? -1 : wp_now_ms() + timeout_ms;
}

int wpool_port_wait(wpool_port_t *port, int timeout_ms)
{
    if (!port || timeout_ms < -1 || wp_port_dead(port))
        return -EINVAL;
    if (wp_pool_forked(port->pool))
        return -EOWNERDEAD;
    if (!wp_port_owned(port))
        return -EPERM;
    return wp_port_wait_until(port, wp_deadline(timeout_ms), false);
}

int wpool_port_settle(wpool_port_t *port, int timeout_ms)
{
    if (!port || timeout_ms < -1 || wp_port_dead(port))
        return -EINVAL;
    if (wp_pool_forked(port->pool))
        return -EOWNERDEAD;
    if (!wp_port_owned(port))
        return -EPERM;
    int64_t deadline = wp_deadline(timeout_ms);
    int total = 0, rc;
    /* Raised before the count is read (a depth: a callback may settle too).
     * seq_cst: Dekker with a refund, which lowers the count and then reads
     * this (wp_port_refund). The owner is the only writer. */
    int depth = atomic_load_explicit(&port->settling, memory_order_relaxed);
    atomic_store_explicit(&port->settling, depth + 1, memory_order_seq_cst);
    for (;;) {
        int ran = wp_port_run(port, UINT_MAX);
        total = ran > INT_MAX - total ? INT_MAX : total + ran;
        if (wp_port_inflight(port) == 0) {
            /* A worker may still be signalling a completion we already ran;
             * let it finish and consume its signal, so the fd is not left
             * readable with nothing to dispatch. */
            wp_port_quiesce(port);
            wp_port_go_idle(port);
            rc = total;
            break;
        }
        rc = wp_port_wait_until(port, deadline, true);
        if (rc)
            break;
    }
    /* Relaxed: a refund that still sees the old depth signals once more, a
     * spurious wakeup at worst. */
    atomic_store_explicit(&port->settling, depth, memory_order_relaxed);
    return rc;
}

int wpool_port_create(wpool_t *pool, wpool_port_t **portp)
{
    if (!pool || !portp)
        return -EINVAL;
    if (wp_pool_forked(pool))
        return -EOWNERDEAD;
    return wp_pool_add_port(pool, portp);
}

int wpool_port_destroy(wpool_port_t *port)
{
    if (!port)
        return 0;
    if (port->is_default || wp_port_dead(port))
        return -EINVAL;
    struct wpool *pool = port->pool;
    if (wp_pool_forked(pool))
        return -EOWNERDEAD;
    if (!pthread_equal(port->owner, pthread_self()))
        return -EPERM;
    if (atomic_load_explicit(&port->in_dispatch, memory_order_relaxed))
        return -EBUSY;
    int rc = wp_drain_close_port(pool, port);
    if (rc)
        return rc;
    /* Nothing in flight, nobody in the gate: wait for the last poster, close
     * the fd. The memory stays until the pool goes: a stale handle then gets
     * -EINVAL instead of touching freed memory. */
    wp_port_bury(port);
    wp_pool_retire_port(pool, port);
    return 0;
}

bool wp_port_dispatching(struct wpool_port *port)
{
    /* Relaxed: read under the pool's lock by wpool_destroy, on the thread
     * that would be inside the dispatch if any (a callback's own destroy). */
    return atomic_load_explicit(&port->in_dispatch, memory_order_relaxed) != 0;
}

void wp_port_list_push(struct wpool_port **list, struct wpool_port *port)
{
    port->next = *list;
    *list = port;
}

void wp_port_list_remove(struct wpool_port **list, struct wpool_port *port)
{
    while (*list != port)
        list = &(*list)->next;
    *list = port->next;
    port->next = NULL;
}

struct wpool_port *wp_port_list_next(const struct wpool_port *port)
{
    return port->next;
}
