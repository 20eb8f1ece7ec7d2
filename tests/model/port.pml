/* SPDX-License-Identifier: MIT */
/*
 * Promela model of the completion port's signalling protocol (port.c).
 * Checked by tests/model/check.sh; docs/model.md says what it covers and what
 * it does not.
 *
 *   producer = wp_port_post: push on the Treiber stack, wp_port_signal
 *              (load pending, CAS QUIET -> ARMED, write the eventfd), posting
 *   owner    = the port's owner thread, looping: either an event loop (poll
 *              the fd until readable, then wpool_port_dispatch), or
 *              wpool_port_wait (wp_port_wait_until) then dispatch, or (a
 *              bounded number of times) a dispatch with no readiness at all;
 *              once every completion has run, the end of wpool_port_settle
 *              (wp_port_quiesce, wp_port_go_idle)
 *   dispatch = wp_port_run with max 1 or "all": collect (exchange head),
 *              run callbacks, and wp_port_go_idle when nothing is left
 *
 * Memory model: sequentially consistent (Promela interleaving). The accesses
 * the argument uses are seq_cst in the C code (the push CAS, the producer's
 * load and CAS of pending, the owner's exchange of pending and load of head);
 * the relaxed ones (go_idle's first load of pending, wp_port_run's load of
 * head, posting) are modelled as SC accesses too.
 *
 * The eventfd: a counter; write(v) adds v, a read of a non-blocking fd
 * returns the whole counter and zeroes it, or fails with EAGAIN at 0; poll
 * reports it readable while the counter is non-zero.
 *
 * Build flags (spin -D...):
 *   NP, K      producers, completions per producer (default 2, 2)
 *   FREE       dispatches the owner may make with no readiness (default 1)
 *   USELESS    bound on wakeups that find nothing to run (default
 *              NP*K - 1, which is tight: one fewer fails)
 *   BROKEN     drop go_idle's re-check of head after clearing pending
 *   NO_GIVEBACK  drop go_idle's give-back write when owed goes negative
 *   COALESCE   the coalesce_us option on the default port: a producer
 *              (worker) pushes with wp_port_push and may hold the signal
 *              across its next completions, signalling after any later push
 *              and at the latest after its last one (it finds no task); in
 *              C a push that finds the port ARMED drops the hold, which is
 *              the signal branch here (signal() does nothing when ARMED); no
 *              posting (the default port outlives the workers), so the
 *              owner's final check waits for the producers to finish (the
 *              join) instead of posting == 0
 *   NO_RELEASE with COALESCE: a producer that holds at its last push never
 *              signals (must fail: the lost wakeup)
 */

#ifndef NP
#define NP 2
#endif
#ifndef K
#define K 2
#endif
#ifndef FREE
#define FREE 1
#endif
#ifndef USELESS
#define USELESS (NP * K - 1)
#endif

#define TOTAL (NP * K)          /* at most 8: items are bits of a byte */
#define ALL   255
#define QUIET 0
#define ARMED 1

byte head;          /* the Treiber stack, as the set of items on it */
bit  pending;       /* QUIET / ARMED */
byte efd;           /* the eventfd counter */
byte writing;       /* producers that won ARMED and have not written yet */
byte posting;       /* producers inside wp_port_post (in C a worker's guard
                       word, or the port's posting count: wp_port_quiesce
                       waits for both) */

/* the owner's */
byte ready;         /* collected, not yet run */
short owed;         /* eventfd writes of cleared epochs not yet read back */
byte ndone;         /* callbacks run */
byte useless;       /* wakeups that found nothing to run */
byte ran_of[TOTAL]; /* times each item's callback ran */

/* counter + writes still coming == owed + (ARMED ? 1 : 0), in every state:
 * the invariant docs/design.md argues (so an armed epoch leaves the fd
 * readable once its write lands). */
#define INV (efd + writing == owed + pending)

/* wp_port_signal. The cheap load, then the CAS; the winner writes 1, which
 * may land arbitrarily late (a separate step). */
inline signal() {
    if
    :: pending == QUIET ->
        atomic {
            if
            :: pending == QUIET -> pending = ARMED; writing++; won = true
            :: else
            fi
        };
        if
        :: won -> atomic { efd++; writing--; won = false }
        :: else
        fi
    :: else
    fi
}

#ifdef COALESCE
byte finished;      /* producers that are done (joined) */
#endif

