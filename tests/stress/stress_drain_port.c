/* SPDX-License-Identifier: MIT */
/*
 * stress suite: wpool_on_drain moving the drain registration between ports
 * while workers post drain notifications, and the destroy of a port that was
 * registered.
 *
 * A pool with one worker and max_queue = 0 makes a refusal and a drain
 * notification on demand: the main thread (the driver, owner of the default
 * port) submits a gate task that holds the worker, submits a probe that is
 * refused with -EAGAIN, opens the gate; the worker, idle again, posts one
 * notification to the registered port. Meanwhile a switcher thread registers
 * the drain callback alternately on two ports, P (owned by thread X, a fresh
 * port every round) and Q (owned by thread Y, for the whole run), then moves
 * the registration off P (to Q, or unregisters), has X destroy P, and checks
 * that notifications still arrive on Q.
 *
 * What is checked (reference: backpressure, wpool_on_drain,
 * wpool_port_destroy):
 * - every notification runs on the port it was registered for when it was
 *   posted. The switcher marks each wpool_on_drain call in a sequence number
 *   (odd during the call) and publishes the port of the last registration
 *   that returned 0. An owner dispatches only between calls and records the
 *   sequence and the registered port when its dispatch begins; a notification
 *   that runs there while the sequence has not moved, on a port other than
 *   the registered one, was misdirected: had it been posted to this port
 *   before the registration moved, that wpool_on_drain would have returned
 *   -EBUSY (a notification on its way to the old port); one posted after it
 *   belongs to the new port.
 * - after P is destroyed, notifications still arrive (none is lost on a dead
 *   port, leaving drain notifications off for the rest of the pool's life);
 * - wpool_on_drain returns 0 or -EBUSY while switching, wpool_port_destroy 0
 *   or -EBUSY; in the second test case the switcher also calls wpool_on_drain
 *   on P while X destroys it: 0 before the destroy began, -ESHUTDOWN once a
 *   destroy returned -EBUSY (the port is closing), -EINVAL once it returned 0.
 *
 * usage: stress_drain_port [min seconds]  (default 3; meson runs it for 5, and
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
    MAX_SECONDS = 60,       /* the bound on driving the run to its minimum counts */
    WAIT_SECONDS = 10,      /* the bound on any one wait (a destroy, a notification) */
    MIN_ROUNDS = 30,        /* ports P registered, destroyed, and drain still on after */
    MIN_SWITCHES = 1000,    /* wpool_on_drain calls that moved the registration */
    MIN_SWITCH_BUSY = 1,    /* ... and that found a notification on its way to the old port */
    MIN_CHECKED = 100,      /* notifications checked, on P ports and on Q each */
    MIN_PROBE_CLOSING = 1,  /* second case: -ESHUTDOWN from on_drain on a closing P */
    MIN_PROBE_EARLY_OK = 1, /* second case: 0 from on_drain on P before its destroy */
};

static double g_min_seconds = 3.0;

struct owner {
    pthread_t th;
    int which; /* 0: X (ports P), 1: Y (port Q) */
    uint64_t rng;
    wpool_port_t *port;        /* under g.mu */
    bool destroy;              /* under g.mu: switcher asks X to destroy P */
    bool destroy_done;         /* under g.mu: X destroyed P */
    atomic_int destroy_called; /* X is about to call (or has called) destroy */
    atomic_int destroy_busy;   /* a destroy of P returned -EBUSY: P is closing */
    atomic_int destroyed;      /* the destroy of P returned 0 */
};

