/* SPDX-License-Identifier: MIT */
/*
 * wpool + libuv: the pool's completion fd is watched with a uv_poll_t, so
 * completions run on the libuv loop thread, between its other callbacks.
 * A 10 ms uv_timer keeps ticking while the workers compute.
 *
 * Run: build/examples/wpool-uv [jobs]   (exit status 0 when every result
 * arrived exactly once, on the loop thread, and is right)
 */
#include <wpool.h>

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

struct job {
    struct wpool_task task; /* first member: (struct job *)task */
    uint32_t n;
    uint64_t sum; /* result: 1 + 2 + ... + n, the slow way */
    int completions;
};

static wpool_t *pool;
static uv_poll_t pool_watch;
static uv_timer_t ticker;
static pthread_t loop_thread;
static int done, jobs, wrong, ticks;

static int sum_work(struct wpool_task *task) /* on a worker */
{
    struct job *job = (struct job *)task;
    volatile uint64_t s = 0;
    for (uint32_t i = 1; i <= job->n; i++)
        s += i;
    job->sum = s;
    return 0;
}

static void sum_done(struct wpool_task *task, int status) /* on the loop thread */
{
    struct job *job = (struct job *)task;
    uint64_t want = (uint64_t)job->n * (job->n + 1) / 2;
    if (status != 0 || job->sum != want || !pthread_equal(pthread_self(), loop_thread))
        wrong++;
    job->completions++;
    done++;
}

static void on_pool_readable(uv_poll_t *watch, int status, int events)
{
    int rc = wpool_dispatch(pool, 64); /* runs up to 64 sum_done here */
    if (rc < 0)
        fprintf(stderr, "wpool_dispatch: %d\n", rc);
    if (done == jobs) { /* all in: stop watching so uv_run returns */
        uv_poll_stop(watch);
        uv_timer_stop(&ticker);
    }
}

static void on_tick(uv_timer_t *timer)
{
    ticks++;
}

int main(int argc, char **argv)
{
    jobs = argc > 1 ? atoi(argv[1]) : 64;
    if (jobs <= 0)
        return 2;
    uv_loop_t *loop = uv_default_loop();
    loop_thread = pthread_self();
    int rc = wpool_create(&pool, NULL); /* this thread owns the default port */
    if (rc) {
        fprintf(stderr, "wpool_create: %d\n", rc);
        return 1;
    }
    uv_poll_init(loop, &pool_watch, wpool_fd(pool));
    uv_poll_start(&pool_watch, UV_READABLE, on_pool_readable);
    uv_timer_init(loop, &ticker);
    uv_timer_start(&ticker, on_tick, 10, 10);

    struct job *js = calloc((size_t)jobs, sizeof(*js));
    for (int i = 0; i < jobs; i++) {
        js[i].n = 2000000 + (uint32_t)i;
        wpool_task_init(&js[i].task, sum_work, sum_done);
        while ((rc = wpool_submit(pool, &js[i].task)) == -EAGAIN)
            wpool_dispatch(pool, 64); /* queue full: make room */
        if (rc) {
            fprintf(stderr, "wpool_submit: %d\n", rc);
            return 1;
        }
    }
    uv_run(loop, UV_RUN_DEFAULT);

    for (int i = 0; i < jobs; i++)
        wrong += js[i].completions != 1;
    printf("libuv: %d jobs on %u workers, %d completions on the loop thread, %d wrong, "
           "%d timer ticks meanwhile\n",
           jobs, wpool_threads(pool), done, wrong, ticks);
    uv_close((uv_handle_t *)&pool_watch, NULL);
    uv_close((uv_handle_t *)&ticker, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    wpool_destroy(pool);
    uv_loop_close(loop);
    free(js);
    return wrong == 0 && done == jobs ? 0 : 1;
}
