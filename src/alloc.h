/* SPDX-License-Identifier: MIT */
/* The library's own allocations (pool, queues, ports): cache-line aligned and
 * zeroed. Nothing here runs per task. The only file that knows jemalloc. */
#ifndef WP_ALLOC_H
#define WP_ALLOC_H

#include <stddef.h>

/* size bytes, aligned to a cache line, zero-filled; NULL on failure. */
void *wp_alloc(size_t size);
/* NULL accepted. */
void wp_free(void *ptr);

#endif
