/* SPDX-License-Identifier: MIT */
/*
 * Soak: eight threads issue a random mix of submit, batch submit, blocking
 * submit, cancel, token cancel, cancel-all, statistics, shutdown (with a mode
 * and a timeout) and dispatch on one pool, in rounds with random options, for
 * a bounded time; each round ends with drains, port destroys and wpool_destroy.
 * Each thread also keeps a group open now and then (on its port of the
 * moment): some of its own records join it, and it seals, cancels or
 * re-dates it at random; the group's completion must run once, on the
 * thread, after every member's own, with counts that add up to the members
 * accepted. Each thread owns a port and, during the round, replaces it: it creates a new
 * one, publishes both, and destroys the old one, retrying on -EBUSY between
 * other calls (dispatching it meanwhile), while the other threads submit tasks
 * aimed at the published ports (set_port, then submit, batch or blocking
 * submit): these are accepted, or refused with -ESHUTDOWN (closing) or -EINVAL
 * (destroyed). Each thread also moves the drain registration to its own port
 * or unregisters it (before each destroy), while workers post notifications.
 * Checked at the end of every round: every acceptance got exactly one
 * completion (per record, and accepted == ran + cancelled + timed out), each
 * on the thread that owns the port it was sent to, the pool's own counters
 * agree, no token is left in use; every drain callback ran on the owner of the
 * port it was registered for. Over the run, some submits to another thread's
 * port were accepted and some ports destroyed mid-round, at least 1000 tasks
 * a round were accepted, and some ran, some were cancelled and some timed
 * out. The shutdown op runs only in the last fifth of a round, so that most
 * calls meet an open pool; cancels reach other threads' records too. A
 * watchdog fails the test with a stack dump of every thread (gdb) if a round
 * does not finish within 30 s.
 * Some work functions return WPOOL_PENDING: they complete themselves first,
 * or leave the task in a list that a completer thread (the round's "I/O
 * thread") and the producers themselves empty in random order with
 * wpool_task_complete, racing the work functions' returns, the dispatches,
 * the port destroys and the shutdowns; the same exactly-once checks hold.
 * A quarter of the submissions go on one of the round's three strands
 * (shared by every thread): a task of a strand must never start while
 * another of it runs, nor before an earlier submission of its thread to
 * that strand; the strands outlive the pool (destroyed after it).
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

enum { PRODUCERS = 8, RECORDS = 64, FOREIGN = 16, TOKENS = 4, STRANDS = 3 };

static double g_seconds = 3.0;

struct sgroup;

struct rec {
    struct wpool_task task;
    struct sgroup *grp; /* the group this submission joins, or NULL */
    /* 1 from just before the submit to the end of the completion callback,
     * which may run on another thread: its release store hands the record
     * (and the counters below) back to the submitter. */
    atomic_int inflight;
    uint64_t accepted; /* submitting thread only */
    uint64_t completions;
    uint64_t ran, cancelled, timed_out;
    int spin_us;
    int defer;      /* the work returns WPOOL_PENDING: 1 completes itself, 2 via the list */
    int dest;       /* the producer whose port the submission goes to */
    int strand;     /* the round's strand of this submission, or -1 */
    unsigned owner; /* the producer that submits it */
    uint64_t sseq;  /* its submission number on that producer (strand order) */
    int bad;        /* 1: a completion with no acceptance or an unknown status; 2: on
                       a thread that does not own the port it was sent to */
};

/* Outcomes of the port and drain races, per producer (its own thread only). */
struct counts {
    uint64_t f_tried, f_acc, f_shut, f_inval, f_full; /* submits to another's port */
    uint64_t created, destroyed, retried, busy;       /* port replacements mid-round */
    uint64_t fin_busy;                                /* -EBUSY of the end-of-round destroys */
    uint64_t reg, reg_busy, unreg, unreg_busy;        /* wpool_on_drain */
    uint64_t drain_cbs;                               /* drain callbacks run here */
    uint64_t probes;                                  /* calls on a closing or dead own port */
    uint64_t g_init, g_done, g_members, g_cancel;     /* groups */
    uint64_t completed_by_producer;                   /* pending tasks it completed */
};

/* A producer's group: its own thread only (members complete on its ports). */
struct sgroup {
    struct wpool_group g;
    struct producer *owner;
    bool open, sealed;
    uint64_t joined, member_done; /* members accepted, their callbacks run */
};

struct producer;

struct round {
    wpool_t *pool;
    wpool_token_t *tokens[TOKENS];
    struct producer *prods; /* every producer: cancels reach others' records */
    uint64_t end_ns;
    uint64_t shut_after_ns;  /* the shutdown op only in the round's last fifth */
    atomic_int shut;         /* a shutdown was issued */
    atomic_int drain_bad;    /* a drain callback ran on the wrong thread */
    pthread_barrier_t ready; /* every producer has its port */
    /* Pending tasks (deferred completion), taken out under the lock. */
    pthread_mutex_t dmu;
    pthread_cond_t dcv;
    struct wpool_task *pending[PRODUCERS * (RECORDS + FOREIGN)];
    unsigned int npending;
    bool dstop;
    uint64_t by_completer;
    struct wpool_strand strands[STRANDS];
    atomic_int inside[STRANDS];                /* tasks of the strand running */
    _Atomic uint64_t last[STRANDS][PRODUCERS]; /* last submission started */
    atomic_int strand_bad;                     /* an overlap or a reordering */
};

