/* SPDX-License-Identifier: MIT */
/*
 * Include after <check.h>. Check's ck_assert_* record a "mark point" (a write
 * to a pipe under a lock) even when they pass; in loops run by many threads
 * that serialises the threads and dominates the test. These replacements
 * evaluate each argument once, cost one branch when they pass, and fail the
 * test exactly as Check does (ck_abort_msg with both values).
 */
#ifndef WP_TEST_FASTCHECK_H
#define WP_TEST_FASTCHECK_H

#include <check.h>
#include <stdint.h>

#define REQUIRE(cond, ...)                                                                         \
    do {                                                                                           \
        if (!(cond))                                                                               \
            ck_abort_msg(__VA_ARGS__);                                                             \
    } while (0)

#define WP_CK_CMP(type, fmt, a, op, b)                                                             \
    do {                                                                                           \
        type wp_x_ = (type)(a);                                                                    \
        type wp_y_ = (type)(b);                                                                    \
        if (!(wp_x_ op wp_y_))                                                                     \
            ck_abort_msg("%s:%d: assertion '%s " #op " %s' failed: " fmt " vs " fmt, __FILE__,     \
                         __LINE__, #a, #b, wp_x_, wp_y_);                                          \
    } while (0)

#undef ck_assert
#undef ck_assert_int_eq
#undef ck_assert_int_ne
#undef ck_assert_int_lt
#undef ck_assert_int_le
#undef ck_assert_int_gt
#undef ck_assert_int_ge
#undef ck_assert_uint_eq
#undef ck_assert_uint_le
#undef ck_assert_uint_ge
#undef ck_assert_ptr_eq
#define ck_assert(c)            REQUIRE(c, "%s:%d: assertion '%s' failed", __FILE__, __LINE__, #c)
#define ck_assert_int_eq(a, b)  WP_CK_CMP(intmax_t, "%jd", a, ==, b)
#define ck_assert_int_ne(a, b)  WP_CK_CMP(intmax_t, "%jd", a, !=, b)
#define ck_assert_int_lt(a, b)  WP_CK_CMP(intmax_t, "%jd", a, <, b)
#define ck_assert_int_le(a, b)  WP_CK_CMP(intmax_t, "%jd", a, <=, b)
#define ck_assert_int_gt(a, b)  WP_CK_CMP(intmax_t, "%jd", a, >, b)
#define ck_assert_int_ge(a, b)  WP_CK_CMP(intmax_t, "%jd", a, >=, b)
#define ck_assert_uint_eq(a, b) WP_CK_CMP(uintmax_t, "%ju", a, ==, b)
#define ck_assert_uint_le(a, b) WP_CK_CMP(uintmax_t, "%ju", a, <=, b)
#define ck_assert_uint_ge(a, b) WP_CK_CMP(uintmax_t, "%ju", a, >=, b)
#define ck_assert_ptr_eq(a, b)  WP_CK_CMP(const void *, "%p", a, ==, b)

/* main() of a Check program: run one suite (fork mode unless CK_FORK=no),
 * exit non-zero if any test failed. */
static inline int wp_run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}

#endif
