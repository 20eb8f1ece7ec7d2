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
 *
 * runAll(): the jobs of one call form a wpool group (Promise.all done in C):
 * each job's own completion only counts, and the group's one completion
 * builds the array (or the first error) and settles one Promise.
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

/* The value of a job whose work returned 0: finish's, or the output as a
 * string or Buffer, or undefined. NULL when it could not be built; then
 * *thrown is what finish threw, or NULL (no memory). */
static napi_value job_result(napi_env env, struct job *job, napi_value *thrown)
{
    napi_value v = NULL;
    napi_status st;
    if (job->fn->finish)
        st = job->fn->finish(env, &job->pub, &v);
    else if (!job->pub.out)
        st = napi_get_undefined(env, &v);
    else if (job->fn->flags & WPN_OUT_STRING)
        st = napi_create_string_utf8(env, job->pub.out, job->pub.out_len, &v);
    else
        st = napi_create_buffer_copy(env, job->pub.out_len, job->pub.out, NULL, &v);
    *thrown = take_exception(env); /* finish threw (whatever it returned) */
    return *thrown || st != napi_ok ? NULL : v;
}

/* The Error for a failed status; an AbortError when the run's signal
 * cancelled it. Words: the work's (strerror) if it ran, else wpool's. */
static napi_value status_error(napi_env env, int status, bool ran, bool aborted, const char *what)
{
    napi_value v = ran ? wpn_error(env, status, what) : wpn_i_pool_error(env, status, what);
    if (status == -ECANCELED && aborted) {
        napi_value name;
        napi_create_string_utf8(env, "AbortError", NAPI_AUTO_LENGTH, &name);
        napi_set_named_property(env, v, "name", name);
    }
    return v;
}

/* A Worker being terminated still dispatches until its teardown hook runs,
 * but can no longer run JavaScript: once settling fails, treat the
 * environment as ending and only free the rest. */
static void settle(struct wpn_env *e, napi_deferred d, napi_value v, bool resolve)
{
    napi_status st =
        resolve ? napi_resolve_deferred(e->env, d, v) : napi_reject_deferred(e->env, d, v);
    napi_value thrown;
    if (st != napi_ok && (thrown = take_exception(e->env)) != NULL) /* a stray exception */
        st = napi_reject_deferred(e->env, d, thrown);
    if (st != napi_ok)
        e->closing = true;
}

static void job_settle(struct wpn_env *e, struct job *job, int status)
{
    napi_value v = NULL, thrown = NULL;
    if (status == 0 && (v = job_result(e->env, job, &thrown)) != NULL) {
        settle(e, job->deferred, v, true);
        return;
    }
    if (thrown) {
        settle(e, job->deferred, thrown, false);
        return;
    }
    bool aborted = atomic_load_explicit(&job->aborted, memory_order_relaxed);
    v = status_error(e->env, status ? status : -ENOMEM, job->started, aborted, job->fn->name);
    settle(e, job->deferred, v, false);
}

static void batch_fail(struct wpn_env *e, struct batch *b, struct job *job, int status);

