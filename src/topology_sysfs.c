/* SPDX-License-Identifier: MIT */
/*
 * Which cores the pool may use, without hwloc (built with -Dhwloc=disabled,
 * or when hwloc is not installed): the calling thread's affinity mask
 * (sched_getaffinity: taskset and sched_setaffinity, and the cgroup cpuset,
 * which the kernel applies to every mask), grouped by physical core with the
 * kernel's topology in sysfs (package, die, core id). A CPU whose topology
 * sysfs does not show is a core of its own. Reads files with open/read: no
 * stdio, no allocation but the result.
 */
#include "alloc.h"
#include "topology.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* A number from /sys/devices/system/cpu/cpuN/topology/NAME, or -1. */
static long wp_sysfs_id(int cpu, const char *name)
{
    char path[96], buf[32];
    snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/topology/%s", cpu, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *end;
    long v = strtol(buf, &end, 10);
    return end == buf ? -1 : v;
}

struct wp_core_id {
    long package, die, core;
};

int wp_topology_load(struct wp_topology *out)
{
    out->ncores = 0;
    out->cores = NULL;
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0)
        return -ENODEV;
    int n = CPU_COUNT(&allowed);
    if (n <= 0)
        return -ENODEV;
    out->cores = wp_alloc(sizeof(cpu_set_t) * (size_t)n);
    struct wp_core_id *ids = wp_alloc(sizeof(*ids) * (size_t)n);
    if (!out->cores || !ids) {
        wp_free(ids);
        wp_topology_free(out);
        return -ENOMEM;
    }
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed))
            continue;
        struct wp_core_id id = {wp_sysfs_id(cpu, "physical_package_id"), wp_sysfs_id(cpu, "die_id"),
                                wp_sysfs_id(cpu, "core_id")};
        unsigned int k = 0;
        if (id.core >= 0)
            while (k < out->ncores && !(ids[k].package == id.package && ids[k].die == id.die &&
                                        ids[k].core == id.core))
                k++;
        else
            k = out->ncores; /* unknown: a core of its own */
        if (k == out->ncores) {
            ids[k] = id;
            CPU_ZERO(&out->cores[k]);
            out->ncores++;
        }
        CPU_SET(cpu, &out->cores[k]);
    }
    wp_free(ids);
    return 0;
}

void wp_topology_free(struct wp_topology *topo)
{
    wp_free(topo->cores);
    topo->cores = NULL;
    topo->ncores = 0;
}
