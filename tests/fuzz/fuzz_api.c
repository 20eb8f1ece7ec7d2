/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer harness: turns the input bytes into pool options and a program of
 * API calls run by the main thread and one or two helper threads at once, then
 * drains, destroys the pool and checks the contract:
 *   - every accepted submission got exactly one completion (per record), on
 *     the thread that owns the port it was sent to, with a status the header
 *     allows (-ETIMEDOUT only with a deadline);
 *   - every return code is one the header documents for that call (and, where
 *     the harness knows the state, the one that state implies);
 *   - nothing is left in flight after wpool_destroy, and the pool's counters
 *     agree with the records once every port is drained.
 * Every thread may make (and destroy, retrying on -EBUSY between its other
 * calls) an extra port and publishes it; the others submit tasks aimed at that
 * port or at the thread's own one (their "foreign" records), whose completions
 * must run on the port's owner: accepted, or refused with -ESHUTDOWN while the
 * port is closing or -EINVAL once it is destroyed. The owner knows when its
 * port is closing or destroyed and checks each call through it returns exactly
 * the code that state implies. Each thread moves the drain registration to
 * its own ports (callbacks must run on the thread that registered them).
 * Each thread may keep a group open on its own port, put its records in it,
 * seal, cancel or re-date it: the group's completion must run once, on the
 * thread, after every member's own, with counts that add up to the members
 * accepted; a submit after the seal must be refused.
 * Every thread may put its records on one of two strands the pool has: two
 * tasks of a strand must never run at once, and one thread's tasks of a
 * strand must start in the order it submitted them.
 * Records may also be put in a work class: the two priorities, one class
 * capped at one worker (a task of it checks that no other one runs), one
 * with a max_queue of 4 (and a reserved worker when there are two or
 * more). Threads read the classes' statistics and backpressure and move
 * the limited class's drain registration.
 * A violation prints the decoded call sequence of every thread and aborts, so
 * libFuzzer reports it as a crash.
 *
 * Input layout:
 *   byte 0  threads 1..3 (b % 3), dispatch (bit 2), timing (bit 3), helpers 1..2
 *           (bit 4), main drains its ports before destroy (bit 5), probe
 *           wpool_create with bad options first (bit 6)
 *   byte 1  queue_capacity 2 << (b % 6)  (2..64)
 *   byte 2  max_queue: b % 12 < 9 -> 0..8 (clamped below the capacity),
 *           otherwise WPOOL_UNLIMITED
 *   byte 3  drain_low_water: bit 0 set (and max_queue 1..8) -> (b >> 1) % max_queue;
 *           bit 6: stack_size 256 KiB; bit 7 with byte 0 bit 7 and byte 2 >= 0xf0:
 *           pin the workers (kept rare: loading the hwloc topology costs ~40 ms)
 *   rest    split into equal slices, one per thread (main first); each op is
 *           three bytes (opcode, a, b); at most MAX_OPS ops per thread.
 *
 * FUZZ_TRACE=1 in the environment prints every decoded call as it runs.
 *
 * Build and run: tests/fuzz/run.sh (see there).
 */
#include <wpool.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
    MAX_THR = 3,   /* main + up to two helpers */
    NREC = 8,      /* records per thread (each with a child record) */
    NFREC = 4,     /* records per thread sent to other threads' ports */
    NTOK = 2,      /* cancel tokens per thread */
    MAX_OPS = 64,  /* ops per thread */
    BUDGET_MS = 4, /* total blocking time (timeouts) per thread */
    LOG_LINES = MAX_OPS + 32,
    LOG_LEN = 112,
    WORK_RAN = 7, /* status of a task whose work ran */
};

/* K_DEFER_SELF: the work completes its task itself, then returns
 * WPOOL_PENDING; K_DEFER: it leaves the task in the pending list for the
 * completer thread (or a harness thread's OP_COMPLETE) and returns
 * WPOOL_PENDING. */
enum kind { K_NOOP, K_SPIN, K_NESTED, K_WORKER_MISUSE, K_DEFER_SELF, K_DEFER, K_KINDS };

enum cbflag {
    CB_RESUBMIT = 1, /* submit the record again from its completion callback (once) */
    CB_DESTROY = 2,  /* call wpool_destroy from the callback: must be -EBUSY */
    CB_DISPATCH = 4, /* dispatch the own port from inside the callback */
};

struct thr;

struct rec {
    struct wpool_task task; /* first: the callbacks cast back */
    struct thr *owner;
    int idx;
    bool is_child;
    bool is_foreign; /* sent to another thread's port (frecs) */
    struct rec *child;
    /* Owner thread only (plain). */
    bool inited;
    bool inflight;          /* the owner's view: accepted, completion not yet run */
    wpool_port_t *target;   /* port the next submission goes to (never NULL once inited) */
    wpool_port_t *sub_port; /* port of the submission in flight */
    bool sub_deadline;      /* that submission carried a deadline */
    bool sub_passed;        /* ... one already passed when it was submitted: cannot run */
    bool expect_cancel;     /* wpool_cancel by the owner returned 0: must not run */
    bool has_deadline;
    uint64_t deadline;
    int tok_slot;   /* -1: none */
    bool in_group;  /* its submissions join the thread's group */
    int strand;     /* -1: none; else its strand in g_strands */
    int cls;        /* its work class (0: the default) */
    uint64_t sseq;  /* the submission's number in its thread (strand order) */
    bool sub_group; /* the submission in flight joined it */
    int cb_flags;
    /* Read by the worker while in flight, written by the owner while idle. */
    int kind;
    int spin_us;
    /* Foreign records: 1 from just before the submit to the end of the
     * completion callback on the port's owner, whose release store hands the
     * record back; `dest` (the owner's thread) is written while it is 0. */
    atomic_int fin;
    int dest;
    /* Counters (children: the worker counts acceptances). */
    atomic_ulong accepted, completions, ran_work, ran_status, cancelled, timed_out;
};

/* A thread's group (its own thread only: members complete on its ports). */
struct fgroup {
    struct wpool_group g;
    bool open, sealed, cancelled;
    uint64_t deadline;
    unsigned long joined, member_done, inits, completions;
};

struct thr {
    int id;
    struct fgroup grp;
    pthread_t tid;
    const uint8_t *prog;
    size_t len;
    wpool_port_t *port;  /* own port (main: the default port) */
    wpool_port_t *extra; /* a further port it made, or NULL */
    int xstate;          /* extra's state as its owner knows it (enum xstate) */
    bool reg_extra;      /* its last on_drain that returned 0 registered fn on extra */
    wpool_port_t *dead;  /* the last extra port it destroyed: a stale handle */
    /* For the other threads: the last extra port made (never cleared: it may
     * be closing or destroyed; its memory stays until wpool_destroy). */
    _Atomic(wpool_port_t *) pub_extra;
    wpool_token_t *tok[NTOK];
    bool tok_cancelled[NTOK];
    int budget_ms;
    int cb_depth;
    int nlog;
    char log[LOG_LINES][LOG_LEN];
    struct rec recs[NREC];
    struct rec kids[NREC];
    struct rec frecs[NFREC];
};

/* The state of an own port. A destroy of extra returns -EBUSY for tasks in
 * flight (the port is then closed for good) or because it is registered for
 * drain notifications (it stays open); only the owner registers on its ports,
 * so after an own on_drain that left no registration on extra, -EBUSY means
 * closing. */
enum xstate {
    XS_OPEN,
    XS_CLOSING, /* wpool_port_destroy returned -EBUSY: every submit is refused */
    XS_DEAD,    /* destroyed: every call through the handle returns -EINVAL */
};

static struct {
    wpool_t *pool;
    struct wpool_options opts;
    unsigned int nthr;
    struct thr thr[MAX_THR];
    pthread_barrier_t start, end;
    atomic_int closed; /* a shutdown or close has returned */
    atomic_int hook_start, hook_stop;
} G;

/* Deferred completion: tasks whose work returned WPOOL_PENDING wait here
 * until the completer thread, or a harness thread's OP_COMPLETE, takes one
 * out (under the lock, so each is completed once) and completes it. Every
 * record is in flight at most once, so the list never holds more than all
 * of them. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct wpool_task *items[MAX_THR * (2 * NREC + NFREC)];
    unsigned int n, taken;
    bool stop;
    pthread_t tid;
} D = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

/* The pool's two strands: a task of one checks that no other task of it runs
 * and that its thread's tasks of it start in submission order. */
enum { NSTRAND = 2 };
static struct fstrand {
    struct wpool_strand s;
    atomic_int inside;
    atomic_ullong last[MAX_THR]; /* per thread: the last submission number started */
} g_strands[NSTRAND];
static _Thread_local uint64_t t_sseq; /* a harness thread's submission counter */

/* The pool's classes: 0 and 1 (the priorities), CAPPED (one worker at a
 * time: its tasks check it) and LIMITED (max_queue 4, a reserved worker
 * when there are two or more). */
enum { FCLASSES = 4, CAPPED = 2, LIMITED = 3 };
static atomic_int g_capped_inside;

static void defer_put(struct wpool_task *t)
{
    pthread_mutex_lock(&D.mu);
    D.items[D.n++] = t;
    pthread_cond_signal(&D.cv);
    pthread_mutex_unlock(&D.mu);
}

/* Item `pick` modulo the count, or NULL; `wait`: until there is one or the
 * completer is told to stop. */
static struct wpool_task *defer_take(unsigned int pick, bool wait)
{
    pthread_mutex_lock(&D.mu);
    while (wait && D.n == 0 && !D.stop)
        pthread_cond_wait(&D.cv, &D.mu);
    struct wpool_task *t = NULL;
    if (D.n) {
        unsigned int i = pick % D.n;
        t = D.items[i];
        D.items[i] = D.items[--D.n];
        D.taken++;
    }
    pthread_mutex_unlock(&D.mu);
    return t;
}

static const char *rname(const struct rec *r);
__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...);

static void *completer_main(void *arg)
{
    (void)arg;
    struct wpool_task *t;
    for (unsigned int k = 0; (t = defer_take(k * 7u, true)); k++) {
        int rc = wpool_task_complete(t, WORK_RAN);
        if (rc != 0)
            fail("wpool_task_complete(%s, taken from the pending list): %d", rname((struct rec *)t),
                 rc);
    }
    return NULL;
}

static wpool_t *g_other; /* a second pool: its port is "of another pool" */
static bool g_trace;
static _Thread_local struct thr *t_self; /* the harness thread running, if any */

/* ---- reporting ----------------------------------------------------------- */

static pthread_mutex_t g_fail_mu = PTHREAD_MUTEX_INITIALIZER;

static void dump_logs(void)
{
    for (unsigned int i = 0; i < G.nthr; i++) {
        struct thr *th = &G.thr[i];
        int n = th->nlog < LOG_LINES ? th->nlog : LOG_LINES;
        fprintf(stderr, "---- thread %d (%s): %d calls ----\n", i, i ? "helper" : "main", th->nlog);
        for (int k = 0; k < n; k++)
            fprintf(stderr, "  t%d #%d %s\n", i, k, th->log[k]);
    }
}

__attribute__((format(printf, 1, 2), noreturn)) static void fail(const char *fmt, ...)
{
    pthread_mutex_lock(&g_fail_mu);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "\nfuzz_api: CONTRACT VIOLATION (thread %d): ", t_self ? t_self->id : -1);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr,
            "\noptions: threads %u dispatch %d capacity %u max_queue %u low_water %u "
            "timing %d\n",
            G.opts.threads, G.opts.placement, G.opts.queue_capacity, G.opts.max_queue,
            G.opts.drain_low_water, G.opts.timing);
    dump_logs();
    abort();
}

