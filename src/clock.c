/* SPDX-License-Identifier: MIT */
/* The clock of deadlines (clock.h). */
#include "clock.h"
#include "wpool.h"

uint64_t wpool_now_ns(void)
{
    return wp_clock_ns();
}
