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
 *   KLAST      with COALESCE: completions of the last producer (default K)
 *   FREE       dispatches the owner may make with no readiness (default 1)
 *   USELESS    bound on wakeups that find nothing to run (default
 *              TOTAL - 1, the completions less one, which is tight: one
 *              fewer fails, with COALESCE too)
 *   BROKEN     drop go_idle's re-check of head after clearing pending
 *   NO_GIVEBACK  drop go_idle's give-back write when owed goes negative
 *   COALESCE   the coalesce_us option on the default port (worker.c,
 *              ticker.c): pending is QUIET / ARMED / HELD. A producer
 *              (worker) pushes with wp_port_push (push, then load pending:
 *              QUIET -> it holds the signal privately, else covered), then
 *              looks for its next task (wp_coalesce_turn). None (it runs
 *              dry, and always after its last push): it signals if it held,
 *              or if the port is HELD. One found while it holds: it hands
 *              the hold over (wp_port_hold: CAS QUIET -> HELD) and, if the
 *              CAS won, kicks the ticker (exchange asleep to 0, futex wake
 *              if it was 1); then the task runs, and may block until the
 *              owner ran the callback of this producer's previous item. The
 *              ticker waits for HELD (announce asleep, re-load pending, else
 *              futex_wait), lets its window pass (any number of steps), and
 *              arms a HELD port (wp_port_signal). signal() arms from QUIET
 *              or HELD (a failed CAS retries with the value it found).
 *              go_idle clears ARMED or HELD (owed++ only for ARMED). No
 *              posting (the default port outlives the workers): once the
 *              producers are done (joined), the stopper (wp_ticker_stop)
 *              stops and joins the ticker and arms a port still HELD; the
 *              owner's final check waits for that instead of posting == 0
 *   SPURIOUS   with COALESCE: the ticker's futex_wait returns on its own at
 *              most this many times (default 1)
 *   NO_RELEASE with COALESCE: a producer that runs dry never signals (must
 *              fail: the lost wakeup)
 *   NO_TICKER  with COALESCE: no hand-over; the producer keeps its private
 *              hold across the task (the design before the ticker), which
 *              may block on the callback held back (must fail)
 *   NO_KICK    with COALESCE: the hand-over does not kick the ticker (must
 *              fail)
 *   STOP_WAKE_ONLY  with COALESCE: wp_ticker_stop stores stop and makes a
 *              bare futex wake, leaving asleep at 1 (must fail: the ticker
 *              may still sleep for good, and the join with it)
 *   TICKER_NO_RECHECK  with COALESCE: the ticker looks at pending, then
 *              announces asleep and sleeps with no second look at pending
 *              (its look at stop stays after the announcement; must fail)
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
#ifndef SPURIOUS
#define SPURIOUS 1
#endif

#ifndef KLAST
#define KLAST K
#endif

#define TOTAL ((NP - 1) * K + KLAST)  /* at most 8: items are bits of a byte */
#ifndef USELESS
#define USELESS (TOTAL - 1)
#endif
#define ALL   255
#define QUIET 0
#define ARMED 1
#define HELD  2

byte head;          /* the Treiber stack, as the set of items on it */
#ifdef COALESCE
byte pending;       /* QUIET / ARMED / HELD */
#else
bit  pending;       /* QUIET / ARMED */
#endif
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
#ifdef COALESCE
#define INV (efd + writing == owed + (pending == ARMED -> 1 : 0))
#else
#define INV (efd + writing == owed + pending)
#endif

#ifdef COALESCE
/* wp_port_signal with HELD: load; while not ARMED, CAS from the value seen
 * to ARMED (a failed CAS returns the value it found, and the loop retries);
 * the winner writes 1, which may land arbitrarily late (a separate step).
 * The load and a failed CAS write nothing, so the loop is one step here: at
 * the successful CAS, or at the load (or failure) that finds ARMED. */
inline signal() {
    atomic {
        if
        :: pending != ARMED -> pending = ARMED; writing++; won = true
        :: else
        fi
    };
    if
    :: won -> atomic { efd++; writing--; won = false }
    :: else
    fi
}
#else
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
#endif

#ifdef COALESCE
#define MYK (base == (NP - 1) * K -> KLAST : K)   /* this producer's count */

byte finished;      /* producers that are done (joined) */
bit  asleep;        /* the ticker's futex word (wp_ticker.asleep) */
bit  queued;        /* the ticker sleeps in futex_wait(&asleep, 1) */
bit  stop;          /* wp_ticker.stop */
bit  tdone;         /* the ticker has returned (for the join) */
bit  stopped;       /* wp_ticker_stop has returned */

/* wp_ticker_kick: seq_cst exchange of asleep, then futex_wake(&asleep, 1),
 * which may come late (a separate step; one that lands on a later wait is
 * a spurious wakeup of it). */
inline kick() {
    atomic { old = asleep; asleep = 0 };
    if
    :: old -> queued = 0; old = 0
    :: else
    fi
}

