/* SPDX-License-Identifier: MIT */
/*
 * Promela model of a completion port's destruction racing concurrent submits
 * (wpool_port_destroy against wpool_submit to the same port, and the workers'
 * wp_port_post of tasks accepted before the destroy). Checked by
 * tests/model/check.sh; docs/model.md ("port_life.pml") says what it covers
 * and what it does not. The eventfd signalling itself (pending, owed, the
 * wakeups) is port.pml's; here every post writes the eventfd once (in C
 * only the post that arms the port does, at the same place: checking every
 * post's write is the stronger check).
 *
 *   submitter = a thread calling wpool_submit with the port, K times:
 *               S1 submitted += 1 (RMW); S2 load state: not LIVE -> undo
 *               (submitted -= 1) and refuse; LIVE -> accepted, queued
 *   worker    = the worker that runs one accepted task, then wp_port_post:
 *               P1 posting += 1; P2 push on head; P3 write(efd); P4
 *               posting -= 1, and the futex wake of the owner when that
 *               left posting == WAITER
 *   owner     = the port's owner, looping: dispatch (take the whole stack,
 *               run each callback, completed += 1), or an attempt to
 *               destroy: D1 state = CLOSING; D2 submitted - completed != 0
 *               -> EBUSY (back to the loop, try again later); D3 wait for
 *               posting's count to reach 0 (WAITER bit, futex wait, as
 *               wp_port_quiesce); D4 close(efd), state = DEAD: returns 0
 *
 * One worker process per accepted task, so a task may run and post at any
 * moment after it was queued, in any order relative to other tasks and to
 * its submitter's later submits: any number of workers.
 *
 * Memory model: sequentially consistent. submitted, state, head and the
 * CAS/RMWs on posting are seq_cst in the C code. posting's increment (P1) is
 * relaxed but sequenced before the push (P2, a seq_cst RMW) that the owner's
 * exchange of head reads from, so every load of posting by the owner after
 * it has taken that task sees the increment (or a later value); P4 is a
 * release that pairs with the owner's acquire loads in D3. GATE: the gate
 * word's entry CAS and the destroy's fetch_or are relaxed in port.c; all on
 * one word, so each successful entry is ordered before the destroy's
 * fetch_or of CLOSING (an entry after it would fail its CAS and see the
 * flag), and the
 * destroy's acquire load of the gate after it synchronises with every leave
 * (release) it reads or follows, which makes that submitter's count in
 * submitted visible to the destroy's check.
 *
 * Build flags (spin -D...):
 *   NS, K        submitters, tasks per submitter (default 2, 1; NS*K <= 8)
 *   SPURIOUS     futex waits of D3 that may return with no wake (default 1)
 *   BROKEN       the code before this protocol: a submitter checks
 *                state == DEAD (no count), and counts itself in submitted
 *                only later, just before the post; destroy checks
 *                submitted - completed == 0, closes efd, sets DEAD (no
 *                CLOSING, no wait for posting). Must fail.
 *   NO_QUIESCE   the correct counting, but no D3 (no wait for posting).
 *                Must fail: a write on the closed eventfd.
 *   GATE         the submit side as port.c realises it: a submitter enters
 *                a gate word (a CAS of count + 1, refused without a trace
 *                once CLOSING or DEAD is set), counts the task in
 *                submitted, queues it (or the queue refuses it), and leaves
 *                the gate (fetch_sub);
 *                destroy sets CLOSING on the gate word and is busy while
 *                the gate's count or submitted - completed is not 0.
 *   GATE_NOCOUNT with GATE: destroy ignores the gate's count. Must fail:
 *                a task accepted after the destroy's check is lost.
 *   ASSERT_WAKE  assert that a worker's futex wake comes before destroy
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
byte state = LIVE;  /* GATE: the gate word's CLOSING and DEAD flags */
#ifdef GATE
byte ingate;        /* GATE: the gate word's count of submitters in it */
#endif
byte submitted;     /* S1/S2, GATE: G2, BROKEN: just before the post */
byte completed;     /* written only by the owner */
byte posting;       /* workers inside wp_port_post, | WAITER */
byte head;          /* the Treiber stack, as the set of tasks on it */
bool efd_open = true;

