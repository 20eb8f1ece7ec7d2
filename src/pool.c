/* SPDX-License-Identifier: MIT */
/*
 * Workers, dispatch policy and lifecycle.
 *
 * A worker takes tasks from its queue (FIRST_FREE: the one shared queue;
 * ROUND_ROBIN: its own, then the others in turn, so no task waits behind a busy
 * worker while another is idle), spins briefly when there is none, then sleeps
 * on the pool's eventcount. Workers exit only once every queue is closed and
 * drained, decided from the queues' position counters.
 */
#include "alloc.h"
#include "pool.h"
#include "port.h"
#include "task.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
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

/* Fork policy: a pool belongs to the process that created it. A forked child
 * has none of its threads, and its copy of the pool may hold locks taken by
 * threads that are gone, so every call on an inherited pool, port or token
 * returns -EOWNERDEAD (destroy frees the copy). The child bumps the
 * generation; each object remembers the one it was made in. The only
 * process-wide state in the library. */
_Atomic unsigned int wp_fork_generation;
static pthread_once_t wp_fork_once = PTHREAD_ONCE_INIT;

static void wp_fork_child(void)
{
    atomic_fetch_add_explicit(&wp_fork_generation, 1, memory_order_relaxed);
}

static void wp_fork_setup(void)
{
    pthread_atfork(NULL, NULL, wp_fork_child);
}

void wp_fork_init(void)
{
    pthread_once(&wp_fork_once, wp_fork_setup);
}

/* ---- backpressure ------------------------------------------------------- */

static struct wp_queue *wp_lane(const struct wpool *pool, int lane)
{
    return &pool->queues[(unsigned int)lane * pool->nqueues];
}

/* Tasks waiting beyond the idle workers (limited), or tasks in the queues
 * (tombstones included). seq_cst loads: read after a refusal flag or a park
 * registration (Dekker with the workers' RMWs on the counters or the tail). */
static int64_t wp_backlog_level(struct wpool *pool)
{
    if (pool->limited)
        return atomic_load_explicit(&pool->waiting, memory_order_seq_cst) -
               atomic_load_explicit(&pool->idle, memory_order_seq_cst);
    int64_t n = 0;
    for (unsigned int i = 0; i < WP_LANES * pool->nqueues; i++)
        n += (int64_t)wp_queue_size(&pool->queues[i]);
    return n;
}

/* Would a submit to this lane find room? (A snapshot.) */
static bool wp_has_room(struct wpool *pool, int lane)
{
    if (pool->limited && wp_backlog_level(pool) >= pool->max_queue)
        return false;
    struct wp_queue *qs = wp_lane(pool, lane);
    for (unsigned int i = 0; i < pool->nqueues; i++)
        if (wp_queue_size(&qs[i]) < pool->capacity)
            return true;
    return false;
}

/* The notification's completion, on the owner of the port it was posted to.
 * It calls the registration of that moment, if it is still for this port (a
 * callback registered since for another port must not run on this thread).
 * The notification counts as posted until this look-up: no re-post can move
 * the record to another port before we compare, and a refusal in between is
 * covered by the callback that runs after it. */
static void wp_drain_done(struct wpool_task *t, int status)
{
    (void)status;
    struct wpool *pool = t->data;
    pthread_mutex_lock(&pool->drain_lock);
    wpool_drain_fn fn = pool->drain_port == t->wp_port ? pool->drain_fn : NULL;
    void *arg = pool->drain_arg;
    pool->drain_posted = false;
    pthread_mutex_unlock(&pool->drain_lock);
    if (fn)
        fn(pool, arg);
}

/* Posts the drain notification to the registered port unless one is still on
 * its way (it runs after this point, so it covers this refusal too). Under
 * drain_lock: the port is registered, hence not closed (wpool_port_destroy
 * refuses a registered port under the same lock), and counted in its
 * in-flight total before the lock is released. */
static void wp_drain_post(struct wpool *pool)
{
    if (pool->drain_posted)
        return;
    pool->drain_posted = true;
    struct wpool_task *t = &pool->drain_task;
    struct wpool_port *port = pool->drain_port;
    t->wp_port = port;
    t->wp_status = 0;
    wp_port_count(port);
    wp_port_post(port, t);
}

/* After a refusal: once the backlog is at the low-water mark, consume the
 * refusal and post one drain notification (unless one is already posted and
 * not yet run: it runs after this point, so it covers this refusal too). */
static void wp_drain_check(struct wpool *pool)
{
    if (wp_backlog_level(pool) > pool->low_water)
        return;
    int one = 1;
    /* seq_cst: consumes the refusal exactly once (one notification per
     * burst), after the level was seen low. */
    if (!atomic_compare_exchange_strong_explicit(&pool->refused, &one, 0, memory_order_seq_cst,
                                                 memory_order_relaxed))
        return;
    pthread_mutex_lock(&pool->drain_lock);
    if (pool->drain_fn)
        wp_drain_post(pool);
    pthread_mutex_unlock(&pool->drain_lock);
}

#define WP_ALL_LANES (-1)

/* Room was made for n tasks in a lane (tasks left its queues), or in every
 * lane (a limited pool's backlog fell): wake as many submitters waiting for
 * room there, and deliver a pending drain notification. A woken waiter that
 * finds the room taken waits again; one that leaves without using it (its
 * submit failed otherwise, or its wait timed out as it was woken) passes the
 * wake on (wpool_submit_wait, park.h). */
static void wp_room_made(struct wpool *pool, int lane, int n)
{
    /* seq_cst: after the caller's RMW that made room (Dekker with a refusing
     * submitter, which sets the flag and then reads the backlog). */
    if (WP_UNLIKELY(atomic_load_explicit(&pool->refused, memory_order_seq_cst)))
        wp_drain_check(pool);
    for (int l = 0; l < WP_LANES; l++)
        if (lane == WP_ALL_LANES || lane == l)
            wp_park_notify(&pool->space[l], n);
}

