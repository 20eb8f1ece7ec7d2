/* SPDX-License-Identifier: MIT */
/*
 * wpool-bench-class: isolation between kinds of work (issue 16). A bulk class
 * floods the pool with ~1 ms tasks (4 per worker in flight, each resubmitted
 * from its completion) while a latency class sends one ~20 us task at fixed
 * intended times t0 + k * period (500 us by default: more often than the
 * class's lend_after_us, 1 ms by default, so its reserved worker keeps to
 * it; with a period above lend_after_us the worker lends itself between
 * the class's tasks and a latency task may wait for one bulk task). A latency task's wait is the
 * start of its work minus its intended send time, so an owner that falls behind cannot hide
 * latency. Modes, each a fresh pool of --threads workers:
 *
 *   idle             latency tasks alone: the baseline
 *   single queue     bulk + latency in the default class (0.3's behaviour)
 *   classes          latency tasks in a class with 1 reserved worker
 *   two pools        the workaround: bulk on threads-1 workers, latency on 1
 *   bulk alone, ...  bulk only, on a plain pool and on one that has the
 *                    latency class (reserved worker, no latency tasks)
 *
 * The owner (main thread) runs every completion and sends the latency tasks
 * between dispatches (ppoll on the pools' fds until the next send time).
 * Bulk throughput counts bulk tasks whose work ended in the measured window
 * (after a 100 ms warm-up). Modes interleaved in each round, the order
 * rotated; medians of the rounds with min..max.
 *
 * usage: wpool-bench-class [--rounds R] [--seconds S] [--threads T]
 *            [--bulk-us US] [--lat-us US] [--period-us US] [--lend-us US] [--quick]
 * (--lend-us: the latency class's lend_after_us, default 1000)
 * Targets: classes p99 <= 2x idle p99; bulk alone with the class >= 0.95x
 * bulk alone on a plain pool. Never fails on a number; exits non-zero if a
 * task is lost, fails, or completes twice.
 */
#include <wpool.h>

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

enum mode { IDLE, SINGLE, CLASSES, TWO_POOLS, BULK_SINGLE, BULK_CLASSES, NMODES };
static const char *const mode_name[NMODES] = {"idle (latency alone)",  "single queue",
                                              "classes (1 reserved)",  "two pools",
                                              "bulk alone, single q.", "bulk alone, classes"};
static const int has_lat[NMODES] = {1, 1, 1, 1, 0, 0};
static const int has_bulk[NMODES] = {0, 1, 1, 1, 1, 1};
static const int has_class[NMODES] = {0, 0, 1, 0, 0, 1};

enum { P50, P99, P999, BULK, NMET };
#define WARMUP_NS   100000000ull
#define STALL_NS    10000000000ull
#define MAX_ROUNDS  99
#define MAX_SAMPLES 20000000ull

struct bulk_job {
    struct wpool_task task;
    uint64_t end; /* when its work ended */
};

struct lat_job {
    struct wpool_task task;
    uint64_t intended; /* t0 + k * period */
    uint64_t start;    /* when its work started */
};

/* Options. */
static unsigned int threads = 2, rounds = 5, bulk_us = 1000, lat_us = 20, period_us = 500;
static unsigned int lend_us = WPOOL_DEFAULT_LEND_AFTER_US; /* the class's lend_after_us */
static double seconds = 2.0;

/* Calibration: spin iterations per microsecond. */
static double iters_per_us = 100;
static uint64_t bulk_iters, lat_iters;
static atomic_uint sink;

/* The current run; touched by the owner (callbacks run there) except `end`
 * and `start` in the records, written by the work and read after its
 * completion. */
static struct {
    wpool_t *bulk_pool, *lat_pool;
    uint64_t ws, we;         /* measured window [ws, we) */
    uint64_t bulk_in_window; /* bulk tasks that ended in it */
    unsigned int bulk_inflight, lat_inflight;
    uint64_t *waits; /* ns, one per measured latency task */
    size_t nwaits;
} run;

static struct bulk_job *bulk_jobs;
static struct lat_job *lat_jobs;
static unsigned int nbulk;
static size_t nlat;
static uint64_t submitted, completed, failed;

static uint64_t now_ns(void)
{
    return wpool_now_ns();
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "%s: %s\n", what, wpool_strerror(rc));
    exit(1);
}

static void spin(uint64_t iters)
{
    unsigned int x = 1;
    for (uint64_t i = 0; i < iters; i++)
        x = x * 1664525u + 1013904223u;
    atomic_fetch_add_explicit(&sink, x & 1, memory_order_relaxed);
}

