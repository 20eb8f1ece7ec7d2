/* SPDX-License-Identifier: MIT */
/*
 * Deferred completion: tasks that wait for I/O without holding a worker.
 *
 * Each request's work function hands the request to an "I/O service" (a
 * helper thread with its own epoll loop, standing in for io_uring, curl or
 * a client of another service), which arms a timer for it, and returns
 * WPOOL_PENDING: the worker is free at once. When the timer fires, the
 * service calls wpool_task_complete() from its own thread, and the request's
 * completion runs on the main thread's event loop like any other. Sixteen
 * requests of up to 40 ms each finish in about 40 ms on two workers.
 *
 * Build: meson compile -C build && ./build/examples/deferred
 */
#include <wpool.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

struct request {
    struct wpool_task task; /* first: the completion gets the request back */
    int id;
    int delay_ms;
    int timer;  /* the service's timerfd for it */
    int answer; /* set by the completion */
};

/* The I/O service: requests arrive as pointers on a pipe (a pointer is
 * written atomically, PIPE_BUF is far larger); a NULL one stops it. */
static int service_pipe[2];

static void *io_service(void *arg)
{
    (void)arg;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, service_pipe[0], &ev);
    for (;;) {
        struct epoll_event got[16];
        int n = epoll_wait(ep, got, 16, -1);
        for (int i = 0; i < n; i++) {
            struct request *r = got[i].data.ptr;
            if (!r) { /* a new request, or the end */
                if (read(service_pipe[0], &r, sizeof(r)) != (ssize_t)sizeof(r) || !r) {
                    close(ep);
                    return NULL;
                }
                r->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
                struct itimerspec when = {.it_value = {.tv_nsec = r->delay_ms * 1000000L}};
                timerfd_settime(r->timer, 0, &when, NULL);
                struct epoll_event tev = {.events = EPOLLIN, .data.ptr = r};
                epoll_ctl(ep, EPOLL_CTL_ADD, r->timer, &tev);
                continue;
            }
            /* The "I/O" is done: finish the task from this thread. A
             * cancelled request (its token) would be finished with
             * -ECANCELED the same way. */
            epoll_ctl(ep, EPOLL_CTL_DEL, r->timer, NULL);
            close(r->timer);
            int rc = wpool_task_complete(&r->task, r->id * r->id);
            if (rc)
                fprintf(stderr, "wpool_task_complete: %s\n", wpool_strerror(rc));
        }
    }
}

/* On a worker: start the asynchronous job, do not wait for it. */
static int start_request(struct wpool_task *task)
{
    struct request *r = (struct request *)task;
    if (write(service_pipe[1], &r, sizeof(r)) != (ssize_t)sizeof(r))
        return -EIO; /* could not start it: an ordinary failure */
    return WPOOL_PENDING;
}

/* On the main thread's loop, once per request. */
static int finished;

static void request_done(struct wpool_task *task, int status)
{
    struct request *r = (struct request *)task;
    r->answer = status;
    finished++;
}

int main(void)
{
    enum { N = 16 };
    if (pipe(service_pipe) != 0)
        return 1;
    pthread_t service;
    pthread_create(&service, NULL, io_service, NULL);

    struct wpool_options opts = WPOOL_OPTIONS_INIT;
    opts.threads = 2;
    wpool_t *pool;
    int rc = wpool_create(&pool, &opts);
    if (rc) {
        fprintf(stderr, "wpool_create: %s\n", wpool_strerror(rc));
        return 1;
    }
    static struct request req[N];
    uint64_t t0 = wpool_now_ns();
    for (int i = 0; i < N; i++) {
        req[i].id = i;
        req[i].delay_ms = 10 + (i * 7) % 31; /* 10 .. 40 ms */
        wpool_task_init(&req[i].task, start_request, request_done);
        if ((rc = wpool_submit(pool, &req[i].task)) != 0) {
            fprintf(stderr, "wpool_submit: %s\n", wpool_strerror(rc));
            return 1;
        }
    }

    /* The event loop: epoll on the pool's fd, dispatch what is ready. */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN};
    epoll_ctl(ep, EPOLL_CTL_ADD, wpool_fd(pool), &ev);
    struct wpool_statistics st;
    wpool_stats(pool, &st);
    printf("after submitting: %llu pending, %u of %u workers busy\n",
           (unsigned long long)st.pending, st.running, st.threads);
    while (finished < N) {
        if (epoll_wait(ep, &ev, 1, 5000) == 0) {
            fprintf(stderr, "no completion for 5 s\n");
            return 1;
        }
        wpool_dispatch(pool, WPOOL_DISPATCH_ALL);
    }
    double ms = (double)(wpool_now_ns() - t0) / 1e6;

    int bad = 0;
    for (int i = 0; i < N; i++)
        bad += req[i].answer != i * i;
    wpool_stats(pool, &st);
    printf("%d requests of 10-40 ms on %u workers: %.0f ms, %d wrong answers\n", N, st.threads, ms,
           bad);
    printf("deferred %llu, pending now %llu; pending time p50 %llu us, max %llu us\n",
           (unsigned long long)st.deferred, (unsigned long long)st.pending,
           (unsigned long long)st.pend.p50_us, (unsigned long long)st.pend.max_us);

    struct request *stop = NULL;
    if (write(service_pipe[1], &stop, sizeof(stop)) != (ssize_t)sizeof(stop))
        return 1;
    pthread_join(service, NULL);
    close(ep);
    wpool_destroy(pool);
    return bad ? 1 : 0;
}
