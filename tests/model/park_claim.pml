/* SPDX-License-Identifier: MIT */
/*
 * HISTORICAL, not run by tests/model/check.sh: the model of the claiming
 * eventcount that park.c used before the parking lot (see docs/model.md,
 * "History"); spin finds a lost wakeup in it (invalid end state, depth 102,
 * with the default flags). Kept for the record; was src/park.pml.
 *
 * Promela model of the pool's sleep/wake protocol: the eventcount in park.c
 * (the claiming version: notify takes the waiters it wakes off the count, a
 * woken waiter does not deregister) as used by worker.c. Checked by
 * tests/model/check.sh; docs/model.md says what it covers and what it does
 * not.
 *
 *   producer  = wpool_submit: wp_reserve, wp_queue_publish, wp_park_notify(1)
 *   batch     = wpool_submit_batch: NB reserves and publishes, then one
 *               wp_park_notify(1)
 *   worker    = wp_worker_main around wp_next_task (spin, prepare, re-check,
 *               wp_park_wait, chain-wake), then wp_park_notify_all on exit
 *   closer    = wpool_close -> wp_close_queues: wp_queue_close,
 *               wp_park_notify_all, join
 *
 * The eventcount:
 *   prepare   fetch_add(word, 1): waiters++, returns the epoch (the key)
 *   cancel    wp_park_leave: waiters-- only while epoch == key (CAS)
 *   wait      while (epoch == key) FUTEX_WAIT_BITSET(key, tag(key));
 *             no deregistration after the loop (the notifier claimed us)
 *   notify(1) load; if waiters: CAS waiters -= 1, epoch++ (E = new epoch);
 *             FUTEX_WAKE_BITSET(1, ~tag(E)) -> woken; if woken < 1:
 *             FUTEX_WAKE(1 - woken), any tag (the shortfall wake)
 *   notify_all  RMW waiters = 0, epoch++; FUTEX_WAKE(INT_MAX) if it had
 *             waiters
 * tag(k) = 1 << (k mod 32) in the C code; here k mod TAGMOD, so that a
 * sleeper TAGMOD epochs stale shares the current tag with a small model.
 *
 * The futex: FUTEX_WAIT compares the epoch with key and queues the caller in
 * one atomic step (EAGAIN if they differ). A wake picks ANY queued sleeper
 * whose tag the bitset matches (nondeterministic); with -DFIFO the queue is
 * ordered and a wake takes the matching sleepers from the front, as Linux
 * does for waiters of equal priority (a woken sleeper that goes back to sleep
 * re-queues at the back).
 *
 * Memory model: sequentially consistent (Promela interleaving). Every access
 * the no-lost-wakeup argument depends on is seq_cst or an RMW in the C code
 * (prepare, publish, the queue loads of pop/drained, notify's load and CAS,
 * every epoch bump), so their interleaving is one total order, which is what
 * an SC model explores. The relaxed accesses (wp_park_leave's load and CAS,
 * wp_park_waiters, wp_queue_size) are modelled as SC accesses too.
 *
 * Build flags (spin -D...):
 *   NW, NP, K   workers, producers, tasks per producer (default 2, 2, 1)
 *   NB          tasks of one wpool_submit_batch call (default 0: no batch)
 *   TAGMOD      tag modulus (default 2; 32 in the C code, and any value above
 *               the number of epoch bumps in a run means "no wrap-around")
 *   SPINS       extra polls before prepare (WP_SPIN_ROUNDS; default 0: a
 *               failed poll changes nothing, so one poll that the scheduler
 *               may delay already covers every outcome of several)
 *   SPURIOUS    spurious futex wakeups allowed in a run (default 1)
 *   FIFO        futex wakes in queue order instead of any matching sleeper
 *   BROKEN      drop the re-check of the queue after wp_park_prepare
 *   NO_CHAIN    drop the chain-wake in wp_next_task
 *   NO_TAGS     plain FUTEX_WAKE(claim) instead of the bitset wake
 *   NO_SHORTFALL  drop notify's second (any-tag) wake
 *   FORWARD     (a candidate fix, not the C code) a sleeper woken while its
 *               key is still current passes the wake on:
 *               FUTEX_WAKE_BITSET(1, ~tag(key)) before sleeping again
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
#ifndef TAGMOD
#define TAGMOD 2
#endif
#ifndef SPINS
#define SPINS 0
#endif
#ifndef SPURIOUS
#define SPURIOUS 1
#endif

#define NT   (NP * K + NB)  /* queue positions: capacity >= NT, no lap reuse */
#define NONE 255
#define TAG(k) ((k) % TAGMOD)

