/* SPDX-License-Identifier: MIT */
/* Groups (group.c): the hooks the token and the port call for a member. */
#ifndef WP_GROUP_H
#define WP_GROUP_H

#include "wpool.h"

struct wp_group;

/* A member's submit links it to the group's token (under the token's lock):
 * joins, or -ESHUTDOWN once the group is sealed. The member's deadline
 * becomes the earlier of its own and the group's. */
int wp_group_join(struct wp_group *g, struct wpool_task *t);
/* The joined member's submit was refused (the lock still held). */
void wp_group_unjoin(struct wp_group *g);
/* A member's completion callback has returned (status: the member's):
 * counts it out, and posts the group's completion if it was the last one of
 * a sealed group. Takes the token's lock. */
void wp_group_member_done(struct wp_group *g, int status);

#endif
