/* SPDX-License-Identifier: MIT */
/* Fork policy: the process generation (fork.h). */
#include "fork.h"
#include "strand.h"

#include <pthread.h>

_Atomic unsigned int wp_fork_generation;
static pthread_once_t wp_fork_once = PTHREAD_ONCE_INIT;

static void wp_fork_child(void)
{
    atomic_fetch_add_explicit(&wp_fork_generation, 1, memory_order_relaxed);
    wp_strands_fork_child();
}

static void wp_fork_setup(void)
{
    pthread_atfork(NULL, NULL, wp_fork_child);
}

void wp_fork_init(void)
{
    pthread_once(&wp_fork_once, wp_fork_setup);
}
