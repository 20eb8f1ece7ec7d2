/* SPDX-License-Identifier: MIT */
/* Private view of the public struct wpool_task. Its fields are plain types so
 * that wpool.h compiles as C and C++; the library accesses the shared ones with
 * __atomic builtins, each use stating its order. */
#ifndef WP_TASK_H
#define WP_TASK_H

#include "wpool.h"

#define WP_TASK_MAGIC 0x7770746bu /* "wptk" */

enum wp_task_state {
    WP_TASK_IDLE = 0,     /* initialised, or its completion callback has started */
    WP_TASK_INFLIGHT = 1, /* accepted: queued, running, or waiting on its port */
};

static inline int wp_task_valid(const struct wpool_task *t)
{
    return t && __atomic_load_n(&t->wp_magic, __ATOMIC_RELAXED) == WP_TASK_MAGIC;
}

static inline uint32_t wp_task_state(const struct wpool_task *t)
{
    return __atomic_load_n(&t->wp_state, __ATOMIC_ACQUIRE);
}

#endif
