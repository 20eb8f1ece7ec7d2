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

/* Polls of the queues before a worker registers to sleep: long enough to catch
 * a task submitted right behind the last one (a few microseconds), short
 * enough that an idle pool burns no measurable CPU. */
#ifndef WP_SPIN_ROUNDS
#define WP_SPIN_ROUNDS 200
#endif

/* The worker running on this thread, if any: lets close/destroy refuse to wait
 * for themselves. One pointer per thread, no global state shared between
 * threads. */
static _Thread_local struct wp_worker *wp_self;

/* ---- worker side ---------------------------------------------------------- */

static struct wpool_task *wp_take(const struct wp_worker *w)
{
    const struct wpool *pool = w->pool;
    unsigned int n = pool->nqueues;
    unsigned int i = n == 1 ? 0 : w->index;
    for (unsigned int k = 0; k < n; k++) {
        void *item;
        while (wp_queue_pop(&pool->queues[i], &item)) {
            if (item)
                return item;
            /* NULL: a cancelled task's tombstone; its completion is posted. */
        }
        if (++i == n)
            i = 0;
    }
    return NULL;
}

static bool wp_drained(struct wpool *pool)
{
    for (unsigned int i = 0; i < pool->nqueues; i++)
        if (!wp_queue_drained(&pool->queues[i]))
            return false;
    return true;
}

static void wp_run(struct wpool *pool, struct wpool_task *t)
{
    /* Relaxed: the task is ours (taken from its cell); clearing the queue lets
     * a late wpool_cancel see "not queued" instead of a stale position. */
    __atomic_store_n(&t->wp_queue, NULL, __ATOMIC_RELAXED);
    /* Relaxed: a task taken just as destroy starts may run; destroy's cancel
     * covers tasks still queued when it looked, which the join makes final. */
    if (atomic_load_explicit(&pool->cancel_queued, memory_order_relaxed))
        t->wp_status = -ECANCELED;
    else
        t->wp_status = t->wp_work(t);
    wp_port_post(t->wp_port, t);
}

/* Next task, or NULL once the pool is closed and drained. */
static bool wp_backlog(struct wpool *pool)
{
    for (unsigned int i = 0; i < pool->nqueues; i++)
        if (wp_queue_size(&pool->queues[i]))
            return true;
    return false;
}

/* Next task, or NULL once the pool is closed and drained. */
static struct wpool_task *wp_next_task(struct wp_worker *w)
{
    struct wpool *pool = w->pool;
    bool woken = false;
    for (;;) {
        struct wpool_task *t = wp_take(w);
        for (int i = 0; !t && i < WP_SPIN_ROUNDS; i++) {
            wp_cpu_relax();
            t = wp_take(w);
        }
        if (t) {
            /* Woken into a backlog (e.g. tasks that sat behind a producer
             * stalled before publishing, whose wakeups found nothing): pass
             * the wakeup on so that no task waits while a worker sleeps. */
            if (woken && wp_park_waiters(&pool->park) && wp_backlog(pool))
                wp_park_notify(&pool->park, 1);
            return t;
        }
        if (wp_drained(pool))
            return NULL;
        /* Register, then re-check: a publish after the prepare will see us
         * (see park.h). */
        uint32_t key = wp_park_prepare(&pool->park);
        t = wp_take(w);
        if (t || wp_drained(pool)) {
            wp_park_cancel(&pool->park);
            return t;
        }
        wp_park_wait(&pool->park, key);
        woken = true;
    }
}

static void *wp_worker_main(void *arg)
{
    struct wp_worker *w = arg;
    char name[16];
    wp_self = w;
    snprintf(name, sizeof(name), "wpool-%u", w->index);
    pthread_setname_np(pthread_self(), name);
    struct wpool_task *t;
    while ((t = wp_next_task(w)))
        wp_run(w->pool, t);
    /* The queues are drained. Other workers may have gone to sleep while the
     * last task was still being published (not drained yet, nothing to take);
     * nothing else would wake them, and close would wait for them forever. */
    wp_park_notify_all(&w->pool->park);
    wp_self = NULL;
    return NULL;
}

