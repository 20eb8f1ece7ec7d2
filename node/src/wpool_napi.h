/* SPDX-License-Identifier: MIT */
/*
 * wpool_napi: wpool for Node.js addons written in C (N-API).
 *
 * One wpool pool per process, created on first use and shared by every
 * environment (the main thread and each worker_threads Worker); each
 * environment gets its own completion port, watched by a uv_poll_t on that
 * environment's own libuv loop, so a task's Promise settles on the thread
 * that ran pool.run(). The watch keeps the loop alive only while that
 * environment has tasks in flight.
 *
 * An addon lists its task functions in a table and hands it to wpn_init()
 * from its module initialiser; the JavaScript side (lib/index.js of the
 * package, class Pool) calls them by name:
 *
 *     static int upper(struct wpn_job *job)            // on a wpool worker
 *     {
 *         char *out = malloc(job->in_len);
 *         if (!out)
 *             return -ENOMEM;
 *         for (size_t i = 0; i < job->in_len; i++)
 *             out[i] = (char)toupper((unsigned char)((char *)job->in)[i]);
 *         wpn_set_output(job, out, job->in_len);        // the kit frees it
 *         return 0;
 *     }
 *     static const struct wpn_fn fns[] = {{"upper", upper, WPN_OUT_STRING}};
 *     NAPI_MODULE_INIT() { return wpn_init(env, exports, fns, 1); }
 *
 *     // JavaScript
 *     const { Pool } = require('wpool-napi');
 *     const pool = new Pool(require('./build/Release/my_addon.node'));
 *     await pool.run('upper', 'abc');                  // 'ABC'
 *
 * Teardown. When an environment ends (a Worker terminates, the process
 * exits) the kit cancels that environment's queued tasks, sets the flag its
 * running tasks poll (wpn_cancelled), waits for them, and runs their
 * completions without calling into JavaScript: each job's release hook runs
 * and its memory is freed, nothing else. The port is then destroyed; the
 * last environment to end destroys the pool. The whole guide, with the
 * thread rules of every call: docs/node.md.
 *
 * Ship it either way: vendored (copy this header, wpool_napi_int.h,
 * wpool_napi.c and wpool_napi_run.c into the addon), or from the installed
 * library: `pkg-config --variable=napidir wpool` names the directory that
 * holds them (docs/node.md shows the binding.gyp).
 */
#ifndef WPOOL_NAPI_H
#define WPOOL_NAPI_H

#include <node_api.h>
#include <stddef.h>
#include <stdint.h>
#include <wpool.h>

#ifdef __cplusplus
extern "C" {
#endif

struct wpn_job;

/* A task function: runs on a wpool worker. Returns 0 on success or a
 * negative errno (the Promise rejects with an Error whose code is that
 * errno's name, e.g. 'EINVAL'). It must not call N-API. It may poll
 * wpn_cancelled() and return -ECANCELED early. */
typedef int (*wpn_work_fn)(struct wpn_job *job);

/* The Promise resolves with job->out as a string (UTF-8) instead of a Buffer. */
#define WPN_OUT_STRING 1u

struct wpn_fn {
    const char *name; /* what pool.run() names */
    wpn_work_fn work;
    unsigned int flags; /* WPN_OUT_STRING, or 0 */
    /* Optional, on the JavaScript thread: read the input yourself (set
     * job->user); return an errno to reject with (a TypeError for -EINVAL).
     * Without it, the input must be a string, a Buffer, a TypedArray or an
     * ArrayBuffer, or undefined; it is copied to job->in (NUL-terminated). */
    int (*prepare)(napi_env env, napi_value input, struct wpn_job *job);
    /* Optional, on the JavaScript thread after the work returned 0: build the
     * result. Without it: job->out as a Buffer (or a string), or undefined. */
    napi_status (*finish)(napi_env env, struct wpn_job *job, napi_value *result);
    /* Optional: frees job->user. Runs once per job that prepare accepted, on
     * the environment's thread, also at teardown (never calls N-API then). */
    void (*release)(struct wpn_job *job);
};

/* A job: one pool.run() call. in/in_len/user are set before the work runs;
 * the work function sets the output with wpn_set_output. The kit's own state
 * of the job is not in this struct. */
struct wpn_job {
    const void *in; /* the input's bytes (NUL-terminated copy), or NULL */
    size_t in_len;
    void *user; /* set by prepare, freed by release */
    void *out;  /* malloc'd output (wpn_set_output), freed by the kit */
    size_t out_len;
};

/* Options of the process-wide pool; before its first use only. Returns 0,
 * -EBUSY once the pool exists, -EINVAL for opts NULL. Any thread. */
int wpn_configure(const struct wpool_options *opts);

/* From NAPI_MODULE_INIT: sets up this environment (its port on its loop, its
 * teardown hook) and defines the native half of the JavaScript API on
 * exports. fns must stay valid for the life of the process (a static table).
 * Returns exports, or NULL with a JavaScript exception pending. */
napi_value wpn_init(napi_env env, napi_value exports, const struct wpn_fn *fns, size_t nfns);

/* From a work function: whether the run's AbortSignal fired or its
 * environment is ending. The work should then stop early and return
 * -ECANCELED. */
int wpn_cancelled(const struct wpn_job *job);

/* From a work function: hand over malloc'd output of len bytes (the kit frees
 * it; a previous output is freed). */
void wpn_set_output(struct wpn_job *job, void *out, size_t len);

/* An Error for a negative errno, with err.code (e.g. 'EAGAIN'), err.errno
 * (the negative number, as Node's own errors) and the message
 * "<what>: <strerror>". On the JavaScript thread. */
napi_value wpn_error(napi_env env, int err, const char *what);

#ifdef __cplusplus
}
#endif

#endif /* WPOOL_NAPI_H */
