/* SPDX-License-Identifier: MIT */
/*
 * qr_matrix: the modules of a text's QR symbol, exactly those that npm
 * qrcode's QRCode.toDataURL(text) draws by default (error correction M).
 *
 * Why the same modules as qrcode. libqrencode builds the symbol (version,
 * codewords, error correction, function patterns), but the two libraries
 * make two choices differently, and each changes the picture:
 *
 *   segments  which runs of the text go in numeric, alphanumeric or byte mode
 *             (libqrencode's QRcode_encodeString keeps short digit runs in
 *             byte mode: "hello123", ".../item/4567"). We compute qrcode's
 *             segments (seg_input) and give them to libqrencode as they are.
 *   mask      both score the 8 masks by the penalty rules of ISO/IEC 18004
 *             and take the lowest, but read the rules differently (N3, N4)
 *             and disagree on about 60% of texts. We undo libqrencode's mask
 *             and choose again, scoring as qrcode does (penalty()).
 *
 * Everything else (no ECI header, UTF-8 bytes, padding, the smallest version
 * that holds the segments) already agrees. README.md has the details.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <qrencode.h>

#include "qr.h"

/* ---- the mask, chosen as qrcode chooses it ---- */

/* Mask pattern m at row y, column x (ISO/IEC 18004 table 10). */
static int mask_at(int m, int y, int x)
{
    switch (m) {
    case 0:
        return (y + x) % 2 == 0;
    case 1:
        return y % 2 == 0;
    case 2:
        return x % 3 == 0;
    case 3:
        return (y + x) % 3 == 0;
    case 4:
        return (y / 2 + x / 3) % 2 == 0;
    case 5:
        return (y * x) % 2 + (y * x) % 3 == 0;
    case 6:
        return ((y * x) % 2 + (y * x) % 3) % 2 == 0;
    default:
        return ((y + x) % 2 + (y * x) % 3) % 2 == 0;
    }
}

/* The 15-bit format word of level M (bits 00) and mask m: 5 data bits, 10
 * BCH bits (generator 0x537), XOR 0x5412. */
static unsigned format_word(int m)
{
    unsigned data = (0u << 3) | (unsigned)m, rem = data << 10;
    for (int bit = 14; bit >= 10; bit--)
        if (rem & (1u << bit))
            rem ^= 0x537u << (bit - 10);
    return ((data << 10) | rem) ^ 0x5412u;
}

/* Writes (or, with get, reads the first copy of) the format word; the two
 * copies sit beside the finder patterns, bit 0 first. */
static unsigned format_bits(unsigned char *mod, int w, unsigned word, int get)
{
    unsigned got = 0;
    for (int i = 0; i < 15; i++) {
        int y1 = i < 6 ? i : i < 8 ? i + 1 : 8, x1 = i < 8 ? 8 : i == 8 ? 7 : 14 - i;
        int y2 = i < 8 ? 8 : w - 15 + i, x2 = i < 8 ? w - 1 - i : 8;
        if (get) {
            got |= (unsigned)(mod[y1 * w + x1] & 1) << i;
        } else {
            mod[y1 * w + x1] = mod[y2 * w + x2] = (word >> i) & 1;
        }
    }
    return got;
}

/* The penalty of a finished symbol (0/1 per module), as qrcode's
 * lib/core/mask-pattern.js scores it: N1 3 + (n - 5) per run of n >= 5 equal
 * modules in a row or column; N2 3 per 2x2 block of one colour (overlapping
 * blocks count); N3 40 per 1:1:3:1:1 pattern with 4 light modules on one
 * side (dark-light-dark*3-light-dark + light*4, or its mirror), found in
 * 11-module windows wholly inside the symbol; N4 10 * |ceil(20 * dark /
 * total) - 10|, i.e. ceil(dark% / 5) - 10, which gives 10 points already for
 * 50.1% dark (the standard's reading would give 0 below 55%). */
