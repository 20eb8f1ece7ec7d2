/*
 * Statistics: per-worker counters and latency histograms, each written only by
 * its worker (plain load + store, no locked instruction) on the worker's own
 * cache lines, and merged when someone reads them.
 *
 * Histograms are log-linear in microseconds: values below 16 us get a bucket
 * each, every power of two above gets 16 equal buckets, so a bucket's top is
 * at most 1/16 above any value in it. 608 buckets reach 2^40 us (12 days).
 *
 * Reset without stopping workers: wpool_stats_reset bumps the pool's epoch; a
 * worker that sees a new epoch zeroes its own histograms before recording, and
 * readers skip workers still on an older epoch (they recorded nothing since).
 */
#ifndef WP_STATS_H
#define WP_STATS_H

#include "common.h"
#include "wpool.h"

#include <stdint.h>
#include <time.h>

#define WP_HIST_BUCKETS 608

struct wp_hist {
    _Atomic uint64_t count[WP_HIST_BUCKETS];
    _Atomic uint64_t sum_ns;
    _Atomic uint64_t max_ns;
};

struct wp_wstats {
    /* Totals since creation, never reset. */
    _Atomic uint64_t ran;
    _Atomic uint64_t cancelled;
    _Atomic uint64_t timed_out;
    _Atomic int busy; /* running a task now */
    /* Since the epoch's reset. */
    _Atomic uint64_t epoch;
    _Atomic uint64_t busy_ns;
    struct wp_hist wait;
    struct wp_hist run;
};

/* Sum of every worker's view, taken by a reader. */
struct wp_hist_sum {
    uint64_t count[WP_HIST_BUCKETS];
    uint64_t n, sum_ns, max_ns;
};

static inline uint64_t wp_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Single-writer increment: only the owning worker writes c. */
static inline void wp_stat_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

/* Worker side: records one task's wait and run times under `epoch`. */
void wp_stats_record(struct wp_wstats *s, uint64_t epoch, uint64_t wait_ns, uint64_t run_ns);
/* Reader side: adds s's histograms to the sums if s is on `epoch`; returns
 * its busy_ns then, else 0. */
uint64_t wp_stats_merge(const struct wp_wstats *s, uint64_t epoch, struct wp_hist_sum *wait,
                        struct wp_hist_sum *run);
/* Fills a public histogram from a sum. */
void wp_stats_summarise(const struct wp_hist_sum *sum, struct wpool_histogram *out);
/* Bucket of a value in microseconds, and the largest value in a bucket. */
unsigned int wp_hist_bucket(uint64_t us);
uint64_t wp_hist_bucket_top(unsigned int b);

#endif
