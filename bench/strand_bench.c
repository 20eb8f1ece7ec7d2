/* SPDX-License-Identifier: MIT */
/*
 * wpool-bench-strand: ordered execution per key (strands) against what users
 * write today on a plain pool: a mutex per key taken inside the task (which
 * keeps a key's tasks apart but not in order), and, as the ceiling, the same
 * tasks with no ordering at all.
 *
 * The owner submits N tasks of about 1 us of CPU each, task i on key
 * i mod K, keeping at most WINDOW in flight and running completions on its
 * own thread; throughput is N over the wall time. K = 1 (one worker's worth
 * by definition), 2, and 10,000 (every worker). Modes interleaved in each
 * round, the order rotated; medians of the rounds with min..max.
 *
 * usage: wpool-bench-strand [--rounds R] [--tasks N] [--threads T] [--quick]
 * Exits non-zero if a task is lost, runs twice, or (strand mode) two tasks
 * of a key overlap or start out of order.
 */
#include <wpool.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum mode { STRAND, MUTEX, UNORDERED, NMODES };
static const char *const mode_name[NMODES] = {"strand", "key mutex", "unordered"};

struct key {
    struct wpool_strand strand;
    pthread_mutex_t mu;
    atomic_int inside;
    uint64_t last; /* last sequence number started (strand mode: in order) */
    char pad[64];
};

struct job {
    struct wpool_task task;
    struct key *key;
    uint64_t seq; /* per key, 1-based */
};

static struct key *keys;
static struct job *jobs;
static unsigned int spin_iters = 200;
static enum mode cur_mode;
static atomic_ulong broken;
static uint64_t done_count;
static atomic_uint sink;

static uint64_t now_ns(void)
{
    return wpool_now_ns();
}

static void spin(void)
{
    unsigned int x = 1;
    for (unsigned int i = 0; i < spin_iters; i++)
        x = x * 1664525u + 1013904223u;
    atomic_fetch_add_explicit(&sink, x & 1, memory_order_relaxed);
}

static int job_work(struct wpool_task *t)
{
    struct job *j = (struct job *)t;
    struct key *k = j->key;
    if (cur_mode == MUTEX)
        pthread_mutex_lock(&k->mu);
    if (cur_mode != UNORDERED) {
        if (atomic_fetch_add_explicit(&k->inside, 1, memory_order_relaxed) != 0)
            atomic_fetch_add(&broken, 1);
        if (cur_mode == STRAND && j->seq <= k->last)
            atomic_fetch_add(&broken, 1);
        k->last = j->seq;
    }
    spin();
    if (cur_mode != UNORDERED)
        atomic_fetch_sub_explicit(&k->inside, 1, memory_order_relaxed);
    if (cur_mode == MUTEX)
        pthread_mutex_unlock(&k->mu);
    return 0;
}

static void job_done(struct wpool_task *t, int status)
{
    (void)t;
    if (status != 0)
        atomic_fetch_add(&broken, 1);
    done_count++;
}

/* Calibrates spin_iters to about 1 us on this machine. */
static void calibrate(void)
{
    uint64_t t0 = now_ns();
    spin_iters = 100000;
    spin();
    uint64_t dt = now_ns() - t0;
    spin_iters = dt ? (unsigned int)(100000.0 * 1000.0 / (double)dt) : 200;
    if (spin_iters < 10)
        spin_iters = 10;
}

