/* SPDX-License-Identifier: MIT */
/* Clocks: CLOCK_MONOTONIC nanoseconds (deadlines, timeouts) and cheap ticks
 * (statistics: the TSC on x86-64, nanoseconds elsewhere). */
#ifndef WP_CLOCK_H
#define WP_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t wp_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#if defined(__x86_64__)
#include <x86intrin.h>
static inline uint64_t wp_ticks(void)
{
    return __rdtsc();
}
#else
static inline uint64_t wp_ticks(void)
{
    return wp_clock_ns();
}
#endif

/* The wp_clock_ns() deadline of a timeout in milliseconds; 0 for -1 (none). */
static inline uint64_t wp_deadline_ns(int timeout_ms)
{
    return timeout_ms < 0 ? 0 : wp_clock_ns() + (uint64_t)timeout_ms * 1000000u;
}

#endif
