/* SPDX-License-Identifier: MIT */
/*
 * The QR service's C half, shared by its three files:
 *   qr_matrix.c  text -> the QR symbol's modules, as npm qrcode makes them
 *   qr_png.c     modules -> PNG -> "data:image/png;base64,..."
 *   qr_addon.c   the Node addon: the wpool-napi task, qrInline, qrThread
 */
#ifndef QR_H
#define QR_H

#include <stddef.h>

#define QR_SCALE     4    /* pixels per module */
#define QR_MARGIN    4    /* light modules around the symbol */
#define QR_MAX_INPUT 7089 /* the most any QR code holds (numeric, 40-L) */

/* The symbol's modules for UTF-8 text (0/1, row-major, *wp per side, malloc'd),
 * masked as qrcode would mask them. Returns 0 or a negative errno (-EMSGSIZE:
 * no version holds the text). Any thread. */
int qr_modules(const char *text, size_t len, unsigned char **out, int *wp);

/* UTF-8 text (len bytes, NUL-terminated) -> malloc'd data URL. Returns 0,
 * -EMSGSIZE when no QR version holds the text, -EINVAL for an empty text or
 * one with a NUL byte, -ENOMEM, -EIO. Any thread. */
int qr_data_url(const char *text, size_t len, char **url, size_t *url_len);

#endif
