/* SPDX-License-Identifier: MIT */
/*
 * The pools under test, behind struct peer. Each owner waits the way that
 * pool is meant to be used from an event loop:
 *   wpool   epoll on wpool_fd(), then wpool_dispatch()
 *   plain   epoll on its eventfd, then plain_pool_dispatch()
 *   libuv   uv_run(UV_RUN_ONCE): after_work_cb runs on the loop
 *   glib    the owner pops a GAsyncQueue that workers push completions to
 */
#include "bench.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#ifdef BENCH_HAVE_GLIB
#include <glib.h>
#endif

#define DISPATCH_MAX 4096u

/* Waits on one fd with epoll; the owner's "event loop". */
static int loop_ep = -1;

static int loop_watch(int fd)
{
    loop_ep = epoll_create1(EPOLL_CLOEXEC);
    if (loop_ep < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(loop_ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -errno;
    return 0;
}

static void loop_wait(int timeout_ms)
{
    struct epoll_event ev;
    while (epoll_wait(loop_ep, &ev, 1, timeout_ms) < 0 && errno == EINTR)
        ;
}

static void loop_close(void)
{
    close(loop_ep);
    loop_ep = -1;
}

/* ---- wpool ---- */

static wpool_t *wp;

static int wp_work(struct wpool_task *task)
{
    bench_run((struct btask *)task);
    return 0;
}

static void wp_done(struct wpool_task *task, int status)
{
    if (status != 0)
        bench_die("wpool completion status", status);
    bench_complete((struct btask *)task);
}

static int wp_placement = WPOOL_FIRST_FREE; /* peer wpool-rr: ROUND_ROBIN */

/* coalesce_us: -1 keeps the default (WPOOL_BENCH_COALESCE_US overrides it,
 * for sweeps by hand; bench/run.sh never sets it). */
static int wp_create_opts(unsigned int threads, int pin, int timing, int coalesce_us)
{
    struct wpool_options o;
    wpool_options_init(&o);
    o.threads = threads;
    o.pin = pin;
    o.placement = wp_placement;
    const char *env = getenv("WPOOL_BENCH_COALESCE_US");
    if (coalesce_us >= 0)
        o.coalesce_us = (unsigned int)coalesce_us;
    else if (env)
        o.coalesce_us = (unsigned int)strtoul(env, NULL, 10);
#ifdef BENCH_HAVE_TIMING
    o.timing = timing;
#else
    (void)timing;
#endif
    int rc = wpool_create(&wp, &o);
    if (rc)
        return rc;
    return loop_watch(wpool_fd(wp));
}

/* Peer wpool-port: completions go to a port of the owner's own (as a loop
 * thread of a server with several loops has), not the default one. */
static wpool_port_t *wp_port;

static void wp_prepare(struct btask *t)
{
    int rc = wpool_task_init(&t->rec.wp, wp_work, wp_done);
    if (rc == 0 && wp_port)
        rc = wpool_task_set_port(&t->rec.wp, wp_port);
    if (rc)
        bench_die("wpool_task_init", rc);
}

static int wp_create(unsigned int threads)
{
    return wp_create_opts(threads, 0, 1, -1);
}

static int wp_create_pin(unsigned int threads)
{
    return wp_create_opts(threads, 1, 1, -1);
}

static int wp_create_port(unsigned int threads)
{
    int rc = wp_create_opts(threads, 0, 1, -1);
    if (rc)
        return rc;
    loop_close();
    rc = wpool_port_create(wp, &wp_port);
    if (rc)
        return rc;
    return loop_watch(wpool_port_fd(wp_port));
}

/* Peer wpool-rr: the other placement policy, a queue per worker. */
static int wp_create_rr(unsigned int threads)
{
    wp_placement = WPOOL_ROUND_ROBIN;
    int rc = wp_create_opts(threads, 0, 1, -1);
    wp_placement = WPOOL_FIRST_FREE;
    return rc;
}

static int wp_create_notiming(unsigned int threads)
{
    return wp_create_opts(threads, 0, 0, -1);
}

/* Peer wpool-at-once: completion coalescing off, every completion after an
 * idle loop signalled at once (the default before 0.3). */
static int wp_create_at_once(unsigned int threads)
{
    return wp_create_opts(threads, 0, 1, 0);
}

static int wp_submit(struct btask *t)
{
    return wpool_submit(wp, &t->rec.wp);
}

#ifdef BENCH_HAVE_BATCH
static int wp_submit_batch(struct btask **t, unsigned int n)
{
    struct wpool_task *tasks[64];
    if (n > 64)
        n = 64;
    for (unsigned int i = 0; i < n; i++)
        tasks[i] = &t[i]->rec.wp;
    return wpool_submit_batch(wp, tasks, n);
}
#define WP_BATCH wp_submit_batch
#else
#define WP_BATCH NULL
#endif

static int wp_poll(int timeout_ms)
{
    wpool_port_t *port = wp_port ? wp_port : wpool_default_port(wp);
    int n = wpool_port_dispatch(port, DISPATCH_MAX);
    if (n == 0 && timeout_ms != 0) {
        loop_wait(timeout_ms);
        n = wpool_port_dispatch(port, DISPATCH_MAX);
    }
    if (n < 0)
        bench_die("wpool_dispatch", n);
    return n;
}

static void wp_destroy(void)
{
    int rc = 0;
    if (wp_port) {
        rc = wpool_port_settle(wp_port, -1);
        if (rc >= 0)
            rc = wpool_port_destroy(wp_port);
        if (rc)
            bench_die("wpool_port_destroy", rc);
        wp_port = NULL;
    }
    rc = wpool_destroy(wp);
    if (rc)
        bench_die("wpool_destroy", rc);
    loop_close();
}

#define WP_NOTE "epoll on wpool_fd + wpool_dispatch; wpool_submit is thread-safe"

/* The wpool variants differ only in name, note and options (create). */
#define WP_PEER(name, note, create)                                                                \
    {                                                                                              \
        name, WP_NOTE note, sizeof(struct wpool_task), create, wp_prepare, wp_submit, wp_submit,   \
            WP_BATCH, wp_poll, wp_destroy                                                          \
    }

const struct peer peer_wpool = WP_PEER("wpool", "", wp_create);
const struct peer peer_wpool_pin = WP_PEER("wpool-pin", ", pin = 1", wp_create_pin);
const struct peer peer_wpool_rr = WP_PEER("wpool-rr", ", placement = ROUND_ROBIN", wp_create_rr);
const struct peer peer_wpool_port = WP_PEER("wpool-port", ", own port", wp_create_port);
const struct peer peer_wpool_notiming =
    WP_PEER("wpool-notiming", ", timing = 0", wp_create_notiming);
const struct peer peer_wpool_at_once =
    WP_PEER("wpool-at-once", ", coalesce_us = 0", wp_create_at_once);

/* ---- plain mutex + condvar pool ---- */

static struct plain_pool *pp;

static void pl_work(struct plain_task *t)
{
    bench_run((struct btask *)t);
}

static void pl_done(struct plain_task *t)
{
    bench_complete((struct btask *)t);
}

static int pl_create(unsigned int threads)
{
    int rc = plain_pool_create(&pp, threads);
    if (rc)
        return rc;
    return loop_watch(plain_pool_fd(pp));
}

static void pl_prepare(struct btask *t)
{
    t->rec.pl.work = pl_work;
    t->rec.pl.done = pl_done;
}

static int pl_submit(struct btask *t)
{
    plain_pool_submit(pp, &t->rec.pl);
    return 0;
}

static int pl_poll(int timeout_ms)
{
    int n = (int)plain_pool_dispatch(pp);
    if (n == 0 && timeout_ms != 0) {
        loop_wait(timeout_ms);
        n = (int)plain_pool_dispatch(pp);
    }
    return n;
}

static void pl_destroy(void)
{
    plain_pool_destroy(pp);
    loop_close();
}

const struct peer peer_plain = {"plain",
                                "mutex+condvar queue, completions on a locked list + eventfd "
                                "(epoll); submit is thread-safe",
                                sizeof(struct plain_task),
                                pl_create,
                                pl_prepare,
                                pl_submit,
                                pl_submit,
                                NULL,
                                pl_poll,
                                pl_destroy};

/* ---- libuv: uv_queue_work ---- */

#ifdef BENCH_HAVE_UV
static uv_loop_t uvl;
static uv_async_t uv_handoff_async;
/* Foreign threads may not call uv_queue_work: they push here and
 * uv_async_send; the owner submits on their behalf. */
static struct btask *_Atomic uv_handoff;

static void uv_work(uv_work_t *req)
{
    bench_run((struct btask *)req);
}

static void uv_after(uv_work_t *req, int status)
{
    if (status != 0)
        bench_die("uv after_work status", status);
    bench_complete((struct btask *)req);
}

static void uv_handoff_cb(uv_async_t *h)
{
    struct btask *t = atomic_exchange_explicit(&uv_handoff, NULL, memory_order_acquire);
    while (t) {
        struct btask *next = t->next;
        int rc = uv_queue_work(&uvl, &t->rec.uv, uv_work, uv_after);
        if (rc)
            bench_die("uv_queue_work", rc);
        t = next;
    }
}

static int uv_create(unsigned int threads)
{
    /* libuv sizes its (process-wide) pool from the environment, once, at the
     * first uv_queue_work. */
    char buf[16];
    snprintf(buf, sizeof(buf), "%u", threads);
    setenv("UV_THREADPOOL_SIZE", buf, 1);
    int rc = uv_loop_init(&uvl);
    if (rc)
        return rc;
    rc = uv_async_init(&uvl, &uv_handoff_async, uv_handoff_cb);
    if (rc)
        return rc;
    return 0;
}

static int uv_submit(struct btask *t)
{
    return uv_queue_work(&uvl, &t->rec.uv, uv_work, uv_after);
}

static int uv_submit_mt(struct btask *t)
{
    struct btask *old = atomic_load_explicit(&uv_handoff, memory_order_relaxed);
    do
        t->next = old;
    while (!atomic_compare_exchange_weak_explicit(&uv_handoff, &old, t, memory_order_release,
                                                  memory_order_relaxed));
    if (!old) /* the first of a burst wakes the loop; uv coalesces the rest */
        uv_async_send(&uv_handoff_async);
    return 0;
}

static int uv_poll(int timeout_ms)
{
    uint64_t before = bench_completed;
    uv_run(&uvl, timeout_ms == 0 ? UV_RUN_NOWAIT : UV_RUN_ONCE);
    return (int)(bench_completed - before);
}

static void uv_destroy(void)
{
    uv_close((uv_handle_t *)&uv_handoff_async, NULL);
    uv_run(&uvl, UV_RUN_DEFAULT);
    uv_loop_close(&uvl);
}

const struct peer peer_uv = {"libuv",
                             "uv_queue_work, after_work_cb on uv_run; uv_queue_work is not "
                             "thread-safe: other threads hand tasks over with uv_async_send and "
                             "the owner submits them",
                             sizeof(uv_work_t),
                             uv_create,
                             NULL,
                             uv_submit,
                             uv_submit_mt,
                             NULL,
                             uv_poll,
                             uv_destroy};
#endif

/* ---- GLib: GThreadPool + GAsyncQueue ---- */

#ifdef BENCH_HAVE_GLIB
static GThreadPool *gp;
static GAsyncQueue *gq;

static void gp_work(gpointer data, gpointer user)
{
    bench_run(data);
    g_async_queue_push(gq, data);
}

static int gp_create(unsigned int threads)
{
    GError *err = NULL;
    gq = g_async_queue_new();
    gp = g_thread_pool_new(gp_work, NULL, (gint)threads, TRUE, &err);
    if (!gp) {
        fprintf(stderr, "g_thread_pool_new: %s\n", err ? err->message : "?");
        return -EAGAIN;
    }
    return 0;
}

static int gp_submit(struct btask *t)
{
    GError *err = NULL;
    if (!g_thread_pool_push(gp, t, &err))
        bench_die("g_thread_pool_push", -EAGAIN);
    return 0;
}

static int gp_poll(int timeout_ms)
{
    struct btask *t;
    if (timeout_ms < 0)
        t = g_async_queue_pop(gq);
    else if (timeout_ms == 0)
        t = g_async_queue_try_pop(gq);
    else
        t = g_async_queue_timeout_pop(gq, (guint64)timeout_ms * 1000);
    int n = 0;
    while (t) {
        bench_complete(t);
        n++;
        t = g_async_queue_try_pop(gq);
    }
    return n;
}

static void gp_destroy(void)
{
    g_thread_pool_free(gp, FALSE, TRUE);
    g_async_queue_unref(gq);
}

const struct peer peer_glib = {"glib",
                               "GThreadPool (exclusive threads); workers push completions to a "
                               "GAsyncQueue the owner pops (condvar wake, no fd); "
                               "g_thread_pool_push is thread-safe",
                               0, /* GThreadPool keeps its own queue node per task */
                               gp_create,
                               NULL,
                               gp_submit,
                               gp_submit,
                               NULL,
                               gp_poll,
                               gp_destroy};
#endif