/* Iterations per us from the fastest of five runs of about 2 ms. */
static void calibrate(void)
{
    const uint64_t n = 2000000;
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        uint64_t t0 = now_ns();
        spin(n);
        uint64_t dt = now_ns() - t0;
        if (dt && dt < best)
            best = dt;
    }
    if (best != UINT64_MAX)
        iters_per_us = (double)n * 1000.0 / (double)best;
    bulk_iters = (uint64_t)(iters_per_us * bulk_us);
    lat_iters = (uint64_t)(iters_per_us * lat_us);
}

static int bulk_work(struct wpool_task *t)
{
    struct bulk_job *j = (struct bulk_job *)t;
    spin(bulk_iters);
    j->end = now_ns();
    return 0;
}

static int lat_work(struct wpool_task *t)
{
    struct lat_job *j = (struct lat_job *)t;
    j->start = now_ns();
    spin(lat_iters);
    return 0;
}

static void submit(wpool_t *pool, struct wpool_task *t)
{
    int rc = wpool_submit(pool, t);
    if (rc)
        die("wpool_submit", rc);
    submitted++;
}

/* Keeps the flood going: each bulk task goes again until the window ends. */
static void bulk_done(struct wpool_task *t, int status)
{
    struct bulk_job *j = (struct bulk_job *)t;
    completed++;
    if (status != 0)
        failed++;
    else if (j->end >= run.ws && j->end < run.we)
        run.bulk_in_window++;
    if (now_ns() < run.we)
        submit(run.bulk_pool, t);
    else
        run.bulk_inflight--;
}

static void lat_done(struct wpool_task *t, int status)
{
    struct lat_job *j = (struct lat_job *)t;
    completed++;
    run.lat_inflight--;
    if (status != 0)
        failed++;
    else if (j->intended >= run.ws)
        run.waits[run.nwaits++] = j->start - j->intended;
}

static void set_class(struct wpool_task *t, int cls)
{
    int rc = wpool_task_set_class(t, cls);
    if (rc)
        die("wpool_task_set_class", rc);
}

static void send_latency(size_t k, uint64_t intended, int cls)
{
    if (k >= nlat) {
        fprintf(stderr, "latency records exhausted\n");
        exit(1);
    }
    struct lat_job *j = &lat_jobs[k];
    int rc = wpool_task_init(&j->task, lat_work, lat_done);
    if (rc)
        die("wpool_task_init", rc);
    set_class(&j->task, cls);
    j->intended = intended;
    run.lat_inflight++;
    submit(run.lat_pool, &j->task);
}

static wpool_t *make_pool(unsigned int n)
{
    struct wpool_options o;
    wpool_options_init(&o);
    o.threads = n;
    wpool_t *pool;
    int rc = wpool_create(&pool, &o);
    if (rc)
        die("wpool_create", rc);
    return pool;
}

