/* SPDX-License-Identifier: MIT */
/* api suite: creation, options, bad input, close and destroy. Black-box: only
 * the public header. Every test creates its pool inside the forked test. */
#include "../common/cores.h"
#include "../common/helpers.h"
#include <wpool.h>

#include <check.h>
#include "../common/fastcheck.h"
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

struct rec {
    struct wpool_task task;
    int id;
    atomic_int ran;
    int status;
    int done_calls;
    struct gate *gate; /* optional: work blocks on it */
    atomic_int *started;
};

static int rec_work(struct wpool_task *t)
{
    struct rec *r = (struct rec *)t;
    if (r->started)
        atomic_fetch_add(r->started, 1);
    if (r->gate)
        gate_wait(r->gate);
    atomic_fetch_add(&r->ran, 1);
    return r->id;
}

static void rec_done(struct wpool_task *t, int status)
{
    struct rec *r = (struct rec *)t;
    r->status = status;
    r->done_calls++;
}

static void rec_init(struct rec *r, int id)
{
    memset(r, 0, sizeof(*r));
    r->id = id;
    ck_assert_int_eq(wpool_task_init(&r->task, rec_work, rec_done), 0);
}

static wpool_t *make_pool(unsigned threads, int dispatch, unsigned cap)
{
    struct wpool_options o;
    wpool_options_init(&o);
    o.threads = threads;
    o.placement = dispatch;
    o.queue_capacity = cap;
    wpool_t *pool = NULL;
    ck_assert_int_eq(wpool_create(&pool, &o), 0);
    ck_assert_ptr_nonnull(pool);
    return pool;
}

START_TEST(test_version)
{
    ck_assert_uint_eq(wpool_version(), WPOOL_VERSION_NUMBER);
    ck_assert_str_eq(wpool_version_string(), WPOOL_VERSION_STRING);
}
END_TEST

START_TEST(test_options_init_matches_macro)
{
    struct wpool_options a = WPOOL_OPTIONS_INIT, b;
    memset(&b, 0xa5, sizeof(b));
    wpool_options_init(&b);
    ck_assert_mem_eq(&a, &b, sizeof(a));
    ck_assert_uint_eq(a.queue_capacity, WPOOL_DEFAULT_QUEUE_CAPACITY);
    wpool_options_init(NULL); /* ignored, must not crash */
}
END_TEST