/* ---- lifecycle ------------------------------------------------------------ */

void wpool_options_init(struct wpool_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->queue_capacity = WPOOL_DEFAULT_QUEUE_CAPACITY;
    opts->dispatch = WPOOL_FIRST_FREE;
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
    for (size_t i = 0; i < sizeof(o->reserved) / sizeof(o->reserved[0]); i++)
        if (o->reserved[i])
            return -EINVAL;
    return 0;
}

/* Closes every queue and wakes every worker so that they drain and exit, then
 * joins them. With cancel, queued tasks complete with -ECANCELED unrun. */
static void wp_stop_workers(struct wpool *pool, bool cancel)
{
    if (cancel)
        atomic_store_explicit(&pool->cancel_queued, 1, memory_order_relaxed);
    /* Each close is a seq_cst RMW, and notify_all's epoch bump is an RMW after
     * them: a worker that prepared before the bump is woken, one that prepares
     * after it sees the queues closed. The cancel flag is sequenced before the
     * closes, so whoever sees a queue closed (acquire) sees the flag. */
    for (unsigned int i = 0; i < pool->nqueues; i++)
        wp_queue_close(&pool->queues[i]);
    wp_park_notify_all(&pool->park);
    for (unsigned int i = 0; i < pool->nthreads; i++) {
        if (pool->workers[i].started) {
            pthread_join(pool->workers[i].thread, NULL);
            pool->workers[i].started = false;
        }
    }
}

