/* The pool object, shared by pool.c (workers, lifecycle) and port.c (the
 * public port calls that need the pool's lock). */
#ifndef WP_POOL_H
#define WP_POOL_H

#include "common.h"
#include "park.h"
#include "queue.h"
#include "topology.h"
#include "wpool.h"

#include <pthread.h>
#include <stdbool.h>

enum wp_life {
    WP_OPEN,       /* accepting tasks */
    WP_CLOSING,    /* a close is joining the workers (without the lock) */
    WP_CLOSED,     /* workers joined, ports still usable */
    WP_DESTROYING, /* wpool_destroy is stopping workers or delivering leftovers */
};

struct wp_worker {
    WP_ALIGNED pthread_t thread;
    struct wpool *pool;
    unsigned int index;
    bool started;
};

struct wpool {
    struct wp_park park;                     /* idle workers sleep here; own cache line */
    WP_ALIGNED _Atomic unsigned int rr_next; /* ROUND_ROBIN: next queue (a hint) */
    WP_ALIGNED _Atomic int cancel_queued;    /* destroy: cancel instead of run */
    unsigned int nthreads;
    unsigned int nqueues; /* 1 (FIRST_FREE) or nthreads (ROUND_ROBIN) */
    struct wp_queue *queues;
    struct wp_worker *workers;
    struct wpool_port *default_port;
    struct wp_topology topo;
    bool pin;
    /* Lifecycle and the port list. Never taken on the task path, and never
     * held while waiting for workers (a task may call port_create). The pool
     * lock is the only lock; nothing else is held with it. */
    pthread_mutex_t lock;
    pthread_cond_t life_changed; /* signalled when a close finishes */
    enum wp_life life;
    struct wpool_port *ports; /* every port, the default one included */
};

#endif
