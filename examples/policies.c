/* SPDX-License-Identifier: MIT */
/*
 * ROUND_ROBIN vs FIRST_FREE on uneven tasks. One task in eight is long
 * (~2 ms), the rest short (~20 us). For each policy the same 4000 tasks are
 * submitted at once, and every task records how long it waited between its
 * submit and the start of its work. FIRST_FREE: any free worker takes the
 * next task from one shared queue. ROUND_ROBIN: tasks are dealt out to
 * per-worker queues; an idle worker takes from the others, so a short task
 * dealt to a worker busy with a long one does not wait behind it.
 *
 * Run: build/examples/wpool-policies
 */
#include <wpool.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define TASKS 4000

struct timed {
    struct wpool_task task; /* first member: (struct timed *)task */
    uint64_t spin;          /* work size */
    double submitted_us, started_us;
    int completions;
};

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int timed_work(struct wpool_task *task) /* on a worker */
{
    struct timed *t = (struct timed *)task;
    t->started_us = now_us();
    volatile uint64_t x = 0; /* volatile: the loop really runs */
    for (uint64_t i = 0; i < t->spin; i++)
        x += i;
    return (int)(x & 0); /* reads x: keeps clang's set-but-unused check quiet */
}

static void timed_done(struct wpool_task *task, int status)
{
    ((struct timed *)task)->completions++;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int run(int policy, const char *name, uint64_t short_spin)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.placement = policy;
    o.queue_capacity = 8192;
    wpool_t *pool;
    if (wpool_create(&pool, &o))
        return 1;
    static struct timed tasks[TASKS];
    for (int i = 0; i < TASKS; i++) {
        tasks[i] = (struct timed){.spin = i % 8 == 0 ? short_spin * 100 : short_spin};
        wpool_task_init(&tasks[i].task, timed_work, timed_done);
    }
    for (int i = 0; i < TASKS; i++) {
        tasks[i].submitted_us = now_us();
        if (wpool_submit(pool, &tasks[i].task))
            return 1;
    }
    wpool_port_settle(wpool_default_port(pool), -1);
    static double waits[TASKS];
    int bad = 0;
    for (int i = 0; i < TASKS; i++) {
        waits[i] = tasks[i].started_us - tasks[i].submitted_us;
        bad += tasks[i].completions != 1;
    }
    qsort(waits, TASKS, sizeof(double), cmp_double);
    printf("%-12s %u workers: wait p50 %8.0f us  p90 %8.0f us  p99 %8.0f us  max %8.0f us\n", name,
           wpool_threads(pool), waits[TASKS / 2], waits[TASKS * 9 / 10], waits[TASKS * 99 / 100],
           waits[TASKS - 1]);
    wpool_destroy(pool);
    return bad;
}

int main(void)
{
    /* Calibrate a ~20 us short task on this machine. */
    uint64_t spin = 1000;
    for (;;) {
        double t0 = now_us();
        volatile uint64_t x = 0;
        for (uint64_t i = 0; i < spin; i++)
            x += i;
        (void)x;
        if (now_us() - t0 >= 20 || spin > (1ull << 40))
            break;
        spin *= 2;
    }
    printf("%d tasks, 1 in 8 long (~2 ms), the rest ~20 us; time from submit to start:\n", TASKS);
    int bad = run(WPOOL_FIRST_FREE, "FIRST_FREE", spin);
    bad += run(WPOOL_ROUND_ROBIN, "ROUND_ROBIN", spin);
    return bad ? 1 : 0;
}
