/* SPDX-License-Identifier: MIT */
/*
 * Basic offload: count to a billion on a worker while the main loop keeps
 * ticking every 100 ms. The loop only waits on its port with a timeout
 * (wpool_port_wait), the way a program without an fd-based loop would.
 *
 * Run: build/examples/wpool-offload [count]   (default 1000000000)
 */
#include <wpool.h>

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct count_job {
    struct wpool_task task; /* first member: (struct count_job *)task */
    uint64_t target;
    uint64_t reached;
    int finished;
};

static int count_work(struct wpool_task *task) /* on a worker */
{
    struct count_job *job = (struct count_job *)task;
    volatile uint64_t i = 0; /* volatile: really count, one by one */
    while (i < job->target)
        i++;
    job->reached = i;
    return 0;
}

static void count_done(struct wpool_task *task, int status) /* on main */
{
    struct count_job *job = (struct count_job *)task;
    job->finished = 1;
    printf("worker counted to %" PRIu64 " (status %d)\n", job->reached, status);
}

int main(int argc, char **argv)
{
    struct count_job job = {.target = argc > 1 ? strtoull(argv[1], NULL, 10) : 1000000000ull};
    wpool_t *pool;
    int rc = wpool_create(&pool, NULL);
    if (rc) {
        fprintf(stderr, "wpool_create: %d\n", rc);
        return 1;
    }
    wpool_task_init(&job.task, count_work, count_done);
    rc = wpool_submit(pool, &job.task);
    if (rc) {
        fprintf(stderr, "wpool_submit: %d\n", rc);
        return 1;
    }
    int ticks = 0;
    while (!job.finished) {
        rc = wpool_port_wait(wpool_default_port(pool), 100);
        if (rc == -ETIMEDOUT)
            printf("main loop tick %d: still responsive\n", ++ticks);
        else
            wpool_dispatch(pool, 16);
    }
    printf("%d ticks while the worker counted\n", ticks);
    wpool_destroy(pool);
    return job.reached == job.target ? 0 : 1;
}
