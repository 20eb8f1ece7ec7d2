/* SPDX-License-Identifier: MIT */
/*
 * Promela model of the pool's sleep/wake protocol: the parking lot in park.c
 * (a FIFO list of per-waiter nodes under a mutex, a count of them read
 * without the lock, a futex word per node) as used by worker.c. Checked by
 * tests/model/check.sh; docs/model.md says what it covers and what it does
 * not.
 *
 *   producer  = wpool_submit: wp_reserve, wp_queue_publish, wp_park_notify(1)
 *   batch     = wpool_submit_batch: NB reserves and publishes, then one
 *               wp_park_notify(1)
 *   worker    = wp_worker_main around wp_next_task (spin, prepare, re-check,
 *               cancel or wait, chain-wake), then wp_park_notify_all on exit
 *   closer    = wpool_close -> wp_close_queues: wp_queue_close,
 *               wp_park_notify_all, join
 *
 * The parking lot (node i is worker i's node; a worker has one node at a
 * time, and re-uses the same one on its next wait, as a stack slot would be):
 *   prepare   signaled = 0; lock; append node; queued = true;
 *             fetch_add(nwaiters, 1); unlock
 *   cancel    lock; if queued { unlink; queued = false; nwaiters-- }; unlock
 *   wait      while (signaled == 0) futex_wait(&signaled, 0)
 *   wait_for  (-DTIMED) wait; a futex_wait may time out (TIMEOUTS times a
 *             run): lock; if queued { unlink, nwaiters--, unlock, -ETIMEDOUT }
 *             else { unlock; 0 (signaled must be set) }
 *   notify(1) if (nwaiters == 0) return; lock; pop the head node: unlink,
 *             queued = false, nwaiters--, signaled = 1; unlock; futex_wake
 *             (the wake after the unlock may land when the waiter has moved
 *             on and parked again on the same node: a spurious wake)
 *   notify_all  lock; pop every node as above; unlock; the wakes
 *   waiters   nwaiters (relaxed)
 *
 * Steps. The mutex is one bit taken by an atomic test-and-set (a blocked
 * locker waits). Under the lock, the list and `queued` are touched only by
 * the lock holder, so they are updated together with the step next to them;
 * the accesses that other threads make without the lock (nwaiters: notify's
 * check and waiters(); signaled: the waiter's loads; the futex) are separate
 * steps, so a lock holder can be preempted between them. The futex:
 * futex_wait(&signaled[i], 0) sleeps iff signaled[i] == 0, one atomic step
 * (EAGAIN otherwise); futex_wake(&signaled[i], 1) wakes worker i if it sleeps
 * there. Spurious wakeups: at most SPURIOUS a run, none once the closer
 * watches for quiescence.
 *
 * Memory model: sequentially consistent (Promela interleaving). The no-lost-
 * wakeup argument rests on seq_cst accesses and RMWs (prepare's fetch_add,
 * the re-check's loads, publish, notify's load of nwaiters, the close RMW)
 * and on the mutex; the signaled store/load pair is release/acquire, which
 * only orders the waiter's later reads after the notifier's lock section.
 * The relaxed reads (waiters(), wp_queue_size) are modelled as SC.
 *
 * Build flags (spin -D...):
 *   NW, NP, K   workers, producers, tasks per producer (default 2, 2, 1)
 *   NB          tasks of one wpool_submit_batch call (default 0: no batch)
 *   SPINS       extra polls before prepare (default 0; see docs/model.md)
 *   SPURIOUS    spurious futex wakeups allowed in a run (default 1)
 *   TIMED       workers use wait_for; TIMEOUTS (default 1) time-outs a run
 *   BROKEN      drop the re-check of the queue after prepare
 *   NO_CHAIN    drop the chain-wake in wp_next_task
 *   FIX_CANCEL  what a worker does when its cancel finds its node already
 *               claimed: 1 (default, what park.c does) pass the wake on with
 *               wp_park_notify(p, 1); 0 nothing (the first design: the
 *               signal is absorbed and a wakeup can be lost); 2 apply the
 *               chain-wake test (waiters && backlog -> wp_park_notify(p, 1))
 *   NO_LOCKED_SIGNAL  the notifier stores signaled and wakes the futex after
 *               unlocking (so cancel can return, and the waiter re-use its
 *               node, while a notifier still holds it)
 *   LOCKED_WAKE the futex wake too is made under the lock (the design before
 *               the late wake; must verify as well)
 */

