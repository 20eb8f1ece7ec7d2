/* SPDX-License-Identifier: MIT */
/*
 * wpool-bench: runs one workload on one peer and prints one JSON object.
 *
 *   wpool-bench WORKLOAD PEER [--n N] [--threads T] [--producers P]
 *               [--spin-iters I] [--seconds S] [--reps R] [--samples FILE]
 *               [--syscalls] [--timeout SECONDS] [--task-ns NS] [--shuffle]
 *   wpool-bench calibrate        iterations of bench_spin() for ~5 us
 *   wpool-bench list             "workload peer" pairs this build supports
 *
 * Workloads (see bench/README section in the top-level README):
 *   w1 w1batch   N no-op tasks from the owner, first submit -> last completion
 *   w2           N tasks of ~5 us CPU; efficiency = ideal / wall
 *   w3           R idle round trips, 2 ms apart: latency percentiles
 *   w4           P producer threads, N tasks each, at once
 *   idle         one task per ms for S seconds: CPU used by the pool
 *   payload      like w1, the owner mallocs a 256 B..4 KiB payload per task
 *                and the worker frees it
 *   --shuffle    (w1, w1batch, payload) the records start on the free list in
 *                a random order instead of address order: their accesses are
 *                scattered in memory, as when a program allocates them as
 *                requests come, and the hardware prefetcher cannot follow
 *   mem          (wpool-bench-alloc only) mallocs per task, heap per queued task
 * Peers: wpool wpool-pin wpool-port wpool-notiming wpool-at-once plain libuv glib, plus
 * threads (w2) and floor (w3). wpool-port (w1, w4) sends completions to a port
 * the owner created instead of the default one.
 *
 * Exits non-zero if a task is lost, runs twice, or completes on a thread
 * other than the owner.
 */
#include "bench.h"

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WINDOW    16384u /* task records per owner: at most this many in flight */
#define W4_WINDOW 4096u  /* per producer in W4 */
#define BATCH     64u

/* Defined only in wpool-bench-alloc (alloc_count.c). */
uint64_t bench_alloc_calls(void) __attribute__((weak));

static const struct peer *const all_peers[] = {
    &peer_wpool,
    &peer_wpool_pin,
    &peer_wpool_rr,
    &peer_wpool_port,
#ifdef BENCH_HAVE_TIMING
    &peer_wpool_notiming,
    &peer_wpool_at_once,
#endif
#ifdef BENCH_HAVE_UV
    &peer_uv,
#endif
#ifdef BENCH_HAVE_GLIB
    &peer_glib,
#endif
    &peer_plain,
};
#define NPEERS (sizeof(all_peers) / sizeof(all_peers[0]))

/* ---- shared state and helpers ---- */

void (*bench_on_done)(struct btask *t);
uint64_t bench_completed;
static uint64_t bench_submitted;            /* by the owner */
static _Atomic uint64_t bench_submitted_mt; /* by other threads (W4) */
uint64_t bench_spin_iters = 1000;
static pthread_t owner_thread;
static const struct peer *peer;
static unsigned int nthreads;

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

_Noreturn void bench_die(const char *what, int err)
{
    fprintf(stderr, "wpool-bench: %s: %s\n", what, strerror(err < 0 ? -err : err));
    exit(2);
}

static _Noreturn void fail(const char *msg)
{
    fprintf(stderr, "wpool-bench: FAILED: %s\n", msg);
    exit(1);
}

/* Pure CPU, no memory traffic: a dependent chain the compiler cannot fold. */
uint64_t bench_spin(uint64_t iters)
{
    uint64_t x = iters | 1;
    for (uint64_t i = 0; i < iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        __asm__ __volatile__("" : "+r"(x));
    }
    return x;
}

static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static bool gate_closed;
static _Atomic unsigned int gate_waiting;

void bench_gate_close(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_closed = true;
    pthread_mutex_unlock(&gate_lock);
}

void bench_gate_open(void)
{
    pthread_mutex_lock(&gate_lock);
    gate_closed = false;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
}

static _Atomic uint64_t spin_sink;

