/* SPDX-License-Identifier: MIT */
/* A cancel token's layout (token.c), shared with groups (group.c), which embed
 * one: a group's members carry its token, so a group cancel is a token
 * cancel, and the token knows its group. */
#ifndef WP_TOKEN_H
#define WP_TOKEN_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

struct wp_group;

struct wpool_token {
    pthread_mutex_t lock;
    _Atomic int cancelled;
    unsigned int generation;
    struct wpool_task *head; /* in-flight tasks carrying the token */
    struct wp_group *group;  /* the group embedding it, or NULL */
};

/* Sets up a token in place (a group's), for the current fork generation. */
void wp_token_init(struct wpool_token *tok, struct wp_group *group);
/* A token used before, made new (not cancelled, this fork generation);
 * nothing in flight may carry it. Under its lock, or before it is shared. */
void wp_token_reset(struct wpool_token *tok, struct wp_group *group);

#endif
