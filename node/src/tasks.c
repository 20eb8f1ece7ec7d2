/* SPDX-License-Identifier: MIT */
/*
 * The package's own addon: a few task functions built with the kit
 * (wpool_napi.h), used by its tests, its benchmark and as a model for an
 * addon of your own. Each shows one part of struct wpn_fn:
 *
 *   upper   string in, string out (the default input copy, WPN_OUT_STRING)
 *   echo    any bytes in, a Buffer out
 *   sha256  { text, rounds[, poll] } in through prepare/release, a hex string
 *           out through finish (Node's own OpenSSL: no library linked);
 *           polls wpn_cancelled() every 1024 rounds unless poll is false
 *   spin    busy-waits N microseconds (prepare reads a number), polling
 *           wpn_cancelled() as long-running work should
 *   fail    returns -N (after T us with { errno: N, us: T }): the Promise
 *           rejects with that errno's code
 */
#include "wpool_napi.h"

#include <ctype.h>
#include <stdbool.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int upper(struct wpn_job *job)
{
    char *out = malloc(job->in_len + 1);
    if (!out)
        return -ENOMEM;
    const char *in = job->in ? job->in : "";
    for (size_t i = 0; i < job->in_len; i++)
        out[i] = (char)toupper((unsigned char)in[i]);
    wpn_set_output(job, out, job->in_len);
    return 0;
}

static int echo(struct wpn_job *job)
{
    char *out = malloc(job->in_len ? job->in_len : 1);
    if (!out)
        return -ENOMEM;
    if (job->in_len)
        memcpy(out, job->in, job->in_len);
    wpn_set_output(job, out, job->in_len);
    return 0;
}

/* ---- sha256: structured input and output ---------------------------------------------------- */

struct sha_args {
    uint32_t rounds;
    bool poll; /* input.poll === false: never look at wpn_cancelled (for the exit tests) */
    unsigned char md[32];
    char *text;
    size_t len;
};

static int sha_prepare(napi_env env, napi_value input, struct wpn_job *job)
{
    napi_value text, rounds;
    size_t len;
    uint32_t n;
    if (napi_get_named_property(env, input, "text", &text) != napi_ok ||
        napi_get_named_property(env, input, "rounds", &rounds) != napi_ok ||
        napi_get_value_string_utf8(env, text, NULL, 0, &len) != napi_ok ||
        napi_get_value_uint32(env, rounds, &n) != napi_ok || n == 0) {
        napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE",
                              "sha256 takes { text: string, rounds: positive integer }");
        return -EINVAL;
    }
    struct sha_args *a = calloc(1, sizeof(*a));
    if (!a || !(a->text = malloc(len + 1))) {
        free(a);
        return -ENOMEM;
    }
    napi_get_value_string_utf8(env, text, a->text, len + 1, &a->len);
    a->rounds = n;
    napi_value poll;
    napi_valuetype t = napi_undefined;
    if (napi_get_named_property(env, input, "poll", &poll) == napi_ok)
        napi_typeof(env, poll, &t);
    a->poll = true;
    if (t == napi_boolean)
        napi_get_value_bool(env, poll, &a->poll);
    job->user = a;
    return 0;
}

static int sha_work(struct wpn_job *job)
{
    struct sha_args *a = job->user;
    unsigned int mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return -ENOMEM;
    int ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) && EVP_DigestUpdate(ctx, a->text, a->len) &&
             EVP_DigestFinal_ex(ctx, a->md, &mdlen);
    for (uint32_t i = 1; ok && i < a->rounds; i++) {
        if (a->poll && i % 1024 == 0 && wpn_cancelled(job)) { /* long work polls, as it should */
            EVP_MD_CTX_free(ctx);
            return -ECANCELED;
        }
        ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
             EVP_DigestUpdate(ctx, a->md, sizeof(a->md)) && EVP_DigestFinal_ex(ctx, a->md, &mdlen);
    }
    EVP_MD_CTX_free(ctx);
    return ok ? 0 : -EIO;
}

static napi_status sha_finish(napi_env env, struct wpn_job *job, napi_value *result)
{
    struct sha_args *a = job->user;
    char hex[65];
    for (int i = 0; i < 32; i++) {
        static const char digits[] = "0123456789abcdef";
        hex[2 * i] = digits[a->md[i] >> 4];
        hex[2 * i + 1] = digits[a->md[i] & 15];
    }
    return napi_create_string_utf8(env, hex, 64, result);
}

static void sha_release(struct wpn_job *job)
{
    struct sha_args *a = job->user;
    if (a)
        free(a->text);
    free(a);
}

/* ---- spin: long work that polls for cancellation -------------------------------------------- */

static int number_prepare(napi_env env, napi_value input, struct wpn_job *job)
{
    double *x = malloc(sizeof(*x));
    if (!x)
        return -ENOMEM;
    if (napi_get_value_double(env, input, x) != napi_ok) {
        free(x);
        napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "the input must be a number");
        return -EINVAL;
    }
    job->user = x;
    return 0;
}

static void number_release(struct wpn_job *job)
{
    free(job->user);
}

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Busy for us microseconds, or -ECANCELED as soon as the run is cancelled. */
static int spin_for(struct wpn_job *job, double us)
{
    double end = now_us() + us;
    while (now_us() < end)
        if (wpn_cancelled(job))
            return -ECANCELED;
    return 0;
}

static int spin(struct wpn_job *job)
{
    return spin_for(job, *(double *)job->user);
}

/* fail: input N returns -N at once; { errno: N, us: T } first spins T us
 * (polling, as spin does), then returns -N (0: success). */
struct fail_args {
    double err, us;
};

static int fail_prepare(napi_env env, napi_value input, struct wpn_job *job)
{
    struct fail_args *a = calloc(1, sizeof(*a));
    napi_value v;
    napi_valuetype t;
    if (!a)
        return -ENOMEM;
    napi_typeof(env, input, &t);
    bool ok = t == napi_object ? napi_get_named_property(env, input, "errno", &v) == napi_ok &&
                                     napi_get_value_double(env, v, &a->err) == napi_ok &&
                                     napi_get_named_property(env, input, "us", &v) == napi_ok &&
                                     napi_get_value_double(env, v, &a->us) == napi_ok
                               : napi_get_value_double(env, input, &a->err) == napi_ok;
    if (!ok) {
        free(a);
        napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "fail takes N or { errno: N, us: T }");
        return -EINVAL;
    }
    job->user = a;
    return 0;
}

static int fail(struct wpn_job *job)
{
    struct fail_args *a = job->user;
    int rc = spin_for(job, a->us);
    return rc ? rc : -(int)a->err;
}

static const struct wpn_fn fns[] = {
    {"upper", upper, WPN_OUT_STRING, NULL, NULL, NULL},
    {"echo", echo, 0, NULL, NULL, NULL},
    {"sha256", sha_work, 0, sha_prepare, sha_finish, sha_release},
    {"spin", spin, 0, number_prepare, NULL, number_release},
    {"fail", fail, 0, fail_prepare, NULL, number_release},
};

NAPI_MODULE_INIT()
{
    return wpn_init(env, exports, fns, sizeof(fns) / sizeof(fns[0]));
}
