/* SPDX-License-Identifier: MIT */
/*
 * The pool's life: options, create, close and shutdown (with their modes and
 * time limits), destroy (leftover completions run on the caller), the port
 * list, and the statistics calls. The task path is elsewhere: submit.c ->
 * queue.c -> park.c -> worker.c -> port.c.
 */
#include "alloc.h"
#include "pool.h"
#include "port.h"
#include "task.h"

#include <errno.h>
#include <limits.h>
#include <string.h>

void wpool_options_init(struct wpool_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->queue_capacity = WPOOL_DEFAULT_QUEUE_CAPACITY;
    opts->placement = WPOOL_FIRST_FREE;
    opts->max_queue = WPOOL_UNLIMITED;
    opts->drain_low_water = WPOOL_UNLIMITED;
    opts->timing = 1;
    opts->coalesce_us = WPOOL_DEFAULT_COALESCE_US;
}

static int wp_check_options(const struct wpool_options *o)
{
    uint32_t cap = o->queue_capacity;
    if (o->threads > WPOOL_MAX_THREADS)
        return -EINVAL;
    if (cap < 2 || cap > WPOOL_MAX_QUEUE_CAPACITY || (cap & (cap - 1)))
        return -EINVAL;
    if (o->placement != WPOOL_FIRST_FREE && o->placement != WPOOL_ROUND_ROBIN)
        return -EINVAL;
    if (o->pin != 0 && o->pin != 1)
        return -EINVAL;
    if (o->coalesce_us > WPOOL_MAX_COALESCE_US || (o->bounded != 0 && o->bounded != 1))
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
 * every worker so that they finish the queues and exit. */
static void wp_close_queues(struct wpool *pool, bool cancel)
{
    if (cancel)
        atomic_store_explicit(&pool->cancel_queued, 1, memory_order_relaxed);
    /* notify_all takes the park's lock after the closes: a worker queued
     * before it is signalled; one that queues after it (its prepare takes the
     * lock after this unlock) sees the queues closed in its re-check. The
     * cancel flag is sequenced before the closes, so whoever sees a queue
     * closed (acquire) sees the flag. The overflows close first: a worker
     * that sees a ring closed sees every push made before (overflow.h). */
    /* Under the pool's lock: no class is created meanwhile (class.c). */
    unsigned int lanes = wp_nlanes(pool);
    for (unsigned int l = 0; l < lanes; l++)
        wp_overflow_close(&pool->lanes[l].overflow);
    for (unsigned int l = 0; l < lanes; l++) {
        struct wp_queue *qs = wp_lane(pool, (int)l);
        for (unsigned int i = 0; i < pool->nqueues; i++)
            wp_queue_close(&qs[i]);
    }
    wp_wake_all_workers(pool);
    /* Submitters waiting for room must see -ESHUTDOWN now. */
    for (unsigned int l = 0; l < lanes; l++)
        wp_park_notify_all(&pool->lanes[l].space);
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
            struct wpool_port *next = wp_port_list_next(port);
            wp_port_free(port);
            port = next;
        }
    }
}

