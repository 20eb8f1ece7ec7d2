/* SPDX-License-Identifier: MIT */
/*
 * Work classes: one lane per class, with its rules (a cap on the workers
 * running its tasks, workers reserved for it, a weight) and its own
 * backpressure and statistics. Lanes 0 and 1 are the two priorities, made
 * with the pool; wpool_class_create adds the others while the pool runs.
 *
 * A lane is published once: its rules are written, then its rings pointer
 * is stored with release (readers load it with acquire, wp_lane), and only
 * then is the lane counted in `nlanes` and put in the round robin's `order`.
 * A lane lives until the pool is freed. How workers choose among lanes
 * (weights, caps, reserved workers) is in worker.c; docs/design.md
 * ("Work classes") has the argument.
 */
#include "alloc.h"
#include "pool.h"
#include "task.h"

#include <errno.h>
#include <string.h>

void wpool_class_options_init(struct wpool_class_options *opts)
{
    if (!opts)
        return;
    memset(opts, 0, sizeof(*opts));
    opts->weight = 1;
    opts->max_queue = WPOOL_UNLIMITED;
    opts->drain_low_water = WPOOL_UNLIMITED;
    opts->lend_after_us = WPOOL_DEFAULT_LEND_AFTER_US;
}

/* The round robin's order: lanes by weight, heaviest first (ties: lower
 * lane first), 4 bits each, and n in the high half. Under the pool's lock. */
static uint64_t wp_order(const struct wpool *pool, unsigned int n)
{
    int lanes[WP_LANES];
    for (unsigned int i = 0; i < n; i++) {
        unsigned int j = i;
        while (j > 0 && pool->lanes[lanes[j - 1]].weight < pool->lanes[i].weight) {
            lanes[j] = lanes[j - 1];
            j--;
        }
        lanes[j] = (int)i;
    }
    uint64_t order = (uint64_t)n << 32;
    for (unsigned int i = 0; i < n; i++)
        order |= (uint64_t)lanes[i] << (4 * i);
    return order;
}

/* Allocates and publishes lane l's rings (release: the lane's rules are
 * written before). */
static int wp_lane_open(struct wpool *pool, int l, uint32_t capacity)
{
    struct wp_class *c = &pool->lanes[l];
    struct wp_queue *rings = wp_alloc(sizeof(*rings) * pool->nqueues);
    if (!rings)
        return -ENOMEM;
    for (unsigned int i = 0; i < pool->nqueues; i++) {
        int rc = wp_queue_init(&rings[i], capacity);
        if (rc) {
            while (i--)
                wp_queue_fini(&rings[i]);
            wp_free(rings);
            return rc;
        }
    }
    /* Release: pairs with wp_lane's acquire load. */
    atomic_store_explicit(&c->rings, rings, memory_order_release);
    return 0;
}

void wp_classes_init(struct wpool *pool)
{
    for (int l = 0; l < WP_LANES; l++) {
        struct wp_class *c = &pool->lanes[l];
        atomic_init(&c->rings, NULL);
        wp_overflow_init(&c->overflow, pool);
        wp_park_init(&c->space, false);
        /* Its reserved workers' nodes live in pool->workers: late wakes. */
        wp_park_init(&c->home, true);
        atomic_init(&c->running, 0);
        atomic_init(&c->turned, 0);
        atomic_init(&c->waiting, 0);
        atomic_init(&c->refusals, 0);
        atomic_init(&c->withdrawn, 0);
        c->weight = 1;
    }
    pool->lanes[WPOOL_CLASS_HIGH].weight = WPOOL_HIGH_BURST;
    atomic_init(&pool->nlanes, 2);
    atomic_init(&pool->order, wp_order(pool, 2));
    atomic_init(&pool->used, 0);
}

int wp_classes_open(struct wpool *pool, uint32_t high_cap)
{
    int rc = wp_lane_open(pool, WPOOL_CLASS_NORMAL, pool->capacity);
    return rc ? rc : wp_lane_open(pool, WPOOL_CLASS_HIGH, high_cap);
}

void wp_classes_fini(struct wpool *pool, bool forked)
{
    for (int l = 0; l < WP_LANES; l++) {
        struct wp_class *c = &pool->lanes[l];
        struct wp_queue *rings = atomic_load_explicit(&c->rings, memory_order_relaxed);
        if (rings)
            for (unsigned int i = 0; i < pool->nqueues; i++)
                wp_queue_fini(&rings[i]);
        wp_free(rings);
        wp_free(c->hist);
        /* In a forked child the parent's locks may be held: memory only. */
        if (forked)
            continue;
        if (c->limited)
            wp_drain_fini(&c->drain);
        wp_park_fini(&c->space);
        wp_park_fini(&c->home);
        wp_overflow_fini(&c->overflow);
    }
}

