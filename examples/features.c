/* SPDX-License-Identifier: MIT */
/*
 * A tour of the Piscina-style features, as one small job server:
 *   - worker hooks give each worker its own scratch buffer (wpool_worker_index);
 *   - a producer respects backpressure: max_queue, -EAGAIN, then waits for the
 *     drain notification on its loop before it goes on;
 *   - a second thread uses the blocking submit (wpool_submit_wait);
 *   - a batch goes in with one call and one wakeup;
 *   - a "request" of many jobs shares a cancel token; cancelling it drops the
 *     queued ones, and a long job polls the token and stops early;
 *   - jobs with a deadline time out if they wait too long;
 *   - high-priority jobs overtake a backlog of normal ones;
 *   - statistics at the end, then a shutdown that cancels what is left.
 * Every job's completion is counted on the loop thread; the program exits
 * non-zero if any job got zero or two completions.
 *
 * Run: build/examples/wpool-features
 */
#include <wpool.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { JOBS = 2000, REQUEST = 200, BATCH = 64, URGENT = 8 };

struct job {
    struct wpool_task task; /* first member: (struct job *)task */
    unsigned int id;
    int spin_us;  /* CPU work */
    int long_job; /* runs until its token is cancelled */
    atomic_int started;
    int completions;
    int status;
    unsigned int start_seq; /* order in which jobs started */
};

static unsigned char *g_scratch[64]; /* one buffer per worker, made by the hook */

static void worker_start(void *arg, unsigned int index)
{
    (void)arg;
    g_scratch[index] = malloc(4096);
}

static void worker_stop(void *arg, unsigned int index)
{
    (void)arg;
    free(g_scratch[index]);
    g_scratch[index] = NULL;
}

static int job_work(struct wpool_task *task) /* on a worker */
{
    struct job *j = (struct job *)task;
    unsigned char *scratch = g_scratch[wpool_worker_index()]; /* this worker's */
    if (!scratch)
        return -ENOMEM;
    static atomic_uint seq;
    j->start_seq = atomic_fetch_add(&seq, 1);
    atomic_store(&j->started, 1);
    uint64_t end = wpool_now_ns() + (uint64_t)j->spin_us * 1000u;
    unsigned int h = j->id;
    do {
        if (j->long_job && wpool_task_cancelled(task))
            return -EINTR; /* asked to stop: return early */
        for (int i = 0; i < 64; i++)
            h = h * 31u + (scratch[i] = (unsigned char)(h >> 7));
    } while (wpool_now_ns() < end || j->long_job);
    return (int)(h & 0x7fff);
}

static void job_done(struct wpool_task *task, int status) /* on the loop thread */
{
    struct job *j = (struct job *)task;
    j->completions++;
    j->status = status;
}

static int g_drained;

static void on_drain(wpool_t *pool, void *arg)
{
    (void)pool;
    (void)arg;
    g_drained = 1; /* room again: the producer may go on */
}

static void init_job(struct job *j, unsigned int id, int spin_us)
{
    memset(j, 0, sizeof(*j));
    j->id = id;
    j->spin_us = spin_us;
    wpool_task_init(&j->task, job_work, job_done);
}

/* Runs completions until fn-less waiting is over: `until` becomes true. */
static void loop_until(wpool_t *pool, const int *until)
{
    while (!*until) {
        wpool_port_wait(wpool_default_port(pool), -1);
        wpool_dispatch(pool, 256);
    }
}

struct side {
    wpool_t *pool;
    struct job *jobs;
    int n;
    int refused;
};

static void *blocking_producer(void *arg) /* a thread with no loop of its own */
{
    struct side *s = arg;
    for (int i = 0; i < s->n; i++)
        if (wpool_submit_wait(s->pool, &s->jobs[i].task, -1) != 0)
            s->refused++;
    return NULL;
}

