/* SPDX-License-Identifier: MIT */
/* qr_png: the modules of a QR symbol -> a PNG in memory (1-bit greyscale,
 * QR_SCALE px per module, QR_MARGIN modules of margin) -> a base64 data URL. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "qr.h"

/* ---- PNG in memory, then base64 ---- */

struct membuf {
    unsigned char *p;
    size_t len, cap;
    int oom;
};

static void png_write_mem(png_structp png, png_bytep data, size_t len)
{
    struct membuf *b = png_get_io_ptr(png);
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + len)
            cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            png_error(png, "out of memory");
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

static void png_flush_mem(png_structp png)
{
    (void)png;
}

/* A 1-bit greyscale PNG (0 black, 1 white) of the modules with margin and
 * scale. qrcode writes 8-bit RGBA: other bytes, the same pixels. */
static int png_encode(const unsigned char *mod, int w, struct membuf *b)
{
    const int side = (w + 2 * QR_MARGIN) * QR_SCALE;
    const size_t stride = ((size_t)side + 7) / 8;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    unsigned char *volatile row = malloc(stride);
    if (!png || !info || !row) {
        png_destroy_write_struct(&png, &info);
        free(row);
        return -ENOMEM;
    }
    if (setjmp(png_jmpbuf(png))) { /* png_error() from libpng or png_write_mem */
        png_destroy_write_struct(&png, &info);
        free(row);
        return b->oom ? -ENOMEM : -EIO;
    }
    png_set_write_fn(png, b, png_write_mem, png_flush_mem);
    png_set_IHDR(png, info, (png_uint_32)side, (png_uint_32)side, 1, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = -QR_MARGIN; y < w + QR_MARGIN; y++) {
        memset(row, 0xff, stride);
        for (int x = 0; y >= 0 && y < w && x < w; x++) {
            if (!mod[y * w + x])
                continue;
            for (int px = (x + QR_MARGIN) * QR_SCALE, e = px + QR_SCALE; px < e; px++)
                row[px / 8] &= (unsigned char)~(0x80u >> (px % 8));
        }
        for (int r = 0; r < QR_SCALE; r++)
            png_write_row(png, row);
    }
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(row);
    return 0;
}

static const char PREFIX[] = "data:image/png;base64,";

static char *base64_url(const unsigned char *in, size_t len, size_t *outlen)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t pre = sizeof(PREFIX) - 1, n = pre + (len + 2) / 3 * 4;
    char *out = malloc(n + 1), *o;
    if (!out)
        return NULL;
    memcpy(out, PREFIX, pre);
    o = out + pre;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        *o++ = i + 2 < len ? tab[v & 63] : '=';
    }
    *o = '\0';
    *outlen = n;
    return out;
}

/* The one function: UTF-8 text (len bytes, NUL-terminated) -> malloc'd data
 * URL. Returns 0, -EMSGSIZE when no QR version holds the text, -EINVAL for
 * an empty text or one with a NUL byte, -ENOMEM, -EIO. Any thread. */
int qr_data_url(const char *text, size_t len, char **url, size_t *url_len)
{
    if (len > QR_MAX_INPUT) /* before scanning it */
        return -EMSGSIZE;
    if (!text || len == 0 || memchr(text, '\0', len))
        return -EINVAL;
    unsigned char *mod;
    int w, err = qr_modules(text, len, &mod, &w);
    if (err)
        return err;
    struct membuf b = {0};
    err = png_encode(mod, w, &b);
    free(mod);
    if (!err && !(*url = base64_url(b.p, b.len, url_len)))
        err = -ENOMEM;
    free(b.p);
    return err;
}