static void wp_pool_free(struct wpool *pool)
{
    wp_free_ports(pool);
    wp_classes_fini(pool, false);
    wp_free(pool->workers);
    wp_topology_free(&pool->topo);
    wp_park_fini(&pool->park);
    pthread_cond_destroy(&pool->life_changed);
    pthread_mutex_destroy(&pool->lock);
    wp_drain_fini(&pool->drain);
    wp_strands_fini(pool);
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
    pool->nthreads = o->threads ? o->threads : wp_topology_cores(&pool->topo);
    pool->nqueues = o->placement == WPOOL_ROUND_ROBIN ? pool->nthreads : 1;
    pool->capacity = o->queue_capacity;
    pool->pin = o->pin;
    uint64_t total = (uint64_t)pool->nqueues * o->queue_capacity;
    if (total > WPOOL_MAX_QUEUE_CAPACITY)
        return -EINVAL;
    pool->limited = o->max_queue != WPOOL_UNLIMITED;
    pool->bounded = o->bounded;
    if (pool->limited && pool->bounded && o->max_queue > total)
        return -EINVAL; /* more than the rings could ever hold */
    pool->max_queue = pool->limited ? o->max_queue : (int64_t)total;
    pool->timing = o->timing;
    pool->coalesce_ns = (uint64_t)o->coalesce_us * 1000u;
    pool->nice = o->nice;
    pool->stack_size = o->stack_size;
    pool->on_start = o->on_worker_start;
    pool->on_stop = o->on_worker_stop;
    pool->hook_arg = o->hook_arg;
    pool->workers = wp_alloc(sizeof(struct wp_worker) * pool->nthreads);
    if (!pool->workers)
        return -ENOMEM;
    /* The high lane's rings are small unless bounded (where their size is
     * the lane's limit): what does not fit waits in its overflow, and a
     * pool that never submits a high task does not pay for the lane. */
    uint32_t high_cap =
        o->bounded || o->queue_capacity < WP_HIGH_RING ? o->queue_capacity : WP_HIGH_RING;
    rc = wp_classes_open(pool, high_cap);
    if (rc)
        return rc;
    rc = wp_port_new(pool, true, &pool->default_port);
    if (rc)
        return rc;
    pool->ports = pool->default_port;
    pool->drain.port = pool->default_port;
    if (o->drain_low_water != WPOOL_UNLIMITED)
        pool->drain.low_water = o->drain_low_water;
    else if (pool->limited)
        pool->drain.low_water =
            o->max_queue ? (int64_t)(o->max_queue / 2) : -1; /* 0: a worker is free */
    else
        pool->drain.low_water = (int64_t)(total / 2);
    return 0;
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
    wp_classes_init(pool);
    /* Its port and level are set once the default port exists. */
    wp_drain_init(&pool->drain, pool, WP_ALL_LANES, 0);
    atomic_init(&pool->rr_next, 0);
    atomic_init(&pool->cancel_queued, 0);
    atomic_init(&pool->waiting, 0);
    atomic_init(&pool->cancelled, 0);
    pool->born_ns = wp_clock_ns();
    pool->born_ticks = wp_ticks();
    atomic_init(&pool->stats_epoch, pool->born_ticks);
    pool->generation = atomic_load_explicit(&wp_fork_generation, memory_order_relaxed);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&pool->life_changed, &ca);
    pthread_condattr_destroy(&ca);
    pool->life = WP_OPEN;
    wp_strands_init(pool);
    rc = wp_pool_alloc(pool, opts);
    atomic_init(&pool->idle, (int64_t)pool->nthreads);
    /* The ticker first: a worker may hand it a held signal at once. */
    if (rc == 0 && pool->coalesce_ns)
        rc = wp_ticker_start(&pool->ticker, pool->default_port, pool->coalesce_ns);
    if (rc == 0)
        rc = wp_start_workers(pool);
    if (rc) {
        if (wp_lane(pool, 1) && pool->default_port) {
            wp_close_queues(pool, true);
            wp_join_workers(pool, 0);
        }
        wp_ticker_stop(&pool->ticker);
        wp_pool_free(pool);
        return rc;
    }
    *poolp = pool;
    return 0;
}

/* Tasks whose work returned WPOOL_PENDING and that nobody completed yet.
 * Relaxed: under the pool's lock, which completers take to lower it (once
 * the workers are joined, nobody raises it). */
static int64_t wp_pending_now(struct wpool *pool)
{
    return atomic_load_explicit(&pool->pending, memory_order_relaxed);
}

static int wp_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t deadline_ns)
{
    if (!deadline_ns)
        return pthread_cond_wait(cv, mu);
    struct timespec ts = {(time_t)(deadline_ns / 1000000000u), (long)(deadline_ns % 1000000000u)};
    return pthread_cond_timedwait(cv, mu, &ts); /* the condvar uses CLOCK_MONOTONIC */
}

