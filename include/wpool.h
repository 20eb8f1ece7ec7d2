/* SPDX-License-Identifier: MIT */
/*
 * wpool: a static per-core worker-thread pool with a lock-free task queue,
 * futex parking, and completion callbacks delivered to the thread that owns an
 * event loop.
 *
 * Contract (see docs/design.md):
 *  - Every task accepted by a submit call gets exactly one completion: its
 *    work ran (status = the work function's return value), it was cancelled
 *    before running (status = -ECANCELED), or its deadline passed before it
 *    started (status = -ETIMEDOUT).
 *  - Completion callbacks run only on a thread that dispatches the port the
 *    task was sent to (wpool_port_dispatch(), wpool_port_drain(), or
 *    wpool_destroy() for what nobody dispatched).
 *  - Any thread may submit, including a worker from inside a task.
 *  - Nothing is allocated per task: the task record is embedded in the
 *    caller's own struct and recovered with container_of (or task->data).
 *  - Every fallible function returns 0 (or a count) on success and a negative
 *    errno value on failure; nothing aborts on bad input.
 *  - Fork: a pool belongs to the process that created it. In a forked child,
 *    calls on an inherited pool, its ports and tokens return -EOWNERDEAD;
 *    wpool_destroy and wpool_token_destroy free the child's copy without
 *    running callbacks (the parent completes those tasks).
 *
 * Every function is documented in docs/reference.md with its error codes.
 */
#ifndef WPOOL_H
#define WPOOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WPOOL_VERSION_MAJOR  0
#define WPOOL_VERSION_MINOR  3
#define WPOOL_VERSION_PATCH  0
#define WPOOL_VERSION_STRING "0.3.0"
/* (major << 16) | (minor << 8) | patch, comparable with wpool_version(). */
#define WPOOL_VERSION_NUMBER                                                                       \
    ((WPOOL_VERSION_MAJOR << 16) | (WPOOL_VERSION_MINOR << 8) | WPOOL_VERSION_PATCH)

#if defined(WPOOL_BUILDING) && defined(__GNUC__)
#define WPOOL_API __attribute__((visibility("default")))
#else
#define WPOOL_API
#endif

/* Most workers a pool may have. */
#define WPOOL_MAX_THREADS 1024u
/* Default and largest number of slots in one task queue (powers of two). */
#define WPOOL_DEFAULT_QUEUE_CAPACITY 4096u
#define WPOOL_MAX_QUEUE_CAPACITY     (1u << 24)
/* Largest coalesce_us option: one second. */
#define WPOOL_MAX_COALESCE_US 1000000u

/* max_queue and drain_low_water: no limit beyond the queues' capacity. */
#define WPOOL_UNLIMITED 0xffffffffu
/* While normal-priority tasks wait, a worker takes one of them after at most
 * this many high-priority tasks in a row (see wpool_task_set_priority). */
#define WPOOL_HIGH_BURST 8u

typedef struct wpool wpool_t;
typedef struct wpool_port wpool_port_t;
typedef struct wpool_token wpool_token_t;
struct wpool_task;

/* Runs on a worker thread. Its return value becomes the completion status;
 * return values should be >= 0 or a negative errno of your own (never
 * -ECANCELED, which is how a cancelled task is reported). */
typedef int (*wpool_work_fn)(struct wpool_task *task);
/* Runs on the thread that dispatches the task's port, exactly once per
 * accepted submission. status is the work's return value, -ECANCELED (never
 * ran: cancelled), or -ETIMEDOUT (never ran: its deadline passed first). The
 * task is idle again when it runs: the callback may free the task's memory,
 * re-initialise it, or submit it again. */
typedef void (*wpool_done_fn)(struct wpool_task *task, int status);
/* Runs on a worker thread as it starts (before it takes any task) or stops
 * (after its last task). index is the worker's index, 0 .. threads-1. */
typedef void (*wpool_worker_fn)(void *arg, unsigned int index);
/* Runs on the owner of the port given to wpool_on_drain(). */
typedef void (*wpool_drain_fn)(wpool_t *pool, void *arg);

/* Task priority lanes. */
enum wpool_priority {
    WPOOL_PRIORITY_NORMAL = 0,
    WPOOL_PRIORITY_HIGH = 1,
};

/* What wpool_shutdown() does with tasks still queued. */
enum wpool_close_mode {
    WPOOL_CLOSE_DRAIN = 0,  /* run them (wpool_close) */
    WPOOL_CLOSE_CANCEL = 1, /* complete them with -ECANCELED unrun */
};

