/* SPDX-License-Identifier: MIT */
#include "stats.h"

#include <string.h>

unsigned int wp_hist_bucket(uint64_t v)
{
    if (v < 16)
        return (unsigned int)v;
    unsigned int e = 63u - (unsigned int)__builtin_clzll(v); /* 2^e <= v, 4 <= e <= 63 */
    return (e - 3u) * 16u + (unsigned int)((v >> (e - 4u)) & 15u);
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
    atomic_store_explicit(&h->sum, 0, memory_order_relaxed);
    atomic_store_explicit(&h->max, 0, memory_order_relaxed);
}

static void wp_hist_add(struct wp_hist *h, uint64_t v)
{
    wp_stat_add(&h->count[wp_hist_bucket(v)], 1);
    wp_stat_add(&h->sum, v);
    if (v > atomic_load_explicit(&h->max, memory_order_relaxed))
        atomic_store_explicit(&h->max, v, memory_order_relaxed);
}

void wp_hist_add_shared(struct wp_hist *h, uint64_t v)
{
    atomic_fetch_add_explicit(&h->count[wp_hist_bucket(v)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, v, memory_order_relaxed);
    uint64_t max = atomic_load_explicit(&h->max, memory_order_relaxed);
    while (v > max && !atomic_compare_exchange_weak_explicit(&h->max, &max, v, memory_order_relaxed,
                                                             memory_order_relaxed))
        ;
}

void wp_stats_record(struct wp_wstats *s, uint64_t epoch, uint64_t wait, uint64_t run,
                     uint64_t busy)
{
    if (atomic_load_explicit(&s->epoch, memory_order_relaxed) != epoch) {
        wp_hist_clear(&s->wait);
        wp_hist_clear(&s->run);
        atomic_store_explicit(&s->busy, 0, memory_order_relaxed);
        /* Release: a reader that sees the new epoch sees the cleared data. */
        atomic_store_explicit(&s->epoch, epoch, memory_order_release);
    }
    wp_hist_add(&s->wait, wait);
    wp_hist_add(&s->run, run);
    wp_stat_add(&s->busy, busy);
}

void wp_ehist_record(struct wp_ehist *e, uint64_t epoch, uint64_t v)
{
    if (atomic_load_explicit(&e->epoch, memory_order_relaxed) != epoch) {
        wp_hist_clear(&e->h);
        /* Release: a reader that sees the new epoch sees the cleared data. */
        atomic_store_explicit(&e->epoch, epoch, memory_order_release);
    }
    wp_hist_add(&e->h, v);
}

void wp_hist_merge(const struct wp_hist *h, struct wp_hist_sum *sum)
{
    for (unsigned int i = 0; i < WP_HIST_BUCKETS; i++) {
        uint64_t c = atomic_load_explicit(&h->count[i], memory_order_relaxed);
        sum->count[i] += c;
        sum->n += c;
    }
    sum->sum += atomic_load_explicit(&h->sum, memory_order_relaxed);
    uint64_t max = atomic_load_explicit(&h->max, memory_order_relaxed);
    if (max > sum->max)
        sum->max = max;
}

uint64_t wp_stats_merge(const struct wp_wstats *s, uint64_t epoch, struct wp_hist_sum *wait,
                        struct wp_hist_sum *run)
{
    /* Acquire: pairs with the worker's release store of its epoch. */
    if (atomic_load_explicit(&s->epoch, memory_order_acquire) != epoch)
        return 0;
    wp_hist_merge(&s->wait, wait);
    wp_hist_merge(&s->run, run);
    return atomic_load_explicit(&s->busy, memory_order_relaxed);
}

void wp_ehist_merge(const struct wp_ehist *e, uint64_t epoch, struct wp_hist_sum *sum)
{
    /* Acquire: pairs with the writer's release store of its epoch. */
    if (atomic_load_explicit(&e->epoch, memory_order_acquire) == epoch)
        wp_hist_merge(&e->h, sum);
}

static uint64_t wp_us(uint64_t ticks, double ticks_per_us)
{
    return (uint64_t)((double)ticks / ticks_per_us);
}

static uint64_t wp_quantile(const struct wp_hist_sum *sum, double q, double tpu)
{
    /* The smallest bucket whose cumulative count reaches ceil(q * n). */
    uint64_t want = (uint64_t)(q * (double)sum->n);
    if ((double)want < q * (double)sum->n)
        want++;
    if (want == 0)
        want = 1;
    uint64_t seen = 0;
    for (unsigned int i = 0; i < WP_HIST_BUCKETS; i++) {
        seen += sum->count[i];
        if (seen >= want) {
            uint64_t top = wp_hist_bucket_top(i);
            return wp_us(top < sum->max ? top : sum->max, tpu);
        }
    }
    return wp_us(sum->max, tpu);
}

void wp_stats_summarise(const struct wp_hist_sum *sum, double tpu, struct wpool_histogram *out)
{
    memset(out, 0, sizeof(*out));
    out->count = sum->n;
    if (!sum->n)
        return;
    out->p50_us = wp_quantile(sum, 0.50, tpu);
    out->p90_us = wp_quantile(sum, 0.90, tpu);
    out->p99_us = wp_quantile(sum, 0.99, tpu);
    out->p999_us = wp_quantile(sum, 0.999, tpu);
    out->max_us = wp_us(sum->max, tpu);
    out->mean_us = (double)sum->sum / tpu / (double)sum->n;
}
