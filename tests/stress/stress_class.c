/* SPDX-License-Identifier: MIT */
/* stress: work classes under load. Producers submit from several threads at
 * once, each through its own port, to every kind of class: the two
 * priorities, a class capped at one worker, one capped at two with a
 * max_queue of its own (its submits may be refused; its drain notification
 * is registered and moved meanwhile), one with a reserved worker (lending
 * at once in one variant, after 200 us in the other) and a heavy one
 * (weight 4). They withdraw some of their own tasks (wpool_cancel, and a
 * token per producer cancelled now and then) and give some a deadline that
 * has passed. Another thread calls wpool_cancel_all, and one reads the
 * classes' statistics and backpressure. Checked: a capped class never has
 * more workers inside its work than its cap (a counter raised on start and
 * lowered on end); every accepted task completes exactly once (ran,
 * -ECANCELED or -ETIMEDOUT); each class's statistics agree with what its
 * tasks came to, and so do the pool's. The argument is the number of tasks
 * per producer. */
#include <wpool.h>

#include <check.h>
#include "../common/fastcheck.h"
#include "../common/helpers.h"
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { PRODUCERS = 4, RECS = 64, KINDS = 6 };
enum { NORMAL, HIGH, CAP1, CAP2Q, RESERVED, HEAVY };

static long g_tasks = 100000;
static atomic_int g_producing;
static int g_class[KINDS]; /* class id of each kind */
static const int g_cap[KINDS] = {0, 0, 1, 2, 0, 0};
static atomic_int g_inside[KINDS]; /* workers inside a kind's work now */
static atomic_int g_over[KINDS];   /* times a kind was found above its cap */
static atomic_long g_drains;

struct rec {
    struct wpool_task task;
    struct producer *p;
    int kind;
    int busy;
};

struct producer {
    wpool_t *pool;
    wpool_port_t *port;
    uint64_t rng;
    struct rec recs[RECS];
    wpool_token_t *tok;
    long accepted[KINDS], ran[KINDS], cancelled[KINDS], timed_out[KINDS];
    long completions, twice, refused;
};

static int rec_work(struct wpool_task *t)
{
    struct rec *r = (struct rec *)t;
    int now = atomic_fetch_add(&g_inside[r->kind], 1) + 1;
    if (g_cap[r->kind] && now > g_cap[r->kind])
        atomic_fetch_add(&g_over[r->kind], 1);
    for (volatile int i = 0; i < 200; i++)
        ;
    atomic_fetch_sub(&g_inside[r->kind], 1);
    return 1;
}

static void rec_done(struct wpool_task *t, int status)
{
    struct rec *r = (struct rec *)t;
    struct producer *p = r->p;
    if (!r->busy)
        p->twice++;
    r->busy = 0;
    p->completions++;
    if (status == 1)
        p->ran[r->kind]++;
    else if (status == -ECANCELED)
        p->cancelled[r->kind]++;
    else if (status == -ETIMEDOUT)
        p->timed_out[r->kind]++;
    else
        ck_abort_msg("unexpected status %d", status);
}

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    REQUIRE(wpool_port_create(p->pool, &p->port) == 0, "port");
    for (long n = 0; n < g_tasks;) {
        struct rec *r = &p->recs[rng_next(&p->rng) % RECS];
        if (!r->busy) {
            uint64_t x = rng_next(&p->rng);
            int kind = (int)(x % KINDS);
            REQUIRE(wpool_task_init(&r->task, rec_work, rec_done) == 0, "init");
            REQUIRE(wpool_task_set_class(&r->task, g_class[kind]) == 0, "class");
            REQUIRE(wpool_task_set_port(&r->task, p->port) == 0, "port");
            if (x / KINDS % 5 == 0)
                REQUIRE(wpool_task_set_token(&r->task, p->tok) == 0, "token");
            if (x / KINDS % 17 == 0)
                REQUIRE(wpool_task_set_deadline(&r->task, 1) == 0, "deadline");
            r->kind = kind;
            r->busy = 1;
            int rc = wpool_submit(p->pool, &r->task);
            if (rc == 0) {
                p->accepted[kind]++;
                n++;
            } else {
                /* The token was cancelled, or the class is full. */
                REQUIRE(rc == -ECANCELED || (rc == -EAGAIN && kind == CAP2Q), "submit: %d", rc);
                p->refused += rc == -EAGAIN;
                r->busy = 0;
            }
        }
        uint64_t y = rng_next(&p->rng);
        if (y % 64 == 0) {
            struct rec *c = &p->recs[y / 64 % RECS];
            if (c->busy) {
                int rc = wpool_cancel(&c->task);
                REQUIRE(rc == 0 || rc == -EBUSY, "cancel: %d", rc);
            }
        }
        if (y % 4096 == 1) {
            REQUIRE(wpool_token_cancel(p->tok) >= 0, "token cancel");
            wpool_token_t *old = p->tok;
            REQUIRE(wpool_port_settle(p->port, 60000) >= 0, "settle");
            REQUIRE(wpool_token_destroy(old) == 0, "token destroy");
            REQUIRE(wpool_token_create(&p->tok) == 0, "token create");
        }
        wpool_port_dispatch(p->port, 64);
    }
    REQUIRE(wpool_port_settle(p->port, 60000) >= 0, "final settle");
    REQUIRE(wpool_port_destroy(p->port) == 0, "port destroy");
    atomic_fetch_sub(&g_producing, 1);
    return NULL;
}