struct producer {
    struct round *r;
    unsigned int id;
    uint64_t rng;
    wpool_port_t *port;    /* current port: its own records go here */
    wpool_port_t *closing; /* destroy returned -EBUSY: closed for good, retried */
    wpool_port_t *dead;    /* the last port it destroyed (a stale handle) */
    /* For the others: [0] the current port, [1] the one before (closing or
     * destroyed). Handles stay valid memory until wpool_destroy, which comes
     * after every producer has been joined. */
    _Atomic(wpool_port_t *) pub[2];
    struct counts n;
    struct rec recs[RECORDS];
    struct rec frecs[FOREIGN]; /* submitted to the other producers' ports */
    struct sgroup grp;
    uint64_t sseq; /* submissions prepared (strand order) */
};

static struct producer prods[PRODUCERS];
static _Thread_local struct producer *t_prod; /* NULL on the main thread */
static struct round *g_round;                 /* the round running */

/* A random pending task, or NULL (wait: until there is one or the round's
 * completer is told to stop). */
static struct wpool_task *pending_take(struct round *rd, uint64_t x, bool wait)
{
    pthread_mutex_lock(&rd->dmu);
    while (wait && rd->npending == 0 && !rd->dstop)
        pthread_cond_wait(&rd->dcv, &rd->dmu);
    struct wpool_task *t = NULL;
    if (rd->npending) {
        unsigned int i = (unsigned int)(x % rd->npending);
        t = rd->pending[i];
        rd->pending[i] = rd->pending[--rd->npending];
    }
    pthread_mutex_unlock(&rd->dmu);
    return t;
}

/* Completes a pending task: 1 (stopped early) if its token was cancelled. */
static void complete_pending(struct wpool_task *t)
{
    int rc = wpool_task_complete(t, wpool_task_cancelled(t) ? 1 : 0);
    REQUIRE(rc == 0, "task_complete of a pending task: %d", rc);
}

/* The round's I/O thread: completes pending tasks as they come. */
static void *completer_main(void *arg)
{
    struct round *rd = arg;
    uint64_t rng = 0x9e3779b97f4a7c15u;
    struct wpool_task *t;
    while ((t = pending_take(rd, rng_next(&rng), true))) {
        complete_pending(t);
        rd->by_completer++;
    }
    return NULL;
}

static int rec_work_body(struct rec *r, struct wpool_task *t);

static int rec_work(struct wpool_task *t)
{
    struct rec *r = (struct rec *)t;
    struct round *rd = g_round;
    int k = r->strand;
    if (k >= 0) {
        if (atomic_fetch_add(&rd->inside[k], 1) != 0)
            atomic_store(&rd->strand_bad, 1);
        if (atomic_load(&rd->last[k][r->owner]) >= r->sseq)
            atomic_store(&rd->strand_bad, 2);
        atomic_store(&rd->last[k][r->owner], r->sseq);
    }
    int status = rec_work_body(r, t);
    if (k >= 0)
        atomic_fetch_sub(&rd->inside[k], 1);
    return status;
}

static int rec_work_body(struct rec *r, struct wpool_task *t)
{
    uint64_t end = wpool_now_ns() + (uint64_t)r->spin_us * 1000u;
    int status = 0;
    while (wpool_now_ns() < end)
        if (wpool_task_cancelled(t)) {
            status = 1; /* stopped early */
            break;
        }
    if (r->defer == 1) {
        REQUIRE(wpool_task_complete(t, status) == 0, "task_complete from its own work");
        return WPOOL_PENDING;
    }
    if (r->defer == 2) {
        struct round *rd = g_round;
        pthread_mutex_lock(&rd->dmu);
        rd->pending[rd->npending++] = t; /* each record once: it is in flight once */
        pthread_cond_signal(&rd->dcv);
        pthread_mutex_unlock(&rd->dmu);
        return WPOOL_PENDING;
    }
    return status;
}

static void rec_done(struct wpool_task *t, int status)
{
    struct rec *r = (struct rec *)t;
    if (atomic_load(&r->inflight) != 1)
        r->bad |= 1;
    if (!t_prod || (int)t_prod->id != r->dest)
        r->bad |= 2;
    r->completions++;
    if (r->grp)
        r->grp->member_done++;
    if (status == 0 || status == 1)
        r->ran++;
    else if (status == -ECANCELED)
        r->cancelled++;
    else if (status == -ETIMEDOUT)
        r->timed_out++;
    else
        r->bad |= 1;
    atomic_store(&r->inflight, 0); /* last: the submitter may reuse it at once */
}

/* The group's completion: once, on its owner's thread, after every member's
 * own, counting every member accepted. */
