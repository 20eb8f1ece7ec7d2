/* SPDX-License-Identifier: MIT */
/*
 * qr_addon: text -> "data:image/png;base64,..." of its QR code, the image
 * that npm qrcode's QRCode.toDataURL(text) draws by default (error
 * correction M, 4 px per module, a margin of 4 modules, black on white),
 * module for module. One C function, qr_data_url(), used three ways:
 *
 *   pool.run('qr', text)  a wpool-napi task function, on a wpool worker
 *   qrInline(text)        synchronous, on the JavaScript thread
 *   qrThread(text)        a Promise; one new pthread per call, the result sent
 *                         back through a napi_threadsafe_function
 *
 * Why the same modules as qrcode. libqrencode builds the symbol (version,
 * codewords, error correction, function patterns), but the two libraries
 * make two choices differently, and each changes the picture:
 *
 *   segments  which runs of the text go in numeric, alphanumeric or byte mode
 *             (libqrencode's QRcode_encodeString keeps short digit runs in
 *             byte mode: "hello123", ".../item/4567"). We compute qrcode's
 *             segments (seg_input) and give them to libqrencode as they are.
 *   mask      both score the 8 masks by the penalty rules of ISO/IEC 18004
 *             and take the lowest, but read the rules differently (N3, N4)
 *             and disagree on about 60% of texts. We undo libqrencode's mask
 *             and choose again, scoring as qrcode does (penalty()).
 *
 * Everything else (no ECI header, UTF-8 bytes, padding, the smallest version
 * that holds the segments) already agrees. README.md has the details.
 */
#define _GNU_SOURCE /* dladdr, RTLD_NODELETE */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "qr.h"
#include "wpool_napi.h"

/* ---- (a) the wpool-napi task function ---- */

static int qr_work(struct wpn_job *job)
{
    char *url;
    size_t len;
    int err = qr_data_url(job->in, job->in_len, &url, &len);
    if (err)
        return err;
    wpn_set_output(job, url, len);
    return 0;
}

static const struct wpn_fn fns[] = {{"qr", qr_work, WPN_OUT_STRING, NULL, NULL, NULL}};

/* ---- (b) qrInline(text): on the JavaScript thread ---- */

/* Copies a JavaScript string argument as UTF-8; throws a TypeError (and
 * returns NULL) for anything else. */
static char *get_text(napi_env env, napi_callback_info info, const char *fn, size_t *len)
{
    size_t argc = 1;
    napi_value arg;
    napi_valuetype type = napi_undefined;
    char *s;
    if (napi_get_cb_info(env, info, &argc, &arg, NULL, NULL) != napi_ok)
        return NULL;
    if (argc < 1 || napi_typeof(env, arg, &type) != napi_ok || type != napi_string) {
        napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", fn);
        return NULL;
    }
    napi_get_value_string_utf8(env, arg, NULL, 0, len);
    if (*len > QR_MAX_INPUT) { /* no QR code holds it: do not copy it */
        napi_throw(env, wpn_error(env, -EMSGSIZE, fn));
        return NULL;
    }
    if (!(s = malloc(*len + 1))) {
        napi_throw(env, wpn_error(env, -ENOMEM, fn));
        return NULL;
    }
    napi_get_value_string_utf8(env, arg, s, *len + 1, len);
    return s;
}

static napi_value js_qr_inline(napi_env env, napi_callback_info info)
{
    size_t len, url_len;
    char *url, *text = get_text(env, info, "qrInline: the text must be a string", &len);
    napi_value result = NULL;
    if (!text)
        return NULL;
    int err = qr_data_url(text, len, &url, &url_len);
    free(text);
    if (err) {
        napi_throw(env, wpn_error(env, err, "qrInline"));
        return NULL;
    }
    napi_create_string_utf8(env, url, url_len, &result);
    free(url);
    return result;
}

/* ---- (c) qrThread(text): a new pthread per call ---- */

/* Per environment. The threads reach the threadsafe function only under
 * lock and only until closing is set (by the environment's cleanup hook), so
 * none calls it once Node may have freed it. refs: one held by the
 * threadsafe function until Node finalizes it, plus one per thread still
 * running; the last one frees it. */
struct thr_env {
    pthread_mutex_t lock;
    napi_threadsafe_function tsfn;
    int closing, refs;
    size_t inflight; /* JavaScript thread only: calls not yet settled */
};

struct thr_req {
    struct thr_env *te;
    napi_deferred deferred;
    char *text, *url;
    size_t len, url_len;
    int err;
};

static void thr_env_unref(struct thr_env *te)
{
    pthread_mutex_lock(&te->lock);
    int last = --te->refs == 0;
    pthread_mutex_unlock(&te->lock);
    if (last) {
        pthread_mutex_destroy(&te->lock);
        free(te);
    }
}

static void thr_req_free(struct thr_req *req)
{
    free(req->text);
    free(req->url);
    free(req);
}

static void *thr_main(void *arg)
{
    struct thr_req *req = arg;
    struct thr_env *te = req->te;
    req->err = qr_data_url(req->text, req->len, &req->url, &req->url_len);
    pthread_mutex_lock(&te->lock);
    if (!te->closing &&
        napi_call_threadsafe_function(te->tsfn, req, napi_tsfn_nonblocking) == napi_ok)
        req = NULL; /* call_js has it now */
    pthread_mutex_unlock(&te->lock);
    if (req) /* the environment is gone: nobody to tell */
        thr_req_free(req);
    thr_env_unref(te);
    return NULL;
}

/* On the JavaScript thread; env NULL when Node tears the function down with
 * requests still queued: then only free them. */