START_TEST(test_create_defaults)
{
    wpool_t *pool = NULL;
    ck_assert_int_eq(wpool_create(&pool, NULL), 0);
    static cpu_set_t cores[WP_TEST_MAX_CORES];
    int ncores = allowed_cores(cores, WP_TEST_MAX_CORES);
    ck_assert_int_gt(ncores, 0);
    /* Exactly one worker per allowed core. */
    ck_assert_uint_eq(wpool_threads(pool), (unsigned)ncores);
    ck_assert_ptr_nonnull(wpool_default_port(pool));
    ck_assert_int_ge(wpool_fd(pool), 0);
    ck_assert_int_eq(wpool_port_fd(wpool_default_port(pool)), wpool_fd(pool));
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

START_TEST(test_create_bad_options)
{
    const struct {
        unsigned threads, cap;
        int placement, pin;
        uint64_t reserved0;
    } bad[] = {
        {WPOOL_MAX_THREADS + 1, 64, WPOOL_FIRST_FREE, 0, 0},
        {1000000, 64, WPOOL_FIRST_FREE, 0, 0},
        {1, 0, WPOOL_FIRST_FREE, 0, 0},
        {1, 1, WPOOL_FIRST_FREE, 0, 0},
        {1, 3, WPOOL_FIRST_FREE, 0, 0},
        {1, 96, WPOOL_FIRST_FREE, 0, 0},
        {1, WPOOL_MAX_QUEUE_CAPACITY * 2u, WPOOL_FIRST_FREE, 0, 0},
        {1, 64, 7, 0, 0},
        {1, 64, -1, 0, 0},
        {1, 64, WPOOL_FIRST_FREE, 2, 0},
        {1, 64, WPOOL_FIRST_FREE, 0, 1},
        /* 1024 queues of 2^24 slots: too much memory for one pool */
        {WPOOL_MAX_THREADS, WPOOL_MAX_QUEUE_CAPACITY, WPOOL_ROUND_ROBIN, 0, 0},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct wpool_options o = WPOOL_OPTIONS_INIT;
        o.threads = bad[i].threads;
        o.queue_capacity = bad[i].cap;
        o.placement = bad[i].placement;
        o.pin = bad[i].pin;
        o.reserved[0] = bad[i].reserved0;
        wpool_t *pool = (wpool_t *)&o; /* sentinel: must stay untouched */
        ck_assert_msg(wpool_create(&pool, &o) == -EINVAL, "case %zu", i);
        ck_assert_ptr_eq(pool, (wpool_t *)&o);
    }
    ck_assert_int_eq(wpool_create(NULL, NULL), -EINVAL);
}
END_TEST

START_TEST(test_null_arguments)
{
    struct rec r;
    rec_init(&r, 1);
    struct wpool_task zeroed;
    memset(&zeroed, 0, sizeof(zeroed));
    ck_assert_int_eq(wpool_close(NULL), -EINVAL);
    ck_assert_int_eq(wpool_destroy(NULL), 0);
    ck_assert_uint_eq(wpool_threads(NULL), 0);
    ck_assert_ptr_null(wpool_default_port(NULL));
    ck_assert_int_eq(wpool_fd(NULL), -EINVAL);
    ck_assert_int_eq(wpool_dispatch(NULL, 1), -EINVAL);
    ck_assert_int_eq(wpool_port_fd(NULL), -EINVAL);
    ck_assert_int_eq(wpool_port_dispatch(NULL, 1), -EINVAL);
    ck_assert_int_eq(wpool_port_wait(NULL, 0), -EINVAL);
    ck_assert_int_eq(wpool_port_settle(NULL, 0), -EINVAL);
    ck_assert_int_eq(wpool_port_destroy(NULL), 0);
    ck_assert_int_eq(wpool_task_init(NULL, rec_work, rec_done), -EINVAL);
    ck_assert_int_eq(wpool_task_init(&zeroed, NULL, rec_done), -EINVAL);
    ck_assert_int_eq(wpool_task_init(&zeroed, rec_work, NULL), -EINVAL);
    ck_assert_int_eq(wpool_task_set_port(NULL, NULL), -EINVAL);
    ck_assert_int_eq(wpool_task_set_port(&zeroed, NULL), -EINVAL);
    ck_assert_int_eq(wpool_cancel(NULL), -EINVAL);
    ck_assert_int_eq(wpool_cancel(&zeroed), -EINVAL);

    wpool_t *pool = make_pool(1, WPOOL_FIRST_FREE, 16);
    ck_assert_int_eq(wpool_submit(NULL, &r.task), -EINVAL);
    ck_assert_int_eq(wpool_submit(pool, NULL), -EINVAL);
    ck_assert_int_eq(wpool_submit(pool, &zeroed), -EINVAL); /* never initialised */
    ck_assert_int_eq(wpool_dispatch(pool, 0), -EINVAL);
    ck_assert_int_eq(wpool_port_wait(wpool_default_port(pool), -2), -EINVAL);
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), -5), -EINVAL);
    ck_assert_int_eq(wpool_port_create(NULL, NULL), -EINVAL);
    ck_assert_int_eq(wpool_port_create(pool, NULL), -EINVAL);
    ck_assert_int_eq(wpool_port_destroy(wpool_default_port(pool)), -EINVAL);
    /* Nothing was accepted: nothing completes. */
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), 0), 0);
    ck_assert_int_eq(r.done_calls, 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

START_TEST(test_explicit_threads)
{
    wpool_t *pool = make_pool(5, _i ? WPOOL_ROUND_ROBIN : WPOOL_FIRST_FREE, 8);
    ck_assert_uint_eq(wpool_threads(pool), 5);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* The single worker is held in `blocker`; `n` more records are queued. */
struct held {
    wpool_t *pool;
    struct gate gate;
    atomic_int started;
    struct rec blocker;
    struct rec *queued;
    int n;
};

static void held_setup(struct held *h, int n, int dispatch)
{
    h->pool = make_pool(1, dispatch, 64);
    gate_init(&h->gate);
    atomic_init(&h->started, 0);
    rec_init(&h->blocker, 1000);
    h->blocker.gate = &h->gate;
    h->blocker.started = &h->started;
    ck_assert_int_eq(wpool_submit(h->pool, &h->blocker.task), 0);
    while (atomic_load(&h->started) == 0)
        sched_yield(); /* wait for a condition, not for time */
    h->n = n;
    h->queued = calloc((size_t)n, sizeof(struct rec));
    for (int i = 0; i < n; i++) {
        rec_init(&h->queued[i], i);
        ck_assert_int_eq(wpool_submit(h->pool, &h->queued[i].task), 0);
    }
}

static void held_teardown(struct held *h)
{
    free(h->queued);
    gate_fini(&h->gate);
}

START_TEST(test_close_runs_everything_queued)
{
    struct held h;
    held_setup(&h, 20, _i ? WPOOL_ROUND_ROBIN : WPOOL_FIRST_FREE);
    gate_open(&h.gate);
    ck_assert_int_eq(wpool_close(h.pool), 0);
    /* After close returns every task has run and its completion is posted. */
    for (int i = 0; i < h.n; i++)
        ck_assert_int_eq(atomic_load(&h.queued[i].ran), 1);
    struct rec late;
    rec_init(&late, 77);
    ck_assert_int_eq(wpool_submit(h.pool, &late.task), -ESHUTDOWN);
    ck_assert_int_eq(wpool_close(h.pool), 0); /* idempotent */
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(h.pool), 1000), h.n + 1);
    for (int i = 0; i < h.n; i++) {
        ck_assert_int_eq(h.queued[i].done_calls, 1);
        ck_assert_int_eq(h.queued[i].status, i);
    }
    ck_assert_int_eq(h.blocker.status, 1000);
    ck_assert_int_eq(late.done_calls, 0);
    ck_assert_int_eq(wpool_destroy(h.pool), 0);
    held_teardown(&h);
}
END_TEST

