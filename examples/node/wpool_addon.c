/* SPDX-License-Identifier: MIT */
/*
 * A Node.js addon (N-API, in C) that hashes on a wpool pool and resolves a
 * Promise on Node's own event loop.
 *
 *   const { hash, hashAll, threads } = require('./wpool_addon.node');
 *   const hex = await hash('text', rounds);   // SHA-256, re-hashed rounds times
 *   const hexes = await hashAll(['a', 'b'], rounds);  // one Promise for them all
 *
 * hashAll is Promise.all done in C: the jobs form a wpool group, each job's
 * own completion only records its status (no JS), and the group's one
 * completion builds the array and resolves the Promise: one crossing into
 * JS for the whole batch instead of one per job.
 *
 * The pool is created on Node's main thread, so that thread owns its default
 * port; the port's fd is watched with a uv_poll_t on Node's libuv loop, and
 * the completion callbacks (which resolve the promises) run there, inside a
 * callback scope so that promise reactions run right after. Built by meson
 * against the Node headers on the machine (no download); compare.js measures
 * it against Piscina and inline hashing.
 */
#include <errno.h>
#include <node_api.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include <wpool.h>

struct addon {
    napi_env env;
    wpool_t *pool;
    uv_poll_t watch;
    napi_ref resource; /* for the callback scope */
    napi_async_context async;
    EVP_MD *sha256;
    long pending;
    bool tearing_down;
};

struct hash_job {
    struct wpool_task task; /* first member: (struct hash_job *)task */
    struct addon *addon;
    napi_deferred deferred;
    unsigned long rounds;
    size_t len;
    char hex[65];
    char text[]; /* copied from the JS string */
};

