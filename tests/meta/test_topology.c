/* threads = 0 gives one worker per allowed core. meson runs this under
 * `taskset -c 0` with argv[1] = 1: the pool must honour the affinity mask. */
#include <wpool.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    unsigned want = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 0;
    wpool_t *pool;
    int rc = wpool_create(&pool, NULL);
    if (rc) {
        printf("FAIL: wpool_create: %d\n", rc);
        return 1;
    }
    unsigned got = wpool_threads(pool);
    wpool_destroy(pool);
    printf("%s: %u workers, expected %u\n", got == want ? "ok" : "FAIL", got, want);
    return got == want ? 0 : 1;
}