/* A task that holds its worker until the pool is closed: it tries to submit
 * a probe (a task may submit, even while a destroy runs) until that is
 * refused with -ESHUTDOWN. So destroy finds the tasks queued behind it still
 * queued, with no other thread calling into the pool during the destroy. */
struct holder {
    struct rec self;
    wpool_t *pool;
    struct rec probe;
};

static int hold_until_closed(struct wpool_task *t)
{
    struct holder *h = (struct holder *)t;
    atomic_fetch_add(h->self.started, 1);
    int rc;
    do {
        rc = wpool_submit(h->pool, &h->probe.task);
        if (rc != 0 && rc != -EBUSY && rc != -ESHUTDOWN)
            return rc;
        sched_yield();
    } while (rc != -ESHUTDOWN);
    atomic_fetch_add(&h->self.ran, 1);
    return 1000;
}

START_TEST(test_destroy_cancels_queued_and_delivers)
{
    enum { N = 20 };
    wpool_t *pool = make_pool(1, _i ? WPOOL_ROUND_ROBIN : WPOOL_FIRST_FREE, 64);
    struct holder h = {.pool = pool};
    rec_init(&h.self, 1000);
    ck_assert_int_eq(wpool_task_init(&h.self.task, hold_until_closed, rec_done), 0);
    atomic_int started = 0;
    h.self.started = &started;
    rec_init(&h.probe, 500);
    ck_assert_int_eq(wpool_submit(pool, &h.self.task), 0);
    while (atomic_load(&started) == 0) /* running: destroy cannot cancel it */
        sched_yield();
    struct rec queued[N];
    for (int i = 0; i < N; i++) {
        rec_init(&queued[i], i);
        ck_assert_int_eq(wpool_submit(pool, &queued[i].task), 0);
    }
    /* Nothing dispatched yet: destroy runs every completion on this thread. */
    ck_assert_int_eq(wpool_destroy(pool), 0);
    ck_assert_int_eq(h.self.done_calls, 1);
    ck_assert_int_eq(h.self.status, 1000);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(queued[i].done_calls, 1);
        ck_assert_int_eq(queued[i].status, -ECANCELED);
        ck_assert_int_eq(atomic_load(&queued[i].ran), 0);
    }
    /* The probe, if accepted, was queued behind the holder: cancelled too. */
    ck_assert_int_le(h.probe.done_calls, 1);
    if (h.probe.done_calls)
        ck_assert_int_eq(h.probe.status, -ECANCELED);
    ck_assert_int_eq(atomic_load(&h.probe.ran), 0);
}
END_TEST

START_TEST(test_destroy_after_close_delivers_undispatched)
{
    wpool_t *pool = make_pool(2, WPOOL_FIRST_FREE, 256);
    struct rec recs[100];
    for (int i = 0; i < 100; i++) {
        rec_init(&recs[i], i);
        ck_assert_int_eq(wpool_submit(pool, &recs[i].task), 0);
    }
    ck_assert_int_eq(wpool_close(pool), 0);
    ck_assert_int_eq(wpool_dispatch(pool, 10), 10); /* some dispatched now */
    ck_assert_int_eq(wpool_destroy(pool), 0);       /* the rest by destroy */
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(recs[i].done_calls, 1);
        ck_assert_int_eq(recs[i].status, i);
    }
}
END_TEST

