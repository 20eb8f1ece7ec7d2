/* SPDX-License-Identifier: MIT */
/*
 * wpool demo: an epoll event loop that must stay responsive.
 *
 * A 10 ms timer ticks on the loop. First ten fib(32) jobs run inline on the
 * loop thread: the timer cannot tick while they run. Then the same ten jobs
 * run on a wpool pool: the loop keeps ticking while the workers compute, and
 * each result comes back as a completion callback on the loop thread. The
 * ten jobs form a group, whose one completion says when all are done (the
 * loop's Promise.all).
 *
 * Build and run: see README.md (bash .ci/demo).
 */
#include <wpool.h>

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define JOBS  10
#define FIB_N 32

struct job {
    struct wpool_task task; /* first member: the task record is embedded */
    int n;
    uint64_t result;
};

static int jobs_done;
static int all_done; /* set by the group's completion */
static struct wpool_group_result outcome;
static uint64_t results_sum;
static uint64_t missed; /* timer expirations beyond one per handled tick */

static uint64_t fib(int n)
{
    return n < 2 ? (uint64_t)n : fib(n - 1) + fib(n - 2);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Runs on a worker thread. */
static int job_work(struct wpool_task *task)
{
    struct job *job = (struct job *)task; /* container_of: task is first */
    job->result = fib(job->n);
    return 0;
}

/* Runs on the loop thread, from wpool_dispatch(). */
static void job_done(struct wpool_task *task, int status)
{
    struct job *job = (struct job *)task;
    if (status == 0)
        results_sum += job->result;
    jobs_done++;
}

/* Runs on the loop thread once every job of the group has had its own
 * completion. */
static void all_jobs_done(struct wpool_group *group, const struct wpool_group_result *r)
{
    (void)group;
    outcome = *r;
    all_done = 1;
}

/* err: a wpool call's result (wpool_strerror gives wpool's meaning of the
 * code), or a system call's errno. */
static void die(const char *what, int err, bool from_wpool)
{
    fprintf(stderr, "demo: %s: %s\n", what,
            from_wpool ? wpool_strerror(err) : strerror(err < 0 ? -err : err));
    exit(1);
}

/* One pass of the event loop: returns the timer ticks it handled. */
static unsigned loop_once(int ep, int tfd, wpool_t *pool, int timeout_ms)
{
    struct epoll_event evs[4];
    unsigned ticks = 0;
    int n = epoll_wait(ep, evs, 4, timeout_ms);
    for (int i = 0; i < n; i++) {
        if (evs[i].data.fd == tfd) {
            uint64_t expirations;
            if (read(tfd, &expirations, sizeof(expirations)) == sizeof(expirations)) {
                ticks++;                   /* one tick handled... */
                missed += expirations - 1; /* ...and any that expired unseen */
            }
        } else {
            int rc = wpool_dispatch(pool, 64);
            if (rc < 0)
                die("wpool_dispatch", rc, true);
        }
    }
    return ticks;
}

/* Ticks the loop handles until `done` reaches `target`. */
static unsigned run_loop_until(int ep, int tfd, wpool_t *pool, const int *done, int target)
{
    unsigned ticks = 0;
    while (*done < target)
        ticks += loop_once(ep, tfd, pool, -1);
    return ticks;
}

int main(void)
{
    static struct job jobs[JOBS];
    wpool_t *pool;
    int rc = wpool_create(&pool, NULL);
    if (rc)
        die("wpool_create", rc, true);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (ep < 0 || tfd < 0)
        die("epoll/timerfd", errno, false);
    struct itimerspec every_10ms = {{0, 10000000}, {0, 10000000}};
    timerfd_settime(tfd, 0, &every_10ms, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = tfd};
    epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
    ev.data.fd = wpool_fd(pool);
    epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev);

    printf("wpool %s: %u workers, %d jobs of fib(%d), a 10 ms timer on the loop\n",
           wpool_version_string(), wpool_threads(pool), JOBS, FIB_N);

    /* Inline: the jobs run inside a loop handler, as a naive server would do
     * it. Start right after a tick; while the handler runs, the loop handles
     * nothing, and the timerfd counts the expirations it missed. */
    while (loop_once(ep, tfd, pool, -1) == 0)
        ;
    double t0 = now_ms();
    uint64_t inline_sum = 0;
    for (int i = 0; i < JOBS; i++)
        inline_sum += fib(FIB_N);
    double inline_ms = now_ms() - t0;
    missed = 0;
    unsigned inline_ticks = loop_once(ep, tfd, pool, 0); /* the first tick after it */
    printf("inline : %7.1f ms, loop blocked: %" PRIu64 " timer expirations went unhandled\n",
           inline_ms, missed + inline_ticks);

    /* On the pool: the loop keeps serving the timer while workers compute. */
    while (loop_once(ep, tfd, pool, -1) == 0)
        ;
    missed = 0;
    t0 = now_ms();
    static struct wpool_group group; /* zero-filled before its first init */
    rc = wpool_group_init(&group, pool, NULL, all_jobs_done);
    if (rc)
        die("wpool_group_init", rc, true);
    for (int i = 0; i < JOBS; i++) {
        jobs[i].n = FIB_N;
        wpool_task_init(&jobs[i].task, job_work, job_done);
        wpool_task_set_group(&jobs[i].task, &group);
        rc = wpool_submit(pool, &jobs[i].task);
        if (rc)
            die("wpool_submit", rc, true);
    }
    wpool_group_seal(&group); /* no more members: completes once all are done */
    unsigned pool_ticks = run_loop_until(ep, tfd, pool, &all_done, 1);
    double pool_ms = now_ms() - t0;
    printf("wpool  : %7.1f ms, loop responsive: %u ticks handled, %" PRIu64
           " expirations went unhandled\n",
           pool_ms, pool_ticks, missed);
    printf("group  : %d of %d jobs succeeded (%" PRIu64 " ok, %" PRIu64
           " failed), one completion\n",
           jobs_done, JOBS, outcome.succeeded, outcome.failed);
    printf("speed-up %.2fx on %u workers; results %s\n", inline_ms / pool_ms, wpool_threads(pool),
           results_sum == inline_sum ? "match" : "DIFFER");

    wpool_destroy(pool);
    close(tfd);
    close(ep);
    return results_sum == inline_sum && outcome.succeeded == JOBS ? 0 : 1;
}
