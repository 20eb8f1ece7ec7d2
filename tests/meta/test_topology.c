/* SPDX-License-Identifier: MIT */
/* threads = 0 gives exactly one worker per allowed core: the count must equal
 * the number of physical cores (sysfs) that hold at least one CPU of the
 * process's affinity mask. meson runs it plainly and under several tasksets. */
#include "../common/cores.h"
#include <wpool.h>

#include <stdlib.h>

int main(void)
{
    static cpu_set_t cores[WP_TEST_MAX_CORES];
    int want = allowed_cores(cores, WP_TEST_MAX_CORES);
    if (want <= 0) {
        printf("FAIL: no CPU topology in sysfs to compare with\n");
        return 1;
    }
    wpool_t *pool;
    int rc = wpool_create(&pool, NULL);
    if (rc) {
        printf("FAIL: wpool_create: %d\n", rc);
        return 1;
    }
    unsigned got = wpool_threads(pool);
    rc = wpool_destroy(pool);
    if (rc) {
        printf("FAIL: wpool_destroy: %d\n", rc);
        return 1;
    }
    printf("%s: %u workers, %d allowed cores\n", got == (unsigned)want ? "ok" : "FAIL", got, want);
    return got == (unsigned)want ? 0 : 1;
}
