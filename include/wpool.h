/*
 * wpool: a static per-core worker-thread pool with a lock-free task queue,
 * futex parking, and completion callbacks delivered to the thread that owns an
 * event loop.
 *
 * Contract (see docs/design.md):
 *  - Every task accepted by wpool_submit() gets exactly one completion: its
 *    work ran (status = the work function's return value) or it was cancelled
 *    before running (status = -ECANCELED).
 *  - Completion callbacks run only on a thread that dispatches the port the
 *    task was sent to (wpool_port_dispatch(), wpool_port_drain(), or
 *    wpool_destroy() for what nobody dispatched).
 *  - Any thread may submit, including a worker from inside a task.
 *  - Nothing is allocated per task: the task record is embedded in the
 *    caller's own struct and recovered with container_of (or task->data).
 *  - Every fallible function returns 0 (or a count) on success and a negative
 *    errno value on failure; nothing aborts on bad input.
 *
 * Every function is documented in docs/reference.md with its error codes.
 */
#ifndef WPOOL_H
#define WPOOL_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define WPOOL_VERSION_MAJOR  0
#define WPOOL_VERSION_MINOR  1
#define WPOOL_VERSION_PATCH  0
#define WPOOL_VERSION_STRING "0.1.0"
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

typedef struct wpool wpool_t;
typedef struct wpool_port wpool_port_t;
struct wpool_task;

/* Runs on a worker thread. Its return value becomes the completion status;
 * return values should be >= 0 or a negative errno of your own (never
 * -ECANCELED, which is how a cancelled task is reported). */
typedef int (*wpool_work_fn)(struct wpool_task *task);
/* Runs on the thread that dispatches the task's port, exactly once per
 * accepted submission. The task is idle again when it runs: the callback may
 * free the task's memory, re-initialise it, or submit it again. */
typedef void (*wpool_done_fn)(struct wpool_task *task, int status);

/* How tasks reach workers. */
enum wpool_dispatch {
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
     * FIRST_FREE has one queue, ROUND_ROBIN one per worker; all queues together
     * may not exceed WPOOL_MAX_QUEUE_CAPACITY slots. */
    unsigned int queue_capacity;
    /* enum wpool_dispatch. */
    int dispatch;
    /* 1: bind worker i to allowed core (i mod cores); 0: let the kernel place
     * workers. */
    int pin;
    /* Must be zero; room for options added later without breaking the ABI. */
    uint64_t reserved[8];
};

/* Default options: one worker per allowed core, 4096-slot queue, FIRST_FREE,
 * unpinned. */
#define WPOOL_OPTIONS_INIT                                                                         \
    {                                                                                              \
        0u, WPOOL_DEFAULT_QUEUE_CAPACITY, WPOOL_FIRST_FREE, 0,                                     \
        {                                                                                          \
            0                                                                                      \
        }                                                                                          \
    }

/*
 * A task record, embedded in the caller's own struct. Initialise it with
 * wpool_task_init(). Only `data` is the caller's; every wp_* field is private
 * to wpool and must not be touched. The record must stay valid from a
 * successful submit until its completion callback has started.
 */
struct wpool_task {
    void *data; /* the caller's; wpool never reads or writes it */

    /* private */
    wpool_work_fn wp_work;
    wpool_done_fn wp_done;
    struct wpool_task *wp_next;
    wpool_port_t *wp_target; /* port chosen by wpool_task_set_port, or NULL */
    wpool_port_t *wp_port;   /* port of the current submission */
    void *wp_queue;          /* queue of the current submission */
    uint64_t wp_pos;         /* queue position of the current submission */
    uint32_t wp_state;
    uint32_t wp_magic;
    int wp_status;
    int wp_reserved0;
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
 * topology, or found no allowed core). */
WPOOL_API int wpool_create(wpool_t **poolp, const struct wpool_options *opts);