/* How tasks reach workers. */
enum wpool_placement {
    /* One shared queue; whichever worker is free takes the next task. */
    WPOOL_FIRST_FREE = 0,
    /* One queue per worker, submitters rotate over them; a worker whose own
     * queue is empty takes work from the others. */
    WPOOL_ROUND_ROBIN = 1,
};

struct wpool_options {
    /* Number of workers; 0 = one per core the creating thread may run on
     * (hwloc; honours taskset, sched_setaffinity and cgroup cpusets).
     * At most WPOOL_MAX_THREADS. */
    unsigned int threads;
    /* Slots per task queue: a power of two from 2 to WPOOL_MAX_QUEUE_CAPACITY.
     * Each of the two priority lanes has one queue (FIRST_FREE) or one per
     * worker (ROUND_ROBIN); the queues of one lane together may not exceed
     * WPOOL_MAX_QUEUE_CAPACITY slots. */
    unsigned int queue_capacity;
    /* enum wpool_placement. */
    int dispatch;
    /* 1: bind worker i to allowed core (i mod cores); 0: let the kernel place
     * workers. */
    int pin;
    /* Backpressure: a submit is refused with -EAGAIN when max_queue tasks are
     * already waiting beyond the idle workers (accepted while
     * waiting < max_queue + idle workers). 0: accepted only when a worker is
     * free (no queue). WPOOL_UNLIMITED (default): only the queues' capacity
     * limits. Otherwise at most the slots of one lane (queues x capacity). */
    unsigned int max_queue;
    /* After a submit was refused for lack of room, the drain callback
     * (wpool_on_drain) runs once the backlog falls to this many or fewer.
     * Only with a max_queue, and below it. WPOOL_UNLIMITED (default):
     * max_queue / 2; with max_queue 0, "a worker is free"; without max_queue,
     * half the slots of one lane. */
    unsigned int drain_low_water;
    /* 1 (default): time every task (wait and run histograms, utilization);
     * 0: no clock reads on the task path, those statistics stay zero. */
    int timing;
    /* Added to the creating thread's nice value for the workers (Linux
     * per-thread nice); 0 = inherit. -20..19; below 0 needs CAP_SYS_NICE. */
    int nice;
    /* Worker stack size in bytes; 0 = the system default. At least
     * PTHREAD_STACK_MIN (16 KiB on x86-64) otherwise. */
    size_t stack_size;
    /* Optional hooks, run on each worker thread with hook_arg and the worker's
     * index: on_worker_start before the worker takes a task (wpool_create
     * returns after every worker ran it), on_worker_stop after its last task. */
    wpool_worker_fn on_worker_start;
    wpool_worker_fn on_worker_stop;
    void *hook_arg;
    /* Completion coalescing on the pool's own port (wpool_fd), in
     * microseconds, at most WPOOL_MAX_COALESCE_US. 0 (default): the first
     * completion after the owner went idle makes wpool_fd readable at once.
     * N: a worker that finishes a task and finds another one waiting may hold
     * that signal back and run on, so that the owner's loop wakes once for a
     * run of completions instead of once for every few; it signals as soon
     * as it finds no task, or before it starts a task once N us have passed
     * since it began holding. A completion is thus signalled at most N us
     * plus the run time of one task late (the task the worker was running
     * when the N us passed). Completions are still posted at once: a
     * dispatch in the meantime runs them, and the signal that follows it may
     * then find nothing to run (one spurious wakeup of the loop, as after
     * wpool_port_drain). Ports made with wpool_port_create are signalled at
     * once. See docs/design.md. */
    unsigned int coalesce_us;
    /* Must be zero; room for options added later without breaking the ABI. */
    unsigned int reserved_int;
    uint64_t reserved[3];
};

/* Default options: one worker per allowed core, 4096-slot queues, FIRST_FREE,
 * unpinned, no limit beyond capacity, timing on, inherited nice and stack, no
 * hooks, no completion coalescing. */
