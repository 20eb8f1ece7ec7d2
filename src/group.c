/* SPDX-License-Identifier: MIT */
/*
 * Groups: one completion, on the group's port, once every member has had its
 * own completion and the group is sealed (Promise.all, GCD's
 * dispatch_group_notify, without blocking anyone).
 *
 * A group embeds a cancel token (token.h), and its members carry it: a
 * member joins under the token's lock when its submit links it to the token
 * (counted in `members`; refused once sealed or cancelled), leaves the count
 * under the same lock when its submit is refused after all, and is counted
 * out under the lock after its own completion callback has returned
 * (wp_port_complete). The seal takes the lock too. So `members`, `sealed`
 * and the result counters are plain fields under one lock, and exactly one
 * of the seal and the last member's completion sees "sealed and nobody
 * left": that one posts the group's completion record (`note`) to its port,
 * where it was counted in flight by wpool_group_init. A group cancel is the
 * token's cancel: queued members are withdrawn (-ECANCELED), running ones
 * see wpool_task_cancelled().
 *
 * The pool counts groups not yet sealed; wpool_destroy refuses (-EBUSY)
 * while any is, since such a group could never complete.
 */
#include "group.h"
#include "pool.h"
#include "port.h"
#include "task.h"
#include "token.h"

#include <errno.h>
#include <stddef.h>

#define WP_GROUP_MAGIC 0x77706770u /* "wpgp" */

enum wp_group_state {
    WP_GROUP_IDLE = 0, /* never initialised, or its completion has started */
    WP_GROUP_OPEN = 1, /* initialised: members may join until sealed */
};

struct __attribute__((__may_alias__)) wp_group {
    void *data; /* the caller's */
    struct wpool_token token;
    /* Under token.lock: */
    uint64_t members; /* joined, their completion not yet run */
    uint64_t succeeded, failed, cancelled, timed_out;
    int first_error;
    bool sealed;
    /* Fixed from init to completion: */
    wpool_group_fn done;
    struct wpool *pool;
    struct wpool_port *port;
    uint64_t deadline; /* given to members as they join (0: none) */
    _Atomic uint32_t state;
    _Atomic uint32_t magic;
    struct wpool_task note; /* the group's completion, posted to port */
};

static_assert(sizeof(struct wp_group) <= sizeof(struct wpool_group),
              "the private layout must fit the public record");
static_assert(_Alignof(struct wp_group) <= _Alignof(struct wpool_group),
              "the private layout may not need a stricter alignment than the public record");
static_assert(offsetof(struct wp_group, data) == offsetof(struct wpool_group, data),
              "data is where the caller finds it");

#define wp_g(group) ((struct wp_group *)(group))

static bool wp_group_valid(const struct wpool_group *group)
{
    return group &&
           atomic_load_explicit(&wp_g(group)->magic, memory_order_relaxed) == WP_GROUP_MAGIC;
}

/* Acquire: pairs with the release store of IDLE in wp_group_note_done (the
 * completion, on another thread, is done with the record). */
static uint32_t wp_group_state(const struct wpool_group *group)
{
    return atomic_load_explicit(&wp_g(group)->state, memory_order_acquire);
}

static int wp_group_note_work(struct wpool_task *t)
{
    (void)t; /* never queued: the note is only ever posted */
    return 0;
}

/* The group's completion record ran on its port: hand the result over. */
static void wp_group_note_done(struct wpool_task *note, int status)
{
    (void)status;
    struct wp_group *g = note->data;
    struct wpool_group_result r = {
        .succeeded = g->succeeded,
        .failed = g->failed,
        .cancelled = g->cancelled,
        .timed_out = g->timed_out,
        .first_error = g->first_error,
    };
    wpool_group_fn done = g->done;
    /* The token's lock stays initialised for the record's life: a task that
     * still carries the group may be submitted later (refused: sealed), and
     * a re-initialisation takes it. Release: the record is idle before the callback, which may
     * re-initialise or free it; nothing below touches it. */
    atomic_store_explicit(&g->state, WP_GROUP_IDLE, memory_order_release);
    done((struct wpool_group *)g, &r);
}

/* Sealed and nobody left: posts the completion (counted on the port at
 * init). The caller has released the lock; nothing may touch g after. */
static void wp_group_fire(struct wp_group *g)
{
    struct wp_task *n = wp_t(&g->note);
    atomic_store_explicit(&n->port, g->port, memory_order_relaxed); /* the poster's */
    wp_task_finish(&g->note, g->first_error);
    wp_port_post(g->port, &g->note, NULL);
}