static void group_done(struct wpool_group *g, const struct wpool_group_result *res)
{
    struct sgroup *sg = g->data;
    struct producer *p = sg->owner;
    REQUIRE(t_prod == p, "group completion on a thread that does not own its port");
    REQUIRE(sg->open && sg->sealed, "group completion of a group not open and sealed");
    REQUIRE(sg->member_done == sg->joined, "group completion after %llu of %llu members",
            (unsigned long long)sg->member_done, (unsigned long long)sg->joined);
    uint64_t sum = res->succeeded + res->failed + res->cancelled + res->timed_out;
    REQUIRE(sum == sg->joined, "group result counts %llu members of %llu", (unsigned long long)sum,
            (unsigned long long)sg->joined);
    REQUIRE((res->first_error != 0) == (sum != res->succeeded), "group first_error %d",
            res->first_error);
    sg->open = false;
    p->n.g_done++;
    p->n.g_members += sg->joined;
}

/* Opens the producer's group on its port, or seals, cancels or re-dates it. */
static void group_op(struct producer *p, uint64_t x)
{
    struct sgroup *sg = &p->grp;
    if (!sg->open) {
        sg->owner = p;
        sg->g.data = sg;
        int rc = wpool_group_init(&sg->g, p->r->pool, p->port, group_done);
        REQUIRE(rc == 0, "group_init: %d", rc);
        sg->open = true;
        sg->sealed = false;
        sg->joined = sg->member_done = 0;
        p->n.g_init++;
        return;
    }
    if (sg->sealed)
        return; /* its completion is on its way */
    unsigned what = (unsigned)((x >> 12) % 10);
    if (what < 4) {
        REQUIRE(wpool_group_seal(&sg->g) == 0, "group_seal");
        sg->sealed = true;
        REQUIRE(wpool_group_seal(&sg->g) == -EALREADY, "second group_seal");
    } else if (what < 5) {
        REQUIRE(wpool_group_cancel(&sg->g) >= 0, "group_cancel");
        p->n.g_cancel++;
    } else if (what < 7) {
        uint64_t dl = what == 5 ? wpool_now_ns() + 100000 : 0;
        REQUIRE(wpool_group_set_deadline(&sg->g, dl) == 0, "group_set_deadline");
    }
}

static void drain_cb(wpool_t *pool, void *arg)
{
    struct producer *p = arg;
    /* Registered only by the owner of the port, with itself as arg. */
    if (t_prod != p || pool != p->r->pool) {
        atomic_store(&p->r->drain_bad, 1);
        return;
    }
    p->n.drain_cbs++;
}

/* Gives an idle record fresh random attributes and sends it to `port` of
 * producer `dest`; false if it is in flight. Records of other ports get no
 * token: the token of this thread outlives its drain only so long. */
static bool prepare_to(struct producer *p, struct rec *r, wpool_port_t *port, unsigned dest)
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
    if (dest == p->id && (x >> 4) % 4 == 0) {
        tok = p->r->tokens[(x >> 6) % TOKENS];
        if (wpool_token_cancelled(tok))
            tok = NULL;
    }
    REQUIRE(wpool_task_set_token(&r->task, tok) == 0, "set_token");
    r->grp = NULL;
    if (dest == p->id && p->grp.open && !p->grp.sealed && (x >> 20) % 3 == 0) {
        REQUIRE(wpool_task_set_group(&r->task, &p->grp.g) == 0, "set_group");
        r->grp = &p->grp; /* replaces the token */
    }
    REQUIRE(wpool_task_set_port(&r->task, port) == 0, "set_port");
    r->strand = (x >> 27) % 4 == 0 ? (int)((x >> 29) % STRANDS) : -1;
    REQUIRE(wpool_task_set_strand(&r->task, r->strand >= 0 ? &p->r->strands[r->strand] : NULL) == 0,
            "set_strand");
    r->sseq = ++p->sseq; /* prepared in the order the submits are made */
    r->dest = (int)dest;
    r->spin_us = (int)((x >> 8) % 20);
    r->defer = (x >> 24) % 8 == 0 ? 1 : (x >> 24) % 8 < 3 ? 2 : 0;
    return true;
}

static bool prepare(struct producer *p, struct rec *r)
{
    return prepare_to(p, r, p->port, p->id);
}

/* Marks a record in flight just before the call that may accept it: a
 * completion may arrive on another call of this thread only, but the flag is
 * checked by rec_done, so set it first and undo on refusal. */
