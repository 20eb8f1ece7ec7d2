/* SPDX-License-Identifier: MIT */
/*
 * A shared atomic counter updated by many tasks. 10,000 tasks each add their
 * own number to one counter with an atomic add; at the end the counter must
 * hold exactly 1 + 2 + ... + 10,000, and every task must have completed once.
 *
 * Run: build/examples/wpool-counter
 */
#include <wpool.h>

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define TASKS 10000

static atomic_uint_fast64_t counter;

struct add_job {
    struct wpool_task task; /* first member: (struct add_job *)task */
    uint64_t amount;
    int completions;
};

static int add_work(struct wpool_task *task) /* on any worker, concurrently */
{
    struct add_job *job = (struct add_job *)task;
    atomic_fetch_add_explicit(&counter, job->amount, memory_order_relaxed);
    return 0;
}

static void add_done(struct wpool_task *task, int status)
{
    ((struct add_job *)task)->completions++;
}

int main(void)
{
    wpool_t *pool;
    if (wpool_create(&pool, NULL))
        return 1;
    static struct add_job jobs[TASKS];
    for (int i = 0; i < TASKS; i++) {
        jobs[i].amount = (uint64_t)i + 1;
        wpool_task_init(&jobs[i].task, add_work, add_done);
        int rc;
        while ((rc = wpool_submit(pool, &jobs[i].task)) == -EAGAIN)
            wpool_dispatch(pool, 1024); /* queue full: run completions meanwhile */
        if (rc)
            return 1;
    }
    wpool_port_settle(wpool_default_port(pool), -1);
    int bad = 0;
    for (int i = 0; i < TASKS; i++)
        bad += jobs[i].completions != 1;
    uint64_t want = (uint64_t)TASKS * (TASKS + 1) / 2;
    uint64_t got = atomic_load(&counter);
    printf("counter: %" PRIu64 " after %d tasks on %u workers (expected %" PRIu64 ", %s)\n", got,
           TASKS, wpool_threads(pool), want, got == want && !bad ? "correct" : "WRONG");
    wpool_destroy(pool);
    return got == want && !bad ? 0 : 1;
}