/* One measurement: Mtasks/s. */
static double run_once(wpool_t *pool, enum mode m, unsigned int nkeys, unsigned int n,
                       unsigned int window)
{
    cur_mode = m;
    for (unsigned int k = 0; k < nkeys; k++) {
        keys[k].last = 0;
        atomic_store(&keys[k].inside, 0);
    }
    for (unsigned int i = 0; i < n; i++) {
        struct job *j = &jobs[i];
        j->key = &keys[i % nkeys];
        j->seq = i / nkeys + 1;
        if (wpool_task_init(&j->task, job_work, job_done) ||
            wpool_task_set_strand(&j->task, m == STRAND ? &j->key->strand : NULL)) {
            fprintf(stderr, "task init failed\n");
            exit(1);
        }
    }
    done_count = 0;
    uint64_t t0 = now_ns();
    unsigned int sent = 0;
    while (done_count < n) {
        while (sent < n && sent - done_count < window) {
            int rc = wpool_submit(pool, &jobs[sent].task);
            if (rc) {
                fprintf(stderr, "submit: %s\n", wpool_strerror(rc));
                exit(1);
            }
            sent++;
        }
        if (wpool_port_wait(wpool_default_port(pool), 10000) != 0) {
            fprintf(stderr, "no completion for 10 s\n");
            exit(1);
        }
        wpool_dispatch(pool, UINT32_MAX);
    }
    uint64_t dt = now_ns() - t0;
    return (double)n / ((double)dt / 1000.0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    unsigned int rounds = 5, n = 200000, threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
            rounds = (unsigned int)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--tasks") && i + 1 < argc)
            n = (unsigned int)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = (unsigned int)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick")) {
            rounds = 3;
            n = 20000;
        } else {
            fprintf(stderr, "usage: %s [--rounds R] [--tasks N] [--threads T] [--quick]\n",
                    argv[0]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > 99 || n < 100) {
        fprintf(stderr, "rounds 1..99, tasks >= 100\n");
        return 2;
    }
    static const unsigned int key_counts[] = {1, 2, 10000};
    enum { NK = sizeof(key_counts) / sizeof(key_counts[0]) };
    unsigned int maxkeys = key_counts[NK - 1];
    keys = calloc(maxkeys, sizeof(*keys));
    jobs = calloc(n, sizeof(*jobs));
    if (!keys || !jobs)
        return 1;
    calibrate();
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = threads;
    wpool_t *pool;
    int rc = wpool_create(&pool, &o);
    if (rc) {
        fprintf(stderr, "wpool_create: %s\n", wpool_strerror(rc));
        return 1;
    }
    for (unsigned int k = 0; k < maxkeys; k++) {
        pthread_mutex_init(&keys[k].mu, NULL);
        if (wpool_strand_init(&keys[k].strand, pool)) {
            fprintf(stderr, "strand init failed\n");
            return 1;
        }
    }
    /* The window: enough tasks in flight that every key has some queued. */
    unsigned int window = 4096;
    double res[NK][NMODES][99];
    run_once(pool, STRAND, 2, n < 10000 ? n : 10000, window); /* warm-up */
    for (unsigned int r = 0; r < rounds; r++)
        for (unsigned int ki = 0; ki < NK; ki++)
            for (unsigned int mi = 0; mi < NMODES; mi++) {
                enum mode m = (enum mode)((mi + r) % NMODES);
                res[ki][m][r] = run_once(pool, m, key_counts[ki], n, window);
            }
    printf("strands: %u tasks of ~1 us (%u spin iterations), %u workers, window %u, "
           "median of %u rounds (min..max), Mtasks/s\n",
           n, spin_iters, wpool_threads(pool), window, rounds);
    printf("%-8s %-22s %-22s %-22s %s\n", "keys", mode_name[STRAND], mode_name[MUTEX],
           mode_name[UNORDERED], "strand / key mutex");
    for (unsigned int ki = 0; ki < NK; ki++) {
        double med[NMODES];
        printf("%-8u", key_counts[ki]);
        for (unsigned int m = 0; m < NMODES; m++) {
            double *v = res[ki][m];
            qsort(v, rounds, sizeof(double), cmp_double);
            med[m] = v[rounds / 2];
            char cell[64];
            snprintf(cell, sizeof(cell), "%.2f (%.2f..%.2f)", med[m], v[0], v[rounds - 1]);
            printf(" %-22s", cell);
        }
        printf(" %.2f\n", med[MUTEX] > 0 ? med[STRAND] / med[MUTEX] : 0.0);
    }
    for (unsigned int k = 0; k < maxkeys; k++) {
        if (wpool_strand_destroy(&keys[k].strand))
            atomic_fetch_add(&broken, 1);
        pthread_mutex_destroy(&keys[k].mu);
    }
    wpool_destroy(pool);
    free(keys);
    free(jobs);
    if (atomic_load(&broken)) {
        fprintf(stderr, "FAILED: %lu tasks overlapped, ran out of order or failed\n",
                atomic_load(&broken));
        return 1;
    }
    return 0;
}
