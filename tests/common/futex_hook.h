/* SPDX-License-Identifier: MIT */
/* For white-box tests linked with -Wl,--wrap=syscall: every futex(2) call the
 * library makes through syscall() is reported to the test's own
 *     static void on_futex(int cmd, uintptr_t addr);
 * (cmd is the op without flags: FUTEX_WAIT, FUTEX_WAKE, ...) before it is
 * made. Define on_futex, then include this header. Test code only. */
#ifndef WP_TEST_FUTEX_HOOK_H
#define WP_TEST_FUTEX_HOOK_H

#include <linux/futex.h>
#include <stdarg.h>
#include <stdint.h>
#include <sys/syscall.h>

long __real_syscall(long number, ...);
long __wrap_syscall(long number, ...);

long __wrap_syscall(long number, ...)
{
    va_list ap;
    long a[6];
    va_start(ap, number);
    for (int i = 0; i < 6; i++)
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_futex)
        on_futex((int)(a[1] & FUTEX_CMD_MASK), (uintptr_t)a[0]);
    return __real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

#endif
