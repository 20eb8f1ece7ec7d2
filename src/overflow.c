/* SPDX-License-Identifier: MIT */
/* A lane's overflow list (overflow.h). */
#include "overflow.h"
#include "port.h"
#include "task.h"

#include <errno.h>
#include <stddef.h>

void wp_overflow_init(struct wp_overflow *o, void *owner)
{
    pthread_mutex_init(&o->lock, NULL);
    o->owner = owner;
    o->list.head = o->list.tail = NULL;
    o->closed = false;
    atomic_init(&o->count, 0);
    atomic_init(&o->pushed, 0);
    atomic_init(&o->moved, 0);
}

void *wp_overflow_owner(const struct wp_overflow *o)
{
    return o->owner;
}

void wp_overflow_fini(struct wp_overflow *o)
{
    pthread_mutex_destroy(&o->lock);
}

static int wp_overflow_append(struct wp_overflow *o, struct wpool_task *t, struct wpool_port *port,
                              bool released)
{
    struct wp_task *w = wp_t(t);
    pthread_mutex_lock(&o->lock);
    if (o->closed && !released) {
        pthread_mutex_unlock(&o->lock);
        return -ESHUTDOWN;
    }
    /* The default port's count (port; NULL for another port, counted
     * before): only once accepted (a refused push leaves nothing to take
     * back), and before a worker can pop it. */
    if (port)
        wp_port_count(port);
    wp_tlist_append(&o->list, t);
    /* Relaxed: a canceller reads it without the lock only to pick the list,
     * then checks it again under the lock. */
    atomic_store_explicit(&w->over, o, memory_order_relaxed);
    if (released)
        /* A strand's next task: its slot stops naming the strand only now,
         * after `over` names this list (a canceller that reads the slot 0,
         * acquire, finds `over`), and before a move into a ring can write
         * its cell there (moves take this lock). seq_cst: the task leaves
         * the strand (the Dekker with a strand's destroy, strand.c). */
        atomic_store_explicit(&w->slot, 0, memory_order_seq_cst);
    /* seq_cst RMW: the submitter's wp_park_notify that follows needs one
     * (Dekker with a worker's prepare, then its seq_cst read of count). */
    atomic_fetch_add_explicit(&o->count, 1, memory_order_seq_cst);
    atomic_fetch_add_explicit(&o->pushed, 1, memory_order_relaxed);
    pthread_mutex_unlock(&o->lock);
    return 0;
}

int wp_overflow_push(struct wp_overflow *o, struct wpool_task *t, struct wpool_port *port)
{
    return wp_overflow_append(o, t, port, false);
}

void wp_overflow_push_released(struct wp_overflow *o, struct wpool_task *t)
{
    wp_overflow_append(o, t, NULL, true);
}

/* Under the lock: t is no longer on o. Release: pairs with a canceller's
 * acquire load of `over` (cancel.c): one that sees the task gone sees where
 * a move put it. A CAS, not a store: once a moved task's cell is filled a
 * canceller may own it, complete it, and its next submission set `over`
 * anew; that value is not ours to clear. */
static void wp_overflow_gone(struct wp_overflow *o, struct wpool_task *t)
{
    struct wp_overflow *expected = o;
    atomic_compare_exchange_strong_explicit(&wp_t(t)->over, &expected, NULL, memory_order_release,
                                            memory_order_relaxed);
}

static void wp_overflow_detach(struct wp_overflow *o, struct wpool_task *t)
{
    wp_tlist_cut(&o->list, t);
    wp_overflow_gone(o, t);
}

static void wp_overflow_unlink(struct wp_overflow *o, struct wpool_task *t)
{
    wp_overflow_detach(o, t);
    atomic_fetch_sub_explicit(&o->count, 1, memory_order_relaxed);
}

/* True while one of the rings holds tasks (published or being published). */
static bool wp_rings_busy(struct wp_queue *rings, unsigned int n)
{
    for (unsigned int i = 0; i < n; i++)
        if (wp_queue_size(&rings[i]))
            return true;
    return false;
}