#ifndef NW
#define NW 2
#endif
#ifndef NP
#define NP 2
#endif
#ifndef K
#define K 1
#endif
#ifndef NB
#define NB 0
#endif
#ifndef SPINS
#define SPINS 0
#endif
#ifndef SPURIOUS
#define SPURIOUS 1
#endif
#ifndef TIMEOUTS
#define TIMEOUTS 1
#endif
#ifndef FIX_CANCEL
#define FIX_CANCEL 1
#endif

#define NT   (NP * K + NB)  /* queue positions: capacity >= NT, no lap reuse */
#define NONE 255

/* ---- the park -------------------------------------------------------------- */
byte nwaiters;          /* _Atomic uint32_t nwaiters */
bool lk;                /* the mutex */
byte lq[NW];            /* the FIFO list of nodes (worker ids), head first */
byte lqn;               /* its length */
bool queued[NW];        /* node->queued (under the lock) */
bool signaled[NW];      /* node->signaled: the node's futex word */
bool asleep[NW];        /* worker i sleeps in futex_wait on signaled[i] */
byte spurious = SPURIOUS;
#ifdef TIMED
byte timeouts = TIMEOUTS;
#endif
bool frozen;            /* the closer watches for quiescence: no more spurious */

/* ---- the queue (FIRST_FREE: one ring), abstracted to its positions ------- */
byte head;              /* next position to reserve */
bool closed;            /* bit 63 of head */
byte tail;              /* next position to consume */
bool pub[NT];           /* cell published (seq == pos + 1) */

/* ---- bookkeeping for the properties -------------------------------------- */
byte taken[NT];         /* times each position was taken by a worker */
byte exited;            /* workers returned from wp_worker_main */

#if NW == 2
#define NASLEEP (asleep[0] + asleep[1])
#define NQUEUED (queued[0] + queued[1])
#elif NW == 3
#define NASLEEP (asleep[0] + asleep[1] + asleep[2])
#define NQUEUED (queued[0] + queued[1] + queued[2])
#else
#error "NW must be 2 or 3"
#endif
#define DRAINED (closed && tail == head)

/* Whenever the lock is free: the count is the number of queued nodes, and the
 * list holds exactly the queued nodes. */
#define INV (lk || (nwaiters == NQUEUED && lqn == NQUEUED))

/* wp_queue_pop (wp_take: one queue, no tombstones): one linearisation point. */
inline take(t) {
    atomic {
        if
        :: tail < NT && pub[tail] -> t = tail; tail++
        :: else -> t = NONE
        fi
    }
}

inline lock() {
    atomic { !lk -> lk = true }
}

inline unlock() {
    lk = false
}

/* Unlinks node nd from the list (lock held; inside an indivisible step). */
inline unlink(nd) {
    j = 0;
    do
    :: lq[j] == nd -> break
    :: else -> j++
    od;
    do
    :: j + 1 < lqn -> lq[j] = lq[j + 1]; j++
    :: else -> break
    od;
    lqn--; lq[lqn] = 0; j = 0;
    queued[nd] = false
}

/* wp_park_prepare(p, node). */
inline prepare() {
    assert(!queued[me]);                     /* a node is never queued twice */
    signaled[me] = false;
    atomic { lock(); lq[lqn] = me; lqn++; queued[me] = true };
    nwaiters++;                              /* fetch_add, seq_cst */
    unlock()
}

/* wp_park_cancel(p, node). `claimed` tells whether a notifier had taken the
 * node (its signal is absorbed). */
inline cancel() {
    atomic {
        lock();
        if
        :: queued[me] -> unlink(me); nwaiters--; claimed = false
        :: else -> claimed = true            /* claimed: signaled is set */
        fi
    };
    unlock()
}

/* Signals node nd taken off the list: store(signaled, 1, release), then
 * futex_wake(&signaled, 1). */