/* Stops accepting tasks (later submits return -ESHUTDOWN), runs every task
 * already queued, and waits until all workers have finished and exited. Every
 * completion is then posted to its port; dispatch or drain the ports to run the
 * callbacks. Any thread but a worker of this pool may call it, including from a
 * completion callback. Idempotent: returns 0 when already closed.
 * Errors: -EINVAL (pool NULL), -EDEADLK (called from a task of this pool). */
WPOOL_API int wpool_close(wpool_t *pool);

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
 * to another pool), -EBUSY (task already in flight), -EAGAIN (queue full; with
 * ROUND_ROBIN every queue full), -ESHUTDOWN (pool closed or being destroyed). */
WPOOL_API int wpool_submit(wpool_t *pool, struct wpool_task *task);

/* Cancels a queued task: returns 0 and its completion arrives (on its port,
 * never inline) with status -ECANCELED; its work never runs. Any thread.
 * Errors: -EINVAL (task NULL or not initialised), -EBUSY (not queued: running,
 * already completed, or never submitted). */
WPOOL_API int wpool_cancel(struct wpool_task *task);

/* The pool's default port (owned by the thread that created the pool). NULL
 * for NULL. */
WPOOL_API wpool_port_t *wpool_default_port(wpool_t *pool);

/* Creates a further completion port, owned by the calling thread; send tasks to
 * it with wpool_task_set_port(). *portp is written only on success.
 * Errors: -EINVAL (pool or portp NULL), -ENOMEM, -EMFILE/-ENFILE, -ESHUTDOWN
 * (pool closed). */
WPOOL_API int wpool_port_create(wpool_t *pool, wpool_port_t **portp);

/* Destroys a port with no task in flight. Owner thread only. NULL accepted.
 * Errors: -EINVAL (the pool's default port), -EPERM (not the owner), -EBUSY
 * (tasks in flight to it, or called from its own completion callback). */
WPOOL_API int wpool_port_destroy(wpool_port_t *port);

/* The port's eventfd: readable while completions are waiting to be dispatched.
 * Poll it for reading; never read or write it yourself. -EINVAL for NULL. */
WPOOL_API int wpool_port_fd(const wpool_port_t *port);

/* Runs up to max pending completion callbacks on the calling thread, in
 * completion order, and returns how many ran (0 if none were pending). Owner
 * thread only; callbacks may submit, cancel and dispatch again.
 * Errors: -EINVAL (port NULL, max 0), -EPERM (not the owner). */
WPOOL_API int wpool_port_dispatch(wpool_port_t *port, unsigned int max);

/* Blocks until completions are waiting on the port, or timeout_ms passes
 * (-1: no limit, 0: poll). Does not run callbacks. Owner thread only.
 * Errors: -EINVAL (port NULL, timeout_ms < -1), -EPERM (not the owner),
 * -ETIMEDOUT. */
WPOOL_API int wpool_port_wait(wpool_port_t *port, int timeout_ms);

/* Waits for and dispatches completions until no task sent to this port is in
 * flight, or timeout_ms passes (-1: no limit). Returns how many callbacks ran.
 * Owner thread only.
 * Errors: -EINVAL (port NULL, timeout_ms < -1), -EPERM (not the owner),
 * -ETIMEDOUT (tasks still in flight; the callbacks that ran are not undone). */
WPOOL_API int wpool_port_drain(wpool_port_t *port, int timeout_ms);

/* wpool_port_fd() of the default port. -EINVAL for NULL. */
WPOOL_API int wpool_fd(const wpool_t *pool);

/* wpool_port_dispatch() on the default port. -EINVAL for NULL pool or max 0. */
WPOOL_API int wpool_dispatch(wpool_t *pool, unsigned int max);

/* WPOOL_VERSION_NUMBER of the library actually linked. */
WPOOL_API unsigned int wpool_version(void);

/* WPOOL_VERSION_STRING of the library actually linked. */
WPOOL_API const char *wpool_version_string(void);

#ifdef __cplusplus
}
#endif

#endif /* WPOOL_H */
