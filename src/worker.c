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
 *
 * Work classes (class.c): each worker shares itself among the lanes that
 * have tasks by weighted round robin, heaviest first (the two priorities:
 * WPOOL_HIGH_BURST high tasks, then one normal). A capped class is taken
 * from only after a place among its running workers was claimed (a CAS).
 * A worker reserved for a class takes its tasks first, and others' only
 * once it has had none for lend_after_us; until then it sleeps on the
 * class's own park, where the class's submits wake it first.
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
    struct wp_overflow *ov = &pool->lanes[lane].overflow;
    unsigned int i = n == 1 ? 0 : w->index, moved;
    /* A bounded pool's overflow holds only strands' next tasks that found
     * the ring full; submits do not queue behind them (they take a free
     * slot). So the overflow and the rings take turns, or either could be
     * overtaken for ever by a stream of the other. */
    if (pool->bounded && wp_overflow_size(ov) &&
        (w->overflow_turn[lane] = !w->overflow_turn[lane])) {
        struct wpool_task *t = wp_overflow_pop(ov, qs, 0, NULL, 0, 0, &moved);
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
    struct wpool_task *t =
        wp_overflow_pop(ov, qs, n, &qs[into], (unsigned int)lane * n + into, WP_MOVE_MAX, &moved);
    /* Published into a ring: wake a sleeper, as a submit does (a worker whose
     * re-check read the ring before the move and the count after it would
     * sleep through them); a woken worker passes it on. */
    if (moved)
        wp_wake_for(pool, lane);
    return t;
}

/* Takes a task of class `lane`, within its cap. */
static struct wpool_task *wp_take_class(struct wp_worker *w, int lane)
{
    struct wp_class *c = &w->pool->lanes[lane];
    if (!c->cap)
        return wp_take_lane(w, lane);
    if (!wp_cap_claim(c))
        return NULL;
    struct wpool_task *t = wp_take_lane(w, lane);
    /* Nothing to take: the place goes back. A worker turned away meanwhile
     * may sleep on the class's tasks; if none was, nobody needs a wake (a
     * wake for every empty take would chain workers through each other
     * while a submitter is stalled between reserving a cell and publishing
     * it: the lane counts a task no pop can take yet). seq_cst: the
     * decrement, then the exchange (the Dekker of wp_cap_claim). */
    if (!t) {
        wp_cap_release(c);
        if (atomic_exchange_explicit(&c->turned, 0, memory_order_seq_cst))
            wp_cap_recheck(w->pool, lane);
    }
    return t;
}

/* Weighted round robin over the lanes in `mask` (deficit round robin with
 * a task as the unit), per worker, no shared state: the worker stays on a
 * lane for up to its weight in tasks, then moves to the next lane in the
 * order (heaviest first); a lane found empty is passed at once. So while
 * several lanes have tasks, each gets its weight's share of the worker's
 * turns, and a lane that gets a task waits for at most one share of each
 * other lane. */
static struct wpool_task *wp_take_weighted(struct wp_worker *w, uint32_t mask)
{
    struct wpool *pool = w->pool;
    /* Acquire: pairs with wpool_class_create's release store (the weights
     * of the lanes it names). */
    uint64_t order = atomic_load_explicit(&pool->order, memory_order_acquire);
    unsigned int n = (unsigned int)(order >> 32);
    if (w->rr_pos >= n)
        w->rr_pos = 0;
    /* n + 1 visits: every lane at least once with its whole share. */
    for (unsigned int v = 0; v <= n; v++) {
        int l = (int)(order >> (4 * w->rr_pos) & 15);
        if (w->rr_credit && (mask & UINT32_C(1) << l)) {
            struct wpool_task *t = wp_take_class(w, l);
            if (t) {
                w->rr_credit--;
                return t;
            }
        }
        w->rr_pos = w->rr_pos + 1 < n ? w->rr_pos + 1 : 0;
        w->rr_credit = pool->lanes[order >> (4 * w->rr_pos) & 15].weight;
    }
    return NULL;
}

