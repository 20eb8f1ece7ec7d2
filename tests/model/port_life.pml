/* SPDX-License-Identifier: MIT */
/*
 * Promela model of a completion port's destruction racing concurrent submits
 * (wpool_port_destroy against wpool_submit to the same port, and the posts
 * of tasks accepted before the destroy). Checked by tests/model/check.sh;
 * docs/model.md ("port_life.pml") says what it covers and what it does not.
 * The eventfd signalling itself (pending, owed, the wakeups) is port.pml's;
 * here every post and every refund writes the eventfd once (in C only the
 * one that arms the port does, and a refund only while the owner settles, at
 * the same place: checking every write is the stronger check).
 *
 *   submitter = a thread calling wpool_submit with the port, K times:
 *               G1 wp_port_gate_enter: one CAS on the gate word, count + 1,
 *               refused without a trace once CLOSING or DEAD is set; then
 *               the task is queued (accepted), or refused after all (full
 *               bounded ring, pool closed): wp_port_refund, R1 posting += 1,
 *               R2 count -= 1, R3 write(efd), R4 posting -= 1 and the futex
 *               wake of the owner when that left posting == WAITER
 *   poster    = whoever posts one accepted task's completion: its worker,
 *               announcing the post in its own guard word (W1 guard = port,
 *               W2 push on head, W3 write(efd), W4 guard = none), or a
 *               canceller, counted in posting (C1 posting += 1, C2 push, C3
 *               write(efd), C4 posting -= 1 and the wake as R4); which one
 *               is the model's choice, per task
 *   owner     = the port's owner, looping: dispatch (take the whole stack,
 *               run each callback, completed += 1), or an attempt to
 *               destroy: D1 fetch_or CLOSING into the gate word, which
 *               returns the count; D2 count - completed != 0 -> EBUSY (back
 *               to the loop, try again later); D3 wp_port_quiesce: wait
 *               until no guard names the port, then for posting's count to
 *               reach 0 (WAITER bit, futex wait); D4 close(efd), DEAD:
 *               returns 0
 *
 * One poster process per accepted task, so a task may be completed at any
 * moment after it was queued, in any order relative to other tasks and to
 * its submitter's later submits: any number of workers.
 *
 * Memory model: sequentially consistent. In the C code: the gate word's
 * entry CAS is relaxed and the destroy's fetch_or acquire, all RMWs on one
 * word, so each count is ordered before or after the fetch_or (an entry
 * after it fails its CAS and sees the flag). A refund's decrement is a
 * release (seq_cst) RMW: a destroy whose fetch_or reads from or follows it
 * sees the refunder's posting increment (R1, sequenced before). A worker's
 * guard stores are release stores, the first sequenced before the push (a
 * seq_cst RMW) that the owner's acquire exchange of head reads from: the
 * owner's later acquire load of the guard sees it or a later store, and
 * whatever later store it reads makes the worker's write(efd) visible. C1 is
 * relaxed but sequenced before the push, the same way; C4 is a release that
 * pairs with the owner's acquire loads in D3.
 *
 * Build flags (spin -D...):
 *   NS, K        submitters, tasks per submitter (default 2, 1; NS*K <= 8)
 *   SPURIOUS     futex waits of D3 that may return with no wake (default 1)
 *   BROKEN       the 0.2 code: a submitter checks state == DEAD (no count)
 *                and counts itself only later, just before the post;
 *                destroy checks the count, closes efd, sets DEAD (no
 *                CLOSING, no wait for posters). Must fail.
 *   NO_QUIESCE   no D3. Must fail: a write on the closed eventfd.
 *   NO_GUARDS    D3 waits for posting only, not for the workers' guards.
 *                Must fail: a worker's write on the closed eventfd.
 *   BARE_REFUND  a refund without R1/R4 (not counted in posting). Must
 *                fail: the refund's write on the closed eventfd.
 *   LATE_POSTING a refund that lowers the count (R2) before it counts
 *                itself in posting (R1). Must fail the same way.
 *   LATE_GUARD   a worker that announces its post (W1) after the push.
 *                Must fail: the worker's write on the closed eventfd.
 *   ASSERT_WAKE  assert that a poster's futex wake comes before destroy
 *                returns. Fails, and that is no bug: it shows the wake may
 *                land on a destroyed port (see docs/model.md).
 */

#ifndef NS
#define NS 2
#endif
#ifndef K
#define K 1
#endif
#ifndef SPURIOUS
#define SPURIOUS 1
#endif

#define TOTAL (NS * K)  /* at most 8: tasks are bits of a byte */

#define LIVE    0
#define CLOSING 1
#define DEAD    2

#define WAITER 128      /* in posting: the owner waits for the count */
#define COUNT  127

/* The port */
byte state = LIVE;  /* the gate word's CLOSING and DEAD flags */
byte count;         /* the gate word's count of tasks sent to the port */
byte completed;     /* written only by the owner */
byte posting;       /* non-worker posters and refunders, | WAITER */
byte guard;         /* the workers' guard words, as the set of tasks whose
                       worker names the port in its guard */
byte head;          /* the Treiber stack, as the set of tasks on it */
bool efd_open = true;

/* The futex: the owner asleep in D3's wait on posting */
bool asleep;

/* Ghosts */
byte accepted;      /* submits that returned 0 (the task was queued) */
byte acc;           /* the set of accepted tasks */
byte ran;           /* the set of tasks whose callback ran */
byte alive = NS;    /* submitter and poster processes not yet finished */
bool destroyed;     /* wpool_port_destroy returned 0 */

/* The end of a post counted in posting (C4, R4). After it the thread
 * touches nothing of the port but the futex wake, a syscall on the address
 * of posting that the C code computes before its decrement: that wake may
 * come after destroy returned (ASSERT_WAKE shows it). */
