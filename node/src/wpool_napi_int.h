/* SPDX-License-Identifier: MIT */
/*
 * wpool_napi's own header, shared by its two sources:
 *   wpool_napi.c      the process pool, each environment's port on its loop,
 *                     its teardown, errors, statistics and configure
 *   wpool_napi_run.c  a job: pool.run() and runAll() to the Promise settled
 * Not for addons: they include wpool_napi.h.
 */
#ifndef WPOOL_NAPI_INT_H
#define WPOOL_NAPI_INT_H

#include "wpool_napi.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <sys/queue.h>
#include <uv.h>

/* A job as the kit sees it: the caller's part first. */
struct job {
    struct wpn_job pub;
    struct wpool_task task;
    struct wpn_env *envp;
    const struct wpn_fn *fn;
    napi_deferred deferred;
    uint64_t id;          /* what abort() names; 0: none */
    LIST_ENTRY(job) link; /* the environment's jobs in flight (JS thread) */
    atomic_int aborted;   /* the run's AbortSignal fired (relaxed: a flag, no data) */
    int started;          /* written by the worker before the work runs */
    struct batch *batch;  /* runAll: the batch this job is one of, or NULL */
};

static inline struct job *job_of(const struct wpn_job *pub)
{
    return (struct job *)(uintptr_t)pub; /* pub is the first member */
}

struct wpn_env {
    napi_env env;
    wpool_t *pool;
    wpool_port_t *port;
    wpool_token_t *token; /* on every job: teardown cancels them all */
    uv_poll_t watch;
    napi_ref resource; /* for the callback scope */
    napi_async_context async;
    napi_async_cleanup_hook_handle hook;
    const struct wpn_fn *fns;
    size_t nfns;
    LIST_HEAD(, job) jobs;       /* in flight, newest first; JS thread only */
    LIST_HEAD(, batch) batches;  /* runAll calls in flight; JS thread only */
    uint64_t inflight;           /* JS thread only */
    uint64_t completed;          /* jobs whose work ran; JS thread only */
    atomic_uint_fast64_t queued; /* submitted, not started (relaxed: a count, no data) */
    bool closing;                /* teardown started: completions must not call into JS */
};

static inline struct wpn_env *env_of(napi_env env, napi_callback_info info, size_t *argc,
                                     napi_value *argv)
{
    void *data;
    napi_get_cb_info(env, info, argc, argv, NULL, &data);
    return data;
}

/* wpool_napi.c */
int wpn_i_exiting(void);                                              /* the process is exiting */
int wpn_i_env_start(napi_env env, struct wpn_env *e);                 /* the port, on first use */
napi_value wpn_i_pool_error(napi_env env, int err, const char *what); /* in wpool's words */
napi_value wpn_i_throw_type(napi_env env, const char *msg);
/* wpool_napi_run.c: the functions wpn_init puts on exports */
napi_value wpn_i_js_run(napi_env env, napi_callback_info info);
napi_value wpn_i_js_abort(napi_env env, napi_callback_info info);
napi_value wpn_i_js_run_all(napi_env env, napi_callback_info info);
void wpn_i_cancel_batches(struct wpn_env *e); /* teardown: cancel every runAll in flight */

#endif /* WPOOL_NAPI_INT_H */