/* A reserved worker lends itself to other classes: its class has had no
 * task for it for lend_after_us. */
static bool wp_lending(const struct wp_worker *w)
{
    return wp_clock_ns() >= w->lend_at;
}

static struct wpool_task *wp_take(struct wp_worker *w)
{
    struct wpool *pool = w->pool;
    /* seq_cst: re-read after wp_park_prepare (a submitter sets a lane's bit
     * before publishing its first task there). */
    uint32_t used = atomic_load_explicit(&pool->used, memory_order_seq_cst);
    /* Acquire: pairs with wp_reserve_workers's release (lend_at). */
    int home = atomic_load_explicit(&w->home, memory_order_acquire);
    if (WP_LIKELY(used <= 1 && !home))
        return wp_take_lane(w, WPOOL_CLASS_NORMAL);
    if (home) {
        struct wpool_task *t = wp_take_class(w, home);
        if (t || !wp_lending(w))
            return t;
        used &= ~(UINT32_C(1) << home);
    }
    return wp_take_weighted(w, used);
}

/* A task waits in one of the overflows. */
static bool wp_overflowing(struct wpool *pool)
{
    unsigned int lanes = wp_nlanes(pool);
    for (unsigned int l = 0; l < lanes; l++)
        if (wp_overflow_size(&pool->lanes[l].overflow))
            return true;
    return false;
}

/* Calls fn on every ring of every lane until it returns `until`. */
static bool wp_any_ring(struct wpool *pool, bool (*fn)(struct wp_queue *), bool until)
{
    unsigned int lanes = wp_nlanes(pool);
    for (unsigned int l = 0; l < lanes; l++) {
        struct wp_queue *qs = wp_lane(pool, (int)l);
        for (unsigned int i = 0; i < pool->nqueues; i++)
            if (fn(&qs[i]) == until)
                return true;
    }
    return false;
}

static bool wp_ring_busy(struct wp_queue *q)
{
    return wp_queue_size(q) != 0;
}

/* Closed, and every task taken: no strand task waiting to be handed over,
 * the rings finished, the overflows empty (a push after the close is
 * refused, and one before it is seen: overflow.h). In this order: the close
 * seen before the strands' count (the Dekker with an append, strand.h), and
 * the count before the rings and overflows (a release moves its task there
 * before it lowers the count). */
static bool wp_all_taken(struct wpool *pool)
{
    if (!wp_pool_closed(pool) || wp_strands_waiting(pool))
        return false;
    return !wp_any_ring(pool, wp_queue_finished, false) && !wp_overflowing(pool);
}

static bool wp_backlog(struct wpool *pool)
{
    return wp_any_ring(pool, wp_ring_busy, true) || wp_overflowing(pool);
}

/* Wakes every worker, on the pool's park and on the classes' (close, and a
 * worker's exit). */
void wp_wake_all_workers(struct wpool *pool)
{
    wp_park_notify_all(&pool->park);
    unsigned int lanes = wp_nlanes(pool);
    for (unsigned int l = 0; l < lanes; l++)
        if (pool->lanes[l].reserved)
            wp_park_notify_all(&pool->lanes[l].home);
}

/* A worker woken (or handed a wake it did not sleep for) passes it on while
 * tasks wait: to the pool's park, and to the park of each class with
 * reserved workers asleep and tasks queued. One wake per batch, per
 * overflow move and per home-park signal reaches one worker; this chain
 * reaches the others. Waiter counts are snapshots (relaxed): a waiter that
 * registers after them re-checks the queues itself. */
static void wp_pass_on(struct wpool *pool)
{
    if (wp_park_waiters(&pool->park) && wp_backlog(pool))
        wp_park_notify(&pool->park, 1);
    unsigned int lanes = wp_nlanes(pool);
    for (unsigned int l = WPOOL_CLASS_HIGH + 1; l < lanes; l++) {
        struct wp_class *c = &pool->lanes[l];
        if (c->reserved && wp_park_waiters(&c->home) && wp_lane_backlog(pool, (int)l))
            wp_park_notify(&c->home, 1);
    }
}