static void dispatch(wpool_t *pool)
{
    int rc = wpool_dispatch(pool, WPOOL_DISPATCH_ALL);
    if (rc < 0)
        die("wpool_dispatch", rc);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank quantile (q in parts per 100,000) of sorted ns samples, in us. */
static double quantile_us(const uint64_t *v, size_t n, uint64_t q)
{
    if (n == 0)
        return 0;
    size_t rank = (size_t)(((uint64_t)n * q + 99999) / 100000);
    size_t i = rank ? rank - 1 : 0;
    return (double)v[i < n ? i : n - 1] / 1000.0;
}

/* One mode on fresh pools: out[] gets p50/p99/p99.9 (us) and bulk tasks/s. */
static void run_mode(enum mode m, double out[NMET])
{
    wpool_t *a, *b = NULL;
    int cls = WPOOL_CLASS_NORMAL;
    if (m == TWO_POOLS) {
        a = make_pool(threads - 1);
        b = make_pool(1);
    } else {
        a = make_pool(threads);
    }
    if (has_class[m]) {
        struct wpool_class_options co;
        wpool_class_options_init(&co);
        co.reserved_workers = 1;
        co.lend_after_us = lend_us;
        int rc = wpool_class_create(a, &co);
        if (rc < 0)
            die("wpool_class_create", rc);
        cls = rc; /* the new class's id */
    }
    run.bulk_pool = a;
    run.lat_pool = b ? b : a;
    run.bulk_in_window = 0;
    run.bulk_inflight = run.lat_inflight = 0;
    run.nwaits = 0;
    int lat = has_lat[m];

    uint64_t period = (uint64_t)period_us * 1000;
    uint64_t t0 = now_ns();
    run.ws = t0 + WARMUP_NS;
    run.we = run.ws + (uint64_t)(seconds * 1e9);
    if (has_bulk[m]) {
        for (unsigned int i = 0; i < nbulk; i++) {
            struct wpool_task *t = &bulk_jobs[i].task;
            int rc = wpool_task_init(t, bulk_work, bulk_done);
            if (rc)
                die("wpool_task_init", rc);
            set_class(t, WPOOL_CLASS_NORMAL);
            run.bulk_inflight++;
            submit(a, t);
        }
    }
    struct pollfd fds[2] = {{wpool_fd(a), POLLIN, 0}, {b ? wpool_fd(b) : -1, POLLIN, 0}};
    wpool_t *fd_pool[2] = {a, b};
    nfds_t nfds = b ? 2 : 1;
    uint64_t next = t0;
    size_t k = 0;
    for (;;) {
        uint64_t now = now_ns();
        if (lat && next < run.we && now >= next) {
            /* Late sends go at once, each with its own intended time. */
            send_latency(k, next, cls);
            k++;
            next = t0 + k * period;
            continue;
        }
        if (now >= run.we && run.bulk_inflight == 0 && run.lat_inflight == 0)
            break;
        if (now >= run.we + STALL_NS) {
            fprintf(stderr,
                    "%s: not drained 10 s after the window (%u bulk, %u latency in flight)\n",
                    mode_name[m], run.bulk_inflight, run.lat_inflight);
            exit(1);
        }
        uint64_t until = now + 100000000ull;
        if (lat && next < run.we && next < until)
            until = next;
        if (now < run.we && run.we < until)
            until = run.we;
        struct timespec ts = {(time_t)((until - now) / 1000000000u),
                              (long)((until - now) % 1000000000u)};
        int n = ppoll(fds, nfds, &ts, NULL);
        if (n < 0 && errno != EINTR) {
            perror("ppoll");
            exit(1);
        }
        for (nfds_t i = 0; n > 0 && i < nfds; i++)
            if (fds[i].revents)
                dispatch(fd_pool[i]);
    }
    int rc = wpool_close(a);
    if (rc == 0 && b)
        rc = wpool_close(b);
    if (rc)
        die("wpool_close", rc);
    /* Nothing was in flight: these run no callback. */
    dispatch(a);
    if (b)
        dispatch(b);
    wpool_destroy(a);
    wpool_destroy(b);

    qsort(run.waits, run.nwaits, sizeof(uint64_t), cmp_u64);
    out[P50] = quantile_us(run.waits, run.nwaits, 50000);
    out[P99] = quantile_us(run.waits, run.nwaits, 99000);
    out[P999] = quantile_us(run.waits, run.nwaits, 99900);
    out[BULK] = (double)run.bulk_in_window / seconds;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double res[NMODES][NMET][MAX_ROUNDS];
static double med[NMODES][NMET];

static void fmt_num(char *s, size_t n, double v)
{
    snprintf(s, n, v < 100 ? "%.1f" : "%.0f", v);
}

/* Prints the median (min..max) of a metric and keeps the median. */
static void cell(enum mode m, int met, int last)
{
    double *v = res[m][met];
    qsort(v, rounds, sizeof(double), cmp_double);
    med[m][met] = v[rounds / 2];
    char a[24], b[24], c[24], s[80];
    fmt_num(a, sizeof(a), med[m][met]);
    fmt_num(b, sizeof(b), v[0]);
    fmt_num(c, sizeof(c), v[rounds - 1]);
    snprintf(s, sizeof(s), "%s (%s..%s)", a, b, c);
    printf(last ? " %s" : " %-24s", s);
}

static double ratio(double x, double y)
{
    return y > 0 ? x / y : 0.0;
}

static unsigned int parse_uint(const char *s)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    return *s && !*end && v <= 100000000ul ? (unsigned int)v : 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(a, "--rounds") && more)
            rounds = parse_uint(argv[++i]);
        else if (!strcmp(a, "--seconds") && more)
            seconds = strtod(argv[++i], NULL);
        else if (!strcmp(a, "--threads") && more)
            threads = parse_uint(argv[++i]);
        else if (!strcmp(a, "--bulk-us") && more)
            bulk_us = parse_uint(argv[++i]);
        else if (!strcmp(a, "--lat-us") && more)
            lat_us = parse_uint(argv[++i]);
        else if (!strcmp(a, "--period-us") && more)
            period_us = parse_uint(argv[++i]);
        else if (!strcmp(a, "--lend-us") && more)
            lend_us = parse_uint(argv[++i]);
        else if (!strcmp(a, "--quick")) {
            rounds = 1;
            seconds = 0.5;
        } else {
            fprintf(stderr,
                    "usage: %s [--rounds R] [--seconds S] [--threads T] [--bulk-us US] "
                    "[--lat-us US] [--period-us US] [--lend-us US] [--quick]\n",
                    argv[0]);
            return 2;
        }
    }
    if (rounds < 1 || rounds > MAX_ROUNDS || !(seconds >= 0.01 && seconds <= 3600) || threads < 2 ||
        threads > WPOOL_MAX_THREADS || bulk_us < 1 || lat_us < 1 || period_us < 1 ||
        lend_us > 10000000) {
        fprintf(stderr,
                "rounds 1..%d, seconds 0.01..3600, threads 2..%u (one worker is "
                "reserved, one is not), bulk-us, lat-us, period-us >= 1\n",
                MAX_ROUNDS, WPOOL_MAX_THREADS);
        return 2;
    }
    double sends = ((double)WARMUP_NS / 1e3 + seconds * 1e6) / period_us + 2;
    if (sends > (double)MAX_SAMPLES) {
        fprintf(stderr, "too many latency tasks per mode (%.0f): raise --period-us\n", sends);
        return 2;
    }
    nlat = (size_t)sends;
    nbulk = 4 * threads;
    bulk_jobs = calloc(nbulk, sizeof(*bulk_jobs));
    lat_jobs = calloc(nlat, sizeof(*lat_jobs));
    run.waits = calloc(nlat, sizeof(uint64_t));
    if (!bulk_jobs || !lat_jobs || !run.waits)
        return 1;
    /* ppoll would otherwise wake up to 50 us late (the default timer slack),
     * and every send with it. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    calibrate();

    for (unsigned int r = 0; r < rounds; r++)
        for (unsigned int mi = 0; mi < NMODES; mi++) {
            enum mode m = (enum mode)((mi + r) % NMODES);
            double out[NMET];
            run_mode(m, out);
            for (int met = 0; met < NMET; met++)
                res[m][met][r] = out[met];
        }

    cpu_set_t cs;
    int allowed = sched_getaffinity(0, sizeof(cs), &cs) == 0 ? CPU_COUNT(&cs) : -1;
    printf("work classes: isolation of a latency class from a bulk flood (issue 16)\n");
    printf("machine: %ld CPUs online, %d allowed; %u workers (two pools: %u + 1); "
           "spin %.1f iterations/us\n",
           sysconf(_SC_NPROCESSORS_ONLN), allowed, threads, threads - 1, iters_per_us);
    printf("bulk: %u us tasks, %u in flight; latency: %u us tasks every %u us "
           "(%.0f measured per mode); %.2f s per mode after %llu ms warm-up; "
           "median of %u rounds (min..max); the class's lend_after_us %u\n",
           bulk_us, nbulk, lat_us, period_us, seconds * 1e6 / period_us, seconds,
           WARMUP_NS / 1000000, rounds, lend_us);
    if (allowed > 0 && (unsigned int)allowed < threads + 1)
        printf("note: fewer CPUs than workers + owner: the owner's sends and dispatches "
               "compete with the workers\n");
    printf("%-22s %-24s %-24s %-24s %s\n", "mode", "lat wait p50 (us)", "p99 (us)", "p99.9 (us)",
           "bulk tasks/s");
    for (int m = 0; m < NMODES; m++) {
        printf("%-22s", mode_name[m]);
        for (int met = P50; met <= P999; met++) {
            if (has_lat[m])
                cell((enum mode)m, met, 0);
            else
                printf(" %-24s", "-");
        }
        if (has_bulk[m])
            cell((enum mode)m, BULK, 1);
        else
            printf(" -");
        printf("\n");
    }
    double r1 = ratio(med[CLASSES][P99], med[IDLE][P99]);
    double r2 = ratio(med[BULK_CLASSES][BULK], med[BULK_SINGLE][BULK]);
    printf("latency p99, classes / idle:                 %.2f (target <= 2: %s)\n", r1,
           r1 > 0 && r1 <= 2.0 ? "met" : "missed");
    printf("bulk alone, classes / single queue:          %.3f (target >= 0.95: %s)\n", r2,
           r2 >= 0.95 ? "met" : "missed");
    printf("bulk with latency, classes / single queue:   %.3f\n",
           ratio(med[CLASSES][BULK], med[SINGLE][BULK]));
    printf("bulk with latency, two pools / single queue: %.3f\n",
           ratio(med[TWO_POOLS][BULK], med[SINGLE][BULK]));

    free(bulk_jobs);
    free(lat_jobs);
    free(run.waits);
    if (failed || submitted != completed) {
        fprintf(stderr, "FAILED: %llu submitted, %llu completed, %llu failed or lost\n",
                (unsigned long long)submitted, (unsigned long long)completed,
                (unsigned long long)failed);
        return 1;
    }
    return 0;
}
