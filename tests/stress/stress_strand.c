/* SPDX-License-Identifier: MIT */
/* stress: strands under load. Producers submit tasks on random keys (a few
 * hot ones and many cold ones) from several threads at once, each through
 * its own port, and withdraw some of their own tasks at random
 * (wpool_cancel, and a token per producer cancelled now and then); a task
 * in eight completes itself before its work returns (WPOOL_PENDING after
 * wpool_task_complete). Checked: per key, no two tasks ever overlap (a
 * counter raised on start and lowered on end); per key and producer, tasks
 * start in the order the producer submitted them (its submissions to one
 * strand are accepted in program order); every accepted task completes
 * exactly once, ran or -ECANCELED. Meanwhile a churn thread initialises a
 * strand, submits a few tasks on it and destroys it as soon as
 * wpool_strand_destroy stops answering -EBUSY (before their completions are
 * dispatched), over and over in one record, and another thread calls
 * wpool_cancel_all (which walks the pool's strands). The argument is the
 * number of tasks per producer. */
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
#include <unistd.h>

enum { PRODUCERS = 4, KEYS = 67, HOT = 3, RECS = 64 };

struct key {
    struct wpool_strand strand;
    atomic_int inside;
    atomic_int overlaps;
    uint64_t last[PRODUCERS]; /* last sequence started per producer (under the strand) */
    atomic_int disorders;
};

static struct key g_keys[KEYS];
static long g_tasks = 100000;
static atomic_int g_producing; /* producers still running */

struct rec {
    struct wpool_task task;
    struct producer *p;
    struct key *key;
    uint64_t seq; /* the producer's submission number, 1-based */
    int self_complete;
    int busy; /* submitted, completion not yet run (producer's) */
};

struct producer {
    wpool_t *pool;
    wpool_port_t *port;
    int index;
    uint64_t rng;
    struct rec recs[RECS];
    wpool_token_t *tok;
    long accepted, completions, ran, cancelled, twice;
};