static struct {
    wpool_t *pool;
    bool probe; /* second case: on_drain on P while it is destroyed */
    struct owner x, y;
    /* The switcher's record of registrations: seq is odd while a
     * wpool_on_drain call is in progress, reg is the port of the last one
     * that returned 0 with a callback (NULL: unregistered). */
    atomic_uint seq;
    _Atomic(wpool_port_t *) reg;
    atomic_int stop;
    uint64_t start_ns, end_ns;
    /* Rounds: the switcher waits on these for X and for notifications. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long on_q; /* notifications run on Q, under mu */
    /* The driver's gate task. */
    pthread_mutex_t gmu;
    pthread_cond_t gcv;
    bool g_started, g_release, g_done;
    /* Under gmu: the switcher needs a registration call to succeed and holds
     * the driver's next refusal meanwhile (see reg_until). */
    bool hold;
    /* Outcomes. */
    atomic_long notes[2], checked[2], ambiguous, misdirected, elsewhere;
    atomic_long cycles, refusals;
    long switches, switch_busy, rounds, destroy_busy;
    long probe_ok, probe_busy, probe_closing, probe_inval, probe_late_ok;
    wpool_port_t *mis_port, *mis_reg;
} g;

/* The port this owner thread dispatches, and the registration when its
 * current dispatch began. */
static _Thread_local struct owner *tl_owner;
static _Thread_local wpool_port_t *tl_port;
static _Thread_local unsigned int tl_seq;
static _Thread_local wpool_port_t *tl_reg;

static void spin_random(uint64_t *rng, unsigned int max)
{
    unsigned int n = (unsigned int)(rng_next(rng) % (max + 1u));
    for (volatile unsigned int i = 0; i < n; i++)
        ;
}

static uint64_t deadline_ns(unsigned int seconds)
{
    return wpool_now_ns() + (uint64_t)seconds * 1000000000u;
}

static struct timespec abs_ts(uint64_t ns)
{
    return (struct timespec){.tv_sec = (time_t)(ns / 1000000000u),
                             .tv_nsec = (long)(ns % 1000000000u)};
}

/* ---- the drain callback and the port owners --------------------------------- */

static void on_drain_cb(wpool_t *pool, void *arg)
{
    (void)pool;
    (void)arg; /* read when the notification runs: says nothing about its post */
    unsigned int s = atomic_load(&g.seq);
    struct owner *o = tl_owner;
    if (!o) { /* not inside an owner's dispatch */
        atomic_fetch_add(&g.elsewhere, 1);
        return;
    }
    atomic_fetch_add_explicit(&g.notes[o->which], 1, memory_order_relaxed);
    if (s != tl_seq) {
        atomic_fetch_add_explicit(&g.ambiguous, 1, memory_order_relaxed);
    } else if (tl_reg != tl_port) {
        if (atomic_fetch_add(&g.misdirected, 1) == 0) {
            g.mis_port = tl_port;
            g.mis_reg = tl_reg;
        }
    } else {
        atomic_fetch_add_explicit(&g.checked[o->which], 1, memory_order_relaxed);
    }
    if (o->which == 1) {
        pthread_mutex_lock(&g.mu);
        g.on_q++;
        pthread_cond_broadcast(&g.cv);
        pthread_mutex_unlock(&g.mu);
    }
}

/* Dispatches the owner's port between two registration calls. */
static void owner_dispatch(struct owner *o, wpool_port_t *port)
{
    unsigned int s;
    for (unsigned int n = 0;; n++) {
        s = atomic_load(&g.seq);
        if (!(s & 1)) {
            tl_reg = atomic_load(&g.reg);
            if (atomic_load(&g.seq) == s)
                break;
        }
        if (n % 64 == 63)
            sched_yield();
    }
    tl_seq = s;
    tl_port = port;
    int rc = wpool_port_dispatch(port, WPOOL_DISPATCH_ALL);
    REQUIRE(rc >= 0, "owner %d: dispatch: %d", o->which, rc);
    if ((rng_next(&o->rng) & 15) == 0)
        sched_yield();
}