void bench_run(struct btask *t)
{
    switch (t->work) {
    case WORK_NOOP:
        break;
    case WORK_SPIN:
        atomic_store_explicit(&spin_sink, bench_spin(bench_spin_iters), memory_order_relaxed);
        break;
    case WORK_PAYLOAD: {
        const unsigned char *p = t->payload;
        unsigned int sum = 0;
        for (uint32_t i = 0; i < t->payload_len; i += 64)
            sum += p[i];
        atomic_store_explicit(&spin_sink, sum, memory_order_relaxed);
        free(t->payload);
        t->payload = NULL;
        break;
    }
    case WORK_GATE:
        pthread_mutex_lock(&gate_lock);
        atomic_fetch_add(&gate_waiting, 1);
        while (gate_closed)
            pthread_cond_wait(&gate_cond, &gate_lock);
        atomic_fetch_sub(&gate_waiting, 1);
        pthread_mutex_unlock(&gate_lock);
        break;
    }
    t->ran++;
}

void bench_complete(struct btask *t)
{
    if (!pthread_equal(pthread_self(), owner_thread))
        fail("a completion ran on a thread other than the owner");
    if (t->ran != 1)
        fail(t->ran ? "a task ran more than once" : "a task completed without running");
    if (t->payload)
        fail("a payload was not freed by the worker");
    t->ran = 0;
    bench_completed++;
    bench_on_done(t);
}

/* ---- task records ---- */

static struct btask *free_list;

static struct btask *records(size_t n)
{
    struct btask *r = calloc(n, sizeof(*r));
    if (!r)
        bench_die("calloc", -ENOMEM);
    for (size_t i = 0; i < n; i++)
        if (peer && peer->prepare)
            peer->prepare(&r[i]);
    return r;
}

static void free_push(struct btask *t)
{
    t->next = free_list;
    free_list = t;
}

static struct btask *free_pop(void)
{
    struct btask *t = free_list;
    if (t)
        free_list = t->next;
    return t;
}

static void on_done_recycle(struct btask *t)
{
    free_push(t);
}

static void wait_completed(uint64_t target)
{
    while (bench_completed < target)
        peer->poll(-1);
}

/* Queue full: run what has completed, or wait for something to. */
static void backoff(void)
{
    if (peer->poll(0) == 0)
        peer->poll(-1);
}

static uint32_t rng_state = 2463534242u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void fill(struct btask *t, enum bench_work work)
{
    t->work = work;
    if (work == WORK_PAYLOAD) {
        t->payload_len = 256 + rng() % (4096 - 256 + 1);
        t->payload = malloc(t->payload_len);
        if (!t->payload)
            bench_die("malloc", -ENOMEM);
        memset(t->payload, (int)t->payload_len, t->payload_len);
    }
}

static void unfill(struct btask *t)
{
    free(t->payload);
    t->payload = NULL;
}

/* The owner submits n tasks through a window of recycled records and runs
 * completions whenever the window or the pool's queue is full. */
static void stream(uint64_t n, enum bench_work work, bool batch)
{
    uint64_t target = bench_completed + n;
    uint64_t submitted = 0;
    bench_on_done = on_done_recycle;
    while (submitted < n) {
        if (batch) {
            struct btask *b[BATCH];
            unsigned int k = 0;
            while (k < BATCH && submitted + k < n && free_list)
                fill(b[k++] = free_pop(), work);
            if (k == 0) {
                peer->poll(-1);
                continue;
            }
            int rc = peer->submit_batch(b, k);
            if (rc < 0 && rc != -EAGAIN)
                bench_die("submit_batch", rc);
            unsigned int took = rc < 0 ? 0 : (unsigned int)rc;
            for (unsigned int i = k; i-- > took;) {
                unfill(b[i]);
                free_push(b[i]);
            }
            submitted += took;
            if (took < k)
                backoff();
            continue;
        }
        struct btask *t = free_pop();
        if (!t) {
            peer->poll(-1);
            continue;
        }
        fill(t, work);
        int rc = peer->submit(t);
        if (rc == -EAGAIN) {
            unfill(t);
            free_push(t);
            backoff();
            continue;
        }
        if (rc)
            bench_die("submit", rc);
        submitted++;
    }
    bench_submitted += submitted;
    wait_completed(target);
}

