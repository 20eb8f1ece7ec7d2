/* SPDX-License-Identifier: MIT */
/* Internal helpers shared by every module. Private to the library. */
#ifndef WP_COMMON_H
#define WP_COMMON_H

#include <stdalign.h>
#include <stdatomic.h>

/* Hot fields that different threads write go on separate cache lines. 64 bytes
 * on x86-64 and most arm64 parts; adjacent-line prefetch makes 128 better on
 * some Intel parts, but 64 keeps the structures small. */
#define WP_CACHELINE 64
#define WP_ALIGNED   alignas(WP_CACHELINE)

#define WP_LIKELY(x)   __builtin_expect(!!(x), 1)
#define WP_UNLIKELY(x) __builtin_expect(!!(x), 0)

static inline void wp_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield" ::: "memory");
#endif
}

#endif
