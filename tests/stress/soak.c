/*
 * Soak: eight threads issue a random mix of submit, batch submit, blocking
 * submit, cancel, token cancel, cancel-all, statistics, shutdown (with a mode
 * and a timeout) and dispatch on one pool, in rounds with random options, for
 * a bounded time; each round ends with drains, port destroys and wpool_destroy.
 * Checked at the end of every round: every acceptance got exactly one
 * completion (per record, and accepted == ran + cancelled + timed out), the
 * pool's own counters agree, no token is left in use. A watchdog fails the
 * test with a stack dump of every thread (gdb) if a round hangs.
 *
 * usage: soak [seconds]  (default 3; CI runs it plainly and under taskset -c 0)
 */
#include "../common/helpers.h"
#include <wpool.h>

#include <check.h>
#include "../common/fastcheck.h"
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { PRODUCERS = 8, RECORDS = 64, TOKENS = 4 };

static double g_seconds = 3.0;

struct rec {
    struct wpool_task task;
    atomic_int inflight; /* 1 from acceptance to completion */
    uint64_t accepted;   /* owner thread only */
    uint64_t completions;
    uint64_t ran, cancelled, timed_out;
    int spin_us;
    int bad; /* a completion with no acceptance, or an unknown status */
};

struct round {
    wpool_t *pool;
    wpool_token_t *tokens[TOKENS];
    uint64_t end_ns;
    atomic_int shut;         /* a shutdown was issued */
    pthread_barrier_t ready; /* every producer has its port */
};

struct producer {
    struct round *r;
    unsigned int id;
    uint64_t rng;
    wpool_port_t *port;
    struct rec recs[RECORDS];
};

static int rec_work(struct wpool_task *t)
{
    struct rec *r = (struct rec *)t;
    uint64_t end = wpool_now_ns() + (uint64_t)r->spin_us * 1000u;
    while (wpool_now_ns() < end)
        if (wpool_task_cancelled(t))
            return 1; /* stopped early */
    return 0;
}

static void rec_done(struct wpool_task *t, int status)
{
    struct rec *r = (struct rec *)t;
    if (atomic_exchange(&r->inflight, 0) != 1)
        r->bad = 1;
    r->completions++;
    if (status == 0 || status == 1)
        r->ran++;
    else if (status == -ECANCELED)
        r->cancelled++;
    else if (status == -ETIMEDOUT)
        r->timed_out++;
    else
        r->bad = 1;
}

/* Gives an idle record fresh random attributes; false if it is in flight. */
static bool prepare(struct producer *p, struct rec *r)
{
    if (atomic_load(&r->inflight))
        return false;
    uint64_t x = rng_next(&p->rng);
    REQUIRE(wpool_task_set_priority(&r->task, (int)(x & 1)) == 0, "set_priority");
    uint64_t dl = 0;
    if ((x >> 1) % 8 == 0)
        dl = wpool_now_ns() - 1; /* already passed: -ETIMEDOUT unless cancelled */
    else if ((x >> 1) % 8 == 1)
        dl = wpool_now_ns() + 50000; /* 50 us: either way */
    REQUIRE(wpool_task_set_deadline(&r->task, dl) == 0, "set_deadline");
    wpool_token_t *tok = NULL;
    if ((x >> 4) % 4 == 0) {
        tok = p->r->tokens[(x >> 6) % TOKENS];
        if (wpool_token_cancelled(tok))
            tok = NULL;
    }
    REQUIRE(wpool_task_set_token(&r->task, tok) == 0, "set_token");
    r->spin_us = (int)((x >> 8) % 20);
    return true;
}

/* Marks a record in flight just before the call that may accept it: a
 * completion may arrive on another call of this thread only, but the flag is
 * checked by rec_done, so set it first and undo on refusal. */
static void accepted(struct rec *r)
{
    r->accepted++;
}

