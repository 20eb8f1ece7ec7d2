/* SPDX-License-Identifier: MIT */
/*
 * Promela model of backpressure with a max_queue (a "limited" pool) and the
 * drain notification: src/submit.c (wp_admit, wp_enqueue), src/room.c
 * (wp_refused, wp_drain_check, wp_room_made) and src/worker.c (wp_run).
 * Checked by tests/model/check.sh; docs/model.md ("room.pml") says what it
 * covers and what it does not.
 *
 *   submitter = a thread calling wpool_submit K times:
 *               A1 w = waiting; A2 i = idle; w - i >= MAXQ -> refused;
 *               else A3 CAS waiting w -> w + 1 (fails: w = waiting, A2),
 *               then publish the task (a worker may take it).
 *               Refused: R1 load refused; 0 -> R2 refused = 1;
 *               R3 drain_check.
 *   worker    = loops: take a task, T1 idle -= 1, T2 waiting -= 1,
 *               T3 room_made; run it; T4 idle += 1, T5 room_made.
 *   room_made = M1 load refused; 1 -> drain_check.
 *   drain_check = C1 lw = waiting; C2 li = idle; lw - li > LOW -> return;
 *               else C3 CAS refused 1 -> 0; won -> post one notification.
 *
 * Memory model: sequentially consistent, which is what the C code uses for
 * every access here (waiting, idle, refused: seq_cst RMWs, loads and the
 * store; R1 is relaxed, and only decides whether to store). One statement
 * per atomic access, so every interleaving of the accesses is explored.
 *
 * Property (checked when every process has finished): no lost drain. A
 * refusal left unconsumed (refused == 1) means the backlog is still above
 * the low-water mark; once it falls to LOW or below after a refusal, one
 * notification was posted. And never more notifications than refusals
 * (one per burst).
 *
 * Broken variants, each must fail:
 *   ROOM_FIRST   the worker looks at the flag (M1) before it makes room
 *                (T1, T2; and before T4): a refusal between its look and
 *                its RMWs sees the backlog still high and is never
 *                consumed. With a low-water mark of 0 or more a task is
 *                still queued then, and its taker's look consumes the
 *                refusal; with max_queue 0 (low water -1) the loss shows.
 *   LEVEL_FIRST  the refusing submitter checks the level before it raises
 *                the flag: a worker that makes room in between sees no
 *                flag, the submitter saw the level high.
 */

#ifndef NS
#define NS 2 /* submitters */
#endif
#ifndef K
#define K 2 /* submits per submitter */
#endif
#ifndef NW
#define NW 1 /* workers */
#endif
#ifndef MAXQ
#define MAXQ 1 /* max_queue */
#endif
#ifndef LOW
#define LOW 0 /* drain_low_water */
#endif

int waiting = 0;
int idle = NW;
bit refused = 0;
byte refusals = 0; /* refused submits (a ghost counter) */
byte posted = 0;   /* drain notifications posted */
byte subs_done = 0; /* submitters that have finished */
byte finished = 0;  /* processes that have finished */
chan tasks = [NS * K] of { bit };

inline drain_check(lw, li)
{
    lw = waiting;
    li = idle;
    if
    :: lw - li > LOW -> skip
    :: else ->
        atomic {
            if
            :: refused == 1 -> refused = 0; posted++
            :: else -> skip
            fi
        }
    fi
}

inline room_made(lw, li)
{
    if
    :: refused == 1 -> drain_check(lw, li)
    :: else -> skip
    fi
}

proctype submitter()
{
    byte k = 0;
    int w, i, lw, li;
    do
    :: k < K ->
        w = waiting;
retry:
        i = idle;
        if
        :: w - i >= MAXQ ->
            refusals++;
#ifdef LEVEL_FIRST
            drain_check(lw, li);
            if
            :: refused == 0 -> refused = 1
            :: else -> skip
            fi
#else
            if
            :: refused == 0 -> refused = 1
            :: else -> skip
            fi;
            drain_check(lw, li)
#endif
        :: else ->
            if
            :: atomic { waiting == w -> waiting = w + 1 }
            :: atomic { waiting != w -> w = waiting }; goto retry
            fi;
            tasks!1
        fi;
        k++
    :: k == K -> break
    od;
    atomic { subs_done++; finished++ }
}

proctype worker()
{
    int lw, li;
    do
    :: tasks?1 ->
#ifdef ROOM_FIRST
        room_made(lw, li);
        idle--;
        waiting--;
#else
        idle--;
        waiting--;
        room_made(lw, li);
#endif
        /* the task runs here */
#ifdef ROOM_FIRST
        room_made(lw, li);
        idle++
#else
        idle++;
        room_made(lw, li)
#endif
    :: subs_done == NS && len(tasks) == 0 -> break
    od;
    finished++
}

init
{
    byte n;
    atomic {
        for (n : 1 .. NS) { run submitter() }
        for (n : 1 .. NW) { run worker() }
    }
    finished == NS + NW;
    assert(posted <= refusals);
    assert(!(refused == 1 && waiting - idle <= LOW))
}
