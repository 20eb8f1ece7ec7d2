/* SPDX-License-Identifier: MIT */
/* The ticker: arms a held completion signal once its window has passed
 * (ticker.h has the protocol). */
#include "ticker.h"
#include "clock.h"
#include "park.h"
#include "port.h"

#include <signal.h>

static bool wp_ticker_stopping(struct wp_ticker *tk)
{
    /* seq_cst: in wp_ticker_wait_held, after the store of asleep (Dekker
     * with wp_ticker_stop's store of stop, then its kick). */
    return atomic_load_explicit(&tk->stop, memory_order_seq_cst) != 0;
}

/* Sleeps until the port is HELD or the ticker is stopped. */
static void wp_ticker_wait_held(struct wp_ticker *tk)
{
    for (;;) {
        /* seq_cst: announced, then the port is re-read (Dekker with a
         * kicker's hold CAS then its exchange of asleep). */
        atomic_store_explicit(&tk->asleep, 1, memory_order_seq_cst);
        if (wp_port_held(tk->port) || wp_ticker_stopping(tk))
            break;
        wp_futex_wait(&tk->asleep, 1); /* returns once a kicker cleared it (or spuriously) */
    }
    /* Relaxed: only saves a kicker's futex wake while we are awake. */
    atomic_store_explicit(&tk->asleep, 0, memory_order_relaxed);
}

/* Sleeps for the window, or until stopped. */
static void wp_ticker_wait_window(struct wp_ticker *tk)
{
    uint64_t end = wp_clock_ns() + tk->window_ns;
    for (uint64_t now = wp_clock_ns(); now < end && !wp_ticker_stopping(tk); now = wp_clock_ns())
        wp_futex_wait_ns(&tk->stop, 0, end - now);
}

static void *wp_ticker_main(void *arg)
{
    struct wp_ticker *tk = arg;
    pthread_setname_np(pthread_self(), "wpool-ticker");
    /* release: this thread's set-up before it (pairs with wp_ticker_start's acquire). */
    atomic_store_explicit(&tk->running, 1, memory_order_release);
    wp_futex_wake(&tk->running, 1);
    while (!wp_ticker_stopping(tk)) {
        wp_ticker_wait_held(tk);
        /* Then ticks, one window at a time, while each tick finds a hold:
         * under a steady stream the kickers find it awake (no futex wake)
         * and it wakes once per window. A tick that finds none puts it back
         * to sleep. */
        for (;;) {
            wp_ticker_wait_window(tk);
            if (wp_ticker_stopping(tk) || !wp_port_held(tk->port))
                break;
            wp_port_arm_held(tk->port);
        }
    }
    return NULL;
}

int wp_ticker_start(struct wp_ticker *tk, struct wpool_port *port, uint64_t window_ns)
{
    atomic_init(&tk->asleep, 0);
    atomic_init(&tk->stop, 0);
    atomic_init(&tk->running, 0);
    atomic_init(&tk->held_since, 0);
    tk->port = port;
    tk->window_ns = window_ns;
    /* Every signal blocked, as the workers (the host's signals go to its
     * own threads); the mask is inherited. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&tk->thread, NULL, wp_ticker_main, tk);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    tk->started = rc == 0;
    /* acquire: pairs with wp_ticker_main's release; the futex rechecks the word. */
    while (tk->started && !atomic_load_explicit(&tk->running, memory_order_acquire))
        wp_futex_wait(&tk->running, 0);
    return -rc;
}

void wp_ticker_kick(struct wp_ticker *tk)
{
    atomic_store_explicit(&tk->held_since, wp_clock_ns(), memory_order_relaxed);
    /* seq_cst: after the hold's CAS (Dekker with wp_ticker_wait_held). */
    if (atomic_exchange_explicit(&tk->asleep, 0, memory_order_seq_cst))
        wp_futex_wake(&tk->asleep, 1);
}

bool wp_ticker_due(struct wp_ticker *tk)
{
    if (!wp_port_held(tk->port))
        return false;
    /* The stamp first: a kicker's later one must not wrap the difference. */
    uint64_t since = atomic_load_explicit(&tk->held_since, memory_order_relaxed);
    uint64_t now = wp_clock_ns();
    return now >= since && now - since >= tk->window_ns;
}

void wp_ticker_stop(struct wp_ticker *tk)
{
    if (!tk->started)
        return;
    /* seq_cst: before the kick's exchange of asleep (Dekker with the
     * ticker's announcement then its load of stop, wp_ticker_wait_held). */
    atomic_store_explicit(&tk->stop, 1, memory_order_seq_cst);
    wp_futex_wake(&tk->stop, 1); /* its window's wait */
    wp_ticker_kick(tk);          /* its wait for a hold */
    pthread_join(tk->thread, NULL);
    tk->started = false;
    /* A safeguard: each worker's last look finds no task and arms a hold
     * (wp_coalesce_turn), so with the workers joined none is left. */
    wp_port_arm_held(tk->port);
}