int main(void)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 2;
    o.max_queue = 32;      /* at most 32 jobs waiting beyond idle workers */
    o.drain_low_water = 8; /* then resume once at most 8 wait */
    o.on_worker_start = worker_start;
    o.on_worker_stop = worker_stop;
    wpool_t *pool;
    int rc = wpool_create(&pool, &o);
    if (rc) {
        fprintf(stderr, "wpool_create: %s\n", strerror(-rc));
        return 1;
    }
    wpool_on_drain(pool, NULL, on_drain, NULL);
    struct job *jobs = calloc(JOBS + REQUEST + BATCH + URGENT + 1, sizeof(*jobs));
    struct job *req = jobs + JOBS, *batch = req + REQUEST, *urgent = batch + BATCH;
    struct job *longj = urgent + URGENT;

    /* 1. Backpressure: submit until refused, wait for the drain, go on. A
     * second thread submits the last 200 with the blocking call. */
    for (unsigned int i = 0; i < JOBS; i++)
        init_job(&jobs[i], i, 20);
    struct side side = {pool, jobs + JOBS - 200, 200, 0};
    pthread_t th;
    pthread_create(&th, NULL, blocking_producer, &side);
    int pauses = 0;
    for (unsigned int i = 0; i < JOBS - 200;) {
        g_drained = 0;
        rc = wpool_submit(pool, &jobs[i].task);
        if (rc == -EAGAIN) { /* full: let the loop run until the drain callback */
            pauses++;
            loop_until(pool, &g_drained);
            continue;
        }
        if (rc) {
            fprintf(stderr, "submit: %s\n", strerror(-rc));
            return 1;
        }
        i++;
    }
    pthread_join(th, NULL);
    wpool_port_settle(wpool_default_port(pool), -1);
    printf("backpressure: %d jobs, paused %d times for the drain notification, "
           "%d blocking submits refused\n",
           JOBS, pauses, side.refused);

    /* 2. A batch: one call, one wakeup; how many fit is returned. */
    struct wpool_task *ptrs[BATCH];
    for (unsigned int i = 0; i < BATCH; i++) {
        init_job(&batch[i], 10000 + i, 5);
        ptrs[i] = &batch[i].task;
    }
    int in = 0;
    while (in < BATCH) {
        rc = wpool_submit_batch(pool, ptrs + in, (unsigned int)(BATCH - in));
        if (rc > 0)
            in += rc;
        else if (rc == -EAGAIN)
            wpool_port_wait(wpool_default_port(pool), -1), wpool_dispatch(pool, 256);
        else
            return 1;
    }
    wpool_port_settle(wpool_default_port(pool), -1);
    printf("batch: %d jobs in %s\n", BATCH,
           BATCH > 32 ? "several calls (max_queue 32)" : "one call");

    /* 3. A request of many jobs under one token, plus a long job polling it. */
    wpool_token_t *tok;
    wpool_token_create(&tok);
    init_job(longj, 99999, 0);
    longj->long_job = 1;
    wpool_task_set_token(&longj->task, tok);
    wpool_submit_wait(pool, &longj->task, -1);
    while (!atomic_load(&longj->started)) /* let it start, so it is running when cancelled */
        wpool_dispatch(pool, 256);
    int queued = 0;
    for (unsigned int i = 0; i < REQUEST; i++) {
        init_job(&req[i], 20000 + i, 200);
        wpool_task_set_token(&req[i].task, tok);
        if (wpool_submit(pool, &req[i].task) == 0)
            queued++;
        else
            req[i].completions = -1; /* refused (full): never in flight */
    }
    /* The client went away. Queued jobs are withdrawn (the count returned);
     * a job a worker had just taken sees the flag and is cancelled unrun. */
    int dropped = wpool_token_cancel(tok);
    wpool_port_settle(wpool_default_port(pool), -1);
    int cancelled = 0, ran = 0;
    for (unsigned int i = 0; i < REQUEST; i++) {
        if (req[i].completions < 0) {
            req[i].completions = 1; /* not submitted: nothing to count */
            continue;
        }
        cancelled += req[i].status == -ECANCELED;
        ran += req[i].status >= 0;
    }
    printf("token: %d queued, %d cancelled (%d withdrawn by token_cancel), %d had started; "
           "long job stopped with %s\n",
           queued, cancelled, dropped, ran, longj->status == -EINTR ? "-EINTR" : "?");
    wpool_token_destroy(tok);

    /* 4. Priorities and deadlines. Both workers are kept busy (two jobs that
     * run until released) while 12 normal jobs, then 8 with a deadline, then 8
     * urgent high-priority jobs queue up; the deadline passes; the workers are
     * released. The urgent jobs start first, the expired ones never run. */
    struct job hold[2];
    for (int i = 0; i < 2; i++) {
        init_job(&hold[i], 40000 + (unsigned)i, 0);
        hold[i].long_job = 1;
        wpool_task_set_token(&hold[i].task, NULL);
    }
    wpool_token_t *release;
    wpool_token_create(&release);
    for (int i = 0; i < 2; i++) {
        wpool_task_set_token(&hold[i].task, release);
        wpool_submit_wait(pool, &hold[i].task, -1);
    }
    while (!atomic_load(&hold[0].started) || !atomic_load(&hold[1].started))
        wpool_dispatch(pool, 256);
    uint64_t deadline = wpool_now_ns() + 1000000u; /* 1 ms */
    for (unsigned int i = 0; i < 20; i++) {
        init_job(&jobs[i], i, 50);
        if (i >= 12)
            wpool_task_set_deadline(&jobs[i].task, deadline);
        if (wpool_submit(pool, &jobs[i].task) != 0) /* 28 waiting < max_queue */
            return 1;
    }
    for (unsigned int i = 0; i < URGENT; i++) {
        init_job(&urgent[i], 30000 + i, 10);
        wpool_task_set_priority(&urgent[i].task, WPOOL_PRIORITY_HIGH);
        if (wpool_submit(pool, &urgent[i].task) != 0)
            return 1;
    }
    while (wpool_now_ns() <= deadline) /* let the deadline pass */
        wpool_dispatch(pool, 256);
    wpool_token_cancel(release); /* the holding jobs poll it and return */
    wpool_port_settle(wpool_default_port(pool), -1);
    wpool_token_destroy(release);
    /* The workers take the urgent jobs first. A job's start is counted as
     * its work begins, so a worker preempted between taking an urgent job
     * and starting it may start it after any number of normal jobs the
     * other worker took later; but a worker holds one taken job at a time,
     * so at most one urgent job (one per other worker) starts after the
     * first normal one. */
    int timed_out = 0, late = 0;
    unsigned int first_normal = jobs[0].start_seq;
    for (unsigned int k = 1; k < 12; k++)
        first_normal = jobs[k].start_seq < first_normal ? jobs[k].start_seq : first_normal;
    for (unsigned int i = 0; i < URGENT; i++)
        late += urgent[i].start_seq > first_normal;
    int overtook = late <= 1; /* two workers */
    for (unsigned int i = 12; i < 20; i++)
        timed_out += jobs[i].status == -ETIMEDOUT;
    printf("priorities: the urgent jobs started %s the normal backlog; "
           "deadlines: %d of 8 timed out waiting behind it\n",
           overtook ? "before" : "NOT before", timed_out);

    /* 5. Statistics. */
    struct wpool_statistics st;
    wpool_stats(pool, &st);
    printf("stats: submitted %llu, completed %llu, cancelled %llu, timed out %llu, "
           "utilization %.2f\n"
           "       wait p50 %llu us p99 %llu us max %llu us; run p50 %llu us p99 %llu us\n",
           (unsigned long long)st.submitted, (unsigned long long)st.completed,
           (unsigned long long)st.cancelled, (unsigned long long)st.timed_out, st.utilization,
           (unsigned long long)st.wait.p50_us, (unsigned long long)st.wait.p99_us,
           (unsigned long long)st.wait.max_us, (unsigned long long)st.run.p50_us,
           (unsigned long long)st.run.p99_us);

    /* 6. Shut down, cancelling anything still queued, within a second. */
    rc = wpool_shutdown(pool, WPOOL_CLOSE_CANCEL, 1000);
    wpool_destroy(pool);

    int bad = rc != 0;
    for (unsigned int i = 0; i < JOBS + REQUEST + BATCH + URGENT + 1; i++)
        bad |= jobs[i].completions != 1;
    bad |= st.submitted != st.completed + st.cancelled + st.timed_out;
    bad |= longj->status != -EINTR || cancelled < dropped || !overtook || timed_out != 8;
    printf("%s\n", bad ? "FAILED" : "ok: every job completed exactly once");
    free(jobs);
    return bad;
}
