/* SPDX-License-Identifier: MIT */
#include "alloc.h"
#include "common.h"

#include <stdlib.h>
#include <string.h>

#ifdef WPOOL_USE_JEMALLOC
/* Debian's jemalloc exports its non-standard API unprefixed. Built only with
 * -Djemalloc=enabled, because linking it replaces malloc for the whole host
 * process: an application choice, not a library default. */
#include <jemalloc/jemalloc.h>

void *wp_alloc(size_t size)
{
    if (size == 0)
        size = 1;
    return mallocx(size, MALLOCX_ALIGN(WP_CACHELINE) | MALLOCX_ZERO);
}

void wp_free(void *ptr)
{
    if (ptr)
        dallocx(ptr, 0);
}
#else
void *wp_alloc(size_t size)
{
    /* aligned_alloc wants a multiple of the alignment. */
    size_t rounded = (size + WP_CACHELINE - 1) & ~(size_t)(WP_CACHELINE - 1);
    if (rounded < size)
        return NULL;
    if (rounded == 0)
        rounded = WP_CACHELINE;
    void *p = aligned_alloc(WP_CACHELINE, rounded);
    if (p)
        memset(p, 0, rounded);
    return p;
}

void wp_free(void *ptr)
{
    free(ptr);
}
#endif