static int hash_work(struct wpool_task *task) /* on a wpool worker */
{
    struct hash_job *job = (struct hash_job *)task;
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return -1;
    EVP_DigestInit_ex2(ctx, job->addon->sha256, NULL);
    EVP_DigestUpdate(ctx, job->text, job->len);
    EVP_DigestFinal_ex(ctx, md, &mdlen);
    for (unsigned long i = 1; i < job->rounds; i++) {
        EVP_DigestInit_ex2(ctx, NULL, NULL);
        EVP_DigestUpdate(ctx, md, sizeof(md));
        EVP_DigestFinal_ex(ctx, md, &mdlen);
    }
    EVP_MD_CTX_free(ctx);
    for (int i = 0; i < 32; i++)
        snprintf(job->hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static void hash_done(struct wpool_task *task, int status) /* on Node's main thread */
{
    struct hash_job *job = (struct hash_job *)task;
    struct addon *a = job->addon;
    if (!a->tearing_down) {
        napi_env env = a->env;
        napi_value v;
        if (status == 0) {
            napi_create_string_utf8(env, job->hex, 64, &v);
            napi_resolve_deferred(env, job->deferred, v);
        } else {
            napi_value msg;
            napi_create_string_utf8(env, "hash failed", NAPI_AUTO_LENGTH, &msg);
            napi_create_error(env, NULL, msg, &v);
            napi_reject_deferred(env, job->deferred, v);
        }
    }
    if (--a->pending == 0 && !a->tearing_down)
        uv_unref((uv_handle_t *)&a->watch); /* idle: do not keep Node alive */
    free(job);
}

/* hashAll: the jobs of one call, as a group. */
struct batch {
    struct addon *addon;
    napi_deferred deferred;
    struct wpool_group group; /* zero-filled (calloc) before its init */
    uint32_t n, refused;      /* jobs, and jobs the pool refused */
    struct hash_job **jobs;
};

static void member_done(struct wpool_task *task, int status) /* no JS: the group answers */
{
    (void)task;
    (void)status; /* the group's result counts failures */
}

static void batch_free(struct batch *b)
{
    for (uint32_t i = 0; i < b->n; i++)
        free(b->jobs[i]);
    free(b->jobs);
    free(b);
}

static void batch_done(struct wpool_group *group, const struct wpool_group_result *r)
{
    struct batch *b = group->data;
    struct addon *a = b->addon;
    if (!a->tearing_down) {
        napi_env env = a->env;
        napi_value v;
        if (r->first_error == 0 && b->refused == 0) {
            napi_create_array_with_length(env, b->n, &v);
            for (uint32_t i = 0; i < b->n; i++) {
                napi_value hex;
                napi_create_string_utf8(env, b->jobs[i]->hex, 64, &hex);
                napi_set_element(env, v, i, hex);
            }
            napi_resolve_deferred(env, b->deferred, v);
        } else {
            napi_value msg;
            napi_create_string_utf8(env, b->refused ? "wpool_submit failed" : "hash failed",
                                    NAPI_AUTO_LENGTH, &msg);
            napi_create_error(env, NULL, msg, &v);
            napi_reject_deferred(env, b->deferred, v);
        }
    }
    if (--a->pending == 0 && !a->tearing_down)
        uv_unref((uv_handle_t *)&a->watch);
    batch_free(b); /* the group record too: its completion has started */
}

static void on_readable(uv_poll_t *watch, int status, int events)
{
    struct addon *a = watch->data;
    napi_env env = a->env;
    napi_handle_scope hs;
    napi_callback_scope cs;
    napi_value resource;
    napi_open_handle_scope(env, &hs);
    napi_get_reference_value(env, a->resource, &resource);
    napi_open_callback_scope(env, resource, a->async, &cs);
    wpool_dispatch(a->pool, 1024);
    napi_close_callback_scope(env, cs); /* runs the promise reactions */
    napi_close_handle_scope(env, hs);
}

static napi_value throw_error(napi_env env, const char *msg)
{
    napi_throw_error(env, NULL, msg);
    return NULL;
}

/* hash(text: string, rounds: number) -> Promise<string> */
static napi_value js_hash(napi_env env, napi_callback_info info)
{
    size_t argc = 2;
    napi_value argv[2];
    struct addon *a;
    napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&a);
    size_t len;
    uint32_t rounds;
    if (argc < 2 || napi_get_value_string_utf8(env, argv[0], NULL, 0, &len) != napi_ok ||
        napi_get_value_uint32(env, argv[1], &rounds) != napi_ok || rounds == 0)
        return throw_error(env, "usage: hash(text: string, rounds: positive integer)");
    struct hash_job *job = calloc(1, sizeof(*job) + len + 1);
    if (!job)
        return throw_error(env, "out of memory");
    napi_get_value_string_utf8(env, argv[0], job->text, len + 1, &len);
    job->len = len;
    job->rounds = rounds;
    job->addon = a;
    wpool_task_init(&job->task, hash_work, hash_done);
    napi_value promise;
    napi_create_promise(env, &job->deferred, &promise);
    int rc = wpool_submit(a->pool, &job->task);
    if (rc) { /* -EAGAIN: queue full; reject instead of blocking Node */
        napi_value msg, err;
        napi_create_string_utf8(env, rc == -EAGAIN ? "wpool queue full" : "wpool_submit failed",
                                NAPI_AUTO_LENGTH, &msg);
        napi_create_error(env, NULL, msg, &err);
        napi_reject_deferred(env, job->deferred, err);
        free(job);
        return promise;
    }
    if (a->pending++ == 0)
        uv_ref((uv_handle_t *)&a->watch); /* keep Node alive until it resolves */
    return promise;
}

/* hashAll(texts: string[], rounds: number) -> Promise<string[]> */
static napi_value js_hash_all(napi_env env, napi_callback_info info)
{
    size_t argc = 2;
    napi_value argv[2];
    struct addon *a;
    napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&a);
    uint32_t n, rounds;
    bool is_array = false;
    if (argc >= 2)
        napi_is_array(env, argv[0], &is_array);
    if (!is_array || napi_get_array_length(env, argv[0], &n) != napi_ok ||
        napi_get_value_uint32(env, argv[1], &rounds) != napi_ok || rounds == 0)
        return throw_error(env, "usage: hashAll(texts: string[], rounds: positive integer)");
    struct batch *b = calloc(1, sizeof(*b));
    if (!b || !(b->jobs = calloc(n ? n : 1, sizeof(*b->jobs)))) {
        free(b);
        return throw_error(env, "out of memory");
    }
    b->addon = a;
    for (uint32_t i = 0; i < n; i++) {
        napi_value item;
        size_t len;
        napi_get_element(env, argv[0], i, &item);
        if (napi_get_value_string_utf8(env, item, NULL, 0, &len) != napi_ok ||
            !(b->jobs[i] = calloc(1, sizeof(struct hash_job) + len + 1))) {
            b->n = i;
            batch_free(b);
            return throw_error(env, "hashAll: texts must be strings");
        }
        napi_get_value_string_utf8(env, item, b->jobs[i]->text, len + 1, &len);
        b->jobs[i]->len = len;
        b->jobs[i]->rounds = rounds;
        b->jobs[i]->addon = a;
    }
    b->n = n;
    napi_value promise;
    napi_create_promise(env, &b->deferred, &promise);
    b->group.data = b;
    int rc = wpool_group_init(&b->group, a->pool, NULL, batch_done);
    if (rc) {
        napi_value msg, err;
        napi_create_string_utf8(env, wpool_strerror(rc), NAPI_AUTO_LENGTH, &msg);
        napi_create_error(env, NULL, msg, &err);
        napi_reject_deferred(env, b->deferred, err);
        batch_free(b);
        return promise;
    }
    for (uint32_t i = 0; i < n; i++) {
        wpool_task_init(&b->jobs[i]->task, hash_work, member_done);
        wpool_task_set_group(&b->jobs[i]->task, &b->group);
        if (wpool_submit(a->pool, &b->jobs[i]->task) != 0)
            b->refused++; /* not a member: the group completes without it */
    }
    wpool_group_seal(&b->group); /* completes once every member is done */
    if (a->pending++ == 0)
        uv_ref((uv_handle_t *)&a->watch);
    return promise;
}

