/* SPDX-License-Identifier: MIT */
/* api suite: completion coalescing (the coalesce_us option). Black-box: only the public header. */
#include <wpool.h>

#include <check.h>
#include "../common/fastcheck.h"
#include "../common/jobs.h"
#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- completion coalescing ---------------------------------------------------- */

static bool fd_readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int rc = poll(&p, 1, timeout_ms);
    ck_assert_int_ge(rc, 0);
    return rc == 1 && (p.revents & POLLIN);
}

/* One worker: a blocker holds it while N jobs (each spinning spin_us) and a
 * gated tail job queue behind it; the blocker is released and the worker runs
 * the N jobs back to back. While it sits in the tail job, returns whether the
 * port's fd is readable. Then checks that the N + 1 completions are posted (a
 * dispatch runs them, signalled or not), that the tail's completion comes
 * through the fd once the worker runs out of work, and that every job
 * completed exactly once. */
static bool readable_while_busy(int dispatch, unsigned coalesce_us, int spin_us, bool own_port,
                                uint64_t *held_ns)
{
    enum { N = 200 };
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 1;
    o.placement = dispatch;
    o.queue_capacity = 256;
    o.coalesce_us = coalesce_us;
    wpool_t *pool = make_pool_opts(&o);
    wpool_port_t *port = wpool_default_port(pool);
    if (own_port)
        ck_assert_int_eq(wpool_port_create(pool, &port), 0);
    struct gate first, last;
    gate_init(&first);
    gate_init(&last);
    atomic_int started = 0;
    struct job *jobs = calloc(N + 2, sizeof(*jobs));
    struct job *blocker = &jobs[N], *tail = &jobs[N + 1];
    job_init(blocker, N);
    blocker->gate = &first;
    blocker->started = &started;
    for (int i = 0; i < N; i++) {
        job_init(&jobs[i], i);
        jobs[i].spin_us = spin_us;
    }
    job_init(tail, N + 1);
    tail->gate = &last;
    tail->started = &started;
    ck_assert_int_eq(wpool_task_set_port(&blocker->task, port), 0);
    ck_assert_int_eq(wpool_submit(pool, &blocker->task), 0);
    while (atomic_load(&started) == 0)
        sched_yield();
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(wpool_task_set_port(&jobs[i].task, port), 0);
        ck_assert_int_eq(wpool_submit(pool, &jobs[i].task), 0);
    }
    ck_assert_int_eq(wpool_task_set_port(&tail->task, port), 0);
    ck_assert_int_eq(wpool_submit(pool, &tail->task), 0);
    uint64_t released = wpool_now_ns();
    gate_open(&first);
    while (atomic_load(&started) < 2) /* the worker is in the tail job */
        sched_yield();
    bool readable = fd_readable(wpool_port_fd(port), 0);
    /* How long the worker has been at it: a held signal may be released
     * once the window has passed, and on a slow machine it may have. */
    if (held_ns)
        *held_ns = wpool_now_ns() - released;
    /* Posted at once either way: N jobs and the blocker. */
    ck_assert_int_eq(wpool_port_dispatch(port, WPOOL_DISPATCH_ALL), N + 1);
    gate_open(&last);
    /* No task left: the tail's completion is signalled at once. A hang here
     * is a held signal never released; the test's timeout fails it. */
    while (tail->done_calls == 0) {
        ck_assert(fd_readable(wpool_port_fd(port), -1));
        wpool_port_dispatch(port, WPOOL_DISPATCH_ALL);
    }
    for (int i = 0; i < N + 2; i++) {
        ck_assert_int_eq(jobs[i].done_calls, 1);
        ck_assert_int_eq(jobs[i].status, i);
    }
    if (own_port)
        ck_assert_int_eq(wpool_port_destroy(port), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&first);
    gate_fini(&last);
    free(jobs);
    return readable;
}

/* coalesce_us holds the loop's wakeup while the worker has more work; off, the
 * first completion signals at once. */
START_TEST(test_coalesce_holds_signal_while_work_waits)
{
    ck_assert(readable_while_busy(policy(_i), 0, 0, false, NULL));
    uint64_t held_ns;
    bool readable = readable_while_busy(policy(_i), WPOOL_MAX_COALESCE_US, 0, false, &held_ns);
    /* Held for the whole window, whatever the machine's speed. */
    ck_assert_msg(!readable || held_ns >= (uint64_t)WPOOL_MAX_COALESCE_US * 1000u,
                  "signalled after %llu ns of a %u us window", (unsigned long long)held_ns,
                  WPOOL_MAX_COALESCE_US);
}
END_TEST

/* The window bounds the hold: with 1 us and jobs of 20 us, the worker signals
 * before it starts the tail job. */
