/* SPDX-License-Identifier: MIT */
/*
 * Workers: take, spin, park, run, post.
 *
 * A worker takes tasks from its queue (FIRST_FREE: the one shared queue;
 * ROUND_ROBIN: its own, then the others in turn, so no task waits behind a busy
 * worker while another is idle), spins briefly when there is none, then sleeps
 * on the pool's eventcount. It runs the task (or completes it with -ECANCELED
 * or -ETIMEDOUT), records its times, and posts the completion to the task's
 * port. Workers exit only once every queue is closed and finished (every
 * position taken), decided from the queues' position counters.
 */
#include "pool.h"
#include "port.h"
#include "task.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

/* Adaptive spinning before a worker registers to sleep. Each worker polls the
 * queues up to `spin` rounds; a spin that finds a task doubles the budget, one
 * that finds none halves it, and a sleep that ends within WP_SPIN_REACH_NS
 * (work came back soon after the worker gave up) doubles it again. A stream of
 * tasks keeps workers spinning across the short gaps between bursts (no futex
 * calls); a pool fed one task now and then decays to WP_SPIN_MIN rounds, well
 * under a microsecond of CPU per task. */
#ifndef WP_SPIN_MAX
#define WP_SPIN_MAX 256u
#endif
#ifndef WP_SPIN_MIN
#define WP_SPIN_MIN 4u
#endif
#ifndef WP_SPIN_REACH_NS
#define WP_SPIN_REACH_NS 20000u
#endif

static unsigned int wp_spin_doubled(unsigned int limit)
{
    return limit < WP_SPIN_MAX / 2 ? limit * 2 : WP_SPIN_MAX;
}

/* The worker running on this thread, if any: lets close/destroy refuse to wait
 * for themselves. One pointer per thread, no global state shared between
 * threads. */
static _Thread_local struct wp_worker *wp_self;

/* Tasks moved from an overflow into a ring per pop (under the list's lock). */
#define WP_MOVE_MAX 64u

static struct wpool_task *wp_take_lane(struct wp_worker *w, int lane)
{
    struct wpool *pool = w->pool;
    unsigned int n = pool->nqueues;
    struct wp_queue *qs = wp_lane(pool, lane);
    unsigned int i = n == 1 ? 0 : w->index, moved;
    /* A bounded pool's overflow holds only strands' next tasks that found
     * the ring full; submits do not queue behind them (they take a free
     * slot). So the overflow and the rings take turns, or either could be
     * overtaken for ever by a stream of the other. */
    if (pool->bounded && wp_overflow_size(&pool->overflow[lane]) &&
        (w->overflow_turn[lane] = !w->overflow_turn[lane])) {
        struct wpool_task *t = wp_overflow_pop(&pool->overflow[lane], qs, 0, NULL, 0, 0, &moved);
        if (t)
            return t;
    }
    for (unsigned int k = 0; k < n; k++) {
        void *item;
        while (wp_queue_pop(&qs[i], &item)) {
            if (item)
                return item;
            /* NULL: a cancelled task's tombstone; its completion is posted.
             * Its slot is free now: a refused submitter may be waiting. */
            wp_room_made(w->pool, lane, 1);
        }
        if (++i == n)
            i = 0;
    }
    /* The rings are empty (when we looked): the overflow's oldest, and the
     * tasks behind it moved into our ring, back on the lock-free path. */
    unsigned int into = n == 1 ? 0 : w->index;
    struct wpool_task *t = wp_overflow_pop(&pool->overflow[lane], qs, n, &qs[into],
                                           (unsigned int)lane * n + into, WP_MOVE_MAX, &moved);
    /* Published into a ring: wake a sleeper, as a submit does (a worker whose
     * re-check read the ring before the move and the count after it would
     * sleep through them); a woken worker passes it on. */
    if (moved)
        wp_park_notify(&pool->park, 1);
    return t;
}

/* High lane first; but while normal tasks wait, one of them after every
 * WPOOL_HIGH_BURST high ones in a row (the documented no-starvation rule). */
