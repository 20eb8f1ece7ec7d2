/* SPDX-License-Identifier: MIT */
/*
 * Promela model of a lane's ring and its overflow list (src/submit.c
 * wp_enqueue, src/overflow.c, src/worker.c wp_take_lane). Checked by
 * tests/model/check.sh; docs/model.md ("overflow.pml") says what it covers.
 *
 *   submitter = one thread submitting tasks 1..K in order:
 *               S1 read count; count > 0 -> push; else S2 ring has room ->
 *               reserve and publish (one step: the ring's own protocol is
 *               queue.c's); full -> push.
 *               push: lock; closed -> refused (-ESHUTDOWN); else append,
 *               count += 1; unlock.
 *   worker    = loops: take from the ring; else if count > 0: lock; if the
 *               ring holds tasks again, unlock (they are older: take them
 *               first); else take the head (count -= 1), then move up to M
 *               of the tasks behind it into the ring, oldest first, while it
 *               has room and is open; count -= moved; unlock. Exits once the
 *               ring is closed and empty and count == 0.
 *   closer    = closes the overflow under its lock, then the ring (after
 *               all submits, or at any moment with EARLY_CLOSE).
 *
 * Properties: every accepted task is taken exactly once (checked at the end:
 * taken == accepted, and each take is of the next id), and tasks are taken in
 * the order submitted (a task is taken only after every earlier accepted
 * one). Memory model: sequentially consistent; the C code's count is read
 * and changed with seq_cst accesses, the rest under the lock or through
 * the ring's own ordering.
 *
 * Broken variants, each must fail:
 *   NO_FIFO      the submitter ignores a non-empty overflow when the ring
 *                has room: a later task overtakes earlier ones.
 *   COUNT_FIRST  the mover lowers the count before it moves a task: a
 *                worker that sees 0 in between may exit with the task still
 *                waiting (an invalid end state).
 *   NO_RING_CHECK the worker takes the overflow's head without looking at
 *                the ring again under the lock: a task published to the
 *                ring after the worker found it empty, and before the same
 *                thread's next task was pushed, is overtaken.
 */

#ifndef K
#define K 4 /* tasks submitted */
#endif
#ifndef C
#define C 1 /* ring slots */
#endif
#ifndef NW
#define NW 1 /* workers */
#endif
#ifndef M
#define M 2 /* moved per pop */
#endif

chan ring = [C] of { byte };
chan ovf = [K] of { byte };
byte count = 0;  /* the overflow's count */
bit locked = 0;  /* the overflow's mutex */
bit closed = 0;      /* the overflow's flag, under its lock */
bit ring_closed = 0; /* the ring's close bit, set after (pool.c) */
byte accepted = 0;
byte taken = 0;  /* tasks taken */
byte last = 0;   /* the id taken last (ids from 1, submitted in order) */
byte submitted = 0;

inline lock() { atomic { locked == 0 -> locked = 1 } }
inline unlock() { locked = 0 }

inline took(id)
{
    /* in order, so at most once; `taken` counts them for the end check */
    assert(id > last);
    last = id;
    taken++
}

proctype submitter()
{
    byte id = 1;
    do
    :: id <= K ->
        if
#ifdef NO_FIFO
        :: atomic { !ring_closed && len(ring) < C -> ring!id; accepted++ }
        :: atomic { ring_closed || len(ring) >= C -> skip }; goto push
#else
        :: count > 0 -> goto push
        :: else ->
            if
            :: atomic { !ring_closed && len(ring) < C -> ring!id; accepted++ }
            :: atomic { ring_closed || len(ring) >= C -> skip }; goto push
            fi
#endif
        fi;
        goto next;
push:
        lock();
        if
        :: closed -> skip /* refused */
        :: else -> ovf!id; count++; accepted++
        fi;
        unlock();
next:
        id++
    :: id > K -> break
    od;
    submitted = 1
}

proctype worker()
{
    byte id, n;
    do
    :: atomic { nempty(ring) -> ring?id; took(id) }
    :: empty(ring) -> /* the ring scan found nothing; then the count */
        if
        :: count > 0
        :: else -> goto again
        fi;
        lock();
        if
#ifndef NO_RING_CHECK
        :: nempty(ring) -> skip /* older tasks in the ring: take those first */
        :: empty(ring) && nempty(ovf) ->
#else
        :: nempty(ovf) ->
#endif
            atomic { ovf?id; count--; took(id) };
            n = 0;
            do
            :: atomic { n < M && nempty(ovf) && !ring_closed && len(ring) < C ->
#ifdef COUNT_FIRST
                count-- };
                atomic { len(ring) < C -> ovf?id; ring!id }; n++
#else
                ovf?id; ring!id }; n++
#endif
            :: else -> break
            od;
#ifndef COUNT_FIRST
            count = count - n
#endif
        :: empty(ring) && empty(ovf) -> skip
        fi;
        unlock();
again:
        skip
    :: atomic { ring_closed && empty(ring) && count == 0 -> break }
    od
}

proctype closer()
{
#ifndef EARLY_CLOSE
    submitted == 1;
#endif
    lock();
    closed = 1;
    unlock();
    ring_closed = 1
}

init
{
    byte i;
    atomic {
        run submitter();
        for (i : 1 .. NW) { run worker() }
        run closer()
    }
    (_nr_pr == 1);
    assert(taken == accepted && empty(ring) && empty(ovf))
}