static void accepted(struct rec *r)
{
    r->accepted++;
    if (r->grp)
        r->grp->joined++;
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

static void dispatch(struct producer *p, uint64_t x)
{
    /* The closing port too: its destroy waits for its completions. */
    wpool_port_t *port = p->closing && (x >> 48) % 4 == 0 ? p->closing : p->port;
    int rc = wpool_port_dispatch(port, 1 + (unsigned)(x >> 50) % 64);
    REQUIRE(rc >= 0, "dispatch: %d", rc);
}

/* ---- another thread's port ---------------------------------------------- */

/* A published port of another producer: current, or the one before it (which
 * may be closing or destroyed by now). */
static wpool_port_t *foreign_port(struct producer *p, uint64_t x, unsigned *dest)
{
    unsigned o = (p->id + 1 + (unsigned)(x % (PRODUCERS - 1))) % PRODUCERS;
    wpool_port_t *port = atomic_load(&prods[o].pub[(x >> 3) % 3 == 0]);
    if (!port)
        port = atomic_load(&prods[o].pub[0]);
    *dest = o;
    return port;
}

static void count_foreign(struct producer *p, int rc)
{
    p->n.f_tried++;
    if (rc == -ESHUTDOWN)
        p->n.f_shut++;
    else if (rc == -EINVAL)
        p->n.f_inval++;
    else if (rc == -EAGAIN || rc == -ETIMEDOUT)
        p->n.f_full++;
}

/* A submit (how 0), blocking submit (1) or batch (2) of records aimed at
 * other threads' ports, any of which may be closing or destroyed. These
 * records carry no token: no -ECANCELED. */
static void foreign_submit(struct producer *p, uint64_t x)
{
    wpool_t *pool = p->r->pool;
    unsigned how = (unsigned)(x >> 8) % 4 == 3 ? 2 : (unsigned)(x >> 8) % 4 == 2;
    unsigned want = how == 2 ? 1 + (unsigned)(x >> 12) % 4 : 1;
    struct wpool_task *batch[4];
    struct rec *recs[4];
    unsigned n = 0;
    for (unsigned k = 0; k < want; k++) {
        uint64_t y = rng_next(&p->rng);
        struct rec *r = &p->frecs[(y >> 16) % FOREIGN];
        bool dup = false;
        for (unsigned m = 0; m < n; m++)
            dup |= recs[m] == r;
        unsigned dest;
        wpool_port_t *port = foreign_port(p, y, &dest);
        if (dup || !port || !prepare_to(p, r, port, dest))
            continue;
        recs[n] = r;
        batch[n++] = &r->task;
    }
    if (!n)
        return;
    for (unsigned k = 0; k < n; k++)
        atomic_store(&recs[k]->inflight, 1);
    int rc;
    if (how == 0) {
        rc = wpool_submit(pool, batch[0]);
        REQUIRE(rc == 0 || rc == -EAGAIN || rc == -ESHUTDOWN || rc == -EINVAL,
                "submit to another thread's port: unexpected %d", rc);
    } else if (how == 1) {
        rc = wpool_submit_wait(pool, batch[0], (int)((x >> 20) % 3));
        REQUIRE(rc == 0 || rc == -ETIMEDOUT || rc == -ESHUTDOWN || rc == -EINVAL,
                "submit_wait to another thread's port: unexpected %d", rc);
    } else {
        rc = wpool_submit_batch(pool, batch, n);
        REQUIRE(rc > 0 || rc == -EAGAIN || rc == -ESHUTDOWN || rc == -EINVAL,
                "batch to other threads' ports: unexpected %d", rc);
        REQUIRE(rc <= (int)n, "batch accepted %d of %u", rc, n);
    }
    unsigned ok = rc > 0 ? (unsigned)rc : rc == 0;
    for (unsigned k = 0; k < n; k++) {
        if (k < ok)
            accepted(recs[k]);
        else
            atomic_store(&recs[k]->inflight, 0);
    }
    p->n.f_acc += ok;
    if (rc <= 0)
        count_foreign(p, rc);
    else
        p->n.f_tried++;
}

/* Calls only the owner may make, on another thread's port: -EPERM, or
 * -EINVAL once that port is destroyed. Any thread may ask for its fd. */
static void foreign_calls(struct producer *p, uint64_t x)
{
    unsigned dest;
    wpool_port_t *port = foreign_port(p, x, &dest);
    if (!port)
        return;
    int rc;
    switch ((x >> 20) % 5) {
    case 0:
        rc = wpool_port_dispatch(port, 4);
        break;
    case 1:
        rc = wpool_port_wait(port, 0);
        break;
    case 2:
        rc = wpool_port_settle(port, 0);
        break;
    case 3:
        rc = wpool_port_destroy(port);
        break;
    default:
        rc = wpool_port_fd(port);
        REQUIRE(rc >= 0 || rc == -EINVAL, "port_fd of another thread's port: %d", rc);
        return;
    }
    REQUIRE(rc == -EPERM || rc == -EINVAL, "owner-only call on another thread's port: %d", rc);
}

/* ---- its own ports: replace, probe, drain registration -------------------- */

/* Moves the drain registration away from `port` (unregistering there), so
 * that a destroy of `port` is refused only for tasks in flight or submitters
 * in its gate, and then leaves it closed. Only the owner ever registers on
 * its ports, so nobody registers it again. -EBUSY: a notification is on its
 * way to another port, which is where the registration is. */
static void unregister(struct producer *p, wpool_port_t *port, bool closing)
{
    /* Unregistering is allowed on a closing port too: it is what its
     * destroy waits for. */
    int rc = wpool_on_drain(p->r->pool, port, NULL, NULL);
    REQUIRE(rc == 0 || rc == -EBUSY, "on_drain(own %sport, NULL): %d", closing ? "closing " : "",
            rc);
    p->n.unreg += rc == 0;
    p->n.unreg_busy += rc == -EBUSY;
}

static void destroyed(struct producer *p, wpool_port_t *port)
{
    p->dead = port;
    p->n.destroyed++;
}

/* Creates a new port, publishes it, and destroys the old one; or retries the
 * destroy of the one still closing. */
static void replace_port(struct producer *p, uint64_t x)
{
    if (p->closing) {
        if ((x >> 20) & 1)
            REQUIRE(wpool_port_dispatch(p->closing, WPOOL_DISPATCH_ALL) >= 0, "dispatch");
        int rc = wpool_port_destroy(p->closing);
        REQUIRE(rc == 0 || rc == -EBUSY, "port_destroy retried: %d", rc);
        if (rc == 0) {
            destroyed(p, p->closing);
            p->closing = NULL;
            p->n.retried++;
        } else {
            p->n.busy++;
        }
        return;
    }
    wpool_port_t *fresh;
    int rc = wpool_port_create(p->r->pool, &fresh);
    REQUIRE(rc == 0 || (rc == -ESHUTDOWN && atomic_load(&p->r->shut)), "port_create: %d", rc);
    if (rc)
        return;
    p->n.created++;
    wpool_port_t *old = p->port;
    unregister(p, old, false);
    p->port = fresh;
    atomic_store(&p->pub[1], old);
    atomic_store(&p->pub[0], fresh);
    rc = wpool_port_destroy(old);
    REQUIRE(rc == 0 || rc == -EBUSY, "port_destroy: %d", rc);
    if (rc == 0)
        destroyed(p, old);
    else
        p->closing = old, p->n.busy++;
}

/* The owner knows its closing and destroyed ports: every call through them
 * is refused with exactly the code the state implies. */
static void probe_own(struct producer *p, uint64_t x)
{
    wpool_t *pool = p->r->pool;
    struct rec *r = &p->recs[(x >> 8) % RECORDS];
    if (p->closing && (x >> 20) & 1) {
        int rc = wpool_on_drain(pool, p->closing, drain_cb, p);
        REQUIRE(rc == -ESHUTDOWN, "on_drain(own closing port): %d", rc);
        if (prepare_to(p, r, p->closing, p->id)) {
            atomic_store(&r->inflight, 1);
            rc = wpool_submit(pool, &r->task);
            atomic_store(&r->inflight, 0);
            /* -ECANCELED: a token cancelled since prepare. */
            REQUIRE(rc == -ESHUTDOWN || rc == -ECANCELED, "submit to own closing port: %d", rc);
        }
        p->n.probes++;
    } else if (p->dead) {
        int rc = wpool_on_drain(pool, p->dead, drain_cb, p);
        REQUIRE(rc == -EINVAL, "on_drain(own destroyed port): %d", rc);
        REQUIRE(wpool_port_destroy(p->dead) == -EINVAL, "port_destroy again");
        REQUIRE(wpool_port_dispatch(p->dead, 1) == -EINVAL, "dispatch of a destroyed port");
        REQUIRE(wpool_port_settle(p->dead, 0) == -EINVAL, "drain of a destroyed port");
        REQUIRE(wpool_port_wait(p->dead, 0) == -EINVAL, "wait of a destroyed port");
        REQUIRE(wpool_port_fd(p->dead) == -EINVAL, "fd of a destroyed port");
        if (prepare_to(p, r, p->dead, p->id)) {
            /* -ESHUTDOWN: the pool is closed too (both codes apply). */
            bool shut = atomic_load(&p->r->shut);
            atomic_store(&r->inflight, 1);
            rc =
                (x >> 21) & 1 ? wpool_submit_wait(pool, &r->task, 0) : wpool_submit(pool, &r->task);
            atomic_store(&r->inflight, 0);
            REQUIRE(rc == -EINVAL || rc == -ECANCELED || (rc == -ESHUTDOWN && shut),
                    "submit to own destroyed port: %d", rc);
        }
        p->n.probes++;
    }
}

/* Registers the drain callback on its current port (moving it from wherever
 * it is: -EBUSY while a notification is on its way there), or unregisters. */
static void drain_registration(struct producer *p, uint64_t x)
{
    if ((x >> 20) % 3 == 0) {
        unregister(p, p->port, false);
        return;
    }
    int rc = wpool_on_drain(p->r->pool, p->port, drain_cb, p);
    REQUIRE(rc == 0 || rc == -EBUSY, "on_drain(own port): %d", rc);
    p->n.reg += rc == 0;
    p->n.reg_busy += rc == -EBUSY;
}

/* Drains and destroys one of its ports at the end of the round, retrying: the
 * others may still be submitting to it until the first call closes it. */
static void finish_port(struct producer *p, wpool_port_t *port, bool closing)
{
    unregister(p, port, closing);
    for (unsigned tries = 0;; tries++) {
        REQUIRE(wpool_port_settle(port, -1) >= 0, "drain");
        int rc = wpool_port_destroy(port);
        if (rc == 0)
            break;
        REQUIRE(rc == -EBUSY, "port_destroy at the end: %d", rc);
        REQUIRE(tries < 1000000, "port_destroy never succeeds");
        p->n.fin_busy++;
    }
}

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    struct round *rd = p->r;
    wpool_t *pool = rd->pool;
    t_prod = p;
    int prc = wpool_port_create(pool, &p->port);
    REQUIRE(prc == 0, "port_create: %d", prc);
    atomic_store(&p->pub[0], p->port);
    for (int i = 0; i < RECORDS + FOREIGN; i++) {
        struct rec *r = i < RECORDS ? &p->recs[i] : &p->frecs[i - RECORDS];
        memset(&r->task, 0, sizeof(r->task));
        REQUIRE(wpool_task_init(&r->task, rec_work, rec_done) == 0, "task_init");
        REQUIRE(wpool_task_set_port(&r->task, p->port) == 0, "set_port");
        r->strand = -1;
        r->owner = p->id;
    }
    p->sseq = 0;
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
            /* Any record, in flight or not, to any port: this thread's own,
             * one it sent to another's port, or another thread's (cancel is
             * an any-thread call, racing that thread's own calls). */
            if ((x >> 20) % 8 == 0)
                r = &p->frecs[(x >> 8) % FOREIGN];
            else if ((x >> 20) % 8 == 1)
                r = &rd->prods[(x >> 24) % PRODUCERS].recs[(x >> 8) % RECORDS];
            int rc = wpool_cancel(&r->task);
            REQUIRE(rc == 0 || rc == -EBUSY, "cancel: %d", rc);
        } else if (op < 604) {
            int rc = wpool_token_cancel(rd->tokens[(x >> 20) % TOKENS]);
            REQUIRE(rc >= 0, "token_cancel: %d", rc);
        } else if (op < 606) {
            REQUIRE(wpool_cancel_all(pool) >= 0, "cancel_all");
        } else if (op < 615) {
            struct wpool_statistics st;
            REQUIRE(wpool_stats(pool, &st) == 0, "stats");
            REQUIRE(st.completed + st.cancelled + st.timed_out <= st.submitted,
                    "more done than submitted");
        } else if (op == 615 && (x >> 32) % 8 == 0 && wpool_now_ns() >= rd->shut_after_ns) {
            /* Late in the round: most calls must meet an open pool. */
            atomic_store(&rd->shut, 1);
            int mode = (int)((x >> 40) & 1), tmo = (int)((x >> 41) % 3) * 2;
            int rc = wpool_shutdown(pool, mode, tmo);
            REQUIRE(rc == 0 || rc == -ETIMEDOUT, "shutdown: %d", rc);
        } else if (op >= 620 && op < 700) {
            foreign_submit(p, x);
        } else if (op >= 700 && op < 712) {
            replace_port(p, x);
        } else if (op >= 712 && op < 722) {
            drain_registration(p, x);
        } else if (op >= 722 && op < 726) {
            probe_own(p, x);
        } else if (op >= 726 && op < 730) {
            foreign_calls(p, x);
        } else if (op >= 730 && op < 750) {
            group_op(p, x);
        } else if (op >= 750 && op < 790) {
            /* Racing the round's completer for the pending tasks. */
            struct wpool_task *t = pending_take(rd, x >> 16, false);
            if (t) {
                complete_pending(t);
                p->n.completed_by_producer++;
            }
        } else {
            dispatch(p, x);
        }
    }
    /* Everything sent to its ports completes there, its group's completion
     * too once sealed; then they are closed (the others may still be
     * submitting until then) and destroyed. */
    if (p->grp.open && !p->grp.sealed) {
        REQUIRE(wpool_group_seal(&p->grp.g) == 0, "group_seal at the end");
        p->grp.sealed = true;
    }
    /* The group's completion may be on one port and its members' on the
     * other: run both until it has come (a settle of one alone would wait
     * for what only the other can run). */
    while (p->grp.open) {
        if (p->closing)
            REQUIRE(wpool_port_dispatch(p->closing, WPOOL_DISPATCH_ALL) >= 0, "dispatch");
        REQUIRE(wpool_port_dispatch(p->port, WPOOL_DISPATCH_ALL) >= 0, "dispatch");
        int rc = wpool_port_wait(p->port, 1);
        REQUIRE(rc == 0 || rc == -ETIMEDOUT, "port_wait: %d", rc);
    }
    if (p->closing)
        finish_port(p, p->closing, true);
    finish_port(p, p->port, false);
    t_prod = NULL;
    return NULL;
}

