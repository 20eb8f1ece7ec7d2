/* SPDX-License-Identifier: MIT */
/*
 * stress suite: wpool_submit racing wpool_port_destroy of the task's port.
 *
 * OWNERS threads each, in a loop, create a port, publish it for the
 * submitters, dispatch it for a random short while, then destroy it (on
 * -EBUSY: wait, dispatch and call again until 0), keep the dead handle
 * published for a random short while and start over. SUBMITTERS threads send
 * tasks with unique ids to whichever port an owner publishes at that moment.
 *
 * The contract checked (reference: wpool_port_destroy, wpool_submit):
 * - a submit that returned 0 gets exactly one completion, on the owner of the
 *   port it was sent to, before wpool_port_destroy of that port returns 0
 *   (checked by every owner after each destroy, and for every id at the end);
 * - a refused submit gets no completion and leaves the record idle: it is
 *   resubmitted elsewhere at once, and wpool_task_set_port on it returns 0;
 * - a refusal is -ESHUTDOWN (port closing: destroy was called and returned
 *   -EBUSY), -EINVAL (port destroyed; the stale handle stays safe) or
 *   -EAGAIN (queue full), nothing else;
 * - no record is left in flight: wpool_task_init returns 0 on each at the end.
 * The run continues until it has seen enough accepted submits, refusals of
 * both kinds and port destroys (bounded by MAX_SECONDS: not seeing them fails).
 *
 * usage: stress_port_destroy [min seconds]  (default 2; meson also runs it
 * under taskset -c 0)
 */
#include "../common/helpers.h"
#include <wpool.h>

#include <check.h>
#include "../common/fastcheck.h"
#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum {
    OWNERS = 3,
    SUBMITTERS = 4,
    RECS = 64,             /* records per submitter, reused after their completion */
    MAX_INSTS = 1 << 16,   /* ports per owner over the run */
    MAX_IDS = 1 << 22,     /* submits over the run */
    MAX_SECONDS = 90,      /* the bound on driving the run to its minimum counts */
    DESTROY_SECONDS = 20,  /* the bound on one port's destroy loop */
    MIN_ACCEPTED = 20000,  /* submits that returned 0 */
    MIN_SHUTDOWN = 20,     /* -ESHUTDOWN: submit to a closing port */
    MIN_INVAL = 20,        /* -EINVAL: submit to a destroyed port */
    MIN_DESTROYS = 200,    /* ports destroyed, all owners together */
    MIN_DESTROY_BUSY = 20, /* destroys that first returned -EBUSY */
};

static double g_min_seconds = 2.0;

/* One port of one owner, from create to destroy; kept to the end. */
struct inst {
    wpool_port_t *port;
    atomic_long accepted;  /* submits to it that returned 0 (counted after the return) */
    atomic_long completed; /* completions run on it (owner thread only) */
    atomic_int destroyed;  /* wpool_port_destroy returned 0 */
};

struct owner {
    pthread_t th;
    unsigned int index;
    uint64_t rng;
    struct inst *insts;
    int ninsts;
    _Atomic(struct inst *) published;
    long destroy_busy; /* destroys that first returned -EBUSY */
};

struct submitter;

struct rec {
    struct wpool_task task;
    struct submitter *sub;
    struct inst *sent; /* the port instance of its current submission */
    uint32_t id;
    atomic_int inflight; /* 1 from just before the submit to the completion */
    struct rec *next;    /* on the free or the returned list */
};

struct submitter {
    pthread_t th;
    uint64_t rng;
    struct rec recs[RECS];
    struct rec *free; /* this thread's */
    /* Completed records handed back by the owners' callbacks. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rec *returned;
};

static struct {
    wpool_t *pool;
    struct owner owners[OWNERS];
    struct submitter subs[SUBMITTERS];
    atomic_uchar *state; /* per id: 0 unused, 1 accepted, 2 refused */
    atomic_uchar *done;  /* per id: completions */
    atomic_uint next_id;
    atomic_int stop;        /* submitters: stop */
    atomic_int owners_stop; /* owners: stop after the current port */
    uint64_t start_ns, end_ns;
    atomic_long accepted, shutdown, inval, again, destroys;
} g;

