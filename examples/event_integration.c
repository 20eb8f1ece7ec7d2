/* SPDX-License-Identifier: MIT */
/*
 * wpool + libevent: the pool's completion fd is a persistent EV_READ event,
 * so completions run on the event_base's thread. A 10 ms timer event keeps
 * firing while the workers compute.
 *
 * Run: build/examples/wpool-libevent [jobs]   (exit status 0 when every
 * result arrived exactly once, on the loop thread, and is right)
 */
#include <wpool.h>

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct job {
    struct wpool_task task; /* first member: (struct job *)task */
    uint32_t n;
    uint64_t sum;
    int completions;
};

static struct event_base *base;
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

static void on_pool_readable(evutil_socket_t fd, short what, void *arg)
{
    wpool_t *pool = arg;
    int rc = wpool_dispatch(pool, 64);
    if (rc < 0)
        fprintf(stderr, "wpool_dispatch: %d\n", rc);
    if (done == jobs)
        event_base_loopbreak(base);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    ticks++;
}

int main(int argc, char **argv)
{
    jobs = argc > 1 ? atoi(argv[1]) : 64;
    if (jobs <= 0)
        return 2;
    wpool_t *pool;
    int rc = wpool_create(&pool, NULL); /* this thread owns the default port */
    if (rc) {
        fprintf(stderr, "wpool_create: %d\n", rc);
        return 1;
    }
    base = event_base_new();
    loop_thread = pthread_self();
    struct event *watch =
        event_new(base, wpool_fd(pool), EV_READ | EV_PERSIST, on_pool_readable, pool);
    struct event *ticker = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval every_10ms = {0, 10000};
    event_add(watch, NULL);
    event_add(ticker, &every_10ms);

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
    if (done < jobs)
        event_base_dispatch(base);

    for (int i = 0; i < jobs; i++)
        wrong += js[i].completions != 1;
    printf("libevent: %d jobs on %u workers, %d completions on the loop thread, %d wrong, "
           "%d timer ticks meanwhile\n",
           jobs, wpool_threads(pool), done, wrong, ticks);
    event_free(watch);
    event_free(ticker);
    event_base_free(base);
    wpool_destroy(pool);
    free(js);
    return wrong == 0 && done == jobs ? 0 : 1;
}
