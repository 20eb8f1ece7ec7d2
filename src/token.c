/* SPDX-License-Identifier: MIT */
/*
 * Cancel tokens. A token keeps the tasks that carry it and are in flight on a
 * doubly linked list under its own mutex: a submit links the task (and queues
 * it) under the lock, the owner unlinks it under the lock just before its
 * completion callback, and a cancel walks the list under the lock, withdrawing
 * each task still in its queue cell (the same CAS as wpool_cancel, so exactly
 * one of a worker and the canceller gets it). Since a task is linked before it
 * can be taken and unlinked only on the owner, every pointer on the list is
 * valid while the lock is held.
 *
 * The token's lock is taken only by tasks that carry a token; the plain submit
 * path never sees it.
 */
#include "alloc.h"
#include "group.h"
#include "pool.h"
#include "port.h"
#include "task.h"
#include "token.h"

#include <errno.h>

void wp_token_init(struct wpool_token *tok, struct wp_group *group)
{
    wp_fork_init(); /* a token made before any pool must know a fork too */
    pthread_mutex_init(&tok->lock, NULL);
    atomic_init(&tok->cancelled, 0);
    tok->generation = atomic_load_explicit(&wp_fork_generation, memory_order_relaxed);
    wp_token_reset(tok, group);
}

void wp_token_reset(struct wpool_token *tok, struct wp_group *group)
{
    tok->group = group; /* the record may have moved since it was used */
    /* Relaxed: under the lock that link and cancel take. */
    atomic_store_explicit(&tok->cancelled, 0, memory_order_relaxed);
    tok->head = NULL;
    /* Written only if it changed (never, but for a fork, in a child with no
     * other thread): a submit reads it before it takes the lock. */
    unsigned int generation = atomic_load_explicit(&wp_fork_generation, memory_order_relaxed);
    if (tok->generation != generation)
        tok->generation = generation;
}

int wpool_token_create(wpool_token_t **tokp)
{
    if (!tokp)
        return -EINVAL;
    struct wpool_token *tok = wp_alloc(sizeof(*tok));
    if (!tok)
        return -ENOMEM;
    wp_token_init(tok, NULL);
    *tokp = tok;
    return 0;
}

int wpool_token_destroy(wpool_token_t *tok)
{
    if (!tok)
        return 0;
    if (wp_forked(tok->generation)) {
        wp_free(tok); /* the parent's copy: its lock may be held by a thread that is gone */
        return 0;
    }
    pthread_mutex_lock(&tok->lock);
    bool busy = tok->head != NULL;
    pthread_mutex_unlock(&tok->lock);
    if (busy)
        return -EBUSY;
    pthread_mutex_destroy(&tok->lock);
    wp_free(tok);
    return 0;
}

int wpool_token_cancel(wpool_token_t *tok)
{
    if (!tok)
        return -EINVAL;
    if (wp_forked(tok->generation))
        return -EOWNERDEAD;
    int n = 0;
    pthread_mutex_lock(&tok->lock);
    /* Release: a worker that sees the flag (acquire) before running a task
     * completes it with -ECANCELED instead. */
    atomic_store_explicit(&tok->cancelled, 1, memory_order_release);
    /* A withdrawn task stays linked: the owner unlinks it before its
     * callback, which waits for this lock. */
    for (struct wpool_task *t = tok->head; t; t = wp_t(t)->tnext)
        n += wp_task_withdraw(t) == 0;
    pthread_mutex_unlock(&tok->lock);
    return n;
}

int wpool_token_cancelled(const wpool_token_t *tok)
{
    if (!tok)
        return -EINVAL;
    /* Acquire: pairs with the release store in wpool_token_cancel. */
    return atomic_load_explicit(&tok->cancelled, memory_order_acquire);
}

bool wp_token_is_cancelled(const struct wpool_task *t)
{
    /* Acquire: pairs with the release store in wpool_token_cancel. */
    return atomic_load_explicit(&wp_t(t)->token->cancelled, memory_order_acquire) != 0;
}

int wpool_task_cancelled(const struct wpool_task *t)
{
    if (!wp_task_valid(t) || !wp_t(t)->token)
        return 0;
    return wp_token_is_cancelled(t);
}

int wp_token_link(struct wpool_task *t, struct wpool *pool)
{
    struct wpool_token *tok = wp_t(t)->token;
    if (wp_forked(tok->generation))
        return -EOWNERDEAD;
    pthread_mutex_lock(&tok->lock);
    /* Relaxed: under the lock that wpool_token_cancel sets it under. */
    if (atomic_load_explicit(&tok->cancelled, memory_order_relaxed)) {
        pthread_mutex_unlock(&tok->lock);
        return -ECANCELED;
    }
    if (tok->group) {
        int rc = wp_group_join(tok->group, t, pool);
        if (rc) {
            pthread_mutex_unlock(&tok->lock);
            return rc;
        }
    }
    wp_t(t)->tprev = NULL;
    wp_t(t)->tnext = tok->head;
    if (tok->head)
        wp_t(tok->head)->tprev = t;
    tok->head = t;
    return 0; /* the lock stays held until wp_token_unlock */
}

void wp_token_unlock(struct wpool_token *tok, struct wpool_task *t, int rc)
{
    /* t is read only if it was refused (never published): once queued it
     * may be completing on another thread. */
    if (rc) { /* not queued: still at the head, where wp_token_link put it */
        tok->head = wp_t(t)->tnext;
        if (tok->head)
            wp_t(tok->head)->tprev = NULL;
        if (tok->group)
            wp_group_unjoin(tok->group);
    }
    pthread_mutex_unlock(&tok->lock);
}

struct wp_group *wp_token_detach(struct wpool_task *t)
{
    struct wpool_token *tok = wp_t(t)->token;
    pthread_mutex_lock(&tok->lock);
    if (wp_t(t)->tprev)
        wp_t(wp_t(t)->tprev)->tnext = wp_t(t)->tnext;
    else
        tok->head = wp_t(t)->tnext;
    if (wp_t(t)->tnext)
        wp_t(wp_t(t)->tnext)->tprev = wp_t(t)->tprev;
    wp_t(t)->tprev = wp_t(t)->tnext = NULL;
    /* Under the lock: once it is released, a plain token may be destroyed
     * (wpool_token_destroy sees no task carrying it). */
    struct wp_group *group = tok->group;
    pthread_mutex_unlock(&tok->lock);
    return group;
}