struct wpool_task *wp_overflow_pop(struct wp_overflow *o, struct wp_queue *rings,
                                   unsigned int nrings, struct wp_queue *into,
                                   unsigned int into_ring, unsigned int max, unsigned int *moved)
{
    *moved = 0;
    /* seq_cst: a worker's re-check after its park prepare (overflow.h). */
    if (!atomic_load_explicit(&o->count, memory_order_seq_cst))
        return NULL;
    pthread_mutex_lock(&o->lock);
    if (wp_rings_busy(rings, nrings)) {
        /* A ring task published before a push we see here is older: the
         * caller takes the rings first. */
        pthread_mutex_unlock(&o->lock);
        return NULL;
    }
    struct wpool_task *t = o->list.head;
    if (t)
        wp_overflow_unlink(o, t);
    unsigned int n = 0;
    uint64_t pos;
    /* The rest, oldest first, each only once its ring position is held
     * (the ring full or closed ends the move). As the submit path publishes:
     * the task was counted on its port when pushed, and stays in `waiting`
     * (limited pools). */
    while (n < max && o->list.head && wp_queue_reserve(into, &pos) == 0) {
        struct wpool_task *u = o->list.head;
        /* Release: a canceller that sees the slot (acquire) sees what the
         * submitter wrote before the push (`port`). */
        atomic_store_explicit(&wp_t(u)->slot, wp_slot(into_ring, pos), memory_order_release);
        /* Its links out of the list first: once the cell's data is filled a
         * canceller's CAS on the cell may own it, and nothing but atomics may
         * touch it after. The data before `over` goes NULL: a canceller that
         * sees it gone (acquire) finds it in the cell. */
        wp_tlist_cut(&o->list, u);
        wp_queue_fill(into, pos, u);
        wp_overflow_gone(o, u);
        /* Published: from here on a worker may run it. */
        wp_queue_release(into, pos);
        n++;
    }
    if (n) {
        /* seq_cst: after the ring reservations (seq_cst CASes on the ring's
         * head): a submitter that reads the lower count (seq_cst) and then
         * reserves lands behind them. */
        atomic_fetch_sub_explicit(&o->count, n, memory_order_seq_cst);
        atomic_fetch_add_explicit(&o->moved, n, memory_order_relaxed);
    }
    pthread_mutex_unlock(&o->lock);
    *moved = n;
    return t;
}

bool wp_overflow_remove(struct wp_overflow *o, struct wpool_task *t)
{
    pthread_mutex_lock(&o->lock);
    /* Relaxed: written under this lock. */
    bool here = atomic_load_explicit(&wp_t(t)->over, memory_order_relaxed) == o;
    if (here)
        wp_overflow_unlink(o, t);
    pthread_mutex_unlock(&o->lock);
    return here;
}

unsigned int wp_overflow_remove_all(struct wp_overflow *o, void (*fn)(void *item, void *arg),
                                    void *arg)
{
    pthread_mutex_lock(&o->lock);
    struct wpool_task *t = o->list.head;
    for (struct wpool_task *u = t; u; u = wp_t(u)->next)
        atomic_store_explicit(&wp_t(u)->over, NULL, memory_order_relaxed); /* ours now */
    o->list.head = o->list.tail = NULL;
    atomic_store_explicit(&o->count, 0, memory_order_relaxed);
    pthread_mutex_unlock(&o->lock);
    unsigned int n = 0;
    while (t) {
        struct wpool_task *next = wp_t(t)->next;
        wp_t(t)->next = wp_t(t)->oprev = NULL;
        fn(t, arg);
        n++;
        t = next;
    }
    return n;
}

void wp_overflow_close(struct wp_overflow *o)
{
    pthread_mutex_lock(&o->lock);
    o->closed = true;
    pthread_mutex_unlock(&o->lock);
}

uint64_t wp_overflow_size(struct wp_overflow *o)
{
    /* seq_cst: read in the checks that decide a worker may exit or sleep. */
    return atomic_load_explicit(&o->count, memory_order_seq_cst);
}

uint64_t wp_overflow_accepted(struct wp_overflow *o)
{
    /* Relaxed: counters for statistics; moved first, so that a move between
     * the two loads is not counted twice with the ring's positions. */
    uint64_t moved = atomic_load_explicit(&o->moved, memory_order_relaxed);
    return atomic_load_explicit(&o->pushed, memory_order_relaxed) - moved;
}
