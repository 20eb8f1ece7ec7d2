/* SPDX-License-Identifier: MIT */
/*
 * The plain peer: the pool most people write first. One mutex + condvar task
 * queue, N workers; finished tasks go on a mutex-protected list and an eventfd
 * is written when that list goes from empty to non-empty; the owner polls the
 * eventfd and runs the completions. About a hundred lines, no tricks.
 */
#ifndef PLAIN_POOL_H
#define PLAIN_POOL_H

struct plain_task {
    struct plain_task *next;
    void (*work)(struct plain_task *t);
    void (*done)(struct plain_task *t);
};

struct plain_pool;

/* 0 or a negative errno. */
int plain_pool_create(struct plain_pool **poolp, unsigned int threads);
/* Any thread. Never fails: the queue is an unbounded intrusive list. */
void plain_pool_submit(struct plain_pool *pool, struct plain_task *t);
/* Readable while completions wait. */
int plain_pool_fd(const struct plain_pool *pool);
/* Owner: runs every waiting completion; returns how many ran. */
unsigned int plain_pool_dispatch(struct plain_pool *pool);
/* Runs what is queued, joins the workers, frees. Completions left undispatched
 * are dropped. */
void plain_pool_destroy(struct plain_pool *pool);

#endif