/* Frees what wp_pool_alloc and wp_start_workers made; workers must be gone. */
static void wp_pool_free(struct wpool *pool)
{
    struct wpool_port *port = pool->ports;
    while (port) {
        struct wpool_port *next = port->next;
        wp_port_free(port);
        port = next;
    }
    if (pool->queues)
        for (unsigned int i = 0; i < pool->nqueues; i++)
            wp_queue_fini(&pool->queues[i]);
    wp_free(pool->queues);
    wp_free(pool->workers);
    wp_topology_free(&pool->topo);
    pthread_cond_destroy(&pool->life_changed);
    pthread_mutex_destroy(&pool->lock);
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
    pool->pin = o->pin;
    if ((uint64_t)pool->nqueues * o->queue_capacity > WPOOL_MAX_QUEUE_CAPACITY)
        return -EINVAL;
    pool->queues = wp_alloc(sizeof(struct wp_queue) * pool->nqueues);
    pool->workers = wp_alloc(sizeof(struct wp_worker) * pool->nthreads);
    if (!pool->queues || !pool->workers)
        return -ENOMEM;
    for (unsigned int i = 0; i < pool->nqueues; i++) {
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
    return 0;
}

/* Starts every worker with all signals blocked (they inherit the mask), so
 * that the host's signals are delivered to its own threads. */
static int wp_start_workers(struct wpool *pool)
{
    sigset_t all, old;
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc)
        return -rc;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (unsigned int i = 0; i < pool->nthreads && rc == 0; i++) {
        struct wp_worker *w = &pool->workers[i];
        w->pool = pool;
        w->index = i;
        if (pool->pin) {
            const cpu_set_t *cpus = &pool->topo.cores[i % pool->topo.ncores];
            rc = pthread_attr_setaffinity_np(&attr, sizeof(cpu_set_t), cpus);
            if (rc)
                break;
        }
        rc = pthread_create(&w->thread, &attr, wp_worker_main, w);
        w->started = rc == 0;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    return -rc;
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
    struct wpool *pool = wp_alloc(sizeof(*pool));
    if (!pool)
        return -ENOMEM;
    wp_park_init(&pool->park);
    atomic_init(&pool->rr_next, 0);
    atomic_init(&pool->cancel_queued, 0);
    pthread_mutex_init(&pool->lock, NULL);
    pthread_cond_init(&pool->life_changed, NULL);
    pool->life = WP_OPEN;
    rc = wp_pool_alloc(pool, opts);
    if (rc == 0)
        rc = wp_start_workers(pool);
    if (rc) {
        if (pool->queues && pool->workers)
            wp_stop_workers(pool, true);
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

int wpool_close(wpool_t *pool)
{
    if (!pool)
        return -EINVAL;
    if (wp_on_own_worker(pool))
        return -EDEADLK;
    pthread_mutex_lock(&pool->lock);
    if (pool->life == WP_OPEN) {
        pool->life = WP_CLOSING;
        pthread_mutex_unlock(&pool->lock);
        wp_stop_workers(pool, false); /* lock released: tasks may take it */
        pthread_mutex_lock(&pool->lock);
        pool->life = WP_CLOSED;
        pthread_cond_broadcast(&pool->life_changed);
    }
    while (pool->life == WP_CLOSING) /* another thread is closing: wait for it */
        pthread_cond_wait(&pool->life_changed, &pool->lock);
    pthread_mutex_unlock(&pool->lock);
    return 0;
}

static bool wp_any_port_dispatching(struct wpool *pool)
{
    for (struct wpool_port *p = pool->ports; p; p = p->next)
        if (atomic_load_explicit(&p->in_dispatch, memory_order_relaxed))
            return true;
    return false;
}

/* Runs, on the calling thread, every completion nobody dispatched. Callbacks
 * may call back into the pool (submit gets -ESHUTDOWN, destroy -EBUSY,
 * port_destroy of a port with completions -EBUSY), so the list is re-scanned
 * under the lock each round and no port is freed until none has work. */
static void wp_deliver_leftovers(struct wpool *pool)
{
    for (;;) {
        struct wpool_port *busy = NULL;
        pthread_mutex_lock(&pool->lock);
        for (struct wpool_port *p = pool->ports; p && !busy; p = p->next)
            if (wp_port_has_work(p))
                busy = p;
        pthread_mutex_unlock(&pool->lock);
        if (!busy)
            return;
        wp_port_run(busy, UINT_MAX);
    }
}

int wpool_destroy(wpool_t *pool)
{
    if (!pool)
        return 0;
    if (wp_on_own_worker(pool))
        return -EDEADLK;
    pthread_mutex_lock(&pool->lock);
    while (pool->life == WP_CLOSING)
        pthread_cond_wait(&pool->life_changed, &pool->lock);
    if (pool->life == WP_DESTROYING || wp_any_port_dispatching(pool)) {
        pthread_mutex_unlock(&pool->lock);
        return -EBUSY;
    }
    bool was_open = pool->life == WP_OPEN;
    pool->life = WP_DESTROYING;
    pthread_mutex_unlock(&pool->lock);
    if (was_open)
        wp_stop_workers(pool, true); /* lock released: tasks may take it */
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
    void *data = task->data;
    memset(task, 0, sizeof(*task));
    task->data = data;
    task->wp_work = work;
    task->wp_done = done;
    __atomic_store_n(&task->wp_magic, WP_TASK_MAGIC, __ATOMIC_RELAXED);
    return 0;
}

int wpool_task_set_port(struct wpool_task *task, wpool_port_t *port)
{
    if (!wp_task_valid(task))
        return -EINVAL;
    if (wp_task_state(task) != WP_TASK_IDLE)
        return -EBUSY;
    task->wp_target = port;
    return 0;
}

/* Reserves a slot: the policy's queue first; with ROUND_ROBIN the others if it
 * is full. A full queue first gets its cancelled cells at the tail reclaimed. */
static int wp_reserve(struct wpool *pool, struct wp_queue **qp, uint64_t *pos)
{
    unsigned int n = pool->nqueues, i = 0;
    if (n > 1) {
        /* Relaxed load + store, not an RMW: a lost update only skews the
         * rotation, and submitters do not contend on a locked instruction. */
        i = atomic_load_explicit(&pool->rr_next, memory_order_relaxed);
        if (i >= n)
            i = 0;
        atomic_store_explicit(&pool->rr_next, i + 1 < n ? i + 1 : 0, memory_order_relaxed);
    }
    for (unsigned int k = 0; k < n; k++) {
        struct wp_queue *q = &pool->queues[i];
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

int wpool_submit(wpool_t *pool, struct wpool_task *t)
{
    if (!pool || !wp_task_valid(t))
        return -EINVAL;
    struct wpool_port *port = t->wp_target ? t->wp_target : pool->default_port;
    if (port->pool != pool)
        return -EINVAL;
    uint32_t idle = WP_TASK_IDLE;
    /* Acquire: pairs with the release in wp_port_complete when the previous
     * completion of this record ran on another thread. A closed pool wins
     * over a busy task; checked only here, off the hot path (the reserve
     * below reports a close by itself). */
    if (!__atomic_compare_exchange_n(&t->wp_state, &idle, WP_TASK_INFLIGHT, false, __ATOMIC_ACQUIRE,
                                     __ATOMIC_RELAXED))
        return wp_queue_closed(&pool->queues[0]) ? -ESHUTDOWN : -EBUSY;
    struct wp_queue *q;
    uint64_t pos;
    int rc = wp_reserve(pool, &q, &pos);
    if (WP_UNLIKELY(rc)) {
        __atomic_store_n(&t->wp_state, WP_TASK_IDLE, __ATOMIC_RELEASE);
        return rc;
    }
    t->wp_port = port;
    /* Relaxed: published to the owner with the task through the port. */
    atomic_fetch_add_explicit(&port->inflight, 1, memory_order_relaxed);
    /* Relaxed: wpool_cancel reads these racily and trusts only its CAS on the
     * cell (see wp_queue_cancel). */
    __atomic_store_n(&t->wp_queue, q, __ATOMIC_RELAXED);
    __atomic_store_n(&t->wp_pos, pos, __ATOMIC_RELAXED);
    wp_queue_publish(q, pos, t);
    /* Nothing may touch t from here on: a worker may already have completed
     * it. The publish was a seq_cst RMW, as wp_park_notify requires. */
    wp_park_notify(&pool->park, 1);
    return 0;
}

int wpool_cancel(struct wpool_task *t)
{
    if (!wp_task_valid(t))
        return -EINVAL;
    if (wp_task_state(t) != WP_TASK_INFLIGHT)
        return -EBUSY;
    struct wp_queue *q = __atomic_load_n(&t->wp_queue, __ATOMIC_RELAXED);
    uint64_t pos = __atomic_load_n(&t->wp_pos, __ATOMIC_RELAXED);
    if (!q || !wp_queue_cancel(q, pos, t))
        return -EBUSY;
    /* We own the task now, exactly as a worker that popped it would. */
    __atomic_store_n(&t->wp_queue, NULL, __ATOMIC_RELAXED);
    t->wp_status = -ECANCELED;
    wp_port_post(t->wp_port, t);
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
    if (port->is_default)
        return -EINVAL;
    if (!pthread_equal(port->owner, pthread_self()))
        return -EPERM;
    if (atomic_load_explicit(&port->in_dispatch, memory_order_relaxed) ||
        atomic_load_explicit(&port->inflight, memory_order_acquire) != 0)
        return -EBUSY;
    struct wpool *pool = port->pool;
    pthread_mutex_lock(&pool->lock);
    struct wpool_port **link = &pool->ports;
    while (*link != port)
        link = &(*link)->next;
    *link = port->next;
    pthread_mutex_unlock(&pool->lock);
    wp_port_quiesce(port);
    wp_port_free(port);
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