inline unpost() {
    atomic {
        posting--;
        wake = (posting == WAITER)
    };
    if
    :: wake ->
#ifdef ASSERT_WAKE
        assert(!destroyed);
#endif
        asleep = false                  /* futex_wake(&posting, 1) */
    :: else
    fi
}

/* The completion of task t: wp_port_post by its worker (with its guard) or
 * by a canceller (counted in posting). */
proctype poster(byte t) {
    bool wake;
#ifdef BROKEN
    count++;                            /* counted only now */
#endif
    if
    ::
#ifndef LATE_GUARD
        guard = guard | (1 << t);                               /* W1 */
        head = head | (1 << t);                                 /* W2 */
#else
        head = head | (1 << t);
        guard = guard | (1 << t);
#endif
        assert(efd_open);       /* W3, write(efd): never after close */
        guard = guard & ~(1 << t)                               /* W4 */
    :: posting++;                                               /* C1 */
        head = head | (1 << t);                                 /* C2 */
        assert(efd_open);                                       /* C3 */
        unpost()                                                /* C4 */
    fi;
    alive--
}

/* wpool_submit to the port, K times. */
proctype submitter(byte s) {
    byte k;
    bool in, wake;
    do
    :: k < K ->
#ifndef BROKEN
        atomic {                        /* G1 wp_port_gate_enter: CAS count + 1 */
            in = (state == LIVE);
            if
            :: in -> count++
            :: else                     /* CLOSING/DEAD: refused, no trace */
            fi
        };
        if
        :: !in
        :: in ->
            if
            :: atomic {                 /* queued: accepted */
                    accepted++; acc = acc | (1 << (s * K + k));
                    alive++;
                    run poster(s * K + k)
                }
            :: skip ->                  /* refused after all: wp_port_refund */
#if defined(LATE_POSTING)
                count--;
                posting++;
#else
#ifndef BARE_REFUND
                posting++;                                      /* R1 */
#endif
                count--;                                        /* R2 */
#endif
                assert(efd_open);       /* R3, write(efd) */
#ifndef BARE_REFUND
                unpost()                                        /* R4 */
#endif
            fi
        fi;
#else
        atomic {
            if
            :: state != DEAD ->
                accepted++; acc = acc | (1 << (s * K + k));
                alive++;
                run poster(s * K + k)
            :: else                     /* refused, nothing to undo */
            fi
        };
#endif
        k++
    :: else -> break
    od;
    alive--
}

/* wpool_port_dispatch: one exchange takes the whole stack; the callbacks
 * run on the owner (completed is the owner's, no other process reads it,
 * so collect and the callbacks may be one step). */
inline dispatch() {
    d_step {
        i = 0;
        do
        :: i < TOTAL ->
            if
            :: head & (1 << i) ->
                assert(!(ran & (1 << i)));   /* exactly once */
                ran = ran | (1 << i);
                completed++
            :: else
            fi;
            i++
        :: else -> break
        od;
        head = 0;
        i = 0
    }
}

/* D3, wp_port_quiesce: every worker's guard, then posting's count. */
inline quiesce() {
#ifndef NO_GUARDS
    /* Each guard is read until it no longer names the port (the C code
     * yields and sleeps between looks: a blocking wait here). */
    i = 0;
    do
    :: i < TOTAL -> (guard & (1 << i)) == 0; i++
    :: else -> break
    od;
#endif
    v = posting;                                    /* acquire load */
    do
    :: (v & COUNT) == 0 -> break
    :: else ->
        if
        :: (v & WAITER) == 0 ->
            atomic {                                /* CAS v -> v | WAITER */
                if
                :: posting == v -> posting = v | WAITER; v = v | WAITER
                :: else -> v = posting              /* failed: fresh look */
                fi
            }
        :: else ->
            /* futex_wait(&posting, v): sleeps iff posting == v, in one step;
             * returns on a wake, or (at most SPURIOUS times) on its own */
            atomic {
                if
                :: posting == v -> asleep = true
                :: else
                fi
            };
            if
            :: !asleep
            :: asleep && spurious > 0 -> asleep = false; spurious--
            fi;
            v = posting                             /* acquire load */
        fi
    od
}

active proctype owner() {
    byte i, v, spurious = SPURIOUS;
    bool busy;
    do
    :: head != 0 -> dispatch()
    :: skip ->                          /* wpool_port_destroy */
        atomic {                        /* D1 fetch_or CLOSING, D2 */
#ifndef BROKEN
            state = CLOSING;
#endif
            busy = (count - completed != 0);
            /* EBUSY with every other process finished and nothing left to
             * dispatch: nothing can change, EBUSY for ever, a completion
             * was lost (the owner could never destroy). */
            assert(!busy || alive > 0 || head != 0)
        };
        if
        :: busy -> busy = false         /* EBUSY: back to the loop */
        :: else -> break
        fi
    od;
#if !defined(BROKEN) && !defined(NO_QUIESCE)
    quiesce();                                                  /* D3 */
#endif
    atomic {                                                    /* D4 */
        efd_open = false;
        state = DEAD;
        destroyed = true;
        /* every accepted task ran exactly once, none is left posted */
        assert(accepted == completed && ran == acc && head == 0)
    };
    /* The end (not a step of the C code): once every submitter and poster
     * is done, refused submits left no count, and nothing ran after the
     * destroy. */
    alive == 0;
    assert(count == accepted && completed == accepted && ran == acc && head == 0)
}

/* Create the submitters (the owner is active). */
init {
    byte s;
    atomic {
        do
        :: s < NS -> run submitter(s); s++
        :: else -> break
        od
    }
}