inline signal(nd) {
    signaled[nd] = true;
    asleep[nd] = false
}

/* Pops the head node (lock held, list not empty). By default the signal is
 * stored under the lock and the futex wake deferred past the unlock; with
 * NO_LOCKED_SIGNAL the store is deferred too; with LOCKED_WAKE neither is.
 * Deferred nodes are remembered in `held`. */
inline pop_one() {
    d_step { nd = lq[0]; unlink(nd) };
    nwaiters--;
#if defined(NO_LOCKED_SIGNAL)
    held[nd] = true
#elif defined(LOCKED_WAKE)
    signal(nd)
#else
    signaled[nd] = true;
    held[nd] = true
#endif
}

#if defined(NO_LOCKED_SIGNAL)
inline late_signals() {
    nd = 0;
    do
    :: nd < NW && held[nd] -> signal(nd); held[nd] = false; nd++
    :: nd < NW && !held[nd] -> nd++
    :: else -> break
    od;
    nd = 0
}
#elif defined(LOCKED_WAKE)
inline late_signals() {
    skip
}
#else
/* futex_wake(&signaled[nd], 1) after the unlock: wakes worker nd if it sleeps
 * on its word now, whatever it has done since the notifier took its node. */
inline late_signals() {
    do
    :: atomic {
        nd = 0;
        do
        :: nd < NW && !held[nd] -> nd++
        :: else -> break
        od;
        if
        :: nd < NW -> asleep[nd] = false; held[nd] = false; nd = 0
        :: else -> nd = 0; break
        fi
    }
    od
}
#endif

/* wp_park_notify(p, 1). */
inline notify_one() {
    if
    :: nwaiters == 0 -> skip                 /* seq_cst load */
    :: else ->
        lock();
        if
        :: lqn > 0 -> pop_one()
        :: else
        fi;
        unlock();
        late_signals()
    fi;
    nd = 0
}

/* wp_park_notify_all(p). */
inline notify_all() {
    lock();
    do
    :: lqn > 0 -> pop_one()
    :: else -> break
    od;
    unlock();
    late_signals();
    nd = 0
}

inline spurious_wake() {
    atomic { asleep[me] && spurious > 0 && !frozen -> spurious--; asleep[me] = false }
}

/* wp_park_wait(p, node) (and, with TIMED, wp_park_wait_for): the loop on the
 * node's word. `woken` is set when it returns 0 (signalled); with TIMED it is
 * false after -ETIMEDOUT. */
inline park_wait() {
    do
    :: signaled[me] -> woken = true; break   /* load, acquire */
    :: else ->
        atomic {                             /* futex_wait(&signaled, 0) */
            if
            :: !signaled[me] -> asleep[me] = true
            :: else
            fi
        };
        if
        :: !asleep[me]                       /* woken, or EAGAIN */
        :: spurious_wake()
#ifdef TIMED
        :: atomic { asleep[me] && timeouts > 0 && !frozen ->
                timeouts--; asleep[me] = false };
            /* -ETIMEDOUT from the futex: the time-out path */
            atomic {
                lock();
                if
                :: queued[me] -> unlink(me); nwaiters--
                :: else -> tclaimed = true   /* claimed */
                fi
            };
            unlock();
            if
            :: tclaimed -> assert(signaled[me]); woken = true; tclaimed = false
            :: else
            fi;
            break
#endif
        fi
    od;
    /* however it returns, the node is off the list: the caller re-uses it */
    assert(!queued[me])
}

proctype producer() {
    byte k, pos, nd, j;
#ifndef LOCKED_WAKE
    bool held[NW];
#endif
    do
    :: k < K ->
        /* wp_reserve: the head CAS fails for good once closed (-ESHUTDOWN). */
        if
        :: atomic { !closed -> pos = head; head++ }
        :: closed -> break
        fi;
        pub[pos] = true;                     /* wp_queue_publish: seq_cst xchg */
        notify_one();
        k++
    :: else -> break
    od
}

/* wpool_submit_batch: each task submitted without a notify, then one
 * wp_park_notify(1) if any was queued. */