static void counts_add(struct counts *s, const struct counts *c)
{
    const uint64_t *a = (const uint64_t *)c;
    uint64_t *b = (uint64_t *)s;
    for (size_t i = 0; i < sizeof(*c) / sizeof(uint64_t); i++)
        b[i] += a[i];
}

static void counts_print(const struct counts *s)
{
    printf("soak: submits to another thread's port: %llu calls, %llu tasks accepted, refused "
           "%llu -ESHUTDOWN, %llu -EINVAL, %llu full\n",
           (unsigned long long)s->f_tried, (unsigned long long)s->f_acc,
           (unsigned long long)s->f_shut, (unsigned long long)s->f_inval,
           (unsigned long long)s->f_full);
    printf("soak: ports replaced mid-round: %llu created, %llu destroyed (%llu after retries, "
           "%llu -EBUSY); %llu -EBUSY at the end of rounds; %llu calls on own closing or dead "
           "ports\n",
           (unsigned long long)s->created, (unsigned long long)s->destroyed,
           (unsigned long long)s->retried, (unsigned long long)s->busy,
           (unsigned long long)s->fin_busy, (unsigned long long)s->probes);
    printf("soak: on_drain: %llu registered (%llu -EBUSY), %llu unregistered (%llu -EBUSY); %llu "
           "drain callbacks\n",
           (unsigned long long)s->reg, (unsigned long long)s->reg_busy,
           (unsigned long long)s->unreg, (unsigned long long)s->unreg_busy,
           (unsigned long long)s->drain_cbs);
    printf("  groups: %llu opened, %llu completed with %llu members, %llu cancels\n",
           (unsigned long long)s->g_init, (unsigned long long)s->g_done,
           (unsigned long long)s->g_members, (unsigned long long)s->g_cancel);
    printf("  deferred completion: %llu pending tasks completed by producers\n",
           (unsigned long long)s->completed_by_producer);
}