static int rec_work(struct wpool_task *t)
{
    struct rec *r = (struct rec *)t;
    struct key *k = r->key;
    if (atomic_fetch_add(&k->inside, 1) != 0)
        atomic_fetch_add(&k->overlaps, 1);
    /* Plain fields: the strand makes this the only task of the key running
     * (ThreadSanitizer reports it otherwise). */
    if (k->last[r->p->index] >= r->seq)
        atomic_fetch_add(&k->disorders, 1);
    k->last[r->p->index] = r->seq;
    for (volatile int i = 0; i < (int)(r->seq % 64); i++)
        ;
    atomic_fetch_sub(&k->inside, 1);
    if (r->self_complete) {
        ck_assert_int_eq(wpool_task_complete(t, 1), 0);
        return WPOOL_PENDING;
    }
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
        p->ran++;
    else if (status == -ECANCELED)
        p->cancelled++;
    else
        ck_abort_msg("unexpected status %d", status);
}

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    uint64_t seq = 0;
    /* Its own port, owned by this thread (the one that dispatches it). */
    REQUIRE(wpool_port_create(p->pool, &p->port) == 0, "port");
    for (long n = 0; n < g_tasks;) {
        struct rec *r = &p->recs[rng_next(&p->rng) % RECS];
        if (!r->busy) {
            uint64_t x = rng_next(&p->rng);
            struct key *k = x % 4 ? &g_keys[x / 4 % HOT] : &g_keys[HOT + x / 4 % (KEYS - HOT)];
            REQUIRE(wpool_task_init(&r->task, rec_work, rec_done) == 0, "init");
            REQUIRE(wpool_task_set_strand(&r->task, &k->strand) == 0, "strand");
            REQUIRE(wpool_task_set_port(&r->task, p->port) == 0, "port");
            if (x % 5 == 0)
                REQUIRE(wpool_task_set_token(&r->task, p->tok) == 0, "token");
            r->key = k;
            r->seq = ++seq;
            r->self_complete = x % 8 == 3;
            r->busy = 1;
            int rc = wpool_submit(p->pool, &r->task);
            if (rc == 0) {
                p->accepted++;
                n++;
            } else {
                REQUIRE(rc == -ECANCELED, "submit: %d", rc); /* the token was cancelled */
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
            /* A fresh token for later tasks; the old one may still be on
             * tasks in flight, so it is freed once they are done (below). */
            wpool_token_t *old = p->tok;
            int src = wpool_port_settle(p->port, 60000);
            REQUIRE(src >= 0, "settle: %d", src);
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

/* Churn: one strand record initialised, used and destroyed again and again
 * while the producers' strands are busy. */
struct churn {
    wpool_t *pool;
    struct key k; /* its strand is re-initialised each round */
    struct rec recs[3];
    long rounds, busy_answers;
};

static int churn_work(struct wpool_task *t)
{
    struct rec *r = (struct rec *)t;
    if (atomic_fetch_add(&r->key->inside, 1) != 0)
        atomic_fetch_add(&r->key->overlaps, 1);
    atomic_fetch_sub(&r->key->inside, 1);
    return 1;
}

static void churn_done(struct wpool_task *t, int status)
{
    struct rec *r = (struct rec *)t;
    REQUIRE(status == 1 || status == -ECANCELED, "churn status %d", status);
    r->busy = 0;
}

static void *churn_main(void *arg)
{
    struct churn *c = arg;
    wpool_port_t *port;
    REQUIRE(wpool_port_create(c->pool, &port) == 0, "churn port");
    while (atomic_load(&g_producing)) {
        memset(&c->k.strand, 0, sizeof(c->k.strand));
        REQUIRE(wpool_strand_init(&c->k.strand, c->pool) == 0, "churn strand init");
        for (int i = 0; i < 3; i++) {
            struct rec *r = &c->recs[i];
            REQUIRE(wpool_task_init(&r->task, churn_work, churn_done) == 0, "churn init");
            REQUIRE(wpool_task_set_strand(&r->task, &c->k.strand) == 0, "churn strand");
            REQUIRE(wpool_task_set_port(&r->task, port) == 0, "churn port");
            r->key = &c->k;
            r->busy = 1;
            REQUIRE(wpool_submit(c->pool, &r->task) == 0, "churn submit");
        }
        /* Destroyed as soon as its last task has been released, before the
         * completions are dispatched. */
        int rc;
        while ((rc = wpool_strand_destroy(&c->k.strand)) == -EBUSY) {
            c->busy_answers++;
            sched_yield();
        }
        REQUIRE(rc == 0, "churn destroy: %d", rc);
        memset(&c->k.strand, 0xa5, sizeof(c->k.strand)); /* freed: scribble over it */
        while (c->recs[0].busy || c->recs[1].busy || c->recs[2].busy)
            REQUIRE(wpool_port_wait(port, 60000) == 0 && wpool_port_dispatch(port, 8) >= 0,
                    "churn dispatch");
        c->rounds++;
    }
    REQUIRE(wpool_port_destroy(port) == 0, "churn port destroy");
    return NULL;
}

static void *cancel_all_main(void *arg)
{
    long n = 0;
    while (atomic_load(&g_producing)) {
        int rc = wpool_cancel_all(arg);
        REQUIRE(rc >= 0, "cancel_all: %d", rc);
        if (++n % 64 == 0)
            sched_yield();
        for (volatile int i = 0; i < 20000; i++) /* now and then, not all the time */
            ;
    }
    return NULL;
}

START_TEST(test_strand_stress)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 4;
    o.placement = _i ? WPOOL_ROUND_ROBIN : WPOOL_FIRST_FREE;
    o.queue_capacity = 64; /* small: releases also go through the overflow */
    wpool_t *pool;
    ck_assert_int_eq(wpool_create(&pool, &o), 0);
    memset(g_keys, 0, sizeof(g_keys));
    for (int k = 0; k < KEYS; k++)
        ck_assert_int_eq(wpool_strand_init(&g_keys[k].strand, pool), 0);
    static struct producer ps[PRODUCERS];
    pthread_t th[PRODUCERS];
    memset(ps, 0, sizeof(ps));
    for (int i = 0; i < PRODUCERS; i++) {
        ps[i].pool = pool;
        ps[i].index = i;
        ps[i].rng = 0x9e3779b97f4a7c15u * (uint64_t)(i + 1 + 16 * _i);
        ck_assert_int_eq(wpool_token_create(&ps[i].tok), 0);
        for (int r = 0; r < RECS; r++)
            ps[i].recs[r].p = &ps[i];
    }
    atomic_store(&g_producing, PRODUCERS);
    for (int i = 0; i < PRODUCERS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, producer_main, &ps[i]), 0);
    static struct churn churn;
    memset(&churn, 0, sizeof(churn));
    churn.pool = pool;
    pthread_t churn_th, cancel_th;
    ck_assert_int_eq(pthread_create(&churn_th, NULL, churn_main, &churn), 0);
    ck_assert_int_eq(pthread_create(&cancel_th, NULL, cancel_all_main, pool), 0);
    long accepted = 0, ran = 0, cancelled = 0;
    for (int i = 0; i < PRODUCERS; i++)
        ck_assert_int_eq(pthread_join(th[i], NULL), 0);
    ck_assert_int_eq(pthread_join(churn_th, NULL), 0);
    ck_assert_int_eq(pthread_join(cancel_th, NULL), 0);
    ck_assert_int_eq(atomic_load(&churn.k.overlaps), 0);
    ck_assert_int_gt(churn.rounds, 0);
    for (int i = 0; i < PRODUCERS; i++) {
        ck_assert_int_eq(ps[i].twice, 0);
        ck_assert_int_eq(ps[i].completions, ps[i].accepted);
        ck_assert_int_eq(ps[i].ran + ps[i].cancelled, ps[i].accepted);
        accepted += ps[i].accepted;
        ran += ps[i].ran;
        cancelled += ps[i].cancelled;
        ck_assert_int_eq(wpool_token_destroy(ps[i].tok), 0);
    }
    for (int k = 0; k < KEYS; k++) {
        ck_assert_int_eq(atomic_load(&g_keys[k].overlaps), 0);
        ck_assert_int_eq(atomic_load(&g_keys[k].disorders), 0);
        ck_assert_int_eq(wpool_strand_destroy(&g_keys[k].strand), 0);
    }
    if (getenv("STRAND_VERBOSE"))
        fprintf(stderr, "accepted %ld ran %ld cancelled %ld; churn rounds %ld, -EBUSY %ld\n",
                accepted, ran, cancelled, churn.rounds, churn.busy_answers);
    ck_assert_int_gt(cancelled, 0);       /* the cancels did withdraw some */
    ck_assert_int_gt(ran, accepted / 10); /* and the tasks did run */
    struct wpool_statistics st;
    ck_assert_int_eq(wpool_stats(pool, &st), 0);
    uint64_t all = (uint64_t)accepted + 3 * (uint64_t)churn.rounds;
    ck_assert_uint_eq(st.submitted, all);
    ck_assert_uint_eq(st.completed + st.cancelled, all);
    ck_assert_uint_eq(st.queued, 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

/* A settle of the default port never returns while a task sent to it is in
 * flight, when another thread keeps submitting a strand's tasks to that
 * port (each appended behind the strand's head): an appended task must be
 * counted on the port before anyone can move it on and post it (a review
 * found it counted after, and a settle returning early). X, held on one
 * worker, is the task in flight; each round the owner settles with a short
 * timeout, which must expire, then lets X go and settles until X is done
 * (any return >= 0 before X completed is the bug). Rounds for about two
 * seconds. */
enum { FEED = 64 };
static atomic_int x_release, x_done, feed_stop;
static atomic_int feed_busy[FEED];
static struct wpool_task feed_tasks[FEED];

static int x_work(struct wpool_task *t)
{
    (void)t;
    while (!atomic_load(&x_release))
        usleep(50); /* off the CPU: the feeder, the owner and the other worker run */
    return 0;
}

static void x_doneb(struct wpool_task *t, int status)
{
    (void)t;
    (void)status;
    atomic_store(&x_done, 1);
}

static int feed_work(struct wpool_task *t)
{
    (void)t;
    return 0;
}

static void feed_done(struct wpool_task *t, int status)
{
    REQUIRE(status == 0, "feed status %d", status);
    atomic_store((atomic_int *)t->data, 0);
}

static void *feed_main(void *arg)
{
    while (!atomic_load(&feed_stop)) {
        for (int i = 0; i < FEED; i++) {
            if (atomic_load(&feed_busy[i]))
                continue;
            atomic_store(&feed_busy[i], 1);
            REQUIRE(wpool_submit(arg, &feed_tasks[i]) == 0, "feed submit");
        }
        sched_yield();
    }
    return NULL;
}

START_TEST(test_strand_settle)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 2;
    o.placement = _i ? WPOOL_ROUND_ROBIN : WPOOL_FIRST_FREE;
    wpool_t *pool;
    ck_assert_int_eq(wpool_create(&pool, &o), 0);
    static struct wpool_strand strand;
    memset(&strand, 0, sizeof(strand));
    ck_assert_int_eq(wpool_strand_init(&strand, pool), 0);
    for (int i = 0; i < FEED; i++) {
        ck_assert_int_eq(wpool_task_init(&feed_tasks[i], feed_work, feed_done), 0);
        feed_tasks[i].data = &feed_busy[i];
        ck_assert_int_eq(wpool_task_set_strand(&feed_tasks[i], &strand), 0);
        atomic_store(&feed_busy[i], 0);
    }
    atomic_store(&feed_stop, 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, feed_main, pool), 0);
    wpool_port_t *port = wpool_default_port(pool);
    uint64_t end = wpool_now_ns() + 2000000000u;
    int rounds = 0;
    while (wpool_now_ns() < end) {
        struct wpool_task x = {0};
        ck_assert_int_eq(wpool_task_init(&x, x_work, x_doneb), 0);
        atomic_store(&x_release, 0);
        atomic_store(&x_done, 0);
        ck_assert_int_eq(wpool_submit(pool, &x), 0);
        for (;;) {
            int rc = wpool_port_settle(port, 10);
            if (rc >= 0) {
                ck_assert_msg(atomic_load(&x_done),
                              "round %d: settle returned %d with a task in flight", rounds, rc);
                break;
            }
            ck_assert_int_eq(rc, -ETIMEDOUT);
            atomic_store(&x_release, 1);
        }
        rounds++;
    }
    atomic_store(&feed_stop, 1);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    ck_assert_int_ge(wpool_port_settle(port, 60000), 0);
    ck_assert_int_eq(wpool_strand_destroy(&strand), 0);
    ck_assert_int_eq(wpool_destroy(pool), 0);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1)
        g_tasks = atol(argv[1]);
    Suite *s = suite_create("strand-stress");
    TCase *tc = tcase_create("strand-stress");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_strand_stress, 0, 2);
    tcase_add_loop_test(tc, test_strand_settle, 0, 2);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