proctype batch() {
    byte k, pos, nd, j;
#ifndef LOCKED_WAKE
    bool held[NW];
#endif
    do
    :: k < NB ->
        if
        :: atomic { !closed -> pos = head; head++ }
        :: closed -> break
        fi;
        pub[pos] = true;
        k++
    :: else -> break
    od;
    if
    :: k > 0 -> notify_one()
    :: else
    fi
}

proctype worker(byte me) {
    byte t = NONE, r, nd, j;
    bool woken, claimed;
#ifdef TIMED
    bool tclaimed;
#endif
#ifndef LOCKED_WAKE
    bool held[NW];
#endif
again:                                       /* wp_next_task's loop */
    take(t);
#if SPINS > 0
    do                                       /* WP_SPIN_ROUNDS */
    :: t == NONE && r < SPINS -> take(t); r++
    :: else -> r = 0; break
    od;
#endif
    if
    :: t != NONE ->
#ifndef NO_CHAIN
        /* if (woken && wp_park_waiters() && wp_backlog()) notify(1):
         * the count, then the queue size (relaxed hints) */
        if
        :: woken && nwaiters > 0 ->
            if
            :: head > tail -> notify_one()
            :: else
            fi
        :: else
        fi;
#endif
        goto work
    :: else
    fi;
    if
    :: DRAINED -> goto out                   /* wp_all_taken */
    :: else
    fi;
    prepare();
#ifndef BROKEN
    take(t);                                 /* the re-check */
#endif
    if
    :: t != NONE || DRAINED ->
        cancel();
#if FIX_CANCEL == 1
        /* candidate fix: a cancel that finds its node claimed passes the
         * absorbed wake on: wp_park_notify(p, 1) */
        if
        :: claimed -> notify_one()
        :: else
        fi;
#elif FIX_CANCEL == 2
        /* candidate fix: a claimed cancel counts as a wake: the chain-wake
         * test (woken && waiters && backlog) applies to it */
        if
        :: claimed && t != NONE && nwaiters > 0 ->
            if
            :: head > tail -> notify_one()
            :: else
            fi
        :: else
        fi;
#endif
        claimed = false;
        if
        :: t != NONE -> goto work
        :: else -> goto out
        fi
    :: else
    fi;
    park_wait();
    goto again;
work:                                        /* wp_run, then wp_next_task anew */
    atomic { taken[t]++; assert(taken[t] == 1); t = NONE; woken = false };
    if
    :: skip                                  /* a short task */
    :: skip; closed                          /* a long one: runs until close */
    fi;
    goto again;
out:
    notify_all();                            /* wp_worker_main's exit wake */
    exited++
}

/* wpool_close. In QUIESCE runs it first waits until nothing else can move
 * (timeout) and checks the liveness property there: a published task is never
 * left untaken while a worker sleeps. In EARLY runs it closes at any moment,
 * racing the producers. Then the closes and the wake, the join, and the
 * exactly-once check. */
proctype closer() {
    byte i, nd, j;
    bool quiesce;
#ifndef LOCKED_WAKE
    bool held[NW];
#endif
    if
    :: quiesce = false                       /* EARLY */
    :: quiesce = true                        /* QUIESCE */
    fi;
    if
    :: quiesce ->
        frozen = true;
        timeout;
        /* producers never block: all are done, so reserved == published */
        assert(head == tail || NASLEEP == 0)
    :: else -> skip
    fi;
    closed = true;                           /* wp_queue_close: seq_cst RMW */
    notify_all();
    exited == NW;                            /* pthread_join, every worker */
    assert(tail == head);
    do
    :: i < NT -> assert(taken[i] == (i < head -> 1 : 0)); i++
    :: else -> break
    od
}

/* The count invariant, checked in every reachable state. */
active proctype invariant() {
end:
    atomic { !INV -> assert(INV) }
}

init {
    byte i;
    atomic {
        i = 0;
        do
        :: i < NW -> run worker(i); i++
        :: else -> break
        od;
        i = 0;
        do
        :: i < NP -> run producer(); i++
        :: else -> break
        od;
#if NB > 0
        run batch();
#endif
        run closer()
    }
}