/* Starts every worker (libuv creates its threads at the first submit). */
static void warm_up(void)
{
    stream(8u * nthreads + 64u, WORK_NOOP, false);
}

/* ---- output ---- */

static char out[4096];
static size_t outlen;

static void put(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void put(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out + outlen, sizeof(out) - outlen, fmt, ap);
    va_end(ap);
    if (w > 0)
        outlen += (size_t)w < sizeof(out) - outlen ? (size_t)w : sizeof(out) - outlen - 1;
}

static void put_num(const char *key, double v)
{
    put(", \"%s\": %.6g", key, v);
}

/* CPU time of the whole process (every thread: the owner, the producers and
 * the pool's own) per task, from a CLOCK_PROCESS_CPUTIME_ID reading taken
 * at the start of the timed part. On a machine with fewer cores than
 * runnable threads (W4 on 2 cores) throughput is close to cores / this. */
static void put_cpu_per_task(uint64_t cpu0, uint64_t tasks)
{
    put_num("cpu_ns_per_task", (double)(cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - cpu0) / (double)tasks);
}

static void put_sysc(struct sysc *s, uint64_t tasks)
{
    if (!s->ok) {
        put(", \"syscalls\": null, \"syscalls_why\": \"%s\"", s->why);
        return;
    }
    uint64_t futex, wakes, writes;
    sysc_stop(s, &futex, &wakes, &writes);
    put_num("futex_per_task", (double)futex / (double)tasks);
    put_num("futex_wakes_per_task", (double)wakes / (double)tasks);
    put_num("writes_per_completion", (double)writes / (double)tasks);
}

/* ---- workloads ---- */

struct args {
    const char *workload;
    const char *peer;
    uint64_t n;
    unsigned int producers;
    double seconds;
    uint64_t reps;
    const char *samples;
    bool syscalls;
    double task_ns;
    bool shuffle;
};

static void run_w1(const struct args *a, bool batch, enum bench_work work)
{
    struct btask *r = records(WINDOW);
    /* The free list is a stack: pushing in a random order makes the records
     * go out in that order (--shuffle); recycling keeps it scattered. */
    static uint32_t order[WINDOW];
    for (uint32_t i = 0; i < WINDOW; i++)
        order[i] = i;
    for (uint32_t i = WINDOW - 1; a->shuffle && i > 0; i--) {
        uint32_t j = rng() % (i + 1), x = order[i];
        order[i] = order[j];
        order[j] = x;
    }
    for (size_t i = 0; i < WINDOW; i++)
        free_push(&r[order[i]]);
    warm_up();
    struct sysc s;
    if (a->syscalls) {
        sysc_open(&s);
        sysc_start(&s);
    }
    uint64_t before = bench_alloc_calls ? bench_alloc_calls() : 0;
    uint64_t cpu0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
    uint64_t t0 = bench_now_ns();
    stream(a->n, work, batch);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    uint64_t allocs = bench_alloc_calls ? bench_alloc_calls() - before : 0;
    put_num("wall_s", secs);
    put_num("mtasks_per_s", (double)a->n / secs / 1e6);
    put_cpu_per_task(cpu0, a->n);
    if (a->shuffle)
        put(", \"shuffled\": true");
    if (a->syscalls)
        put_sysc(&s, a->n);
    if (bench_alloc_calls)
        put_num("mallocs_per_task", (double)allocs / (double)a->n);
    if (work == WORK_PAYLOAD)
        put(", \"allocator\": \"%s\"", dlsym(RTLD_DEFAULT, "mallctl") ? "jemalloc" : "glibc");
}

static double measure_task_ns(void)
{
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < 4000; i++)
        atomic_store_explicit(&spin_sink, bench_spin(bench_spin_iters), memory_order_relaxed);
    return (double)(bench_now_ns() - t0) / 4000.0;
}

struct split {
    pthread_barrier_t *bar;
    uint64_t n;
};

