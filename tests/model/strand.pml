/* SPDX-License-Identifier: MIT */
/*
 * Promela model of strands: src/strand.c (wp_strand_enter,
 * wp_strand_head_queued, wp_strand_release, wp_strand_withdraw), the
 * strand path of src/submit.c (wp_queue_stranded), the release points of
 * src/worker.c (wp_run), src/cancel.c (wp_pool_withdrawn) and src/defer.c
 * (wpool_task_complete), and the workers' exit test (wp_all_taken).
 * Checked by tests/model/check.sh; docs/model.md ("strand.pml") says what
 * it covers.
 *
 * One strand, NT tasks, each submitted by its own thread; NW workers; one
 * canceller that withdraws one task of its choosing wherever it is; a closer
 * that closes the pool at any moment; with PEND, task 1's work returns
 * WPOOL_PENDING and a completer finishes it later.
 *
 *   submit    = lock; idle: busy, queue into the ring unless closed (then
 *               idle again); busy: count += 1, closed? (count -= 1,
 *               refused) else append; unlock.
 *   worker    = take from the ring (a withdrawn cell is skipped); run;
 *               release, then post. No task: closed? count == 0? ring
 *               empty? (three reads, in this order) -> exit; else sleep
 *               until the ring has a task or the exit test would pass.
 *   release   = lock; the oldest waiting task into the ring (even when
 *               closed), or idle; unlock; count -= 1 if one moved.
 *   canceller = in the ring: withdraw the cell (a CAS), release, post;
 *               waiting: under the lock, unlink if still there, count -= 1,
 *               post; moved on meanwhile: look again.
 *
 * The sleep is an ideal wait (park.pml checks the parking lot itself).
 * Memory model: sequentially consistent, one statement per shared access
 * where the C code makes one (the strand's state is under its lock).
 *
 * Properties: the strand's tasks never overlap and start in the order the
 * strand accepted them (ranks given under the lock); at the end every
 * accepted task was posted exactly once and every refused one never, no
 * task is left waiting, and every worker has exited.
 *
 * Broken variants, each must fail:
 *   CHECK_FIRST    an append reads the close before it raises the count: a
 *                  worker exits while the task waits (never posted).
 *   COUNT_FIRST    a release lowers the count before the task is in the
 *                  ring: a worker exits in between.
 *   RING_FIRST     the exit test reads the ring before the count: the same.
 *   IGNORE_COUNT   the exit test ignores the count: with PEND, workers exit
 *                  while the pending head holds tasks back.
 *   BUSY_EARLY     a release clears busy and unlocks before it moves the
 *                  next task on: a new submit overtakes the waiting one.
 *   HEAD_UNLOCKED  a head is queued after the unlock: one appended behind a
 *                  head that the close then refuses is never released.
 *   NO_RELEASE     a canceller that withdraws the head does not release the
 *                  strand: the tasks behind it wait forever.
 *   NO_RETRY       a canceller that finds its task gone from the strand's
 *                  list gives up (cancel says "not queued" of a queued one).
 *   SLOT_GAP       the release clears the task's slot before it places the
 *                  task: a canceller that looks in between answers "not
 *                  queued" (found in review, in the C code before the fix).
 */

#ifndef NT
#define NT 3
#endif
#ifndef NW
#define NW 2
#endif

#define NOWHERE 0
#define WAITING 1
#define QUEUED  2
#define TAKEN   3
#define PENDING 4

bool lock = false;
bool busy = false;
byte wl[NT];       /* the strand's waiting list, oldest first (0: unlinked) */
byte wh = 0, wt = 0;
byte ring[NT + 1]; /* one ring; 0 in a cell: withdrawn */
byte rh = 0, rt = 0;
bool closed = false;
byte count = 0;    /* the pool's strand_waiting */
byte where[NT + 1];
byte rank[NT + 1]; /* acceptance order, 1-based; 0: refused (or not yet) */
byte accepted = 0;
byte refused = 0;
byte last = 0;     /* rank of the last task started */
byte inside = 0;
byte posted[NT + 1];
byte exited = 0;
byte submitted = 0;
bool cancel_missed = false;
bool cancel_done = false;

inline lock_strand() { atomic { !lock -> lock = true } }
inline unlock_strand() { lock = false }

inline accept(t) { d_step { accepted++; rank[t] = accepted } }

inline ring_push(t) { d_step { ring[rh] = t; rh++; where[t] = QUEUED } }

inline post(t) { d_step { assert(posted[t] == 0); posted[t] = 1 } }

/* The oldest waiting task into the ring, or the strand idle (rn: a local
 * of the caller). A critical section is one atomic step where nothing in
 * it is seen outside the lock, split where a lock-free reader could see
 * its middle. */
inline release()
{
#ifdef BUSY_EARLY
    atomic { !lock -> busy = false }; /* and the lock dropped */
#endif
    atomic {
        !lock -> lock = true;
        rn = 0;
        do
        :: wt < wh && wl[wt] == 0 -> wt++
        :: else -> break
        od;
        if
        :: wt < wh -> rn = wl[wt]; wl[wt] = 0; wt++;
#ifdef SLOT_GAP
            where[rn] = NOWHERE; /* the slot cleared before the placement */
#endif
#ifdef BUSY_EARLY
            busy = true;
#endif
#ifdef COUNT_FIRST
            count--
#else
            skip
#endif
        :: else -> busy = false
        fi
    }
    d_step {
        if
        :: rn != 0 -> ring_push(rn)
        :: else -> skip
        fi;
        lock = false
    }
#ifndef COUNT_FIRST
    if
    :: rn != 0 -> count--
    :: else -> skip
    fi
#endif
}