static void thr_call_js(napi_env env, napi_value js_cb, void *context, void *data)
{
    struct thr_req *req = data;
    struct thr_env *te = context;
    (void)js_cb;
    if (env) {
        if (--te->inflight == 0) /* idle: let the loop end */
            napi_unref_threadsafe_function(env, te->tsfn);
        napi_value v;
        if (req->err) {
            napi_reject_deferred(env, req->deferred, wpn_error(env, req->err, "qrThread"));
        } else if (napi_create_string_utf8(env, req->url, req->url_len, &v) == napi_ok) {
            napi_resolve_deferred(env, req->deferred, v);
        } else {
            napi_reject_deferred(env, req->deferred, wpn_error(env, -ENOMEM, "qrThread"));
        }
    }
    thr_req_free(req);
}

/* The environment's cleanup hook: no thread may call the function from now
 * on; release it, and Node closes it (running thr_finalize). */
static void thr_cleanup(void *arg)
{
    struct thr_env *te = arg;
    pthread_mutex_lock(&te->lock);
    te->closing = 1;
    pthread_mutex_unlock(&te->lock);
    napi_release_threadsafe_function(te->tsfn, napi_tsfn_release);
}

/* The function is closed: Node calls thr_call_js no more, except with env
 * NULL for requests still queued, which does not touch te. Only now may the
 * environment's reference go (the loop may run, and call thr_call_js,
 * between the hook and here). */
static void thr_finalize(napi_env env, void *data, void *hint)
{
    (void)env;
    (void)hint;
    thr_env_unref(data);
}

static napi_value js_qr_thread(napi_env env, napi_callback_info info)
{
    struct thr_env *te;
    size_t argc = 0;
    napi_value promise;
    pthread_t tid;
    pthread_attr_t attr;
    if (napi_get_cb_info(env, info, &argc, NULL, NULL, (void **)&te) != napi_ok)
        return NULL;
    struct thr_req *req = calloc(1, sizeof(*req));
    if (!req) {
        napi_throw(env, wpn_error(env, -ENOMEM, "qrThread"));
        return NULL;
    }
    req->te = te;
    if (!(req->text = get_text(env, info, "qrThread: the text must be a string", &req->len)) ||
        napi_create_promise(env, &req->deferred, &promise) != napi_ok) {
        thr_req_free(req);
        return NULL;
    }
    if (te->inflight++ == 0) /* keep the loop alive while a thread works */
        napi_ref_threadsafe_function(env, te->tsfn);
    pthread_mutex_lock(&te->lock);
    te->refs++;
    pthread_mutex_unlock(&te->lock);
    int rc = pthread_attr_init(&attr);
    if (!rc) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&tid, &attr, thr_main, req);
        pthread_attr_destroy(&attr);
    }
    if (rc) { /* no thread: undo the above and reject now */
        pthread_mutex_lock(&te->lock);
        te->refs--; /* never the last: the environment holds one */
        pthread_mutex_unlock(&te->lock);
        if (--te->inflight == 0)
            napi_unref_threadsafe_function(env, te->tsfn);
        napi_reject_deferred(env, req->deferred, wpn_error(env, -rc, "qrThread"));
        thr_req_free(req);
    }
    return promise;
}

/* The threads are detached, and one may still be running when the last
 * environment that loaded this addon ends; Node would then unload the addon
 * (and libqrencode, libpng) under its feet. So the first qrThread environment
 * pins the addon in memory until the process exits. */
static void pin_addon(void)
{
    Dl_info info;
    if (dladdr((void *)pin_addon, &info) && info.dli_fname)
        dlopen(info.dli_fname, RTLD_NOW | RTLD_NODELETE);
}

static int thr_init(napi_env env, napi_value exports)
{
    static pthread_once_t pinned = PTHREAD_ONCE_INIT;
    pthread_once(&pinned, pin_addon);
    napi_value name, fn;
    struct thr_env *te = calloc(1, sizeof(*te));
    if (!te || pthread_mutex_init(&te->lock, NULL)) {
        free(te);
        return -ENOMEM;
    }
    te->refs = 1;
    if (napi_create_string_utf8(env, "qrThread", NAPI_AUTO_LENGTH, &name) != napi_ok ||
        napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, te, thr_finalize, te,
                                        thr_call_js, &te->tsfn) != napi_ok) {
        pthread_mutex_destroy(&te->lock);
        free(te);
        return -ENOMEM;
    }
    napi_unref_threadsafe_function(env, te->tsfn);
    /* Added after the function: cleanup hooks run last-added first, so this
     * one closes the door before Node's own hook frees the function. */
    napi_add_env_cleanup_hook(env, thr_cleanup, te);
    if (napi_create_function(env, "qrThread", NAPI_AUTO_LENGTH, js_qr_thread, te, &fn) != napi_ok ||
        napi_set_named_property(env, exports, "qrThread", fn) != napi_ok)
        return -ENOMEM;
    return 0;
}

NAPI_MODULE_INIT()
{
    napi_value fn;
    if (!wpn_init(env, exports, fns, sizeof(fns) / sizeof(fns[0])))
        return NULL;
    if (napi_create_function(env, "qrInline", NAPI_AUTO_LENGTH, js_qr_inline, NULL, &fn) !=
            napi_ok ||
        napi_set_named_property(env, exports, "qrInline", fn) != napi_ok)
        return NULL;
    int err = thr_init(env, exports);
    if (err) {
        napi_throw(env, wpn_error(env, err, "qr_addon: qrThread"));
        return NULL;
    }
    return exports;
}