/* Destroys the owner's port, dispatching while it is busy; bounded. */
static void owner_destroy(struct owner *o, wpool_port_t *port)
{
    uint64_t limit = deadline_ns(WAIT_SECONDS);
    atomic_store(&o->destroy_called, 1);
    for (;;) {
        int rc = wpool_port_destroy(port);
        if (rc == 0)
            break;
        REQUIRE(rc == -EBUSY, "owner %d: port_destroy: %d", o->which, rc);
        if (!atomic_load(&o->destroy_busy)) {
            atomic_store(&o->destroy_busy, 1);
            if (o->which == 0) /* X's count: Y may be destroying Q at the same time */
                g.destroy_busy++;
        }
        REQUIRE(wpool_now_ns() < limit, "owner %d: port_destroy still -EBUSY after %d s", o->which,
                WAIT_SECONDS);
        /* Closing: let a probe in (on one CPU too). */
        for (uint64_t n = rng_next(&o->rng) % 3; n > 0; n--)
            sched_yield();
        owner_dispatch(o, port);
    }
    atomic_store(&o->destroyed, 1);
}

/* Y: owns Q for the whole run. */
static void *owner_y_main(void *arg)
{
    struct owner *o = arg;
    tl_owner = o;
    wpool_port_t *q;
    int rc = wpool_port_create(g.pool, &q);
    REQUIRE(rc == 0, "port_create: %d", rc);
    pthread_mutex_lock(&g.mu);
    o->port = q;
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    while (!atomic_load(&g.stop))
        owner_dispatch(o, o->port);
    owner_destroy(o, o->port);
    return NULL;
}

/* X: a fresh port P each round, destroyed when the switcher asks. */
static void *owner_x_main(void *arg)
{
    struct owner *o = arg;
    tl_owner = o;
    while (!atomic_load(&g.stop)) {
        wpool_port_t *p;
        int rc = wpool_port_create(g.pool, &p);
        REQUIRE(rc == 0, "port_create: %d", rc);
        atomic_store(&o->destroy_called, 0);
        atomic_store(&o->destroy_busy, 0);
        atomic_store(&o->destroyed, 0);
        pthread_mutex_lock(&g.mu);
        o->port = p;
        o->destroy = o->destroy_done = false;
        pthread_cond_broadcast(&g.cv);
        pthread_mutex_unlock(&g.mu);
        for (;;) {
            pthread_mutex_lock(&g.mu);
            bool go = o->destroy || atomic_load(&g.stop);
            pthread_mutex_unlock(&g.mu);
            if (go)
                break;
            owner_dispatch(o, p);
        }
        /* A little later than asked, so that a probe may register P first. */
        for (unsigned int n = (unsigned int)(rng_next(&o->rng) % 8); n > 0; n--)
            owner_dispatch(o, p);
        owner_destroy(o, p);
        pthread_mutex_lock(&g.mu);
        o->destroy_done = true;
        pthread_cond_broadcast(&g.cv);
        while (o->port == p && !atomic_load(&g.stop))
            pthread_cond_wait(&g.cv, &g.mu); /* the switcher clears it for the next round */
        pthread_mutex_unlock(&g.mu);
    }
    return NULL;
}

/* ---- the switcher ------------------------------------------------------------ */

/* One wpool_on_drain call, marked in the sequence; reg follows on success. */
static int reg_call(wpool_port_t *port, bool on)
{
    atomic_fetch_add(&g.seq, 1); /* odd: a call is in progress */
    int rc = wpool_on_drain(g.pool, port, on ? on_drain_cb : NULL, port);
    if (rc == 0)
        atomic_store(&g.reg, on ? port : NULL);
    atomic_fetch_add(&g.seq, 1);
    return rc;
}

static void hold_driver(bool hold)
{
    pthread_mutex_lock(&g.gmu);
    g.hold = hold;
    pthread_cond_broadcast(&g.gcv);
    pthread_mutex_unlock(&g.gmu);
}

/* Registers on port (or unregisters, on = false), retrying on -EBUSY while
 * the notification on its way to the old port is dispatched; bounded. The
 * driver holds its next refusal meanwhile: with notifications posted back to
 * back (one CPU), each retry could find the next one on its way. */