bool wp_lane_backlog(struct wpool *pool, int lane)
{
    struct wp_queue *qs = wp_lane(pool, lane);
    for (unsigned int i = 0; i < pool->nqueues; i++)
        if (wp_queue_size(&qs[i]))
            return true;
    return wp_overflow_size(&pool->lanes[lane].overflow) != 0;
}

/* A capped class: claims a place among the workers running its tasks.
 * seq_cst: the Dekker with a worker that found the class at its cap and
 * parks (it registers, then re-reads `running` in its re-check; a release
 * lowers `running`, then reads the backlog and the parks' waiters). */
bool wp_cap_claim(struct wp_class *c)
{
    for (;;) {
        int r = atomic_load_explicit(&c->running, memory_order_seq_cst);
        while (r < (int)c->cap)
            /* seq_cst: see above. */
            if (atomic_compare_exchange_weak_explicit(&c->running, &r, r + 1, memory_order_seq_cst,
                                                      memory_order_seq_cst))
                return true;
        /* Turned away: say so, then look at `running` again. A holder that
         * gives its place back without running a task lowers `running`,
         * then exchanges `turned` (wp_take_class): either it sees our flag
         * and wakes a worker, or we see the place it freed and claim again
         * (the Dekker pair; without the second look a wake is lost: Spin,
         * classcap-turnednoreload). seq_cst, all four. */
        if (!atomic_load_explicit(&c->turned, memory_order_seq_cst))
            atomic_store_explicit(&c->turned, 1, memory_order_seq_cst);
        if (atomic_load_explicit(&c->running, memory_order_seq_cst) >= (int)c->cap)
            return false;
    }
}

/* Gives a claimed place back; then, if the class has tasks, a worker that
 * found it at its cap may be asleep: wake one (wp_cap_recheck). seq_cst:
 * the Dekker above. */
void wp_cap_release(struct wp_class *c)
{
    atomic_fetch_sub_explicit(&c->running, 1, memory_order_seq_cst);
}

void wp_cap_recheck(struct wpool *pool, int lane)
{
    if (wp_lane_backlog(pool, lane))
        wp_wake_for(pool, lane);
}

static int wp_class_check(const struct wpool *pool, const struct wpool_class_options *o)
{
    if (o->weight < 1 || o->weight > WPOOL_MAX_WEIGHT || o->lend_after_us > 10000000u)
        return -EINVAL;
    if (o->max_workers > pool->nthreads)
        return -EINVAL;
    if (o->max_workers && o->reserved_workers > o->max_workers)
        return -EINVAL;
    if (o->drain_low_water != WPOOL_UNLIMITED &&
        (o->max_queue == WPOOL_UNLIMITED || o->drain_low_water >= o->max_queue))
        return -EINVAL;
    for (size_t i = 0; i < sizeof(o->spare) / sizeof(o->spare[0]); i++)
        if (o->spare[i])
            return -EINVAL;
    return 0;
}

/* Reserves n workers for lane l, from the highest index down, among those
 * not reserved yet. Under the pool's lock. Release: a worker that sees its
 * home (acquire) sees the lane's rules and its lend time. */
static void wp_reserve_workers(struct wpool *pool, int l, unsigned int n)
{
    uint64_t now = wp_clock_ns();
    for (unsigned int i = pool->nthreads; i-- > 0 && n > 0;) {
        struct wp_worker *w = &pool->workers[i];
        if (atomic_load_explicit(&w->home, memory_order_relaxed))
            continue;
        w->lend_at = now + pool->lanes[l].lend_ns;
        atomic_store_explicit(&w->home, l, memory_order_release); /* pairs: wp_take's acquire */
        n--;
    }
    /* A worker asleep on the pool's park moves to its home park when it
     * next looks (the notify's lock orders its re-read after the store). */
    wp_park_notify_all(&pool->park);
}