/* The futex: the owner asleep in D3's wait on posting */
bool asleep;

/* Ghosts */
byte accepted;      /* submits that returned 0 (the task was queued) */
byte acc;           /* the set of accepted tasks */
byte ran;           /* the set of tasks whose callback ran */
byte alive = NS;    /* submitter and worker processes not yet finished */
bool destroyed;     /* wpool_port_destroy returned 0 */

/* wp_port_post of task t, by the worker that ran it. After P4 the worker
 * touches nothing of the port but the futex wake, a syscall on the address
 * of posting that the C code computes before its decrement: that wake may
 * come after destroy returned (ASSERT_WAKE shows it). */
proctype worker(byte t) {
    bool wake;
#ifdef BROKEN
    submitted++;                        /* counted only now */
#endif
    posting++;                                                  /* P1 */
    head = head | (1 << t);                                     /* P2 */
    assert(efd_open);       /* P3, write(efd): (b) never after close */
    atomic {                                                    /* P4 */
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
    fi;
    alive--
}

/* wpool_submit to the port, K times. */
proctype submitter(byte s) {
    byte k;
    bool refused;
#ifdef GATE
    byte ent;
#endif
    do
    :: k < K ->
#if defined(GATE)
        atomic {                /* G1 wp_port_enter: load, CAS count + 1 */
            ent = state;
            if
            :: ent == LIVE -> ingate++
            :: else             /* CLOSING/DEAD: refused, no trace */
            fi
        };
        if
        :: ent != LIVE
        :: else ->
            if
            :: submitted++;                 /* G2 wp_port_count */
                atomic {                    /* G3 publish: accepted */
                    accepted++; acc = acc | (1 << (s * K + k));
                    alive++;
                    run worker(s * K + k)
                }
            :: skip                         /* the queue refused (-EAGAIN) */
            fi;
            ingate--                        /* G4 wp_port_leave */
        fi;
        ent = LIVE;
#elif !defined(BROKEN)
        submitted++;                                            /* S1 */
        atomic {                                                /* S2 */
            if
            :: state == LIVE ->
                accepted++; acc = acc | (1 << (s * K + k));
                alive++;
                run worker(s * K + k)                           /* S3 */
            :: else -> refused = true
            fi
        };
        if
        :: refused -> submitted--; refused = false   /* undo: refused */
        :: else
        fi;
#else
        atomic {
            if
            :: state != DEAD ->
                accepted++; acc = acc | (1 << (s * K + k));
                alive++;
                run worker(s * K + k)
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

/* D3, wp_port_quiesce: wait for posting's count to reach 0. */
inline quiesce() {
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
#ifndef BROKEN
        state = CLOSING;                                        /* D1 */
#endif
#if defined(GATE) && !defined(GATE_NOCOUNT)
        atomic {                        /* D2, GATE: submitters in the gate */
            busy = (ingate != 0);
            assert(!busy || alive > 0)
        };
        if
        :: busy -> busy = false; goto ebusy
        :: else
        fi;
#endif
        atomic {                                                /* D2 */
            busy = (submitted - completed != 0);
            /* EBUSY with every other process finished and nothing left to
             * dispatch: nothing can change, EBUSY for ever, a completion
             * was lost (the owner could never destroy). */
            assert(!busy || alive > 0 || head != 0)
        };
        if
        :: busy -> busy = false         /* EBUSY: back to the loop */
        :: else -> break
        fi;
ebusy:  skip
    od;
#if !defined(BROKEN) && !defined(NO_QUIESCE)
    quiesce();                                                  /* D3 */
#endif
    atomic {                                                    /* D4 */
        efd_open = false;
        state = DEAD;
        destroyed = true;
        /* (a) every accepted task ran exactly once, none is left posted */
        assert(accepted == completed && ran == acc && head == 0)
    };
    /* The end (not a step of the C code): once every submitter and worker
     * is done, (d) refused submits left no count, and nothing ran after the
     * destroy. */
    alive == 0;
    assert(submitted == accepted && completed == accepted && ran == acc && head == 0);
#ifdef GATE
    assert(ingate == 0)
#endif
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