/* ---- the eventcount word: epoch:waiters, one atomic word ----------------- */
byte epoch;             /* high half; FUTEX_WAIT/WAKE act on it */
byte waiters;           /* low half */
bool reg[NW];           /* worker i is between prepare and the end of its wait
                         * (or its cancel): a waiter */
byte wkey[NW];          /* its key while reg[i]; its futex tag is TAG(wkey) */
bool asleep[NW];        /* worker i is queued on the futex (kernel state) */
#ifdef FIFO
byte fq[NW];            /* the futex queue, front first */
byte fqn;
byte qj, qk;            /* scratch for the queue operations (always 0 between
                         * indivisible steps) */
#endif
byte spurious = SPURIOUS;
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
#define CUR(i) (reg[i] && wkey[i] == epoch)
#define NCUR (CUR(0) + CUR(1))
#elif NW == 3
#define NASLEEP (asleep[0] + asleep[1] + asleep[2])
#define CUR(i) (reg[i] && wkey[i] == epoch)
#define NCUR (CUR(0) + CUR(1) + CUR(2))
#else
#error "NW must be 2 or 3"
#endif
#define DRAINED (closed && tail == head)

/* The count never runs low: every waiter registered on the current epoch is
 * in it (it may run high: waiters claimed and gone, or of an older key). */
#define INV (waiters >= NCUR)

/* wp_queue_pop (and wp_take: one queue, no tombstones): the seq_cst load of
 * the tail cell's seq and the tail CAS, one linearisation point. A failed CAS
 * retries with no effect, so the model takes it as one atomic step. */
inline take(t) {
    atomic {
        if
        :: tail < NT && pub[tail] -> t = tail; tail++
        :: else -> t = NONE
        fi
    }
}

/* wp_park_prepare: fetch_add(word, 1), returns the epoch. */
inline prepare(key) {
    atomic { waiters++; key = epoch; wkey[me] = key; reg[me] = true }
}

/* wp_park_cancel -> wp_park_leave: the relaxed load and the CAS loop, which
 * only ever succeeds while the epoch is still key; one atomic step (a failed
 * CAS re-reads and re-tests, with no effect). */
inline cancel(key) {
    atomic {
        if
        :: epoch == key && waiters > 0 -> waiters--
        :: else
        fi;
        reg[me] = false; wkey[me] = 0
    }
}

#ifdef FIFO
/* Removes the sleeper at queue index qj (inside an indivisible step). */
inline fq_drop() {
    asleep[fq[qj]] = false;
    qk = qj;
    do
    :: qk + 1 < fqn -> fq[qk] = fq[qk + 1]; qk++
    :: else -> break
    od;
    fqn--; fq[fqn] = 0; qk = 0
}

/* A FUTEX_WAKE(_BITSET): wakes up to cnt queued sleepers, front first, whose
 * tag is not xt (any tag if anytag); cnt is decremented per sleeper woken. */
inline wake(cnt, xt, anytag) {
    d_step {
        qj = 0;
        do
        :: cnt > 0 && qj < fqn ->
            if
            :: anytag || TAG(wkey[fq[qj]]) != xt -> fq_drop(); cnt--
            :: else -> qj++
            fi
        :: else -> break
        od;
        qj = 0
    }
}

/* FUTEX_WAIT_BITSET(key, tag(key)): compare and queue, one atomic step. */
inline futex_wait(key) {
    d_step {
        if
        :: epoch == key -> asleep[me] = true; fq[fqn] = me; fqn++
        :: else
        fi
    }
}

inline spurious_wake() {
    atomic {
        asleep[me] && spurious > 0 && !frozen -> spurious--;
        d_step {
            qj = 0;
            do
            :: fq[qj] == me -> break
            :: else -> qj++
            od;
            fq_drop(); qj = 0
        }
    }
}

