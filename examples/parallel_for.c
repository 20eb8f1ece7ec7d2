/* SPDX-License-Identifier: MIT */
/*
 * A parallel for on top of a group: split a range into chunks, one task per
 * chunk, all members of one group, and get one completion on the event loop
 * when the whole range is done (with the first error, if a chunk failed).
 *
 * parallel_for() below is the helper: about thirty lines over the public
 * API, no allocation (the caller provides the chunk records). The program
 * sums a mix of i*i over [0, 50M) in 64 chunks, checks the sum against a
 * plain loop, and counts how often its loop woke up. Each member has its own
 * (here empty) completion callback, and a completion that finds the loop
 * idle wakes it: with chunks of under a millisecond that is a wakeup for
 * nearly every member when completions are signalled at once (the first
 * run, coalesce_us = 0). By default (the second run) the pool holds the
 * signal while the workers have more chunks to run, for up to
 * WPOOL_DEFAULT_COALESCE_US, and the loop wakes far fewer times.
 *
 * Build: meson compile -C build && ./build/examples/wpool-parallel-for
 */
#include <wpool.h>

#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <unistd.h>

/* ---- the helper ---------------------------------------------------------- */

typedef int (*range_fn)(void *arg, size_t lo, size_t hi);

struct chunk {
    struct wpool_task task; /* first: the work gets the chunk back */
    size_t lo, hi;
    range_fn fn;
    void *arg;
};

static int chunk_work(struct wpool_task *t)
{
    struct chunk *c = (struct chunk *)t;
    return c->fn(c->arg, c->lo, c->hi);
}

static void chunk_done(struct wpool_task *t, int status)
{
    (void)t, (void)status; /* the group's completion reports the outcome */
}

/* Runs fn over [lo, hi) in n chunks (n records from the caller, idle or
 * zero-filled) as members of `group`, which it seals: the group's completion
 * runs once, on its port, when every chunk is done. 0, or the first
 * submit error (the chunks accepted before it still complete, and so does
 * the group, sealed). */
static int parallel_for(wpool_t *pool, struct wpool_group *group, struct chunk *chunks,
                        unsigned int n, size_t lo, size_t hi, range_fn fn, void *arg)
{
    size_t len = hi - lo;
    int rc = 0;
    for (unsigned int i = 0; i < n && rc == 0; i++) {
        struct chunk *c = &chunks[i];
        c->lo = lo + len / n * i + (i < len % n ? i : len % n);
        c->hi = c->lo + len / n + (i < len % n);
        c->fn = fn;
        c->arg = arg;
        rc = wpool_task_init(&c->task, chunk_work, chunk_done);
        if (rc == 0)
            rc = wpool_task_set_group(&c->task, group);
        if (rc == 0)
            rc = wpool_submit(pool, &c->task);
    }
    int seal = wpool_group_seal(group);
    return rc ? rc : seal;
}

/* ---- the program --------------------------------------------------------- */

enum { CHUNKS = 64 };

static const size_t N = 50u * 1000u * 1000u;

/* A chunk's value: squares mixed with the running value (a chain the
 * compiler cannot turn into a closed form, so each chunk really works). */
static uint64_t chunk_value(size_t lo, size_t hi)
{
    uint64_t s = 0;
    for (size_t i = lo; i < hi; i++)
        s += ((uint64_t)i * i) ^ (s >> 7);
    return s;
}

/* Each chunk adds its value once: one atomic add per chunk. */
static int sum_chunk(void *arg, size_t lo, size_t hi)
{
    _Atomic uint64_t *total = arg;
    atomic_fetch_add_explicit(total, chunk_value(lo, hi), memory_order_relaxed);
    return 0;
}

static int finished;
static struct wpool_group_result outcome;

static void all_done(struct wpool_group *g, const struct wpool_group_result *r)
{
    (void)g;
    outcome = *r;
    finished = 1;
}

/* One run: the group over the range on a fresh pool, the loop counting its
 * wakeups. 0 when the sum is right and every chunk succeeded. */
static int run(unsigned int coalesce_us)
{
    struct wpool_options opts = WPOOL_OPTIONS_INIT;
    opts.coalesce_us = coalesce_us;
    wpool_t *pool;
    int rc = wpool_create(&pool, &opts);
    if (rc) {
        fprintf(stderr, "wpool_create: %s\n", wpool_strerror(rc));
        return 1;
    }
    static struct chunk chunks[CHUNKS];
    static _Atomic uint64_t total;
    struct wpool_group group = {0};
    finished = 0;
    atomic_store_explicit(&total, 0, memory_order_relaxed);
    rc = wpool_group_init(&group, pool, NULL, all_done);
    if (rc == 0)
        rc = parallel_for(pool, &group, chunks, CHUNKS, 0, N, sum_chunk, (void *)&total);
    if (rc) {
        fprintf(stderr, "parallel_for: %s\n", wpool_strerror(rc));
        return 1;
    }

    /* The event loop: the pool's fd in epoll; count the wakeups. */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, wpool_fd(pool), &ev);
    int wakeups = 0, callbacks = 0;
    while (!finished) {
        if (epoll_wait(ep, &ev, 1, 10000) != 1) {
            fprintf(stderr, "no completion for 10 s\n");
            return 1;
        }
        wakeups++;
        callbacks += wpool_dispatch(pool, WPOOL_DISPATCH_ALL);
    }
    close(ep);

    /* Relaxed: the group's completion came after every chunk's, each
     * posted after its add, through the port. */
    uint64_t sum = atomic_load_explicit(&total, memory_order_relaxed), want = 0;
    for (unsigned int k = 0; k < CHUNKS; k++) /* the same chunks, one after the other */
        want += chunk_value(chunks[k].lo, chunks[k].hi);
    printf("coalesce_us %4u: sum over [0, %zu) in %d chunks on %u workers %s; "
           "%llu succeeded; %d callbacks (members and group) in %d loop wakeups\n",
           coalesce_us, N, CHUNKS, wpool_threads(pool), sum == want ? "correct" : "WRONG",
           (unsigned long long)outcome.succeeded, callbacks, wakeups);
    wpool_destroy(pool);
    return sum == want && outcome.succeeded == CHUNKS && callbacks == CHUNKS + 1 ? 0 : 1;
}

int main(void)
{
    /* Every completion signalled at once, then the default coalescing. */
    return run(0) || run(WPOOL_DEFAULT_COALESCE_US);
}