static long penalty(const unsigned char *mod, int w)
{
    long p = 0, dark = 0;
    for (int a = 0; a < w; a++) {
        for (int dir = 0; dir < 2; dir++) { /* row a, then column a */
            int run = 0, prev = -1;
            unsigned win = 0;
            for (int b = 0; b < w; b++) {
                int v = dir ? mod[b * w + a] : mod[a * w + b];
                if (v == prev) {
                    run++;
                } else {
                    if (run >= 5)
                        p += 3 + run - 5;
                    prev = v;
                    run = 1;
                }
                win = ((win << 1) | (unsigned)v) & 0x7ff;
                if (b >= 10 && (win == 0x5d0 || win == 0x05d))
                    p += 40;
            }
            if (run >= 5)
                p += 3 + run - 5;
        }
    }
    for (int y = 0; y < w; y++)
        for (int x = 0; x < w; x++) {
            dark += mod[y * w + x];
            if (y + 1 < w && x + 1 < w) {
                int s = mod[y * w + x] + mod[y * w + x + 1] + mod[(y + 1) * w + x] +
                        mod[(y + 1) * w + x + 1];
                p += (s == 0 || s == 4) * 3;
            }
        }
    long total = (long)w * w, k = (20 * dark + total - 1) / total - 10; /* exact ceil */
    return p + 10 * (k < 0 ? -k : k);
}

/* ---- the segments, chosen as qrcode chooses them ---- */

/* qrcode splits the text into maximal runs of digits, of the other
 * alphanumeric characters (A-Z, space, $%*+-./:) and of everything else
 * (byte mode, UTF-8), and then picks a mode for each run by a shortest path
 * through a graph: a digit run may be numeric, alphanumeric or byte, an
 * alphanumeric run alphanumeric or byte, a byte run byte; an edge costs the
 * bits of its run, plus a mode indicator and a character count when the mode
 * changes. libqrencode's own splitting (QRcode_encodeString) uses run-length
 * thresholds instead, and differs on short digit runs ("hello123",
 * ".../item/4567") and on ties; so we compute qrcode's segments here and hand
 * them to libqrencode with QRinput_append. Two quirks of qrcode are kept, as
 * they decide which segments win: an edge between two nodes of the same mode
 * is priced from a running count that each node keeps while its outgoing
 * edges are built (see seg_graph), and among equally short paths the
 * shortest-path search keeps the predecessor it reached first (costs ties go
 * to the node queued first). */
enum { SEG_NUM, SEG_AN, SEG_BYTE };

/* Data codewords at level M of versions 9, 26 and 40: the last versions of
 * each character-count width (ISO/IEC 18004 table 7). */
static const long CAP_BITS[3] = {182 * 8, 1062 * 8, 2334 * 8};

static int seg_class(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return SEG_NUM;
    if ((c >= 'A' && c <= 'Z') || (c && strchr(" $%*+-./:", c)))
        return SEG_AN;
    return SEG_BYTE;
}

static long seg_bits(int mode, long n)
{
    switch (mode) {
    case SEG_NUM:
        return 10 * (n / 3) + (n % 3 == 1 ? 4 : n % 3 == 2 ? 7 : 0);
    case SEG_AN:
        return 11 * (n / 2) + 6 * (n % 2);
    default:
        return 8 * n;
    }
}

/* Mode indicator plus character count, for versions 1-9 (range 0), 10-26
 * (1) and 27-40 (2). */
static long seg_header(int mode, int range)
{
    static const int cc[3][3] = {{10, 12, 14}, {9, 11, 13}, {8, 16, 16}};
    return 4 + cc[mode][range];
}

struct seg_node {
    int mode, run; /* run: index into the runs */
    int group;     /* the run's index too: nodes are grouped per run */
    long last;     /* qrcode's running count (lastCount) */
    long in_w[3];  /* the weight of the edge from each node of the group before */
    long cost;
    int pred; /* -1: none yet */
};

struct seg_heap {
    long cost, seq;
    int node;
};

static int heap_less(const struct seg_heap *a, const struct seg_heap *b)
{
    return a->cost < b->cost || (a->cost == b->cost && a->seq < b->seq);
}