proctype producer(byte base) {
    byte k;
    bool won;
#ifdef COALESCE
    bool held;
    do
    :: k < K ->
        atomic { head = head | (1 << (base + k)) };   /* wp_port_push */
        if
        :: held = true                   /* another task waits: hold */
        :: signal(); held = false        /* window over, or no task */
        fi;
        k++
    :: else -> break
    od;
#ifndef NO_RELEASE
    if
    :: held -> signal()                  /* wp_next_task finds no task */
    :: else
    fi;
#endif
    finished++
#else
    do
    :: k < K ->
        /* posting++ and the push CAS (nothing the owner can see lies
         * between them: it reads posting only once every item has run) */
        atomic { posting++; head = head | (1 << (base + k)) };
        signal();
        posting--;
        k++
    :: else -> break
    od
#endif
}

/* wp_port_go_idle. The owner's own updates of owed are merged into the
 * shared step before them (owed is private to the owner). */
inline go_idle() {
    if
    :: pending == ARMED ->                   /* relaxed load */
        atomic { pending = QUIET; owed++ };  /* seq_cst exchange */
        cleared = true
    :: else
    fi;
    if
    :: owed > 0 ->
        atomic {                             /* read(efd) */
            if
            :: efd > 0 -> owed = owed - efd; efd = 0
            :: else                          /* EAGAIN: the debt stays */
            fi
        };
#ifndef NO_GIVEBACK
        if
        :: owed < 0 -> atomic { efd = efd - owed; owed = 0 }   /* give back */
        :: else
        fi
#else
        if
        :: owed < 0 -> owed = 0
        :: else
        fi
#endif
    :: else
    fi;
#ifndef BROKEN
    if
    :: cleared && head != 0 -> signal()      /* seq_cst load: the re-check */
    :: else
    fi;
#endif
    assert(owed >= 0);
    cleared = false
}

/* wp_port_collect: one exchange takes the whole stack. */
inline collect() {
    atomic { ready = ready | head; head = 0 }
}

/* Runs the lowest ready item (the order is not what is checked here). */
inline run_one() {
    atomic {
        i = 0;
        do
        :: ready & (1 << i) -> break
        :: else -> i++
        od;
        ready = ready & ~(1 << i);
        ran_of[i]++;
        assert(ran_of[i] == 1);
        ndone++;
        ran++;
        i = 0
    }
}

/* wp_port_run(port, max) */
inline dispatch() {
    if
    :: max = 1
    :: max = ALL
    fi;
    do
    :: ran < max ->
        if
        :: ready == 0 ->
            collect();
            if
            :: ready == 0 -> break
            :: else
            fi
        :: else
        fi;
        run_one()
    :: else -> break
    od;
    if
    :: ready == 0 && head == 0 -> go_idle()  /* relaxed load of head */
    :: else
    fi;
    max = 0
}

/* Blocking in poll(efd, POLLIN, -1). Stuck here with completions posted and
 * no write coming is the lost wakeup: once nothing else can move, the
 * assertion says nothing is left to dispatch, which cannot hold while
 * ndone < TOTAL and the producers are done, so it fails. */
inline poll() {
    if
    :: efd > 0
    :: timeout -> assert(head == 0 && ready == 0)
    fi
}

active proctype owner() {
    byte max, ran, i, free = FREE;
    bool cleared, won;
    do
    :: ndone < TOTAL ->
        if
        :: skip ->                           /* event loop: poll, dispatch */
            poll();
            dispatch();
            if
            :: ran == 0 -> useless++
            :: else
            fi
        :: skip ->                           /* wpool_port_wait(-1) */
            do
            :: ready != 0 || head != 0 -> break   /* wp_port_has_work */
            :: else ->
                poll();
                if
                :: ready == 0 && head == 0 -> useless++; go_idle()
                :: else
                fi
            od;
            dispatch()
        :: free > 0 ->                       /* dispatch on another event */
            free--;
            dispatch()
        fi;
        ran = 0;
        assert(useless <= USELESS)
    :: else -> break
    od;
    /* wpool_port_settle once nothing is in flight: quiesce, then go idle;
     * after that the fd is quiet and nothing is owed. Coalescing: a held
     * signal may still come (a spurious wakeup after the drain); once the
     * workers are joined, a last go_idle leaves the fd quiet. */
#ifdef COALESCE
    finished == NP;
#else
    posting == 0;
#endif
    go_idle();
    assert(efd == 0 && owed == 0 && pending == QUIET && writing == 0);
    i = 0;
    do
    :: i < TOTAL -> assert(ran_of[i] == 1); i++
    :: else -> break
    od
}

/* The invariant, checked in every reachable state. */
active proctype invariant() {
end:
    atomic { !INV -> assert(INV) }
}

init {
    byte p;
    atomic {
        do
        :: p < NP -> run producer(p * K); p++
        :: else -> break
        od
    }
}
