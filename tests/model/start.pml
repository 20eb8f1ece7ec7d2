/* SPDX-License-Identifier: MIT */
/*
 * Promela model of the ticker's start handshake (ticker.c): wp_ticker_start
 * returns only once the ticker's thread runs its own code, so that a fork
 * after wpool_create copies no pool thread in the middle of its runtime
 * set-up. Checked by tests/model/check.sh; docs/model.md, start.pml.
 *
 *   creator = wp_ticker_start: pthread_create, then, while the futex word
 *             `running` reads 0, futex_wait(&running, 0); then it returns
 *             (the model's `returned`, where the caller may fork)
 *   ticker  = wp_ticker_main: its runtime set-up (`setup`, ASan's thread
 *             init), then stores running = 1 (release) and
 *             futex_wake(&running, 1)
 *
 * The futex: futex_wait(addr, v) compares and enqueues in one step (the
 * kernel does both under the futex's hash-bucket lock) and sleeps until a
 * wake dequeues it, or returns at once if the word is not v; it may also
 * return on its own (SPURIOUS times at most).
 *
 * Properties: the creator returns (no invalid end state: no lost wake) and,
 * when it does, the ticker's set-up is over (the assertion).
 *
 * Build flags (spin -D...):
 *   SPURIOUS   spurious futex returns allowed (default 1)
 *   WAKE_FIRST the ticker wakes before it stores (must fail: the creator
 *              sleeps through the only wake)
 *   NO_WAIT    the creator does not wait (must fail: it returns while the
 *              ticker is still in its set-up)
 */
#ifndef SPURIOUS
#define SPURIOUS 1
#endif

bit running;  /* the futex word (wp_ticker.running) */
bit queued;   /* the creator sleeps in futex_wait(&running, 0) */
bit setup;    /* the ticker is in its runtime set-up */
bit returned; /* wp_ticker_start returned */
byte spurious;

inline futex_wake() {
    queued = 0
}

proctype ticker() {
    /* setup = 1 from its creation: the runtime's thread set-up */
    setup = 0;
#ifdef WAKE_FIRST
    futex_wake();
    running = 1;
#else
    running = 1;
    futex_wake();
#endif
}

init {
    atomic { setup = 1; run ticker() } /* pthread_create: the thread exists */
#ifndef NO_WAIT
    do
    :: running == 1 -> break
    :: else ->
        /* futex_wait(&running, 0): compare and enqueue in one step */
        atomic {
            if
            :: running == 0 -> queued = 1
            :: else -> skip
            fi
        };
        if
        :: queued == 0 -> skip              /* woken (or never slept) */
        :: spurious < SPURIOUS -> atomic { spurious++; queued = 0 }
        fi
    od;
#endif
    returned = 1;
    assert(!setup)
}