/* close/destroy from inside a task and from inside a completion callback. */
static wpool_t *g_pool;
static int g_rc_close, g_rc_destroy;

static int work_calls_close_destroy(struct wpool_task *t)
{
    g_rc_close = wpool_close(g_pool);
    g_rc_destroy = wpool_destroy(g_pool);
    return 0;
}

static void done_nop(struct wpool_task *t, int status) {}

START_TEST(test_close_destroy_from_task_deadlk)
{
    g_pool = make_pool(1, WPOOL_FIRST_FREE, 8);
    struct wpool_task t = {0};
    wpool_task_init(&t, work_calls_close_destroy, done_nop);
    ck_assert_int_eq(wpool_submit(g_pool, &t), 0);
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(g_pool), -1), 1);
    ck_assert_int_eq(g_rc_close, -EDEADLK);
    ck_assert_int_eq(g_rc_destroy, -EDEADLK);
    /* The pool still works. */
    ck_assert_int_eq(wpool_submit(g_pool, &t), 0);
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(g_pool), -1), 1);
    ck_assert_int_eq(wpool_destroy(g_pool), 0);
}
END_TEST

static int g_done_runs;

static int work_ok(struct wpool_task *t)
{
    return 0;
}

static void done_calls_close_destroy(struct wpool_task *t, int status)
{
    g_done_runs++;
    g_rc_destroy = wpool_destroy(g_pool); /* inside dispatch: refused */
    g_rc_close = wpool_close(g_pool);     /* allowed: joins the workers */
}

START_TEST(test_close_destroy_from_completion)
{
    g_pool = make_pool(2, WPOOL_FIRST_FREE, 8);
    struct wpool_task t = {0}, t2 = {0};
    wpool_task_init(&t, work_ok, done_calls_close_destroy);
    wpool_task_init(&t2, work_ok, done_nop);
    ck_assert_int_eq(wpool_submit(g_pool, &t), 0);
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(g_pool), -1), 1);
    ck_assert_int_eq(g_done_runs, 1);
    ck_assert_int_eq(g_rc_destroy, -EBUSY);
    ck_assert_int_eq(g_rc_close, 0);
    ck_assert_int_eq(wpool_submit(g_pool, &t2), -ESHUTDOWN);
    ck_assert_int_eq(wpool_destroy(g_pool), 0);
}
END_TEST

static void done_destroy_during_destroy(struct wpool_task *t, int status)
{
    g_done_runs++;
    g_rc_destroy = wpool_destroy(g_pool);
    g_rc_close = wpool_close(g_pool);
}

START_TEST(test_destroy_reentered_from_leftover_completion)
{
    g_pool = make_pool(1, WPOOL_FIRST_FREE, 8);
    struct wpool_task t = {0};
    wpool_task_init(&t, work_ok, done_destroy_during_destroy);
    ck_assert_int_eq(wpool_submit(g_pool, &t), 0);
    ck_assert_int_eq(wpool_close(g_pool), 0);
    g_done_runs = 0;
    ck_assert_int_eq(wpool_destroy(g_pool), 0); /* runs the callback */
    ck_assert_int_eq(g_done_runs, 1);
    ck_assert_int_eq(g_rc_destroy, -EBUSY);
    ck_assert_int_eq(g_rc_close, 0);
}
END_TEST

/* Workers: all signals blocked, named "wpool-<i>". */
static int work_check_thread(struct wpool_task *t)
{
    sigset_t cur;
    char name[32] = "";
    pthread_sigmask(SIG_SETMASK, NULL, &cur);
    pthread_getname_np(pthread_self(), name, sizeof(name));
    int ok = sigismember(&cur, SIGINT) && sigismember(&cur, SIGTERM) &&
             sigismember(&cur, SIGUSR1) && sigismember(&cur, SIGCHLD) &&
             strncmp(name, "wpool-", 6) == 0;
    return ok ? 1 : 0;
}

static int g_status;

static void done_store(struct wpool_task *t, int status)
{
    g_status = status;
}