static struct wpool_task *wp_take(struct wp_worker *w)
{
    struct wpool_task *t;
    /* seq_cst: re-read after wp_park_prepare (the submitter sets it before
     * publishing its first high task). */
    if (atomic_load_explicit(&w->pool->has_high, memory_order_seq_cst)) {
        if (w->high_streak >= WPOOL_HIGH_BURST) {
            t = wp_take_lane(w, WPOOL_PRIORITY_NORMAL);
            if (t) {
                w->high_streak = 0;
                return t;
            }
        }
        t = wp_take_lane(w, WPOOL_PRIORITY_HIGH);
        if (t) {
            w->high_streak++;
            return t;
        }
    }
    w->high_streak = 0;
    return wp_take_lane(w, WPOOL_PRIORITY_NORMAL);
}

/* A task waits in one of the overflows. */
static bool wp_overflowing(struct wpool *pool)
{
    for (int l = 0; l < WP_LANES; l++)
        if (wp_overflow_size(&pool->overflow[l]))
            return true;
    return false;
}

/* Closed, and every task taken: no strand task waiting to be handed over,
 * the rings finished, the overflows empty (a push after the close is
 * refused, and one before it is seen: overflow.h). In this order: the close
 * seen before the strands' count (the Dekker with an append, strand.h), and
 * the count before the rings and overflows (a release moves its task there
 * before it lowers the count). */
static bool wp_all_taken(struct wpool *pool)
{
    if (!wp_queue_closed(&pool->queues[0]) || wp_strands_waiting(pool))
        return false;
    for (unsigned int i = 0; i < WP_LANES * pool->nqueues; i++)
        if (!wp_queue_finished(&pool->queues[i]))
            return false;
    return !wp_overflowing(pool);
}

static bool wp_backlog(struct wpool *pool)
{
    for (unsigned int i = 0; i < WP_LANES * pool->nqueues; i++)
        if (wp_queue_size(&pool->queues[i]))
            return true;
    return wp_overflowing(pool);
}

/* Coalescing: signals the completions this worker pushed to the default
 * port without signalling (wp_port_push). */
static void wp_release_held(struct wp_worker *w)
{
    w->holding = false;
    wp_port_signal(w->pool->default_port);
}

/* Next task, or NULL once the pool is closed and finished. *waited tells
 * whether the worker had to look more than once. */
static struct wpool_task *wp_next_task(struct wp_worker *w, bool *waited)
{
    struct wpool *pool = w->pool;
    bool woken = false;
    struct wpool_task *t = wp_take(w);
    *waited = t == NULL;
    /* No task waiting: held completions go to the owner before any spin. */
    if (!t && w->holding)
        wp_release_held(w);
    for (; !t;) {
        unsigned int limit = w->spin;
        for (unsigned int i = 0; !t && i < limit; i++) {
            wp_cpu_relax();
            t = wp_take(w);
        }
        if (t) {
            w->spin = wp_spin_doubled(limit);
            break;
        }
        w->spin = limit / 2 > WP_SPIN_MIN ? limit / 2 : WP_SPIN_MIN;
        if (wp_all_taken(pool))
            return NULL;
        /* Register, then re-check: a publish after the prepare will see us
         * (see park.h). */
        wp_park_prepare(&pool->park, &w->node);
        t = wp_take(w);
        if (t || wp_all_taken(pool)) {
            wp_park_cancel(&pool->park, &w->node);
            return t;
        }
        uint64_t parked = wp_clock_ns();
        wp_park_wait(&pool->park, &w->node);
        if (wp_clock_ns() - parked < WP_SPIN_REACH_NS)
            w->spin = wp_spin_doubled(limit);
        woken = true;
        t = wp_take(w);
    }
    /* Woken into a backlog (e.g. tasks that sat behind a producer stalled
     * before publishing, whose wakeups found nothing, or a batch that woke
     * only one worker): pass the wakeup on so that no task waits while a
     * worker sleeps. */
    if (woken && wp_park_waiters(&pool->park) && wp_backlog(pool))
        wp_park_notify(&pool->park, 1);
    return t;
}