/* A submit found no room. */
static void wp_refused(struct wpool *pool)
{
    if (!atomic_load_explicit(&pool->refused, memory_order_relaxed))
        atomic_store_explicit(&pool->refused, 1, memory_order_seq_cst);
    /* The workers may have made room before they could see the flag. */
    wp_drain_check(pool);
}

int wp_task_withdraw(struct wpool_task *t)
{
    /* Acquire: pairs with the submitter's release store of wp_queue, made
     * after it stored wp_port and wp_pos. These are read racily (the task may
     * be taken and even resubmitted meanwhile): only the CAS on the cell is
     * trusted (see wp_queue_cancel). */
    struct wp_queue *q = __atomic_load_n(&t->wp_queue, __ATOMIC_ACQUIRE);
    if (!q)
        return -EBUSY;
    /* In a forked child the copy is the parent's: check before the CAS, so
     * that the child's copy of the cell is left as it was. */
    struct wpool_port *port = __atomic_load_n(&t->wp_port, __ATOMIC_RELAXED);
    if (!port) /* completed and re-initialised since we looked: not queued */
        return -EBUSY;
    struct wpool *pool = port->pool;
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    uint64_t pos = __atomic_load_n(&t->wp_pos, __ATOMIC_RELAXED);
    if (!wp_queue_cancel(q, pos, t))
        return -EBUSY;
    /* We own the task now, exactly as a worker that popped it would (the
     * CAS acquired its fields). Free the slot now if the tombstone is at the
     * tail, so that the backlog a refused submitter waits on falls at once. */
    wp_queue_reclaim(q);
    wp_pool_withdrawn(pool, t);
    return 0;
}

void wp_pool_withdrawn(struct wpool *pool, struct wpool_task *t)
{
    __atomic_store_n(&t->wp_queue, NULL, __ATOMIC_RELAXED);
    t->wp_status = -ECANCELED;
    atomic_fetch_add_explicit(&pool->cancelled, 1, memory_order_relaxed);
    if (pool->limited)
        atomic_fetch_sub_explicit(&pool->waiting, 1, memory_order_seq_cst);
    int lane = t->wp_prio;
    struct wpool_port *port = t->wp_port;
    wp_port_post(port, t);
    wp_room_made(pool, pool->limited ? WP_ALL_LANES : lane, 1);
}

/* ---- worker side ---------------------------------------------------------- */

