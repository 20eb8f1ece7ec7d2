/* SPDX-License-Identifier: MIT */
/*
 * wpool: a static per-core worker-thread pool with a lock-free task queue,
 * futex parking, and completion callbacks delivered to the thread that owns an
 * event loop.
 *
 * Every accepted task completes exactly once, on the thread that dispatches
 * its port; nothing is allocated per task; errors are negative errno values.
 * The contract and the concepts: wpool(7) (man 7 wpool). Each function: its
 * own man page (man wpool_submit), the one place its errors and thread rules
 * are written; the comments here are one-line summaries. In the source tree:
 * man/, indexed in docs/reference.md.
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
/* Default and largest coalesce_us option: 500 microseconds, one second. */
#define WPOOL_DEFAULT_COALESCE_US 500u
#define WPOOL_MAX_COALESCE_US     1000000u

/* max_queue and drain_low_water: no limit beyond the queues' capacity. */
#define WPOOL_UNLIMITED 0xffffffffu
/* wpool_port_dispatch / wpool_dispatch: run every pending completion. */
#define WPOOL_DISPATCH_ALL 0xffffffffu
/* While normal-priority tasks wait, a worker takes one of them after at most
 * this many high-priority tasks in a row (see wpool_task_set_priority). */
#define WPOOL_HIGH_BURST 8u

typedef struct wpool wpool_t;
typedef struct wpool_port wpool_port_t;
typedef struct wpool_token wpool_token_t;
struct wpool_task;

/* Runs on a worker thread. Its return value becomes the completion status;
 * return values should be >= 0 or a negative errno of your own (never
 * -ECANCELED, which is how a cancelled task is reported), or WPOOL_PENDING. */
typedef int (*wpool_work_fn)(struct wpool_task *task);
/* A work function's return value: the task is not finished; it completes
 * when some thread calls wpool_task_complete() on it (wpool_task_complete(3)). */
#define WPOOL_PENDING (-2147483647 - 1)
/* Runs on the thread that dispatches the task's port, exactly once per
 * accepted submission. status is the work's return value (for WPOOL_PENDING,
 * the status given to wpool_task_complete), -ECANCELED (never ran:
 * cancelled), or -ETIMEDOUT (never ran: its deadline passed first). The
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
    WPOOL_CLOSE_RUN = 0,    /* run them (wpool_close) */
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
    int placement;
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
     * microseconds, at most WPOOL_MAX_COALESCE_US; WPOOL_DEFAULT_COALESCE_US
     * (500) by default. 0: the first completion after the owner went idle
     * makes wpool_fd readable at once. N: while the workers have more tasks
     * to run, that signal is held back for up to N us (by the pool's ticker
     * thread, whatever the tasks do), so that the owner's loop wakes once for
     * a run of completions instead of once for every few; a worker that finds
     * no task signals at once. Completions are still posted at once: a
     * dispatch in the meantime runs them, and the signal that follows may
     * then find nothing to run (one spurious wakeup of the loop, as after
     * wpool_port_settle). Ports made with wpool_port_create are signalled at
     * once. See wpool(7), COMPLETION COALESCING. */
    unsigned int coalesce_us;
    /* 0 (default): unbounded. A task that finds its lane's ring full waits
     * in an overflow list, linked through its own record (no allocation),
     * and keeps its order; only max_queue limits the backlog. 1: the rings'
     * capacity is a hard limit, and a submit that finds its ring full is
     * refused with -EAGAIN (0.2's behaviour). */
    unsigned int bounded;
    uint64_t reserved[3];
};

/* Default options: one worker per allowed core, 4096-slot queues, FIRST_FREE,
 * unpinned, no limit beyond capacity, timing on, inherited nice and stack, no
 * hooks, completion coalescing of WPOOL_DEFAULT_COALESCE_US. */
