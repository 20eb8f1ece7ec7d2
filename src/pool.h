/* SPDX-License-Identifier: MIT */
/* The pool object and its workers, and the functions the pool's files export
 * to each other: submit.c (the submit path), worker.c, room.c (backpressure
 * and the drain notification), cancel.c, pool.c (life), with port.c and
 * token.c. */
#ifndef WP_POOL_H
#define WP_POOL_H

#include "common.h"
#include "defer.h"
#include "fork.h"
#include "overflow.h"
#include "port.h"
#include "park.h"
#include "queue.h"
#include "stats.h"
#include "strand.h"
#include "ticker.h"
#include "topology.h"
#include "wpool.h"

#include <pthread.h>
#include <stdbool.h>

enum wp_life {
    WP_OPEN,       /* accepting tasks */
    WP_CLOSING,    /* queues closed; workers finishing (a closer may be joining them) */
    WP_CLOSED,     /* workers joined, ports still usable */
    WP_DESTROYING, /* wpool_destroy is stopping workers or delivering leftovers */
};

/* One lane per work class (class.c): 0 and 1 are the priorities
 * (WPOOL_PRIORITY_NORMAL, WPOOL_PRIORITY_HIGH), the others are created by
 * wpool_class_create. */
#define WP_LANES WPOOL_MAX_CLASSES
/* Cells in each ring of a lane other than 0 in an unbounded pool (or
 * queue_capacity, if smaller): 4 KiB a ring. */
#define WP_HIGH_RING 256u

/* A drain notification: the pool's (max_queue) or a class's (room.c). */
struct wp_drain {
    /* Registration, posting, a port's destroy and the callback's look-up
     * all take the lock, so a notification always goes to the port
     * registered when it is posted, and that port cannot be closed
     * meanwhile. Taken alone, or under a token's lock (a token cancel that
     * makes room); nothing is taken under it. */
    pthread_mutex_t lock;
    struct wpool_task task; /* the notification's completion record */
    bool posted;            /* task is on its way (posted, its callback not run) */
    struct wpool_port *port;
    wpool_drain_fn fn;
    void *arg;
    struct wpool *pool;
    int lane;          /* its class, or WP_ALL_LANES: the pool's */
    int64_t low_water; /* drain when the backlog falls to this */
    /* A submit found no room; the drain not yet signalled. */
    WP_ALIGNED _Atomic int refused;
};

/* Shared histograms of a created class (several workers write them). */
struct wp_class_hist {
    struct wp_hist wait, run;
};

/* A work class: its lane (rings, overflow), its rules and counters. The
 * rules are written once, before the lane is published (wpool_class_create
 * stores `rings` with release; readers load it with acquire). */
struct wp_class {
    _Atomic(struct wp_queue *) rings; /* nqueues of them; NULL: no such class */
    struct wp_overflow overflow;      /* what did not fit the rings (unless bounded) */
    /* wpool_submit_wait sleeps here for room in this lane: room in one lane
     * must not be handed to a waiter that can only use another. */
    struct wp_park space;
    /* Its reserved workers sleep here while they keep to it (worker.c). */
    struct wp_park home;
    unsigned int cap;      /* most workers running its tasks; 0: no cap */
    unsigned int reserved; /* workers reserved for it */
    unsigned int weight;   /* tasks per round of the weighted round robin */
    uint64_t lend_ns;      /* a reserved worker lends itself after this idle */
    bool limited;          /* max_queue of its own */
    int64_t max_queue;
    /* Workers running its tasks (capped classes: claimed before a take),
     * and whether a claim was turned away at the cap since a place was last
     * given back after an empty take (worker.c). */
    WP_ALIGNED _Atomic int running;
    _Atomic int turned;
    /* Limited: accepted tasks not yet taken or cancelled. */
    WP_ALIGNED _Atomic int64_t waiting;
    _Atomic uint64_t refusals;  /* submits refused by its max_queue */
    _Atomic uint64_t withdrawn; /* cancelled by non-workers */
    struct wp_drain drain;      /* limited classes */
    struct wp_class_hist *hist; /* created classes */
};

