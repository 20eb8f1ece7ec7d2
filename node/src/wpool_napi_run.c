/* SPDX-License-Identifier: MIT */
/*
 * wpool_napi_run: a job's way, from pool.run() to its Promise (the kit's
 * contract: wpool_napi.h and docs/node.md):
 *
 *   js_run (JS thread): copy or prepare the input, submit a job to the
 *       process pool, its completion aimed at this environment's port
 *   -> job_work (a wpool worker): the addon's work function
 *   -> job_done (JS thread, dispatched from the port by wpool_napi.c's
 *       watch): resolve or reject, free the job
 */
#define _GNU_SOURCE
#include "wpool_napi_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- a job -------------------------------------------------------------------------------------
 */

int wpn_cancelled(const struct wpn_job *pub)
{
    struct job *job = job_of(pub);
    /* Relaxed: flags the work polls; they publish no data. */
    return atomic_load_explicit(&job->aborted, memory_order_relaxed) || wpn_i_exiting() ||
           wpool_task_cancelled(&job->task);
}

void wpn_set_output(struct wpn_job *job, void *out, size_t len)
{
    free(job->out);
    job->out = out;
    job->out_len = len;
}

static int job_work(struct wpool_task *task) /* on a wpool worker */
{
    struct job *job = task->data;
    atomic_fetch_sub_explicit(&job->envp->queued, 1, memory_order_relaxed); /* a count only */
    job->started = 1; /* read by job_done, after the port's hand-off */
    int rc = job->fn->work(&job->pub);
    return rc == WPOOL_PENDING ? -EINVAL : rc; /* the kit has no deferred completion */
}

static void job_free(struct job *job)
{
    if (job->fn->release)
        job->fn->release(&job->pub);
    free(job->pub.out);
    free((void *)job->pub.in);
    free(job);
}

static void job_unlink(struct wpn_env *e, struct job *job)
{
    if (job->prev)
        job->prev->next = job->next;
    else
        e->jobs = job->next;
    if (job->next)
        job->next->prev = job->prev;
}

/* The exception an addon's hook left pending, taken (NULL if none). */
static napi_value take_exception(napi_env env)
{
    bool pending = false;
    napi_value v = NULL;
    napi_is_exception_pending(env, &pending);
    if (pending)
        napi_get_and_clear_last_exception(env, &v);
    return v;
}

static void job_settle(struct wpn_env *e, struct job *job, int status)
{
    napi_env env = e->env;
    napi_value v = NULL, thrown = NULL;
    napi_status st = napi_ok;
    if (status == 0) {
        if (job->fn->finish)
            st = job->fn->finish(env, &job->pub, &v);
        else if (!job->pub.out)
            st = napi_get_undefined(env, &v);
        else if (job->fn->flags & WPN_OUT_STRING)
            st = napi_create_string_utf8(env, job->pub.out, job->pub.out_len, &v);
        else
            st = napi_create_buffer_copy(env, job->pub.out_len, job->pub.out, NULL, &v);
        thrown = take_exception(env); /* finish threw (whatever it returned) */
        if (thrown)
            st = napi_reject_deferred(env, job->deferred, thrown);
        else if (st == napi_ok && v)
            st = napi_resolve_deferred(env, job->deferred, v);
        else
            status = -ENOMEM; /* the result could not be built */
    }
    if (status != 0) {
        v = job->started ? wpn_error(env, status, job->fn->name)
                         : wpn_i_pool_error(env, status, job->fn->name);
        if (status == -ECANCELED && atomic_load_explicit(&job->aborted, memory_order_relaxed)) {
            napi_value name;
            napi_create_string_utf8(env, "AbortError", NAPI_AUTO_LENGTH, &name);
            napi_set_named_property(env, v, "name", name);
        }
        st = napi_reject_deferred(env, job->deferred, v);
    }
    /* A Worker being terminated still dispatches until its teardown hook
     * runs, but can no longer run JavaScript: once settling fails, treat the
     * environment as ending and only free the rest. */
    if (st != napi_ok)
        e->closing = true;
}

static void job_done(struct wpool_task *task, int status) /* on the environment's thread */
{
    struct job *job = task->data;
    struct wpn_env *e = job->envp;
    if (!job->started) /* cancelled or timed out before it ran */
        atomic_fetch_sub_explicit(&e->queued, 1, memory_order_relaxed);
    else
        e->completed++;
    job_unlink(e, job);
    if (!e->closing)
        job_settle(e, job, status);
    job_free(job);
    if (--e->inflight == 0)
        uv_unref((uv_handle_t *)&e->watch); /* idle: do not keep the loop alive */
}