static int submit_one(struct producer *p, struct rec *r, int how)
{
    atomic_store(&r->inflight, 1);
    int rc = how == 0 ? wpool_submit(p->r->pool, &r->task)
                      : wpool_submit_wait(p->r->pool, &r->task, 1 + (int)(rng_next(&p->rng) % 2));
    if (rc == 0) {
        accepted(r);
        return 0;
    }
    atomic_store(&r->inflight, 0);
    REQUIRE(rc == -EAGAIN || rc == -ESHUTDOWN || rc == -ECANCELED || rc == -ETIMEDOUT,
            "submit: unexpected %d", rc);
    return rc;
}

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    struct round *rd = p->r;
    wpool_t *pool = rd->pool;
    int prc = wpool_port_create(pool, &p->port);
    REQUIRE(prc == 0, "port_create: %d", prc);
    for (int i = 0; i < RECORDS; i++) {
        memset(&p->recs[i].task, 0, sizeof(p->recs[i].task));
        REQUIRE(wpool_task_init(&p->recs[i].task, rec_work, rec_done) == 0, "task_init");
        REQUIRE(wpool_task_set_port(&p->recs[i].task, p->port) == 0, "set_port");
    }
    pthread_barrier_wait(&rd->ready);
    while (wpool_now_ns() < rd->end_ns) {
        uint64_t x = rng_next(&p->rng);
        struct rec *r = &p->recs[(x >> 8) % RECORDS];
        unsigned op = (unsigned)(x % 1000);
        if (op < 350) {
            if (prepare(p, r))
                submit_one(p, r, 0);
        } else if (op < 450) {
            struct wpool_task *batch[8];
            struct rec *recs[8];
            unsigned n = 0;
            for (unsigned k = 0; k < 8; k++) {
                struct rec *c = &p->recs[(rng_next(&p->rng) >> 8) % RECORDS];
                bool dup = false;
                for (unsigned m = 0; m < n; m++)
                    dup |= recs[m] == c;
                if (!dup && prepare(p, c)) {
                    recs[n] = c;
                    batch[n++] = &c->task;
                }
            }
            if (!n)
                continue;
            for (unsigned k = 0; k < n; k++)
                atomic_store(&recs[k]->inflight, 1);
            int rc = wpool_submit_batch(pool, batch, n);
            unsigned ok = rc > 0 ? (unsigned)rc : 0;
            REQUIRE(rc > 0 || rc == -EAGAIN || rc == -ESHUTDOWN || rc == -ECANCELED,
                    "batch: unexpected %d", rc);
            REQUIRE(ok <= n, "batch accepted %u of %u", ok, n);
            for (unsigned k = 0; k < n; k++) {
                if (k < ok)
                    accepted(recs[k]);
                else
                    atomic_store(&recs[k]->inflight, 0);
            }
        } else if (op < 470) {
            if (prepare(p, r))
                submit_one(p, r, 1);
        } else if (op < 600) {
            /* Any record, in flight or not, this thread's or another's. */
            int rc = wpool_cancel(&r->task);
            REQUIRE(rc == 0 || rc == -EBUSY, "cancel: %d", rc);
        } else if (op < 604) {
            int rc = wpool_token_cancel(rd->tokens[(x >> 20) % TOKENS]);
            REQUIRE(rc >= 0, "token_cancel: %d", rc);
        } else if (op < 606) {
            REQUIRE(wpool_cancel_all(pool) >= 0, "cancel_all");
        } else if (op < 615) {
            struct wpool_stats st;
            REQUIRE(wpool_stats(pool, &st) == 0, "stats");
            REQUIRE(st.running <= st.threads, "running %u > threads", st.running);
            REQUIRE(st.completed + st.cancelled + st.timed_out <= st.submitted,
                    "more done than submitted");
        } else if (op == 615 && (x >> 32) % 8 == 0) {
            atomic_store(&rd->shut, 1);
            int mode = (int)((x >> 40) & 1), tmo = (int)((x >> 41) % 3) * 2;
            int rc = wpool_shutdown(pool, mode, tmo);
            REQUIRE(rc == 0 || rc == -ETIMEDOUT, "shutdown: %d", rc);
        } else {
            int rc = wpool_port_dispatch(p->port, 1 + (unsigned)(x >> 50) % 64);
            REQUIRE(rc >= 0, "dispatch: %d", rc);
        }
    }
    /* Everything this thread had accepted completes on its port. */
    REQUIRE(wpool_port_drain(p->port, -1) >= 0, "drain");
    REQUIRE(wpool_port_destroy(p->port) == 0, "port_destroy");
    return NULL;
}

/* ---- watchdog --------------------------------------------------------------- */

static pthread_mutex_t wd_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cv;
static bool wd_done;

static void *watchdog_main(void *arg)
{
    double limit = *(double *)arg;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)limit;
    pthread_mutex_lock(&wd_mu);
    int rc = 0;
    while (!wd_done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&wd_cv, &wd_mu, &ts);
    bool hung = !wd_done;
    pthread_mutex_unlock(&wd_mu);
    if (hung) {
        char cmd[128];
        fprintf(stderr, "watchdog: no progress after %.0f s; stacks of every thread:\n", limit);
        snprintf(cmd, sizeof(cmd), "gdb -p %d -batch -ex 'thread apply all bt' 1>&2 2>/dev/null",
                 (int)getpid());
        if (system(cmd) != 0)
            fprintf(stderr, "watchdog: gdb unavailable\n");
        ck_abort_msg("watchdog: hang");
    }
    return NULL;
}