static void wp_run(struct wp_worker *w, struct wpool_task *t, bool waited)
{
    struct wpool *pool = w->pool;
    struct wp_wstats *st = &w->st;
    /* Relaxed: the task is ours (taken from its cell); clearing the slot lets
     * a late wpool_cancel see "not queued" instead of a stale position. */
    atomic_store_explicit(&wp_t(t)->slot, 0, memory_order_relaxed);
    if (pool->limited) {
        /* Idle first, so that a submitter never sees both counts high.
         * seq_cst: in one order with wp_admit's loads and CAS, and before
         * wp_room_made's read of `refused` (the backpressure Dekker). */
        atomic_fetch_sub_explicit(&pool->idle, 1, memory_order_seq_cst);
        atomic_fetch_sub_explicit(&pool->waiting, 1, memory_order_seq_cst);
    }
    wp_room_made(pool, wp_t(t)->prio, 1); /* its slot is free */
    /* Coalescing: held completions wait at most coalesce_ns plus one task. */
    if (w->holding && wp_clock_ns() - w->holding_since >= pool->coalesce_ns)
        wp_release_held(w);
    uint64_t deadline = wp_t(t)->deadline;
    /* Relaxed: a task taken just as destroy starts may run; destroy's cancel
     * covers tasks still queued when it looked, which the join makes final. */
    bool pending = false;
    if (atomic_load_explicit(&pool->cancel_queued, memory_order_relaxed) ||
        (wp_t(t)->token && wp_token_is_cancelled(t))) {
        wp_task_finish(t, -ECANCELED);
        wp_stats_count(st, WP_CANCELLED);
    } else if (deadline && wp_clock_ns() >= deadline) {
        wp_task_finish(t, -ETIMEDOUT);
        wp_stats_count(st, WP_TIMED_OUT);
    } else {
        /* A task taken at once after the last one starts when that one ended:
         * one clock read per task in a busy pool. */
        uint64_t start = 0, end = 0;
        if (pool->timing)
            start = !waited && w->last_end ? w->last_end : wp_ticks();
        wp_stats_running(st, 1);
        wp_defer_start(t);
        int rc = wp_t(t)->work(t);
        wp_stats_running(st, 0);
        if (WP_LIKELY(rc != WPOOL_PENDING)) {
            wp_task_finish(t, rc);
            wp_stats_count(st, WP_RAN);
        }
        if (pool->timing) {
            uint64_t stamp = wp_t(t)->stamp;
            end = wp_ticks();
            /* Relaxed: the epoch is its own start (stats.h); a reset that we
             * miss leaves this record under the old epoch, which readers of
             * the new one skip. */
            uint64_t epoch = atomic_load_explicit(&pool->stats_epoch, memory_order_relaxed);
            uint64_t from = start > epoch ? start : epoch;
            wp_stats_record(st, epoch, start > stamp ? start - stamp : 0,
                            end > start ? end - start : 0, end > from ? end - from : 0);
            w->last_end = end;
        }
        /* Deferred: a completer posts it, or it was completed as it ran. */
        if (WP_UNLIKELY(rc == WPOOL_PENDING))
            pending = wp_defer_hold(pool, t, end);
    }
    /* Pending: not ours any more (its completer may have posted it, and its
     * callback freed it, already): nothing below may touch it. */
    if (!pending) {
        /* A strand's next task goes on before this completion is posted
         * (after it the record, and the strand, may be freed). */
        if (WP_UNLIKELY(wp_task_strand(t)))
            wp_strand_release(pool, t);
        /* Relaxed: the task is ours (taken from its cell, which acquired it). */
        struct wpool_port *port = atomic_load_explicit(&wp_t(t)->port, memory_order_relaxed);
        if (pool->coalesce_ns && port == pool->default_port) {
            /* Only an idle port's signal is held (an armed one discharges
             * what we held); wp_next_task or the next wp_run releases it. */
            if (!wp_port_push(port, t))
                w->holding = false;
            else if (!w->holding) {
                w->holding = true;
                w->holding_since = wp_clock_ns();
            }
        } else {
            wp_port_post(port, t, &w->guard);
        }
    }
    if (pool->limited) {
        /* seq_cst: idle again, then wp_room_made reads `refused` (the
         * backpressure Dekker); and in one order with wp_admit's CAS. */
        atomic_fetch_add_explicit(&pool->idle, 1, memory_order_seq_cst);
        wp_room_made(pool, WP_ALL_LANES, 1);
    }
}