static void *split_thread(void *arg)
{
    struct split *s = arg;
    pthread_barrier_wait(s->bar);
    for (uint64_t i = 0; i < s->n; i++)
        atomic_store_explicit(&spin_sink, bench_spin(bench_spin_iters), memory_order_relaxed);
    return NULL;
}

static void run_w2(const struct args *a)
{
    double task_ns = measure_task_ns();
    /* Ideal time from the nominal task time the driver calibrated, so that a
     * busy moment during the inline timing does not move the ceiling. */
    double ref_ns = a->task_ns > 0 ? a->task_ns : task_ns;
    double secs;
    uint64_t cpu0;
    if (!peer) { /* plain threads, the work split by hand: the ceiling */
        pthread_barrier_t bar;
        pthread_barrier_init(&bar, NULL, nthreads + 1);
        pthread_t th[64];
        struct split sp[64];
        for (unsigned int i = 0; i < nthreads; i++) {
            sp[i].bar = &bar;
            sp[i].n = a->n / nthreads + (i < a->n % nthreads);
            pthread_create(&th[i], NULL, split_thread, &sp[i]);
        }
        cpu0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
        pthread_barrier_wait(&bar);
        uint64_t t0 = bench_now_ns();
        for (unsigned int i = 0; i < nthreads; i++)
            pthread_join(th[i], NULL);
        secs = (double)(bench_now_ns() - t0) / 1e9;
    } else {
        struct btask *r = records(WINDOW);
        for (size_t i = 0; i < WINDOW; i++)
            free_push(&r[i]);
        warm_up();
        cpu0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
        uint64_t t0 = bench_now_ns();
        stream(a->n, WORK_SPIN, false);
        secs = (double)(bench_now_ns() - t0) / 1e9;
    }
    double ideal = (double)a->n * ref_ns / 1e9 / nthreads;
    put_num("wall_s", secs);
    put_num("task_us", task_ns / 1e3);
    put_num("efficiency", ideal / secs);
    put_cpu_per_task(cpu0, a->n);
}

static uint64_t w3_done_ns;

static void on_done_stamp(struct btask *t)
{
    w3_done_ns = bench_now_ns();
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return a < b ? -1 : a > b;
}

static double pct(const uint64_t *v, uint64_t n, double p)
{
    uint64_t i = (uint64_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return (double)v[i] / 1e3;
}

static void put_lat(const char *prefix, uint64_t *v, uint64_t n)
{
    char key[64];
    qsort(v, n, sizeof(*v), cmp_u64);
    static const double ps[] = {50, 99, 99.9};
    static const char *const names[] = {"p50_us", "p99_us", "p999_us"};
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof(key), "%s%s", prefix, names[i]);
        put_num(key, pct(v, n, ps[i]));
    }
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
        ;
}

/* The machine's floor: thread B sleeps on a futex; A wakes it, B writes an
 * eventfd, A (in epoll) wakes. Legs: futex wake (A's call -> B running) and
 * eventfd (B's write -> A back from epoll). */
static _Atomic uint32_t floor_word;
static _Atomic uint64_t floor_woke_ns, floor_write_ns;
static int floor_efd;