static void reg_until(wpool_port_t *port, bool on)
{
    uint64_t limit = deadline_ns(WAIT_SECONDS);
    int rc = reg_call(port, on);
    if (rc == -EBUSY)
        hold_driver(true);
    for (; rc == -EBUSY; rc = reg_call(port, on)) {
        REQUIRE(wpool_now_ns() < limit,
                "round %ld: on_drain(%s, %s) still -EBUSY after %d s (registered: %s; P %s)",
                g.rounds, port == g.y.port ? "Q" : "P", on ? "fn" : "NULL", WAIT_SECONDS,
                atomic_load(&g.reg) == g.y.port ? "Q"
                : atomic_load(&g.reg)           ? "P"
                                                : "none",
                atomic_load(&g.x.destroyed) ? "destroyed" : "alive");
        sched_yield();
    }
    hold_driver(false);
    REQUIRE(rc == 0, "on_drain(%p, %s): %d", (void *)port, on ? "fn" : "NULL", rc);
}

static wpool_port_t *wait_for_p(void)
{
    struct timespec until = abs_ts(deadline_ns(WAIT_SECONDS));
    pthread_mutex_lock(&g.mu);
    while (!g.x.port)
        REQUIRE(pthread_cond_timedwait(&g.cv, &g.mu, &until) == 0, "X made no port");
    wpool_port_t *p = g.x.port;
    pthread_mutex_unlock(&g.mu);
    return p;
}

/* wpool_on_drain on P while X destroys it: the code says how far the
 * destroy is. A registration that succeeds is moved back to Q. */
static void probe_p(wpool_port_t *p, wpool_port_t *q)
{
    bool closing = atomic_load(&g.x.destroy_busy), dead = atomic_load(&g.x.destroyed);
    int rc = reg_call(p, true);
    bool called_after = atomic_load(&g.x.destroy_called);
    REQUIRE(rc == 0 || rc == -EBUSY || rc == -ESHUTDOWN || rc == -EINVAL, "probe on_drain(P): %d",
            rc);
    REQUIRE(!dead || rc == -EINVAL, "on_drain on a destroyed port: %d", rc);
    REQUIRE(called_after || rc == 0 || rc == -EBUSY,
            "on_drain on P returned %d before its destroy was called", rc);
    switch (rc) {
    case 0:
        g.probe_ok++;
        g.probe_late_ok += closing; /* on a closing port: should be -ESHUTDOWN */
        reg_until(q, true);
        break;
    case -EBUSY:
        g.probe_busy++;
        break;
    case -ESHUTDOWN:
        g.probe_closing++;
        break;
    default:
        g.probe_inval++;
        break;
    }
}

/* Asks X to destroy P and waits for it (probing P meanwhile, if asked). */
static void destroy_p(wpool_port_t *p, wpool_port_t *q)
{
    uint64_t limit = deadline_ns(WAIT_SECONDS);
    struct timespec until = abs_ts(limit);
    pthread_mutex_lock(&g.mu);
    g.x.destroy = true;
    pthread_mutex_unlock(&g.mu);
    for (;;) {
        pthread_mutex_lock(&g.mu);
        bool done = g.x.destroy_done;
        if (!done && !g.probe)
            REQUIRE(pthread_cond_timedwait(&g.cv, &g.mu, &until) == 0,
                    "X did not destroy P in %d s", WAIT_SECONDS);
        pthread_mutex_unlock(&g.mu);
        if (done)
            break;
        if (g.probe) {
            REQUIRE(wpool_now_ns() < limit, "X did not destroy P in %d s", WAIT_SECONDS);
            probe_p(p, q);
            sched_yield();
        }
    }
    if (g.probe)
        probe_p(p, q); /* destroyed: -EINVAL */
}

