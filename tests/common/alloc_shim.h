/* SPDX-License-Identifier: MIT */
/* The allocator shim of the unit tests that link the library statically with
 * -Wl,--wrap for every allocator entry point (malloc, calloc, realloc,
 * aligned_alloc, posix_memalign, free; with -Djemalloc, mallocx and dallocx):
 * each allocation the process makes is counted in g_allocs, each free of a
 * non-NULL pointer in g_frees, and an allocation fails (NULL, or ENOMEM from
 * posix_memalign) whenever alloc_shim_fail() says so. The including file
 * defines alloc_shim_fail() (for example a countdown to one failing call).
 * Include once per test program; test code only. */
#ifndef WP_TEST_ALLOC_SHIM_H
#define WP_TEST_ALLOC_SHIM_H

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

/* Defined by the test: true when this allocation must fail. */
static bool alloc_shim_fail(void);

static atomic_long g_allocs, g_frees;

void *__real_malloc(size_t n);
void *__real_calloc(size_t a, size_t b);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t al, size_t n);
int __real_posix_memalign(void **p, size_t al, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t a, size_t b);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t al, size_t n);
int __wrap_posix_memalign(void **p, size_t al, size_t n);
void __wrap_free(void *p);

void *__wrap_malloc(size_t n)
{
    if (alloc_shim_fail())
        return NULL;
    atomic_fetch_add(&g_allocs, 1);
    return __real_malloc(n);
}

void *__wrap_calloc(size_t a, size_t b)
{
    if (alloc_shim_fail())
        return NULL;
    atomic_fetch_add(&g_allocs, 1);
    return __real_calloc(a, b);
}

/* realloc(NULL, n) is an allocation; a resize is neither. */
void *__wrap_realloc(void *p, size_t n)
{
    if (alloc_shim_fail())
        return NULL;
    void *q = __real_realloc(p, n);
    if (q && !p)
        atomic_fetch_add(&g_allocs, 1);
    return q;
}

void *__wrap_aligned_alloc(size_t al, size_t n)
{
    if (alloc_shim_fail())
        return NULL;
    atomic_fetch_add(&g_allocs, 1);
    return __real_aligned_alloc(al, n);
}

int __wrap_posix_memalign(void **p, size_t al, size_t n)
{
    if (alloc_shim_fail())
        return ENOMEM;
    int rc = __real_posix_memalign(p, al, n);
    if (rc == 0)
        atomic_fetch_add(&g_allocs, 1);
    return rc;
}

void __wrap_free(void *p)
{
    if (p)
        atomic_fetch_add(&g_frees, 1);
    __real_free(p);
}

#ifdef WPOOL_TEST_JEMALLOC
/* Built with -Djemalloc=enabled, the library uses jemalloc's own API. */
void *__real_mallocx(size_t n, int flags);
void __real_dallocx(void *p, int flags);
void *__wrap_mallocx(size_t n, int flags);
void __wrap_dallocx(void *p, int flags);

void *__wrap_mallocx(size_t n, int flags)
{
    if (alloc_shim_fail())
        return NULL;
    atomic_fetch_add(&g_allocs, 1);
    return __real_mallocx(n, flags);
}

void __wrap_dallocx(void *p, int flags)
{
    if (p)
        atomic_fetch_add(&g_frees, 1);
    __real_dallocx(p, flags);
}
#endif

#endif