static void *floor_thread(void *arg)
{
    uint32_t seen = 0;
    for (;;) {
        while (atomic_load(&floor_word) == seen)
            syscall(SYS_futex, &floor_word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
        seen = atomic_load(&floor_word);
        if (seen == UINT32_MAX)
            return NULL;
        atomic_store(&floor_woke_ns, bench_now_ns());
        uint64_t one = 1;
        atomic_store(&floor_write_ns, bench_now_ns());
        if (write(floor_efd, &one, sizeof(one)) != sizeof(one))
            bench_die("write eventfd", errno);
    }
}

static void run_w3_floor(const struct args *a, uint64_t *lat, FILE *samples)
{
    uint64_t *fut = calloc(a->reps, sizeof(*fut)), *efd = calloc(a->reps, sizeof(*efd));
    floor_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = floor_efd};
    epoll_ctl(ep, EPOLL_CTL_ADD, floor_efd, &ev);
    pthread_t th;
    pthread_create(&th, NULL, floor_thread, NULL);
    for (uint64_t i = 0; i < a->reps + 20; i++) {
        sleep_ns(2000000);
        uint64_t t0 = bench_now_ns();
        atomic_fetch_add(&floor_word, 1);
        syscall(SYS_futex, &floor_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
        while (epoll_wait(ep, &ev, 1, -1) != 1)
            ;
        uint64_t t3 = bench_now_ns();
        uint64_t v;
        if (read(floor_efd, &v, sizeof(v)) != sizeof(v))
            bench_die("read eventfd", errno);
        if (i < 20)
            continue; /* warm-up */
        lat[i - 20] = t3 - t0;
        fut[i - 20] = atomic_load(&floor_woke_ns) - t0;
        efd[i - 20] = t3 - atomic_load(&floor_write_ns);
        if (samples)
            fprintf(samples, "%.3f\n", (double)(t3 - t0) / 1e3);
    }
    atomic_store(&floor_word, UINT32_MAX);
    syscall(SYS_futex, &floor_word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    pthread_join(th, NULL);
    put_lat("futex_", fut, a->reps);
    put_lat("eventfd_", efd, a->reps);
    free(fut);
    free(efd);
    close(ep);
    close(floor_efd);
}

static void run_w3(const struct args *a)
{
    uint64_t *lat = calloc(a->reps, sizeof(*lat));
    FILE *samples = a->samples ? fopen(a->samples, "w") : NULL;
    if (!lat || (a->samples && !samples))
        bench_die("w3 setup", errno ? errno : ENOMEM);
    if (!peer) {
        run_w3_floor(a, lat, samples);
    } else {
        struct btask *t = records(1);
        free_push(t);
        warm_up();
        bench_on_done = on_done_stamp;
        for (uint64_t i = 0; i < a->reps + 20; i++) {
            sleep_ns(2000000);
            uint64_t target = bench_completed + 1;
            uint64_t t0 = bench_now_ns();
            int rc = peer->submit(t);
            if (rc)
                bench_die("submit", rc);
            bench_submitted++;
            wait_completed(target);
            if (i < 20)
                continue;
            lat[i - 20] = w3_done_ns - t0;
            if (samples)
                fprintf(samples, "%.3f\n", (double)(w3_done_ns - t0) / 1e3);
        }
    }
    if (samples)
        fclose(samples);
    put_lat("", lat, a->reps);
    free(lat);
}

/* W4: producers get their records back from the owner through a stack each. */
struct producer {
    pthread_t th;
    struct btask *_Atomic returned;
    uint64_t n;
    unsigned int index;
} __attribute__((aligned(64)));

static struct producer producers[64];
static _Atomic int w4_go;
static _Atomic unsigned int w4_ready;

static void on_done_return(struct btask *t)
{
    struct producer *p = &producers[t->owner];
    struct btask *old = atomic_load_explicit(&p->returned, memory_order_relaxed);
    do
        t->next = old;
    while (!atomic_compare_exchange_weak_explicit(&p->returned, &old, t, memory_order_release,
                                                  memory_order_relaxed));
}

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    struct btask *r = records(W4_WINDOW), *local = NULL;
    for (unsigned int i = 0; i < W4_WINDOW; i++) {
        r[i].owner = p->index;
        r[i].next = local;
        local = &r[i];
    }
    atomic_fetch_add(&w4_ready, 1);
    while (!atomic_load(&w4_go))
        sched_yield();
    for (uint64_t i = 0; i < p->n;) {
        struct btask *t = local;
        if (!t) {
            local = atomic_exchange_explicit(&p->returned, NULL, memory_order_acquire);
            if (!local)
                sched_yield();
            continue;
        }
        local = t->next;
        int rc = peer->submit_mt(t);
        if (rc == -EAGAIN) { /* not the owner: nothing to dispatch, let it run */
            t->next = local;
            local = t;
            sched_yield();
            continue;
        }
        if (rc)
            bench_die("submit from a producer", rc);
        i++;
    }
    atomic_fetch_add(&bench_submitted_mt, p->n);
    return NULL;
}

static void run_w4(const struct args *a)
{
    struct btask *r = records(64);
    for (size_t i = 0; i < 64; i++)
        free_push(&r[i]);
    warm_up();
    uint64_t total = a->n * a->producers;
    uint64_t target = bench_completed + total;
    bench_on_done = on_done_return;
    for (unsigned int i = 0; i < a->producers; i++) {
        producers[i].index = i;
        producers[i].n = a->n;
        pthread_create(&producers[i].th, NULL, producer_main, &producers[i]);
    }
    while (atomic_load(&w4_ready) < a->producers)
        sched_yield();
    struct sysc s;
    if (a->syscalls) {
        sysc_open(&s);
        sysc_start(&s);
    }
    uint64_t cpu0 = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
    uint64_t t0 = bench_now_ns();
    atomic_store(&w4_go, 1);
    wait_completed(target);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    put_cpu_per_task(cpu0, total);
    for (unsigned int i = 0; i < a->producers; i++)
        pthread_join(producers[i].th, NULL);
    put_num("wall_s", secs);
    put_num("mtasks_per_s", (double)total / secs / 1e6);
    if (a->syscalls)
        put_sysc(&s, total);
}

static void run_idle(const struct args *a)
{
    struct btask *t = records(1);
    free_push(t);
    warm_up();
    bench_on_done = on_done_stamp;
    uint64_t ticks = (uint64_t)(a->seconds * 1000);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    uint64_t own0 = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
    uint64_t start = bench_now_ns();
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (uint64_t i = 0; i < ticks; i++) {
        next.tv_nsec += 1000000;
        if (next.tv_nsec >= 1000000000) {
            next.tv_nsec -= 1000000000;
            next.tv_sec++;
        }
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
            ;
        uint64_t target = bench_completed + 1;
        int rc = peer->submit(t);
        if (rc)
            bench_die("submit", rc);
        bench_submitted++;
        wait_completed(target);
    }
    double wall = (double)(bench_now_ns() - start) / 1e9;
    uint64_t own = cpu_ns(CLOCK_THREAD_CPUTIME_ID) - own0;
    getrusage(RUSAGE_SELF, &ru1);
    double proc = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
                  (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                  (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                  (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    double pool = proc - (double)own / 1e9;
    if (pool < 0)
        pool = 0;
    put_num("wall_s", wall);
    put_num("pool_cpu_pct", 100.0 * pool / wall);
    put_num("owner_cpu_pct", 100.0 * (double)own / 1e9 / wall);
}

static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void run_mem(const struct args *a)
{
    if (!bench_alloc_calls)
        fail("the mem workload needs wpool-bench-alloc");
    const uint64_t queued = 2048; /* fits wpool's default 4096-slot queue */
    struct btask *r = records(WINDOW);
    for (size_t i = 0; i < WINDOW; i++)
        free_push(&r[i]);
    warm_up();
    /* First, before any long stream has grown the peer's caches: park every
     * worker on a gate and queue tasks behind them. */
    bench_gate_close();
    for (unsigned int i = 0; i < nthreads; i++) {
        struct btask *g = free_pop();
        g->work = WORK_GATE;
        int rc = peer->submit(g);
        if (rc)
            bench_die("submit", rc);
        bench_submitted++;
    }
    while (atomic_load(&gate_waiting) < nthreads)
        sched_yield();
    size_t heap0 = heap_in_use();
    uint64_t before = bench_alloc_calls();
    for (uint64_t i = 0; i < queued; i++) {
        struct btask *t = free_pop();
        t->work = WORK_NOOP;
        int rc = peer->submit(t);
        if (rc)
            bench_die("submit (queued)", rc);
        bench_submitted++;
    }
    double per_queued_allocs = (double)(bench_alloc_calls() - before) / (double)queued;
    double heap = (double)heap_in_use() - (double)heap0;
    bench_gate_open();
    wait_completed(bench_completed + queued + nthreads);
    /* Then the steady state: mallocs per task over a W1 stream. */
    before = bench_alloc_calls();
    stream(a->n, WORK_NOOP, false);
    double per_task = (double)(bench_alloc_calls() - before) / (double)a->n;
    put_num("mallocs_per_task", per_task);
    put_num("mallocs_per_queued_task", per_queued_allocs);
    put_num("heap_bytes_per_queued_task", heap / (double)queued);
    put_num("record_bytes", (double)peer->record_size);
}

/* ---- main ---- */

static const struct peer *find_peer(const char *name)
{
    for (size_t i = 0; i < NPEERS; i++)
        if (strcmp(all_peers[i]->name, name) == 0)
            return all_peers[i];
    return NULL;
}

static bool supported(const char *w, const struct peer *p, const char *pname)
{
    if (strcmp(pname, "threads") == 0)
        return strcmp(w, "w2") == 0;
    if (strcmp(pname, "floor") == 0)
        return strcmp(w, "w3") == 0;
    if (!p)
        return false;
    if (strcmp(w, "w1batch") == 0)
        return p->submit_batch != NULL && p == &peer_wpool;
    if (p == &peer_wpool_pin)
        return strcmp(w, "w1") == 0 || strcmp(w, "w3") == 0 || strcmp(w, "idle") == 0;
    if (p == &peer_wpool_port)
        return strcmp(w, "w1") == 0 || strcmp(w, "w4") == 0;
    if (p == &peer_wpool_rr)
        return strcmp(w, "w1") == 0 || strcmp(w, "w2") == 0 || strcmp(w, "w3") == 0 ||
               strcmp(w, "w4") == 0;
#ifdef BENCH_HAVE_TIMING
    if (p == &peer_wpool_notiming)
        return strcmp(w, "w1") == 0;
#endif
    if (p == &peer_wpool_at_once)
        return strcmp(w, "w1") == 0 || strcmp(w, "w2") == 0 || strcmp(w, "w3") == 0 ||
               strcmp(w, "w4") == 0;
    return true;
}

static const char *const workloads[] = {"w1", "w1batch", "w2",      "w3",
                                        "w4", "idle",    "payload", "mem"};

static uint64_t calibrate(void)
{
    /* Iterations for 5 us, from the best of a few timed runs. */
    uint64_t iters = 1000;
    double best = 1e30;
    for (int k = 0; k < 5; k++) {
        uint64_t t0 = bench_now_ns();
        for (int i = 0; i < 2000; i++)
            atomic_store_explicit(&spin_sink, bench_spin(iters), memory_order_relaxed);
        double ns = (double)(bench_now_ns() - t0) / 2000.0;
        if (ns < best)
            best = ns;
    }
    return (uint64_t)(5000.0 / best * (double)iters + 0.5);
}

static void usage(void)
{
    fprintf(stderr, "usage: wpool-bench WORKLOAD PEER [--n N] [--threads T] [--producers P] "
                    "[--spin-iters I] [--seconds S] [--reps R] [--samples FILE] [--syscalls] "
                    "[--timeout SECONDS] [--task-ns NS] [--shuffle]\n"
                    "       wpool-bench calibrate | list\n");
    exit(2);
}

static void on_alarm(int sig)
{
    static const char msg[] = "wpool-bench: FAILED: no result in time: a task was lost or "
                              "the pool hung\n";
    if (write(2, msg, sizeof(msg) - 1) < 0)
        _exit(1);
    _exit(1);
}

int main(int argc, char **argv)
{
    owner_thread = pthread_self();
    signal(SIGALRM, on_alarm);
    if (argc >= 2 && strcmp(argv[1], "calibrate") == 0) {
        printf("%" PRIu64 "\n", calibrate());
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "list") == 0) {
        static const char *const extra[] = {"threads", "floor"};
        for (size_t w = 0; w < sizeof(workloads) / sizeof(workloads[0]); w++) {
            if (strcmp(workloads[w], "mem") == 0 && !bench_alloc_calls)
                continue;
            for (size_t i = 0; i < NPEERS; i++)
                if (supported(workloads[w], all_peers[i], all_peers[i]->name))
                    printf("%s %s\n", workloads[w], all_peers[i]->name);
            for (size_t i = 0; i < 2; i++)
                if (supported(workloads[w], NULL, extra[i]))
                    printf("%s %s\n", workloads[w], extra[i]);
        }
        return 0;
    }
    if (argc < 3)
        usage();
    struct args a = {argv[1], argv[2], 100000, 4, 2.0, 1000, NULL, false, 0, false};
    alarm(600); /* --timeout overrides */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        cores = CPU_COUNT(&set);
    nthreads = cores > 0 ? (unsigned int)cores : 1;
    for (int i = 3; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(o, "--syscalls") == 0) {
            a.syscalls = true;
            continue;
        }
        if (strcmp(o, "--shuffle") == 0) {
            a.shuffle = true;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(o, "--n") == 0)
            a.n = strtoull(v, NULL, 10);
        else if (strcmp(o, "--threads") == 0)
            nthreads = (unsigned int)strtoul(v, NULL, 10);
        else if (strcmp(o, "--producers") == 0)
            a.producers = (unsigned int)strtoul(v, NULL, 10);
        else if (strcmp(o, "--spin-iters") == 0)
            bench_spin_iters = strtoull(v, NULL, 10);
        else if (strcmp(o, "--task-ns") == 0)
            a.task_ns = strtod(v, NULL);
        else if (strcmp(o, "--seconds") == 0)
            a.seconds = strtod(v, NULL);
        else if (strcmp(o, "--reps") == 0)
            a.reps = strtoull(v, NULL, 10);
        else if (strcmp(o, "--samples") == 0)
            a.samples = v;
        else if (strcmp(o, "--timeout") == 0)
            alarm((unsigned int)strtoul(v, NULL, 10));
        else
            usage();
    }
    if (a.n == 0 || a.reps == 0 || nthreads == 0 || nthreads > 64 || a.producers == 0 ||
        a.producers > 64)
        usage();
    peer = find_peer(a.peer);
    if (!supported(a.workload, peer, a.peer)) {
        fprintf(stderr, "wpool-bench: %s does not run on %s in this build\n", a.workload, a.peer);
        return 2;
    }
    if (peer) {
        int rc = peer->create(nthreads);
        if (rc)
            bench_die("create", rc);
    }
    put("{\"workload\": \"%s\", \"peer\": \"%s\", \"threads\": %u", a.workload, a.peer, nthreads);
    if (peer)
        put(", \"note\": \"%s\"", peer->note);
    if (strcmp(a.workload, "w1") == 0 || strcmp(a.workload, "w1batch") == 0)
        run_w1(&a, strcmp(a.workload, "w1batch") == 0, WORK_NOOP);
    else if (strcmp(a.workload, "payload") == 0)
        run_w1(&a, false, WORK_PAYLOAD);
    else if (strcmp(a.workload, "w2") == 0)
        run_w2(&a);
    else if (strcmp(a.workload, "w3") == 0)
        run_w3(&a);
    else if (strcmp(a.workload, "w4") == 0)
        run_w4(&a);
    else if (strcmp(a.workload, "idle") == 0)
        run_idle(&a);
    else if (strcmp(a.workload, "mem") == 0)
        run_mem(&a);
    else
        usage();
    if (strcmp(a.workload, "w3") == 0 || strcmp(a.workload, "idle") == 0)
        put(", \"n\": %" PRIu64, strcmp(a.workload, "w3") == 0 ? a.reps : bench_completed);
    else if (strcmp(a.workload, "w4") == 0)
        put(", \"n\": %" PRIu64 ", \"producers\": %u", a.n * a.producers, a.producers);
    else
        put(", \"n\": %" PRIu64, a.n);
    if (peer)
        peer->destroy(); /* a completion it still delivers would be one too many */
    uint64_t submitted = bench_submitted + atomic_load(&bench_submitted_mt);
    if (peer && bench_completed != submitted) {
        fprintf(stderr, "wpool-bench: FAILED: %" PRIu64 " tasks submitted, %" PRIu64 " completed\n",
                submitted, bench_completed);
        return 1;
    }
    put("}");
    puts(out);
    return 0;
}