/* Coalescing, at a worker's look for its next task. It found none: what it
 * held, and a hold handed to the ticker, go to the owner at once (the pool
 * runs dry: no delay). It found one: before running it, the held signal goes
 * to the ticker, which arms it within the window whatever the task does
 * (ticker.h); a hold whose window has passed is armed here, in case the
 * ticker is still waiting for a CPU. */
static void wp_coalesce_turn(struct wp_worker *w, bool found)
{
    struct wpool_port *port = w->pool->default_port;
    bool held = w->holding;
    w->holding = false;
    if (!found) {
        if (held)
            wp_port_signal(port);
        else
            wp_port_arm_held(port);
    } else if (held && wp_port_hold(port)) {
        wp_ticker_kick(&w->pool->ticker);
    } else if (wp_ticker_due(&w->pool->ticker)) {
        wp_port_arm_held(port);
    }
}

/* Next task, or NULL once the pool is closed and finished. *waited tells
 * whether the worker had to look more than once. */
static struct wpool_task *wp_next_task(struct wp_worker *w, bool *waited)
{
    struct wpool *pool = w->pool;
    bool woken = false;
    struct wpool_task *t = wp_take(w);
    *waited = t == NULL;
    /* The last task's capped class: unless we took its place again, a
     * worker that found the class at its cap may sleep on its tasks. */
    if (w->recheck >= 0) {
        if (!t || wp_t(t)->prio != w->recheck)
            wp_cap_recheck(pool, w->recheck);
        w->recheck = -1;
    }
    /* Held completions go to the owner before any spin, or to the ticker
     * before the next task runs. */
    if (pool->coalesce_ns)
        wp_coalesce_turn(w, t != NULL);
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
        /* A reserved worker keeping to its class sleeps on the class's park
         * until it may lend itself; any other, on the pool's. */
        int home = atomic_load_explicit(&w->home, memory_order_acquire); /* see wp_take */
        bool keep = home && !wp_lending(w);
        struct wp_park *park = keep ? &pool->lanes[home].home : &pool->park;
        /* Register, then re-check: a publish after the prepare will see us
         * (see park.h). The choice of park is checked again too: the worker
         * may have been reserved meanwhile (wp_reserve_workers's wake of the
         * pool's park came before our registration), or its lend time may
         * have come; then it registers on the right one. */
        wp_park_prepare(park, &w->node);
        bool moved = atomic_load_explicit(&w->home, memory_order_acquire) != home || /* see above */
                     (keep && wp_lending(w));
        t = moved ? NULL : wp_take(w);
        if (moved || t || wp_all_taken(pool)) {
            /* A notifier may have taken our node meanwhile: its wake was for
             * work someone must do, and a home park's forward (inside the
             * cancel) may reach nobody. */
            if (wp_park_cancel(park, &w->node))
                wp_pass_on(pool);
            if (moved)
                continue;
            return t;
        }
        uint64_t parked = wp_clock_ns();
        if (keep)
            wp_park_wait_for(park, &w->node, w->lend_at > parked ? w->lend_at - parked : 0);
        else
            wp_park_wait(park, &w->node);
        if (wp_clock_ns() - parked < WP_SPIN_REACH_NS)
            w->spin = wp_spin_doubled(limit);
        woken = true;
        t = wp_take(w);
    }
    /* Woken into a backlog (e.g. tasks that sat behind a producer stalled
     * before publishing, whose wakeups found nothing, or a batch that woke
     * only one worker): pass the wakeup on so that no task waits while a
     * worker sleeps. */
    if (woken)
        wp_pass_on(pool);
    return t;
}