START_TEST(test_coalesce_window_expires)
{
    ck_assert(readable_while_busy(policy(_i), 1, 20, false, NULL));
}
END_TEST

/* Only the pool's own port is coalesced: a port made with wpool_port_create
 * (which may be destroyed while the pool runs) is signalled at once. */
START_TEST(test_coalesce_only_default_port)
{
    ck_assert(readable_while_busy(policy(_i), WPOOL_MAX_COALESCE_US, 0, true, NULL));
}
END_TEST

/* Several workers and a stream of submits through the owner's loop: every
 * completion exactly once, none stranded (a held signal never released would
 * hang the poll, which the timeout fails). */
START_TEST(test_coalesce_stream_exactly_once)
{
    enum { N = 20000, WINDOW = 512 };
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 3;
    o.placement = policy(_i);
    o.queue_capacity = 1024;
    o.coalesce_us = 200;
    wpool_t *pool = make_pool_opts(&o);
    struct job *jobs = calloc(N, sizeof(*jobs));
    int submitted = 0, done = 0;
    while (done < N) {
        while (submitted < N && submitted - done < WINDOW) {
            job_init(&jobs[submitted], submitted);
            jobs[submitted].spin_us = submitted % 7 == 0;
            /* Half the slots are free, but a worker preempted between taking
             * a cell and freeing it keeps that one busy: -EAGAIN is allowed
             * (dispatch, then go on), anything else is not. */
            int rc = wpool_submit(pool, &jobs[submitted].task);
            if (rc == -EAGAIN && submitted > done)
                break;
            ck_assert_int_eq(rc, 0);
            submitted++;
        }
        ck_assert(fd_readable(wpool_fd(pool), -1));
        int ran = wpool_dispatch(pool, WPOOL_DISPATCH_ALL);
        ck_assert_int_ge(ran, 0);
        done += ran;
    }
    ck_assert_int_eq(done, N);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(jobs[i].done_calls, 1);
        ck_assert_int_eq(jobs[i].status, i);
    }
    ck_assert_int_eq(drain_all(pool), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    free(jobs);
}
END_TEST

/* A task that waits for the callback of an earlier task (through a flag the
 * callback raises; bounded at 5 s so that a failure is a status, not a
 * hang): the pattern a held signal must not deadlock. Its worker held that
 * callback's signal when it took this task; the ticker arms it. */
struct callback_waiter {
    struct wpool_task task;
    atomic_int *callback_ran;
    int status;
    int done_calls;
};

static int wait_for_callback(struct wpool_task *t)
{
    struct callback_waiter *w = (struct callback_waiter *)t;
    uint64_t end = wpool_now_ns() + 5ull * 1000000000u;
    while (!atomic_load(w->callback_ran) && wpool_now_ns() < end)
        sched_yield();
    return atomic_load(w->callback_ran) ? 0 : -ETIMEDOUT;
}

static void callback_waiter_done(struct wpool_task *t, int status)
{
    struct callback_waiter *w = (struct callback_waiter *)t;
    w->status = status;
    w->done_calls++;
}

static atomic_int g_first_ran;

static void first_done(struct wpool_task *t, int status)
{
    job_done(t, status);
    atomic_store(&g_first_ran, 1);
}

/* Whether a thread named wpool-ticker sleeps in a futex wait. A joined
 * ticker of an earlier pool may linger in /proc, but not in a system call. */