/* The port the calling owner thread dispatches; NULL elsewhere. */
static _Thread_local struct inst *tl_inst;

static int expected_status(uint32_t id)
{
    return (int)(id & 0x7fffffff);
}

static void spin_random(uint64_t *rng, unsigned int max)
{
    unsigned int n = (unsigned int)(rng_next(rng) % (max + 1u));
    for (volatile unsigned int i = 0; i < n; i++)
        ;
}

static int rec_work(struct wpool_task *t)
{
    struct rec *r = (struct rec *)t;
    if ((r->id & 7) == 0) { /* a few tasks take a little longer */
        uint64_t s = r->id | 1u;
        spin_random(&s, 2000);
    }
    return expected_status(r->id);
}

static void rec_done(struct wpool_task *t, int status)
{
    struct rec *r = (struct rec *)t;
    struct submitter *s = r->sub;
    REQUIRE(tl_inst && r->sent == tl_inst,
            "id %u completed on port %p, sent to port %p (not on its owner, or after its destroy)",
            r->id, tl_inst ? (void *)tl_inst->port : NULL, (void *)r->sent->port);
    REQUIRE(status == expected_status(r->id), "id %u: status %d", r->id, status);
    REQUIRE(atomic_exchange(&r->inflight, 0) == 1, "id %u completed while not in flight", r->id);
    unsigned char before = atomic_fetch_add_explicit(&g.done[r->id], 1, memory_order_relaxed);
    REQUIRE(before == 0, "id %u completed twice", r->id);
    atomic_store_explicit(&tl_inst->completed,
                          atomic_load_explicit(&tl_inst->completed, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    /* Hand the record back; from the unlock on it is its submitter's. */
    pthread_mutex_lock(&s->mu);
    r->next = s->returned;
    s->returned = r;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* ---- owners ---------------------------------------------------------------- */

static void owner_dispatch(struct owner *o, wpool_port_t *port)
{
    int rc = wpool_port_dispatch(port, WPOOL_DISPATCH_ALL);
    REQUIRE(rc >= 0, "owner %u: dispatch: %d", o->index, rc);
    if ((rng_next(&o->rng) & 3) == 0)
        sched_yield();
    spin_random(&o->rng, 500);
}

/* Destroys the port, dispatching while it is busy; bounded. */
static void owner_destroy(struct owner *o, struct inst *in)
{
    uint64_t limit = wpool_now_ns() + (uint64_t)DESTROY_SECONDS * 1000000000u;
    bool busy = false;
    for (;;) {
        int rc = wpool_port_destroy(in->port);
        if (rc == 0)
            break;
        REQUIRE(rc == -EBUSY, "owner %u: port_destroy: %d", o->index, rc);
        busy = true;
        REQUIRE(wpool_now_ns() < limit,
                "owner %u: port_destroy still -EBUSY after %d s (accepted %ld, completed %ld)",
                o->index, DESTROY_SECONDS, atomic_load(&in->accepted), atomic_load(&in->completed));
        rc = wpool_port_wait(in->port, (rng_next(&o->rng) & 1) ? 0 : 1);
        REQUIRE(rc == 0 || rc == -ETIMEDOUT, "owner %u: port_wait: %d", o->index, rc);
        owner_dispatch(o, in->port);
    }
    o->destroy_busy += busy;
    atomic_store_explicit(&in->destroyed, 1, memory_order_release);
    tl_inst = NULL;
}

/* A submit that returned 0 completed before the destroy of its port did: once
 * a port is destroyed, its completions are final, and every acceptance
 * counted so far (after its submit returned) is among them. */
static void owner_check_dead(const struct owner *o, const struct inst *in)
{
    long done = atomic_load_explicit(&in->completed, memory_order_relaxed);
    long acc = atomic_load_explicit(&in->accepted, memory_order_relaxed);
    REQUIRE(acc <= done,
            "owner %u, port %p: %ld submits returned 0 but only %ld completions ran before "
            "wpool_port_destroy returned 0 (lost completions)",
            o->index, (void *)in->port, acc, done);
}

static void *owner_main(void *arg)
{
    struct owner *o = arg;
    while (!atomic_load(&g.owners_stop)) {
        REQUIRE(o->ninsts < MAX_INSTS, "owner %u: too many ports", o->index);
        struct inst *in = &o->insts[o->ninsts++];
        int rc = wpool_port_create(g.pool, &in->port);
        REQUIRE(rc == 0, "owner %u: port_create: %d", o->index, rc);
        tl_inst = in;
        /* Release: a submitter that reads the instance sees the port. */
        atomic_store_explicit(&o->published, in, memory_order_release);
        unsigned int rounds = (unsigned int)(rng_next(&o->rng) % 64);
        for (unsigned int i = 0; i < rounds; i++)
            owner_dispatch(o, in->port);
        owner_destroy(o, in);
        atomic_fetch_add_explicit(&g.destroys, 1, memory_order_relaxed);
        /* Earlier ports too: a submit may return well after its destroy. */
        for (int k = o->ninsts - 1; k >= 0 && k >= o->ninsts - 8; k--)
            owner_check_dead(o, &o->insts[k]);
        /* The dead handle stays published a little (yielding, so that a
         * submitter runs even on one CPU): submits get -EINVAL. */
        for (uint64_t n = rng_next(&o->rng) % 3; n > 0; n--)
            sched_yield();
        spin_random(&o->rng, 4000);
    }
    return NULL;
}

/* ---- submitters ------------------------------------------------------------ */

static bool enough(void)
{
    uint64_t now = wpool_now_ns();
    if (now >= g.end_ns)
        return true;
    if (now - g.start_ns < (uint64_t)(g_min_seconds * 1e9))
        return false;
    return atomic_load(&g.accepted) >= MIN_ACCEPTED && atomic_load(&g.shutdown) >= MIN_SHUTDOWN &&
           atomic_load(&g.inval) >= MIN_INVAL && atomic_load(&g.destroys) >= MIN_DESTROYS;
}

static void stop_submitters(void)
{
    atomic_store(&g.stop, 1);
    for (int i = 0; i < SUBMITTERS; i++) {
        pthread_mutex_lock(&g.subs[i].mu);
        pthread_cond_broadcast(&g.subs[i].cv);
        pthread_mutex_unlock(&g.subs[i].mu);
    }
}

/* A free record: one of ours, or one the owners handed back; waits for one
 * (until the stop or the run's bound). NULL when stopping. */
static struct rec *take_record(struct submitter *s)
{
    if (!s->free) {
        struct timespec until = {.tv_sec = (time_t)(g.end_ns / 1000000000u),
                                 .tv_nsec = (long)(g.end_ns % 1000000000u)};
        pthread_mutex_lock(&s->mu);
        while (!s->returned && !atomic_load(&g.stop))
            if (pthread_cond_timedwait(&s->cv, &s->mu, &until) != 0)
                break;
        s->free = s->returned;
        s->returned = NULL;
        pthread_mutex_unlock(&s->mu);
    }
    struct rec *r = s->free;
    if (r)
        s->free = r->next;
    return r;
}

static void put_record(struct submitter *s, struct rec *r)
{
    r->next = s->free;
    s->free = r;
}

static void submit_one(struct submitter *s, struct rec *r, struct inst *in)
{
    uint32_t id = atomic_fetch_add_explicit(&g.next_id, 1, memory_order_relaxed);
    if (id >= MAX_IDS) {
        put_record(s, r);
        stop_submitters();
        return;
    }
    /* Idle: a refused submit leaves it so, and a completion has started. */
    int rc = wpool_task_set_port(&r->task, in->port);
    REQUIRE(rc == 0, "set_port on an idle record: %d", rc);
    r->id = id;
    r->sent = in;
    atomic_store(&r->inflight, 1);
    bool dead_before = atomic_load_explicit(&in->destroyed, memory_order_acquire);
    rc = wpool_submit(g.pool, &r->task);
    if (rc == 0) {
        REQUIRE(!dead_before, "id %u: submit to a port destroyed before the call returned 0", id);
        atomic_store_explicit(&g.state[id], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&in->accepted, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&g.accepted, 1, memory_order_relaxed);
        return; /* the record is wpool's until its completion hands it back */
    }
    atomic_store(&r->inflight, 0);
    atomic_store_explicit(&g.state[id], 2, memory_order_relaxed);
    switch (rc) {
    case -ESHUTDOWN:
        atomic_fetch_add_explicit(&g.shutdown, 1, memory_order_relaxed);
        break;
    case -EINVAL:
        atomic_fetch_add_explicit(&g.inval, 1, memory_order_relaxed);
        break;
    case -EAGAIN:
        atomic_fetch_add_explicit(&g.again, 1, memory_order_relaxed);
        break;
    default:
        ck_abort_msg("id %u: submit to a port being destroyed returned %d", id, rc);
    }
    put_record(s, r); /* idle: resubmitted (elsewhere) at once */
}

static void *submitter_main(void *arg)
{
    struct submitter *s = arg;
    for (unsigned long k = 0; !atomic_load(&g.stop); k++) {
        if ((k & 63) == 0 && enough()) {
            stop_submitters();
            break;
        }
        struct rec *r = take_record(s);
        if (!r)
            continue;
        struct owner *o = &g.owners[rng_next(&s->rng) % OWNERS];
        /* Acquire: pairs with the owner's release store. */
        struct inst *in = atomic_load_explicit(&o->published, memory_order_acquire);
        if (!in) {
            put_record(s, r);
            sched_yield();
            continue;
        }
        submit_one(s, r, in);
        uint64_t x = rng_next(&s->rng);
        if ((x & 15) == 0)
            sched_yield();
        else
            spin_random(&s->rng, (unsigned int)(x >> 60) * 100u);
    }
    return NULL;
}

/* ---- the test -------------------------------------------------------------- */

static void check_ids(void)
{
    uint32_t n = atomic_load(&g.next_id);
    if (n > MAX_IDS)
        n = MAX_IDS;
    long lost = 0, first_lost = -1;
    for (uint32_t id = 0; id < n; id++) {
        unsigned char st = atomic_load(&g.state[id]), d = atomic_load(&g.done[id]);
        if (st == 1 && d == 0 && lost++ == 0)
            first_lost = id;
        REQUIRE(st != 1 || d <= 1, "id %u: accepted, completed %d times", id, d);
        REQUIRE(st != 2 || d == 0, "id %u: refused, yet completed %d times", id, d);
    }
    REQUIRE(lost == 0, "%ld accepted submits never completed (first: id %ld)", lost, first_lost);
}

START_TEST(test_submit_vs_port_destroy)
{
    memset(&g, 0, sizeof(g));
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 4;
    ck_assert_int_eq(wpool_create(&g.pool, &o), 0);
    g.state = calloc(MAX_IDS, 1);
    g.done = calloc(MAX_IDS, 1);
    ck_assert(g.state && g.done);
    g.start_ns = wpool_now_ns();
    g.end_ns = g.start_ns + (uint64_t)MAX_SECONDS * 1000000000u;

    for (int i = 0; i < SUBMITTERS; i++) {
        struct submitter *s = &g.subs[i];
        s->rng = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1);
        pthread_mutex_init(&s->mu, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->cv, &ca);
        pthread_condattr_destroy(&ca);
        for (int k = 0; k < RECS; k++) {
            struct rec *r = &s->recs[k];
            ck_assert_int_eq(wpool_task_init(&r->task, rec_work, rec_done), 0);
            r->sub = s;
            put_record(s, r);
        }
    }
    for (int i = 0; i < OWNERS; i++) {
        struct owner *ow = &g.owners[i];
        ow->index = (unsigned int)i;
        ow->rng = 0xda942042e4dd58b5ull * (uint64_t)(i + 7);
        ow->insts = calloc(MAX_INSTS, sizeof(struct inst));
        ck_assert(ow->insts != NULL);
        ck_assert_int_eq(pthread_create(&ow->th, NULL, owner_main, ow), 0);
    }
    for (int i = 0; i < SUBMITTERS; i++)
        ck_assert_int_eq(pthread_create(&g.subs[i].th, NULL, submitter_main, &g.subs[i]), 0);
    for (int i = 0; i < SUBMITTERS; i++)
        pthread_join(g.subs[i].th, NULL);
    /* Every submit has returned; each owner destroys its last port and stops. */
    atomic_store(&g.owners_stop, 1);
    long destroy_busy = 0;
    for (int i = 0; i < OWNERS; i++) {
        pthread_join(g.owners[i].th, NULL);
        destroy_busy += g.owners[i].destroy_busy;
    }
    double secs = (double)(wpool_now_ns() - g.start_ns) / 1e9;
    ck_assert_int_eq(wpool_destroy(g.pool), 0);

    long accepted = atomic_load(&g.accepted), shut = atomic_load(&g.shutdown),
         inval = atomic_load(&g.inval), again = atomic_load(&g.again),
         destroys = atomic_load(&g.destroys);
    printf("submit vs port_destroy: %.1f s, %u submits: accepted %ld, -ESHUTDOWN %ld, -EINVAL %ld, "
           "-EAGAIN %ld; %ld ports destroyed, %ld of them after -EBUSY\n",
           secs, atomic_load(&g.next_id), accepted, shut, inval, again, destroys, destroy_busy);
    fflush(stdout);

    /* Exactly once, per port and per id. */
    for (int i = 0; i < OWNERS; i++)
        for (int k = 0; k < g.owners[i].ninsts; k++) {
            const struct inst *in = &g.owners[i].insts[k];
            REQUIRE(atomic_load(&in->accepted) == atomic_load(&in->completed),
                    "owner %d, port %d: %ld accepted, %ld completed", i, k,
                    atomic_load(&in->accepted), atomic_load(&in->completed));
        }
    check_ids();
    /* No record stuck in flight. */
    for (int i = 0; i < SUBMITTERS; i++)
        for (int k = 0; k < RECS; k++) {
            struct rec *r = &g.subs[i].recs[k];
            int rc = wpool_task_init(&r->task, rec_work, rec_done);
            REQUIRE(rc == 0, "record %d of submitter %d (id %u): task_init %d (still in flight)", k,
                    i, r->id, rc);
        }
    /* The race was run: both outcomes of a submit racing a destroy, many times. */
    ck_assert_int_ge(accepted, MIN_ACCEPTED);
    ck_assert_int_ge(shut, MIN_SHUTDOWN);
    ck_assert_int_ge(inval, MIN_INVAL);
    ck_assert_int_ge(destroys, MIN_DESTROYS);
    ck_assert_int_ge(destroy_busy, MIN_DESTROY_BUSY);

    for (int i = 0; i < OWNERS; i++)
        free(g.owners[i].insts);
    for (int i = 0; i < SUBMITTERS; i++) {
        pthread_mutex_destroy(&g.subs[i].mu);
        pthread_cond_destroy(&g.subs[i].cv);
    }
    free(g.state);
    free(g.done);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1)
        g_min_seconds = strtod(argv[1], NULL);
    if (!(g_min_seconds >= 0.1))
        g_min_seconds = 0.1;
    Suite *s = suite_create("stress");
    TCase *tc = tcase_create("port_destroy");
    /* The run is bounded by MAX_SECONDS plus one destroy loop; this covers
     * slow (TSan, one CPU) runs. A hang fails. */
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_submit_vs_port_destroy);
    suite_add_tcase(s, tc);
    return wp_run_suite(s);
}