static void on_drain(wpool_t *pool, void *arg)
{
    (void)pool;
    (void)arg;
    atomic_fetch_add(&g_drains, 1);
}

/* Reads every class's statistics and backpressure, and registers and
 * unregisters the limited class's drain, while the producers run. */
static void *watcher_main(void *arg)
{
    wpool_t *pool = arg;
    long n = 0;
    while (atomic_load(&g_producing)) {
        struct wpool_class_statistics cs;
        for (int k = 0; k < KINDS; k++) {
            REQUIRE(wpool_class_stats(pool, g_class[k], &cs) == 0, "class stats");
            REQUIRE(cs.running <= 4, "running %u", cs.running);
            REQUIRE(wpool_class_needs_drain(pool, g_class[k]) >= 0, "needs drain");
        }
        if (++n % 16 == 0)
            REQUIRE(wpool_class_on_drain(pool, g_class[CAP2Q], NULL, n % 32 ? on_drain : NULL,
                                         NULL) == 0,
                    "on drain");
        if (n % 64 == 0)
            REQUIRE(wpool_cancel_all(pool) >= 0, "cancel all");
        sched_yield();
    }
    return NULL;
}

START_TEST(test_class_stress)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 4;
    o.placement = _i ? WPOOL_ROUND_ROBIN : WPOOL_FIRST_FREE;
    o.queue_capacity = 64; /* small: the overflows are used too */
    wpool_t *pool;
    ck_assert_int_eq(wpool_create(&pool, &o), 0);
    g_class[NORMAL] = WPOOL_CLASS_NORMAL;
    g_class[HIGH] = WPOOL_CLASS_HIGH;
    struct wpool_class_options co = WPOOL_CLASS_OPTIONS_INIT;
    co.max_workers = 1;
    g_class[CAP1] = wpool_class_create(pool, &co);
    co.max_workers = 2;
    co.max_queue = 8;
    g_class[CAP2Q] = wpool_class_create(pool, &co);
    co = (struct wpool_class_options)WPOOL_CLASS_OPTIONS_INIT;
    co.reserved_workers = 1;
    co.lend_after_us = _i ? 200 : 0;
    g_class[RESERVED] = wpool_class_create(pool, &co);
    co = (struct wpool_class_options)WPOOL_CLASS_OPTIONS_INIT;
    co.weight = 4;
    g_class[HEAVY] = wpool_class_create(pool, &co);
    for (int k = CAP1; k < KINDS; k++)
        ck_assert_int_eq(g_class[k], k);
    memset(g_inside, 0, sizeof(g_inside));
    memset(g_over, 0, sizeof(g_over));
    static struct producer ps[PRODUCERS];
    pthread_t th[PRODUCERS], watcher;
    memset(ps, 0, sizeof(ps));
    for (int i = 0; i < PRODUCERS; i++) {
        ps[i].pool = pool;
        ps[i].rng = 0x9e3779b97f4a7c15u * (uint64_t)(i + 1 + 16 * _i);
        ck_assert_int_eq(wpool_token_create(&ps[i].tok), 0);
        for (int r = 0; r < RECS; r++)
            ps[i].recs[r].p = &ps[i];
    }
    atomic_store(&g_producing, PRODUCERS);
    for (int i = 0; i < PRODUCERS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, producer_main, &ps[i]), 0);
    ck_assert_int_eq(pthread_create(&watcher, NULL, watcher_main, pool), 0);
    for (int i = 0; i < PRODUCERS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    ck_assert_int_eq(pthread_join(watcher, NULL), 0);
    /* The drain notifications posted to the default port, then none. */
    ck_assert_int_ge(wpool_port_settle(wpool_default_port(pool), 60000), 0);
    ck_assert_int_eq(wpool_class_on_drain(pool, g_class[CAP2Q], NULL, NULL, NULL), 0);
    long all = 0, total_ran = 0, total_cancelled = 0;
    for (int k = 0; k < KINDS; k++) {
        long accepted = 0, ran = 0, cancelled = 0, timed_out = 0;
        for (int i = 0; i < PRODUCERS; i++) {
            accepted += ps[i].accepted[k];
            ran += ps[i].ran[k];
            cancelled += ps[i].cancelled[k];
            timed_out += ps[i].timed_out[k];
        }
        ck_assert_int_eq(ran + cancelled + timed_out, accepted);
        ck_assert_int_eq(atomic_load(&g_over[k]), 0);
        struct wpool_class_statistics cs;
        ck_assert_int_eq(wpool_class_stats(pool, g_class[k], &cs), 0);
        ck_assert_uint_eq(cs.completed, (uint64_t)ran);
        ck_assert_uint_eq(cs.cancelled, (uint64_t)cancelled);
        ck_assert_uint_eq(cs.timed_out, (uint64_t)timed_out);
        ck_assert_uint_eq(cs.queued, 0);
        ck_assert_uint_eq(cs.running, 0);
        if (g_class[k] > WPOOL_CLASS_HIGH)
            ck_assert_uint_eq(cs.run.count, (uint64_t)ran);
        all += accepted;
        total_ran += ran;
        total_cancelled += cancelled;
    }
    for (int i = 0; i < PRODUCERS; i++) {
        ck_assert_int_eq(ps[i].twice, 0);
        ck_assert_int_eq(ps[i].completions, ps[i].accepted[0] + ps[i].accepted[1] +
                                                ps[i].accepted[2] + ps[i].accepted[3] +
                                                ps[i].accepted[4] + ps[i].accepted[5]);
        ck_assert_int_eq(wpool_token_destroy(ps[i].tok), 0);
    }
    long refused = 0;
    for (int i = 0; i < PRODUCERS; i++)
        refused += ps[i].refused;
    struct wpool_class_statistics qs;
    ck_assert_int_eq(wpool_class_stats(pool, g_class[CAP2Q], &qs), 0);
    ck_assert_uint_eq(qs.refused, (uint64_t)refused);
    if (getenv("CLASS_VERBOSE"))
        fprintf(stderr, "accepted %ld ran %ld cancelled %ld refused %ld drains %ld\n", all,
                total_ran, total_cancelled, refused, atomic_load(&g_drains));
    ck_assert_int_gt(total_cancelled, 0);
    ck_assert_int_gt(total_ran, all / 10);
    struct wpool_statistics st;
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    ck_assert_uint_eq(st.submitted, (uint64_t)all);
    ck_assert_uint_eq(st.completed + st.cancelled + st.timed_out, (uint64_t)all);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* The cap's claim under contention: only tasks of a class capped at one
 * worker (and at two), tiny ones, so that the other workers keep trying to
 * claim the place as it frees: never two inside at once. */
static atomic_int hammer_inside, hammer_over;
static int hammer_cap;

static int hammer_work(struct wpool_task *t)
{
    (void)t;
    if (atomic_fetch_add(&hammer_inside, 1) >= hammer_cap)
        atomic_fetch_add(&hammer_over, 1);
    for (volatile int i = 0; i < 50; i++)
        ;
    atomic_fetch_sub(&hammer_inside, 1);
    return 0;
}

static void hammer_done(struct wpool_task *t, int status)
{
    (void)t;
    REQUIRE(status == 0, "hammer status %d", status);
}

START_TEST(test_class_cap_hammer)
{
    enum { N = 512 };
    wpool_t *pool;
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 6;
    ck_assert_int_eq(wpool_create(&pool, &o), 0);
    hammer_cap = 1 + _i;
    struct wpool_class_options co = WPOOL_CLASS_OPTIONS_INIT;
    co.max_workers = (unsigned)hammer_cap;
    int cls = wpool_class_create(pool, &co);
    ck_assert_int_ge(cls, 2);
    atomic_store(&hammer_inside, 0);
    atomic_store(&hammer_over, 0);
    static struct wpool_task tasks[N];
    long rounds = g_tasks / N > 4 ? g_tasks / N : 4;
    for (long r = 0; r < rounds; r++) {
        for (int i = 0; i < N; i++) {
            ck_assert_int_eq(wpool_task_init(&tasks[i], hammer_work, hammer_done), 0);
            ck_assert_int_eq(wpool_task_set_class(&tasks[i], cls), 0);
            ck_assert_int_eq(wpool_submit(pool, &tasks[i]), 0);
        }
        ck_assert_int_eq(wpool_port_settle(wpool_default_port(pool), 60000), N);
    }
    ck_assert_int_eq(atomic_load(&hammer_over), 0);
    struct wpool_class_statistics cs;
    ck_assert_int_eq(wpool_class_stats(pool, cls, &cs), 0);
    ck_assert_uint_eq(cs.completed, (uint64_t)(rounds * N));
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1)
        g_tasks = atol(argv[1]);
    Suite *s = suite_create("class-stress");
    TCase *tc = tcase_create("class-stress");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_class_stress, 0, 2);
    tcase_add_loop_test(tc, test_class_cap_hammer, 0, 2);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