#define WPOOL_OPTIONS_INIT                                                                         \
    {                                                                                              \
        0u, WPOOL_DEFAULT_QUEUE_CAPACITY, WPOOL_FIRST_FREE, 0, WPOOL_UNLIMITED, WPOOL_UNLIMITED,   \
            1, 0, 0u, NULL, NULL, NULL, WPOOL_DEFAULT_COALESCE_US, 0u,                             \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

/*
 * A task record, embedded in the caller's own struct. Zero-fill it (calloc,
 * `= {0}`, memset), then initialise it with wpool_task_init(), which reads it
 * to refuse re-initialising a record in flight. Only `data` is the caller's; the
 * rest is wpool's private state and must not be touched. The record must stay
 * valid from a successful submit until its completion callback has started.
 */
/* Words of wpool's private state in a task record (its size and alignment are
 * part of the ABI: 8 + 16 * 8 = 136 bytes on LP64, 8-byte aligned). */
#define WPOOL_TASK_PRIVATE_WORDS 16
#if defined(__GNUC__)
#define WPOOL_ALIGN8 __attribute__((__aligned__(8)))
#else
#define WPOOL_ALIGN8
#endif

struct wpool_task {
    void *data; /* the caller's; wpool never reads or writes it */
    /* wpool's state of the record (opaque; see src/task.h). */
    union {
        uint64_t u64;
        void *ptr;
    } wp_private[WPOOL_TASK_PRIVATE_WORDS] WPOOL_ALIGN8;
};

/* ---- the pool -------------------------------------------------------------------------------- */

/* Fill pool options with the defaults: wpool_options_init(3). */
WPOOL_API void wpool_options_init(struct wpool_options *opts);

/* Create a worker pool and start its workers: wpool_create(3). */
WPOOL_API int wpool_create(wpool_t **poolp, const struct wpool_options *opts);

/* Number of worker threads of a pool: wpool_threads(3). */
WPOOL_API unsigned int wpool_threads(const wpool_t *pool);

/* Index of the wpool worker running the calling thread: wpool_worker_index(3). */
WPOOL_API int wpool_worker_index(void);

/* ---- a task (attributes kept across submissions; wpool_task_init resets them) ---------------- */

/* Prepare a caller-owned task record: wpool_task_init(3). */
WPOOL_API int wpool_task_init(struct wpool_task *task, wpool_work_fn work, wpool_done_fn done);

/* Choose the port that receives a task's completions: wpool_task_set_port(3). */
WPOOL_API int wpool_task_set_port(struct wpool_task *task, wpool_port_t *port);

/* Put a task's submissions in a priority lane: wpool_task_set_priority(3). */
WPOOL_API int wpool_task_set_priority(struct wpool_task *task, int priority);

/* Give a task a deadline to start by: wpool_task_set_deadline(3). */
WPOOL_API int wpool_task_set_deadline(struct wpool_task *task, uint64_t deadline_ns);

/* Attach a cancel token to a task: wpool_task_set_token(3). */
WPOOL_API int wpool_task_set_token(struct wpool_task *task, wpool_token_t *token);

/* Whether a task's cancel token has been cancelled: wpool_task_cancelled(3). */
WPOOL_API int wpool_task_cancelled(const struct wpool_task *task);

/* Finish a task whose work returned WPOOL_PENDING: wpool_task_complete(3). */
WPOOL_API int wpool_task_complete(struct wpool_task *task, int status);

/* The monotonic clock of deadlines, in nanoseconds: wpool_now_ns(3). */
WPOOL_API uint64_t wpool_now_ns(void);

/* ---- submitting ------------------------------------------------------------------------------ */

/* Queue a task; it completes exactly once: wpool_submit(3). */
WPOOL_API int wpool_submit(wpool_t *pool, struct wpool_task *task);

/* Queue several tasks with at most one worker wakeup: wpool_submit_batch(3). */
WPOOL_API int wpool_submit_batch(wpool_t *pool, struct wpool_task *const *tasks, unsigned int n);

/* Queue a task, waiting for room when the pool is full: wpool_submit_wait(3). */
WPOOL_API int wpool_submit_wait(wpool_t *pool, struct wpool_task *task, int timeout_ms);

/* ---- backpressure ---------------------------------------------------------------------------- */

/* Whether the pool is full (backpressure level): wpool_needs_drain(3). */
WPOOL_API int wpool_needs_drain(const wpool_t *pool);

/* Register the drain notification (backpressure): wpool_on_drain(3). */
WPOOL_API int wpool_on_drain(wpool_t *pool, wpool_port_t *port, wpool_drain_fn fn, void *arg);

/* ---- cancelling, and cancel tokens (Piscina's AbortSignal) ----------------------------------- */

/* Cancel a queued task: wpool_cancel(3). */
WPOOL_API int wpool_cancel(struct wpool_task *task);

/* Cancel every queued task of a pool: wpool_cancel_all(3). */
WPOOL_API int wpool_cancel_all(wpool_t *pool);

/* Create a cancel token: wpool_token_create(3). */
WPOOL_API int wpool_token_create(wpool_token_t **tokp);

/* Free a cancel token: wpool_token_destroy(3). */
WPOOL_API int wpool_token_destroy(wpool_token_t *token);

/* Cancel every task that carries a token: wpool_token_cancel(3). */
WPOOL_API int wpool_token_cancel(wpool_token_t *token);

/* Whether a cancel token has been cancelled: wpool_token_cancelled(3). */
WPOOL_API int wpool_token_cancelled(const wpool_token_t *token);

/* ---- groups: one completion when many tasks are done (Promise.all) --------------------------- */

/*
 * A caller-owned group record: `data` is the caller's, the rest is wpool's.
 * Its contract, from wpool_group_init to its completion: wpool_group_init(3).
 */
/* Words of wpool's private state in a group record (8 + 48 * 8 = 392 bytes
 * on LP64, 8-byte aligned). */
#define WPOOL_GROUP_PRIVATE_WORDS 48

struct wpool_group {
    void *data; /* the caller's; wpool never reads or writes it */
    union {
        uint64_t u64;
        void *ptr;
    } wp_private[WPOOL_GROUP_PRIVATE_WORDS] WPOOL_ALIGN8;
};

/* What a group's members came to, given to its completion. */
struct wpool_group_result {
    uint64_t succeeded; /* work returned 0 */
    uint64_t failed;    /* work returned anything else */
    uint64_t cancelled; /* -ECANCELED */
    uint64_t timed_out; /* -ETIMEDOUT */
    int first_error;    /* the first non-zero member status to complete, or 0 */
};

/* A group's completion: on the group's port, once. */
typedef void (*wpool_group_fn)(struct wpool_group *group, const struct wpool_group_result *result);

/* Prepare a group whose completion runs on a port: wpool_group_init(3). */
WPOOL_API int wpool_group_init(struct wpool_group *group, wpool_t *pool, wpool_port_t *port,
                               wpool_group_fn done);

/* Make a task's submissions members of a group: wpool_task_set_group(3). */
WPOOL_API int wpool_task_set_group(struct wpool_task *task, struct wpool_group *group);

/* Give every later member of a group a deadline: wpool_group_set_deadline(3). */
WPOOL_API int wpool_group_set_deadline(struct wpool_group *group, uint64_t deadline_ns);

/* Close a group to new members; it completes once they are done: wpool_group_seal(3). */
WPOOL_API int wpool_group_seal(struct wpool_group *group);

/* Cancel a group's queued members and flag its running ones: wpool_group_cancel(3). */
WPOOL_API int wpool_group_cancel(struct wpool_group *group);

/* ---- strands: ordered execution per key (GCD's serial queues, Asio's strands) --------------- */

/*
 * A caller-owned strand record: `data` is the caller's, the rest is wpool's.
 * The tasks of one strand start in the order it accepted them and never run at
 * the same time; different strands run in parallel. Contract:
 * wpool_strand_init(3).
 */
/* Words of wpool's private state in a strand record (8 + 16 * 8 = 136 bytes
 * on LP64, 8-byte aligned). */
#define WPOOL_STRAND_PRIVATE_WORDS 16

struct wpool_strand {
    void *data; /* the caller's; wpool never reads or writes it */
    union {
        uint64_t u64;
        void *ptr;
    } wp_private[WPOOL_STRAND_PRIVATE_WORDS] WPOOL_ALIGN8;
};

/* Prepare a strand of a pool: wpool_strand_init(3). */
WPOOL_API int wpool_strand_init(struct wpool_strand *strand, wpool_t *pool);

/* Release a strand with no task in flight: wpool_strand_destroy(3). */
WPOOL_API int wpool_strand_destroy(struct wpool_strand *strand);

/* Make a task's submissions run in a strand's order: wpool_task_set_strand(3). */
WPOOL_API int wpool_task_set_strand(struct wpool_task *task, struct wpool_strand *strand);

/* ---- work classes: isolation between kinds of work ------------------------------------------ */

/*
 * A class is a kind of work with its own lane: a cap on the workers running
 * its tasks at once, workers reserved for it, a weight for sharing the rest,
 * its own max_queue and drain notification, and its own statistics. The two
 * priority lanes are the built-in classes 0 and 1. Contract:
 * wpool_class_create(3).
 */
#define WPOOL_CLASS_NORMAL 0 /* the default class: WPOOL_PRIORITY_NORMAL, weight 1 */
#define WPOOL_CLASS_HIGH   1 /* WPOOL_PRIORITY_HIGH, weight WPOOL_HIGH_BURST */
/* Most classes a pool may have, the two built-in ones included. */
#define WPOOL_MAX_CLASSES 8
/* Largest weight of a class. */
#define WPOOL_MAX_WEIGHT 1000u
/* Default lend_after_us: a reserved worker runs other classes' tasks once
 * its class has had nothing for it for 1 ms. */
#define WPOOL_DEFAULT_LEND_AFTER_US 1000u

struct wpool_class_options {
    /* Most workers that may run the class's tasks at once; 0 (default): no
     * cap (every worker). */
    unsigned int max_workers;
    /* Workers that wait for the class's tasks and run other classes' tasks
     * only after it has had none for lend_after_us; 0 (default). At most
     * max_workers, and the pool keeps one worker unreserved. */
    unsigned int reserved_workers;
    /* Tasks taken from the class per round while several classes have tasks
     * waiting (weighted round robin, per worker); 1 (default) to
     * WPOOL_MAX_WEIGHT. */
    unsigned int weight;
    /* Backpressure for the class alone: a submit is refused with -EAGAIN when
     * max_queue of its tasks wait (accepted, not yet started).
     * WPOOL_UNLIMITED (default): no limit of its own. */
    unsigned int max_queue;
    /* The class's drain notification (wpool_class_on_drain) runs once its
     * waiting tasks fall to this many after a refusal. WPOOL_UNLIMITED
     * (default): max_queue / 2. Below max_queue. */
    unsigned int drain_low_water;
    /* See reserved_workers; WPOOL_DEFAULT_LEND_AFTER_US by default, 0: lend
     * as soon as the class has nothing waiting. At most 10 s. */
    unsigned int lend_after_us;
    uint64_t spare[4]; /* zero */
};

/* Default class options: no cap, nothing reserved, weight 1, no queue limit. */
#define WPOOL_CLASS_OPTIONS_INIT                                                                   \
    {                                                                                              \
        0u, 0u, 1u, WPOOL_UNLIMITED, WPOOL_UNLIMITED, WPOOL_DEFAULT_LEND_AFTER_US,                 \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

/* A latency distribution in microseconds, from log-linear buckets (16 per
 * power of two: a quantile is the top of its bucket, within 1/16 = 6.25% above
 * the true value, never above max). */
struct wpool_histogram {
    uint64_t count;
    uint64_t p50_us, p90_us, p99_us, p999_us, max_us;
    double mean_us;
};

/* A class's counters and histograms (wpool_class_stats). */
struct wpool_class_statistics {
    unsigned int running; /* workers running its tasks now */
    uint64_t queued;      /* accepted, not yet started or cancelled */
    uint64_t completed;   /* ran and finished (whatever its status) */
    uint64_t cancelled;   /* -ECANCELED */
    uint64_t timed_out;   /* -ETIMEDOUT (deadline) */
    uint64_t refused;     /* submits refused by the class's max_queue */
    /* Created classes only (the built-in classes' times are in wpool_stats):
     * submit -> start, and start -> end, since the class was created
     * (wpool_stats_reset does not reset them). */
    struct wpool_histogram wait;
    struct wpool_histogram run;
};

/* Fill class options with the defaults: wpool_class_options_init(3). */
WPOOL_API void wpool_class_options_init(struct wpool_class_options *opts);

/* Add a work class to a pool: wpool_class_create(3). */
WPOOL_API int wpool_class_create(wpool_t *pool, const struct wpool_class_options *opts);

/* Put a task's submissions in a work class: wpool_task_set_class(3). */
WPOOL_API int wpool_task_set_class(struct wpool_task *task, int cls);

/* Read a class's counters and histograms: wpool_class_stats(3). */
WPOOL_API int wpool_class_stats(wpool_t *pool, int cls, struct wpool_class_statistics *out);

/* Whether a class is full (its own backpressure): wpool_class_needs_drain(3). */
WPOOL_API int wpool_class_needs_drain(const wpool_t *pool, int cls);

/* Register a class's drain notification: wpool_class_on_drain(3). */
WPOOL_API int wpool_class_on_drain(wpool_t *pool, int cls, wpool_port_t *port, wpool_drain_fn fn,
                                   void *arg);

/* ---- completions: ports, one per event loop -------------------------------------------------- */

/* The pool's default completion port: wpool_default_port(3). */
WPOOL_API wpool_port_t *wpool_default_port(wpool_t *pool);

/* Create a completion port owned by the calling thread: wpool_port_create(3). */
WPOOL_API int wpool_port_create(wpool_t *pool, wpool_port_t **portp);

/* The eventfd that signals waiting completions: wpool_port_fd(3). */
WPOOL_API int wpool_port_fd(const wpool_port_t *port);

/* Run pending completion callbacks: wpool_port_dispatch(3). */
WPOOL_API int wpool_port_dispatch(wpool_port_t *port, unsigned int max);

/* Block until completions are waiting on a port: wpool_port_wait(3). */
WPOOL_API int wpool_port_wait(wpool_port_t *port, int timeout_ms);

/* Dispatch until no task sent to the port is in flight: wpool_port_settle(3). */
WPOOL_API int wpool_port_settle(wpool_port_t *port, int timeout_ms);

/* Destroy a completion port: wpool_port_destroy(3). */
WPOOL_API int wpool_port_destroy(wpool_port_t *port);

/* The eventfd of the pool's default port: wpool_fd(3). */
WPOOL_API int wpool_fd(const wpool_t *pool);

/* Run pending completions of the pool's default port: wpool_dispatch(3). */
WPOOL_API int wpool_dispatch(wpool_t *pool, unsigned int max);

/* ---- closing --------------------------------------------------------------------------------- */

/* Stop accepting tasks, run the queued ones and join the workers: wpool_close(3). */
WPOOL_API int wpool_close(wpool_t *pool);

/* Close a pool, running or cancelling queued tasks, with a timeout: wpool_shutdown(3). */
WPOOL_API int wpool_shutdown(wpool_t *pool, int mode, int timeout_ms);

/* Cancel what is queued, join the workers, run undispatched completions, free the pool:
 * wpool_destroy(3). */
WPOOL_API int wpool_destroy(wpool_t *pool);

/* ---- statistics ------------------------------------------------------------------------------ */

struct wpool_statistics {
    unsigned int threads;
    unsigned int idle;    /* workers not running a task */
    unsigned int running; /* workers running a task */
    uint64_t queued;      /* accepted, not yet started or cancelled */
    uint64_t submitted;   /* accepted since creation */
    uint64_t completed;   /* ran and finished (whatever its status) */
    uint64_t cancelled;   /* -ECANCELED */
    uint64_t timed_out;   /* -ETIMEDOUT (deadline) */
    /* Piscina's utilization: run time of tasks / (threads * time since the
     * pool was created or the statistics were reset). 0 with timing off. */
    double utilization;
    int timing;                  /* the timing option */
    struct wpool_histogram wait; /* submit -> start, tasks that ran */
    struct wpool_histogram run;  /* start -> end of work */
    /* Deferred completion (wpool_task_complete). */
    uint64_t pending;            /* work returned WPOOL_PENDING, not yet completed */
    uint64_t deferred;           /* work returned WPOOL_PENDING, since creation */
    struct wpool_histogram pend; /* WPOOL_PENDING returned -> wpool_task_complete */
};

/* Read a pool's counters, histograms and utilization: wpool_stats(3). */
WPOOL_API int wpool_stats(wpool_t *pool, struct wpool_statistics *out);

/* Start the histograms and utilization afresh: wpool_stats_reset(3). */
WPOOL_API int wpool_stats_reset(wpool_t *pool);

/* ---- version and errors ---------------------------------------------------------------------- */

/* Version number of the loaded library: wpool_version(3). */
WPOOL_API unsigned int wpool_version(void);

/* Version string of the loaded library: wpool_version_string(3). */
WPOOL_API const char *wpool_version_string(void);

/* What an error code means when wpool returns it: wpool_strerror(3). */
WPOOL_API const char *wpool_strerror(int err);

#ifdef __cplusplus
}
#endif

#endif /* WPOOL_H */