int wpool_group_init(struct wpool_group *group, wpool_t *pool, wpool_port_t *port,
                     wpool_group_fn done)
{
    if (!group || !pool || !done)
        return -EINVAL;
    if (wp_pool_forked(pool))
        return -EOWNERDEAD;
    if (wp_group_valid(group) && wp_group_state(group) != WP_GROUP_IDLE)
        return -EBUSY;
    if (!port)
        port = wpool_default_port(pool);
    if (wp_port_pool(port) != pool)
        return -EINVAL;
    /* The completion is in flight on its port from now on: a destroy of the
     * port waits for it (-EBUSY), a settle runs it. */
    if (port == wpool_default_port(pool)) {
        wp_port_count(port);
    } else {
        int rc = wp_port_gate_enter(port);
        if (rc)
            return rc;
    }
    struct wp_group *g = wp_g(group);
    /* A record used before keeps its token's lock: a task that still carries
     * the group may be submitting right now (it joins the group once open).
     * Not a record moved since (its lock was copied) or inherited through
     * fork() (its lock may have been held by a thread that is gone). */
    bool reused = wp_group_valid(group) && g->token.group == g && !wp_forked(g->token.generation);
    if (reused) {
        pthread_mutex_lock(&g->token.lock);
        wp_token_reset(&g->token, g);
    } else {
        wp_token_init(&g->token, g);
    }
    g->members = 0;
    g->succeeded = g->failed = g->cancelled = g->timed_out = 0;
    g->first_error = 0;
    g->sealed = false;
    g->done = done;
    g->pool = pool;
    g->port = port;
    g->deadline = 0;
    wpool_task_init(&g->note, wp_group_note_work, wp_group_note_done);
    g->note.data = g;
    wp_pool_group_opened(pool);
    atomic_store_explicit(&g->state, WP_GROUP_OPEN, memory_order_relaxed);
    atomic_store_explicit(&g->magic, WP_GROUP_MAGIC, memory_order_relaxed);
    if (reused)
        pthread_mutex_unlock(&g->token.lock);
    return 0;
}

/* Open (initialised, completion not started) or an error. */
static int wp_group_check(const struct wpool_group *group)
{
    if (!wp_group_valid(group) || wp_group_state(group) != WP_GROUP_OPEN)
        return -EINVAL;
    return wp_forked(wp_g(group)->token.generation) ? -EOWNERDEAD : 0;
}

int wpool_task_set_group(struct wpool_task *task, struct wpool_group *group)
{
    int rc = group ? wp_group_check(group) : 0;
    if (rc)
        return rc;
    return wpool_task_set_token(task, group ? &wp_g(group)->token : NULL);
}

int wpool_group_set_deadline(struct wpool_group *group, uint64_t deadline_ns)
{
    int rc = wp_group_check(group);
    if (rc)
        return rc;
    struct wp_group *g = wp_g(group);
    pthread_mutex_lock(&g->token.lock);
    if (g->sealed)
        rc = -EALREADY;
    else
        g->deadline = deadline_ns;
    pthread_mutex_unlock(&g->token.lock);
    return rc;
}

int wpool_group_seal(struct wpool_group *group)
{
    int rc = wp_group_check(group);
    if (rc)
        return rc;
    struct wp_group *g = wp_g(group);
    pthread_mutex_lock(&g->token.lock);
    bool already = g->sealed, fire = !already && g->members == 0;
    g->sealed = true;
    /* Before the unlock: once it is released, the last member's completion
     * may run the group's on another thread, which may free the record. */
    if (!already)
        wp_pool_group_sealed(g->pool);
    pthread_mutex_unlock(&g->token.lock);
    if (already)
        return -EALREADY;
    if (fire) /* nobody left: only this call can post it */
        wp_group_fire(g);
    return 0;
}

int wpool_group_cancel(struct wpool_group *group)
{
    int rc = wp_group_check(group);
    if (rc)
        return rc;
    return wpool_token_cancel(&wp_g(group)->token);
}

int wp_group_join(struct wp_group *g, struct wpool_task *t, struct wpool *pool)
{
    if (g->pool != pool)
        return -EINVAL; /* its completion would outlive the other pool */
    if (g->sealed)
        return -ESHUTDOWN;
    g->members++;
    uint64_t own = wp_t(t)->deadline;
    if (g->deadline && (!own || own > g->deadline))
        wp_t(t)->deadline = g->deadline;
    return 0;
}

void wp_group_unjoin(struct wp_group *g)
{
    g->members--; /* not sealed: the lock was held since the join */
}

void wp_group_member_done(struct wp_group *g, int status)
{
    pthread_mutex_lock(&g->token.lock);
    if (status == 0)
        g->succeeded++;
    else if (status == -ECANCELED)
        g->cancelled++;
    else if (status == -ETIMEDOUT)
        g->timed_out++;
    else
        g->failed++;
    if (status && !g->first_error)
        g->first_error = status;
    bool fire = --g->members == 0 && g->sealed;
    pthread_mutex_unlock(&g->token.lock);
    if (fire)
        wp_group_fire(g);
}