/* After P's destroy, the drain notification still works: one arrives on Q. */
static void expect_note_on_q(void)
{
    struct timespec until = abs_ts(deadline_ns(WAIT_SECONDS));
    pthread_mutex_lock(&g.mu);
    long n0 = g.on_q;
    while (g.on_q == n0)
        REQUIRE(pthread_cond_timedwait(&g.cv, &g.mu, &until) == 0,
                "round %ld: no drain notification in %d s after the destroy of P "
                "(%ld driver cycles, %ld misdirected so far): drain notifications are off",
                g.rounds, WAIT_SECONDS, atomic_load(&g.cycles), atomic_load(&g.misdirected));
    pthread_mutex_unlock(&g.mu);
}

static bool enough(void)
{
    uint64_t now = wpool_now_ns();
    if (now >= g.end_ns)
        return true;
    if (now - g.start_ns < (uint64_t)(g_min_seconds * 1e9))
        return false;
    bool probes = !g.probe || (g.probe_closing >= MIN_PROBE_CLOSING &&
                               g.probe_ok - g.probe_late_ok >= MIN_PROBE_EARLY_OK);
    return probes && g.rounds >= MIN_ROUNDS && g.switches >= MIN_SWITCHES &&
           g.switch_busy >= MIN_SWITCH_BUSY && atomic_load(&g.checked[0]) >= MIN_CHECKED &&
           atomic_load(&g.checked[1]) >= MIN_CHECKED;
}

static void *switcher_main(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg;
    wpool_port_t *q = g.y.port;
    while (!enough()) {
        wpool_port_t *p = wait_for_p();
        /* Alternate, starting on either port. */
        unsigned int k0 = (unsigned int)(rng_next(&rng) & 1),
                     n = 20 + (unsigned int)(rng_next(&rng) % 200);
        for (unsigned int k = k0; k < k0 + n; k++) {
            wpool_port_t *to = (k & 1) ? p : q;
            bool moves = atomic_load(&g.reg) != to;
            int rc = reg_call(to, true);
            REQUIRE(rc == 0 || rc == -EBUSY, "on_drain while switching: %d", rc);
            g.switches += rc == 0 && moves;
            g.switch_busy += rc == -EBUSY;
            uint64_t x = rng_next(&rng);
            if ((x & 7) == 0)
                sched_yield();
            else
                spin_random(&rng, (unsigned int)(x >> 59) * 400u);
        }
        /* Off P: unregister where it stands, or move to Q. */
        bool unregister = rng_next(&rng) & 1;
        if (unregister)
            reg_until(atomic_load(&g.reg) ? atomic_load(&g.reg) : q, false);
        else
            reg_until(q, true);
        destroy_p(p, q);
        if (unregister)
            reg_until(q, true);
        expect_note_on_q();
        g.rounds++;
        pthread_mutex_lock(&g.mu);
        g.x.port = NULL; /* X makes the next P */
        pthread_cond_broadcast(&g.cv);
        pthread_mutex_unlock(&g.mu);
    }
    reg_until(q, false);
    atomic_store(&g.stop, 1);
    pthread_mutex_lock(&g.mu);
    pthread_cond_broadcast(&g.cv);
    pthread_mutex_unlock(&g.mu);
    return NULL;
}

/* ---- the driver: refusals and room, over and over ---------------------------- */

static int gate_work(struct wpool_task *t)
{
    (void)t;
    pthread_mutex_lock(&g.gmu);
    g.g_started = true;
    pthread_cond_broadcast(&g.gcv);
    while (!g.g_release)
        pthread_cond_wait(&g.gcv, &g.gmu);
    pthread_mutex_unlock(&g.gmu);
    return 0;
}

static void gate_done(struct wpool_task *t, int status)
{
    (void)t;
    REQUIRE(status == 0, "gate task: status %d", status);
    g.g_done = true; /* the driver's own port: runs on the driver */
}

static int probe_work(struct wpool_task *t)
{
    (void)t;
    return 0;
}

static void probe_done(struct wpool_task *t, int status)
{
    (void)t;
    ck_abort_msg("the refused probe completed (%d)", status);
}

