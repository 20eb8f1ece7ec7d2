/* SPDX-License-Identifier: MIT */
#include "topology.h"
#include "alloc.h"

#include <errno.h>
#include <hwloc.h>
#include <hwloc/glibc-sched.h>

/* Allowed PUs of the calling thread: its binding (taskset, sched_setaffinity)
 * within what the topology says is allowed (cgroup cpusets; hwloc drops
 * disallowed PUs unless asked not to). */
static hwloc_bitmap_t wp_allowed_set(hwloc_topology_t topo)
{
    hwloc_bitmap_t set = hwloc_bitmap_alloc();
    if (!set)
        return NULL;
    if (hwloc_get_cpubind(topo, set, HWLOC_CPUBIND_THREAD) < 0 &&
        hwloc_bitmap_copy(set, hwloc_topology_get_allowed_cpuset(topo)) < 0) {
        hwloc_bitmap_free(set);
        return NULL;
    }
    hwloc_bitmap_and(set, set, hwloc_topology_get_allowed_cpuset(topo));
    return set;
}

/* Fills topo->cores from objects of `type` that intersect `allowed`. */
static int wp_collect(struct wp_topology *out, hwloc_topology_t topo, hwloc_obj_type_t type,
                      hwloc_const_bitmap_t allowed)
{
    int n = hwloc_get_nbobjs_by_type(topo, type);
    if (n <= 0)
        return 0;
    out->cores = wp_alloc(sizeof(cpu_set_t) * (size_t)n);
    if (!out->cores)
        return -ENOMEM;
    hwloc_bitmap_t both = hwloc_bitmap_alloc();
    if (!both)
        return -ENOMEM;
    out->ncores = 0;
    for (int i = 0; i < n; i++) {
        hwloc_obj_t obj = hwloc_get_obj_by_type(topo, type, (unsigned)i);
        if (!obj || !obj->cpuset)
            continue;
        hwloc_bitmap_and(both, obj->cpuset, allowed);
        if (hwloc_bitmap_iszero(both))
            continue;
        hwloc_cpuset_to_glibc_sched_affinity(topo, both, &out->cores[out->ncores],
                                             sizeof(cpu_set_t));
        out->ncores++;
    }
    hwloc_bitmap_free(both);
    return 0;
}

int wp_topology_load(struct wp_topology *out)
{
    hwloc_topology_t topo;
    int rc = -ENODEV;
    out->ncores = 0;
    out->cores = NULL;
    if (hwloc_topology_init(&topo) < 0)
        return -ENOMEM;
    if (hwloc_topology_load(topo) < 0)
        goto done;
    hwloc_bitmap_t allowed = wp_allowed_set(topo);
    if (!allowed) {
        rc = -ENOMEM;
        goto done;
    }
    rc = wp_collect(out, topo, HWLOC_OBJ_CORE, allowed);
    if (rc == 0 && out->ncores == 0) { /* no core objects: count PUs */
        wp_free(out->cores);
        out->cores = NULL;
        rc = wp_collect(out, topo, HWLOC_OBJ_PU, allowed);
    }
    hwloc_bitmap_free(allowed);
    if (rc == 0 && out->ncores == 0)
        rc = -ENODEV;
done:
    hwloc_topology_destroy(topo);
    if (rc < 0) {
        wp_free(out->cores);
        out->cores = NULL;
        out->ncores = 0;
    }
    return rc;
}

void wp_topology_free(struct wp_topology *topo)
{
    wp_free(topo->cores);
    topo->cores = NULL;
    topo->ncores = 0;
}