__attribute__((format(printf, 2, 3))) static void logf_(struct thr *th, const char *fmt, ...)
{
    if (!th)
        return;
    char buf[LOG_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (th->nlog < LOG_LINES)
        memcpy(th->log[th->nlog], buf, sizeof(buf));
    th->nlog++;
    if (g_trace)
        fprintf(stderr, "t%d: %s\n", th->id, buf);
}

/* Allowed return codes: a list of negative errno values; OK_ZERO, OK_COUNT
 * (any value >= 0) as extra flags. */
#define OK_ZERO  1
#define OK_COUNT 2

static void expect_rc(const char *what, int rc, int flags, const int *allowed, size_t n)
{
    if (rc == 0 && (flags & (OK_ZERO | OK_COUNT)))
        return;
    if (rc > 0 && (flags & OK_COUNT))
        return;
    for (size_t i = 0; i < n; i++)
        if (rc == allowed[i])
            return;
    fail("%s returned %d (%s), not a code allowed here", what, rc,
         rc < 0 ? strerror(-rc) : "count");
}

#define EXPECT(what, rc, flags, ...)                                                               \
    do {                                                                                           \
        const int al_[] = {0, __VA_ARGS__};                                                        \
        expect_rc(what, rc, flags, al_ + 1, sizeof(al_) / sizeof(al_[0]) - 1);                     \
    } while (0)

static const char *ename(int rc)
{
    switch (rc) {
    case -EINVAL:
        return "-EINVAL";
    case -EBUSY:
        return "-EBUSY";
    case -EAGAIN:
        return "-EAGAIN";
    case -ESHUTDOWN:
        return "-ESHUTDOWN";
    case -ECANCELED:
        return "-ECANCELED";
    case -ETIMEDOUT:
        return "-ETIMEDOUT";
    case -EDEADLK:
        return "-EDEADLK";
    case -EPERM:
        return "-EPERM";
    case -ENOMEM:
        return "-ENOMEM";
    default:
        break;
    }
    static _Thread_local char b[16];
    snprintf(b, sizeof(b), "%d", rc);
    return b;
}

static const char *rname(const struct rec *r)
{
    static _Thread_local char b[4][24];
    static _Thread_local int k;
    char *s = b[k++ & 3];
    snprintf(s, 24, "%s%d.%d",
             r->is_child     ? "kid"
             : r->is_foreign ? "frec"
                             : "rec",
             r->owner->id, r->idx);
    return s;
}

/* ---- work and completion callbacks --------------------------------------- */

static int blocking_ms(struct thr *th, int want)
{
    if (want > th->budget_ms)
        want = th->budget_ms;
    th->budget_ms -= want;
    return want;
}

static int rec_kind_work(struct rec *r, struct wpool_task *t);

static int rec_work(struct wpool_task *t)
{
    struct rec *r = (struct rec *)t;
    int wi = wpool_worker_index();
    if (wi < 0 || (unsigned int)wi >= G.opts.threads)
        fail("work of %s ran with worker index %d", rname(r), wi);
    atomic_fetch_add(&r->ran_work, 1);
    struct fstrand *fs = r->strand >= 0 ? &g_strands[r->strand] : NULL;
    if (fs) {
        if (atomic_fetch_add(&fs->inside, 1) != 0)
            fail("%s started while another task of strand %d ran", rname(r), r->strand);
        unsigned long long prev = atomic_load(&fs->last[r->owner->id]);
        if (r->sseq <= prev)
            fail("%s (submission %llu) started after submission %llu of its thread on strand %d",
                 rname(r), (unsigned long long)r->sseq, prev, r->strand);
        atomic_store(&fs->last[r->owner->id], r->sseq);
    }
    if (r->cls == CAPPED && atomic_fetch_add(&g_capped_inside, 1) != 0)
        fail("%s started while another task of the capped class ran", rname(r));
    int ret = rec_kind_work(r, t);
    if (r->cls == CAPPED)
        atomic_fetch_sub(&g_capped_inside, 1);
    if (fs)
        atomic_fetch_sub(&fs->inside, 1);
    return ret;
}

static int rec_kind_work(struct rec *r, struct wpool_task *t)
{
    switch (r->kind) {
    case K_SPIN: {
        uint64_t end = wpool_now_ns() + (uint64_t)r->spin_us * 1000u;
        while (wpool_now_ns() < end && !wpool_task_cancelled(t))
            ;
        break;
    }
    case K_NESTED: {
        struct rec *c = r->child;
        int rc = wpool_submit(G.pool, &c->task);
        EXPECT("wpool_submit (child, from a worker)", rc, OK_ZERO, -EBUSY, -EAGAIN, -ESHUTDOWN);
        if (rc == 0)
            atomic_fetch_add(&c->accepted, 1);
        break;
    }
    case K_WORKER_MISUSE: {
        int rc = wpool_submit_wait(G.pool, &r->child->task, 0);
        EXPECT("wpool_submit_wait (from a worker)", rc, 0, -EDEADLK);
        rc = wpool_shutdown(G.pool, WPOOL_CLOSE_RUN, 0);
        EXPECT("wpool_shutdown (from a worker)", rc, 0, -EDEADLK);
        rc = wpool_close(G.pool);
        EXPECT("wpool_close (from a worker)", rc, 0, -EDEADLK);
        rc = wpool_destroy(G.pool);
        EXPECT("wpool_destroy (from a worker)", rc, 0, -EDEADLK);
        struct wpool_statistics st;
        rc = wpool_stats(G.pool, &st);
        EXPECT("wpool_stats (from a worker)", rc, OK_ZERO, -ENOMEM);
        if (rc == 0 && st.running == 0)
            fail("wpool_stats from a running task reports 0 running");
        rc = wpool_cancel_all(G.pool);
        EXPECT("wpool_cancel_all (from a worker)", rc, OK_COUNT);
        if (wpool_threads(G.pool) != G.opts.threads)
            fail("wpool_threads %u != %u", wpool_threads(G.pool), G.opts.threads);
        break;
    }
    case K_DEFER_SELF: {
        int rc = wpool_task_complete(t, WORK_RAN);
        if (rc != 0)
            fail("wpool_task_complete(%s) from its own work: %d", rname(r), rc);
        return WPOOL_PENDING;
    }
    case K_DEFER:
        defer_put(t);
        return WPOOL_PENDING;
    default:
        break;
    }
    return WORK_RAN;
}

static void own_submit(struct thr *th, struct rec *r, int how, int tmo, const char *why);

/* A foreign record's completion: on the owner of the port it was sent to. */
static void foreign_done(struct rec *r, int status)
{
    struct thr *d = &G.thr[r->dest];
    if (!pthread_equal(pthread_self(), d->tid))
        fail("completion of %s ran on a thread that does not own the port it was sent to "
             "(thread %d's)",
             rname(r), r->dest);
    if (atomic_load(&r->fin) != 1)
        fail("completion of %s (status %d) without an accepted submission", rname(r), status);
    atomic_fetch_add(&r->completions, 1);
    if (status == WORK_RAN) {
        if (r->sub_passed)
            fail("%s ran although its deadline had passed before it was submitted", rname(r));
        atomic_fetch_add(&r->ran_status, 1);
    } else if (status == -ECANCELED) {
        atomic_fetch_add(&r->cancelled, 1);
    } else if (status == -ETIMEDOUT && r->sub_deadline) {
        atomic_fetch_add(&r->timed_out, 1);
    } else {
        fail("%s completed with status %d, not a documented one", rname(r), status);
    }
    logf_(t_self, "  done(%s, %s)", rname(r), status == WORK_RAN ? "ran" : ename(status));
    atomic_store(&r->fin, 0); /* last: the submitter may reuse it at once */
}

/* Completions over the whole process: the corpus replay (FUZZ_REQUIRE_WORK)
 * must not pass on a library that refuses every task. */
static atomic_ulong g_completions;

static void rec_done(struct wpool_task *t, int status)
{
    atomic_fetch_add(&g_completions, 1);
    struct rec *r = (struct rec *)t;
    struct thr *th = r->owner;
    if (r->is_foreign) {
        foreign_done(r, status);
        return;
    }
    if (!pthread_equal(pthread_self(), th->tid))
        fail("completion of %s ran on a thread that does not own its port", rname(r));
    unsigned long c = atomic_fetch_add(&r->completions, 1) + 1;
    if (!r->is_child) {
        if (!r->inflight)
            fail("completion of %s (status %d) without an accepted submission", rname(r), status);
        r->inflight = false;
        if (r->sub_group) {
            th->grp.member_done++;
            r->sub_group = false;
        }
        if (r->completions > r->accepted)
            fail("%s: completion %lu > accepted %lu", rname(r), c,
                 (unsigned long)atomic_load(&r->accepted));
    }
    if (!r->is_child) {
        if (r->expect_cancel && status != -ECANCELED)
            fail("%s: wpool_cancel returned 0 but the completion status is %d, not -ECANCELED",
                 rname(r), status);
        if (r->sub_passed && status == WORK_RAN)
            fail("%s ran although its deadline had passed before it was submitted", rname(r));
        r->expect_cancel = false;
    }
    if (status == WORK_RAN)
        atomic_fetch_add(&r->ran_status, 1);
    else if (status == -ECANCELED)
        atomic_fetch_add(&r->cancelled, 1);
    else if (status == -ETIMEDOUT) {
        if (r->is_child || !r->sub_deadline)
            fail("%s completed with -ETIMEDOUT without a deadline", rname(r));
        atomic_fetch_add(&r->timed_out, 1);
    } else
        fail("%s completed with status %d, not a documented one", rname(r), status);
    logf_(th, "  done(%s, %s)", rname(r), status == WORK_RAN ? "ran" : ename(status));
    if (r->is_child || t_self != th)
        return;
    if (r->cb_flags & CB_DESTROY) {
        r->cb_flags &= ~CB_DESTROY;
        int rc = wpool_destroy(G.pool);
        logf_(th, "  in callback: wpool_destroy -> %s", ename(rc));
        EXPECT("wpool_destroy (from a completion callback)", rc, 0, -EBUSY);
    }
    if ((r->cb_flags & CB_RESUBMIT) && r->inited) {
        r->cb_flags &= ~CB_RESUBMIT;
        own_submit(th, r, 0, 0, "in callback: ");
    }
    if ((r->cb_flags & CB_DISPATCH) && th->cb_depth < 2) {
        th->cb_depth++;
        int rc = wpool_port_dispatch(th->port, 2);
        th->cb_depth--;
        logf_(th, "  in callback: dispatch(own port, 2) -> %d", rc);
        EXPECT("wpool_port_dispatch (nested in a callback)", rc, OK_COUNT);
        if (rc > 2)
            fail("dispatch ran %d > max 2", rc);
    }
}

/* A thread's group completed: on that thread, once, after every member. */
static void group_done(struct wpool_group *g, const struct wpool_group_result *res)
{
    struct thr *th = g->data;
    struct fgroup *fg = &th->grp;
    if (!pthread_equal(pthread_self(), th->tid))
        fail("the completion of thread %d's group ran on another thread", th->id);
    if (!fg->open || !fg->sealed)
        fail("a group completion for a group %s", fg->open ? "not sealed" : "not open");
    if (fg->member_done != fg->joined)
        fail("a group completed after %lu of its %lu members", fg->member_done, fg->joined);
    uint64_t sum = res->succeeded + res->failed + res->cancelled + res->timed_out;
    if (sum != fg->joined)
        fail("a group's result counts %llu members, %lu joined", (unsigned long long)sum,
             fg->joined);
    /* Work that runs returns WORK_RAN (not 0): a failure for the group. */
    if (res->succeeded != 0 || (res->first_error != 0) != (sum != 0))
        fail("a group's result: %llu succeeded, first error %d", (unsigned long long)res->succeeded,
             res->first_error);
    logf_(th, "  group done(%llu ran, %llu cancelled, %llu timed out)",
          (unsigned long long)res->succeeded, (unsigned long long)res->cancelled,
          (unsigned long long)res->timed_out);
    fg->open = false;
    fg->completions++;
}

static void drain_fn(wpool_t *pool, void *arg)
{
    if (pool != G.pool)
        fail("drain callback got pool %p, not %p", (void *)pool, (void *)G.pool);
    /* Registered by the owner of the port, with itself as arg: a callback
     * from a notification posted to another thread's port would run here. */
    struct thr *th = arg;
    if (th && !pthread_equal(pthread_self(), th->tid))
        fail("drain callback registered by thread %d on its port ran on another thread", th->id);
}

static void hook_start(void *arg, unsigned int index)
{
    if (arg != &G || index >= G.opts.threads)
        fail("on_worker_start(%p, %u)", arg, index);
    atomic_fetch_add(&G.hook_start, 1);
}

static void hook_stop(void *arg, unsigned int index)
{
    if (arg != &G || index >= G.opts.threads)
        fail("on_worker_stop(%p, %u)", arg, index);
    atomic_fetch_add(&G.hook_stop, 1);
}

/* ---- owner-side submission with state-aware checks ------------------------ */

static bool tok_is_cancelled(const struct thr *th, const struct rec *r)
{
    return r->tok_slot >= 0 && th->tok_cancelled[r->tok_slot];
}

/* The state of one of the thread's own ports (XS_OPEN for its own port and
 * the default one). */
static int port_state(const struct thr *th, const wpool_port_t *p)
{
    if (p && p == th->dead)
        return XS_DEAD;
    if (p && p == th->extra)
        return th->xstate;
    return XS_OPEN;
}

/* The codes of a refused submit of an idle, initialised record whose port is
 * closing or destroyed: -ESHUTDOWN (closing; or the pool closing meanwhile),
 * -EINVAL (destroyed), -ECANCELED (its token is cancelled). */
static void expect_refused_port(const char *what, int rc, int ps, bool tokc)
{
    if (ps == XS_DEAD && tokc)
        EXPECT(what, rc, 0, -EINVAL, -ESHUTDOWN, -ECANCELED);
    else if (ps == XS_DEAD)
        EXPECT(what, rc, 0, -EINVAL, -ESHUTDOWN);
    else if (tokc)
        EXPECT(what, rc, 0, -ESHUTDOWN, -ECANCELED);
    else
        EXPECT(what, rc, 0, -ESHUTDOWN);
}

/* A submission joins the thread's group: the deadline it will carry (the
 * earlier of its own and the group's; it keeps it). */
static void join_deadline(struct thr *th, struct rec *r)
{
    uint64_t g = th->grp.deadline;
    if (r->in_group && g && (!r->has_deadline || r->deadline > g)) {
        r->has_deadline = true;
        r->deadline = g;
    }
}

/* Whether a submit of r must be refused by its group: sealed or cancelled. */
static bool group_refuses(const struct thr *th, const struct rec *r)
{
    return r->in_group && (!th->grp.open || th->grp.sealed || th->grp.cancelled);
}

static void own_submit(struct thr *th, struct rec *r, int how, int tmo, const char *why)
{
    bool was = r->inflight, inited = r->inited, closed = atomic_load(&G.closed);
    bool tokc = tok_is_cancelled(th, r) || (r->in_group && th->grp.cancelled);
    bool grefuse = group_refuses(th, r);
    int ps = inited ? port_state(th, r->target) : XS_OPEN;
    bool had_deadline = r->has_deadline;
    uint64_t own_deadline = r->deadline;
    if (inited && !was) {
        if (!grefuse)
            join_deadline(th, r);
        r->inflight = true; /* before the call: see rec_done */
        r->sub_port = r->target;
        r->sub_deadline = r->has_deadline;
        r->sub_passed = r->has_deadline && r->deadline <= wpool_now_ns();
        r->expect_cancel = false;
        r->sub_group = r->in_group;
        r->sseq = ++t_sseq;
    }
    int rc = how ? wpool_submit_wait(G.pool, &r->task, tmo) : wpool_submit(G.pool, &r->task);
    logf_(th, "%s%s(%s%s%s) -> %s", why, how ? "submit_wait" : "submit", rname(r),
          how ? ", ms=" : "", how ? (tmo ? (tmo == 1 ? "1" : "2") : "0") : "", ename(rc));
    const char *what = how ? "wpool_submit_wait" : "wpool_submit";
    if (rc == 0) {
        if (!inited)
            fail("%s accepted an uninitialised record", what);
        if (was)
            fail("%s accepted %s, already in flight (double submit)", what, rname(r));
        if (closed)
            fail("%s accepted %s after the pool was shut down", what, rname(r));
        if (tokc)
            fail("%s accepted %s whose token is cancelled", what, rname(r));
        if (grefuse)
            fail("%s accepted %s into a group sealed or done", what, rname(r));
        if (ps == XS_CLOSING || ps == XS_DEAD)
            fail("%s accepted %s sent to its own port that is %s", what, rname(r),
                 ps == XS_DEAD ? "destroyed" : "being destroyed");
        atomic_fetch_add(&r->accepted, 1);
        if (r->in_group)
            th->grp.joined++;
        return;
    }
    if (inited && !was) {
        r->inflight = false;
        r->sub_group = false;
        r->has_deadline = had_deadline; /* refused: it joined nothing */
        r->deadline = own_deadline;
    }
    if (!inited)
        EXPECT(what, rc, 0, -EINVAL);
    else if (was)
        EXPECT(what, rc, 0, -EBUSY, -ESHUTDOWN);
    else if (grefuse)
        EXPECT(what, rc, 0, -ESHUTDOWN, -ECANCELED, -EINVAL);
    else if (ps == XS_CLOSING || ps == XS_DEAD)
        expect_refused_port(what, rc, ps, tokc);
    else if (tokc)
        EXPECT(what, rc, 0, -ECANCELED, -ESHUTDOWN);
    else if (closed)
        EXPECT(what, rc, 0, -ESHUTDOWN);
    else if (how)
        EXPECT(what, rc, 0, -ETIMEDOUT, -ESHUTDOWN);
    else
        EXPECT(what, rc, 0, -EAGAIN, -ESHUTDOWN);
}

static void own_batch(struct thr *th, struct rec **rs, unsigned int n)
{
    struct wpool_task *tasks[4];
    bool eligible[4], preset[4], had_dl[4];
    uint64_t own_dl[4];
    bool closed = atomic_load(&G.closed);
    char names[64] = "";
    size_t off = 0;
    for (unsigned int i = 0; i < n; i++) {
        struct rec *r = rs[i];
        tasks[i] = &r->task;
        preset[i] = false;
        eligible[i] = r->inited && !r->inflight;
        had_dl[i] = r->has_deadline;
        own_dl[i] = r->deadline;
        if (eligible[i]) { /* a later duplicate sees it in flight */
            if (!group_refuses(th, r))
                join_deadline(th, r);
            r->inflight = true;
            r->sub_group = r->in_group;
            r->sub_port = r->target;
            r->sub_deadline = r->has_deadline;
            r->sub_passed = r->has_deadline && r->deadline <= wpool_now_ns();
            r->expect_cancel = false;
            r->sseq = ++t_sseq;
            preset[i] = true;
        }
        off += (size_t)snprintf(names + off, sizeof(names) - off, "%s%s", i ? "," : "", rname(r));
        if (off >= sizeof(names))
            off = sizeof(names) - 1;
    }
    int rc = wpool_submit_batch(G.pool, tasks, n);
    logf_(th, "submit_batch([%s]) -> %s", names, rc > 0 ? "accepted" : ename(rc));
    if (rc > 0) {
        if ((unsigned int)rc > n)
            fail("wpool_submit_batch accepted %d of %u", rc, n);
        if (closed)
            fail("wpool_submit_batch accepted %d after the pool was shut down", rc);
        if (g_trace)
            logf_(th, "  (%d accepted)", rc);
    } else {
        struct rec *r = rs[0];
        int ps = r->inited ? port_state(th, r->target) : XS_OPEN;
        if (!r->inited)
            EXPECT("wpool_submit_batch", rc, 0, -EINVAL);
        else if (!eligible[0])
            EXPECT("wpool_submit_batch", rc, 0, -EBUSY, -ESHUTDOWN);
        else if (group_refuses(th, r))
            EXPECT("wpool_submit_batch", rc, 0, -ESHUTDOWN, -ECANCELED, -EINVAL);
        else if (ps == XS_CLOSING || ps == XS_DEAD)
            expect_refused_port("wpool_submit_batch", rc, ps, tok_is_cancelled(th, r));
        else if (tok_is_cancelled(th, r))
            EXPECT("wpool_submit_batch", rc, 0, -ECANCELED, -ESHUTDOWN);
        else if (closed)
            EXPECT("wpool_submit_batch", rc, 0, -ESHUTDOWN);
        else
            EXPECT("wpool_submit_batch", rc, 0, -EAGAIN, -ESHUTDOWN);
    }
    unsigned int k = rc > 0 ? (unsigned int)rc : 0;
    for (unsigned int i = 0; i < n; i++) {
        if (i < k) {
            if (!eligible[i])
                fail("wpool_submit_batch accepted %s (index %u), which was %s", rname(rs[i]), i,
                     rs[i]->inited ? "in flight (double submit)" : "uninitialised");
            if (tok_is_cancelled(th, rs[i]))
                fail("wpool_submit_batch accepted %s whose token is cancelled", rname(rs[i]));
            if (group_refuses(th, rs[i]))
                fail("wpool_submit_batch accepted %s into a group sealed or done", rname(rs[i]));
            if (rs[i]->in_group)
                th->grp.joined++;
            int ps = port_state(th, rs[i]->target);
            if (ps == XS_CLOSING || ps == XS_DEAD)
                fail("wpool_submit_batch accepted %s sent to its own port that is %s", rname(rs[i]),
                     ps == XS_DEAD ? "destroyed" : "being destroyed");
            atomic_fetch_add(&rs[i]->accepted, 1);
        } else if (preset[i]) {
            rs[i]->inflight = false;
            rs[i]->sub_group = false;
            rs[i]->has_deadline = had_dl[i]; /* it joined nothing */
            rs[i]->deadline = own_dl[i];
        }
    }
}

/* ---- the program ----------------------------------------------------------- */

enum op {
    OP_INIT,
    OP_PRIO,
    OP_DEADLINE,
    OP_TOKEN,
    OP_PORT,
    OP_SUBMIT,
    OP_SUBMIT2, /* submit again: more weight */
    OP_BATCH,
    OP_SUBMIT_WAIT,
    OP_CANCEL,
    OP_CANCEL_ALL,
    OP_TOK_CREATE,
    OP_TOK_CANCEL,
    OP_TOK_DESTROY,
    OP_DISPATCH,
    OP_DISPATCH2,
    OP_WAIT,
    OP_DRAIN,
    OP_STATS,
    OP_STATS_RESET,
    OP_NEEDS_DRAIN,
    OP_ON_DRAIN,
    OP_SHUTDOWN,
    OP_CLOSE,
    OP_KIND,
    OP_CBFLAGS,
    OP_BAD,
    OP_CROSS,
    OP_EXTRA_PORT,
    OP_FOREIGN,
    OP_FOREIGN2, /* more weight */
    OP_GROUP,
    OP_GROUP2, /* more weight */
    OP_COMPLETE,
    OP_STRAND,
    OP_CLASS,
    OP_CLASS_INFO,
    OP_COUNT
};

static struct rec *pick(struct thr *th, uint8_t a)
{
    return &th->recs[a % NREC];
}

/* The set_* calls share their codes: -EINVAL uninitialised, -EBUSY in flight. */
static void expect_set(const char *what, const struct rec *r, int rc, bool bad_value)
{
    if (!r->inited)
        EXPECT(what, rc, 0, -EINVAL);
    else if (r->inflight)
        EXPECT(what, rc, 0, -EBUSY);
    else if (bad_value)
        EXPECT(what, rc, 0, -EINVAL);
    else
        EXPECT(what, rc, OK_ZERO);
}

/* One of the thread's own ports: its own (main: the default one, or NULL),
 * its extra port, or its last destroyed one. */
static wpool_port_t *own_port_choice(struct thr *th, uint8_t b, const char **name)
{
    switch (b % 4) {
    case 2:
        if (th->extra) {
            *name = th->xstate == XS_OPEN      ? "extra port"
                    : th->xstate == XS_CLOSING ? "extra port, closing"
                                               : "extra port, destroyed";
            return th->extra;
        }
        break;
    case 3:
        if (th->dead) {
            *name = "destroyed extra port";
            return th->dead;
        }
        break;
    default:
        break;
    }
    if (th->id != 0) {
        *name = "own port";
        return th->port;
    }
    if (b & 1) {
        *name = "default port";
        return th->port;
    }
    *name = "NULL (default)";
    return NULL;
}

static void set_port_checked(struct thr *th, struct rec *r, wpool_port_t *p, const char *pname)
{
    int rc = wpool_task_set_port(&r->task, p);
    logf_(th, "set_port(%s, %s) -> %s", rname(r), pname, ename(rc));
    expect_set("wpool_task_set_port", r, rc, false);
    if (rc == 0)
        r->target = p ? p : wpool_default_port(G.pool);
}

static void op_bad(struct thr *th, uint8_t a, uint8_t b)
{
    struct rec *r = pick(th, b);
    struct wpool_task local;
    int rc;
    switch (a % 20) {
    case 0:
        rc = wpool_task_init(NULL, rec_work, rec_done);
        logf_(th, "task_init(NULL) -> %s", ename(rc));
        EXPECT("wpool_task_init(NULL task)", rc, 0, -EINVAL);
        rc = wpool_task_init(&r->task, NULL, rec_done);
        logf_(th, "task_init(%s, work NULL) -> %s", rname(r), ename(rc));
        EXPECT("wpool_task_init(work NULL)", rc, 0, -EINVAL);
        rc = wpool_task_init(&r->task, rec_work, NULL);
        EXPECT("wpool_task_init(done NULL)", rc, 0, -EINVAL);
        break;
    case 1:
        rc = wpool_submit(NULL, &r->task);
        logf_(th, "submit(pool NULL, %s) -> %s", rname(r), ename(rc));
        EXPECT("wpool_submit(pool NULL)", rc, 0, -EINVAL);
        rc = wpool_submit(G.pool, NULL);
        logf_(th, "submit(task NULL) -> %s", ename(rc));
        EXPECT("wpool_submit(task NULL)", rc, 0, -EINVAL);
        break;
    case 2: {
        struct wpool_task *one[1] = {&r->task};
        rc = wpool_submit_batch(G.pool, NULL, 1);
        logf_(th, "submit_batch(NULL, 1) -> %s", ename(rc));
        EXPECT("wpool_submit_batch(tasks NULL)", rc, 0, -EINVAL);
        rc = wpool_submit_batch(G.pool, one, 0);
        logf_(th, "submit_batch(n 0) -> %s", ename(rc));
        EXPECT("wpool_submit_batch(n 0)", rc, 0, -EINVAL);
        rc = wpool_submit_batch(NULL, one, 1);
        EXPECT("wpool_submit_batch(pool NULL)", rc, 0, -EINVAL);
        break;
    }
    case 3:
        rc = wpool_submit_wait(G.pool, &r->task, -2 - (int)(b & 7));
        logf_(th, "submit_wait(%s, ms < -1) -> %s", rname(r), ename(rc));
        EXPECT("wpool_submit_wait(timeout < -1)", rc, 0, -EINVAL);
        rc = wpool_submit_wait(NULL, &r->task, 0);
        EXPECT("wpool_submit_wait(pool NULL)", rc, 0, -EINVAL);
        break;
    case 4:
        rc = wpool_cancel(NULL);
        logf_(th, "cancel(NULL) -> %s", ename(rc));
        EXPECT("wpool_cancel(NULL)", rc, 0, -EINVAL);
        memset(&local, 0, sizeof(local));
        rc = wpool_cancel(&local);
        logf_(th, "cancel(uninitialised task) -> %s", ename(rc));
        EXPECT("wpool_cancel(uninitialised)", rc, 0, -EINVAL);
        break;
    case 5:
        memset(&local, 0, sizeof(local));
        rc = wpool_task_init(&local, rec_work, rec_done);
        EXPECT("wpool_task_init(local)", rc, OK_ZERO);
        rc = wpool_cancel(&local);
        logf_(th, "cancel(never-submitted task) -> %s", ename(rc));
        EXPECT("wpool_cancel(never submitted)", rc, 0, -EBUSY);
        rc = wpool_task_set_priority(&local, WPOOL_PRIORITY_HIGH);
        EXPECT("wpool_task_set_priority(local)", rc, OK_ZERO);
        if (wpool_task_cancelled(&local) != 0)
            fail("wpool_task_cancelled(never submitted, no token) != 0");
        break;
    case 6:
        rc = wpool_shutdown(G.pool, 2 + (b & 3), 0);
        logf_(th, "shutdown(bad mode) -> %s", ename(rc));
        EXPECT("wpool_shutdown(bad mode)", rc, 0, -EINVAL);
        rc = wpool_shutdown(G.pool, WPOOL_CLOSE_RUN, -2);
        logf_(th, "shutdown(ms -2) -> %s", ename(rc));
        EXPECT("wpool_shutdown(timeout < -1)", rc, 0, -EINVAL);
        rc = wpool_shutdown(NULL, WPOOL_CLOSE_CANCEL, 0);
        EXPECT("wpool_shutdown(NULL)", rc, 0, -EINVAL);
        rc = wpool_close(NULL);
        EXPECT("wpool_close(NULL)", rc, 0, -EINVAL);
        break;
    case 7:
        rc = wpool_port_dispatch(NULL, 1);
        logf_(th, "port_dispatch(NULL) -> %s", ename(rc));
        EXPECT("wpool_port_dispatch(NULL)", rc, 0, -EINVAL);
        if (th->port) {
            rc = wpool_port_dispatch(th->port, 0);
            logf_(th, "port_dispatch(own, max 0) -> %s", ename(rc));
            EXPECT("wpool_port_dispatch(max 0)", rc, 0, -EINVAL);
        }
        rc = wpool_dispatch(NULL, 1);
        EXPECT("wpool_dispatch(NULL)", rc, 0, -EINVAL);
        rc = wpool_dispatch(G.pool, 0);
        EXPECT("wpool_dispatch(max 0)", rc, 0, -EINVAL);
        break;
    case 8:
        if (th->port) {
            rc = wpool_port_wait(th->port, -2);
            logf_(th, "port_wait(own, -2) -> %s", ename(rc));
            EXPECT("wpool_port_wait(timeout < -1)", rc, 0, -EINVAL);
            rc = wpool_port_settle(th->port, -3);
            logf_(th, "port_drain(own, -3) -> %s", ename(rc));
            EXPECT("wpool_port_settle(timeout < -1)", rc, 0, -EINVAL);
        }
        rc = wpool_port_wait(NULL, 0);
        EXPECT("wpool_port_wait(NULL)", rc, 0, -EINVAL);
        rc = wpool_port_settle(NULL, 0);
        EXPECT("wpool_port_settle(NULL)", rc, 0, -EINVAL);
        break;
    case 9: {
        int prio = (b & 1) ? 2 + (b >> 1) % 5 : -1 - (b >> 1) % 3;
        rc = wpool_task_set_priority(&r->task, prio);
        logf_(th, "set_priority(%s, %d) -> %s", rname(r), prio, ename(rc));
        expect_set("wpool_task_set_priority(bad priority)", r, rc, true);
        break;
    }
    case 10:
        rc = wpool_token_create(NULL);
        logf_(th, "token_create(NULL) -> %s", ename(rc));
        EXPECT("wpool_token_create(NULL)", rc, 0, -EINVAL);
        rc = wpool_token_cancel(NULL);
        EXPECT("wpool_token_cancel(NULL)", rc, 0, -EINVAL);
        rc = wpool_token_cancelled(NULL);
        EXPECT("wpool_token_cancelled(NULL)", rc, 0, -EINVAL);
        rc = wpool_token_destroy(NULL);
        EXPECT("wpool_token_destroy(NULL)", rc, OK_ZERO);
        break;
    case 11: {
        struct wpool_statistics st;
        rc = wpool_stats(NULL, &st);
        logf_(th, "stats(NULL) / stats(out NULL) / stats_reset(NULL) / needs_drain(NULL) / "
                  "on_drain(NULL) / cancel_all(NULL)");
        EXPECT("wpool_stats(NULL)", rc, 0, -EINVAL);
        rc = wpool_stats(G.pool, NULL);
        EXPECT("wpool_stats(out NULL)", rc, 0, -EINVAL);
        rc = wpool_stats_reset(NULL);
        EXPECT("wpool_stats_reset(NULL)", rc, 0, -EINVAL);
        rc = wpool_needs_drain(NULL);
        EXPECT("wpool_needs_drain(NULL)", rc, 0, -EINVAL);
        rc = wpool_on_drain(NULL, NULL, drain_fn, NULL);
        EXPECT("wpool_on_drain(NULL)", rc, 0, -EINVAL);
        rc = wpool_cancel_all(NULL);
        EXPECT("wpool_cancel_all(NULL)", rc, 0, -EINVAL);
        break;
    }
    case 12: {
        /* Double submit of an in-flight record, if there is one. */
        for (int i = 0; i < NREC; i++) {
            struct rec *q = &th->recs[(i + b) % NREC];
            if (q->inflight) {
                own_submit(th, q, 0, 0, "double ");
                break;
            }
        }
        break;
    }
    case 13: {
        /* A batch with the same record twice. */
        struct rec *rs[2] = {r, r};
        own_batch(th, rs, 2);
        break;
    }
    case 14: {
        wpool_port_t *p = NULL;
        rc = wpool_port_create(NULL, &p);
        logf_(th, "port_create(NULL pool) / port_create(portp NULL) / port_destroy(NULL) / "
                  "port_destroy(default) / fd(NULL)");
        EXPECT("wpool_port_create(pool NULL)", rc, 0, -EINVAL);
        rc = wpool_port_create(G.pool, NULL);
        EXPECT("wpool_port_create(portp NULL)", rc, 0, -EINVAL);
        rc = wpool_port_destroy(NULL);
        EXPECT("wpool_port_destroy(NULL)", rc, OK_ZERO);
        rc = wpool_port_destroy(wpool_default_port(G.pool));
        EXPECT("wpool_port_destroy(default port)", rc, 0, -EINVAL);
        rc = wpool_port_fd(NULL);
        EXPECT("wpool_port_fd(NULL)", rc, 0, -EINVAL);
        rc = wpool_fd(NULL);
        EXPECT("wpool_fd(NULL)", rc, 0, -EINVAL);
        if (wpool_fd(G.pool) < 0)
            fail("wpool_fd(pool) = %d", wpool_fd(G.pool));
        if (wpool_threads(NULL) != 0 || wpool_default_port(NULL) != NULL)
            fail("wpool_threads/default_port(NULL) not 0/NULL");
        if (wpool_worker_index() != -1)
            fail("wpool_worker_index() on a non-worker = %d", wpool_worker_index());
        if (wpool_task_cancelled(NULL) != 0)
            fail("wpool_task_cancelled(NULL) != 0");
        rc = wpool_destroy(NULL);
        EXPECT("wpool_destroy(NULL)", rc, OK_ZERO);
        break;
    }
    case 15:
        memset(&local, 0, sizeof(local));
        rc = wpool_submit(G.pool, &local);
        logf_(th, "submit(uninitialised task) / set_*(uninitialised) -> %s", ename(rc));
        EXPECT("wpool_submit(uninitialised)", rc, 0, -EINVAL);
        rc = wpool_task_set_port(&local, NULL);
        EXPECT("wpool_task_set_port(uninitialised)", rc, 0, -EINVAL);
        rc = wpool_task_set_deadline(&local, 1);
        EXPECT("wpool_task_set_deadline(uninitialised)", rc, 0, -EINVAL);
        rc = wpool_task_set_token(&local, NULL);
        EXPECT("wpool_task_set_token(uninitialised)", rc, 0, -EINVAL);
        rc = wpool_task_set_priority(NULL, 0);
        EXPECT("wpool_task_set_priority(NULL)", rc, 0, -EINVAL);
        break;
    case 16:
        if (g_other) {
            /* A task whose port belongs to another pool. */
            memset(&local, 0, sizeof(local));
            rc = wpool_task_init(&local, rec_work, rec_done);
            EXPECT("wpool_task_init(local)", rc, OK_ZERO);
            rc = wpool_task_set_port(&local, wpool_default_port(g_other));
            EXPECT("wpool_task_set_port(other pool's port)", rc, OK_ZERO);
            rc = wpool_submit(G.pool, &local);
            logf_(th, "submit(task whose port is another pool's) -> %s", ename(rc));
            EXPECT("wpool_submit(port of another pool)", rc, 0, -EINVAL);
            rc = wpool_submit_wait(G.pool, &local, 0);
            EXPECT("wpool_submit_wait(port of another pool)", rc, 0, -EINVAL);
            rc = wpool_on_drain(G.pool, wpool_default_port(g_other), drain_fn, NULL);
            logf_(th, "on_drain(another pool's port) -> %s", ename(rc));
            EXPECT("wpool_on_drain(port of another pool)", rc, 0, -EINVAL);
        }
        break;
    case 17:
        if (th->port) {
            rc = wpool_port_fd(th->port);
            logf_(th, "port_fd(own) -> %d", rc);
            if (rc < 0)
                fail("wpool_port_fd(own port) = %d", rc);
        }
        if (wpool_version() != WPOOL_VERSION_NUMBER ||
            strcmp(wpool_version_string(), WPOOL_VERSION_STRING) != 0)
            fail("version mismatch");
        break;
    case 18: {
        /* Cancel of an own idle record: must be -EBUSY (or -EINVAL uninit). */
        rc = wpool_cancel(&r->task);
        logf_(th, "cancel(%s%s) -> %s", rname(r), r->inflight ? ", in flight" : ", idle",
              ename(rc));
        if (!r->inited)
            EXPECT("wpool_cancel(uninitialised)", rc, 0, -EINVAL);
        else if (!r->inflight)
            EXPECT("wpool_cancel(idle record)", rc, 0, -EBUSY);
        else
            EXPECT("wpool_cancel", rc, OK_ZERO, -EBUSY);
        if (rc == 0)
            r->expect_cancel = true;
        break;
    }
    default: {
        /* task_init on an in-flight record must be refused. */
        if (r->inited && r->inflight) {
            rc = wpool_task_init(&r->task, rec_work, rec_done);
            logf_(th, "task_init(%s, in flight) -> %s", rname(r), ename(rc));
            EXPECT("wpool_task_init(in flight)", rc, 0, -EBUSY);
        }
        break;
    }
    }
}

static void op_cross(struct thr *th, uint8_t a, uint8_t b)
{
    /* Port calls on another thread's port: -EPERM (destroying a default port: -EINVAL). */
    unsigned int other = (unsigned int)(th->id + 1 + a % (G.nthr - 1)) % G.nthr;
    struct thr *o = &G.thr[other];
    wpool_port_t *p = o->port;
    if (!p || other == (unsigned int)th->id)
        return;
    int rc;
    wpool_port_t *x = (a & 0x40) ? atomic_load(&o->pub_extra) : NULL;
    if (x && b % 5 < 4) {
        /* Its extra port: -EPERM, or -EINVAL once it is destroyed. */
        const char *call = (const char *[]){"dispatch", "wait", "drain", "destroy"}[b % 5];
        rc = b % 5 == 0   ? wpool_port_dispatch(x, 4)
             : b % 5 == 1 ? wpool_port_wait(x, 0)
             : b % 5 == 2 ? wpool_port_settle(x, 0)
                          : wpool_port_destroy(x);
        logf_(th, "port_%s(thread %u's extra port) -> %s", call, other, ename(rc));
        EXPECT("owner-only call on another thread's extra port", rc, 0, -EPERM, -EINVAL);
        return;
    }
    switch (b % 5) {
    case 0:
        rc = wpool_port_dispatch(p, 4);
        logf_(th, "port_dispatch(thread %u's port) -> %s", other, ename(rc));
        EXPECT("wpool_port_dispatch(not the owner)", rc, 0, -EPERM);
        if (other == 0) {
            rc = wpool_dispatch(G.pool, 4);
            EXPECT("wpool_dispatch(not the owner)", rc, 0, -EPERM);
        }
        break;
    case 1:
        rc = wpool_port_wait(p, 0);
        logf_(th, "port_wait(thread %u's port, 0) -> %s", other, ename(rc));
        EXPECT("wpool_port_wait(not the owner)", rc, 0, -EPERM);
        break;
    case 2:
        rc = wpool_port_settle(p, 0);
        logf_(th, "port_drain(thread %u's port, 0) -> %s", other, ename(rc));
        EXPECT("wpool_port_settle(not the owner)", rc, 0, -EPERM);
        break;
    case 3:
        rc = wpool_port_destroy(p);
        logf_(th, "port_destroy(thread %u's port) -> %s", other, ename(rc));
        if (other == 0)
            EXPECT("wpool_port_destroy(default port)", rc, 0, -EINVAL);
        else
            EXPECT("wpool_port_destroy(not the owner)", rc, 0, -EPERM);
        break;
    default: {
        /* Cancel another thread's record or child: any thread may. */
        struct rec *r = (a & 0x80) ? &o->kids[b % NREC] : &o->recs[(b >> 3) % NREC];
        rc = wpool_cancel(&r->task);
        logf_(th, "cancel(%s, another thread's) -> %s", rname(r), ename(rc));
        EXPECT("wpool_cancel(another thread's record)", rc, OK_ZERO, -EBUSY, -EINVAL);
        break;
    }
    }
}

static void check_drained(struct thr *th, wpool_port_t *port, const char *what)
{
    for (int i = 0; i < NREC; i++) {
        struct rec *r = &th->recs[i];
        if (r->inflight && r->sub_port == port)
            fail("%s returned success but %s, sent to that port, is still in flight", what,
                 rname(r));
    }
}

static void forget_token(struct thr *th, int slot)
{
    for (int i = 0; i < NREC; i++) {
        struct rec *r = &th->recs[i];
        if (r->tok_slot != slot)
            continue;
        if (r->inflight)
            fail("token %d destroyed while %s carrying it is in flight", slot, rname(r));
        int rc = wpool_task_set_token(&r->task, NULL);
        if (rc != 0)
            fail("wpool_task_set_token(%s, NULL) after token destroy: %d", rname(r), rc);
        r->tok_slot = -1;
    }
}

/* Sends the records aimed at `p` back to the thread's own port. */
static void retarget(struct thr *th, wpool_port_t *p, const char *why)
{
    for (int i = 0; i < NREC; i++)
        if (th->recs[i].inited && th->recs[i].target == p)
            set_port_checked(th, &th->recs[i], th->id ? th->port : NULL, why);
}

/* Every call through a destroyed port's handle returns -EINVAL. */
static void probe_dead(struct thr *th)
{
    wpool_port_t *p = th->dead;
    int rc = wpool_port_destroy(p);
    logf_(th, "port_destroy / dispatch / wait / drain / fd (destroyed extra) -> %s", ename(rc));
    EXPECT("wpool_port_destroy(destroyed port)", rc, 0, -EINVAL);
    rc = wpool_port_dispatch(p, 1);
    EXPECT("wpool_port_dispatch(destroyed port)", rc, 0, -EINVAL);
    rc = wpool_port_wait(p, 0);
    EXPECT("wpool_port_wait(destroyed port)", rc, 0, -EINVAL);
    rc = wpool_port_settle(p, 0);
    EXPECT("wpool_port_settle(destroyed port)", rc, 0, -EINVAL);
    rc = wpool_port_fd(p);
    EXPECT("wpool_port_fd(destroyed port)", rc, 0, -EINVAL);
}

/* Creates the thread's extra port, or destroys it: a destroy refused with
 * -EBUSY is retried by a later op, with dispatches in between, while the
 * other threads may still aim submits at it. */
static void op_extra_port(struct thr *th, uint8_t b)
{
    int rc;
    if (!th->port)
        return;
    if ((b & 7) == 7 && th->dead) {
        probe_dead(th);
        return;
    }
    if (!th->extra) {
        bool closed = atomic_load(&G.closed);
        rc = wpool_port_create(G.pool, &th->extra);
        logf_(th, "port_create(extra) -> %s", ename(rc));
        if (closed)
            EXPECT("wpool_port_create(after shutdown)", rc, 0, -ESHUTDOWN);
        else
            EXPECT("wpool_port_create", rc, OK_ZERO, -ESHUTDOWN, -ENOMEM, -EMFILE, -ENFILE);
        if (rc) {
            th->extra = NULL;
            return;
        }
        th->xstate = XS_OPEN;
        th->reg_extra = false;
        atomic_store(&th->pub_extra, th->extra);
        return;
    }
    int busy = 0;
    for (int i = 0; i < NREC; i++)
        busy += th->recs[i].inflight && th->recs[i].sub_port == th->extra;
    int was = th->xstate;
    rc = wpool_port_destroy(th->extra);
    logf_(th, "port_destroy(extra%s, %d in flight to it) -> %s",
          was == XS_CLOSING ? ", closing" : "", busy, ename(rc));
    if (busy)
        EXPECT("wpool_port_destroy(tasks in flight)", rc, 0, -EBUSY);
    else /* -EBUSY: on_drain, or other threads' tasks in flight or in its gate */
        EXPECT("wpool_port_destroy", rc, OK_ZERO, -EBUSY);
    if (rc == -EBUSY) {
        th->xstate = XS_CLOSING; /* every -EBUSY closes it, registered or not */
        return;
    }
    if (rc)
        return;
    if (th->dead)
        retarget(th, th->dead, "own port, the destroyed one replaced");
    th->dead = th->extra;
    th->extra = NULL;
    th->reg_extra = false;
    retarget(th, th->dead, "own port, extra destroyed");
}

/* A port of another thread, picked by `sel`: its own port (main's: the
 * default one), which lives until the end of the programs, or the extra port
 * it made last, which may be open, closing or destroyed by now. */
static wpool_port_t *foreign_port(struct thr *th, uint8_t sel, int *dest, bool *may_die)
{
    unsigned int other = (unsigned int)(th->id + 1 + sel % (G.nthr - 1)) % G.nthr;
    struct thr *o = &G.thr[other];
    *dest = (int)other;
    *may_die = false;
    wpool_port_t *p = (sel & 0x10) ? atomic_load(&o->pub_extra) : NULL;
    if (p)
        *may_die = true;
    else
        p = o->port; /* written before the start barrier */
    return p;
}

/* Readies an idle foreign record for `port` of thread `dest`: no token (its
 * token could not be destroyed before that thread drains), a priority, a
 * deadline, and noop or spinning work. */
static void foreign_prepare(struct thr *th, struct rec *r, wpool_port_t *port, int dest, uint8_t b)
{
    int rc = wpool_task_set_port(&r->task, port);
    EXPECT("wpool_task_set_port(idle foreign record)", rc, OK_ZERO);
    rc = wpool_task_set_priority(&r->task, b & 1);
    EXPECT("wpool_task_set_priority(idle foreign record)", rc, OK_ZERO);
    uint64_t now = wpool_now_ns(), dl = 0;
    switch ((b >> 1) % 4) {
    case 1:
        dl = now - 1;
        break;
    case 2:
        dl = now + 20000;
        break;
    default:
        break;
    }
    rc = wpool_task_set_deadline(&r->task, dl);
    EXPECT("wpool_task_set_deadline(idle foreign record)", rc, OK_ZERO);
    r->kind = (b & 8) ? K_SPIN : K_NOOP;
    r->spin_us = 1 + (b >> 4) % 8;
    r->dest = dest;
    r->sub_deadline = dl != 0;
    r->sub_passed = dl != 0 && dl <= wpool_now_ns();
    (void)th;
}

/* Submits foreign records to other threads' ports (submit, blocking submit
 * or a batch), which their owners may be destroying meanwhile. */
static void op_foreign(struct thr *th, uint8_t a, uint8_t b)
{
    unsigned int how = (b >> 6) % 4, n = how == 3 ? 1 + a % NFREC : 1;
    struct rec *rs[NFREC];
    struct wpool_task *tasks[NFREC];
    bool may_die[NFREC];
    unsigned int k = 0;
    for (unsigned int i = 0; i < n; i++) {
        struct rec *r = &th->frecs[(a / 4 + i) % NFREC];
        if (atomic_load(&r->fin))
            continue; /* in flight (its callback may be running: not even -EBUSY is sure) */
        int dest;
        wpool_port_t *p = foreign_port(th, (uint8_t)(a + 5 * i), &dest, &may_die[k]);
        if (!p)
            continue; /* that thread has no port */
        foreign_prepare(th, r, p, dest, (uint8_t)(b + 3 * i));
        rs[k] = r;
        tasks[k++] = &r->task;
    }
    if (!k)
        return;
    bool closed = atomic_load(&G.closed);
    for (unsigned int i = 0; i < k; i++)
        atomic_store(&rs[i]->fin, 1); /* before the call: see foreign_done */
    int tmo = how == 2 ? blocking_ms(th, b % 3) : 0;
    int rc = how == 3   ? wpool_submit_batch(G.pool, tasks, k)
             : how == 2 ? wpool_submit_wait(G.pool, tasks[0], tmo)
                        : wpool_submit(G.pool, tasks[0]);
    const char *what = how == 3   ? "wpool_submit_batch(another thread's ports)"
                       : how == 2 ? "wpool_submit_wait(another thread's port)"
                                  : "wpool_submit(another thread's port)";
    unsigned int ok = rc > 0 ? (unsigned int)rc : rc == 0 && how != 3;
    logf_(th, "%s(%s -> thread %d's %s port%s%s) -> %s",
          how == 3   ? "submit_batch"
          : how == 2 ? "submit_wait"
                     : "submit",
          rname(rs[0]), rs[0]->dest, may_die[0] ? "extra" : "own", k > 1 ? ", ..." : "",
          how == 2 ? (tmo ? (tmo == 1 ? ", ms=1" : ", ms=2") : ", ms=0") : "",
          rc > 0 ? "accepted" : ename(rc));
    if (rc == 0 && how == 3)
        fail("%s returned 0", what);
    if ((unsigned int)(rc > 0 ? rc : 0) > k)
        fail("%s accepted %d of %u", what, rc, k);
    if (ok && closed)
        fail("%s accepted %u after the pool was shut down", what, ok);
    if (!ok) {
        /* tasks[0]'s error. No token: never -ECANCELED; idle: never -EBUSY. */
        if (closed && may_die[0])
            EXPECT(what, rc, 0, -ESHUTDOWN, -EINVAL);
        else if (closed)
            EXPECT(what, rc, 0, -ESHUTDOWN);
        else if (how == 2 && may_die[0])
            EXPECT(what, rc, 0, -ETIMEDOUT, -ESHUTDOWN, -EINVAL);
        else if (how == 2)
            EXPECT(what, rc, 0, -ETIMEDOUT, -ESHUTDOWN);
        else if (may_die[0])
            EXPECT(what, rc, 0, -EAGAIN, -ESHUTDOWN, -EINVAL);
        else
            EXPECT(what, rc, 0, -EAGAIN, -ESHUTDOWN);
    }
    for (unsigned int i = 0; i < k; i++) {
        if (i < ok)
            atomic_fetch_add(&rs[i]->accepted, 1);
        else
            atomic_store(&rs[i]->fin, 0);
    }
}

static void op_group(struct thr *th, struct rec *r, uint8_t b);
static void op_complete(struct thr *th, struct rec *r, uint8_t a, uint8_t b);

static void run_op(struct thr *th, uint8_t op, uint8_t a, uint8_t b)
{
    struct rec *r = pick(th, a);
    int rc;
    switch (op % OP_COUNT) {
    case OP_INIT:
        rc = wpool_task_init(&r->task, rec_work, rec_done);
        logf_(th, "task_init(%s) -> %s", rname(r), ename(rc));
        if (r->inited && r->inflight)
            EXPECT("wpool_task_init(in flight)", rc, 0, -EBUSY);
        else
            EXPECT("wpool_task_init", rc, OK_ZERO);
        if (rc == 0) {
            r->inited = true;
            r->target = wpool_default_port(G.pool);
            r->has_deadline = false;
            r->tok_slot = -1;
            r->in_group = false;
            r->strand = -1;
            r->cls = 0;
            r->kind = (b >> 4) % K_KINDS;
            r->spin_us = 1 + b % 16;
            if (th->id != 0) /* init reset the port to the default one: take it back */
                set_port_checked(th, r, th->port, "own port");
        }
        break;
    case OP_PRIO: {
        int prio = b & 1;
        rc = wpool_task_set_priority(&r->task, prio);
        logf_(th, "set_priority(%s, %s) -> %s", rname(r), prio ? "HIGH" : "NORMAL", ename(rc));
        expect_set("wpool_task_set_priority", r, rc, false);
        break;
    }
    case OP_DEADLINE: {
        uint64_t now = wpool_now_ns(), dl = 0;
        const char *what = "none";
        switch (b % 4) {
        case 1:
            dl = now - 1;
            what = "passed";
            break;
        case 2:
            dl = now + 20000;
            what = "now+20us";
            break;
        case 3:
            dl = now + 1000000;
            what = "now+1ms";
            break;
        }
        rc = wpool_task_set_deadline(&r->task, dl);
        logf_(th, "set_deadline(%s, %s) -> %s", rname(r), what, ename(rc));
        expect_set("wpool_task_set_deadline", r, rc, false);
        if (rc == 0) {
            r->has_deadline = dl != 0;
            r->deadline = dl;
        }
        break;
    }
    case OP_TOKEN: {
        int slot = b % (NTOK + 1) - 1;
        wpool_token_t *tok = slot >= 0 ? th->tok[slot] : NULL;
        if (!tok)
            slot = -1;
        rc = wpool_task_set_token(&r->task, tok);
        logf_(th, "set_token(%s, %s%d) -> %s", rname(r), slot < 0 ? "none" : "token ", slot,
              ename(rc));
        expect_set("wpool_task_set_token", r, rc, false);
        if (rc == 0) {
            r->tok_slot = slot;
            r->in_group = false; /* one token or one group */
        }
        break;
    }
    case OP_PORT: {
        const char *pname;
        wpool_port_t *p = own_port_choice(th, b, &pname);
        set_port_checked(th, r, p, pname);
        break;
    }
    case OP_SUBMIT:
    case OP_SUBMIT2:
        own_submit(th, r, 0, 0, "");
        break;
    case OP_BATCH: {
        unsigned int n = 1 + b % 4;
        struct rec *rs[4];
        for (unsigned int i = 0; i < n; i++)
            rs[i] = &th->recs[(a + i * (1 + (b >> 2) % 3)) % NREC];
        own_batch(th, rs, n);
        break;
    }
    case OP_SUBMIT_WAIT:
        own_submit(th, r, 1, blocking_ms(th, b % 3), "");
        break;
    case OP_CANCEL: {
        struct rec *c = (b & 1) ? r->child : r;
        rc = wpool_cancel(&c->task);
        logf_(th, "cancel(%s) -> %s", rname(c), ename(rc));
        if (!c->inited)
            EXPECT("wpool_cancel(uninitialised)", rc, 0, -EINVAL);
        else if (!c->is_child && !c->inflight)
            EXPECT("wpool_cancel(idle record)", rc, 0, -EBUSY);
        else
            EXPECT("wpool_cancel", rc, OK_ZERO, -EBUSY);
        if (rc == 0 && !c->is_child)
            c->expect_cancel = true;
        break;
    }
    case OP_CANCEL_ALL:
        rc = wpool_cancel_all(G.pool);
        logf_(th, "cancel_all -> %d", rc);
        EXPECT("wpool_cancel_all", rc, OK_COUNT);
        break;
    case OP_TOK_CREATE: {
        int slot = b % NTOK;
        if (th->tok[slot])
            break;
        rc = wpool_token_create(&th->tok[slot]);
        logf_(th, "token_create(slot %d) -> %s", slot, ename(rc));
        EXPECT("wpool_token_create", rc, OK_ZERO, -ENOMEM);
        if (rc)
            th->tok[slot] = NULL;
        th->tok_cancelled[slot] = false;
        if (rc == 0 && wpool_token_cancelled(th->tok[slot]) != 0)
            fail("a new token reports cancelled");
        break;
    }
    case OP_TOK_CANCEL: {
        int slot = b % NTOK;
        if (!th->tok[slot])
            break;
        int carrying = 0;
        for (int i = 0; i < NREC; i++)
            carrying += th->recs[i].inflight && th->recs[i].tok_slot == slot;
        rc = wpool_token_cancel(th->tok[slot]);
        logf_(th, "token_cancel(slot %d) -> %d", slot, rc);
        EXPECT("wpool_token_cancel", rc, OK_COUNT);
        if (th->tok_cancelled[slot] && rc != 0)
            fail("wpool_token_cancel again returned %d, not 0", rc);
        if (rc > carrying)
            fail("wpool_token_cancel cancelled %d tasks, only %d carry it", rc, carrying);
        th->tok_cancelled[slot] = true;
        if (wpool_token_cancelled(th->tok[slot]) != 1)
            fail("a cancelled token does not report cancelled");
        break;
    }
    case OP_TOK_DESTROY: {
        int slot = b % NTOK;
        if (!th->tok[slot])
            break;
        int carrying = 0;
        for (int i = 0; i < NREC; i++)
            carrying += th->recs[i].inflight && th->recs[i].tok_slot == slot;
        rc = wpool_token_destroy(th->tok[slot]);
        logf_(th, "token_destroy(slot %d, %d in flight carry it) -> %s", slot, carrying, ename(rc));
        if (carrying)
            EXPECT("wpool_token_destroy(carried by tasks in flight)", rc, 0, -EBUSY);
        else
            EXPECT("wpool_token_destroy(carried by no task in flight)", rc, OK_ZERO);
        if (rc == 0) {
            th->tok[slot] = NULL;
            forget_token(th, slot);
        }
        break;
    }
    case OP_DISPATCH:
    case OP_DISPATCH2: {
        if (!th->port)
            break;
        wpool_port_t *p = (th->extra && (b & 0x80)) ? th->extra : th->port;
        unsigned int max = 1 + b % 8;
        rc = (th->id == 0 && p == th->port && (b & 0x40)) ? wpool_dispatch(G.pool, max)
                                                          : wpool_port_dispatch(p, max);
        logf_(th, "dispatch(%s, max %u) -> %d", p == th->port ? "own port" : "extra port", max, rc);
        EXPECT("wpool_port_dispatch", rc, OK_COUNT);
        if (rc > (int)max)
            fail("wpool_port_dispatch ran %d > max %u", rc, max);
        break;
    }
    case OP_WAIT: {
        if (!th->port)
            break;
        rc = wpool_port_wait(th->port, 0);
        logf_(th, "port_wait(own port, 0) -> %s", ename(rc));
        EXPECT("wpool_port_wait", rc, OK_ZERO, -ETIMEDOUT);
        break;
    }
    case OP_DRAIN: {
        if (!th->port)
            break;
        wpool_port_t *p = (th->extra && (b & 0x80)) ? th->extra : th->port;
        int ms = blocking_ms(th, b % 3);
        rc = wpool_port_settle(p, ms);
        logf_(th, "port_drain(%s, %d ms) -> %s", p == th->port ? "own port" : "extra port", ms,
              rc >= 0 ? "ok" : ename(rc));
        EXPECT("wpool_port_settle", rc, OK_COUNT, -ETIMEDOUT);
        if (rc >= 0)
            check_drained(th, p, "wpool_port_settle");
        break;
    }
    case OP_STATS: {
        struct wpool_statistics st;
        rc = wpool_stats(G.pool, &st);
        logf_(th, "stats -> %s", ename(rc));
        EXPECT("wpool_stats", rc, OK_ZERO, -ENOMEM);
        if (rc)
            break;
        if (st.threads != G.opts.threads || st.running > st.threads)
            fail("stats: threads %u idle %u running %u", st.threads, st.idle, st.running);
        if (st.completed + st.cancelled + st.timed_out > st.submitted)
            fail("stats: %llu done > %llu submitted",
                 (unsigned long long)(st.completed + st.cancelled + st.timed_out),
                 (unsigned long long)st.submitted);
        if (st.timing != G.opts.timing)
            fail("stats: timing %d, option %d", st.timing, G.opts.timing);
        if (!G.opts.timing && (st.utilization != 0 || st.wait.count || st.run.count))
            fail("stats: timing off but utilization %f, wait %llu, run %llu", st.utilization,
                 (unsigned long long)st.wait.count, (unsigned long long)st.run.count);
        if (st.utilization < 0 || st.wait.p50_us > st.wait.max_us || st.run.p999_us > st.run.max_us)
            fail("stats: inconsistent histograms");
        break;
    }
    case OP_STATS_RESET:
        rc = wpool_stats_reset(G.pool);
        logf_(th, "stats_reset -> %s", ename(rc));
        EXPECT("wpool_stats_reset", rc, OK_ZERO);
        break;
    case OP_NEEDS_DRAIN:
        rc = wpool_needs_drain(G.pool);
        logf_(th, "needs_drain -> %d", rc);
        if (rc != 0 && rc != 1)
            fail("wpool_needs_drain returned %d", rc);
        break;
    case OP_ON_DRAIN: {
        const char *pname;
        wpool_port_t *p = own_port_choice(th, b >> 1, &pname);
        wpool_drain_fn fn = (b & 1) ? drain_fn : NULL;
        int ps = port_state(th, p);
        rc = wpool_on_drain(G.pool, p, fn, th);
        logf_(th, "on_drain(%s, %s) -> %s", pname, fn ? "register" : "unregister", ename(rc));
        if (ps == XS_DEAD)
            EXPECT("wpool_on_drain(destroyed port)", rc, 0, -EINVAL);
        else if (ps == XS_CLOSING && fn)
            EXPECT("wpool_on_drain(port being destroyed)", rc, 0, -ESHUTDOWN);
        else if (ps == XS_CLOSING) /* unregistering is what its destroy needs */
            EXPECT("wpool_on_drain(port being destroyed, unregister)", rc, OK_ZERO, -EBUSY);
        else
            EXPECT("wpool_on_drain", rc, OK_ZERO, -EBUSY);
        if (rc == 0) {
            /* The registration is now this call's: on p, with fn. */
            th->reg_extra = fn && p && p == th->extra;
        }
        break;
    }
    case OP_SHUTDOWN: {
        int mode = b & 1, ms = blocking_ms(th, (b >> 1) % 3);
        rc = wpool_shutdown(G.pool, mode, ms);
        logf_(th, "shutdown(%s, %d ms) -> %s", mode ? "CANCEL" : "DRAIN", ms, ename(rc));
        EXPECT("wpool_shutdown", rc, OK_ZERO, -ETIMEDOUT);
        atomic_store(&G.closed, 1);
        break;
    }
    case OP_CLOSE:
        if (!(b & 1))
            break; /* rarer: close waits for every queued task */
        rc = wpool_close(G.pool);
        logf_(th, "close -> %s", ename(rc));
        EXPECT("wpool_close", rc, OK_ZERO);
        atomic_store(&G.closed, 1);
        break;
    case OP_KIND:
        if (r->inflight)
            break; /* the worker reads it */
        r->kind = b % K_KINDS;
        r->spin_us = 1 + (b >> 2) % 20;
        logf_(th, "(work of %s: %s%s)", rname(r),
              (const char *[]){"noop", "spin", "submit child", "misuse from worker",
                               "defer, complete itself", "defer to the completer"}[r->kind],
              r->kind == K_SPIN ? (r->spin_us > 10 ? " >10us" : " <=10us") : "");
        break;
    case OP_CBFLAGS:
        r->cb_flags = b % 8;
        logf_(th, "(callback of %s:%s%s%s)", rname(r), (b & 1) ? " resubmit" : "",
              (b & 2) ? " destroy(expect -EBUSY)" : "", (b & 4) ? " nested dispatch" : "");
        break;
    case OP_BAD:
        op_bad(th, a, b);
        break;
    case OP_CROSS:
        op_cross(th, a, b);
        break;
    case OP_EXTRA_PORT:
        op_extra_port(th, b);
        break;
    case OP_FOREIGN:
    case OP_FOREIGN2:
        op_foreign(th, a, b);
        break;
    case OP_GROUP:
    case OP_GROUP2:
        op_group(th, r, b);
        break;
    case OP_COMPLETE:
        op_complete(th, r, a, b);
        break;
    case OP_CLASS: {
        int cls = b % FCLASSES;
        rc = wpool_task_set_class(&r->task, cls);
        logf_(th, "set_class(%s, %d) -> %s", rname(r), cls, ename(rc));
        expect_set("wpool_task_set_class", r, rc, false);
        if (rc == 0)
            r->cls = cls;
        break;
    }
    case OP_CLASS_INFO: {
        int cls = a % FCLASSES;
        if (b % 3 == 0) {
            struct wpool_class_statistics cs;
            rc = wpool_class_stats(G.pool, cls, &cs);
            logf_(th, "class_stats(%d) -> %s", cls, ename(rc));
            EXPECT("wpool_class_stats", rc, OK_ZERO);
            if (rc == 0 && (cs.running > G.opts.threads || (cls == CAPPED && cs.running > 1)))
                fail("wpool_class_stats(%d): %u running", cls, cs.running);
        } else if (b % 3 == 1) {
            rc = wpool_class_needs_drain(G.pool, cls);
            logf_(th, "class_needs_drain(%d) -> %d", cls, rc);
            if (rc != 0 && rc != 1)
                fail("wpool_class_needs_drain(%d) returned %d", cls, rc);
        } else {
            const char *pname;
            wpool_port_t *p = own_port_choice(th, b >> 2, &pname);
            wpool_drain_fn fn = (b >> 1) & 1 ? drain_fn : NULL;
            int ps = port_state(th, p);
            rc = wpool_class_on_drain(G.pool, cls, p, fn, th);
            logf_(th, "class_on_drain(%d, %s, %s) -> %s", cls, pname,
                  fn ? "register" : "unregister", ename(rc));
            if (cls != LIMITED)
                EXPECT("wpool_class_on_drain(no max_queue)", rc, 0, -ENOTSUP);
            else if (ps == XS_DEAD)
                EXPECT("wpool_class_on_drain(destroyed port)", rc, 0, -EINVAL);
            else if (ps == XS_CLOSING && fn)
                EXPECT("wpool_class_on_drain(port being destroyed)", rc, 0, -ESHUTDOWN);
            else
                EXPECT("wpool_class_on_drain", rc, OK_ZERO, -EBUSY);
        }
        break;
    }
    case OP_STRAND: {
        int which = b % 3 - 1; /* -1: none */
        rc = wpool_task_set_strand(&r->task, which >= 0 ? &g_strands[which].s : NULL);
        logf_(th, "set_strand(%s, %d) -> %s", rname(r), which, ename(rc));
        expect_set("wpool_task_set_strand", r, rc, false);
        if (rc == 0)
            r->strand = which;
        break;
    }
    default:
        break;
    }
}

/* Deferred completion from a harness thread: a task of the pending list
 * (any thread's, racing the completer thread), or the errors: an own record
 * that is idle, uninitialised or given WPOOL_PENDING as its status. */
static void op_complete(struct thr *th, struct rec *r, uint8_t a, uint8_t b)
{
    int rc;
    if (b % 4 != 3) {
        struct wpool_task *t = defer_take(a, false);
        if (!t)
            return;
        rc = wpool_task_complete(t, WORK_RAN);
        logf_(th, "task_complete(%s) -> %s", rname((struct rec *)t), ename(rc));
        if (rc != 0)
            fail("wpool_task_complete(%s, taken from the pending list): %d", rname((struct rec *)t),
                 rc);
        return;
    }
    if (b & 4) {
        rc = wpool_task_complete(b & 8 ? NULL : &r->task, WPOOL_PENDING);
        logf_(th, "task_complete(%s, WPOOL_PENDING) -> %s", b & 8 ? "NULL" : rname(r), ename(rc));
        EXPECT("wpool_task_complete(status WPOOL_PENDING)", rc, 0, -EINVAL);
        return;
    }
    if (r->inflight)
        return; /* its phase is not ours to know */
    rc = wpool_task_complete(&r->task, WORK_RAN);
    logf_(th, "task_complete(%s, idle) -> %s", rname(r), ename(rc));
    if (r->inited)
        EXPECT("wpool_task_complete(idle record)", rc, 0, -EALREADY);
    else
        EXPECT("wpool_task_complete(uninitialised record)", rc, 0, -EINVAL);
}

/* The thread's group: init on its own port, a record joins or leaves,
 * seal, cancel, a deadline. */
static void op_group(struct thr *th, struct rec *r, uint8_t b)
{
    struct fgroup *fg = &th->grp;
    int rc;
    if (!th->port)
        return;
    switch (b % 8) {
    case 0:
    case 1: {
        rc = wpool_group_init(&fg->g, G.pool, th->port, group_done);
        logf_(th, "group_init(own port) -> %s", ename(rc));
        if (fg->open)
            EXPECT("wpool_group_init(open group)", rc, 0, -EBUSY);
        else
            EXPECT("wpool_group_init", rc, OK_ZERO);
        if (rc == 0) {
            fg->g.data = th;
            fg->open = true;
            fg->sealed = fg->cancelled = false;
            fg->deadline = 0;
            fg->joined = fg->member_done = 0;
            fg->inits++;
        }
        break;
    }
    case 2:
    case 3: {
        bool join = b & 8;
        rc = wpool_task_set_group(&r->task, join ? &fg->g : NULL);
        logf_(th, "set_group(%s, %s) -> %s", rname(r), join ? "own group" : "none", ename(rc));
        if (join && (!fg->open || !r->inited))
            EXPECT("wpool_task_set_group(group not open)", rc, 0, -EINVAL);
        else
            expect_set("wpool_task_set_group", r, rc, false);
        if (rc == 0) {
            r->in_group = join;
            r->tok_slot = -1; /* one token or one group */
        }
        break;
    }
    case 4:
        rc = wpool_group_seal(&fg->g);
        logf_(th, "group_seal -> %s", ename(rc));
        if (!fg->open)
            EXPECT("wpool_group_seal(not open)", rc, 0, -EINVAL);
        else if (fg->sealed)
            EXPECT("wpool_group_seal(sealed)", rc, 0, -EALREADY);
        else
            EXPECT("wpool_group_seal", rc, OK_ZERO);
        if (rc == 0)
            fg->sealed = true;
        break;
    case 5: {
        int members = 0;
        for (int i = 0; i < NREC; i++)
            members += th->recs[i].inflight && th->recs[i].sub_group;
        rc = wpool_group_cancel(&fg->g);
        logf_(th, "group_cancel -> %d", rc);
        if (!fg->open)
            EXPECT("wpool_group_cancel(not open)", rc, 0, -EINVAL);
        else
            EXPECT("wpool_group_cancel", rc, OK_COUNT);
        if (rc > members)
            fail("wpool_group_cancel cancelled %d, only %d members in flight", rc, members);
        if (rc >= 0)
            fg->cancelled = true;
        break;
    }
    default: {
        uint64_t dl = (b & 8) ? wpool_now_ns() + 20000 : 0;
        rc = wpool_group_set_deadline(&fg->g, dl);
        logf_(th, "group_set_deadline(%s) -> %s", dl ? "+20us" : "none", ename(rc));
        if (!fg->open)
            EXPECT("wpool_group_set_deadline(not open)", rc, 0, -EINVAL);
        else if (fg->sealed)
            EXPECT("wpool_group_set_deadline(sealed)", rc, 0, -EALREADY);
        else
            EXPECT("wpool_group_set_deadline", rc, OK_ZERO);
        if (rc == 0)
            fg->deadline = dl;
        break;
    }
    }
}

/* At the end of a thread's program: its group may not stay unsealed (it
 * could never complete, and wpool_destroy would refuse). */
static void seal_group(struct thr *th)
{
    if (!th->grp.open || th->grp.sealed)
        return;
    int rc = wpool_group_seal(&th->grp.g);
    logf_(th, "group_seal(at the end) -> %s", ename(rc));
    EXPECT("wpool_group_seal(at the end)", rc, OK_ZERO);
    th->grp.sealed = true;
}

static void init_records(struct thr *th)
{
    for (int i = 0; i < NFREC; i++) {
        struct rec *f = &th->frecs[i];
        f->owner = th;
        f->idx = i;
        f->is_foreign = true;
        f->tok_slot = -1;
        f->strand = -1;
        int rc = wpool_task_init(&f->task, rec_work, rec_done);
        EXPECT("wpool_task_init(foreign record)", rc, OK_ZERO);
        f->inited = true;
    }
    for (int i = 0; i < NREC; i++) {
        struct rec *r = &th->recs[i], *c = &th->kids[i];
        r->owner = c->owner = th;
        r->idx = c->idx = i;
        r->child = c;
        r->tok_slot = c->tok_slot = -1;
        r->strand = c->strand = -1;
        c->is_child = true;
        /* Children: submitted by workers only, to the owner's port. */
        if (th->port) {
            int rc = wpool_task_init(&c->task, rec_work, rec_done);
            EXPECT("wpool_task_init(child)", rc, OK_ZERO);
            rc = wpool_task_set_port(&c->task, th->port);
            EXPECT("wpool_task_set_port(child)", rc, OK_ZERO);
            c->inited = true;
            c->target = th->port;
            c->kind = K_NOOP;
        }
    }
}

static void run_program(struct thr *th)
{
    size_t nops = th->len / 3;
    if (nops > MAX_OPS)
        nops = MAX_OPS;
    for (size_t i = 0; i < nops; i++)
        run_op(th, th->prog[3 * i], th->prog[3 * i + 1], th->prog[3 * i + 2]);
}

/* The end of a helper: unregisters the drain callback from the port (only
 * this thread registers on it, so no notification can reach it after that),
 * drains it and destroys it. Nobody submits to it any more, so the destroy
 * succeeds: a refusal would leave a port whose notification could run on
 * another thread. */
static void finish_port(struct thr *th, wpool_port_t *p, int ps, const char *name)
{
    int rc = wpool_on_drain(G.pool, p, NULL, th);
    logf_(th, "on_drain(%s port, unregister) -> %s", name, ename(rc));
    if (ps == XS_DEAD)
        EXPECT("wpool_on_drain(destroyed port, unregister)", rc, 0, -EINVAL);
    else
        EXPECT("wpool_on_drain(own port, unregister)", rc, OK_ZERO, -EBUSY);
    rc = wpool_class_on_drain(G.pool, LIMITED, p, NULL, th);
    logf_(th, "class_on_drain(%d, %s port, unregister) -> %s", LIMITED, name, ename(rc));
    if (ps == XS_DEAD)
        EXPECT("wpool_class_on_drain(destroyed port, unregister)", rc, 0, -EINVAL);
    else
        EXPECT("wpool_class_on_drain(own port, unregister)", rc, OK_ZERO, -EBUSY);
    rc = wpool_port_settle(p, -1);
    logf_(th, "port_drain(%s, -1) -> %s", name, rc >= 0 ? "ok" : ename(rc));
    EXPECT("wpool_port_settle(-1)", rc, OK_COUNT);
    check_drained(th, p, "wpool_port_settle(-1)");
    rc = wpool_port_destroy(p);
    logf_(th, "port_destroy(%s, drained, unregistered) -> %s", name, ename(rc));
    EXPECT("wpool_port_destroy(drained, unregistered, no submitters)", rc, OK_ZERO);
}

static void *helper_main(void *arg)
{
    struct thr *th = arg;
    t_self = th;
    th->tid = pthread_self();
    int rc = wpool_port_create(G.pool, &th->port);
    logf_(th, "port_create(own) -> %s", ename(rc));
    EXPECT("wpool_port_create(helper)", rc, OK_ZERO, -ENOMEM, -EMFILE, -ENFILE);
    if (rc)
        th->port = NULL;
    init_records(th);
    pthread_barrier_wait(&G.start);
    if (th->port)
        run_program(th);
    pthread_barrier_wait(&G.end); /* other threads stop using this port */
    seal_group(th);
    if (th->extra)
        finish_port(th, th->extra, th->xstate, "extra");
    if (th->port)
        finish_port(th, th->port, XS_OPEN, "own");
    for (int s = 0; s < NTOK; s++) {
        if (!th->tok[s])
            continue;
        rc = wpool_token_destroy(th->tok[s]);
        if (rc != 0)
            fail("wpool_token_destroy of a drained thread's token: %d", rc);
        th->tok[s] = NULL;
    }
    t_self = NULL;
    return NULL;
}

/* wpool_create must refuse each of these with -EINVAL and leave *poolp alone. */
static void probe_bad_options(uint8_t b)
{
    struct wpool_options o;
    wpool_options_init(&o);
    o.threads = 1;
    switch (b % 12) {
    case 0:
        o.threads = WPOOL_MAX_THREADS + 1;
        break;
    case 1:
        o.queue_capacity = 3;
        break;
    case 2:
        o.queue_capacity = 1;
        break;
    case 3:
        o.queue_capacity = WPOOL_MAX_QUEUE_CAPACITY * 2;
        break;
    case 4:
        o.placement = 2;
        break;
    case 5:
        o.pin = 2;
        break;
    case 6:
        o.timing = 2;
        break;
    case 7:
        o.nice = 20;
        break;
    case 8:
        if ((b / 12) % 2)
            o.coalesce_us = WPOOL_MAX_COALESCE_US + 1;
        else
            o.stack_size = 1;
        break;
    case 9:
        if ((b / 12) % 4 == 3)
            o.bounded = 2;
        else
            o.reserved[(b / 12) % 4] = 1;
        break;
    case 10:
        o.drain_low_water = 1;
        break; /* with max_queue unlimited */
    default:
        o.max_queue = 4;
        o.queue_capacity = 2;
        o.bounded = 1;
        break; /* max_queue > what bounded rings hold */
    }
    wpool_t *sentinel = (wpool_t *)&G, *p = sentinel;
    int rc = wpool_create(&p, &o);
    if (rc != -EINVAL || p != sentinel)
        fail("wpool_create with bad option %d returned %d (pool %s)", b % 12, rc,
             p == sentinel ? "untouched" : "written");
    if (wpool_create(NULL, NULL) != -EINVAL)
        fail("wpool_create(NULL) != -EINVAL");
}

/* Record k of a thread: its records, their children, its foreign records. */
static struct rec *rec_at(struct thr *th, int k)
{
    if (k < NREC)
        return &th->recs[k];
    if (k < 2 * NREC)
        return &th->kids[k - NREC];
    return &th->frecs[k - 2 * NREC];
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require_work(void)
{
    unsigned long n = atomic_load(&g_completions);
    if (n == 0) {
        fprintf(stderr, "fuzz_api: FUZZ_REQUIRE_WORK: not one task completed over the inputs\n");
        _exit(1);
    }
    fprintf(stderr, "fuzz_api: %lu completions over the inputs\n", n);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *w = getenv("FUZZ_REQUIRE_WORK");
    if (w && *w && *w != '0')
        atexit(require_work);
    const char *t = getenv("FUZZ_TRACE");
    g_trace = t && *t && *t != '0';
    struct wpool_options o;
    wpool_options_init(&o);
    o.threads = 1;
    o.queue_capacity = 2;
    if (wpool_create(&g_other, &o) != 0)
        g_other = NULL;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    memset(&G, 0, sizeof(G));
    uint8_t b0 = data[0], b1 = data[1], b2 = data[2], b3 = data[3];
    unsigned int nh = 1 + ((b0 >> 4) & 1);
    bool main_drains = (b0 >> 5) & 1;
    struct wpool_options *o = &G.opts;
    wpool_options_init(o);
    o->threads = 1 + b0 % 3;
    o->placement = (b0 >> 2) & 1;
    o->timing = (b0 >> 3) & 1;
    o->queue_capacity = 2u << (b1 % 6);
    o->bounded = (b1 >> 3) & 1; /* 0: tasks beyond the ring wait in the overflow */
    if ((b1 >> 6) == 3)         /* completion coalescing, from 0 to 1 ms */
        o->coalesce_us = (b2 % 4) * 333u;
    unsigned int total = o->queue_capacity * (o->placement == WPOOL_ROUND_ROBIN ? o->threads : 1);
    if (b2 % 12 < 9) {
        o->max_queue = b2 % 12;
        if (o->max_queue >= total)
            o->max_queue = total - 1;
        if ((b3 & 1) && o->max_queue > 0)
            o->drain_low_water = (b3 >> 1) % o->max_queue;
    }
    if (b3 & 0x40)
        o->stack_size = 256 * 1024;
    o->pin = (b3 >> 7) & (b0 >> 7) & (b2 >= 0xf0);
    o->on_worker_start = hook_start;
    o->on_worker_stop = hook_stop;
    o->hook_arg = &G;
    G.nthr = 1 + nh;
    if (g_trace)
        fprintf(stderr,
                "== threads %u dispatch %s capacity %u bounded %u max_queue %u low_water %u timing "
                "%d pin %d "
                "stack %zu coalesce %u us helpers %u main_drains %d\n",
                o->threads, o->placement ? "ROUND_ROBIN" : "FIRST_FREE", o->queue_capacity,
                o->bounded, o->max_queue, o->drain_low_water, o->timing, o->pin, o->stack_size,
                o->coalesce_us, nh, main_drains);
    if ((b0 >> 6) & 1)
        probe_bad_options(b3 >> 1);

    int rc = wpool_create(&G.pool, o);
    if (rc) {
        /* Documented resource errors only; the options are valid. */
        EXPECT("wpool_create", rc, 0, -ENOMEM, -EAGAIN, -EMFILE, -ENFILE, -ENODEV);
        return 0;
    }
    if ((unsigned int)atomic_load(&G.hook_start) != o->threads)
        fail("wpool_create returned after %d of %u start hooks", atomic_load(&G.hook_start),
             o->threads);
    for (int k = 0; k < NSTRAND; k++) {
        memset(&g_strands[k], 0, sizeof(g_strands[k]));
        rc = wpool_strand_init(&g_strands[k].s, G.pool);
        EXPECT("wpool_strand_init", rc, OK_ZERO);
    }
    rc = wpool_strand_init(&g_strands[0].s, G.pool);
    EXPECT("wpool_strand_init (twice)", rc, 0, -EBUSY);
    struct wpool_class_options co = WPOOL_CLASS_OPTIONS_INIT;
    co.max_workers = 1;
    co.weight = 2;
    rc = wpool_class_create(G.pool, &co);
    if (rc != CAPPED)
        fail("wpool_class_create (capped) returned %d, not %d", rc, CAPPED);
    co = (struct wpool_class_options)WPOOL_CLASS_OPTIONS_INIT;
    co.max_queue = 4;
    co.reserved_workers = o->threads > 1;
    co.lend_after_us = (b3 >> 2) & 1 ? 100 : 0;
    rc = wpool_class_create(G.pool, &co);
    if (rc != LIMITED)
        fail("wpool_class_create (limited) returned %d, not %d", rc, LIMITED);
    atomic_store(&g_capped_inside, 0);
    D.n = D.taken = 0;
    D.stop = false;
    if (pthread_create(&D.tid, NULL, completer_main, NULL) != 0)
        fail("pthread_create (completer) failed");

    /* The program: equal slices, main first, the last one takes the rest. */
    size_t plen = size - 4, slice = plen / G.nthr;
    for (unsigned int i = 0; i < G.nthr; i++) {
        struct thr *th = &G.thr[i];
        th->id = (int)i;
        th->budget_ms = BUDGET_MS;
        th->prog = data + 4 + i * slice;
        th->len = i + 1 == G.nthr ? plen - i * slice : slice;
    }
    struct thr *m = &G.thr[0];
    t_self = m;
    m->tid = pthread_self();
    m->port = wpool_default_port(G.pool);
    init_records(m);
    pthread_barrier_init(&G.start, NULL, G.nthr);
    pthread_barrier_init(&G.end, NULL, G.nthr);
    pthread_t tids[MAX_THR];
    for (unsigned int i = 1; i < G.nthr; i++)
        if (pthread_create(&tids[i], NULL, helper_main, &G.thr[i]) != 0)
            fail("pthread_create failed");
    pthread_barrier_wait(&G.start);
    run_program(m);
    pthread_barrier_wait(&G.end);
    for (unsigned int i = 1; i < G.nthr; i++)
        pthread_join(tids[i], NULL);
    pthread_barrier_destroy(&G.start);
    pthread_barrier_destroy(&G.end);
    seal_group(m);

    /* Wait for the nested submissions, so that the counters can be compared. */
    if (main_drains) {
        /* Callbacks may resubmit to the other port: drain both until a pass
         * runs nothing. */
        for (int pass = 0;; pass++) {
            int ran = 0;
            if (m->extra) {
                rc = wpool_port_settle(m->extra, -1);
                logf_(m, "port_drain(extra, -1) -> %s", rc >= 0 ? "ok" : ename(rc));
                EXPECT("wpool_port_settle(extra, -1)", rc, OK_COUNT);
                check_drained(m, m->extra, "wpool_port_settle(extra, -1)");
                ran += rc;
            }
            rc = wpool_port_settle(m->port, -1);
            logf_(m, "port_drain(default, -1) -> %s", rc >= 0 ? "ok" : ename(rc));
            EXPECT("wpool_port_settle(default, -1)", rc, OK_COUNT);
            check_drained(m, m->port, "wpool_port_settle(default, -1)");
            ran += rc;
            if (ran == 0)
                break;
            if (pass > 100)
                fail("the main thread's ports never run dry");
        }
        if (m->extra) {
            rc = wpool_port_destroy(m->extra);
            logf_(m, "port_destroy(extra) -> %s", ename(rc));
            EXPECT("wpool_port_destroy(extra, drained)", rc, OK_ZERO, -EBUSY);
            if (rc == 0)
                m->extra = NULL;
        }
        struct wpool_statistics st;
        rc = wpool_stats(G.pool, &st);
        EXPECT("wpool_stats", rc, OK_ZERO, -ENOMEM);
        if (rc == 0) {
            unsigned long acc = 0, ran = 0, can = 0, tmo = 0;
            for (unsigned int i = 0; i < G.nthr; i++)
                for (int k = 0; k < 2 * NREC + NFREC; k++) {
                    struct rec *r = rec_at(&G.thr[i], k);
                    acc += atomic_load(&r->accepted);
                    ran += atomic_load(&r->ran_status);
                    can += atomic_load(&r->cancelled);
                    tmo += atomic_load(&r->timed_out);
                }
            logf_(m,
                  "stats after drains: submitted %llu completed %llu cancelled %llu timed_out "
                  "%llu queued %llu running %u",
                  (unsigned long long)st.submitted, (unsigned long long)st.completed,
                  (unsigned long long)st.cancelled, (unsigned long long)st.timed_out,
                  (unsigned long long)st.queued, st.running);
            if (st.submitted != acc || st.completed != ran || st.cancelled != can ||
                st.timed_out != tmo || st.queued != 0 || st.running != 0)
                fail("stats after every port drained: submitted %llu completed %llu cancelled "
                     "%llu timed_out %llu queued %llu running %u; records: accepted %lu ran %lu "
                     "cancelled %lu timed out %lu",
                     (unsigned long long)st.submitted, (unsigned long long)st.completed,
                     (unsigned long long)st.cancelled, (unsigned long long)st.timed_out,
                     (unsigned long long)st.queued, st.running, acc, ran, can, tmo);
        }
    }
    rc = wpool_destroy(G.pool);
    logf_(m, "destroy -> %s", ename(rc));
    EXPECT("wpool_destroy", rc, OK_ZERO);
    /* Destroy waited for every pending task: the list is empty. */
    pthread_mutex_lock(&D.mu);
    D.stop = true;
    pthread_cond_signal(&D.cv);
    pthread_mutex_unlock(&D.mu);
    pthread_join(D.tid, NULL);
    if (D.n)
        fail("%u tasks still pending after wpool_destroy", D.n);
    if ((unsigned int)atomic_load(&G.hook_stop) != o->threads)
        fail("after wpool_destroy %d of %u stop hooks ran", atomic_load(&G.hook_stop), o->threads);
    for (int k = 0; k < NSTRAND; k++) { /* detached by the pool's destroy */
        rc = wpool_strand_destroy(&g_strands[k].s);
        EXPECT("wpool_strand_destroy (after wpool_destroy)", rc, OK_ZERO);
        if (atomic_load(&g_strands[k].inside))
            fail("strand %d: a task still inside after wpool_destroy", k);
    }
    for (unsigned int i = 0; i < G.nthr; i++) {
        struct fgroup *fg = &G.thr[i].grp;
        if (fg->open || fg->completions != fg->inits)
            fail("thread %u: %lu groups opened, %lu completed", i, fg->inits, fg->completions);
    }
    for (int s = 0; s < NTOK; s++) {
        if (!m->tok[s])
            continue;
        rc = wpool_token_destroy(m->tok[s]);
        if (rc != 0)
            fail("wpool_token_destroy after wpool_destroy: %d (a task still carries it)", rc);
        m->tok[s] = NULL;
    }
    for (unsigned int i = 0; i < G.nthr; i++)
        for (int k = 0; k < 2 * NREC + NFREC; k++) {
            struct rec *r = rec_at(&G.thr[i], k);
            unsigned long acc = atomic_load(&r->accepted), done = atomic_load(&r->completions);
            if (acc != done)
                fail("%s: %lu submissions accepted, %lu completions (exactly once violated)",
                     rname(r), acc, done);
            if (r->inflight || atomic_load(&r->fin))
                fail("%s still in flight after wpool_destroy", rname(r));
            if (atomic_load(&r->ran_work) != atomic_load(&r->ran_status))
                fail("%s: work ran %lu times, %lu completions say it ran", rname(r),
                     (unsigned long)atomic_load(&r->ran_work),
                     (unsigned long)atomic_load(&r->ran_status));
        }
    t_self = NULL;
    G.pool = NULL;
    return 0;
}
