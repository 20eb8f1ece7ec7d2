/* SPDX-License-Identifier: MIT */
#include "park.h"
#include "stats.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int wp_futex_wait(_Atomic uint32_t *addr, uint32_t expected)
{
    long rc = syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
    return rc == 0 ? 0 : -errno;
}

int wp_futex_wait_ns(_Atomic uint32_t *addr, uint32_t expected, uint64_t ns)
{
    struct timespec left = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    long rc = syscall(SYS_futex, addr, FUTEX_WAIT_PRIVATE, expected, &left, NULL, 0);
    return rc == 0 ? 0 : -errno;
}

int wp_futex_wake(_Atomic uint32_t *addr, int n)
{
    long rc = syscall(SYS_futex, addr, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0);
    return rc < 0 ? -errno : (int)rc;
}

void wp_park_init(struct wp_park *p, bool late_wake)
{
    atomic_init(&p->nwaiters, 0);
    pthread_mutex_init(&p->lock, NULL);
    p->head = p->tail = NULL;
    p->late_wake = late_wake;
}

void wp_park_fini(struct wp_park *p)
{
    pthread_mutex_destroy(&p->lock);
}

/* Under the lock. */
static void wp_park_unlink(struct wp_park *p, struct wp_park_node *node)
{
    if (node->prev)
        node->prev->next = node->next;
    else
        p->head = node->next;
    if (node->next)
        node->next->prev = node->prev;
    else
        p->tail = node->prev;
    node->next = node->prev = NULL;
    node->queued = false;
    /* Relaxed: the lock orders it for other lockers; lock-free readers only
     * need to see a count that is not too low (see wp_park_prepare). */
    atomic_fetch_sub_explicit(&p->nwaiters, 1, memory_order_relaxed);
}

void wp_park_prepare(struct wp_park *p, struct wp_park_node *node)
{
    atomic_store_explicit(&node->signaled, 0, memory_order_relaxed);
    pthread_mutex_lock(&p->lock);
    node->next = NULL;
    node->prev = p->tail;
    if (p->tail)
        p->tail->next = node;
    else
        p->head = node;
    p->tail = node;
    node->queued = true;
    /* seq_cst RMW: the first half of the Dekker pattern (see park.h); the
     * caller's re-check of the work comes after it. */
    atomic_fetch_add_explicit(&p->nwaiters, 1, memory_order_seq_cst);
    pthread_mutex_unlock(&p->lock);
}

bool wp_park_cancel(struct wp_park *p, struct wp_park_node *node)
{
    pthread_mutex_lock(&p->lock);
    bool claimed = !node->queued;
    if (!claimed)
        wp_park_unlink(p, node);
    /* else a notifier took the node and stored its signal under this lock:
     * it writes to the node no more (its futex wake, if not made yet, only
     * names the address), and the caller may reuse the node. */
    pthread_mutex_unlock(&p->lock);
    /* That signal was meant for work the caller may not be the one to do (its
     * re-check found other work): pass it on, or another waiter could sleep
     * while the notified work waits (found by the Spin model, tests/model/park.pml). */
    if (claimed)
        wp_park_notify(p, 1);
    return claimed;
}

void wp_park_wait(struct wp_park *p, struct wp_park_node *node)
{
    (void)p;
    /* Acquire: pairs with the notifier's release store of the signal. */
    while (atomic_load_explicit(&node->signaled, memory_order_acquire) == 0)
        wp_futex_wait(&node->signaled, 0); /* EAGAIN/EINTR: look again */
}

int wp_park_wait_for(struct wp_park *p, struct wp_park_node *node, uint64_t timeout_ns)
{
    uint64_t end = wp_clock_ns() + timeout_ns;
    for (;;) {
        /* Acquire: pairs with the notifier's release store in wp_park_signal_head. */
        if (atomic_load_explicit(&node->signaled, memory_order_acquire))
            return 0;
        uint64_t t = wp_clock_ns();
        if (t >= end)
            break;
        wp_futex_wait_ns(&node->signaled, 0, end - t);
    }
    /* Timed out, unless a notifier took the node meanwhile. */
    pthread_mutex_lock(&p->lock);
    bool mine = node->queued;
    if (mine)
        wp_park_unlink(p, node);
    pthread_mutex_unlock(&p->lock);
    return mine ? -ETIMEDOUT : 0;
}

/* Wakes taken per lock hold (a late-wake park makes them after the unlock). */
#define WP_PARK_BATCH 8

/* Under the lock: take the oldest node off the list and store its signal. The
 * store happens before the unlock, so a cancel (or timed wait) that finds the
 * node gone knows nobody writes to it any more. Returns the futex word to wake
 * once the lock is released. */
static _Atomic uint32_t *wp_park_signal_head(struct wp_park *p)
{
    struct wp_park_node *node = p->head;
    wp_park_unlink(p, node);
    /* Release: the waiter's acquire load sees everything before the notify. */
    atomic_store_explicit(&node->signaled, 1, memory_order_release);
    return &node->signaled;
}

/* The futex wakes of one lock hold. On a late-wake park they are made after
 * the unlock, so that the woken waiter (or a worker about to park) does not
 * find the lock held by a notifier sitting in a system call. The waiter may
 * have seen its signal and moved on, even parked again on the same node: a
 * wake only names the address (it writes no memory), the node outlives its
 * waits (see park.h), and every futex waiter re-checks its word, so a late
 * wake is at worst a spurious one (modelled in tests/model/park.pml). */
static void wp_park_wake(_Atomic uint32_t *const *words, int n)
{
    for (int i = 0; i < n; i++)
        wp_futex_wake(words[i], 1);
}

/* Signals up to n queued nodes (all when n < 0); returns how many. */
static int wp_park_signal(struct wp_park *p, int n)
{
    _Atomic uint32_t *words[WP_PARK_BATCH];
    int total = 0;
    for (;;) {
        int k = 0;
        pthread_mutex_lock(&p->lock);
        while (k < WP_PARK_BATCH && (n < 0 || k < n) && p->head)
            words[k++] = wp_park_signal_head(p);
        bool more = p->head != NULL;
        if (!p->late_wake)
            wp_park_wake(words, k);
        pthread_mutex_unlock(&p->lock);
        if (p->late_wake)
            wp_park_wake(words, k);
        total += k;
        if (n >= 0)
            n -= k;
        if (!more || n == 0)
            return total;
    }
}

int wp_park_notify(struct wp_park *p, int n)
{
    /* seq_cst load: the second half of the Dekker pattern (see park.h). */
    if (WP_LIKELY(atomic_load_explicit(&p->nwaiters, memory_order_seq_cst) == 0))
        return 0;
    return wp_park_signal(p, n);
}

void wp_park_notify_all(struct wp_park *p)
{
    wp_park_signal(p, -1);
}

uint32_t wp_park_waiters(struct wp_park *p)
{
    return atomic_load_explicit(&p->nwaiters, memory_order_relaxed);
}