proctype submitter(byte t)
{
    lock_strand();
    if
    :: !busy ->
        busy = true;
#ifdef HEAD_UNLOCKED
        unlock_strand();
#endif
        atomic { /* the ring's reserve fails once closed */
            if
            :: !closed -> accept(t); ring_push(t)
            :: else -> refused++; busy = false
            fi;
#ifndef HEAD_UNLOCKED
            lock = false
#endif
        }
    :: else ->
#ifdef CHECK_FIRST
        if
        :: closed -> refused++; unlock_strand(); goto done
        :: else -> skip
        fi;
        count++;
#else
        count++;
        if
        :: closed -> unlock_strand(); count--; refused++; goto done
        :: else -> skip
        fi;
#endif
        d_step { accept(t); wl[wh] = t; wh++; where[t] = WAITING; lock = false }
    fi;
done:
    submitted++
}

proctype worker()
{
    byte t, n, rn;
    bool c, e;
loop:
    atomic {
        if
        :: rt < rh -> t = ring[rt]; ring[rt] = 0; rt++;
            if
            :: t != 0 -> where[t] = TAKEN
            :: else -> skip
            fi
        :: else -> t = 255
        fi
    }
    if
    :: t == 0 -> goto loop /* a withdrawn cell */
    :: t != 0 && t != 255 ->
        d_step { assert(inside == 0); inside++; assert(rank[t] > last); last = rank[t] };
        inside--;
#ifdef PEND
        if
        :: t == 1 -> where[t] = PENDING; goto loop /* the completer ends it */
        :: else -> skip
        fi;
#endif
        release();
        post(t);
        d_step { t = 0; rn = 0 };
        goto loop
    :: else -> skip
    fi;
#ifdef RING_FIRST
    e = rt == rh;
    c = closed;
    n = count;
#else
    c = closed;
    n = count;
    e = rt == rh;
#endif
#ifdef IGNORE_COUNT
    n = 0;
#endif
    if
    :: c && n == 0 && e -> exited++; goto end
    :: else -> d_step { c = false; n = 0; e = false; t = 0 };
        atomic { rt < rh || (closed && count == 0) }; goto loop
    fi;
end:
    skip
}

#ifdef PEND
proctype completer()
{
    byte rn;
endwait:
    where[1] == PENDING; /* task 1 may be refused, or withdrawn */
    release();
    post(1);
    where[1] = TAKEN
}
#endif

proctype canceller()
{
    byte t, w, i, rn, r;
    byte tries = 0;
#ifdef CT
    t = CT;
#else
    if
    :: t = 1
    :: t = 2
    :: t = NT
    fi;
#endif
again:
    atomic { w = where[t]; r = rank[t] }; /* the slot's one load */
    if
    :: w == QUEUED ->
        atomic { /* the CAS on its cell */
            i = 0;
            do
            :: i < rh && ring[i] == t -> ring[i] = 0; where[t] = TAKEN; i = 255; break
            :: i < rh && ring[i] != t -> i++
            :: i >= rh -> break
            od
        }
        if
        :: i == 255 ->
#ifndef NO_RELEASE
            release();
#endif
            post(t)
        :: else -> skip /* a worker took it: not queued */
        fi
    :: w == WAITING ->
        atomic {
            !lock -> /* under the lock: unlinked if still there */
            if
            :: where[t] == WAITING ->
                i = 0;
                do
                :: wl[i] == t -> wl[i] = 0; break
                :: else -> i++
                od;
                where[t] = TAKEN;
                i = 255
            :: else -> i = 0
            fi
        }
        if
        :: i == 255 -> count--; post(t)
        :: else ->
#ifdef NO_RETRY
            cancel_missed = where[t] == QUEUED
#else
            tries++;
            if
            :: tries < 3 -> goto again
            :: else -> skip
            fi
#endif
        fi
    :: w == NOWHERE && r != 0 -> cancel_missed = true /* accepted, not started: "not queued" */
    :: else -> skip
    fi;
    cancel_done = true
}

init {
    byte t;
    atomic {
        t = 1;
        do
        :: t <= NT -> run submitter(t); t++
        :: else -> break
        od;
        t = 0;
        do
        :: t < NW -> run worker(); t++
        :: else -> break
        od;
        run canceller();
#ifdef PEND
        run completer();
#endif
    }
    closed = true; /* at any moment (init interleaves with the others) */
    (submitted == NT && exited == NW && where[1] != PENDING && cancel_done);
    t = 1;
    do
    :: t <= NT ->
        assert(rank[t] == 0 && posted[t] == 0 || rank[t] != 0 && posted[t] == 1);
        t++
    :: else -> break
    od;
    assert(accepted + refused == NT && count == 0 && !busy && rt == rh && !cancel_missed)
}