int wpool_shutdown(wpool_t *pool, int mode, int timeout_ms)
{
    if (!pool || (mode != WPOOL_CLOSE_RUN && mode != WPOOL_CLOSE_CANCEL) || timeout_ms < -1)
        return -EINVAL;
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    if (wp_on_own_worker(pool))
        return -EDEADLK;
    uint64_t deadline = wp_deadline_ns(timeout_ms);
    int rc = 0;
    pthread_mutex_lock(&pool->lock);
    /* Counted until it returns: a wpool_destroy racing it waits, so that
     * nothing below touches a freed pool (its waits re-take the lock). */
    pool->closers++;
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
    /* Workers joined: only completers still lower the pending count. */
    while (rc == 0 && wp_pending_now(pool))
        if (wp_cond_wait_until(&pool->life_changed, &pool->lock, deadline) == ETIMEDOUT &&
            wp_pending_now(pool))
            rc = -ETIMEDOUT;
    if (--pool->closers == 0)
        pthread_cond_broadcast(&pool->life_changed);
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

int wpool_close(wpool_t *pool)
{
    return wpool_shutdown(pool, WPOOL_CLOSE_RUN, -1);
}

static bool wp_any_port_dispatching(struct wpool *pool)
{
    for (struct wpool_port *p = pool->ports; p; p = wp_port_list_next(p))
        if (wp_port_dispatching(p))
            return true;
    return false;
}

static struct wpool_port *wp_first_with_work(struct wpool_port *p)
{
    for (; p; p = wp_port_list_next(p))
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
    wp_classes_fini(pool, true);
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
    for (;;) {
        /* Relaxed: a group's init and seal come before this call (its
         * contract), on this thread or ordered by the caller. */
        if (pool->life == WP_DESTROYING || wp_any_port_dispatching(pool) ||
            atomic_load_explicit(&pool->unsealed, memory_order_relaxed)) {
            pthread_mutex_unlock(&pool->lock);
            return -EBUSY;
        }
        /* A close or shutdown in progress on another thread: wait until it
         * has returned (it may be joining, or waiting for pending tasks),
         * so that it touches no freed pool. */
        if (!pool->joining && !pool->closers)
            break;
        pthread_cond_wait(&pool->life_changed, &pool->lock);
    }
    if (pool->life == WP_OPEN)
        wp_close_queues(pool, true);
    else
        atomic_store_explicit(&pool->cancel_queued, 1, memory_order_relaxed);
    pool->life = WP_DESTROYING;
    pthread_mutex_unlock(&pool->lock);
    wp_join_workers(pool, 0); /* lock released: tasks may take it */
    /* Pending tasks: their completers post them and lower the count under
     * the lock; the pool must outlive them. */
    pthread_mutex_lock(&pool->lock);
    while (wp_pending_now(pool))
        pthread_cond_wait(&pool->life_changed, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    wp_ticker_stop(&pool->ticker); /* no worker holds any more */
    wp_deliver_leftovers(pool);
    wp_pool_free(pool);
    return 0;
}

void wp_pool_group_opened(struct wpool *pool)
{
    atomic_fetch_add_explicit(&pool->unsealed, 1, memory_order_relaxed);
}

void wp_pool_group_sealed(struct wpool *pool)
{
    atomic_fetch_sub_explicit(&pool->unsealed, 1, memory_order_relaxed);
}

unsigned int wpool_threads(const wpool_t *pool)
{
    return pool ? pool->nthreads : 0;
}

wpool_port_t *wpool_default_port(wpool_t *pool)
{
    return pool ? pool->default_port : NULL;
}

int wp_pool_add_port(struct wpool *pool, struct wpool_port **portp)
{
    pthread_mutex_lock(&pool->lock);
    int rc = pool->life == WP_OPEN ? wp_port_new(pool, false, portp) : -ESHUTDOWN;
    if (rc == 0)
        wp_port_list_push(&pool->ports, *portp);
    pthread_mutex_unlock(&pool->lock);
    return rc;
}

void wp_pool_retire_port(struct wpool *pool, struct wpool_port *port)
{
    pthread_mutex_lock(&pool->lock);
    wp_port_list_remove(&pool->ports, port);
    wp_port_list_push(&pool->dead_ports, port);
    pthread_mutex_unlock(&pool->lock);
}

int wpool_stats(wpool_t *pool, struct wpool_statistics *out)
{
    if (!pool || !out)
        return -EINVAL;
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    /* Zeroed; on the heap, as a task may call this on a small worker stack. */
    struct wp_hist_sum *sums = wp_alloc(3 * sizeof(*sums));
    if (!sums)
        return -ENOMEM;
    struct wp_hist_sum *wait = &sums[0], *run = &sums[1], *pend = &sums[2];
    memset(out, 0, sizeof(*out));
    /* Relaxed: the epoch is its own start (stats.h); each worker's data is
     * acquired through its own epoch (wp_stats_merge). */
    uint64_t epoch = atomic_load_explicit(&pool->stats_epoch, memory_order_relaxed);
    uint64_t busy = 0, done = 0;
    out->threads = pool->nthreads;
    for (unsigned int i = 0; i < pool->nthreads; i++) {
        const struct wp_wstats *st = &pool->workers[i].st;
        wp_stats_totals(st, &out->completed, &out->cancelled, &out->timed_out, &out->running);
        busy += wp_stats_merge(st, epoch, wait, run);
    }
    out->cancelled += atomic_load_explicit(&pool->cancelled, memory_order_relaxed);
    /* A deferred task is counted in `deferred` before it can be completed,
     * and in `later` (under the lock, with its status) before its
     * completion is posted. Relaxed: a total. */
    pthread_mutex_lock(&pool->lock);
    uint64_t later = pool->later, lc = pool->later_cancelled, lt = pool->later_timed_out;
    out->deferred = atomic_load_explicit(&pool->deferred, memory_order_relaxed);
    pthread_mutex_unlock(&pool->lock);
    out->pending = out->deferred > later ? out->deferred - later : 0;
    /* Completed later with -ECANCELED or -ETIMEDOUT: counted by status. */
    out->completed += later > lc + lt ? later - lc - lt : 0;
    out->cancelled += lc;
    out->timed_out += lt;
    wp_ehist_merge(&pool->pend_hist, epoch, pend);
    out->idle = out->threads - out->running;
    /* Every accepted submission reserved exactly one queue position, or
     * went to an overflow. */
    unsigned int lanes = wp_nlanes(pool);
    for (unsigned int l = 0; l < lanes; l++) {
        struct wp_queue *qs = wp_lane(pool, (int)l);
        for (unsigned int i = 0; i < pool->nqueues; i++)
            out->submitted += wp_queue_reserved(&qs[i]);
        out->submitted += wp_overflow_accepted(&pool->lanes[l].overflow);
    }
    out->submitted += wp_strands_accepted(pool);
    done = out->completed + out->cancelled + out->timed_out + out->running + out->pending;
    out->queued = out->submitted > done ? out->submitted - done : 0;
    out->timing = pool->timing;
    uint64_t now = wp_ticks();
    if (pool->timing && now > epoch)
        out->utilization = (double)busy / ((double)(now - epoch) * pool->nthreads);
    double tpu = wp_ticks_per_us(pool);
    wp_stats_summarise(wait, tpu, &out->wait);
    wp_stats_summarise(run, tpu, &out->run);
    wp_stats_summarise(pend, tpu, &out->pend);
    wp_free(sums);
    return 0;
}

double wp_ticks_per_us(const struct wpool *pool)
{
    uint64_t now = wp_ticks(), now_ns = wp_clock_ns();
    return now_ns > pool->born_ns && now > pool->born_ticks
               ? (double)(now - pool->born_ticks) * 1000.0 / (double)(now_ns - pool->born_ns)
               : 1000.0;
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

unsigned int wpool_version(void)
{
    return WPOOL_VERSION_NUMBER;
}

const char *wpool_version_string(void)
{
    return WPOOL_VERSION_STRING;
}
