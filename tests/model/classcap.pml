/* SPDX-License-Identifier: MIT */
/*
 * Promela model of the work classes' cap (max_workers) and the reserved
 * workers' wakes: the capped take, the checks after a place is given back,
 * and wp_next_task's sleep (worker.c), and the submit's wake (wp_wake_for,
 * pool.h; submit.c), over the parking lot of park.c (as in park.pml).
 * Checked by tests/model/check.sh; docs/model.md ("classcap.pml") says what
 * it covers and what it does not.
 *
 * Two classes: A (lane 0) capped at CAPA (default 1), B (lane 1) uncapped
 * (CAPB 0, the default) or capped at CAPB. With -DRESERVED worker 0 is
 * reserved for A, which then has a home park H; the others are general.
 * Workers sleep on the general park G; the reserved one on H while it keeps
 * to its class.
 *
 *   take(L)    wp_take_class: capped L: wp_cap_claim (load running; below
 *              the cap: CAS r -> r + 1, a failed CAS loads again: with the
 *              retry, one atomic "if running < cap: running++"; at the cap:
 *              turned[L] (load; 0: store 1), then load running again: below
 *              the cap, claim again, else skip L); pop (queued[L] > 0:
 *              queued[L]--); none: release (running[L]--), then exchange
 *              turned[L] with 0 and, if it was 1, the check. Uncapped L: the
 *              pop alone. (The turned flag spares the check, and its wakes,
 *              while no claim was turned away: a producer stalled between a
 *              ring cell's reserve and publish left a lane that counts tasks
 *              but pops none, and each failed take woke a worker.)
 *   check      wp_cap_recheck: queued[L] > 0 -> wake_for(L)
 *   wake_for   wp_wake_for: L with reserved workers: notify(H, 1), and
 *              notify(G, 1) if that signalled nobody; else notify(G, 1)
 *   wp_take    general worker: A and B, either first (the weighted round
 *              robin may start anywhere). Reserved worker: A; nothing and
 *              lending: B.
 *   submitter  queued[L]++ (the publish, seq_cst), wake_for(L); K times
 *   worker     wp_next_task: wp_take; then, if the last run gave a place of
 *              class R back (w->recheck), the check of R unless this take
 *              got a task of R. No task: (loop) keep = reserved && !lend;
 *              prepare on H if keep, else on G; on H, lending read again:
 *              started -> cancel, choose again (moved); the re-check is a
 *              wp_take: a task -> cancel (a node a notifier claimed passes
 *              the wake on on its park, then wp_pass_on), run it; none ->
 *              wait: on G wp_park_wait, on H wp_park_wait_for (signalled,
 *              or timed out any number of times until the monitor freezes
 *              time: under the lock, a node still queued is unlinked, else
 *              it was claimed and is signalled (asserted); lend_at has
 *              passed), woken; wp_take; loop. A task after a wait:
 *              wp_pass_on.
 *   pass_on    wp_pass_on (the chain-wake): waiters(G) > 0, then lane A's
 *              count, then lane B's (wp_backlog) -> notify(G, 1); waiters(H)
 *              > 0, then lane A's count -> notify(H, 1).
 *   wp_run     the task (short, or long: it runs until the monitor has
 *              looked); a home task moves lend_at (lend = false); capped:
 *              release, w->recheck = L.
 *
 * The parking lot is park.pml's, each critical section one atomic step
 * (what is read without the lock, nwaiters and signaled, changes inside
 * them; a notifier's wake is made under the lock, and there is no spurious
 * wakeup: park.pml checks the late wake and spurious wakes apart):
 *   prepare    signaled = 0; lock, append, queued, nwaiters++, unlock
 *   cancel     lock; queued: unlink, nwaiters--; else claimed; unlock;
 *              claimed -> notify(1)
 *   notify(1)  nwaiters == 0 (a seq_cst load) -> 0; else lock; list not
 *              empty: pop the oldest node, nwaiters--, signaled = 1 -> 1;
 *              unlock
 * A worker has one node, queued on at most one park at a time.
 *
 * Memory model: sequentially consistent; the C code's accesses here are
 * seq_cst (running, the queues' publish and pop, nwaiters' Dekker loads and
 * RMWs) or under a park's lock; wp_park_waiters and the backlog sizes (the
 * chain-wake, wp_cap_recheck) are relaxed hints, modelled as SC loads.
 *
 * Properties:
 *   (a) the cap: a ghost count of the workers holding a claim on a class
 *       never exceeds its cap (asserted at each claim).
 *   (b) no lost wakeup: the monitor freezes time (no more time-outs),
 *       waits until nothing can move (timeout; long tasks still hold their
 *       claims) and asserts that no class with a task queued and a free
 *       slot (uncapped, or running < cap) has a worker asleep that could
 *       take it: on G, or on H for the home class (a reserved worker on H
 *       may leave another class's task to its time-out: that is lending).
 *   (c) exactly once: then it lets the long tasks end, waits for quiescence
 *       again and asserts that nothing is queued and runs == submitted ==
 *       KA + KB.
 *
 * Build flags (spin -D...):
 *   RESERVED   worker 0 is reserved for class A, which has a home park
 *   NG         general workers (default 2; 1 with RESERVED)
 *   KA, KB     tasks submitted to A and to B, each class by its own
 *              submitter (default 2 and 1)
 *   CAPA, CAPB the caps (default 1 and 0: B uncapped)
 *   LEND       the reserved worker's `lend` (wp_lending: now >= lend_at),
 *              which may change before each of its takes and its choice of
 *              park: 0 (default, the C code: lend_at moves only when it
 *              runs a task of its class) it may turn true (time passes) and
 *              turns false only when it runs a task of A; 1 chosen freely;
 *              2: never (lend_after_us longer than the run; no time-out)
 *   CANCEL_SAME_PARK  no wp_pass_on after a claimed cancel (the first
 *              version: only the cancel's own pass-on, on the same park):
 *              loses a wakeup with RESERVED, see docs/model.md
 *   NO_CHAIN   no wp_pass_on after a wait (a lost wakeup with RESERVED)
 *   RUN_CHECK_NOW  the check after a run right after the release, instead
 *              of after the next take (the first description of the design)
 * Broken variants, each must fail:
 *   NO_FAIL_NOTIFY     no check after a failed take's release (and no
 *                      exchange of turned)
 *   TURNED_NO_RELOAD   a claim turned away sets turned after its last load
 *                      of running and does not load it again: a release
 *                      between the two finds turned 0 and skips the check
 *   TURNED_LATE        the failed take exchanges turned before its release
 *                      (running--)
 *   NO_RUN_NOTIFY      no check after a run's release
 *   CHECK_THEN_INC     the claim loads running, then stores r + 1 (no CAS)
 *   HOME_ONLY          a submit to the home class notifies only H (no
 *                      fallback to G when it signalled nobody)
 *   RECHECK_HOME_ONLY  the reserved worker's re-check on G takes from A only
 */

