/* SPDX-License-Identifier: MIT */
/* The public header compiles on its own, first and alone. */
#include <wpool.h>

int main(void)
{
    struct wpool_options o = WPOOL_OPTIONS_INIT;
    struct wpool_task t;
    (void)t;
    return o.queue_capacity == WPOOL_DEFAULT_QUEUE_CAPACITY ? 0 : 1;
}