#else /* any matching sleeper */

#define CANWAKE(i, xt, anytag) (asleep[i] && (anytag || TAG(wkey[i]) != xt))

inline wake(cnt, xt, anytag) {
    atomic {
        do
        :: cnt > 0 && CANWAKE(0, xt, anytag) -> asleep[0] = false; cnt--
        :: cnt > 0 && CANWAKE(1, xt, anytag) -> asleep[1] = false; cnt--
#if NW > 2
        :: cnt > 0 && CANWAKE(2, xt, anytag) -> asleep[2] = false; cnt--
#endif
        :: else -> break
        od
    }
}

inline futex_wait(key) {
    asleep[me] = (epoch == key)
}

inline spurious_wake() {
    atomic { asleep[me] && spurious > 0 && !frozen -> spurious--; asleep[me] = false }
}
#endif

/* FUTEX_WAKE(INT_MAX). */
inline wake_all() {
    atomic {
        cnt = NW;
        wake(cnt, 0, true);
        cnt = 0
    }
}

/* wp_park_notify(p, 1). The seq_cst load and the CAS loop are one atomic
 * step: a load that sees no waiter returns (as it would at the CAS), and a
 * CAS that fails re-reads and re-tests the count. Then the two wakes, each a
 * separate step that may come arbitrarily late. */
inline notify_one() {
    atomic {
        if
        :: waiters == 0 -> cnt = 0
        :: else -> cnt = 1; waiters--; epoch++; ne = epoch
        fi
    };
    if
    :: cnt > 0 ->
#ifdef NO_TAGS
        wake(cnt, 0, true);                  /* FUTEX_WAKE(claim) */
#else
        wake(cnt, TAG(ne), false);           /* FUTEX_WAKE_BITSET(claim, ~tag(E)) */
#endif
#ifndef NO_SHORTFALL
        if
        :: cnt > 0 -> wake(cnt, 0, true)     /* FUTEX_WAKE(claim - woken) */
        :: else
        fi;
#endif
        skip
    :: else
    fi;
    d_step { cnt = 0; ne = 0 }
}

/* wp_park_notify_all: one RMW (waiters = 0, epoch++) returning the old word,
 * then FUTEX_WAKE(INT_MAX) if it had waiters. */
inline notify_all() {
    atomic { prev = waiters; waiters = 0; epoch++ };
    if
    :: prev > 0 -> wake_all()
    :: else -> skip
    fi;
    prev = 0
}

/* wp_park_wait(p, key): while the epoch is still key, FUTEX_WAIT_BITSET; a
 * queued sleeper leaves the queue when a wake picks it or spuriously (at most
 * SPURIOUS times in a run, and not once the closer watches for quiescence).
 * No deregistration after the loop. */
inline park_wait(key) {
    do
    :: epoch != key -> break
    :: else ->
        futex_wait(key);
        if
        :: !asleep[me]
        :: spurious_wake()
        fi;
#ifdef FORWARD
        /* woken (or EAGAIN) with the key still current: the wake was meant
         * for an older sleeper; pass it on to one (candidate fix) */
        if
        :: epoch == key -> cnt = 1; wake(cnt, TAG(key), false); cnt = 0
        :: else
        fi
#endif
    od;
    atomic { reg[me] = false; wkey[me] = 0 }
}

proctype producer() {
    byte k, pos, cnt, ne;
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
    byte k, pos, cnt, ne;
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
    byte t = NONE, key, r, prev, cnt, ne;
    bool woken;
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
        :: woken && waiters > 0 ->
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
    :: DRAINED -> goto out                   /* wp_drained (see docs/model.md) */
    :: else
    fi;
    prepare(key);
#ifndef BROKEN
    take(t);                                 /* the re-check */
#endif
    if
    :: t != NONE || DRAINED ->
        cancel(key);
        if
        :: t != NONE -> goto work
        :: else -> goto out
        fi
    :: else
    fi;
    park_wait(key);
    d_step { woken = true; key = 0 };
    goto again;
work:                                        /* wp_run, then wp_next_task anew */
    atomic { taken[t]++; assert(taken[t] == 1); t = NONE; key = 0; woken = false };
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
    byte i, prev, cnt;
    bool quiesce;
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