struct wp_worker {
    WP_ALIGNED pthread_t thread;
    struct wpool *pool;
    unsigned int index;
    /* The class it is reserved for, or 0 (written by wpool_class_create;
     * acquire/release: its rules are read after it). */
    _Atomic int home;
    uint64_t lend_at;             /* reserved: runs other classes from this wp_clock_ns */
    unsigned int rr_pos;          /* weighted round robin: its place in the order */
    unsigned int rr_credit;       /* tasks left to take from that lane */
    bool overflow_turn[WP_LANES]; /* bounded pools: the lane's overflow went first last time */
    _Atomic int lane;             /* class of the task it runs, or -1 (statistics) */
    int recheck;                  /* capped class whose place it gave back, or -1 */
    unsigned int spin;            /* polls before sleeping (adaptive, see worker.c) */
    uint64_t last_end;            /* ticks at the end of the last task (timing) */
    bool started;                 /* thread created and not joined */
    bool holding;                 /* coalescing: completions pushed, not yet signalled */
    struct wp_post_guard guard;   /* the port it is posting to (port.h) */
    /* This worker's node on pool->park, a late-wake park: it outlives every
     * wait, so a notifier's late futex wake names live memory (park.h). */
    struct wp_park_node node;
    WP_ALIGNED struct wp_wstats st;
    /* Per class: ran, cancelled, timed out (its own writer; readers relaxed). */
    _Atomic uint64_t lane_count[WP_LANES][3];
};

struct wpool {
    struct wp_park park;                     /* idle workers sleep here; own cache line */
    WP_ALIGNED _Atomic unsigned int rr_next; /* ROUND_ROBIN: next queue (a hint) */
    WP_ALIGNED _Atomic int cancel_queued;    /* cancel instead of run (destroy, CLOSE_CANCEL) */
    _Atomic uint32_t used;                   /* lanes a task was ever queued in (bit per lane) */
    /* Backpressure with a max_queue (limited): accepted tasks not yet taken
     * or cancelled, and workers not running a task. */
    WP_ALIGNED _Atomic int64_t waiting;
    WP_ALIGNED _Atomic int64_t idle;
    WP_ALIGNED _Atomic uint64_t cancelled; /* cancelled by non-workers */
    /* Ticks at creation or the last wpool_stats_reset: the epoch and its
     * start in one word (stats.h). */
    _Atomic uint64_t stats_epoch;
    _Atomic int64_t unsealed; /* groups initialised and not yet sealed */
    /* Deferred completion (defer.h): tasks pending now (raised by workers,
     * lowered under `lock`), ever deferred, and completed later. */
    WP_ALIGNED _Atomic int64_t pending;
    _Atomic uint64_t deferred;
    uint64_t later;                            /* under `lock` */
    uint64_t later_cancelled, later_timed_out; /* of `later`, by status; under `lock` */
    struct wp_ehist pend_hist;                 /* under `lock` */
    uint64_t born_ns, born_ticks;              /* for the tick rate */

    /* Read-mostly after creation. */
    WP_ALIGNED unsigned int nthreads;
    unsigned int nqueues; /* per lane: 1 (FIRST_FREE) or nthreads (ROUND_ROBIN) */
    uint32_t capacity;    /* slots per queue */
    /* The lanes, one per class; the pool's rings are numbered lane-major:
     * lane l's ring i is ring l * nqueues + i. */
    struct wp_class lanes[WP_LANES];
    /* Lanes in the round robin's order (heaviest first), 4 bits each, and
     * how many there are in the high half (written under `lock`, after
     * the lanes' weights: release/acquire). */
    _Atomic uint64_t order;
    _Atomic unsigned int nlanes;
    unsigned int reserved_total; /* workers reserved by classes; under `lock` */
    bool bounded;                /* the bounded option: a full ring refuses (-EAGAIN) */
    struct wp_worker *workers;
    struct wpool_port *default_port;
    struct wp_topology topo;
    bool pin;
    bool limited; /* max_queue set */
    bool timing;
    uint64_t coalesce_ns;    /* the coalesce_us option; 0: signal completions at once */
    struct wp_ticker ticker; /* coalescing: arms a held signal (ticker.h) */
    int64_t max_queue;       /* limited: waiting - idle must stay below it */
    unsigned int generation;
    int nice;
    size_t stack_size;
    wpool_worker_fn on_start, on_stop;
    void *hook_arg;

    /* The pool's drain notification (max_queue). */
    struct wp_drain drain;

