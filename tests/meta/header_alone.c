/* SPDX-License-Identifier: MIT */
/* The public header compiles on its own, first and alone. */
#include <wpool.h>

int main(void)
{
    /* The initialiser macro gives the documented defaults (reference,
     * wpool_options_init); the record type is complete (a zero-filled record
     * is what wpool_task_init expects). */
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    struct wpool_task t = {0};
    int ok = o.queue_capacity == WPOOL_DEFAULT_QUEUE_CAPACITY && o.threads == 0 &&
             o.placement == WPOOL_FIRST_FREE && o.max_queue == WPOOL_UNLIMITED &&
             o.drain_low_water == WPOOL_UNLIMITED && o.timing == 1 && o.pin == 0 &&
             o.coalesce_us == WPOOL_DEFAULT_COALESCE_US;
    (void)t;
    return ok ? 0 : 1;
}