#define WPOOL_OPTIONS_INIT                                                                         \
    {                                                                                              \
        0u, WPOOL_DEFAULT_QUEUE_CAPACITY, WPOOL_FIRST_FREE, 0, WPOOL_UNLIMITED, WPOOL_UNLIMITED,   \
            1, 0, 0u, NULL, NULL, NULL, 0u, 0u,                                                    \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

/*
 * A task record, embedded in the caller's own struct. Zero-fill it (calloc,
 * `= {0}`, memset), then initialise it with wpool_task_init(), which reads it
 * to refuse re-initialising a record in flight. Only `data` is the caller's; every wp_* field is
 * private to wpool and must not be touched. The record must stay valid from a successful submit
 * until its completion callback has started.
 */
struct wpool_task {
    void *data; /* the caller's; wpool never reads or writes it */

    /* private. The first 64 bytes hold what the owner touches for every
     * task and most of what the worker does; the worker also clears wp_queue
     * and, with timing on, reads wp_stamp, both in the next 64 bytes. So a
     * task moves two cache lines between threads (if you align the record to
     * 64 bytes), the second one only between the submitter and the worker. */
    struct wpool_task *wp_next;
    wpool_done_fn wp_done;
    wpool_work_fn wp_work;
    wpool_port_t *wp_port;   /* port of the current submission */
    wpool_token_t *wp_token; /* cancel token, or NULL */
    int wp_status;
    uint32_t wp_state;
    uint64_t wp_deadline;                   /* wpool_now_ns() value, 0 = none */
    void *wp_queue;                         /* queue of the current submission */
    uint64_t wp_stamp;                      /* submit time (timing on) */
    uint64_t wp_pos;                        /* queue position of the current submission */
    wpool_port_t *wp_target;                /* port chosen by wpool_task_set_port, or NULL */
    struct wpool_task *wp_tprev, *wp_tnext; /* the token's list */
    uint32_t wp_magic;
    int wp_prio;
    void *wp_reserved[2];
};

/* Fills *opts with the defaults (same as WPOOL_OPTIONS_INIT). NULL is ignored. */
WPOOL_API void wpool_options_init(struct wpool_options *opts);

/* Creates a pool and starts its workers. The calling thread owns the pool's
 * default port. *poolp is written only on success. opts may be NULL for the
 * defaults.
 * Errors: -EINVAL (poolp NULL, an option out of range, reserved not zero),
 * -ENOMEM, -EAGAIN (a worker thread could not be created), -EMFILE/-ENFILE
 * (no file descriptor for the eventfd), -ENODEV (hwloc could not read the
 * topology, or found no allowed core), -EPERM/-EACCES (a negative nice
 * without the privilege). On error no worker is left running. */
WPOOL_API int wpool_create(wpool_t **poolp, const struct wpool_options *opts);

/* Stops accepting tasks (later submits return -ESHUTDOWN), runs every task
 * already queued, and waits until all workers have finished and exited. Every
 * completion is then posted to its port; dispatch or drain the ports to run the
 * callbacks. Any thread but a worker of this pool may call it, including from a
 * completion callback. Idempotent: returns 0 when already closed.
 * Errors: -EINVAL (pool NULL), -EDEADLK (called from a task of this pool),
 * -EOWNERDEAD. */
WPOOL_API int wpool_close(wpool_t *pool);

/* Like wpool_close() with a mode and a time limit (timeout_ms -1: none).
 * WPOOL_CLOSE_DRAIN runs the queued tasks, WPOOL_CLOSE_CANCEL completes them
 * with -ECANCELED unrun; running tasks always finish (nothing is killed).
 * On -ETIMEDOUT the pool is closed to new tasks (-ESHUTDOWN) and its workers go
 * on finishing; call wpool_shutdown, wpool_close or wpool_destroy again to
 * wait for them (a later CANCEL also cancels what is still queued).
 * Errors: -EINVAL (pool NULL, bad mode, timeout_ms < -1), -EDEADLK (called
 * from a task of this pool), -ETIMEDOUT, -EOWNERDEAD. */
WPOOL_API int wpool_shutdown(wpool_t *pool, int mode, int timeout_ms);

/* Cancels every task still queued (each completes with -ECANCELED), waits for
 * running tasks to finish, joins the workers, then runs on the calling thread
 * every completion that no one has dispatched yet (on all of the pool's ports),
 * destroys the remaining ports and frees the pool. No other thread may use the
 * pool or its ports during or after the call, and every other thread's calls
 * on it must have returned (join producer threads first: receiving a
 * completion does not mean its submit call has returned). NULL is accepted.
 * Errors: -EDEADLK (called from a task of this pool), -EBUSY (called from a
 * completion callback of this pool; nothing is changed). */
WPOOL_API int wpool_destroy(wpool_t *pool);

/* Number of worker threads. 0 for NULL. Any thread. */
WPOOL_API unsigned int wpool_threads(const wpool_t *pool);

/* Prepares a task record: work runs on a worker, done on the port's owner.
 * Resets the target port to the pool's default port. Any thread that owns the
 * record.
 * Errors: -EINVAL (task, work or done NULL), -EBUSY (the record is in flight). */
WPOOL_API int wpool_task_init(struct wpool_task *task, wpool_work_fn work, wpool_done_fn done);

/* Sends the task's future completions to port (NULL: the pool's default port).
 * Errors: -EINVAL (task NULL or not initialised), -EBUSY (in flight). */
WPOOL_API int wpool_task_set_port(struct wpool_task *task, wpool_port_t *port);

/* Queues a task. On success the task is in flight until its completion callback
 * runs. On any error nothing changed and no completion will come. Any thread,
 * including a worker inside a task and a completion callback.
 * Errors: -EINVAL (pool or task NULL, task not initialised, task's port belongs
 * to another pool or was destroyed), -EBUSY (task already in flight), -EAGAIN (queue full; with
 * ROUND_ROBIN every queue full; or max_queue tasks already waiting),
 * -ESHUTDOWN (pool closed or being destroyed, or the task's port being
 * destroyed), -ECANCELED (the task's token is
 * cancelled), -EOWNERDEAD (a pool inherited through fork()). */
WPOOL_API int wpool_submit(wpool_t *pool, struct wpool_task *task);

/* Queues tasks[0..n) in order with at most one worker wakeup for the batch.
 * Stops at the first task that is refused: returns how many were accepted
 * (tasks[0..k), each now in flight); tasks[k..n) are untouched. When none is
 * accepted, returns tasks[0]'s error (see wpool_submit), or -EINVAL (tasks
 * NULL or n 0). Any thread. */
WPOOL_API int wpool_submit_batch(wpool_t *pool, struct wpool_task *const *tasks, unsigned int n);

/* wpool_submit() that waits up to timeout_ms (-1: no limit) for room when the
 * pool is full, instead of returning -EAGAIN. A thread that dispatches the
 * task's port must not wait for room that only its own dispatching would make
 * (completions are not needed for room: a task leaves the queue when a worker
 * starts it).
 * Errors: those of wpool_submit() except -EAGAIN, plus -ETIMEDOUT (still no
 * room; nothing queued), -EDEADLK (called from a task of this pool: every
 * worker could be waiting), -EINVAL (timeout_ms < -1). */
WPOOL_API int wpool_submit_wait(wpool_t *pool, struct wpool_task *task, int timeout_ms);

/* Cancels a queued task: returns 0 and its completion arrives (on its port,
 * never inline) with status -ECANCELED; its work never runs. Any thread.
 * Errors: -EINVAL (task NULL or not initialised), -EBUSY (not queued: running,
 * already completed, or never submitted), -EOWNERDEAD (a task queued in a
 * pool inherited through fork()). */
WPOOL_API int wpool_cancel(struct wpool_task *task);

/* Cancels every task queued in the pool when it looks (tinypool's
 * cancelPendingTasks); each completes with -ECANCELED. Running tasks finish;
 * tasks submitted meanwhile may or may not be cancelled. Returns how many were
 * cancelled. Any thread.
 * Errors: -EINVAL (pool NULL), -EOWNERDEAD (inherited through fork()). */
WPOOL_API int wpool_cancel_all(wpool_t *pool);

/* ---- per-task attributes (kept across submissions; wpool_task_init resets
 * them; -EINVAL for a NULL or uninitialised task, -EBUSY while in flight) --- */

/* WPOOL_PRIORITY_HIGH tasks are taken before WPOOL_PRIORITY_NORMAL ones; while
 * normal tasks wait, each worker takes one after at most WPOOL_HIGH_BURST high
 * ones in a row, so normal tasks progress at >= 1/(WPOOL_HIGH_BURST+1) of the
 * pool's rate. FIFO within a lane (per queue). Errors also: -EINVAL (other
 * priority). */
WPOOL_API int wpool_task_set_priority(struct wpool_task *task, int priority);

/* A deadline in wpool_now_ns() time (0: none). A task that no worker has
 * started by then completes with -ETIMEDOUT without running, reported when a
 * worker reaches it in the queue. (Withdrawn by a cancel, cancel-all, token,
 * CLOSE_CANCEL or destroy first, it completes with -ECANCELED.) */
WPOOL_API int wpool_task_set_deadline(struct wpool_task *task, uint64_t deadline_ns);

/* Attaches a cancel token (NULL: detach). See wpool_token_cancel(). */
WPOOL_API int wpool_task_set_token(struct wpool_task *task, wpool_token_t *token);

/* 1 when the task's token has been cancelled, else 0: a running task may poll
 * it to stop early (running work is never killed). 0 for NULL. Any thread. */
WPOOL_API int wpool_task_cancelled(const struct wpool_task *task);

/* CLOCK_MONOTONIC in nanoseconds, the clock of deadlines. */
WPOOL_API uint64_t wpool_now_ns(void);

/* ---- cancel tokens (Piscina's AbortSignal) --------------------------------
 * A token can be attached to many tasks, of any pool. Cancelling it completes
 * every one of them still queued with -ECANCELED (each exactly once), makes
 * later submits of tasks carrying it fail with -ECANCELED, and sets the flag
 * that wpool_task_cancelled() reports to running tasks. A token cannot be
 * un-cancelled; make a new one. */

/* Errors: -EINVAL (tokp NULL), -ENOMEM. */
WPOOL_API int wpool_token_create(wpool_token_t **tokp);
/* Frees a token no in-flight task carries (a task detaches when its completion
 * callback starts). NULL accepted. Errors: -EBUSY (tasks in flight carry it). */
WPOOL_API int wpool_token_destroy(wpool_token_t *token);
/* Cancels the token; returns how many queued tasks it cancelled (0 when called
 * again). Any thread, including a task or a completion callback.
 * Errors: -EINVAL (NULL), -EOWNERDEAD. */
WPOOL_API int wpool_token_cancel(wpool_token_t *token);
/* 1 if cancelled, 0 if not, -EINVAL for NULL. */
WPOOL_API int wpool_token_cancelled(const wpool_token_t *token);

/* ---- backpressure ---------------------------------------------------------- */

/* 1 while the pool is full (a submit would now get -EAGAIN for lack of room),
 * 0 otherwise: level-triggered. A snapshot. Errors: -EINVAL (NULL). */
WPOOL_API int wpool_needs_drain(const wpool_t *pool);

/* After a submit is refused for lack of room, fn(pool, arg) runs once on the
 * owner of port (NULL: the default port), dispatched like a completion, when
 * the waiting tasks have fallen to drain_low_water or fewer. Refusals before
 * that callback runs are covered by it; one after it arms the next. No refusal,
 * no callback. fn NULL unregisters. The port cannot be destroyed while it is
 * registered (-EBUSY). The notification is dispatched like a completion:
 * wpool_port_dispatch and wpool_port_drain count it.
 * Errors: -EINVAL (pool NULL, port of another pool or destroyed), -ESHUTDOWN
 * (port being destroyed), -EBUSY (a notification is still on its way to the
 * previously registered port, and port differs), -EOWNERDEAD. */
WPOOL_API int wpool_on_drain(wpool_t *pool, wpool_port_t *port, wpool_drain_fn fn, void *arg);

/* ---- statistics ------------------------------------------------------------ */

/* A latency distribution in microseconds, from log-linear buckets (16 per
 * power of two: a quantile is the top of its bucket, within 1/16 = 6.25% above
 * the true value, never above max). */
struct wpool_histogram {
    uint64_t count;
    uint64_t p50_us, p90_us, p99_us, p999_us, max_us;
    double mean_us;
};

struct wpool_statistics {
    unsigned int threads;
    unsigned int idle;    /* workers not running a task */
    unsigned int running; /* workers running a task */
    uint64_t queued;      /* accepted, not yet started or cancelled */
    uint64_t submitted;   /* accepted since creation */
    uint64_t completed;   /* ran (whatever the work returned) */
    uint64_t cancelled;   /* -ECANCELED */
    uint64_t timed_out;   /* -ETIMEDOUT (deadline) */
    /* Piscina's utilization: run time of tasks / (threads * time since the
     * pool was created or the statistics were reset). 0 with timing off. */
    double utilization;
    int timing;                  /* the timing option */
    struct wpool_histogram wait; /* submit -> start, tasks that ran */
    struct wpool_histogram run;  /* start -> end of work */
};

/* Fills *out. Counters are read without stopping the pool: each is exact, the
 * set is a snapshot taken over a few microseconds. Any thread.
 * Errors: -EINVAL (NULL), -ENOMEM (for the merge buffers), -EOWNERDEAD. */
WPOOL_API int wpool_stats(wpool_t *pool, struct wpool_statistics *out);

/* Starts the histograms and utilization afresh (the counters are totals since
 * creation and are not reset). Any thread.
 * Errors: -EINVAL (NULL), -EOWNERDEAD. */
WPOOL_API int wpool_stats_reset(wpool_t *pool);

/* Index of the pool worker running the calling thread (0 .. threads-1), or -1
 * when called from a thread that is not a wpool worker. */
WPOOL_API int wpool_worker_index(void);

/* The pool's default port (owned by the thread that created the pool). NULL
 * for NULL. */
WPOOL_API wpool_port_t *wpool_default_port(wpool_t *pool);

/* Creates a further completion port, owned by the calling thread; send tasks to
 * it with wpool_task_set_port(). *portp is written only on success.
 * Errors: -EINVAL (pool or portp NULL), -ENOMEM, -EMFILE/-ENFILE, -ESHUTDOWN
 * (pool closed), -EOWNERDEAD. */
WPOOL_API int wpool_port_create(wpool_t *pool, wpool_port_t **portp);

/* Destroys a port with no task in flight. Owner thread only. NULL accepted.
 * The first call closes the port to new submits for good (-ESHUTDOWN for
 * them), so a call retried after -EBUSY succeeds once what was in flight has
 * been dispatched. Its file descriptor is closed once no worker is still
 * signalling it; its memory stays with the pool until wpool_destroy, so any
 * later call through the stale handle (dispatch, wait, drain, fd, destroy,
 * set_port + submit, on_drain) returns -EINVAL.
 * Errors: -EINVAL (the pool's default port, or already destroyed), -EPERM
 * (not the owner), -EBUSY (tasks in flight to it, called from its own
 * completion callback, or registered with wpool_on_drain), -EOWNERDEAD. */
WPOOL_API int wpool_port_destroy(wpool_port_t *port);

/* The port's eventfd: readable while completions are waiting to be dispatched.
 * Poll it for reading; never read or write it yourself. -EINVAL for NULL. */
WPOOL_API int wpool_port_fd(const wpool_port_t *port);

/* Runs up to max pending completion callbacks on the calling thread, in
 * completion order, and returns how many ran (0 if none were pending). Owner
 * thread only; callbacks may submit, cancel and dispatch again.
 * Errors: -EINVAL (port NULL, max 0), -EPERM (not the owner), -EOWNERDEAD. */
WPOOL_API int wpool_port_dispatch(wpool_port_t *port, unsigned int max);

/* Blocks until completions are waiting on the port, or timeout_ms passes
 * (-1: no limit, 0: poll). Does not run callbacks. Owner thread only.
 * Errors: -EINVAL (port NULL, timeout_ms < -1), -EPERM (not the owner),
 * -ETIMEDOUT, -EOWNERDEAD. */
WPOOL_API int wpool_port_wait(wpool_port_t *port, int timeout_ms);

/* Waits for and dispatches completions until no task sent to this port is in
 * flight, or timeout_ms passes (-1: no limit). Returns how many callbacks ran.
 * Owner thread only.
 * Errors: -EINVAL (port NULL, timeout_ms < -1), -EPERM (not the owner),
 * -ETIMEDOUT (tasks still in flight; the callbacks that ran are not undone),
 * -EOWNERDEAD. */
WPOOL_API int wpool_port_drain(wpool_port_t *port, int timeout_ms);

/* wpool_port_fd() of the default port. -EINVAL for NULL. */
WPOOL_API int wpool_fd(const wpool_t *pool);

/* wpool_port_dispatch() on the default port. -EINVAL for NULL pool or max 0. */
WPOOL_API int wpool_dispatch(wpool_t *pool, unsigned int max);

/* WPOOL_VERSION_NUMBER of the library actually linked. */
WPOOL_API unsigned int wpool_version(void);

/* WPOOL_VERSION_STRING of the library actually linked. */
WPOOL_API const char *wpool_version_string(void);

/* What an error code means when wpool returns it (err negative, as returned,
 * or positive), as a constant string; "not a wpool error code" for others.
 * Never NULL. Any thread. */
WPOOL_API const char *wpool_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* WPOOL_H */