START_TEST(test_worker_signals_and_name)
{
    /* The caller's own mask is left alone. */
    sigset_t before, after;
    pthread_sigmask(SIG_SETMASK, NULL, &before);
    wpool_t *pool = make_pool(2, WPOOL_FIRST_FREE, 8);
    pthread_sigmask(SIG_SETMASK, NULL, &after);
    ck_assert_int_eq(sigismember(&after, SIGINT), sigismember(&before, SIGINT));
    struct wpool_task t = {0};
    wpool_task_init(&t, work_check_thread, done_store);
    g_status = -1;
    ck_assert_int_eq(wpool_submit(pool, &t), 0);
    ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), -1), 1);
    ck_assert_int_eq(g_status, 1);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* pin = 1: each worker runs on the PUs of one allowed core only. */
static cpu_set_t g_mask;
static int work_affinity(struct wpool_task *t)
{
    return sched_getaffinity(0, sizeof(g_mask), &g_mask) ? -errno : 0;
}

START_TEST(test_pinning)
{
    static cpu_set_t cores[WP_TEST_MAX_CORES];
    int ncores = allowed_cores(cores, WP_TEST_MAX_CORES);
    ck_assert_int_gt(ncores, 0);
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.pin = 1;
    wpool_t *pool = NULL;
    ck_assert_int_eq(wpool_create(&pool, &o), 0);
    ck_assert_uint_eq(wpool_threads(pool), (unsigned)ncores); /* one per core */
    struct wpool_task t = {0};
    wpool_task_init(&t, work_affinity, done_store);
    for (int round = 0; round < 20; round++) {
        ck_assert_int_eq(wpool_submit(pool, &t), 0);
        ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), -1), 1);
        ck_assert_int_eq(g_status, 0);
        /* Pinned: exactly the allowed PUs of one core. */
        bool one_core = false;
        for (int k = 0; k < ncores; k++)
            one_core |= CPU_EQUAL(&g_mask, &cores[k]);
        ck_assert_msg(one_core, "a pinned worker may run on %d CPUs, not one core's",
                      CPU_COUNT(&g_mask));
    }
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* wpool_strerror: wpool's meaning of each code it returns, the same for -err
 * and err, a distinct text per code, and a plain answer for the rest. */
START_TEST(test_strerror)
{
    static const int codes[] = {EINVAL,  EBUSY, EAGAIN, ESHUTDOWN, ECANCELED, ETIMEDOUT, EOWNERDEAD,
                                EDEADLK, EPERM, ENOMEM, EMFILE,    ENFILE,    ENODEV};
    const size_t n = sizeof(codes) / sizeof(codes[0]);
    const char *unknown = wpool_strerror(-EXDEV);
    ck_assert_str_eq(unknown, "not a wpool error code");
    ck_assert_str_eq(wpool_strerror(12345), unknown);
    ck_assert_str_eq(wpool_strerror(INT_MIN + 1), unknown);
    ck_assert_str_eq(wpool_strerror(0), "success");
    for (size_t i = 0; i < n; i++) {
        const char *t = wpool_strerror(-codes[i]);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_ne(t, unknown);
        ck_assert_ptr_eq(wpool_strerror(codes[i]), t);
        for (size_t k = 0; k < i; k++)
            ck_assert_str_ne(wpool_strerror(-codes[k]), t);
    }
    ck_assert(strstr(wpool_strerror(-ESHUTDOWN), "closed") != NULL);
    ck_assert(strstr(wpool_strerror(-EAGAIN), "full") != NULL);
}
END_TEST

static Suite *lifecycle_suite(void)
{
    Suite *s = suite_create("lifecycle");
    TCase *tc = tcase_create("lifecycle");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_options_init_matches_macro);
    tcase_add_test(tc, test_create_defaults);
    tcase_add_test(tc, test_create_bad_options);
    tcase_add_test(tc, test_null_arguments);
    tcase_add_loop_test(tc, test_explicit_threads, 0, 2);
    tcase_add_loop_test(tc, test_close_runs_everything_queued, 0, 2);
    tcase_add_loop_test(tc, test_destroy_cancels_queued_and_delivers, 0, 2);
    tcase_add_test(tc, test_destroy_after_close_delivers_undispatched);
    tcase_add_test(tc, test_close_destroy_from_task_deadlk);
    tcase_add_test(tc, test_close_destroy_from_completion);
    tcase_add_test(tc, test_destroy_reentered_from_leftover_completion);
    tcase_add_test(tc, test_worker_signals_and_name);
    tcase_add_test(tc, test_pinning);
    tcase_add_test(tc, test_strerror);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return wp_run_suite(lifecycle_suite());
}
