/* SPDX-License-Identifier: MIT */
/*
 * Statistics: per-worker counters and latency histograms, each written only by
 * its worker (plain load + store, no locked instruction) on the worker's own
 * cache lines, and merged when someone reads them.
 *
 * Times are taken in ticks of the cheapest clock there is: the TSC on x86-64
 * (rdtsc, invariant on any CPU Linux marks constant_tsc), CLOCK_MONOTONIC
 * nanoseconds elsewhere. Ticks become microseconds only when read, with the
 * rate measured over the pool's life against CLOCK_MONOTONIC.
 *
 * Histograms are log-linear in ticks: values below 16 get a bucket each,
 * every power of two above gets 16 equal buckets, so a bucket's top is at most
 * 1/16 above any value in it.
 *
 * Reset without stopping workers: the pool's epoch is the tick of its creation
 * or of the last wpool_stats_reset (strictly increasing), so one atomic word
 * names both the epoch and the start of the time it covers: a reader cannot
 * pair one reset's epoch with another's start. A worker that sees a new epoch
 * zeroes its own histograms before recording, and counts as busy only the
 * part of a task's run after the epoch began (a task that started before a
 * reset would otherwise push utilization above 1); readers skip workers still
 * on an older epoch (they recorded nothing since).
 */
#ifndef WP_STATS_H
#define WP_STATS_H

#include "clock.h"
#include "common.h"
#include "wpool.h"

#include <stdint.h>

#define WP_HIST_BUCKETS 976 /* (64 - 3) * 16: every 64-bit value */

struct wp_hist {
    _Atomic uint64_t count[WP_HIST_BUCKETS];
    _Atomic uint64_t sum; /* ticks */
    _Atomic uint64_t max;
};

struct wp_wstats {
    /* Totals since creation, never reset. */
    _Atomic uint64_t ran;
    _Atomic uint64_t cancelled;
    _Atomic uint64_t timed_out;
    _Atomic int running; /* running a task now */
    /* Since the epoch's reset. */
    _Atomic uint64_t epoch;
    _Atomic uint64_t busy; /* ticks running tasks */
    struct wp_hist wait;
    struct wp_hist run;
};

/* A histogram with one writer at a time (under a lock), on the pool's epoch
 * like a worker's: the pool's pending times (defer.c). */
struct wp_ehist {
    _Atomic uint64_t epoch;
    struct wp_hist h;
};

/* Sum of every worker's view, taken by a reader. */
struct wp_hist_sum {
    uint64_t count[WP_HIST_BUCKETS];
    uint64_t n, sum, max; /* ticks */
};

/* Single-writer increment: only the owning worker writes c. */
static inline void wp_stat_add(_Atomic uint64_t *c, uint64_t v)
{
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + v,
                          memory_order_relaxed);
}

/* What became of a task a worker took. */
enum wp_outcome { WP_RAN, WP_CANCELLED, WP_TIMED_OUT };

/* Counts one task's outcome (the owning worker only). */
static inline void wp_stats_count(struct wp_wstats *s, enum wp_outcome o)
{
    wp_stat_add(o == WP_RAN ? &s->ran : o == WP_CANCELLED ? &s->cancelled : &s->timed_out, 1);
}

/* The worker is inside a work function (1) or not (0). Relaxed: a gauge. */
static inline void wp_stats_running(struct wp_wstats *s, int running)
{
    atomic_store_explicit(&s->running, running, memory_order_relaxed);
}

/* Adds the worker's totals to a reader's (any thread; relaxed, each exact). */
static inline void wp_stats_totals(const struct wp_wstats *s, uint64_t *ran, uint64_t *cancelled,
                                   uint64_t *timed_out, unsigned int *running)
{
    *ran += atomic_load_explicit(&s->ran, memory_order_relaxed);
    *cancelled += atomic_load_explicit(&s->cancelled, memory_order_relaxed);
    *timed_out += atomic_load_explicit(&s->timed_out, memory_order_relaxed);
    *running += (unsigned int)atomic_load_explicit(&s->running, memory_order_relaxed);
}

/* Worker side: records one task's wait and run times (ticks) under `epoch`,
 * and `busy`, its run time since the epoch began. */
void wp_stats_record(struct wp_wstats *s, uint64_t epoch, uint64_t wait, uint64_t run,
                     uint64_t busy);
/* Reader side: adds s's histograms to the sums if s is on `epoch`; returns
 * its busy ticks then, else 0. */
uint64_t wp_stats_merge(const struct wp_wstats *s, uint64_t epoch, struct wp_hist_sum *wait,
                        struct wp_hist_sum *run);
/* The same for a wp_ehist: record a value (its writer), merge (a reader). */
void wp_ehist_record(struct wp_ehist *e, uint64_t epoch, uint64_t v);
void wp_ehist_merge(const struct wp_ehist *e, uint64_t epoch, struct wp_hist_sum *sum);
/* A histogram with several writers (relaxed RMWs): a class's. */
void wp_hist_add_shared(struct wp_hist *h, uint64_t v);
/* Adds a histogram to a reader's sum. */
void wp_hist_merge(const struct wp_hist *h, struct wp_hist_sum *sum);
/* Fills a public histogram from a sum, at ticks_per_us. */
void wp_stats_summarise(const struct wp_hist_sum *sum, double ticks_per_us,
                        struct wpool_histogram *out);
/* Bucket of a value, and the largest value in a bucket. */
unsigned int wp_hist_bucket(uint64_t v);
uint64_t wp_hist_bucket_top(unsigned int b);

#endif