static void wp_run(struct wp_worker *w, struct wpool_task *t, bool waited)
{
    struct wpool *pool = w->pool;
    struct wp_wstats *st = &w->st;
    int lane = wp_t(t)->prio;
    struct wp_class *c = &pool->lanes[lane];
    /* Relaxed: the task is ours (taken from its cell); clearing the slot lets
     * a late wpool_cancel see "not queued" instead of a stale position. */
    atomic_store_explicit(&wp_t(t)->slot, 0, memory_order_relaxed);
    /* seq_cst: the class's backlog fell, then its `refused` is read in
     * wp_room_made (the backpressure Dekker, room.c). */
    if (WP_UNLIKELY(c->limited))
        atomic_fetch_sub_explicit(&c->waiting, 1, memory_order_seq_cst);
    if (pool->limited) {
        /* Idle first, so that a submitter never sees both counts high.
         * seq_cst: in one order with wp_admit's loads and CAS, and before
         * wp_room_made's read of `refused` (the backpressure Dekker). */
        atomic_fetch_sub_explicit(&pool->idle, 1, memory_order_seq_cst);
        atomic_fetch_sub_explicit(&pool->waiting, 1, memory_order_seq_cst);
    }
    wp_room_made(pool, lane, 1); /* its slot is free */
    uint64_t deadline = wp_t(t)->deadline;
    /* Relaxed: a task taken just as destroy starts may run; destroy's cancel
     * covers tasks still queued when it looked, which the join makes final. */
    bool pending = false, deferred = false;
    enum wp_outcome outcome = WP_RAN;
    if (atomic_load_explicit(&pool->cancel_queued, memory_order_relaxed) ||
        (wp_t(t)->token && wp_token_is_cancelled(t))) {
        wp_task_finish(t, -ECANCELED);
        outcome = WP_CANCELLED;
    } else if (deadline && wp_clock_ns() >= deadline) {
        wp_task_finish(t, -ETIMEDOUT);
        outcome = WP_TIMED_OUT;
    } else {
        /* A task taken at once after the last one starts when that one ended:
         * one clock read per task in a busy pool. */
        uint64_t start = 0, end = 0;
        if (pool->timing)
            start = !waited && w->last_end ? w->last_end : wp_ticks();
        wp_stats_running(st, 1);
        atomic_store_explicit(&w->lane, lane, memory_order_relaxed); /* a gauge, as running */
        wp_defer_start(t);
        int rc = wp_t(t)->work(t);
        wp_stats_running(st, 0);
        atomic_store_explicit(&w->lane, -1, memory_order_relaxed);
        if (WP_LIKELY(rc != WPOOL_PENDING))
            wp_task_finish(t, rc);
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
            if (WP_UNLIKELY(c->hist)) {
                wp_hist_add_shared(&c->hist->wait, start > stamp ? start - stamp : 0);
                wp_hist_add_shared(&c->hist->run, end > start ? end - start : 0);
            }
            w->last_end = end;
        }
        /* Deferred: a completer posts it, or it was completed as it ran. */
        deferred = rc == WPOOL_PENDING;
        if (WP_UNLIKELY(deferred))
            pending = wp_defer_hold(pool, t, end);
        /* Acquire: after wp_reserve_workers's write of lend_at (pairs with
         * its release store of home). */
        if (WP_UNLIKELY(lane > WPOOL_CLASS_HIGH) &&
            atomic_load_explicit(&w->home, memory_order_acquire) == lane)
            w->lend_at = wp_clock_ns() + c->lend_ns; /* its class kept it busy until now */
    }
    /* A deferred task is counted by its completer (defer.c). */
    if (WP_LIKELY(!deferred)) {
        wp_stats_count(st, outcome);
        wp_stat_add(&w->lane_count[lane][outcome], 1);
    }
    /* The cap's place is free; whether a worker must be woken for it is
     * decided at the next take (wp_next_task). */
    if (WP_UNLIKELY(c->cap)) {
        wp_cap_release(c);
        w->recheck = lane;
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
            /* Only an idle port's signal is held (an armed or held one
             * covers what we held); wp_next_task passes it on. */
            w->holding = wp_port_push(port, t);
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
    wp_wake_all_workers(pool);
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
        w->recheck = -1;
        /* The round robin starts on the heaviest lane, its share whole. */
        w->rr_credit =
            pool->lanes[atomic_load_explicit(&pool->order, memory_order_relaxed) & 15].weight;
        atomic_init(&w->lane, -1);
        atomic_init(&w->home, 0);
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
