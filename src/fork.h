/* SPDX-License-Identifier: MIT */
/* Fork policy: a pool belongs to the process that created it. A forked child
 * has none of its threads, and its copy of the pool may hold locks taken by
 * threads that are gone, so every call on an inherited pool, port or token
 * returns -EOWNERDEAD (destroy frees the copy). The child bumps the
 * generation (pthread_atfork); each object remembers the one it was made in.
 * With the count of strand cancellers in flight (strand.c, reset here in the
 * child), the only process-wide state in the library. */
#ifndef WP_FORK_H
#define WP_FORK_H

#include "common.h"

#include <stdbool.h>

extern _Atomic unsigned int wp_fork_generation;

/* Registers the pthread_atfork child handler (once per process). */
void wp_fork_init(void);

/* True in a forked child for an object made under another generation. */
static inline bool wp_forked(unsigned int generation)
{
    return WP_UNLIKELY(atomic_load_explicit(&wp_fork_generation, memory_order_relaxed) !=
                       generation);
}

#endif