unsigned int wp_pool_nguards(const struct wpool *pool)
{
    return pool->nthreads;
}

struct wp_post_guard *wp_pool_guard(struct wpool *pool, unsigned int i)
{
    return &pool->workers[i].guard;
}

/* Reports the worker's start (nice applied, start hook run) to wpool_create. */
static void wp_report_start(struct wpool *pool, int err)
{
    pthread_mutex_lock(&pool->lock);
    if (err && !pool->start_error)
        pool->start_error = err;
    pool->nstarted++;
    pthread_cond_broadcast(&pool->life_changed);
    pthread_mutex_unlock(&pool->lock);
}

static void *wp_worker_main(void *arg)
{
    struct wp_worker *w = arg;
    struct wpool *pool = w->pool;
    char name[16];
    wp_self = w;
    snprintf(name, sizeof(name), "wpool-%u", w->index);
    pthread_setname_np(pthread_self(), name);
    if (pool->nice) {
        /* Linux: a thread's own nice value (PRIO_PROCESS with its tid). */
        errno = 0;
        int cur = getpriority(PRIO_PROCESS, (id_t)gettid());
        int err = errno;
        if (!err && setpriority(PRIO_PROCESS, (id_t)gettid(), cur + pool->nice) != 0)
            err = errno;
        if (err) {
            wp_report_start(pool, -err);
            wp_self = NULL;
            return NULL;
        }
    }
    if (pool->on_start)
        pool->on_start(pool->hook_arg, w->index);
    wp_report_start(pool, 0);
    struct wpool_task *t;
    bool waited;
    while ((t = wp_next_task(w, &waited)))
        wp_run(w, t, waited);
    /* The queues are finished. Other workers may have gone to sleep while the
     * last task was still being published (not finished yet, nothing to take);
     * nothing else would wake them, and close would wait for them forever. */
    wp_park_notify_all(&pool->park);
    if (pool->on_stop)
        pool->on_stop(pool->hook_arg, w->index);
    wp_self = NULL;
    return NULL;
}

int wpool_worker_index(void)
{
    return wp_self ? (int)wp_self->index : -1;
}

/* Starts every worker with all signals blocked (they inherit the mask), so
 * that the host's signals are delivered to its own threads, then waits until
 * each has reported in. */
int wp_start_workers(struct wpool *pool)
{
    sigset_t all, old;
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc)
        return -rc;
    if (pool->stack_size)
        rc = pthread_attr_setstacksize(&attr, pool->stack_size);
    unsigned int created = 0;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned int i = 0; i < pool->nthreads && rc == 0; i++) {
        struct wp_worker *w = &pool->workers[i];
        w->pool = pool;
        w->index = i;
        w->spin = WP_SPIN_MAX;
        if (pool->pin) {
            const cpu_set_t *cpus = wp_topology_core(&pool->topo, i);
            rc = pthread_attr_setaffinity_np(&attr, sizeof(cpu_set_t), cpus);
            if (rc)
                break;
        }
        rc = pthread_create(&w->thread, &attr, wp_worker_main, w);
        w->started = rc == 0;
        created += w->started;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    pthread_mutex_lock(&pool->lock);
    while (pool->nstarted < created)
        pthread_cond_wait(&pool->life_changed, &pool->lock);
    int err = pool->start_error;
    pthread_mutex_unlock(&pool->lock);
    return rc ? -rc : err;
}

bool wp_on_own_worker(const struct wpool *pool)
{
    return wp_self && wp_self->pool == pool;
}