static void heap_push(struct seg_heap *h, size_t *n, struct seg_heap e)
{
    size_t i = (*n)++;
    for (; i && heap_less(&e, &h[(i - 1) / 2]); i = (i - 1) / 2)
        h[i] = h[(i - 1) / 2];
    h[i] = e;
}

static struct seg_heap heap_pop(struct seg_heap *h, size_t *n)
{
    struct seg_heap top = h[0], e = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && heap_less(&h[c + 1], &h[c]))
            c++;
        if (!heap_less(&h[c], &e))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = e;
    return top;
}

/* Builds the QRinput for text (len bytes) with qrcode's segments. */
static int seg_input(const char *text, size_t len, QRinput **inp)
{
    static const QRencodeMode qmode[] = {QR_MODE_NUM, QR_MODE_AN, QR_MODE_8};
    size_t nruns = 0, nnodes = 0, nheap = 0, seq = 0;
    size_t *run_start = malloc(len * sizeof(size_t)), *run_len = malloc(len * sizeof(size_t));
    int *run_mode = malloc(len * sizeof(int)), *first = malloc((len + 1) * sizeof(int));
    struct seg_node *node = malloc(3 * len * sizeof(*node));
    struct seg_heap *heap = malloc(10 * (len + 1) * sizeof(*heap));
    int err = -ENOMEM, *path = malloc(len * sizeof(int));
    QRinput *in = NULL;
    if (!run_start || !run_len || !run_mode || !first || !node || !heap || !path)
        goto out;
    for (size_t i = 0; i < len; i++) { /* the runs */
        int c = seg_class((unsigned char)text[i]);
        if (nruns && run_mode[nruns - 1] == c) {
            run_len[nruns - 1]++;
        } else {
            run_start[nruns] = i;
            run_len[nruns] = 1;
            run_mode[nruns++] = c;
        }
    }
    /* The character-count widths: those of the smallest version that holds
     * the runs each in its own mode (qrcode's estimate; 40 if none). */
    int range = 2;
    for (int r = 0; r < 2 && range == 2; r++) {
        long bits = 0;
        for (size_t k = 0; k < nruns; k++)
            bits += seg_header(run_mode[k], r) + seg_bits(run_mode[k], (long)run_len[k]);
        if (bits <= CAP_BITS[r])
            range = r;
    }
    /* The nodes: per run, its modes in qrcode's order (numeric,
     * alphanumeric, byte); first[k] is run k's first node. */
    for (size_t k = 0; k < nruns; k++) {
        first[k] = (int)nnodes;
        for (int m = run_mode[k]; m <= SEG_BYTE; m++)
            node[nnodes++] = (struct seg_node){m, (int)k, (int)k, 0, {0}, 0, -1};
    }
    first[nruns] = (int)nnodes;
    /* seg_graph: the edge weights, built in qrcode's order (for each node of
     * a run, for each node of the run before) so that `last` evolves as
     * there. */
    for (size_t k = 0; k < nruns; k++) {
        for (int v = first[k]; v < first[k + 1]; v++) {
            long n = (long)run_len[k];
            int m = node[v].mode;
            if (k == 0) {
                node[v].in_w[0] = seg_bits(m, n) + seg_header(m, range);
                continue;
            }
            for (int u = first[k - 1]; u < first[k]; u++) {
                struct seg_node *p = &node[u];
                if (p->mode == m) {
                    node[v].in_w[u - first[k - 1]] =
                        seg_bits(m, p->last + n) - seg_bits(m, p->last);
                    p->last += n;
                } else {
                    p->last = n;
                    node[v].in_w[u - first[k - 1]] = seg_bits(m, n) + seg_header(m, range);
                }
            }
        }
    }
    /* Dijkstra from the start (-1) to the end (nnodes), keeping the first
     * predecessor found at the lowest cost; the queue pops the lowest cost,
     * and the earliest pushed among equal costs. */
    long end_cost = -1;
    int end_pred = -1;
    heap_push(heap, &nheap, (struct seg_heap){0, (long)seq++, -1});
    while (nheap) {
        struct seg_heap e = heap_pop(heap, &nheap);
        int k = e.node < 0 ? 0 : node[e.node].group + 1;
        if (k == (int)nruns) { /* the last run's nodes lead to the end, at 0 */
            if (end_pred < 0 || end_cost > e.cost) {
                end_cost = e.cost;
                end_pred = e.node;
            }
            continue;
        }
        for (int v = first[k]; v < first[k + 1]; v++) {
            long c = e.cost + node[v].in_w[e.node < 0 ? 0 : e.node - first[k - 1]];
            if (node[v].pred == -1 || node[v].cost > c) {
                node[v].cost = c;
                node[v].pred = e.node < 0 ? -2 : e.node; /* -2: the start */
                heap_push(heap, &nheap, (struct seg_heap){c, (long)seq++, v});
            }
        }
    }
    size_t npath = nruns;
    for (int v = end_pred; v >= 0; v = node[v].pred)
        path[--npath] = v;
    if (!(in = QRinput_new2(0, QR_ECLEVEL_M)))
        goto out;
    /* One segment per stretch of runs given the same mode. */
    for (size_t k = 0; k < nruns;) {
        int m = node[path[k]].mode;
        size_t start = run_start[k], end = k;
        while (end < nruns && node[path[end]].mode == m)
            end++;
        size_t n = run_start[end - 1] + run_len[end - 1] - start;
        errno = 0; /* libqrencode reports through errno */
        if (QRinput_append(in, qmode[m], (int)n, (const unsigned char *)text + start)) {
            err = errno ? -errno : -EINVAL;
            goto out;
        }
        k = end;
    }
    *inp = in;
    in = NULL;
    err = 0;
out:
    QRinput_free(in);
    free(run_start);
    free(run_len);
    free(run_mode);
    free(first);
    free(node);
    free(heap);
    free(path);
    return err;
}