static napi_value js_threads(napi_env env, napi_callback_info info)
{
    struct addon *a;
    napi_get_cb_info(env, info, NULL, NULL, NULL, (void **)&a);
    napi_value v;
    napi_create_uint32(env, wpool_threads(a->pool), &v);
    return v;
}

static void on_watch_closed(uv_handle_t *h)
{
    struct addon *a = h->data;
    free(a);
}

static void cleanup(void *arg) /* Node is shutting down this environment */
{
    struct addon *a = arg;
    a->tearing_down = true;
    uv_poll_stop(&a->watch);
    wpool_destroy(a->pool); /* leftover completions free their jobs */
    EVP_MD_free(a->sha256);
    napi_async_destroy(a->env, a->async);
    napi_delete_reference(a->env, a->resource);
    uv_close((uv_handle_t *)&a->watch, on_watch_closed);
}

NAPI_MODULE_INIT()
{
    struct addon *a = calloc(1, sizeof(*a));
    if (!a)
        return throw_error(env, "out of memory");
    a->env = env;
    a->sha256 = EVP_MD_fetch(NULL, "SHA2-256", NULL);
    struct wpool_options opts = WPOOL_OPTIONS_INIT;
    opts.queue_capacity = 65536;
    int rc = a->sha256 ? wpool_create(&a->pool, &opts) : -1;
    if (rc) {
        EVP_MD_free(a->sha256);
        free(a);
        return throw_error(env, "wpool_create failed");
    }
    uv_loop_t *loop;
    napi_get_uv_event_loop(env, &loop);
    uv_poll_init(loop, &a->watch, wpool_fd(a->pool));
    a->watch.data = a;
    uv_poll_start(&a->watch, UV_READABLE, on_readable);
    uv_unref((uv_handle_t *)&a->watch);
    napi_value resource, name;
    napi_create_object(env, &resource);
    napi_create_reference(env, resource, 1, &a->resource);
    napi_create_string_utf8(env, "wpool", NAPI_AUTO_LENGTH, &name);
    napi_async_init(env, resource, name, &a->async);
    napi_add_env_cleanup_hook(env, cleanup, a);

    napi_property_descriptor props[] = {
        {"hash", NULL, js_hash, NULL, NULL, NULL, napi_default, a},
        {"hashAll", NULL, js_hash_all, NULL, NULL, NULL, napi_default, a},
        {"threads", NULL, js_threads, NULL, NULL, NULL, napi_default, a},
    };
    napi_define_properties(env, exports, 3, props);
    return exports;
}