static void job_done(struct wpool_task *task, int status) /* on the environment's thread */
{
    struct job *job = task->data;
    struct wpn_env *e = job->envp;
    if (!job->started) /* cancelled or timed out before it ran */
        atomic_fetch_sub_explicit(&e->queued, 1, memory_order_relaxed);
    else
        e->completed++;
    if (job->batch) { /* the batch's group completion frees it */
        if (status != 0 && !e->closing)
            batch_fail(e, job->batch, job, status);
        return;
    }
    LIST_REMOVE(job, link);
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

/* A job for fns[index] with its input read (prepare, or the default copy).
 * Returns 0, or not 0 with a JavaScript exception pending. */
static int job_new(napi_env env, struct wpn_env *e, uint32_t index, napi_value input,
                   struct job **out)
{
    struct job *job = calloc(1, sizeof(*job));
    if (!job) {
        napi_throw(env, wpn_error(env, -ENOMEM, e->fns[index].name));
        return -ENOMEM;
    }
    job->fn = &e->fns[index];
    job->envp = e;
    int rc = job->fn->prepare ? job->fn->prepare(env, input, &job->pub)
                              : copy_input(env, input, &job->pub);
    bool pending = false;
    napi_is_exception_pending(env, &pending);
    if (rc == 0 && pending) {
        job_free(job); /* accepted, then threw: it runs release */
        return -EINVAL;
    }
    if (rc) {
        free((void *)job->pub.in);
        free(job);
        if (pending) /* prepare threw its own */
            return rc;
        if (rc == -EINVAL)
            wpn_i_throw_type(env, "the input must be a string, Buffer, TypedArray, "
                                  "ArrayBuffer, DataView or undefined");
        else
            napi_throw(env, wpn_error(env, rc, e->fns[index].name));
        return rc;
    }
    *out = job;
    return 0;
}

/* The deadline delay_ms from now, in wpool_now_ns() time; 0 (none) for a
 * negative delay. */
static uint64_t deadline_of(double delay_ms)
{
    if (delay_ms < 0)
        return 0;
    double ns = delay_ms * 1e6;
    return wpool_now_ns() + (ns > 9e18 ? (uint64_t)9e18 : (uint64_t)ns);
}

/* The job's task: its port, priority and deadline (0: none). */
static void job_task(struct wpn_env *e, struct job *job, uint32_t prio, uint64_t deadline_ns)
{
    wpool_task_init(&job->task, job_work, job_done);
    job->task.data = job;
    wpool_task_set_port(&job->task, e->port);
    wpool_task_set_priority(&job->task, prio ? WPOOL_PRIORITY_HIGH : WPOOL_PRIORITY_NORMAL);
    wpool_task_set_deadline(&job->task, deadline_ns);
}

static int job_submit(struct wpn_env *e, struct job *job)
{
    atomic_fetch_add_explicit(&e->queued, 1, memory_order_relaxed); /* before the worker's -1 */
    int rc = wpool_submit(e->pool, &job->task);
    if (rc)
        atomic_fetch_sub_explicit(&e->queued, 1, memory_order_relaxed);
    return rc;
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
    struct job *job;
    napi_value promise;
    if (job_new(env, e, index, argv[1], &job))
        return NULL;
    if (napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
        job_free(job);
        return NULL;
    }
    job->id = (uint64_t)id;
    job_task(e, job, prio, deadline_of(delay_ms));
    wpool_task_set_token(&job->task, e->token);
    int rc = job_submit(e, job);
    if (rc) {
        napi_reject_deferred(env, job->deferred, wpn_i_pool_error(env, rc, "pool.run"));
        job_free(job);
        return promise;
    }
    LIST_INSERT_HEAD(&e->jobs, job, link);
    if (e->inflight++ == 0)
        uv_ref((uv_handle_t *)&e->watch); /* keep the loop alive until it settles */
    return promise;
}

/* runAll's jobs, one wpool group (the functions: at the end of this file). */
struct batch {
    struct wpool_group group; /* zero-filled (calloc) before its init */
    struct wpn_env *envp;
    napi_deferred deferred;
    uint64_t id;            /* what abort() names; 0: none */
    LIST_ENTRY(batch) link; /* the environment's batches in flight (JS thread) */
    bool aborted;           /* abort(id) cancelled the group (JS thread) */
    bool settled;           /* its Promise is settled: a job failed first, or refused */
    uint32_t n;             /* jobs (members, and any the pool refused) */
    struct job *jobs[];
};

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
    struct job *job;
    LIST_FOREACH(job, &e->jobs, link)
    if (job->id == (uint64_t)id)
        break;
    if (job && id != 0) {
        atomic_store_explicit(&job->aborted, 1, memory_order_relaxed); /* a flag, no data */
        wpool_cancel(&job->task); /* -EBUSY when running: the flag is what it polls */
    }
    struct batch *b = NULL;
    if (!job)
        LIST_FOREACH(b, &e->batches, link)
    if (b->id == (uint64_t)id)
        break;
    if (b && id != 0) {
        b->aborted = true;
        wpool_group_cancel(&b->group); /* queued members -ECANCELED, running ones flagged */
    }
    napi_get_boolean(env, (job || b) && id != 0, &v);
    return v;
}

/* ---- runAll: one Promise for many jobs, as a wpool group ------------------------------------- */

static void batch_free(struct batch *b)
{
    for (uint32_t i = 0; i < b->n; i++)
        job_free(b->jobs[i]);
    free(b);
}

/* Promise.all: the first job to fail rejects the batch at once and
 * withdraws the others (queued ones complete -ECANCELED unrun, running ones
 * see wpn_cancelled()); the group's completion then only frees. */
static void batch_fail(struct wpn_env *e, struct batch *b, struct job *job, int status)
{
    if (b->settled)
        return;
    b->settled = true;
    wpool_group_cancel(&b->group); /* on the port's owner: allowed from a completion */
    settle(e, b->deferred, status_error(e->env, status, job->started, b->aborted, job->fn->name),
           false);
}