#ifndef KA
#define KA 2
#endif
#ifndef KB
#define KB 1
#endif
#ifndef CAPA
#define CAPA 1
#endif
#ifndef CAPB
#define CAPB 0
#endif
#ifndef LEND
#define LEND 0
#endif
#ifndef NG
#ifdef RESERVED
#define NG 1
#else
#define NG 2
#endif
#endif
#ifdef RESERVED
#define NW (NG + 1)
#define NPARK 2
#else
#define NW NG
#define NPARK 1
#endif

#define NT   (KA + KB)
#define NONE 255
#define CA   0            /* class A (the home class with RESERVED) */
#define CB   1            /* class B */
#define PG   0            /* the general park */
#define PH   1            /* class A's home park */

#define CAP(L)    ((L) == CA -> CAPA : CAPB)
#define CAPPED(L) (CAP(L) > 0)

/* ---- the classes ---------------------------------------------------------- */
byte queued[2];           /* tasks waiting in the lane */
byte running[2];          /* running[L] (capped classes) */
bool turned[2];           /* turned[L]: a claim found L at its cap */
byte inside[2];           /* ghost: workers holding a claim on L */
byte runs;                /* ghost: tasks run */
byte submitted;           /* ghost: tasks published */

/* ---- the parks ------------------------------------------------------------ */
typedef park_t {
    byte nw;              /* nwaiters (read by notifiers without the lock) */
    byte q[NW];           /* the FIFO list of nodes (worker ids), oldest first */
    byte n                /* its length */
};
park_t pk[NPARK];
byte on[NW];              /* the park worker i's node is queued on, or NONE */
bool sig[NW];             /* the node's signaled word */