static struct wpool_task *wp_take_lane(const struct wp_worker *w, int lane)
{
    struct wpool *pool = w->pool;
    unsigned int n = pool->nqueues;
    struct wp_queue *qs = wp_lane(pool, lane);
    unsigned int i = n == 1 ? 0 : w->index;
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
    return NULL;
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

static bool wp_drained(struct wpool *pool)
{
    for (unsigned int i = 0; i < WP_LANES * pool->nqueues; i++)
        if (!wp_queue_drained(&pool->queues[i]))
            return false;
    return true;
}

static bool wp_backlog(struct wpool *pool)
{
    for (unsigned int i = 0; i < WP_LANES * pool->nqueues; i++)
        if (wp_queue_size(&pool->queues[i]))
            return true;
    return false;
}

/* Coalescing: signals the completions this worker pushed to the default
 * port without signalling (wp_port_push). */
static void wp_release_held(struct wp_worker *w)
{
    w->holding = false;
    wp_port_signal(w->pool->default_port);
}

/* Next task, or NULL once the pool is closed and drained. *waited tells
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
        if (wp_drained(pool))
            return NULL;
        /* Register, then re-check: a publish after the prepare will see us
         * (see park.h). */
        wp_park_prepare(&pool->park, &w->node);
        t = wp_take(w);
        if (t || wp_drained(pool)) {
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
    /* Relaxed: the task is ours (taken from its cell); clearing the queue lets
     * a late wpool_cancel see "not queued" instead of a stale position. */
    __atomic_store_n(&t->wp_queue, NULL, __ATOMIC_RELAXED);
    if (pool->limited) {
        /* Idle first, so that a submitter never sees both counts high. */
        atomic_fetch_sub_explicit(&pool->idle, 1, memory_order_seq_cst);
        atomic_fetch_sub_explicit(&pool->waiting, 1, memory_order_seq_cst);
    }
    wp_room_made(pool, t->wp_prio, 1); /* its slot is free */
    /* Coalescing: held completions wait at most coalesce_ns plus one task. */
    if (w->holding && wp_clock_ns() - w->holding_since >= pool->coalesce_ns)
        wp_release_held(w);
    uint64_t deadline = t->wp_deadline;
    /* Relaxed: a task taken just as destroy starts may run; destroy's cancel
     * covers tasks still queued when it looked, which the join makes final. */
    if (atomic_load_explicit(&pool->cancel_queued, memory_order_relaxed) ||
        (t->wp_token && wp_token_is_cancelled(t))) {
        t->wp_status = -ECANCELED;
        wp_stat_add(&st->cancelled, 1);
    } else if (deadline && wp_clock_ns() >= deadline) {
        t->wp_status = -ETIMEDOUT;
        wp_stat_add(&st->timed_out, 1);
    } else {
        /* A task taken at once after the last one starts when that one ended:
         * one clock read per task in a busy pool. */
        uint64_t start = 0;
        if (pool->timing)
            start = !waited && w->last_end ? w->last_end : wp_ticks();
        atomic_store_explicit(&st->running, 1, memory_order_relaxed);
        t->wp_status = t->wp_work(t);
        atomic_store_explicit(&st->running, 0, memory_order_relaxed);
        wp_stat_add(&st->ran, 1);
        if (pool->timing) {
            uint64_t end = wp_ticks(), stamp = t->wp_stamp;
            /* Relaxed: the epoch is its own start (stats.h); a reset that we
             * miss leaves this record under the old epoch, which readers of
             * the new one skip. */
            uint64_t epoch = atomic_load_explicit(&pool->stats_epoch, memory_order_relaxed);
            uint64_t from = start > epoch ? start : epoch;
            wp_stats_record(st, epoch, start > stamp ? start - stamp : 0,
                            end > start ? end - start : 0, end > from ? end - from : 0);
            w->last_end = end;
        }
    }
    struct wpool_port *port = t->wp_port;
    if (pool->coalesce_ns && port == pool->default_port) {
        /* Only an idle port's signal is held (an armed one discharges what
         * we held); wp_next_task or the next wp_run releases it. */
        if (!wp_port_push(port, t))
            w->holding = false;
        else if (!w->holding) {
            w->holding = true;
            w->holding_since = wp_clock_ns();
        }
    } else {
        wp_port_post(port, t);
    }
    if (pool->limited) {
        atomic_fetch_add_explicit(&pool->idle, 1, memory_order_seq_cst);
        wp_room_made(pool, WP_ALL_LANES, 1);
    }
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
    /* The queues are drained. Other workers may have gone to sleep while the
     * last task was still being published (not drained yet, nothing to take);
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

/* ---- lifecycle ------------------------------------------------------------ */

void wpool_options_init(struct wpool_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->queue_capacity = WPOOL_DEFAULT_QUEUE_CAPACITY;
    opts->dispatch = WPOOL_FIRST_FREE;
    opts->max_queue = WPOOL_UNLIMITED;
    opts->drain_low_water = WPOOL_UNLIMITED;
    opts->timing = 1;
}

static int wp_check_options(const struct wpool_options *o)
{
    uint32_t cap = o->queue_capacity;
    if (o->threads > WPOOL_MAX_THREADS)
        return -EINVAL;
    if (cap < 2 || cap > WPOOL_MAX_QUEUE_CAPACITY || (cap & (cap - 1)))
        return -EINVAL;
    if (o->dispatch != WPOOL_FIRST_FREE && o->dispatch != WPOOL_ROUND_ROBIN)
        return -EINVAL;
    if (o->pin != 0 && o->pin != 1)
        return -EINVAL;
    if (o->coalesce_us > WPOOL_MAX_COALESCE_US || o->reserved_int)
        return -EINVAL;
    if (o->timing != 0 && o->timing != 1)
        return -EINVAL;
    if (o->nice < -20 || o->nice > 19)
        return -EINVAL;
    if (o->stack_size && o->stack_size < (size_t)PTHREAD_STACK_MIN)
        return -EINVAL;
    if (o->drain_low_water != WPOOL_UNLIMITED &&
        (o->max_queue == WPOOL_UNLIMITED || o->drain_low_water >= o->max_queue))
        return -EINVAL;
    for (size_t i = 0; i < sizeof(o->reserved) / sizeof(o->reserved[0]); i++)
        if (o->reserved[i])
            return -EINVAL;
    return 0;
}

/* Closes every queue (after setting the cancel flag, with cancel) and wakes
 * every worker so that they drain and exit. */
static void wp_close_queues(struct wpool *pool, bool cancel)
{
    if (cancel)
        atomic_store_explicit(&pool->cancel_queued, 1, memory_order_relaxed);
    /* notify_all takes the park's lock after the closes: a worker queued
     * before it is signalled; one that queues after it (its prepare takes the
     * lock after this unlock) sees the queues closed in its re-check. The
     * cancel flag is sequenced before the closes, so whoever sees a queue
     * closed (acquire) sees the flag. */
    for (unsigned int i = 0; i < WP_LANES * pool->nqueues; i++)
        wp_queue_close(&pool->queues[i]);
    wp_park_notify_all(&pool->park);
    /* Submitters waiting for room must see -ESHUTDOWN now. */
    for (int l = 0; l < WP_LANES; l++)
        wp_park_notify_all(&pool->space[l]);
}

/* Joins the workers not joined yet, until deadline_ns (0: none). Only one
 * thread joins at a time (pool->joining), without the lock. */
static int wp_join_workers(struct wpool *pool, uint64_t deadline_ns)
{
    for (unsigned int i = 0; i < pool->nthreads; i++) {
        struct wp_worker *w = &pool->workers[i];
        if (!w->started)
            continue;
        if (deadline_ns) {
            /* pthread_timedjoin_np takes CLOCK_REALTIME: convert what is left
             * (ThreadSanitizer knows this call, not pthread_clockjoin_np). */
            uint64_t now = wp_clock_ns();
            if (now >= deadline_ns)
                return -ETIMEDOUT;
            struct timespec rt;
            clock_gettime(CLOCK_REALTIME, &rt);
            uint64_t end =
                (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec + (deadline_ns - now);
            struct timespec ts = {(time_t)(end / 1000000000u), (long)(end % 1000000000u)};
            int rc = pthread_timedjoin_np(w->thread, NULL, &ts);
            if (rc == ETIMEDOUT)
                return -ETIMEDOUT;
        } else {
            pthread_join(w->thread, NULL);
        }
        w->started = false;
    }
    return 0;
}

/* Frees what wp_pool_alloc and wp_start_workers made; workers must be gone. */
static void wp_free_ports(struct wpool *pool)
{
    struct wpool_port *lists[2] = {pool->ports, pool->dead_ports};
    for (int i = 0; i < 2; i++) {
        struct wpool_port *port = lists[i];
        while (port) {
            struct wpool_port *next = port->next;
            wp_port_free(port);
            port = next;
        }
    }
}

static void wp_pool_free(struct wpool *pool)
{
    wp_free_ports(pool);
    if (pool->queues)
        for (unsigned int i = 0; i < WP_LANES * pool->nqueues; i++)
            wp_queue_fini(&pool->queues[i]);
    wp_free(pool->queues);
    wp_free(pool->workers);
    wp_topology_free(&pool->topo);
    wp_park_fini(&pool->park);
    for (int l = 0; l < WP_LANES; l++)
        wp_park_fini(&pool->space[l]);
    pthread_cond_destroy(&pool->life_changed);
    pthread_mutex_destroy(&pool->lock);
    pthread_mutex_destroy(&pool->drain_lock);
    wp_free(pool);
}

static int wp_pool_alloc(struct wpool *pool, const struct wpool_options *o)
{
    int rc;
    if (o->threads == 0 || o->pin) {
        rc = wp_topology_load(&pool->topo);
        if (rc)
            return rc;
    }
    pool->nthreads = o->threads ? o->threads : pool->topo.ncores;
    pool->nqueues = o->dispatch == WPOOL_ROUND_ROBIN ? pool->nthreads : 1;
    pool->capacity = o->queue_capacity;
    pool->pin = o->pin;
    uint64_t total = (uint64_t)pool->nqueues * o->queue_capacity;
    if (total > WPOOL_MAX_QUEUE_CAPACITY)
        return -EINVAL;
    pool->limited = o->max_queue != WPOOL_UNLIMITED;
    if (pool->limited && o->max_queue > total)
        return -EINVAL;
    pool->max_queue = pool->limited ? o->max_queue : (int64_t)total;
    if (o->drain_low_water != WPOOL_UNLIMITED)
        pool->low_water = o->drain_low_water;
    else if (pool->limited)
        pool->low_water = o->max_queue ? (int64_t)(o->max_queue / 2) : -1; /* 0: a worker is free */
    else
        pool->low_water = (int64_t)(total / 2);
    pool->timing = o->timing;
    pool->coalesce_ns = (uint64_t)o->coalesce_us * 1000u;
    pool->nice = o->nice;
    pool->stack_size = o->stack_size;
    pool->on_start = o->on_worker_start;
    pool->on_stop = o->on_worker_stop;
    pool->hook_arg = o->hook_arg;
    unsigned int nq = WP_LANES * pool->nqueues;
    pool->queues = wp_alloc(sizeof(struct wp_queue) * nq);
    pool->workers = wp_alloc(sizeof(struct wp_worker) * pool->nthreads);
    if (!pool->queues || !pool->workers)
        return -ENOMEM;
    for (unsigned int i = 0; i < nq; i++) {
        rc = wp_queue_init(&pool->queues[i], o->queue_capacity);
        if (rc) {
            while (i--)
                wp_queue_fini(&pool->queues[i]);
            wp_free(pool->queues);
            pool->queues = NULL;
            return rc;
        }
    }
    rc = wp_port_new(pool, true, &pool->default_port);
    if (rc)
        return rc;
    pool->ports = pool->default_port;
    pool->drain_port = pool->default_port;
    return 0;
}

/* Starts every worker with all signals blocked (they inherit the mask), so
 * that the host's signals are delivered to its own threads, then waits until
 * each has reported in. */
static int wp_start_workers(struct wpool *pool)
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
            const cpu_set_t *cpus = &pool->topo.cores[i % pool->topo.ncores];
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

int wpool_create(wpool_t **poolp, const struct wpool_options *opts)
{
    struct wpool_options defaults;
    if (!poolp)
        return -EINVAL;
    if (!opts) {
        wpool_options_init(&defaults);
        opts = &defaults;
    }
    int rc = wp_check_options(opts);
    if (rc)
        return rc;
    wp_fork_init();
    struct wpool *pool = wp_alloc(sizeof(*pool));
    if (!pool)
        return -ENOMEM;
    /* Workers' nodes live in pool->workers: late wakes. Submitters waiting
     * for room park nodes on their own stacks: wakes under the lock (a slow
     * path, taken only when a queue is full). */
    wp_park_init(&pool->park, true);
    for (int l = 0; l < WP_LANES; l++)
        wp_park_init(&pool->space[l], false);
    atomic_init(&pool->rr_next, 0);
    atomic_init(&pool->cancel_queued, 0);
    atomic_init(&pool->has_high, 0);
    atomic_init(&pool->refused, 0);
    atomic_init(&pool->waiting, 0);
    atomic_init(&pool->cancelled, 0);
    pool->born_ns = wp_clock_ns();
    pool->born_ticks = wp_ticks();
    atomic_init(&pool->stats_epoch, pool->born_ticks);
    pthread_mutex_init(&pool->drain_lock, NULL);
    pool->generation = atomic_load_explicit(&wp_fork_generation, memory_order_relaxed);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->life_changed, &ca);
    pthread_condattr_destroy(&ca);
    pool->life = WP_OPEN;
    rc = wp_pool_alloc(pool, opts);
    atomic_init(&pool->idle, (int64_t)pool->nthreads);
    pool->drain_posted = false;
    pool->drain_task.data = pool;
    pool->drain_task.wp_done = wp_drain_done;
    pool->drain_task.wp_magic = WP_TASK_MAGIC;
    if (rc == 0)
        rc = wp_start_workers(pool);
    if (rc) {
        if (pool->queues && pool->workers) {
            wp_close_queues(pool, true);
            wp_join_workers(pool, 0);
        }
        wp_pool_free(pool);
        return rc;
    }
    *poolp = pool;
    return 0;
}

static bool wp_on_own_worker(const struct wpool *pool)
{
    return wp_self && wp_self->pool == pool;
}

static int wp_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline_ns)
{
    if (!deadline_ns)
        return pthread_cond_wait(cv, mu);
    struct timespec ts = {(time_t)(deadline_ns / 1000000000u), (long)(deadline_ns % 1000000000u)};
    return pthread_cond_timedwait(cv, mu, &ts); /* the condvar uses CLOCK_MONOTONIC */
}

static uint64_t wp_deadline_ns(int timeout_ms)
{
    return timeout_ms < 0 ? 0 : wp_clock_ns() + (uint64_t)timeout_ms * 1000000u;
}

int wpool_shutdown(wpool_t *pool, int mode, int timeout_ms)
{
    if (!pool || (mode != WPOOL_CLOSE_DRAIN && mode != WPOOL_CLOSE_CANCEL) || timeout_ms < -1)
        return -EINVAL;
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    if (wp_on_own_worker(pool))
        return -EDEADLK;
    uint64_t deadline = wp_deadline_ns(timeout_ms);
    int rc = 0;
    pthread_mutex_lock(&pool->lock);
    if (pool->life == WP_OPEN) {
        pool->life = WP_CLOSING;
        wp_close_queues(pool, mode == WPOOL_CLOSE_CANCEL);
    } else if (pool->life == WP_CLOSING && mode == WPOOL_CLOSE_CANCEL) {
        atomic_store_explicit(&pool->cancel_queued, 1, memory_order_relaxed);
    }
    while (pool->life == WP_CLOSING) {
        if (!pool->joining) {
            pool->joining = true;
            pthread_mutex_unlock(&pool->lock); /* tasks may take it */
            rc = wp_join_workers(pool, deadline);
            pthread_mutex_lock(&pool->lock);
            pool->joining = false;
            if (rc == 0)
                pool->life = WP_CLOSED;
            pthread_cond_broadcast(&pool->life_changed);
            if (rc)
                break;
        } else if (wp_cond_wait_until(&pool->life_changed, &pool->lock, deadline) == ETIMEDOUT) {
            rc = -ETIMEDOUT;
            break;
        }
    }
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

int wpool_close(wpool_t *pool)
{
    return wpool_shutdown(pool, WPOOL_CLOSE_DRAIN, -1);
}

static bool wp_any_port_dispatching(struct wpool *pool)
{
    for (struct wpool_port *p = pool->ports; p; p = p->next)
        if (atomic_load_explicit(&p->in_dispatch, memory_order_relaxed))
            return true;
    return false;
}

static struct wpool_port *wp_first_with_work(struct wpool_port *p)
{
    for (; p; p = p->next)
        if (wp_port_has_work(p))
            return p;
    return NULL;
}

/* Runs, on the calling thread, every completion nobody dispatched. Callbacks
 * may call back into the pool (submit gets -ESHUTDOWN, destroy -EBUSY,
 * port_destroy of a port with completions -EBUSY), so the lists are re-scanned
 * under the lock each round and no port is freed until none has work. Dead
 * ports too, as a backstop: a destroyed port had nothing in flight and
 * refuses submits, so nothing should ever be found there. */
static void wp_deliver_leftovers(struct wpool *pool)
{
    for (;;) {
        pthread_mutex_lock(&pool->lock);
        struct wpool_port *busy = wp_first_with_work(pool->ports);
        if (!busy)
            busy = wp_first_with_work(pool->dead_ports);
        pthread_mutex_unlock(&pool->lock);
        if (!busy)
            return;
        wp_port_run(busy, UINT_MAX);
    }
}

/* In a forked child: the parent's threads do not exist here and its locks may
 * be held forever, so free the copy without locking, joining or running
 * callbacks (the tasks belong to the parent, which completes them). */
static void wp_pool_free_forked(struct wpool *pool)
{
    wp_free_ports(pool);
    for (unsigned int i = 0; i < WP_LANES * pool->nqueues; i++)
        wp_queue_fini(&pool->queues[i]);
    wp_free(pool->queues);
    wp_free(pool->workers);
    wp_topology_free(&pool->topo);
    wp_free(pool);
}

int wpool_destroy(wpool_t *pool)
{
    if (!pool)
        return 0;
    if (wp_forked(pool->generation)) {
        wp_pool_free_forked(pool);
        return 0;
    }
    if (wp_on_own_worker(pool))
        return -EDEADLK;
    pthread_mutex_lock(&pool->lock);
    while (pool->joining)
        pthread_cond_wait(&pool->life_changed, &pool->lock);
    if (pool->life == WP_DESTROYING || wp_any_port_dispatching(pool)) {
        pthread_mutex_unlock(&pool->lock);
        return -EBUSY;
    }
    if (pool->life == WP_OPEN)
        wp_close_queues(pool, true);
    else
        atomic_store_explicit(&pool->cancel_queued, 1, memory_order_relaxed);
    pool->life = WP_DESTROYING;
    pthread_mutex_unlock(&pool->lock);
    wp_join_workers(pool, 0); /* lock released: tasks may take it */
    wp_deliver_leftovers(pool);
    wp_pool_free(pool);
    return 0;
}

unsigned int wpool_threads(const wpool_t *pool)
{
    return pool ? pool->nthreads : 0;
}

/* ---- tasks ---------------------------------------------------------------- */

int wpool_task_init(struct wpool_task *task, wpool_work_fn work, wpool_done_fn done)
{
    if (!task || !work || !done)
        return -EINVAL;
    if (wp_task_valid(task) && wp_task_state(task) != WP_TASK_IDLE)
        return -EBUSY;
    /* Field by field, keeping data: wpool_cancel on another thread may still
     * be reading wp_queue, wp_port and wp_pos of the completed submission
     * (atomically), so those are written atomically too (relaxed: the
     * canceller trusts only its CAS on the cell). */
    __atomic_store_n(&task->wp_queue, NULL, __ATOMIC_RELAXED);
    __atomic_store_n(&task->wp_port, NULL, __ATOMIC_RELAXED);
    __atomic_store_n(&task->wp_pos, 0, __ATOMIC_RELAXED);
    task->wp_next = NULL;
    task->wp_work = work;
    task->wp_done = done;
    task->wp_token = NULL;
    task->wp_status = 0;
    task->wp_deadline = 0;
    task->wp_stamp = 0;
    task->wp_target = NULL;
    task->wp_tprev = task->wp_tnext = NULL;
    task->wp_prio = WPOOL_PRIORITY_NORMAL;
    memset(task->wp_reserved, 0, sizeof(task->wp_reserved));
    __atomic_store_n(&task->wp_state, WP_TASK_IDLE, __ATOMIC_RELAXED);
    __atomic_store_n(&task->wp_magic, WP_TASK_MAGIC, __ATOMIC_RELAXED);
    return 0;
}

/* An attribute may change only while the task is idle. */
static int wp_task_settable(const struct wpool_task *task)
{
    if (!wp_task_valid(task))
        return -EINVAL;
    return wp_task_state(task) == WP_TASK_IDLE ? 0 : -EBUSY;
}

int wpool_task_set_port(struct wpool_task *task, wpool_port_t *port)
{
    int rc = wp_task_settable(task);
    if (rc == 0)
        task->wp_target = port;
    return rc;
}

int wpool_task_set_priority(struct wpool_task *task, int priority)
{
    int rc = wp_task_settable(task);
    if (rc == 0 && priority != WPOOL_PRIORITY_NORMAL && priority != WPOOL_PRIORITY_HIGH)
        rc = -EINVAL;
    if (rc == 0)
        task->wp_prio = priority;
    return rc;
}

int wpool_task_set_deadline(struct wpool_task *task, uint64_t deadline_ns)
{
    int rc = wp_task_settable(task);
    if (rc == 0)
        task->wp_deadline = deadline_ns;
    return rc;
}

int wpool_task_set_token(struct wpool_task *task, wpool_token_t *token)
{
    int rc = wp_task_settable(task);
    if (rc == 0)
        task->wp_token = token;
    return rc;
}

uint64_t wpool_now_ns(void)
{
    return wp_clock_ns();
}

/* Reserves a slot in the task's lane: the policy's queue first; with
 * ROUND_ROBIN the others if it is full. A full queue first gets its cancelled
 * cells at the tail reclaimed. */
static int wp_reserve(struct wpool *pool, int lane, struct wp_queue **qp, uint64_t *pos)
{
    unsigned int n = pool->nqueues, i = 0;
    struct wp_queue *qs = wp_lane(pool, lane);
    if (n > 1) {
        /* Relaxed load + store, not an RMW: a lost update only skews the
         * rotation, and submitters do not contend on a locked instruction. */
        i = atomic_load_explicit(&pool->rr_next, memory_order_relaxed);
        if (i >= n)
            i = 0;
        atomic_store_explicit(&pool->rr_next, i + 1 < n ? i + 1 : 0, memory_order_relaxed);
    }
    for (unsigned int k = 0; k < n; k++) {
        struct wp_queue *q = &qs[i];
        int rc = wp_queue_reserve(q, pos);
        if (rc == -EAGAIN) {
            wp_queue_reclaim(q);
            rc = wp_queue_reserve(q, pos);
        }
        if (rc != -EAGAIN) {
            *qp = q;
            return rc;
        }
        if (++i == n)
            i = 0;
    }
    return -EAGAIN;
}

/* Limited pools: claims a place among the waiting tasks, exactly (a CAS). */
static int wp_admit(struct wpool *pool)
{
    int64_t w = atomic_load_explicit(&pool->waiting, memory_order_seq_cst);
    for (;;) {
        int64_t idle = atomic_load_explicit(&pool->idle, memory_order_seq_cst);
        if (w - idle >= pool->max_queue)
            return -EAGAIN;
        if (atomic_compare_exchange_weak_explicit(&pool->waiting, &w, w + 1, memory_order_seq_cst,
                                                  memory_order_seq_cst))
            return 0;
    }
}

/* Admits, reserves and publishes t for port (its completion's destination). */
static int wp_enqueue(struct wpool *pool, struct wpool_task *t, struct wpool_port *port,
                      bool notify)
{
    int lane = t->wp_prio;
    if (pool->limited) {
        int rc = wp_admit(pool);
        if (rc) {
            /* A closed pool reports -ESHUTDOWN, not a lack of room. */
            if (wp_queue_closed(&pool->queues[0]))
                return -ESHUTDOWN;
            wp_refused(pool);
            return rc;
        }
    }
    if (WP_UNLIKELY(lane) && !atomic_load_explicit(&pool->has_high, memory_order_relaxed))
        atomic_store_explicit(&pool->has_high, 1, memory_order_seq_cst);
    /* Before the reserve: a submitter preempted between reserve and publish
     * holds up every task behind its cell, so that window stays short. */
    if (pool->timing)
        t->wp_stamp = wp_ticks();
    /* Relaxed: a canceller reads it after its acquire load of wp_queue. */
    __atomic_store_n(&t->wp_port, port, __ATOMIC_RELAXED);
    struct wp_queue *q;
    uint64_t pos;
    int rc = wp_reserve(pool, lane, &q, &pos);
    if (WP_UNLIKELY(rc)) {
        if (pool->limited) {
            atomic_fetch_sub_explicit(&pool->waiting, 1, memory_order_seq_cst);
            wp_room_made(pool, WP_ALL_LANES, 1);
        }
        if (rc == -EAGAIN)
            wp_refused(pool);
        return rc;
    }
    wp_port_count(port);
    /* wpool_cancel reads these racily and trusts only its CAS on the cell
     * (see wp_queue_cancel). Release on wp_queue: a canceller that sees it
     * (acquire) sees wp_port and wp_pos. */
    __atomic_store_n(&t->wp_pos, pos, __ATOMIC_RELAXED);
    __atomic_store_n(&t->wp_queue, q, __ATOMIC_RELEASE);
    wp_queue_publish(q, pos, t);
    /* Nothing may touch t from here on: a worker may already have completed
     * it. The publish was a seq_cst RMW, as wp_park_notify requires. */
    if (notify)
        wp_park_notify(&pool->park, 1);
    return 0;
}

int wp_submit_plain(struct wpool *pool, struct wpool_task *t, bool notify)
{
    struct wpool_port *port = t->wp_target ? t->wp_target : pool->default_port;
    /* The default port lives as long as the pool: no gate on the hot path. */
    if (port == pool->default_port)
        return wp_enqueue(pool, t, port, notify);
    /* Another port may be destroyed meanwhile: pass its gate, so that the
     * task is either refused or counted where the destroy will see it. The
     * port outlives our stay (a destroy waits for the gate to empty). */
    int rc = wp_port_enter(port);
    if (rc)
        return rc;
    rc = wp_enqueue(pool, t, port, notify);
    wp_port_leave(port);
    return rc;
}

/* Checks and claims the task for one submission; on success it is INFLIGHT
 * and must be queued or put back to IDLE. */
static int wp_claim(struct wpool *pool, struct wpool_task *t)
{
    if (!wp_task_valid(t))
        return -EINVAL;
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    /* A destroyed (or closing) target is refused by its gate. */
    if (t->wp_target && t->wp_target->pool != pool)
        return -EINVAL;
    uint32_t idle = WP_TASK_IDLE;
    /* Acquire: pairs with the release in wp_port_complete when the previous
     * completion of this record ran on another thread. A closed pool wins
     * over a busy task; checked only here, off the hot path (the reserve
     * reports a close by itself). */
    if (!__atomic_compare_exchange_n(&t->wp_state, &idle, WP_TASK_INFLIGHT, false, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED))
        return wp_queue_closed(&pool->queues[0]) ? -ESHUTDOWN : -EBUSY;
    return 0;
}

static int wp_submit_one(struct wpool *pool, struct wpool_task *t, bool notify)
{
    int rc = wp_claim(pool, t);
    if (WP_UNLIKELY(rc))
        return rc;
    rc = t->wp_token ? wp_token_submit(pool, t, notify) : wp_submit_plain(pool, t, notify);
    if (WP_UNLIKELY(rc))
        __atomic_store_n(&t->wp_state, WP_TASK_IDLE, __ATOMIC_RELEASE);
    return rc;
}

int wpool_submit(wpool_t *pool, struct wpool_task *t)
{
    if (!pool)
        return -EINVAL;
    return wp_submit_one(pool, t, true);
}

int wpool_submit_batch(wpool_t *pool, struct wpool_task *const *tasks, unsigned int n)
{
    if (!pool || !tasks || n == 0)
        return -EINVAL;
    unsigned int k = 0;
    int rc = 0;
    for (; k < n && k < INT_MAX; k++) {
        rc = wp_submit_one(pool, tasks[k], false);
        if (rc)
            break;
    }
    if (k == 0)
        return rc;
    /* One wakeup: a woken worker passes it on while a backlog remains. */
    wp_park_notify(&pool->park, 1);
    return (int)k;
}

/* Sleeps on a space park until signalled (0) or the deadline. */
static int wp_space_wait(struct wp_park *space, struct wp_park_node *node, uint64_t deadline_ns)
{
    if (!deadline_ns) {
        wp_park_wait(space, node);
        return 0;
    }
    uint64_t now = wp_clock_ns();
    return wp_park_wait_for(space, node, now >= deadline_ns ? 0 : deadline_ns - now);
}

int wpool_submit_wait(wpool_t *pool, struct wpool_task *t, int timeout_ms)
{
    if (!pool || timeout_ms < -1)
        return -EINVAL;
    if (wp_on_own_worker(pool))
        return -EDEADLK;
    uint64_t deadline = wp_deadline_ns(timeout_ms);
    bool woken = false;
    for (unsigned int spins = 0;; spins++) {
        int rc = wpool_submit(pool, t);
        if (rc != -EAGAIN) {
            /* A wake is one slot's: leaving without using it (token
             * cancelled, port or pool closing, ...) hands it to the next
             * waiter of the lane. */
            if (woken && rc != 0)
                wp_park_notify(&pool->space[t->wp_prio], 1);
            return rc;
        }
        /* Refused after a wake: the room went to someone else (used). */
        woken = false;
        /* The task is valid (not -EINVAL) and ours: its lane is stable. */
        struct wp_park *space = &pool->space[t->wp_prio];
        /* Register, then re-check for room (Dekker with the worker that makes
         * room and then looks for waiters, see wp_room_made). */
        struct wp_park_node node;
        wp_park_prepare(space, &node);
        if (wp_has_room(pool, t->wp_prio) || wp_queue_closed(&pool->queues[0])) {
            wp_park_cancel(space, &node);
            /* Room is seen but the submit may still be refused (a worker
             * preempted between taking a cell and freeing it): the deadline
             * holds here too. */
            if (deadline && wp_clock_ns() >= deadline) {
                rc = wpool_submit(pool, t);
                return rc == -EAGAIN ? -ETIMEDOUT : rc;
            }
            if (spins > 16) /* room is being made by a preempted worker */
                sched_yield();
            continue;
        }
        spins = 0;
        if (wp_space_wait(space, &node, deadline) == -ETIMEDOUT) {
            rc = wpool_submit(pool, t);
            return rc == -EAGAIN ? -ETIMEDOUT : rc;
        }
        woken = true;
    }
}

int wpool_cancel(struct wpool_task *t)
{
    if (!wp_task_valid(t))
        return -EINVAL;
    if (wp_task_state(t) != WP_TASK_INFLIGHT)
        return -EBUSY;
    return wp_task_withdraw(t);
}

struct wp_cancel_all_ctx {
    struct wpool *pool;
    int n;
};

static void wp_cancel_one(void *item, void *arg)
{
    struct wp_cancel_all_ctx *ctx = arg;
    wp_pool_withdrawn(ctx->pool, item);
    if (ctx->n < INT_MAX)
        ctx->n++;
}

int wpool_cancel_all(wpool_t *pool)
{
    if (!pool)
        return -EINVAL;
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    struct wp_cancel_all_ctx ctx = {pool, 0};
    for (unsigned int i = 0; i < WP_LANES * pool->nqueues; i++) {
        wp_queue_cancel_all(&pool->queues[i], wp_cancel_one, &ctx);
        wp_queue_reclaim(&pool->queues[i]);
    }
    if (ctx.n)
        wp_room_made(pool, WP_ALL_LANES, ctx.n); /* after the reclaim: the backlog has fallen */
    return ctx.n;
}

/* ---- backpressure and statistics calls ------------------------------------ */

int wpool_needs_drain(const wpool_t *cpool)
{
    if (!cpool)
        return -EINVAL;
    struct wpool *pool = (struct wpool *)cpool; /* reads only */
    return !wp_has_room(pool, WPOOL_PRIORITY_NORMAL);
}

int wpool_on_drain(wpool_t *pool, wpool_port_t *port, wpool_drain_fn fn, void *arg)
{
    if (!pool)
        return -EINVAL;
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    if (!port)
        port = pool->default_port;
    if (port->pool != pool)
        return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&pool->drain_lock);
    if (wp_port_dead(port)) {
        rc = -EINVAL;
    } else if (fn && wp_port_closed(port)) {
        rc = -ESHUTDOWN; /* being destroyed: it could never be destroyed then */
    } else if (pool->drain_posted && pool->drain_port != port) {
        rc = -EBUSY; /* a notification is on its way to the old port */
    } else {
        pool->drain_port = port;
        pool->drain_fn = fn;
        pool->drain_arg = arg;
    }
    pthread_mutex_unlock(&pool->drain_lock);
    return rc;
}

int wpool_stats(wpool_t *pool, struct wpool_statistics *out)
{
    if (!pool || !out)
        return -EINVAL;
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    /* Zeroed; on the heap, as a task may call this on a small worker stack. */
    struct wp_hist_sum *sums = wp_alloc(2 * sizeof(*sums));
    if (!sums)
        return -ENOMEM;
    struct wp_hist_sum *wait = &sums[0], *run = &sums[1];
    memset(out, 0, sizeof(*out));
    /* Relaxed: the epoch is its own start (stats.h); each worker's data is
     * acquired through its own epoch (wp_stats_merge). */
    uint64_t epoch = atomic_load_explicit(&pool->stats_epoch, memory_order_relaxed);
    uint64_t busy = 0, done = 0;
    out->threads = pool->nthreads;
    for (unsigned int i = 0; i < pool->nthreads; i++) {
        const struct wp_wstats *st = &pool->workers[i].st;
        out->completed += atomic_load_explicit(&st->ran, memory_order_relaxed);
        out->cancelled += atomic_load_explicit(&st->cancelled, memory_order_relaxed);
        out->timed_out += atomic_load_explicit(&st->timed_out, memory_order_relaxed);
        out->running += (unsigned int)atomic_load_explicit(&st->running, memory_order_relaxed);
        busy += wp_stats_merge(st, epoch, wait, run);
    }
    out->cancelled += atomic_load_explicit(&pool->cancelled, memory_order_relaxed);
    out->idle = out->threads - out->running;
    /* Every accepted submission reserved exactly one queue position. */
    for (unsigned int i = 0; i < WP_LANES * pool->nqueues; i++)
        out->submitted +=
            atomic_load_explicit(&pool->queues[i].head, memory_order_relaxed) & ~WP_QUEUE_CLOSED;
    done = out->completed + out->cancelled + out->timed_out + out->running;
    out->queued = out->submitted > done ? out->submitted - done : 0;
    out->timing = pool->timing;
    uint64_t now = wp_ticks(), now_ns = wp_clock_ns();
    if (pool->timing && now > epoch)
        out->utilization = (double)busy / ((double)(now - epoch) * pool->nthreads);
    /* The tick rate over the pool's life so far. */
    double tpu = now_ns > pool->born_ns && now > pool->born_ticks
                     ? (double)(now - pool->born_ticks) * 1000.0 / (double)(now_ns - pool->born_ns)
                     : 1000.0;
    wp_stats_summarise(wait, tpu, &out->wait);
    wp_stats_summarise(run, tpu, &out->run);
    wp_free(sums);
    return 0;
}

int wpool_stats_reset(wpool_t *pool)
{
    if (!pool)
        return -EINVAL;
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    /* Under the lock: concurrent resets keep the epoch strictly increasing
     * (two resets in one tick still make two epochs). */
    pthread_mutex_lock(&pool->lock);
    uint64_t now = wp_ticks(), old = atomic_load_explicit(&pool->stats_epoch, memory_order_relaxed);
    /* Relaxed: the epoch carries no data; workers clear their own histograms
     * when they see it change. */
    atomic_store_explicit(&pool->stats_epoch, now > old ? now : old + 1, memory_order_relaxed);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

/* ---- ports ---------------------------------------------------------------- */

wpool_port_t *wpool_default_port(wpool_t *pool)
{
    return pool ? pool->default_port : NULL;
}

int wpool_port_create(wpool_t *pool, wpool_port_t **portp)
{
    if (!pool || !portp)
        return -EINVAL;
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    struct wpool_port *port;
    pthread_mutex_lock(&pool->lock);
    int rc = pool->life == WP_OPEN ? wp_port_new(pool, false, &port) : -ESHUTDOWN;
    if (rc == 0) {
        port->next = pool->ports;
        pool->ports = port;
        *portp = port;
    }
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

int wpool_port_destroy(wpool_port_t *port)
{
    if (!port)
        return 0;
    if (port->is_default || wp_port_dead(port))
        return -EINVAL;
    struct wpool *pool = port->pool;
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    if (!pthread_equal(port->owner, pthread_self()))
        return -EPERM;
    if (atomic_load_explicit(&port->in_dispatch, memory_order_relaxed))
        return -EBUSY;
    /* Under drain_lock, so that wpool_on_drain sees the port closed exactly:
     * close it (from here on, for good, submits are refused); a registered
     * port stays busy (its notifications are counted in flight under this
     * lock), an unregistered one stops being the drain's destination. */
    pthread_mutex_lock(&pool->drain_lock);
    int rc = wp_port_close(port);
    if (pool->drain_port == port) {
        if (pool->drain_fn)
            rc = -EBUSY;  /* registered with wpool_on_drain */
        else if (rc == 0) /* nothing in flight, the drain record included */
            pool->drain_port = pool->default_port;
    }
    pthread_mutex_unlock(&pool->drain_lock);
    if (rc)
        return rc;
    /* Nothing in flight, nobody in the gate: wait for the last poster, close
     * the fd. The memory stays until the pool goes: a stale handle then gets
     * -EINVAL instead of touching freed memory. */
    wp_port_bury(port);
    pthread_mutex_lock(&pool->lock);
    struct wpool_port **link = &pool->ports;
    while (*link != port)
        link = &(*link)->next;
    *link = port->next;
    port->next = pool->dead_ports;
    pool->dead_ports = port;
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

unsigned int wpool_version(void)
{
    return WPOOL_VERSION_NUMBER;
}

const char *wpool_version_string(void)
{
    return WPOOL_VERSION_STRING;
}
