/* SPDX-License-Identifier: MIT */
/*
 * Several event loops, one pool. Each loop thread (an epoll loop, as in a
 * multi-reactor server) creates its own completion port, sends its tasks
 * there with wpool_task_set_port, and watches that port's fd. Completions come
 * back to the loop that submitted them, never to another.
 *
 * Run: build/examples/wpool-multi-loop [loops] [jobs-per-loop]
 * (exit status 0 when every completion ran once, on its own loop's thread)
 */
#include <wpool.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

struct loop;

struct job {
    struct wpool_task task; /* first member: (struct job *)task */
    struct loop *loop;
    uint32_t input;
    uint32_t output;
    int completions;
};

struct loop {
    pthread_t thread;
    wpool_t *pool;
    wpool_port_t *port;
    int index, njobs, done, wrong;
    struct job *jobs;
};

static int hash_work(struct wpool_task *task) /* on a worker */
{
    struct job *job = (struct job *)task;
    uint32_t h = job->input;
    for (int i = 0; i < 100000; i++)
        h = h * 2654435761u + 0x9e3779b9u;
    job->output = h;
    return 0;
}

static void hash_done(struct wpool_task *task, int status) /* on its loop's thread */
{
    struct job *job = (struct job *)task;
    if (status != 0 || !pthread_equal(pthread_self(), job->loop->thread))
        job->loop->wrong++;
    job->completions++;
    job->loop->done++;
}

static void *run_loop(void *arg)
{
    struct loop *l = arg;
    int rc = wpool_port_create(l->pool, &l->port); /* owned by this thread */
    if (rc) {
        fprintf(stderr, "loop %d: wpool_port_create: %d\n", l->index, rc);
        l->wrong++;
        return NULL;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = l->port};
    epoll_ctl(ep, EPOLL_CTL_ADD, wpool_port_fd(l->port), &ev);

    int submitted = 0;
    while (l->done < l->njobs) {
        while (submitted < l->njobs) { /* submit until the queue is full */
            struct job *job = &l->jobs[submitted];
            job->loop = l;
            job->input = (uint32_t)(l->index * 100000 + submitted);
            wpool_task_init(&job->task, hash_work, hash_done);
            wpool_task_set_port(&job->task, l->port);
            rc = wpool_submit(l->pool, &job->task);
            if (rc == -EAGAIN && submitted == l->done) {
                /* The shared queue is full of other loops' tasks and none
                 * of ours is in flight: no completion will wake this loop,
                 * and there is nothing here to dispatch, so wait for room
                 * (workers make it without us). */
                rc = wpool_submit_wait(l->pool, &job->task, -1);
            } else if (rc == -EAGAIN) {
                break; /* ours are in flight: their completions wake us */
            }
            if (rc) {
                fprintf(stderr, "loop %d: wpool_submit: %d\n", l->index, rc);
                l->wrong++;
                return NULL;
            }
            submitted++;
        }
        if (epoll_wait(ep, &ev, 1, -1) == 1)
            wpool_port_dispatch(ev.data.ptr, 128);
    }
    for (int i = 0; i < l->njobs; i++)
        l->wrong += l->jobs[i].completions != 1;
    close(ep);
    if (wpool_port_destroy(l->port) != 0) /* nothing in flight any more */
        l->wrong++;
    return NULL;
}

int main(int argc, char **argv)
{
    int nloops = argc > 1 ? atoi(argv[1]) : 4;
    int per = argc > 2 ? atoi(argv[2]) : 2000;
    if (nloops <= 0 || nloops > 64 || per <= 0)
        return 2;
    wpool_t *pool;
    struct wpool_options opts = WPOOL_OPTIONS_INIT;
    opts.queue_capacity = 256; /* small, so that loops also meet -EAGAIN */
    int rc = wpool_create(&pool, &opts);
    if (rc) {
        fprintf(stderr, "wpool_create: %d\n", rc);
        return 1;
    }
    struct loop *loops = calloc((size_t)nloops, sizeof(*loops));
    for (int i = 0; i < nloops; i++) {
        loops[i] = (struct loop){.pool = pool, .index = i, .njobs = per};
        loops[i].jobs = calloc((size_t)per, sizeof(struct job));
        pthread_create(&loops[i].thread, NULL, run_loop, &loops[i]);
    }
    int wrong = 0;
    for (int i = 0; i < nloops; i++) {
        pthread_join(loops[i].thread, NULL);
        printf("loop %d: %d completions on its own thread, %d wrong\n", i, loops[i].done,
               loops[i].wrong);
        wrong += loops[i].wrong + (loops[i].done != per);
        free(loops[i].jobs);
    }
    printf("%d loops shared %u workers: %s\n", nloops, wpool_threads(pool),
           wrong ? "FAILED" : "every completion came home");
    wpool_destroy(pool);
    free(loops);
    return wrong ? 1 : 0;
}