/* wp_port_arm_held: CAS HELD -> ARMED, the winner writes (late, a separate
 * step). A dry worker's (that held nothing itself), a worker's whose hold
 * is due, the ticker's and the stopper's release. */
inline release() {
    atomic {
        if
        :: pending == HELD -> pending = ARMED; writing++; won = true
        :: else
        fi
    };
    if
    :: won -> atomic { efd++; writing--; won = false }
    :: else
    fi
}

/* The ticker (ticker.c, wp_ticker_main). */
proctype ticker() {
    bool won;
    byte spurious = SPURIOUS;
    do
    :: stop -> break
    :: else ->
        /* wp_ticker_wait_held */
        do
        ::
#ifndef TICKER_NO_RECHECK
            asleep = 1;                      /* seq_cst store */
            /* wp_port_held || wp_ticker_stopping: two seq_cst loads, one
             * step here (stop only goes 0 -> 1, so reading both at the
             * first load, or both at the second when the first misses,
             * gives the same outcomes) */
            if
            :: pending == HELD || stop -> break
            :: else
            fi;
#else
            if
            :: pending == HELD -> break      /* before the announcement */
            :: else
            fi;
            asleep = 1;
            if
            :: stop -> break
            :: else
            fi;
#endif
            /* futex_wait(&asleep, 1): sleeps iff asleep == 1, in one step;
             * returns on a wake, or (at most SPURIOUS times) on its own */
            atomic {
                if
                :: asleep == 1 -> queued = 1
                :: else
                fi
            };
            if
            :: queued == 0
            :: spurious > 0 -> queued = 0; spurious--
            fi
        od;
        asleep = 0;                          /* relaxed store */
        /* Ticking: wp_ticker_wait_window (any number of other steps pass;
         * the ticker is enabled throughout, so the owner cannot time out in
         * poll meanwhile), then arm a HELD port and tick again, or, finding
         * none, go back to sleep. (In C a CAS lost to the owner's clear ticks
         * once more before it sleeps: a delay, the same states.) */
        do
        :: stop -> break
        :: else ->
            atomic {
                if
                :: pending == HELD -> pending = ARMED; writing++; won = true
                :: else
                fi
            };
            if
            :: won -> atomic { efd++; writing--; won = false }
            :: else -> break
            fi
        od
    od;
    tdone = 1
}

/* wp_ticker_stop, once every producer is joined (wpool_destroy). */
proctype stopper() {
    bool won, old;
    finished == NP;
    stop = 1;                                /* seq_cst store */
#ifndef STOP_WAKE_ONLY
    kick();
#else
    queued = 0;                              /* futex_wake(&asleep, 1) alone */
#endif
    tdone == 1;                              /* pthread_join */
    release();
    stopped = 1
}
#endif

proctype producer(byte base) {
    byte k;
    bool won;
#ifdef COALESCE
    bool held, old;
    do
    :: k < MYK ->
        atomic { head = head | (1 << (base + k)) };   /* wp_port_push */
        if
        :: pending == QUIET -> held = true   /* seq_cst load: hold */
        :: else -> held = false              /* armed or held: covered */
        fi;
        k++;
        /* wp_next_task: wp_coalesce_turn */
        if
        :: k < MYK ->                        /* a task found */
#ifndef NO_TICKER
            if
            :: held ->
                atomic {                     /* wp_port_hold */
                    if
                    :: pending == QUIET -> pending = HELD; old = 1
                    :: else
                    fi
                };
                if
                :: old ->
                    old = 0;
#ifndef NO_KICK
                    kick()
#else
                    skip
#endif
                :: else
                fi;
                held = false
            :: else
            fi;
#endif
            /* wp_ticker_due (a hold older than the window): arm it */
            if
            :: skip
            :: release()
            fi;
            /* the task: it runs to its end, or it first waits for the
             * callback of the item pushed just before it (a step that
             * commits to the wait, then the wait) */
            if
            :: skip
            :: skip -> ran_of[base + k - 1] == 1
            fi
        :: true ->                           /* none: dry (and after the last) */
#ifndef NO_RELEASE
            if
            :: held -> signal()
            :: else -> release()
            fi;
#endif
            held = false
        fi
    :: else -> break
    od;
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
#ifdef COALESCE
    if
    :: pending != QUIET ->                   /* relaxed load */
        atomic {                             /* seq_cst exchange */
            if
            :: pending == ARMED -> owed++    /* HELD: nothing was written */
            :: else
            fi;
            pending = QUIET
        };
        cleared = true
    :: else
    fi;
#else
    if
    :: pending == ARMED ->                   /* relaxed load */
        atomic { pending = QUIET; owed++ };  /* seq_cst exchange */
        cleared = true
    :: else
    fi;
#endif
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
     * workers are joined and the ticker stopped, a last go_idle leaves the
     * fd quiet. */
#ifdef COALESCE
    stopped == 1;
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
        od;
#ifdef COALESCE
        run ticker();
        run stopper()
#endif
    }
}