/* ---- watchdog --------------------------------------------------------------- */

static pthread_mutex_t wd_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wd_cv;
static bool wd_done;
static unsigned wd_rounds; /* rounds finished (under wd_mu) */

/* Fails the test if a round (0.2 s of calls, then the checks and destroys)
 * does not finish within the limit. */
static void *watchdog_main(void *arg)
{
    double limit = *(double *)arg;
    bool hung = false;
    pthread_mutex_lock(&wd_mu);
    while (!wd_done && !hung) {
        unsigned seen = wd_rounds;
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)limit;
        int rc = 0;
        while (!wd_done && wd_rounds == seen && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&wd_cv, &wd_mu, &ts);
        hung = !wd_done && wd_rounds == seen;
    }
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
    double wd_limit = 30; /* per round */
    pthread_t wd;
    pthread_create(&wd, NULL, watchdog_main, &wd_limit);

    uint64_t seed = (uint64_t)wpool_now_ns() | 1;
    printf("soak: %.1f s, seed %llu\n", g_seconds, (unsigned long long)seed);
    uint64_t stop = wpool_now_ns() + (uint64_t)(g_seconds * 1e9);
    unsigned rounds = 0;
    uint64_t total = 0, total_ran = 0, total_can = 0, total_tmo = 0;
    uint64_t total_deferred = 0, total_by_completer = 0;
    struct counts sum = {0};
    while (wpool_now_ns() < stop) {
        struct round rd;
        memset(&rd, 0, sizeof(rd));
        uint64_t x = rng_next(&seed);
        struct wpool_options o = WPOOL_OPTIONS_INIT;
        o.threads = 1 + (unsigned)(x % 4);
        o.placement = (int)((x >> 2) & 1);
        o.queue_capacity = 64u << ((x >> 3) % 4);
        o.timing = (int)((x >> 5) & 1);
        if ((x >> 6) % 3 == 0)
            o.max_queue = (unsigned)((x >> 8) % 48);
        if ((x >> 14) % 3 == 0) /* completion coalescing off, or 1 us to 2 ms */
            o.coalesce_us = (x >> 16) % 4 == 0 ? 0 : 1 + (unsigned)((x >> 18) % 2000);
        REQUIRE(wpool_create(&rd.pool, &o) == 0, "create");
        for (int k = 0; k < STRANDS; k++) {
            memset(&rd.strands[k], 0, sizeof(rd.strands[k]));
            REQUIRE(wpool_strand_init(&rd.strands[k], rd.pool) == 0, "strand_init");
            atomic_store(&rd.inside[k], 0);
            for (int i = 0; i < PRODUCERS; i++)
                atomic_store(&rd.last[k][i], 0);
        }
        atomic_store(&rd.strand_bad, 0);
        for (int i = 0; i < TOKENS; i++)
            REQUIRE(wpool_token_create(&rd.tokens[i]) == 0, "token_create");
        rd.end_ns = wpool_now_ns() + 200000000u; /* 0.2 s */
        rd.shut_after_ns = rd.end_ns - 40000000u;
        rd.prods = prods;
        pthread_barrier_init(&rd.ready, NULL, PRODUCERS);
        pthread_mutex_init(&rd.dmu, NULL);
        pthread_cond_init(&rd.dcv, NULL);
        g_round = &rd;
        pthread_t completer;
        pthread_create(&completer, NULL, completer_main, &rd);
        pthread_t th[PRODUCERS];
        for (unsigned i = 0; i < PRODUCERS; i++) {
            memset(&prods[i], 0, sizeof(prods[i]));
            prods[i].r = &rd;
            prods[i].id = i;
            prods[i].rng = rng_next(&seed) | 1;
            pthread_create(&th[i], NULL, producer_main, &prods[i]);
        }
        for (unsigned i = 0; i < PRODUCERS; i++)
            pthread_join(th[i], NULL);
        /* Every port was settled: nothing is pending any more. */
        pthread_mutex_lock(&rd.dmu);
        REQUIRE(rd.npending == 0, "%u tasks left pending", rd.npending);
        rd.dstop = true;
        pthread_cond_signal(&rd.dcv);
        pthread_mutex_unlock(&rd.dmu);
        pthread_join(completer, NULL);
        struct wpool_statistics st;
        REQUIRE(wpool_stats(rd.pool, &st) == 0, "stats");
        REQUIRE(st.pending == 0, "stats: %llu pending at the end", (unsigned long long)st.pending);
        total_deferred += st.deferred;
        total_by_completer += rd.by_completer;
        uint64_t acc = 0, ran = 0, can = 0, tmo = 0;
        REQUIRE(!atomic_load(&rd.drain_bad), "a drain callback ran on a thread that does not "
                                             "own the port it was registered for");
        for (unsigned i = 0; i < PRODUCERS; i++) {
            for (int k = 0; k < RECORDS + FOREIGN; k++) {
                struct rec *r = k < RECORDS ? &prods[i].recs[k] : &prods[i].frecs[k - RECORDS];
                REQUIRE(!(r->bad & 1), "record %u/%d: completion without acceptance or bad status",
                        i, k);
                REQUIRE(!(r->bad & 2),
                        "record %u/%d: completion on a thread that does not own its port", i, k);
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
        for (unsigned i = 0; i < PRODUCERS; i++)
            REQUIRE(!prods[i].grp.open, "producer %u: a group never completed", i);
        REQUIRE(atomic_load(&rd.strand_bad) != 1, "two tasks of a strand ran at once");
        REQUIRE(atomic_load(&rd.strand_bad) != 2,
                "a strand started a thread's task before an earlier one of it");
        REQUIRE(wpool_destroy(rd.pool) == 0, "destroy");
        for (int k = 0; k < STRANDS; k++) /* detached by the pool's destroy */
            REQUIRE(wpool_strand_destroy(&rd.strands[k]) == 0, "strand_destroy");
        pthread_barrier_destroy(&rd.ready);
        pthread_mutex_destroy(&rd.dmu);
        pthread_cond_destroy(&rd.dcv);
        g_round = NULL;
        for (int i = 0; i < TOKENS; i++)
            REQUIRE(wpool_token_destroy(rd.tokens[i]) == 0, "token still carried");
        rounds++;
        total += acc;
        total_ran += ran;
        total_can += can;
        total_tmo += tmo;
        pthread_mutex_lock(&wd_mu);
        wd_rounds++;
        pthread_cond_signal(&wd_cv);
        pthread_mutex_unlock(&wd_mu);
        for (unsigned i = 0; i < PRODUCERS; i++)
            counts_add(&sum, &prods[i].n);
    }
    printf("soak: %u rounds, %llu tasks accepted, each completed exactly once\n", rounds,
           (unsigned long long)total);
    counts_print(&sum);
    ck_assert_uint_ge(rounds, 1);
    /* Every outcome must have happened, in numbers: a soak in which every
     * submit is refused, or nothing is ever cancelled or timed out, checks
     * nothing about them. */
    REQUIRE(total >= 1000 * rounds, "only %llu tasks accepted in %u rounds",
            (unsigned long long)total, rounds);
    REQUIRE(total_ran > 0 && total_can > 0 && total_tmo > 0,
            "outcomes: %llu ran, %llu cancelled, %llu timed out", (unsigned long long)total_ran,
            (unsigned long long)total_can, (unsigned long long)total_tmo);
    /* The new races must have happened, not only been attempted. */
    REQUIRE(sum.f_acc > 0, "no submit to another thread's port was accepted");
    REQUIRE(sum.destroyed > 0, "no port was destroyed mid-round");
    REQUIRE(sum.g_done > 0 && sum.g_members > 0, "groups: %llu completed, %llu members",
            (unsigned long long)sum.g_done, (unsigned long long)sum.g_members);
    printf("soak: %llu tasks deferred, %llu completed by the I/O thread\n",
           (unsigned long long)total_deferred, (unsigned long long)total_by_completer);
    REQUIRE(total_deferred > 0 && total_by_completer > 0 && sum.completed_by_producer > 0,
            "deferred completion: %llu deferred, %llu and %llu completed by the I/O thread and "
            "the producers",
            (unsigned long long)total_deferred, (unsigned long long)total_by_completer,
            (unsigned long long)sum.completed_by_producer);
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
