/* SPDX-License-Identifier: MIT */
/*
 * wpool_napi: one wpool pool per process, one completion port per Node.js
 * environment, Promises settled on the environment's own loop. The contract
 * is in wpool_napi.h and docs/node.md; this file holds the process pool and
 * each environment's life (a job's way is in wpool_napi_run.c):
 *
 *   wpn_init -> (first run) wpn_i_env_start: the pool, the port, a uv_poll_t
 *   on the port's eventfd -> on_readable: wpool_port_dispatch, inside a
 *   callback scope -> teardown (the environment's async cleanup hook)
 *
 * Per environment: an in-flight count (the uv_poll_t is referenced only
 * while it is not zero), a queued count (submitted, not started: what
 * maxQueue limits), a cancel token on every job (teardown cancels them all)
 * and a list of the jobs in flight (so an AbortSignal finds its job).
 */
#define _GNU_SOURCE
#include "wpool_napi_int.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

/* ---- the process-wide pool --------------------------------------------------------------------
 */

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static wpool_t *g_pool;             /* under g_lock */
static unsigned int g_envs;         /* environments using g_pool, under g_lock */
static struct wpool_options g_opts; /* under g_lock */
static bool g_have_opts;            /* under g_lock */
static bool g_atexit;               /* on_exit registered, under g_lock */
static atomic_int g_exiting;        /* the process is exiting: every job is cancelled */
static atomic_int g_exit_code = -1; /* from the main thread's 'exit' event; -1: unknown */

/* How long exit waits for running work that does not poll wpn_cancelled(). */
#define EXIT_GRACE_MS 2000

/* process.exit() and an uncaught exception end the process with exit(),
 * without the main environment's teardown: stop the workers before exit's
 * other handlers (OpenSSL's, say) free what running work may use. Queued jobs
 * are dropped unrun, running ones see wpn_cancelled(); nothing calls into
 * JavaScript and nothing is freed: the process is ending. Registered after
 * Node's own handlers, so it runs before them. If work still runs after
 * EXIT_GRACE_MS, the process ends at once with _exit and the code the 'exit'
 * event gave (lib/index.js passes it); without that code, exit waits for the
 * work however long it takes. */
static void on_exit_stop(void)
{
    atomic_store_explicit(&g_exiting, 1, memory_order_relaxed); /* a flag the work polls */
    if (pthread_mutex_trylock(&g_lock) != 0)
        return; /* exit() from inside the kit's own critical section: leave it */
    int code = atomic_load_explicit(&g_exit_code, memory_order_relaxed);
    if (g_pool &&
        wpool_shutdown(g_pool, WPOOL_CLOSE_CANCEL, code < 0 ? -1 : EXIT_GRACE_MS) == -ETIMEDOUT) {
        fflush(NULL);
        _exit(code); /* a worker still runs: the other handlers must not */
    }
    pthread_mutex_unlock(&g_lock);
}