/* One refusal, then room: one drain notification for the registered port. */
static void drive_cycle(struct wpool_task *gate, struct wpool_task *probe)
{
    wpool_port_t *dp = wpool_default_port(g.pool);
    pthread_mutex_lock(&g.gmu);
    while (g.hold)
        pthread_cond_wait(&g.gcv, &g.gmu);
    g.g_started = g.g_release = g.g_done = false;
    pthread_mutex_unlock(&g.gmu);
    int rc;
    while ((rc = wpool_submit(g.pool, gate)) == -EAGAIN) { /* the worker is not idle yet */
        atomic_fetch_add_explicit(&g.refusals, 1, memory_order_relaxed);
        sched_yield();
    }
    REQUIRE(rc == 0, "submit gate: %d", rc);
    pthread_mutex_lock(&g.gmu);
    while (!g.g_started)
        pthread_cond_wait(&g.gcv, &g.gmu);
    pthread_mutex_unlock(&g.gmu);
    rc = wpool_submit(g.pool, probe); /* the worker is busy: max_queue 0 refuses */
    REQUIRE(rc == -EAGAIN, "submit with the worker busy: %d", rc);
    atomic_fetch_add_explicit(&g.refusals, 1, memory_order_relaxed);
    pthread_mutex_lock(&g.gmu);
    g.g_release = true;
    pthread_cond_broadcast(&g.gcv);
    pthread_mutex_unlock(&g.gmu);
    uint64_t limit = deadline_ns(WAIT_SECONDS);
    while (!g.g_done) {
        rc = wpool_port_wait(dp, 100);
        REQUIRE(rc == 0 || rc == -ETIMEDOUT, "wait: %d", rc);
        REQUIRE(wpool_dispatch(g.pool, WPOOL_DISPATCH_ALL) >= 0, "dispatch");
        REQUIRE(wpool_now_ns() < limit, "gate task did not complete in %d s", WAIT_SECONDS);
    }
    atomic_fetch_add_explicit(&g.cycles, 1, memory_order_relaxed);
}