static int copy_input(napi_env env, napi_value input, struct wpn_job *job)
{
    napi_valuetype t;
    bool is;
    void *data = NULL;
    size_t len = 0;
    napi_typeof(env, input, &t);
    if (t == napi_undefined || t == napi_null)
        return 0;
    if (t == napi_string) {
        napi_get_value_string_utf8(env, input, NULL, 0, &len);
        char *s = malloc(len + 1);
        if (!s)
            return -ENOMEM;
        napi_get_value_string_utf8(env, input, s, len + 1, &len);
        job->in = s;
        job->in_len = len;
        return 0;
    }
    if (napi_is_typedarray(env, input, &is) == napi_ok && is) {
        napi_typedarray_type tt;
        size_t n, off;
        napi_value ab;
        napi_get_typedarray_info(env, input, &tt, &n, &data, &ab, &off);
        napi_get_arraybuffer_info(env, ab, NULL, &len);
        len = n *
              (tt == napi_uint16_array || tt == napi_int16_array                               ? 2
               : tt == napi_uint32_array || tt == napi_int32_array || tt == napi_float32_array ? 4
               : tt == napi_float64_array || tt == napi_bigint64_array || tt == napi_biguint64_array
                   ? 8
                   : 1);
    } else if (napi_is_arraybuffer(env, input, &is) == napi_ok && is) {
        napi_get_arraybuffer_info(env, input, &data, &len);
    } else if (napi_is_dataview(env, input, &is) == napi_ok && is) {
        napi_get_dataview_info(env, input, &len, &data, NULL, NULL);
    } else {
        return -EINVAL;
    }
    char *copy = malloc(len + 1);
    if (!copy)
        return -ENOMEM;
    if (len)
        memcpy(copy, data, len);
    copy[len] = '\0';
    job->in = copy;
    job->in_len = len;
    return 0;
}

/* run(index, input, priority, delay_ms, id) -> Promise. delay_ms: the task's
 * deadline from now, or a negative number for none; id: what abort() names,
 * 0 for none. The JavaScript Pool checks names, maxQueue and the options. */
napi_value wpn_i_js_run(napi_env env, napi_callback_info info)
{
    size_t argc = 5;
    napi_value argv[5];
    struct wpn_env *e = env_of(env, info, &argc, argv);
    uint32_t index, prio;
    double delay_ms, id;
    if (argc < 5 || napi_get_value_uint32(env, argv[0], &index) != napi_ok || index >= e->nfns ||
        napi_get_value_uint32(env, argv[2], &prio) != napi_ok ||
        napi_get_value_double(env, argv[3], &delay_ms) != napi_ok ||
        napi_get_value_double(env, argv[4], &id) != napi_ok)
        return wpn_i_throw_type(env, "run(index, input, priority, delay_ms, id)");
    if (wpn_i_env_start(env, e))
        return NULL;
    struct job *job = calloc(1, sizeof(*job));
    if (!job) {
        napi_throw(env, wpn_error(env, -ENOMEM, "pool.run"));
        return NULL;
    }
    job->fn = &e->fns[index];
    job->envp = e;
    job->id = (uint64_t)id;
    int rc = job->fn->prepare ? job->fn->prepare(env, argv[1], &job->pub)
                              : copy_input(env, argv[1], &job->pub);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    napi_value promise;
    if (rc == 0 && (pending || napi_create_promise(env, &job->deferred, &promise) != napi_ok)) {
        job_free(job); /* accepted, then threw: it runs release */
        return NULL;
    }
    if (rc) {
        free((void *)job->pub.in);
        free(job);
        if (pending) /* prepare threw its own */
            return NULL;
        if (rc == -EINVAL)
            return wpn_i_throw_type(env, "the input must be a string, Buffer, TypedArray, "
                                         "ArrayBuffer, DataView or undefined");
        napi_throw(env, wpn_error(env, rc, job->fn->name));
        return NULL;
    }
    wpool_task_init(&job->task, job_work, job_done);
    job->task.data = job;
    wpool_task_set_port(&job->task, e->port);
    wpool_task_set_token(&job->task, e->token);
    wpool_task_set_priority(&job->task, prio ? WPOOL_PRIORITY_HIGH : WPOOL_PRIORITY_NORMAL);
    if (delay_ms >= 0) {
        double ns = delay_ms * 1e6;
        wpool_task_set_deadline(&job->task,
                                wpool_now_ns() + (ns > 9e18 ? (uint64_t)9e18 : (uint64_t)ns));
    }
    atomic_fetch_add_explicit(&e->queued, 1, memory_order_relaxed); /* before the worker's -1 */
    rc = wpool_submit(e->pool, &job->task);
    if (rc) {
        atomic_fetch_sub_explicit(&e->queued, 1, memory_order_relaxed);
        napi_reject_deferred(env, job->deferred, wpn_i_pool_error(env, rc, "pool.run"));
        job_free(job);
        return promise;
    }
    job->next = e->jobs;
    if (e->jobs)
        e->jobs->prev = job;
    e->jobs = job;
    if (e->inflight++ == 0)
        uv_ref((uv_handle_t *)&e->watch); /* keep the loop alive until it settles */
    return promise;
}

/* abort(id) -> bool: the job was found (queued: it completes -ECANCELED;
 * running: its wpn_cancelled() turns true). */
napi_value wpn_i_js_abort(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1], v;
    struct wpn_env *e = env_of(env, info, &argc, argv);
    double id = 0;
    if (argc < 1 || napi_get_value_double(env, argv[0], &id) != napi_ok)
        return wpn_i_throw_type(env, "abort(id)");
    struct job *job = e->jobs;
    while (job && job->id != (uint64_t)id)
        job = job->next;
    if (job && id != 0) {
        atomic_store_explicit(&job->aborted, 1, memory_order_relaxed); /* a flag, no data */
        wpool_cancel(&job->task); /* -EBUSY when running: the flag is what it polls */
    }
    napi_get_boolean(env, job && id != 0, &v);
    return v;
}