    /* Strands (strand.h): the registry, and the tasks waiting behind their
     * strand's head (raised by appends, lowered when they move on). */
    pthread_mutex_t strand_lock;
    struct wp_strand *strands;
    WP_ALIGNED _Atomic int64_t strand_waiting;
    _Atomic uint64_t strand_withdrawn; /* cancelled while waiting (statistics) */

    /* Lifecycle and the port list. Never taken on the task path, and never
     * held while waiting for workers (a task may call port_create). The pool
     * lock is the only lock held with no other (a token's lock is never held
     * with it). */
    pthread_mutex_t lock;
    pthread_cond_t life_changed; /* a joiner or closer finished, a worker started,
                                  * or the pending count reached 0 */
    enum wp_life life;
    bool joining;                  /* a thread is joining the workers without the lock */
    unsigned int closers;          /* wpool_shutdown calls in progress (destroy waits) */
    unsigned int nstarted;         /* workers that reported in (creation) */
    int start_error;               /* first worker start failure (nice) */
    struct wpool_port *ports;      /* every port, the default one included */
    struct wpool_port *dead_ports; /* destroyed ports, freed with the pool */
};

/* An inherited pool in a forked child (fork.h). */
static inline bool wp_pool_forked(const struct wpool *pool)
{
    return wp_forked(pool->generation);
}

/* Lane l's rings (nqueues of them), or NULL if it has no class. Acquire:
 * pairs with wpool_class_create's release store (the class's rules). */
static inline struct wp_queue *wp_lane(const struct wpool *pool, int lane)
{
    return atomic_load_explicit(&((struct wpool *)pool)->lanes[lane].rings, memory_order_acquire);
}

/* Ring number i of the pool (lane-major), or NULL if it has none (a task's
 * stale slot may name another pool's ring). */
static inline struct wp_queue *wp_pool_ring(const struct wpool *pool, unsigned int i)
{
    unsigned int lane = i / pool->nqueues;
    struct wp_queue *rings = lane < WP_LANES ? wp_lane(pool, (int)lane) : NULL;
    return rings ? &rings[i % pool->nqueues] : NULL;
}

/* The number of ring q of lane l (for a task's slot). */
static inline unsigned int wp_ring_number(const struct wpool *pool, int lane,
                                          const struct wp_queue *q)
{
    return (unsigned int)lane * pool->nqueues + (unsigned int)(q - wp_lane(pool, lane));
}

/* Lanes with a class (0 .. n-1). Acquire: pairs with wpool_class_create's
 * release store (the lane's rings are set). */
static inline unsigned int wp_nlanes(const struct wpool *pool)
{
    return atomic_load_explicit(&((struct wpool *)pool)->nlanes, memory_order_acquire);
}

/* The pool's queues are closed (its first ring's flag: every ring closes
 * after it, see wp_close_queues). */
static inline bool wp_pool_closed(const struct wpool *pool)
{
    return wp_queue_closed(&wp_lane(pool, 0)[0]);
}

#define WP_ALL_LANES (-1)

/* Wakes one worker for a task published in lane: one of the class's
 * reserved workers if one sleeps on its home park, else any. Call after a
 * seq_cst publish (wp_park_notify's Dekker). */
static inline void wp_wake_for(struct wpool *pool, int lane)
{
    if (WP_UNLIKELY(pool->lanes[lane].reserved) && wp_park_notify(&pool->lanes[lane].home, 1))
        return;
    wp_park_notify(&pool->park, 1);
}

/* ---- worker.c */
/* Wakes every worker, on the pool's park and on the classes' (close). */
void wp_wake_all_workers(struct wpool *pool);
/* Starts every worker with all signals blocked and waits until each has
 * reported in (its start hook run): 0, or the first error. */
int wp_start_workers(struct wpool *pool);
/* True on one of this pool's workers (close and destroy would wait for
 * themselves). */
bool wp_on_own_worker(const struct wpool *pool);
/* The workers' post guards (wp_port_quiesce reads them all). */
unsigned int wp_pool_nguards(const struct wpool *pool);
struct wp_post_guard *wp_pool_guard(struct wpool *pool, unsigned int i);

/* ---- room.c */
/* Sets up a drain notification's record and lock: the pool's (lane
 * WP_ALL_LANES) or a class's. */