static void batch_settle(struct wpn_env *e, struct batch *b)
{
    napi_env env = e->env;
    napi_value arr, v, thrown = NULL;
    const char *what = b->n ? b->jobs[0]->fn->name : "pool.runAll";
    if (napi_create_array_with_length(env, b->n, &arr) != napi_ok) {
        thrown = take_exception(env);
        settle(e, b->deferred, thrown ? thrown : wpn_error(env, -ENOMEM, what), false);
        return;
    }
    for (uint32_t i = 0; i < b->n; i++) {
        if (!(v = job_result(env, b->jobs[i], &thrown)) ||
            napi_set_element(env, arr, i, v) != napi_ok) {
            if (!thrown)
                thrown = take_exception(env); /* the array's setter threw */
            settle(e, b->deferred, thrown ? thrown : wpn_error(env, -ENOMEM, what), false);
            return;
        }
    }
    settle(e, b->deferred, arr, true);
}

static void batch_done(struct wpool_group *group, const struct wpool_group_result *r)
{ /* every member is done; a failure has already settled the Promise (batch_fail) */
    struct batch *b = group->data;
    struct wpn_env *e = b->envp;
    LIST_REMOVE(b, link);
    if (!e->closing && !b->settled && r->first_error == 0)
        batch_settle(e, b);
    batch_free(b); /* the group record too: its completion has started */
    if (--e->inflight == 0)
        uv_unref((uv_handle_t *)&e->watch);
}

void wpn_i_cancel_batches(struct wpn_env *e)
{
    struct batch *b;
    LIST_FOREACH(b, &e->batches, link)
    wpool_group_cancel(&b->group);
}

/* runAll(index, inputs[], priority, delay_ms, id) -> Promise<array>: as run,
 * for every input; one Promise, one completion into JavaScript. */
napi_value wpn_i_js_run_all(napi_env env, napi_callback_info info)
{
    size_t argc = 5;
    napi_value argv[5], promise;
    struct wpn_env *e = env_of(env, info, &argc, argv);
    uint32_t index, prio, n = 0;
    double delay_ms, id;
    bool is_array = false;
    if (argc >= 2)
        napi_is_array(env, argv[1], &is_array);
    if (argc < 5 || !is_array || napi_get_array_length(env, argv[1], &n) != napi_ok ||
        napi_get_value_uint32(env, argv[0], &index) != napi_ok || index >= e->nfns ||
        napi_get_value_uint32(env, argv[2], &prio) != napi_ok ||
        napi_get_value_double(env, argv[3], &delay_ms) != napi_ok ||
        napi_get_value_double(env, argv[4], &id) != napi_ok)
        return wpn_i_throw_type(env, "runAll(index, inputs[], priority, delay_ms, id)");
    if (wpn_i_env_start(env, e))
        return NULL;
    uint64_t deadline_ns = deadline_of(delay_ms); /* one for all, before the prepares */
    struct batch *b = calloc(1, sizeof(*b) + (size_t)n * sizeof(b->jobs[0]));
    if (!b) {
        napi_throw(env, wpn_error(env, -ENOMEM, "pool.runAll"));
        return NULL;
    }
    b->envp = e;
    b->id = (uint64_t)id;
    for (uint32_t i = 0; i < n; i++) {
        napi_value item;
        if (napi_get_element(env, argv[1], i, &item) != napi_ok ||
            job_new(env, e, index, item, &b->jobs[i])) {
            batch_free(b); /* b->n: the jobs made so far */
            return NULL;
        }
        b->jobs[i]->batch = b;
        b->n = i + 1;
    }
    if (napi_create_promise(env, &b->deferred, &promise) != napi_ok) {
        batch_free(b);
        return NULL;
    }
    b->group.data = b;
    int rc = wpool_group_init(&b->group, e->pool, e->port, batch_done);
    if (rc) {
        napi_reject_deferred(env, b->deferred, wpn_i_pool_error(env, rc, "pool.runAll"));
        batch_free(b);
        return promise;
    }
    for (uint32_t i = 0; i < n && !rc; i++) {
        job_task(e, b->jobs[i], prio, deadline_ns);
        wpool_task_set_group(&b->jobs[i]->task, &b->group); /* the group is its cancel token */
        rc = job_submit(e, b->jobs[i]); /* refused: not a member; the rest not sent */
    }
    if (rc) { /* reject now, and withdraw the members already accepted */
        b->settled = true;
        wpool_group_cancel(&b->group);
        napi_reject_deferred(env, b->deferred, wpn_i_pool_error(env, rc, "pool.runAll"));
    }
    wpool_group_seal(&b->group); /* completes once every member is done */
    LIST_INSERT_HEAD(&e->batches, b, link);
    if (e->inflight++ == 0)
        uv_ref((uv_handle_t *)&e->watch);
    return promise;
}
