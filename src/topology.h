/* SPDX-License-Identifier: MIT */
/* Which cores the pool may use: from hwloc (topology.c, the only file that
 * includes hwloc), or without it from the affinity mask and sysfs
 * (topology_sysfs.c); meson builds one of the two. */
#ifndef WP_TOPOLOGY_H
#define WP_TOPOLOGY_H

#include <sched.h>

struct wp_topology {
    unsigned int ncores; /* cores with at least one PU the caller may run on */
    cpu_set_t *cores;    /* per core: its allowed PUs */
};

/* Reads the machine and the calling thread's allowed cpuset (taskset,
 * sched_setaffinity, cgroup cpusets). 0, -ENOMEM, or -ENODEV when the
 * topology cannot be read or no allowed core is found. */
int wp_topology_load(struct wp_topology *topo);
void wp_topology_free(struct wp_topology *topo);

/* Allowed cores (0 before a successful load). */
static inline unsigned int wp_topology_cores(const struct wp_topology *topo)
{
    return topo->ncores;
}

/* The allowed PUs of core i mod the allowed cores (a load succeeded). */
static inline const cpu_set_t *wp_topology_core(const struct wp_topology *topo, unsigned int i)
{
    return &topo->cores[i % topo->ncores];
}

#endif