bool frozen;              /* the monitor watches for quiescence: no time-outs */
bool released;            /* long tasks may end */

/* Unlinks node nd from park p's list, nwaiters-- (in a critical section). */
inline unlink(p, nd) {
    j = 0;
    do
    :: pk[p].q[j] == nd -> break
    :: else -> j++
    od;
    do
    :: j + 1 < pk[p].n -> pk[p].q[j] = pk[p].q[j + 1]; j++
    :: else -> break
    od;
    pk[p].n--; pk[p].q[pk[p].n] = 0; j = 0;
    pk[p].nw--;
    on[nd] = NONE
}

/* wp_park_prepare(p, node). */
inline prepare(p) {
    atomic {
        assert(on[me] == NONE);
        sig[me] = false;
        pk[p].q[pk[p].n] = me; pk[p].n++; on[me] = p;
        pk[p].nw++                           /* fetch_add, seq_cst */
    }
}

/* wp_park_notify(p, 1): n = nodes signalled (0 or 1). */
inline notify(p) {
    if
    :: atomic { pk[p].nw == 0 -> n = 0 }     /* seq_cst load */
    :: pk[p].nw != 0 ->
        atomic {
            if
            :: pk[p].n > 0 ->
                nd = pk[p].q[0]; unlink(p, nd);
                sig[nd] = true; nd = 0; n = 1
            :: else -> n = 0
            fi
        }
    fi
}

/* wp_pass_on: while workers wait on G and any lane has tasks, wake one
 * there; while the reserved worker waits on H and A has tasks, wake it.
 * (Counts and sizes are relaxed snapshots, read in this order.) */
inline pass_on() {
    if
    :: pk[PG].nw > 0 ->                      /* wp_park_waiters(G) */
        if                                   /* wp_backlog: lane by lane */
        :: queued[CA] > 0 -> notify(PG)
        :: else ->
            if
            :: queued[CB] > 0 -> notify(PG)
            :: else
            fi
        fi
    :: else
    fi;
#ifdef RESERVED
    if
    :: pk[PH].nw > 0 ->                      /* wp_park_waiters(H) */
        if
        :: queued[CA] > 0 -> notify(PH)      /* wp_lane_backlog(A) */
        :: else
        fi
    :: else
    fi;
#endif
    n = 0
}

/* wp_park_cancel(p, node): a node a notifier claimed passes the wake on on
 * the same park; then the worker calls wp_pass_on (unless CANCEL_SAME_PARK:
 * the first version, which did not). */
inline cancel(p) {
    atomic {
        if
        :: on[me] == p -> unlink(p, me); claimed = false
        :: else -> assert(sig[me]); claimed = true
        fi
    };
    if
    :: atomic { claimed -> claimed = false }; notify(p); n = 0;
#ifndef CANCEL_SAME_PARK
        pass_on();
#endif
        skip
    :: else
    fi
}

/* wp_wake_for(pool, L): one of L's reserved workers, else any. */
inline wake_for(L) {
#ifdef RESERVED
    if
    :: L == CA ->
        notify(PH);
        if
        :: atomic { n == 0 -> skip }; notify(PG)
        :: else
        fi;
        n = 0
    :: else -> notify(PG); n = 0
    fi
#else
    notify(PG); n = 0
#endif
}

/* After running[L]--: a worker may have skipped L for the cap while a task
 * waited (and sleeps now): wake one. */
inline after_dec(L) {
    if
    :: queued[L] > 0 -> wake_for(L)
    :: else
    fi
}

