/* SPDX-License-Identifier: MIT */
/*
 * Producer-consumer. A producer thread generates items and submits each as a
 * task; the pool's workers process them (consumers); the results are gathered
 * on the owner thread, which dispatches the completions. Then the
 * message-channel variant: each task submits its own follow-up from inside
 * its work, a chain of stages, and only the last stage reports to the owner.
 *
 * Run: build/examples/wpool-producer-consumer [items]
 */
#include <wpool.h>

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct item {
    struct wpool_task task; /* first member: (struct item *)task */
    uint64_t value;
    uint64_t result;
};

static wpool_t *pool;
static uint64_t gathered_sum; /* owner thread only */
static long gathered;

static int square_work(struct wpool_task *task) /* consumer: a worker */
{
    struct item *it = (struct item *)task;
    it->result = it->value * it->value;
    return 0;
}

static void gather(struct wpool_task *task, int status) /* owner thread */
{
    struct item *it = (struct item *)task;
    gathered_sum += it->result;
    gathered++;
}

struct producer_args {
    struct item *items;
    long n;
};

static void *producer(void *arg) /* generates items, submits them */
{
    struct producer_args *p = arg;
    for (long i = 0; i < p->n; i++) {
        p->items[i].value = (uint64_t)i;
        wpool_task_init(&p->items[i].task, square_work, gather);
        int rc;
        while ((rc = wpool_submit(pool, &p->items[i].task)) == -EAGAIN)
            sched_yield(); /* queue full: the consumers catch up */
        if (rc)
            return (void *)(intptr_t)rc;
    }
    return NULL;
}

/* Message channel: the work of stage k submits stage k+1 itself, from the
 * worker; a task cannot resubmit its own record while in flight, so each
 * message has one record per stage (task->data points back to the message). */
#define STAGES 5
struct message {
    struct wpool_task stage[STAGES];
    uint64_t payload; /* handed from stage to stage; submit orders the writes */
    atomic_int submit_error;
};

static long stage_completions, messages_delivered; /* owner thread only */

static int stage_work(struct wpool_task *task) /* on a worker */
{
    struct message *m = task->data;
    int k = (int)(task - m->stage);
    m->payload = m->payload * 31 + (uint64_t)k;
    if (k + 1 < STAGES) {
        int rc;
        /* -EAGAIN cannot last here: at most one stage per message is queued
         * (1000 < 4096 slots). With more messages than slots, every worker
         * could wait here on a full queue that only they drain: run the
         * stage inline or fail it instead of retrying. */
        while ((rc = wpool_submit(pool, &m->stage[k + 1])) == -EAGAIN)
            sched_yield();
        if (rc)
            atomic_store(&m->submit_error, rc);
    }
    return 0;
}

static void stage_done(struct wpool_task *task, int status) /* owner thread */
{
    struct message *m = task->data;
    stage_completions++;
    if (task == &m->stage[STAGES - 1])
        messages_delivered++;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    if (n <= 0)
        return 2;
    int rc = wpool_create(&pool, NULL);
    if (rc) {
        fprintf(stderr, "wpool_create: %d\n", rc);
        return 1;
    }

    /* 1. producer thread -> pool consumers -> owner gathers */
    struct producer_args pa = {calloc((size_t)n, sizeof(struct item)), n};
    pthread_t th;
    pthread_create(&th, NULL, producer, &pa);
    while (gathered < n) {
        wpool_port_wait(wpool_default_port(pool), -1);
        wpool_dispatch(pool, 1024);
    }
    void *perr;
    pthread_join(th, &perr);
    uint64_t want = 0;
    for (long i = 0; i < n; i++)
        want += (uint64_t)i * (uint64_t)i;
    printf("producer-consumer: %ld items, sum of squares %" PRIu64 " (%s)\n", gathered,
           gathered_sum, gathered_sum == want && !perr ? "correct" : "WRONG");
    int ok = gathered_sum == want && !perr;

    /* 2. message channel: each stage's work submits the next stage */
    enum { MESSAGES = 1000 };
    struct message *msgs = calloc(MESSAGES, sizeof(*msgs));
    for (int i = 0; i < MESSAGES; i++) {
        msgs[i].payload = (uint64_t)i;
        for (int k = 0; k < STAGES; k++) {
            msgs[i].stage[k].data = &msgs[i];
            wpool_task_init(&msgs[i].stage[k], stage_work, stage_done);
        }
        while ((rc = wpool_submit(pool, &msgs[i].stage[0])) == -EAGAIN)
            wpool_dispatch(pool, 1024);
    }
    wpool_port_settle(wpool_default_port(pool), -1); /* follow-ups included */
    int chain_ok = messages_delivered == MESSAGES && stage_completions == MESSAGES * STAGES;
    for (int i = 0; i < MESSAGES; i++) {
        uint64_t p = (uint64_t)i;
        for (int k = 0; k < STAGES; k++)
            p = p * 31 + (uint64_t)k;
        chain_ok &= msgs[i].payload == p && atomic_load(&msgs[i].submit_error) == 0;
    }
    printf("message channel: %ld messages through %d stages, each stage submitted by the "
           "previous one on a worker (%s)\n",
           messages_delivered, STAGES, chain_ok ? "correct" : "WRONG");

    wpool_destroy(pool);
    free(pa.items);
    free(msgs);
    return ok && chain_ok ? 0 : 1;
}