static bool ticker_asleep(void)
{
    DIR *d = opendir("/proc/self/task");
    ck_assert_ptr_nonnull(d);
    bool asleep = false;
    for (struct dirent *e; !asleep && (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[32] = "";
        snprintf(path, sizeof(path), "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (!fgets(comm, sizeof(comm), f))
            comm[0] = 0;
        fclose(f);
        asleep = strcmp(comm, "wpool-ticker\n") == 0 &&
                 thread_syscall((pid_t)atoi(e->d_name)) == SYS_futex;
    }
    closedir(d);
    return asleep;
}

/* Until the new pool's ticker sleeps waiting for a hold (bounded). Before it
 * gets there its own check would find a hand-over, and a hand-over that
 * forgot to wake it would go unnoticed. */
static void wait_ticker_asleep(void)
{
    uint64_t end = wpool_now_ns() + 10000000000u;
    while (!ticker_asleep()) {
        ck_assert_msg(wpool_now_ns() < end, "the ticker never went to sleep");
        sched_yield();
    }
}

/* One worker: a blocker, then a task, then one that waits for that task's
 * callback, queued behind it. The worker holds the first task's signal when
 * it takes the waiter; the owner, blocked in poll, must still be woken.
 * _i = 0: the default options; 1: the largest window (one second). */
START_TEST(test_coalesce_task_waits_for_callback)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 1;
    if (_i)
        o.coalesce_us = WPOOL_MAX_COALESCE_US;
    ck_assert_uint_ne(o.coalesce_us, 0); /* coalescing is on by default */
    wpool_t *pool = make_pool_opts(&o);
    wait_ticker_asleep(); /* so that only the hand-over's kick can wake it */
    struct gate g;
    gate_init(&g);
    atomic_int started = 0;
    struct job blocker, first;
    hold_worker(pool, &blocker, 1, &g, &started);
    atomic_store(&g_first_ran, 0);
    job_init(&first, 2);
    ck_assert_int_eq(wpool_task_init(&first.task, job_work, first_done), 0);
    struct callback_waiter waiter = {.callback_ran = &g_first_ran};
    ck_assert_int_eq(wpool_task_init(&waiter.task, wait_for_callback, callback_waiter_done), 0);
    ck_assert_int_eq(wpool_submit(pool, &first.task), 0);
    ck_assert_int_eq(wpool_submit(pool, &waiter.task), 0);
    gate_open(&g);
    /* The owner's loop: sleeps until the fd is readable, then dispatches. */
    while (waiter.done_calls == 0) {
        ck_assert(fd_readable(wpool_fd(pool), -1));
        ck_assert_int_ge(wpool_dispatch(pool, WPOOL_DISPATCH_ALL), 0);
    }
    ck_assert_int_eq(waiter.status, 0); /* not -ETIMEDOUT: the callback ran */
    ck_assert_int_eq(first.done_calls, 1);
    ck_assert_int_eq(blocker.done_calls, 1);
    /* The ticker is likely in a window's wait (up to a second): destroy
     * wakes it rather than waiting it out. */
    uint64_t t0 = wpool_now_ns();
    ck_assert_int_eq(wpool_destroy(pool), 0);
    ck_assert_uint_lt(wpool_now_ns() - t0, 500000000u);
    gate_fini(&g);
}
END_TEST

/* A worker that runs dry arms a signal another worker handed to the ticker at
 * once, long before the window ends. Worker Y takes a task and, behind it in
 * one batch, a long one: it holds the first completion's signal and hands it
 * over as it starts the long one. Worker X, released from its blocker then,
 * finds nothing to run: the fd must be readable well within the one-second
 * window. */
START_TEST(test_coalesce_dry_worker_arms_held)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 2;
    o.placement = policy(_i);
    o.coalesce_us = WPOOL_MAX_COALESCE_US;
    wpool_t *pool = make_pool_opts(&o);
    struct gate gx, gy;
    gate_init(&gx);
    gate_init(&gy);
    atomic_int started = 0;
    struct job blocker, quick, slow;
    hold_worker(pool, &blocker, 1, &gx, &started);
    job_init(&quick, 2);
    job_init(&slow, 3);
    slow.gate = &gy;
    slow.started = &started;
    struct wpool_task *batch[] = {&quick.task, &slow.task};
    ck_assert_int_eq(wpool_submit_batch(pool, batch, 2), 2);
    ck_assert(wait_at_least(&started, 2, 10000)); /* Y is in the slow task */
    uint64_t opened = wpool_now_ns();
    gate_open(&gx);
    ck_assert_msg(fd_readable(wpool_fd(pool), 500), "not readable within 500 ms of a 1 s window");
    uint64_t took = wpool_now_ns() - opened;
    ck_assert_int_eq(wpool_dispatch(pool, WPOOL_DISPATCH_ALL), 2); /* blocker and quick */
    ck_assert_uint_lt(took, 500000000u);
    gate_open(&gy);
    ck_assert_int_eq(drain_all(pool), 1);
    ck_assert_int_eq(blocker.done_calls + quick.done_calls + slow.done_calls, 3);
    ck_assert_int_eq(wpool_destroy(pool), 0);
    gate_fini(&gx);
    gate_fini(&gy);
}
END_TEST

static Suite *coalesce_suite(void)
{
    Suite *s = suite_create("coalesce");
    TCase *tc = tcase_create("coalesce");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_coalesce_holds_signal_while_work_waits, 0, 2);
    tcase_add_loop_test(tc, test_coalesce_window_expires, 0, 2);
    tcase_add_loop_test(tc, test_coalesce_only_default_port, 0, 2);
    tcase_add_loop_test(tc, test_coalesce_stream_exactly_once, 0, 2);
    tcase_add_loop_test(tc, test_coalesce_task_waits_for_callback, 0, 2);
    tcase_add_loop_test(tc, test_coalesce_dry_worker_arms_held, 0, 2);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(coalesce_suite());
}
