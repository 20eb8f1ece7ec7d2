#include "stats.h"

#include <string.h>

unsigned int wp_hist_bucket(uint64_t us)
{
    if (us < 16)
        return (unsigned int)us;
    unsigned int e = 63u - (unsigned int)__builtin_clzll(us); /* 2^e <= us, e >= 4 */
    unsigned int b = (e - 3u) * 16u + (unsigned int)((us >> (e - 4u)) & 15u);
    return b < WP_HIST_BUCKETS ? b : WP_HIST_BUCKETS - 1;
}

uint64_t wp_hist_bucket_top(unsigned int b)
{
    if (b < 16)
        return b;
    unsigned int e = b / 16u + 3u, sub = b % 16u;
    uint64_t low = (uint64_t)(16u + sub) << (e - 4u);
    return low + ((uint64_t)1 << (e - 4u)) - 1;
}

static void wp_hist_clear(struct wp_hist *h)
{
    for (unsigned int i = 0; i < WP_HIST_BUCKETS; i++)
        atomic_store_explicit(&h->count[i], 0, memory_order_relaxed);
    atomic_store_explicit(&h->sum_ns, 0, memory_order_relaxed);
    atomic_store_explicit(&h->max_ns, 0, memory_order_relaxed);
}

static void wp_hist_add(struct wp_hist *h, uint64_t ns)
{
    wp_stat_add(&h->count[wp_hist_bucket(ns / 1000u)], 1);
    wp_stat_add(&h->sum_ns, ns);
    if (ns > atomic_load_explicit(&h->max_ns, memory_order_relaxed))
        atomic_store_explicit(&h->max_ns, ns, memory_order_relaxed);
}

void wp_stats_record(struct wp_wstats *s, uint64_t epoch, uint64_t wait_ns, uint64_t run_ns)
{
    if (atomic_load_explicit(&s->epoch, memory_order_relaxed) != epoch) {
        wp_hist_clear(&s->wait);
        wp_hist_clear(&s->run);
        atomic_store_explicit(&s->busy_ns, 0, memory_order_relaxed);
        /* Release: a reader that sees the new epoch sees the cleared data. */
        atomic_store_explicit(&s->epoch, epoch, memory_order_release);
    }
    wp_hist_add(&s->wait, wait_ns);
    wp_hist_add(&s->run, run_ns);
    wp_stat_add(&s->busy_ns, run_ns);
}

static void wp_hist_merge(const struct wp_hist *h, struct wp_hist_sum *sum)
{
    for (unsigned int i = 0; i < WP_HIST_BUCKETS; i++) {
        uint64_t c = atomic_load_explicit(&h->count[i], memory_order_relaxed);
        sum->count[i] += c;
        sum->n += c;
    }
    sum->sum_ns += atomic_load_explicit(&h->sum_ns, memory_order_relaxed);
    uint64_t max = atomic_load_explicit(&h->max_ns, memory_order_relaxed);
    if (max > sum->max_ns)
        sum->max_ns = max;
}

uint64_t wp_stats_merge(const struct wp_wstats *s, uint64_t epoch, struct wp_hist_sum *wait,
                        struct wp_hist_sum *run)
{
    /* Acquire: pairs with the worker's release store of its epoch. */
    if (atomic_load_explicit(&s->epoch, memory_order_acquire) != epoch)
        return 0;
    wp_hist_merge(&s->wait, wait);
    wp_hist_merge(&s->run, run);
    return atomic_load_explicit(&s->busy_ns, memory_order_relaxed);
}

static uint64_t wp_quantile(const struct wp_hist_sum *sum, double q)
{
    /* The smallest bucket whose cumulative count reaches ceil(q * n). */
    uint64_t want = (uint64_t)(q * (double)sum->n);
    if ((double)want < q * (double)sum->n)
        want++;
    if (want == 0)
        want = 1;
    uint64_t seen = 0, max_us = sum->max_ns / 1000u;
    for (unsigned int i = 0; i < WP_HIST_BUCKETS; i++) {
        seen += sum->count[i];
        if (seen >= want) {
            uint64_t top = wp_hist_bucket_top(i);
            return top < max_us ? top : max_us;
        }
    }
    return max_us;
}

void wp_stats_summarise(const struct wp_hist_sum *sum, struct wpool_histogram *out)
{
    memset(out, 0, sizeof(*out));
    out->count = sum->n;
    if (!sum->n)
        return;
    out->p50_us = wp_quantile(sum, 0.50);
    out->p90_us = wp_quantile(sum, 0.90);
    out->p99_us = wp_quantile(sum, 0.99);
    out->p999_us = wp_quantile(sum, 0.999);
    out->max_us = sum->max_ns / 1000u;
    out->mean_us = (double)sum->sum_ns / 1000.0 / (double)sum->n;
}
