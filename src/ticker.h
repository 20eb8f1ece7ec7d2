/* SPDX-License-Identifier: MIT */
/*
 * The ticker: the bound on a held completion signal (the coalesce_us option).
 *
 * A worker that finishes a task for the pool's default port and finds
 * another task waiting holds the loop's wakeup back (wp_port_push). Before it
 * runs that task it hands the held signal over (wp_port_hold: QUIET -> HELD)
 * and kicks the ticker, a thread of the pool that arms the port once the
 * coalescing window has passed. So the bound holds whatever the task does:
 * one that blocks, even on the callback of the completion held, is released
 * by the ticker, not by its own worker. A worker that runs dry arms a HELD
 * port at once (wp_port_arm_held), and the owner's go-idle clears it; either
 * way the ticker then finds nothing to do.
 *
 * Sleep protocol: the ticker announces `asleep`, then re-reads the port
 * (seq_cst both); a kicker moves the port to HELD, then exchanges `asleep`
 * to 0 and wakes the futex if it was set (seq_cst both). Dekker: either the
 * ticker sees HELD or the kicker sees it asleep. Modelled in
 * tests/model/port.pml (-DCOALESCE).
 */
#ifndef WP_TICKER_H
#define WP_TICKER_H

#include "common.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct wpool_port;

struct wp_ticker {
    /* Written by kickers and the ticker; a futex word. */
    WP_ALIGNED _Atomic uint32_t asleep;
    /* 1 once wp_ticker_stop began; a futex word the ticker's timed wait
     * sleeps on. */
    _Atomic uint32_t stop;
    /* 1 once the ticker's thread runs its own code; a futex word
     * wp_ticker_start waits on. */
    _Atomic uint32_t running;
    /* wp_clock_ns of the last hand-over (relaxed: a stale value makes a
     * worker arm the port early, which is always allowed). */
    _Atomic uint64_t held_since;
    struct wpool_port *port;
    uint64_t window_ns;
    pthread_t thread;
    bool started;
};

/* Starts the ticker of port (the pool's default one) with a window of
 * window_ns, and returns once its thread runs (as wp_start_workers waits for
 * the workers: a fork right after wpool_create then finds no pool thread in
 * a runtime's thread set-up, such as a sanitizer's allocator; modelled in
 * tests/model/start.pml). 0 or a negated errno of pthread_create. */
int wp_ticker_start(struct wp_ticker *tk, struct wpool_port *port, uint64_t window_ns);
/* After wp_port_hold returned true: makes sure the ticker will arm the port
 * within its window. Any thread. */
void wp_ticker_kick(struct wp_ticker *tk);
/* The port is HELD and its window has passed (a worker arms it then, at a
 * task boundary: the bound holds even while the ticker waits for a CPU). */
bool wp_ticker_due(struct wp_ticker *tk);
/* Arms a held port at once, stops the ticker and joins it. Once no worker
 * can hold any more (they are joined). Safe on a ticker never started. */
void wp_ticker_stop(struct wp_ticker *tk);

#endif
