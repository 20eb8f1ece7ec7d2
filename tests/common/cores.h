/* SPDX-License-Identifier: MIT */
/* The process's allowed CPUs grouped by physical core, read from sysfs (not
 * hwloc: the tests check the library's hwloc-based count against it). Test
 * code only. */
#ifndef WP_TEST_CORES_H
#define WP_TEST_CORES_H

#include "helpers.h"

#include <sched.h>
#include <stdio.h>

#define WP_TEST_MAX_CORES 256

static long wp_sysfs_num(int cpu, const char *what)
{
    char path[128];
    snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/topology/%s", cpu, what);
    return file_long(path);
}

/* Fills cores[i] with the allowed CPUs of the i-th core that has any;
 * returns how many cores (0 if sysfs says nothing). */
static int allowed_cores(cpu_set_t *cores, int max)
{
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof(allowed), &allowed))
        return 0;
    long ids[WP_TEST_MAX_CORES][3];
    int n = 0;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, &allowed))
            continue;
        long pkg = wp_sysfs_num(cpu, "physical_package_id");
        long die = wp_sysfs_num(cpu, "die_id");
        long core = wp_sysfs_num(cpu, "core_id");
        if (core < 0)
            return 0;
        int k = 0;
        while (k < n && !(ids[k][0] == pkg && ids[k][1] == die && ids[k][2] == core))
            k++;
        if (k == n) {
            if (n == max || n == WP_TEST_MAX_CORES)
                return 0;
            ids[n][0] = pkg;
            ids[n][1] = die;
            ids[n][2] = core;
            CPU_ZERO(&cores[n]);
            n++;
        }
        CPU_SET(cpu, &cores[k]);
    }
    return n;
}

#endif