void wp_drain_init(struct wp_drain *d, struct wpool *pool, int lane, int64_t low_water);
void wp_drain_fini(struct wp_drain *d);
/* Would a submit to this lane find room? (A snapshot.) */
bool wp_has_room(struct wpool *pool, int lane);
/* Room was made for n tasks in a lane, or in every lane (WP_ALL_LANES). */
void wp_room_made(struct wpool *pool, int lane, int n);
/* A submit found no room (the pool's max_queue or the ring: WP_ALL_LANES),
 * or its class's max_queue (lane). */
void wp_refused(struct wpool *pool, int lane);
/* wpool_port_destroy's first step, under the drain lock: closes the port
 * (wp_port_close) and, if it is the drain's port, keeps it busy while
 * registered or moves the drain back to the default port. 0 or -EBUSY. */
int wp_drain_close_port(struct wpool *pool, struct wpool_port *port);

/* ---- submit.c */
/* Puts t, a strand's next task (accepted when it was appended: admitted,
 * counted on its port), into its lane: a ring, or the overflow (while the
 * overflow holds tasks, or the rings are full or closed); wakes a worker. */
void wp_place_released(struct wpool *pool, struct wpool_task *t);

/* ---- class.c */
/* A capped class's places (the caller's worker.c takes): claim one (false
 * at the cap, noted in `turned`), give one back, and after a give-back wake
 * a worker if the lane has tasks. */
bool wp_cap_claim(struct wp_class *c);
void wp_cap_release(struct wp_class *c);
void wp_cap_recheck(struct wpool *pool, int lane);
/* Lane has tasks queued (a snapshot; seq_cst loads). */
bool wp_lane_backlog(struct wpool *pool, int lane);
/* Sets up every lane's locks and counters (wpool_create, first), then the
 * rings of lanes 0 and 1 (the priorities; the high one has high_cap
 * cells). Fini frees every lane's state (forked: memory only). */
void wp_classes_init(struct wpool *pool);
int wp_classes_open(struct wpool *pool, uint32_t high_cap);
void wp_classes_fini(struct wpool *pool, bool forked);

/* ---- pool.c */
/* Ticks per microsecond, measured over the pool's life so far. */
double wp_ticks_per_us(const struct wpool *pool);
/* Creates a port and adds it to the pool's list, while the pool is open. */
int wp_pool_add_port(struct wpool *pool, struct wpool_port **portp);
/* Moves a destroyed port to the dead list (freed with the pool). */
void wp_pool_retire_port(struct wpool *pool, struct wpool_port *port);

/* Groups not yet sealed: wpool_destroy refuses while any is (group.c). */
void wp_pool_group_opened(struct wpool *pool);
void wp_pool_group_sealed(struct wpool *pool);

/* ---- cancel.c */
/* A task left its queue without a worker running it (cancelled): account for
 * it and post its -ECANCELED completion. Caller won it from its cell, its
 * overflow (head: its strand is released first) or its strand's list. */
void wp_pool_withdrawn(struct wpool *pool, struct wpool_task *t, bool head);
/* Withdraws an in-flight task from its queue cell (the CAS that races the
 * workers), reclaims the tail and posts -ECANCELED: 0; -EBUSY if it is not
 * queued; -EOWNERDEAD in a forked child. */
int wp_task_withdraw(struct wpool_task *t);
/* Token side of a completion: detaches the task from its token; returns the
 * token's group (the member is counted out after its callback), or NULL. */
struct wp_group *wp_token_detach(struct wpool_task *t);
/* True if the task's token is cancelled (acquire). */
bool wp_token_is_cancelled(const struct wpool_task *t);
/* The submit path of a task that carries a token, first half: takes the
 * token's lock and links the task to it, so that a wpool_token_cancel either
 * finds it queued or has refused it. 0 with the lock held; -EOWNERDEAD (an
 * inherited token) or -ECANCELED with nothing held. */
int wp_token_link(struct wpool_task *t, struct wpool *pool);
/* Second half, after the submit: unlinks the task if it was refused (rc not
 * 0), then releases the lock of tok, the task's token (read before the
 * submit: once queued, the record is not ours to read). */
void wp_token_unlock(struct wpool_token *tok, struct wpool_task *t, int rc);

#endif