int wpool_class_create(wpool_t *pool, const struct wpool_class_options *opts)
{
    struct wpool_class_options defaults;
    if (!pool)
        return -EINVAL;
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    if (!opts) {
        wpool_class_options_init(&defaults);
        opts = &defaults;
    }
    int rc = wp_class_check(pool, opts);
    if (rc)
        return rc;
    /* Under the pool's lock: while it is open (a close closes every lane
     * it sees, under the same lock), one creator at a time. */
    pthread_mutex_lock(&pool->lock);
    unsigned int l = atomic_load_explicit(&pool->nlanes, memory_order_relaxed);
    if (pool->life != WP_OPEN)
        rc = -ESHUTDOWN;
    else if (l >= WP_LANES || (opts->reserved_workers &&
                               pool->reserved_total + opts->reserved_workers >= pool->nthreads))
        rc = -ENOSPC; /* the pool keeps one worker unreserved */
    struct wp_class *c = &pool->lanes[l];
    if (rc == 0) {
        c->cap = opts->max_workers < pool->nthreads ? opts->max_workers : 0;
        c->reserved = opts->reserved_workers;
        c->weight = opts->weight;
        c->lend_ns = (uint64_t)opts->lend_after_us * 1000u;
        c->limited = opts->max_queue != WPOOL_UNLIMITED;
        c->max_queue = opts->max_queue;
        c->hist = wp_alloc(sizeof(*c->hist));
        rc = c->hist ? 0 : -ENOMEM;
    }
    if (rc == 0 && c->limited) {
        int64_t low = opts->drain_low_water != WPOOL_UNLIMITED ? opts->drain_low_water
                      : opts->max_queue                        ? (int64_t)(opts->max_queue / 2)
                                                               : 0;
        wp_drain_init(&c->drain, pool, (int)l, low);
    }
    if (rc == 0) {
        uint32_t cells =
            pool->bounded || pool->capacity < WP_HIGH_RING ? pool->capacity : WP_HIGH_RING;
        rc = wp_lane_open(pool, (int)l, cells);
        if (rc && c->limited)
            wp_drain_fini(&c->drain);
    }
    if (rc == 0) {
        /* Release: pairs with wp_take_weighted's acquire load (it reads the
         * weights of the lanes named). */
        atomic_store_explicit(&pool->order, wp_order(pool, l + 1), memory_order_release);
        /* Release: pairs with wp_nlanes's acquire load. */
        atomic_store_explicit(&pool->nlanes, l + 1, memory_order_release);
        pool->reserved_total += c->reserved;
        wp_reserve_workers(pool, (int)l, c->reserved);
    } else if (l < WP_LANES) {
        c->limited = false;
        wp_free(c->hist);
        c->hist = NULL;
    }
    pthread_mutex_unlock(&pool->lock);
    return rc ? rc : (int)l;
}

int wpool_class_stats(wpool_t *pool, int cls, struct wpool_class_statistics *out)
{
    if (!pool || !out || cls < 0 || cls >= WP_LANES || !wp_lane(pool, cls))
        return -EINVAL;
    if (wp_forked(pool->generation))
        return -EOWNERDEAD;
    struct wp_class *c = &pool->lanes[cls];
    memset(out, 0, sizeof(*out));
    /* Relaxed: counters and gauges, each exact on its own. */
    for (unsigned int i = 0; i < pool->nthreads; i++) {
        struct wp_worker *w = &pool->workers[i];
        out->completed += atomic_load_explicit(&w->lane_count[cls][0], memory_order_relaxed);
        out->cancelled += atomic_load_explicit(&w->lane_count[cls][1], memory_order_relaxed);
        out->timed_out += atomic_load_explicit(&w->lane_count[cls][2], memory_order_relaxed);
        out->running += atomic_load_explicit(&w->lane, memory_order_relaxed) == cls;
    }
    out->cancelled += atomic_load_explicit(&c->withdrawn, memory_order_relaxed);
    out->refused = atomic_load_explicit(&c->refusals, memory_order_relaxed);
    struct wp_queue *qs = wp_lane(pool, cls);
    for (unsigned int i = 0; i < pool->nqueues; i++)
        out->queued += wp_queue_size(&qs[i]);
    out->queued += wp_overflow_size(&c->overflow);
    if (c->hist) {
        /* On the heap, as a task may call this on a small worker stack. */
        struct wp_hist_sum *sums = wp_alloc(2 * sizeof(*sums));
        if (!sums)
            return -ENOMEM;
        wp_hist_merge(&c->hist->wait, &sums[0]);
        wp_hist_merge(&c->hist->run, &sums[1]);
        double tpu = wp_ticks_per_us(pool);
        wp_stats_summarise(&sums[0], tpu, &out->wait);
        wp_stats_summarise(&sums[1], tpu, &out->run);
        wp_free(sums);
    }
    return 0;
}