/* The symbol's modules (0/1, row-major, *wp per side), masked as qrcode would
 * mask them. Returns 0 or a negative errno. */
int qr_modules(const char *text, size_t len, unsigned char **out, int *wp)
{
    QRinput *in;
    int err = seg_input(text, len, &in);
    if (err)
        return err;
    errno = 0;                           /* libqrencode reports through errno */
    QRcode *qr = QRcode_encodeInput(in); /* the smallest version that holds them */
    QRinput_free(in);
    if (!qr)
        return errno == ERANGE ? -EMSGSIZE : errno ? -errno : -EINVAL;
    int w = qr->width, n = w * w, found = -1, best = 0;
    unsigned char *base = malloc((size_t)n), *cand = malloc((size_t)n);
    if (!base || !cand) {
        QRcode_free(qr);
        free(base);
        free(cand);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++)
        base[i] = qr->data[i] & 1;
    /* Which mask did libqrencode apply? Its format word says. */
    unsigned word = format_bits(base, w, 0, 1);
    for (int m = 0; m < 8; m++)
        if (format_word(m) == word)
            found = m;
    if (found < 0) { /* cannot happen with a sound libqrencode */
        QRcode_free(qr);
        free(base);
        free(cand);
        return -EPROTO;
    }
    /* Undo it on the data modules (bit 7 clear: not a function pattern, nor
     * format or version information). */
    for (int i = 0; i < n; i++)
        if (!(qr->data[i] & 0x80))
            base[i] ^= (unsigned char)mask_at(found, i / w, i % w);
    long low = -1;
    for (int m = 0; m < 8; m++) { /* the first lowest wins, as in qrcode */
        for (int i = 0; i < n; i++)
            cand[i] = base[i] ^ (!(qr->data[i] & 0x80) && mask_at(m, i / w, i % w));
        format_bits(cand, w, format_word(m), 0);
        long pen = penalty(cand, w);
        if (low < 0 || pen < low) {
            low = pen;
            best = m;
        }
    }
    for (int i = 0; i < n; i++)
        cand[i] = base[i] ^ (!(qr->data[i] & 0x80) && mask_at(best, i / w, i % w));
    format_bits(cand, w, format_word(best), 0);
    QRcode_free(qr);
    free(base);
    *out = cand;
    *wp = w;
    return 0;
}