/* Takes a task of class L: got = true (its claim held if L is capped). */
inline take(L) {
    if
    :: CAPPED(L) ->
#ifdef CHECK_THEN_INC
        r = running[L];                      /* load */
        if
        :: r < CAP(L) ->
            atomic { running[L] = r + 1; inside[L]++; r = 0;     /* store */
                assert(inside[L] <= CAP(L)); got = true }
        :: else ->                           /* at the cap */
            r = turned[L];
            if
            :: r == 0 -> turned[L] = true
            :: else
            fi;
            r = 0
        fi;
#else
        do                                   /* wp_cap_claim */
        :: atomic { running[L] < CAP(L) -> running[L]++; inside[L]++;
                assert(inside[L] <= CAP(L)); got = true }; break
        :: atomic { running[L] >= CAP(L) -> r = turned[L] }  /* at the cap; */
            if                               /* load turned: 0 -> store 1 */
            :: r == 0 -> turned[L] = true
            :: else
            fi;
            r = 0;
#ifdef TURNED_NO_RELOAD
            break                            /* skip L */
#else
            if                               /* load running again */
            :: running[L] >= CAP(L) -> break /* skip L */
            :: else                          /* a place was given back: retry */
            fi
#endif
        od;
#endif
        if
        :: got ->
            if
            :: atomic { queued[L] > 0 -> queued[L]-- }           /* pop */
            :: else ->
#if defined(NO_FAIL_NOTIFY)
                atomic { running[L]--; inside[L]--; got = false }    /* release */
#elif defined(TURNED_LATE)
                atomic { r = turned[L]; turned[L] = false };         /* exchange */
                atomic { running[L]--; inside[L]--; got = false };   /* release */
                if
                :: r -> r = 0; after_dec(L)  /* wp_cap_recheck */
                :: else
                fi
#else
                atomic { running[L]--; inside[L]--; got = false };   /* release */
                atomic { r = turned[L]; turned[L] = false };         /* exchange */
                if
                :: r -> r = 0; after_dec(L)  /* wp_cap_recheck */
                :: else
                fi
#endif
            fi
        :: else
        fi
    :: else ->
        if
        :: atomic { queued[L] > 0 -> queued[L]--; got = true }   /* pop */
        :: else
        fi
    fi
}

/* The reserved worker's `lend` (wp_lending: now >= lend_at) as time passes. */
inline tick() {
#if LEND == 2
    skip                                     /* lend_at never passes */
#elif LEND == 1
    if
    :: resv -> if
               :: lend = true
               :: lend = false
               fi
    :: else
    fi
#else
    if
    :: resv && !lend -> lend = true          /* lend_at has passed */
    :: true
    fi
#endif
}

/* wp_run: the task of class cls, then its claim given back. */
inline run_task() {
    atomic {
        runs++; woken = false;
#if LEND != 1
        if
        :: resv && cls == CA -> lend = false /* lend_at = now + lend_ns */
        :: else
        fi
#endif
    };
    if
    :: skip                                  /* a short task */
    :: skip; released                        /* a long one */
    fi;
    if
    :: CAPPED(cls) ->                        /* release; w->recheck = lane */
        atomic { running[cls]--; inside[cls]--; rc = cls; cls = NONE };
#if defined(NO_RUN_NOTIFY)
        rc = NONE
#elif defined(RUN_CHECK_NOW)
        after_dec(rc); rc = NONE
#else
        skip
#endif
    :: else -> cls = NONE
    fi
}

/* The chain-wake, after a take that followed a wait: wp_pass_on. */
inline chain() {
#ifndef NO_CHAIN
    if
    :: woken -> pass_on()
    :: else
    fi;
#endif
    woken = false
}

/* Takes from A and B, either first: cls = the class taken, or NONE. */
inline take_any() {
    if
    :: cls = CA
    :: cls = CB
    fi;
    take(cls);
    if
    :: !got -> cls = 1 - cls; take(cls)
    :: else
    fi;
    if
    :: got -> got = false
    :: else -> cls = NONE
    fi
}

/* wp_take: cls = the class of the task taken, or NONE. The reserved worker
 * takes from A, then, lending and unless home_only, from B. */
inline wp_take(home_only) {
    if
    :: resv ->
        take(CA);
        if
        :: got -> atomic { cls = CA; got = false }
        :: else ->
            tick();                          /* wp_lending() */
            if
            :: lend && !(home_only) ->
                take(CB);
                if
                :: got -> atomic { cls = CB; got = false }
                :: else -> cls = NONE
                fi
            :: else -> cls = NONE
            fi
        fi
    :: else -> take_any()
    fi
}

