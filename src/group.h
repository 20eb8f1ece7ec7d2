/* SPDX-License-Identifier: MIT */
/* Groups (group.c): the hooks the token and the port call for a member. */
#ifndef WP_GROUP_H
#define WP_GROUP_H

#include "wpool.h"

struct wp_group;

/* A member's submit to pool links it to the group's token (under the
 * token's lock): joins, or -ESHUTDOWN once the group is sealed, -EINVAL if
 * the group is another pool's. The member's deadline becomes the earlier of
 * its own and the group's (the submit restores it if it is refused). */
struct wpool;
int wp_group_join(struct wp_group *g, struct wpool_task *t, struct wpool *pool);
/* The joined member's submit was refused (the lock still held). */
void wp_group_unjoin(struct wp_group *g);
/* A member's completion callback has returned (status: the member's):
 * counts it out, and posts the group's completion if it was the last one of
 * a sealed group. Takes the token's lock. */
void wp_group_member_done(struct wp_group *g, int status);

#endif