START_TEST(test_soak)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wd_cv, &ca);
    double wd_limit = g_seconds * 4 + 30;
    pthread_t wd;
    pthread_create(&wd, NULL, watchdog_main, &wd_limit);

    static struct producer prods[PRODUCERS];
    uint64_t seed = (uint64_t)wpool_now_ns() | 1;
    printf("soak: %.1f s, seed %llu\n", g_seconds, (unsigned long long)seed);
    uint64_t stop = wpool_now_ns() + (uint64_t)(g_seconds * 1e9);
    unsigned rounds = 0;
    uint64_t total = 0;
    while (wpool_now_ns() < stop) {
        struct round rd;
        memset(&rd, 0, sizeof(rd));
        uint64_t x = rng_next(&seed);
        struct wpool_options o = WPOOL_OPTIONS_INIT;
        o.threads = 1 + (unsigned)(x % 4);
        o.dispatch = (int)((x >> 2) & 1);
        o.queue_capacity = 64u << ((x >> 3) % 4);
        o.timing = (int)((x >> 5) & 1);
        if ((x >> 6) % 3 == 0)
            o.max_queue = (unsigned)((x >> 8) % 48);
        if ((x >> 14) % 3 == 0) /* completion coalescing, 1 us to 2 ms */
            o.coalesce_us = 1 + (unsigned)((x >> 16) % 2000);
        REQUIRE(wpool_create(&rd.pool, &o) == 0, "create");
        for (int i = 0; i < TOKENS; i++)
            REQUIRE(wpool_token_create(&rd.tokens[i]) == 0, "token_create");
        rd.end_ns = wpool_now_ns() + 200000000u; /* 0.2 s */
        pthread_barrier_init(&rd.ready, NULL, PRODUCERS);
        pthread_t th[PRODUCERS];
        for (unsigned i = 0; i < PRODUCERS; i++) {
            prods[i].r = &rd;
            prods[i].id = i;
            prods[i].rng = rng_next(&seed) | 1;
            memset(prods[i].recs, 0, sizeof(prods[i].recs));
            pthread_create(&th[i], NULL, producer_main, &prods[i]);
        }
        for (unsigned i = 0; i < PRODUCERS; i++)
            pthread_join(th[i], NULL);
        struct wpool_stats st;
        REQUIRE(wpool_stats(rd.pool, &st) == 0, "stats");
        uint64_t acc = 0, ran = 0, can = 0, tmo = 0;
        for (unsigned i = 0; i < PRODUCERS; i++) {
            for (int k = 0; k < RECORDS; k++) {
                struct rec *r = &prods[i].recs[k];
                REQUIRE(!r->bad, "record %u/%d: completion without acceptance or bad status", i, k);
                REQUIRE(r->accepted == r->completions,
                        "record %u/%d: %llu accepted, %llu completed", i, k,
                        (unsigned long long)r->accepted, (unsigned long long)r->completions);
                REQUIRE(atomic_load(&r->inflight) == 0, "record still in flight");
                acc += r->accepted;
                ran += r->ran;
                can += r->cancelled;
                tmo += r->timed_out;
            }
        }
        REQUIRE(acc == ran + can + tmo, "accepted %llu != %llu + %llu + %llu",
                (unsigned long long)acc, (unsigned long long)ran, (unsigned long long)can,
                (unsigned long long)tmo);
        REQUIRE(st.submitted == acc, "pool counted %llu submitted, producers %llu",
                (unsigned long long)st.submitted, (unsigned long long)acc);
        REQUIRE(st.completed == ran && st.cancelled == can && st.timed_out == tmo,
                "pool counters %llu/%llu/%llu vs %llu/%llu/%llu", (unsigned long long)st.completed,
                (unsigned long long)st.cancelled, (unsigned long long)st.timed_out,
                (unsigned long long)ran, (unsigned long long)can, (unsigned long long)tmo);
        REQUIRE(st.queued == 0 && st.running == 0, "pool not idle at the end");
        REQUIRE(wpool_destroy(rd.pool) == 0, "destroy");
        pthread_barrier_destroy(&rd.ready);
        for (int i = 0; i < TOKENS; i++)
            REQUIRE(wpool_token_destroy(rd.tokens[i]) == 0, "token still carried");
        rounds++;
        total += acc;
    }
    printf("soak: %u rounds, %llu tasks accepted, each completed exactly once\n", rounds,
           (unsigned long long)total);
    ck_assert_uint_ge(rounds, 1);
    pthread_mutex_lock(&wd_mu);
    wd_done = true;
    pthread_cond_signal(&wd_cv);
    pthread_mutex_unlock(&wd_mu);
    pthread_join(wd, NULL);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1)
        g_seconds = atof(argv[1]);
    if (!(g_seconds > 0))
        g_seconds = 3.0;
    Suite *s = suite_create("soak");
    TCase *tc = tcase_create("soak");
    tcase_set_timeout(tc, g_seconds * 6 + 60);
    tcase_add_test(tc, test_soak);
    suite_add_tcase(s, tc);
    return wp_run_suite(s);
}