int wpn_configure(const struct wpool_options *opts)
{
    if (!opts)
        return -EINVAL;
    pthread_mutex_lock(&g_lock);
    int rc = -EBUSY;
    if (!g_pool) {
        g_opts = *opts;
        g_have_opts = true;
        rc = 0;
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

static int pool_locked(void) /* g_lock held */
{
    if (g_pool)
        return 0;
    if (!g_atexit)
        g_atexit = atexit(on_exit_stop) == 0;
    return wpool_create(&g_pool, g_have_opts ? &g_opts : NULL);
}

static int env_acquire(wpool_t **poolp)
{
    pthread_mutex_lock(&g_lock);
    int rc = pool_locked();
    if (rc == 0) {
        g_envs++;
        *poolp = g_pool;
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}

static void env_release(void) /* the last environment destroys the pool */
{
    pthread_mutex_lock(&g_lock);
    if (--g_envs == 0) {
        wpool_destroy(g_pool); /* every port is gone: nothing left to dispatch */
        g_pool = NULL;
    }
    pthread_mutex_unlock(&g_lock);
}

int wpn_i_exiting(void)
{
    return atomic_load_explicit(&g_exiting, memory_order_relaxed); /* a flag the work polls */
}

/* ---- errors ------------------------------------------------------------------------------------
 */

/* text: what the code means here (strerror's wording when NULL). */
static napi_value make_error(napi_env env, int err, const char *what, const char *text_of_err)
{
    char code[32], text[256];
    const char *name = err < 0 ? strerrorname_np(-err) : NULL;
    if (name)
        snprintf(code, sizeof(code), "%s", name);
    else
        snprintf(code, sizeof(code), "ERR_WPOOL_STATUS");
    if (err < 0)
        snprintf(text, sizeof(text), "%s: %s", what, text_of_err ? text_of_err : strerror(-err));
    else
        snprintf(text, sizeof(text), "%s: failed with status %d", what, err);
    napi_value jcode, jmsg, jerr, jerrno;
    napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &jcode);
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &jmsg);
    napi_create_error(env, jcode, jmsg, &jerr);
    napi_create_int32(env, err, &jerrno);
    napi_set_named_property(env, jerr, "errno", jerrno);
    return jerr;
}

napi_value wpn_error(napi_env env, int err, const char *what)
{
    return make_error(env, err, what, NULL);
}

/* An error wpool returned (a refused submit, a task cancelled or timed out
 * before it ran): in wpool's words. */
napi_value wpn_i_pool_error(napi_env env, int err, const char *what)
{
    return make_error(env, err, what, wpool_strerror(err));
}

napi_value wpn_i_throw_type(napi_env env, const char *msg)
{
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return NULL;
}

/* ---- the port on the environment's loop -------------------------------------------------------
 */

static void on_readable(uv_poll_t *watch, int status, int events)
{
    (void)status;
    (void)events;
    struct wpn_env *e = watch->data;
    napi_env env = e->env;
    napi_handle_scope hs;
    napi_callback_scope cs;
    napi_value resource;
    napi_open_handle_scope(env, &hs);
    napi_get_reference_value(env, e->resource, &resource);
    napi_open_callback_scope(env, resource, e->async, &cs);
    wpool_port_dispatch(e->port, WPOOL_DISPATCH_ALL);
    napi_close_callback_scope(env, cs); /* runs the promise reactions */
    napi_close_handle_scope(env, hs);
}

static void env_free(struct wpn_env *e)
{
    bool started = e->pool != NULL;
    napi_remove_async_cleanup_hook(e->hook); /* the environment may now go */
    free(e);
    if (started)
        env_release();
}

static void on_closed(uv_handle_t *h)
{
    env_free(h->data);
}

static void on_closed_exiting(uv_handle_t *h)
{
    struct wpn_env *e = h->data;
    napi_remove_async_cleanup_hook(e->hook); /* the rest is left to the process's end */
}

/* The environment is ending: no call into JavaScript from here on. */
static void teardown(napi_async_cleanup_hook_handle handle, void *arg)
{
    struct wpn_env *e = arg;
    e->hook = handle;
    e->closing = true;
    wpool_token_cancel(e->token); /* queued jobs complete -ECANCELED; running ones see the flag */
    wpn_i_cancel_batches(e);      /* the same for runAll's jobs (a group is their token) */
    napi_async_destroy(e->env, e->async);
    napi_delete_reference(e->env, e->resource);
    if (!e->port) { /* never started: nothing in flight, no handle */
        wpool_token_destroy(e->token);
        env_free(e);
        return;
    }
    uv_poll_stop(&e->watch);
    if (atomic_load_explicit(&g_exiting, memory_order_relaxed)) {
        /* process.exit(): Node stops the Workers before exit(); do not wait
         * here for their running work (on_exit_stop bounds that wait once),
         * and leave the port, the jobs and the pool to the process's end. */
        uv_close((uv_handle_t *)&e->watch, on_closed_exiting);
        return;
    }
    wpool_port_settle(e->port, -1); /* their completions only free the jobs */
    wpool_port_destroy(e->port);
    wpool_token_destroy(e->token); /* no task carries it any more */
    uv_close((uv_handle_t *)&e->watch, on_closed);
}

/* On the first run() or stats(): the process pool (created on first use, so
 * that configure() can come first) and this environment's port and watch. */
int wpn_i_env_start(napi_env env, struct wpn_env *e)
{
    if (e->port)
        return 0;
    wpool_t *pool;
    wpool_port_t *port;
    int rc = env_acquire(&pool);
    if (rc) {
        napi_throw(env, wpn_i_pool_error(env, rc, "wpool_create"));
        return rc;
    }
    uv_loop_t *loop;
    napi_get_uv_event_loop(env, &loop);
    const char *what = "wpool_port_create";
    rc = wpool_port_create(pool, &port);
    if (rc == 0 && (rc = uv_poll_init(loop, &e->watch, wpool_port_fd(port))) != 0) {
        what = "uv_poll_init";    /* libuv's codes are negative errnos too */
        wpool_port_destroy(port); /* nothing was sent to it */
    }
    if (rc) {
        env_release();
        napi_throw(env, wpn_i_pool_error(env, rc, what));
        return rc;
    }
    e->pool = pool;
    e->port = port;
    e->watch.data = e;
    uv_poll_start(&e->watch, UV_READABLE, on_readable);
    uv_unref((uv_handle_t *)&e->watch); /* referenced only while jobs are in flight */
    return 0;
}

/* ---- the native half of the JavaScript API ----------------------------------------------------
 */

static void set_num(napi_env env, napi_value obj, const char *key, double x)
{
    napi_value v;
    napi_create_double(env, x, &v);
    napi_set_named_property(env, obj, key, v);
}

static napi_value histogram(napi_env env, const struct wpool_histogram *h) /* ms, as Piscina */
{
    napi_value o;
    napi_create_object(env, &o);
    set_num(env, o, "count", (double)h->count);
    set_num(env, o, "mean", h->mean_us / 1e3);
    set_num(env, o, "p50", (double)h->p50_us / 1e3);
    set_num(env, o, "p90", (double)h->p90_us / 1e3);
    set_num(env, o, "p99", (double)h->p99_us / 1e3);
    set_num(env, o, "p999", (double)h->p999_us / 1e3);
    set_num(env, o, "max", (double)h->max_us / 1e3);
    return o;
}

/* stats() -> this environment's counts and the process pool's statistics. */
static napi_value js_stats(napi_env env, napi_callback_info info)
{
    struct wpn_env *e = env_of(env, info, NULL, NULL);
    if (wpn_i_env_start(env, e))
        return NULL;
    struct wpool_statistics s;
    int rc = wpool_stats(e->pool, &s);
    if (rc) {
        napi_throw(env, wpn_i_pool_error(env, rc, "wpool_stats"));
        return NULL;
    }
    napi_value o, pool;
    napi_create_object(env, &o);
    set_num(env, o, "completed", (double)e->completed);
    set_num(env, o, "queueSize", (double)atomic_load_explicit(&e->queued, memory_order_relaxed));
    set_num(env, o, "inFlight", (double)e->inflight);
    set_num(env, o, "threads", s.threads);
    set_num(env, o, "utilization", s.utilization);
    napi_set_named_property(env, o, "waitTime", histogram(env, &s.wait));
    napi_set_named_property(env, o, "runTime", histogram(env, &s.run));
    napi_create_object(env, &pool);
    set_num(env, pool, "submitted", (double)s.submitted);
    set_num(env, pool, "completed", (double)s.completed);
    set_num(env, pool, "cancelled", (double)s.cancelled);
    set_num(env, pool, "timedOut", (double)s.timed_out);
    set_num(env, pool, "queued", (double)s.queued);
    set_num(env, pool, "running", s.running);
    napi_set_named_property(env, o, "pool", pool);
    return o;
}

/* exiting(code): the main thread's 'exit' event (lib/index.js): from now on
 * every job is cancelled, and on_exit_stop knows the code to _exit with. */
static napi_value js_exiting(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    int32_t code = 0;
    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    if (argc < 1 || napi_get_value_int32(env, argv[0], &code) != napi_ok)
        code = 1;
    atomic_store_explicit(&g_exit_code, code & 0xff, memory_order_relaxed); /* read in exit() */
    atomic_store_explicit(&g_exiting, 1, memory_order_relaxed); /* a flag the work polls */
    return NULL;
}

/* resetStats(): the pool's histograms and utilization start afresh. */
static napi_value js_reset_stats(napi_env env, napi_callback_info info)
{
    struct wpn_env *e = env_of(env, info, NULL, NULL);
    if (wpn_i_env_start(env, e))
        return NULL;
    int rc = wpool_stats_reset(e->pool);
    if (rc)
        napi_throw(env, wpn_i_pool_error(env, rc, "wpool_stats_reset"));
    return NULL;
}

/* queueSize() -> this environment's jobs submitted and not yet started. */
static napi_value js_queue_size(napi_env env, napi_callback_info info)
{
    struct wpn_env *e = env_of(env, info, NULL, NULL);
    napi_value v;
    napi_create_double(env, (double)atomic_load_explicit(&e->queued, memory_order_relaxed), &v);
    return v;
}

static int get_uint(napi_env env, napi_value obj, const char *key, uint32_t *out)
{
    bool has = false;
    napi_value v;
    if (napi_has_named_property(env, obj, key, &has) != napi_ok)
        return -EINVAL;
    if (!has)
        return 0;
    napi_valuetype t;
    if (napi_get_named_property(env, obj, key, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok)
        return -EINVAL;
    if (t == napi_undefined)
        return 0;
    return napi_get_value_uint32(env, v, out) == napi_ok ? 0 : -EINVAL;
}

/* configure({ threads, queueCapacity, pin, nice }): the process pool's
 * options, before its first use (wpn_configure). */
static napi_value js_configure(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
    struct wpool_options o;
    wpool_options_init(&o);
    uint32_t pin = 0;
    int32_t nice = 0;
    napi_valuetype t = napi_undefined;
    if (argc >= 1)
        napi_typeof(env, argv[0], &t);
    if (t != napi_object || get_uint(env, argv[0], "threads", &o.threads) ||
        get_uint(env, argv[0], "queueCapacity", &o.queue_capacity) ||
        get_uint(env, argv[0], "pin", &pin) || pin > 1)
        return wpn_i_throw_type(env, "configure({ threads, queueCapacity, pin: 0 | 1, nice })");
    bool has = false;
    napi_has_named_property(env, argv[0], "nice", &has);
    if (has) {
        napi_value v;
        if (napi_get_named_property(env, argv[0], "nice", &v) != napi_ok ||
            napi_get_value_int32(env, v, &nice) != napi_ok)
            return wpn_i_throw_type(env, "configure: nice must be an integer");
    }
    o.pin = (int)pin;
    o.nice = nice;
    int rc = wpn_configure(&o);
    if (rc)
        napi_throw(env, rc == -EBUSY ? make_error(env, rc, "configure",
                                                  "the process pool already exists: configure "
                                                  "it before the first run")
                                     : wpn_i_pool_error(env, rc, "configure"));
    return NULL;
}

napi_value wpn_init(napi_env env, napi_value exports, const struct wpn_fn *fns, size_t nfns)
{
    for (size_t i = 0; i < nfns; i++)
        if (!fns[i].name || !fns[i].work)
            return wpn_i_throw_type(env,
                                    "wpn_init: every function needs a name and a work function");
    struct wpn_env *e = calloc(1, sizeof(*e));
    int rc = e ? wpool_token_create(&e->token) : -ENOMEM;
    if (rc) {
        free(e);
        napi_throw(env, wpn_i_pool_error(env, rc, "wpn_init"));
        return NULL;
    }
    e->env = env;
    e->fns = fns;
    e->nfns = nfns;
    napi_value resource, name;
    napi_create_object(env, &resource);
    napi_create_reference(env, resource, 1, &e->resource);
    napi_create_string_utf8(env, "wpool", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, resource, name, &e->async);
    napi_add_async_cleanup_hook(env, teardown, e, NULL);

    napi_value names;
    napi_create_array_with_length(env, nfns, &names);
    for (size_t i = 0; i < nfns; i++) {
        napi_value s;
        napi_create_string_utf8(env, fns[i].name, NAPI_AUTO_LENGTH, &s);
        napi_set_element(env, names, (uint32_t)i, s);
    }
    napi_property_descriptor props[] = {
        {"run", NULL, wpn_i_js_run, NULL, NULL, NULL, napi_default, e},
        {"runAll", NULL, wpn_i_js_run_all, NULL, NULL, NULL, napi_default, e},
        {"abort", NULL, wpn_i_js_abort, NULL, NULL, NULL, napi_default, e},
        {"stats", NULL, js_stats, NULL, NULL, NULL, napi_default, e},
        {"queueSize", NULL, js_queue_size, NULL, NULL, NULL, napi_default, e},
        {"resetStats", NULL, js_reset_stats, NULL, NULL, NULL, napi_default, e},
        {"configure", NULL, js_configure, NULL, NULL, NULL, napi_default, e},
        {"exiting", NULL, js_exiting, NULL, NULL, NULL, napi_default, e},
        {"functions", NULL, NULL, NULL, NULL, names, napi_enumerable, NULL},
    };
    napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props);
    return exports;
}