#if defined(RECHECK_HOME_ONLY)
#define RECHECK_HOME 1
#else
#define RECHECK_HOME 0
#endif

/* A worker: wp_worker_main's loop around wp_next_task and wp_run. resv: the
 * worker reserved for class A (home park H). */
proctype worker(byte me; bool resv) {
    byte r, n, nd, j, cls = NONE, rc = NONE, p;
    bool got, claimed, woken, lend, moved;
next:                                        /* wp_next_task */
    wp_take(0);
    if                                       /* the last run's capped class */
    :: rc != NONE && cls != rc -> after_dec(rc); rc = NONE   /* wp_cap_recheck */
    :: rc != NONE && cls == rc -> rc = NONE  /* took its place again */
    :: else
    fi;
    do
    :: cls != NONE -> break
    :: else ->
again:
        atomic {
            tick();                          /* wp_lending() */
            if                               /* keep = home && !lending */
            :: resv && !lend -> p = PH
            :: else -> p = PG
            fi
        };
        prepare(p);
        if                                   /* moved: lending started */
        :: p == PH -> atomic { tick(); moved = lend }
        :: else
        fi;
        if
        :: moved -> moved = false; cancel(p); p = 0; goto again
        :: else
        fi;
        wp_take(RECHECK_HOME && p == PG);    /* the re-check */
        if
        :: cls != NONE -> cancel(p); p = 0; goto work
        :: else
        fi;
        if
        :: p == PG ->
end_wait:
            atomic { sig[me] -> woken = true; p = 0 }            /* wp_park_wait */
        :: else ->
end_timed:
            if                               /* wp_park_wait_for */
            :: atomic { sig[me] -> woken = true; p = 0 }         /* signalled */
            :: !frozen && LEND != 2 ->       /* the futex wait times out */
                atomic {
                    if
                    :: on[me] == PH -> unlink(PH, me)            /* -ETIMEDOUT */
                    :: else -> assert(sig[me])                   /* claimed */
                    fi;
                    lend = true; woken = true; p = 0         /* lend_at passed */
                }
            fi
        fi;
        wp_take(0)
    od;
    chain();
work:
    run_task();
    goto next
}

proctype submitter(byte L; byte k) {
    byte n, nd, j;
    do
    :: k > 0 ->
        atomic { queued[L]++; submitted++; k-- };    /* the publish */
#if defined(HOME_ONLY) && defined(RESERVED)
        if
        :: L == CA -> notify(PH); n = 0      /* no fallback to G */
        :: else -> wake_for(L)
        fi
#else
        wake_for(L)
#endif
    :: else -> break
    od
}

/* Asleep on park p: the node still queued when nothing can move. */
#if NW == 1
#define ASLEEP(p) (on[0] == (p))
#elif NW == 2
#define ASLEEP(p) (on[0] == (p) || on[1] == (p))
#elif NW == 3
#define ASLEEP(p) (on[0] == (p) || on[1] == (p) || on[2] == (p))
#else
#error "NW must be 1 to 3"
#endif

/* A task of L waits and a worker could take it (a free slot). */
#define FREE(L) (queued[L] > 0 && (!CAPPED(L) || running[L] < CAP(L)))

proctype monitor() {
    bool lost_wakeup, all_run;
#ifdef RESERVED
    frozen = true;
#endif
    timeout;                                 /* quiescence, long tasks held */
    lost_wakeup = (FREE(CA) && ASLEEP(PG)) || (FREE(CB) && ASLEEP(PG));
#ifdef RESERVED
    lost_wakeup = lost_wakeup || (FREE(CA) && ASLEEP(PH));
#endif
    assert(!lost_wakeup);
    released = true;
    timeout;                                 /* quiescence again */
    all_run = queued[CA] == 0 && queued[CB] == 0 && runs == NT && submitted == NT;
    assert(all_run)
}

init {
    byte i;
    atomic {
        do
        :: i < NW -> on[i] = NONE; i++
        :: else -> break
        od;
        i = 0;
#ifdef RESERVED
        run worker(0, 1);
        i = 1;
#endif
        do
        :: i < NW -> run worker(i, 0); i++
        :: else -> break
        od;
        run submitter(CA, KA);
        run submitter(CB, KB);
        run monitor()
    }
}