static void run(bool probe)
{
    memset(&g, 0, sizeof(g));
    g.probe = probe;
    pthread_mutex_init(&g.mu, NULL);
    pthread_mutex_init(&g.gmu, NULL);
    pthread_cond_init(&g.gcv, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&g.cv, &ca);
    pthread_condattr_destroy(&ca);

    struct wpool_options o = WPOOL_OPTIONS_INIT;
    o.threads = 1;
    o.max_queue = 0; /* a submit is accepted only while the worker is idle */
    ck_assert_int_eq(wpool_create(&g.pool, &o), 0);
    struct wpool_task gate, probe_task;
    ck_assert_int_eq(wpool_task_init(&gate, gate_work, gate_done), 0);
    ck_assert_int_eq(wpool_task_init(&probe_task, probe_work, probe_done), 0);

    g.start_ns = wpool_now_ns();
    g.end_ns = g.start_ns + (uint64_t)MAX_SECONDS * 1000000000u;
    g.x = (struct owner){.which = 0, .rng = 0x9e3779b97f4a7c15ull};
    g.y = (struct owner){.which = 1, .rng = 0xda942042e4dd58b5ull};
    ck_assert_int_eq(pthread_create(&g.y.th, NULL, owner_y_main, &g.y), 0);
    struct timespec until = abs_ts(deadline_ns(WAIT_SECONDS));
    pthread_mutex_lock(&g.mu);
    while (!g.y.port) /* Q is made on Y's thread, its owner */
        ck_assert_int_eq(pthread_cond_timedwait(&g.cv, &g.mu, &until), 0);
    pthread_mutex_unlock(&g.mu);
    ck_assert_int_eq(pthread_create(&g.x.th, NULL, owner_x_main, &g.x), 0);
    pthread_t sw;
    ck_assert_int_eq(
        pthread_create(&sw, NULL, switcher_main, (void *)(uintptr_t)0x2545f4914f6cdd1dull), 0);
    while (!atomic_load(&g.stop))
        drive_cycle(&gate, &probe_task);
    pthread_join(sw, NULL);
    pthread_join(g.x.th, NULL);
    pthread_join(g.y.th, NULL);
    double secs = (double)(wpool_now_ns() - g.start_ns) / 1e9;
    ck_assert_int_eq(wpool_destroy(g.pool), 0);

    long mis = atomic_load(&g.misdirected);
    printf("%s: %.1f s, %ld driver cycles, %ld refusals; %ld rounds (%ld destroys of P after "
           "-EBUSY); on_drain: %ld switches, %ld -EBUSY; notifications on P %ld (%ld checked), "
           "on Q %ld (%ld checked), %ld unchecked (a registration call overlapped), "
           "%ld misdirected, %ld off an owner's dispatch",
           probe ? "on_drain on a closing port" : "drain switch vs post", secs,
           atomic_load(&g.cycles), atomic_load(&g.refusals), g.rounds, g.destroy_busy, g.switches,
           g.switch_busy, atomic_load(&g.notes[0]), atomic_load(&g.checked[0]),
           atomic_load(&g.notes[1]), atomic_load(&g.checked[1]), atomic_load(&g.ambiguous), mis,
           atomic_load(&g.elsewhere));
    if (probe)
        printf("; probes on P: 0 %ld (%ld on a closing port), -EBUSY %ld, -ESHUTDOWN %ld, "
               "-EINVAL %ld",
               g.probe_ok, g.probe_late_ok, g.probe_busy, g.probe_closing, g.probe_inval);
    printf("\n");
    fflush(stdout);

    REQUIRE(mis == 0,
            "%ld drain notifications ran on a port other than the one registered when they were "
            "posted (first: on %p, registered %p)",
            mis, (void *)g.mis_port, (void *)g.mis_reg);
    ck_assert_int_eq(atomic_load(&g.elsewhere), 0);
    if (probe) {
        REQUIRE(g.probe_late_ok == 0,
                "on_drain on a port whose destroy had returned -EBUSY (closing) returned 0 %ld "
                "times (expected -ESHUTDOWN)",
                g.probe_late_ok);
        ck_assert_int_ge(g.probe_closing, MIN_PROBE_CLOSING);
        ck_assert_int_ge(g.probe_ok - g.probe_late_ok, MIN_PROBE_EARLY_OK);
        ck_assert_int_ge(g.probe_inval, g.rounds);
    }
    /* The race was run: many switches, some while a notification was on its
     * way, notifications on both sides, ports destroyed with drain still on. */
    ck_assert_int_ge(g.rounds, MIN_ROUNDS);
    ck_assert_int_ge(g.switches, MIN_SWITCHES);
    ck_assert_int_ge(g.switch_busy, MIN_SWITCH_BUSY);
    ck_assert_int_ge(atomic_load(&g.checked[0]), MIN_CHECKED);
    ck_assert_int_ge(atomic_load(&g.checked[1]), MIN_CHECKED);

    pthread_mutex_destroy(&g.mu);
    pthread_mutex_destroy(&g.gmu);
    pthread_cond_destroy(&g.cv);
    pthread_cond_destroy(&g.gcv);
}

START_TEST(test_drain_switch_vs_post)
{
    run(false);
}
END_TEST

START_TEST(test_on_drain_port_closing)
{
    run(true);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc > 1)
        g_min_seconds = strtod(argv[1], NULL);
    if (!(g_min_seconds >= 0.1))
        g_min_seconds = 0.1;
    Suite *s = suite_create("stress");
    TCase *tc = tcase_create("drain_port");
    /* Each case is bounded by MAX_SECONDS plus a few WAIT_SECONDS; this covers
     * slow (TSan, one CPU) runs. A hang fails. */
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_drain_switch_vs_post);
    tcase_add_test(tc, test_on_drain_port_closing);
    suite_add_tcase(s, tc);
    return wp_run_suite(s);
}
