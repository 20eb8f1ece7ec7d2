/* SPDX-License-Identifier: MIT */
/*
 * Producer-consumer. A producer thread generates items and submits each as a
 * task; the pool's workers process them (consumers); the results are gathered
 * on the owner thread, which dispatches the completions. Then the
 * message-channel variant: each task submits its own follow-up from inside
 * its work, a chain of stages, and only the last stage reports to the owner.
 * Last, streams: several producer threads each feed their own streams (think
 * connections), every stream a strand, so each stream's messages are
 * processed one at a time and in order while the streams run in parallel.
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

/* Streams: one strand per stream. A message's work folds its value into the
 * stream's state, an order-sensitive fold (x -> x * 31 + v): any overlap or
 * reordering of one stream's messages changes the result. The strand makes
 * the plain fields safe (one message of a stream runs at a time). */
enum { STREAMS = 8, STREAM_PRODUCERS = 4, PER_STREAM = 20000 };
struct stream {
    struct wpool_strand strand;
    uint64_t state;    /* written only by the stream's messages, one at a time */
    uint64_t next_seq; /* the sequence number the next message must carry */
    long out_of_order;
    struct smsg {
        struct wpool_task task;
        struct stream *s;
        uint64_t seq, value;
    } * msgs;
};

static struct stream streams[STREAMS];
static atomic_long stream_done;

static int smsg_work(struct wpool_task *task) /* a worker */
{
    struct smsg *m = (struct smsg *)task;
    struct stream *s = m->s;
    if (m->seq != s->next_seq)
        s->out_of_order++;
    s->next_seq = m->seq + 1;
    s->state = s->state * 31 + m->value;
    return 0;
}

static void smsg_done(struct wpool_task *task, int status) /* owner thread */
{
    (void)task;
    if (status == 0)
        atomic_fetch_add(&stream_done, 1);
}

static void *stream_producer(void *arg) /* feeds streams p, p + 4, ... */
{
    int p = (int)(intptr_t)arg;
    for (int i = 0; i < PER_STREAM; i++)
        for (int s = p; s < STREAMS; s += STREAM_PRODUCERS) {
            struct smsg *m = &streams[s].msgs[i];
            m->s = &streams[s];
            m->seq = (uint64_t)i;
            m->value = (uint64_t)(i * 7 + s);
            wpool_task_init(&m->task, smsg_work, smsg_done);
            wpool_task_set_strand(&m->task, &streams[s].strand);
            int rc = wpool_submit(pool, &m->task);
            if (rc)
                return (void *)(intptr_t)rc;
        }
    return NULL;
}

static int run_streams(void)
{
    for (int s = 0; s < STREAMS; s++) {
        streams[s].msgs = calloc(PER_STREAM, sizeof(struct smsg));
        if (!streams[s].msgs || wpool_strand_init(&streams[s].strand, pool))
            return 0;
    }
    pthread_t th[STREAM_PRODUCERS];
    for (int p = 0; p < STREAM_PRODUCERS; p++)
        pthread_create(&th[p], NULL, stream_producer, (void *)(intptr_t)p);
    int ok = 1;
    while (atomic_load(&stream_done) < (long)STREAMS * PER_STREAM) {
        if (wpool_port_wait(wpool_default_port(pool), 10000) != 0) {
            ok = 0; /* nothing for 10 s: a producer failed */
            break;
        }
        wpool_dispatch(pool, 1024);
    }
    for (int p = 0; p < STREAM_PRODUCERS; p++) {
        void *err;
        pthread_join(th[p], &err);
        ok &= err == NULL;
    }
    for (int s = 0; s < STREAMS; s++) {
        uint64_t want = 0;
        for (int i = 0; i < PER_STREAM; i++)
            want = want * 31 + (uint64_t)(i * 7 + s);
        ok &= streams[s].state == want && streams[s].out_of_order == 0;
        ok &= wpool_strand_destroy(&streams[s].strand) == 0;
        free(streams[s].msgs);
    }
    printf("streams: %d producers, %d streams of %d messages, each stream in order on the "
           "pool, streams in parallel (%s)\n",
           STREAM_PRODUCERS, STREAMS, PER_STREAM, ok ? "correct" : "WRONG");
    return ok;
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

    /* 3. streams: ordered per stream (strands), parallel across streams */
    int streams_ok = run_streams();

    wpool_destroy(pool);
    free(pa.items);
    free(msgs);
    return ok && chain_ok && streams_ok ? 0 : 1;
}
