/* SPDX-License-Identifier: MIT */
/*
 * Promela model of deferred completion: src/defer.c (wp_defer_hold,
 * wpool_task_complete, wp_pool_completed_later), the worker's side in
 * src/worker.c (wp_run) and the wait for pending tasks in src/pool.c
 * (wpool_destroy; close and shutdown wait the same way). Checked by
 * tests/model/check.sh; docs/model.md ("defer.pml") says what it covers.
 *
 * The task's state word holds its phase and status together (task.h).
 *
 *   worker    = W1 word = RUNNING; run the work, which hands the task to
 *               the completers (they may start at once) and, with SELF,
 *               completes it itself first; it returns WPOOL_PENDING.
 *               W2 pending += 1; W3 CAS word RUNNING -> PENDING; failed
 *               (EARLY|s): W4 word = INFLIGHT|s, post, and count it out
 *               (pending -= 1 under the lock).
 *   completer = C1 load word; RUNNING: C2 CAS -> EARLY|me (won: done,
 *               the worker posts); PENDING: C3 CAS -> INFLIGHT|me (won:
 *               C4 post, C5 pending -= 1 under the pool's lock); anything
 *               else: -EALREADY. A failed CAS loads the word again.
 *   destroy   = joins the worker, then under the lock waits for
 *               pending == 0, then frees the pool.
 *
 * Two completers race (one is the code that finished the asynchronous job,
 * the other a second, mistaken call, or both mistaken): exactly one call
 * succeeds. Memory model: sequentially consistent; one statement per
 * atomic access. The C code's orders (release CAS to PENDING and to EARLY,
 * acquire on the CAS that reads them) make each winner see what the other
 * side wrote before its CAS, which is what this interleaving model assumes.
 *
 * Properties: no post after the pool is freed; at the end, exactly one post,
 * carrying the status of the one completer whose call succeeded, and the
 * pending count back at 0.
 *
 * Broken variants, each must fail:
 *   PLAIN_PEND       the worker stores PENDING instead of its CAS: a
 *                    completion made while the work ran is overwritten and
 *                    never posted (the completer was told it succeeded).
 *   DEC_BEFORE_POST  the completer lowers the pending count before its
 *                    post: destroy frees the pool under it.
 */

#define IDLE     0
#define INFLIGHT 1
#define RUNNING  2
#define PENDING  3
#define EARLY    4

#ifndef NC
#define NC 2 /* completers */
#endif

byte phase = IDLE;
byte status = 0; /* the word's other half: 0, or the completer's id (1..NC) */
byte pending = 0;
byte posted = 0;
byte posted_status = 0;
byte succeeded = 0; /* completer calls that returned 0 */
byte winner = 0;
bool handed = false; /* the work function handed the task over */
bool worker_done = false;
bool freed = false;

inline post(s)
{
    d_step {
        assert(!freed);
        posted++;
        posted_status = s
    }
}

proctype worker()
{
    byte s;
    phase = RUNNING; status = 0; /* W1 */
    handed = true;
#ifdef SELF
    /* The work completes the task itself before returning: as a completer
     * that finds RUNNING (C2). */
    atomic {
        if
        :: phase == RUNNING -> phase = EARLY; status = NC + 1; succeeded++; winner = NC + 1
        :: else -> skip
        fi
    }
#endif
    pending++; /* W2 */
#ifdef PLAIN_PEND
    phase = PENDING; status = 0;
#else
    atomic { /* W3 */
        if
        :: phase == RUNNING -> phase = PENDING; status = 0; s = 0
        :: else -> assert(phase == EARLY); s = status
        fi
    }
    if
    :: s != 0 ->
        phase = INFLIGHT; /* W4, status kept */
        post(s);
        d_step { assert(!freed); pending-- }
    :: else -> skip
    fi
#endif
    worker_done = true
}

proctype completer(byte me)
{
    byte p, s;
    handed; /* it learns of the task from the work function */
C1: atomic { p = phase; s = status };
    if
    :: p == RUNNING ->
        atomic { /* C2 */
            if
            :: phase == p && status == s -> phase = EARLY; status = me; succeeded++; winner = me
            :: else -> goto C1
            fi
        }
    :: p == PENDING ->
        atomic { /* C3 */
            if
            :: phase == p && status == s -> phase = INFLIGHT; status = me
            :: else -> goto C1
            fi
        }
        succeeded++;
        winner = me;
#ifdef DEC_BEFORE_POST
        d_step { assert(!freed); pending-- }
        post(me);
#else
        post(me); /* C4 */
        d_step { assert(!freed); pending-- } /* C5, under the lock */
#endif
    :: else -> skip /* -EALREADY */
    fi
}

proctype destroyer()
{
    worker_done; /* joined */
    atomic { pending == 0 -> freed = true } /* the wait under the lock */
}

init {
    atomic {
        run worker();
        run completer(1);
        run completer(2);
        run destroyer()
    }
    timeout -> skip;
    assert(freed && posted == 1 && succeeded == 1 && posted_status == winner && pending == 0)
}
