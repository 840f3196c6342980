/* The compiled JSON fast path of parse_reports: platform.report records in one pass, in C.
 *
 * Python side and contract: workbook/telemetry/jsoncompiled.py. A line is read here only when
 * it is exactly what the careful path (the regular expressions of workbook.telemetry.fields)
 * reads the same way:
 *
 *   - one JSON object: "time", "type" and "record" at the top; "requestId", "metrics",
 *     "status", "errorType", "tracing" and "spans" in the record; the seven metrics in "metrics";
 *     "spanId", "type" and "value" in "tracing"; "name", "start" and "durationMs" in each of
 *     the "spans". No other key, none twice in one object; JSON whitespace
 *     between tokens; nothing but whitespace after the closing brace;
 *   - "type" is "platform.report"; the request id and durationMs are there;
 *   - strings are not empty and hold no backslash (an escape) and no control byte;
 *     the X-Ray span id and type hold no brace;
 *   - numbers are -?digits(.digits)?, no exponent; a float metric has at most 2^53 as its
 *     digits and at most 22 after the point (so digits / 10^k, one IEEE division, is the
 *     correctly rounded value, as Arrow's cast of the text gives it); an integer metric has
 *     at most 18 digits, or a fraction of zeros with a value below 2^53.
 *
 * Any other line is left (its ok byte is 0) for the next path. Nothing here decides that a
 * line is malformed: only the careful path does.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { S_REQUEST, S_TIME, S_STATUS, S_ERROR, S_XRAY, NSTR };
enum { F_DURATION, F_INIT, F_RESTORE, NFLT };
enum { I_BILLED, I_MEMORY, I_MAXMEM, I_BILLED_RESTORE, NINT };

static const char *STR_NAMES[NSTR] = {"request_id", "time", "status_raw", "error_type", "xray_trace_id"};
static const char *FLT_NAMES[NFLT] = {"duration_ms", "init_duration_ms", "restore_duration_ms"};
static const char *INT_NAMES[NINT] = {"billed_duration_ms", "memory_size_mb", "max_memory_used_mb",
                                      "billed_restore_duration_ms"};

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

typedef struct {
    const char *p;
    Py_ssize_t n;
} Span;

typedef struct {
    Span s[NSTR];
    double f[NFLT];
    int64_t i[NINT];
    unsigned fmask, imask;
} Rec;

typedef struct {
    const char *p, *end;
} Cur;

/* ---------------------------------------------------------------------------------------- */
/* The grammar.                                                                              */
/* ---------------------------------------------------------------------------------------- */

static inline void ws(Cur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static inline int lit(Cur *c, char ch) {
    ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A string: not empty, no backslash, no control byte. */
static inline int str(Cur *c, Span *out) {
    ws(c);
    if (c->p >= c->end || *c->p != '"') return 0;
    const char *s = ++c->p;
    /* eight bytes at a time while none is a quote, a backslash or a control byte */
    while (c->end - c->p >= 8) {
        uint64_t x;
        memcpy(&x, c->p, 8);
        const uint64_t ones = UINT64_C(0x0101010101010101), highs = UINT64_C(0x8080808080808080);
        uint64_t q = x ^ (ones * '"'), b = x ^ (ones * '\\');
        uint64_t hit = ((q - ones) & ~q) | ((b - ones) & ~b) | ((x - ones * 0x20) & ~x);
        if (hit & highs) break;
        c->p += 8;
    }
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') break;
        if (ch == '\\' || ch < 0x20) return 0;
        c->p++;
    }
    if (c->p >= c->end || c->p == s) return 0;
    out->p = s;
    out->n = c->p - s;
    c->p++;
    return 1;
}

#define IS(k, lit_) ((k).n == (Py_ssize_t)(sizeof(lit_) - 1) && memcmp((k).p, lit_, sizeof(lit_) - 1) == 0)

static inline int is_digit(char ch) { return ch >= '0' && ch <= '9'; }

/* A number as the careful path's pattern reads it, in the subset whose value is exact here. */
static int number(Cur *c, int integer, double *fv, int64_t *iv) {
    ws(c);
    const char *p = c->p, *e = c->end;
    int neg = 0, digits = 0, frac = 0, frac_zero = 1;
    uint64_t w = 0;
    if (p < e && *p == '-') {
        neg = 1;
        p++;
    }
    while (p < e && is_digit(*p)) {
        if (digits >= 18) return 0;
        w = w * 10 + (uint64_t)(*p - '0');
        digits++;
        p++;
    }
    if (!digits) return 0;
    if (p < e && *p == '.') {
        p++;
        while (p < e && is_digit(*p)) {
            if (*p != '0') frac_zero = 0;
            if (!integer) {
                if (digits + frac >= 18) return 0;
                w = w * 10 + (uint64_t)(*p - '0');
            } else if (frac >= 64) {
                return 0;
            }
            frac++;
            p++;
        }
        if (!frac) return 0;
    }
    if (p < e && (*p == 'e' || *p == 'E' || *p == '.')) return 0;
    if (integer) {
        if (frac && (!frac_zero || w > (UINT64_C(1) << 53))) return 0;
        *iv = neg ? -(int64_t)w : (int64_t)w;
    } else {
        if (w > (UINT64_C(1) << 53) || frac > 22) return 0;
        double d = (double)w;
        if (frac) d /= POW10[frac];
        *fv = neg ? -d : d;
    }
    c->p = p;
    return 1;
}

/* After a value: ',' (another key follows: 1) or '}' (the object ends: 2); anything else 0. */
static inline int next(Cur *c) {
    if (lit(c, ',')) return 1;
    if (lit(c, '}')) return 2;
    return 0;
}

static int has_brace(Span s) {
    for (Py_ssize_t i = 0; i < s.n; i++)
        if (s.p[i] == '{' || s.p[i] == '}') return 1;
    return 0;
}

static inline int id_char(char ch) {
    return is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '-';
}

/* The trace id as the careful pattern takes it: the last "Root=" that an id character follows. */
static Span root_of(Span v) {
    Span out = {NULL, 0};
    for (Py_ssize_t i = v.n - 6; i >= 0; i--) {
        if (v.p[i] == 'R' && memcmp(v.p + i, "Root=", 5) == 0 && id_char(v.p[i + 5])) {
            Py_ssize_t j = i + 5;
            while (j < v.n && id_char(v.p[j])) j++;
            out.p = v.p + i + 5;
            out.n = j - i - 5;
            return out;
        }
    }
    return out;
}

static int metrics(Cur *c, Rec *r) {
    if (!lit(c, '{')) return 0;
    if (lit(c, '}')) return 1;
    for (;;) {
        Span k;
        if (!str(c, &k) || !lit(c, ':')) return 0;
        int f = -1, i = -1;
        if (IS(k, "durationMs")) f = F_DURATION;
        else if (IS(k, "billedDurationMs")) i = I_BILLED;
        else if (IS(k, "memorySizeMB")) i = I_MEMORY;
        else if (IS(k, "maxMemoryUsedMB")) i = I_MAXMEM;
        else if (IS(k, "initDurationMs")) f = F_INIT;
        else if (IS(k, "restoreDurationMs")) f = F_RESTORE;
        else if (IS(k, "billedRestoreDurationMs")) i = I_BILLED_RESTORE;
        else return 0;
        if (f >= 0) {
            if ((r->fmask & (1u << f)) || !number(c, 0, &r->f[f], NULL)) return 0;
            r->fmask |= 1u << f;
        } else {
            if ((r->imask & (1u << i)) || !number(c, 1, NULL, &r->i[i])) return 0;
            r->imask |= 1u << i;
        }
        int n = next(c);
        if (n == 2) return 1;
        if (n == 0) return 0;
    }
}

static int tracing(Cur *c, Rec *r) {
    unsigned seen = 0;
    if (!lit(c, '{')) return 0;
    if (lit(c, '}')) return 1;
    for (;;) {
        Span k, v;
        if (!str(c, &k) || !lit(c, ':') || !str(c, &v)) return 0;
        unsigned bit;
        if (IS(k, "value")) {
            bit = 1;
            r->s[S_XRAY] = root_of(v);
        } else if (IS(k, "spanId")) {
            bit = 2;
        } else if (IS(k, "type")) {
            bit = 4;
        } else {
            return 0;
        }
        if ((seen & bit) || (bit != 1 && has_brace(v))) return 0;
        seen |= bit;
        int n = next(c);
        if (n == 2) return 1;
        if (n == 0) return 0;
    }
}

/* Lambda Managed Instances' "spans": [{"name": "...", "start": "...", "durationMs": N}, ...]. Read
 * past: the careful path reads none of it (its patterns name keys that a span does not hold). */
static int spans(Cur *c) {
    if (!lit(c, '[')) return 0;
    if (lit(c, ']')) return 1;
    for (;;) {
        unsigned seen = 0;
        if (!lit(c, '{')) return 0;
        for (;;) {
            Span k, v;
            double d;
            unsigned bit;
            int ok;
            if (!str(c, &k) || !lit(c, ':')) return 0;
            if (IS(k, "name")) {
                bit = 1;
                ok = str(c, &v);
            } else if (IS(k, "start")) {
                bit = 2;
                ok = str(c, &v);
            } else if (IS(k, "durationMs")) {
                bit = 4;
                ok = number(c, 0, &d, NULL);
            } else {
                return 0;
            }
            if (!ok || (seen & bit)) return 0;
            seen |= bit;
            int n = next(c);
            if (n == 2) break;
            if (n == 0) return 0;
        }
        if (lit(c, ']')) return 1;
        if (!lit(c, ',')) return 0;
    }
}

static int record(Cur *c, Rec *r) {
    unsigned seen = 0;
    if (!lit(c, '{')) return 0;
    if (lit(c, '}')) return 1;
    for (;;) {
        Span k;
        if (!str(c, &k) || !lit(c, ':')) return 0;
        unsigned bit;
        int ok;
        if (IS(k, "requestId")) {
            bit = 1;
            ok = str(c, &r->s[S_REQUEST]);
        } else if (IS(k, "metrics")) {
            bit = 2;
            ok = metrics(c, r);
        } else if (IS(k, "status")) {
            bit = 4;
            ok = str(c, &r->s[S_STATUS]);
        } else if (IS(k, "errorType")) {
            bit = 8;
            ok = str(c, &r->s[S_ERROR]);
        } else if (IS(k, "tracing")) {
            bit = 16;
            ok = tracing(c, r);
        } else if (IS(k, "spans")) {
            bit = 32;
            ok = spans(c);
        } else {
            return 0;
        }
        if (!ok || (seen & bit)) return 0;
        seen |= bit;
        int n = next(c);
        if (n == 2) return 1;
        if (n == 0) return 0;
    }
}

/* One line: 1 when it is read (into r), 0 when it is left for the next path. */
static int parse_line(const char *p, Py_ssize_t n, Rec *r) {
    Cur c = {p, p + n};
    unsigned seen = 0;
    memset(r, 0, sizeof(*r));
    if (!lit(&c, '{')) return 0;
    for (;;) {
        Span k, v;
        if (!str(&c, &k) || !lit(&c, ':')) return 0;
        unsigned bit;
        int ok;
        if (IS(k, "time")) {
            bit = 1;
            ok = str(&c, &r->s[S_TIME]);
        } else if (IS(k, "type")) {
            bit = 2;
            ok = str(&c, &v) && IS(v, "platform.report");
        } else if (IS(k, "record")) {
            bit = 4;
            ok = record(&c, r);
        } else {
            return 0;
        }
        if (!ok || (seen & bit)) return 0;
        seen |= bit;
        int nx = next(&c);
        if (nx == 2) break;
        if (nx == 0) return 0;
    }
    ws(&c);
    return c.p == c.end && (seen & 6) == 6 && r->s[S_REQUEST].p != NULL && (r->fmask & (1u << F_DURATION));
}

/* ---------------------------------------------------------------------------------------- */
/* The columns: growable buffers, then bytes objects.                                         */
/* ---------------------------------------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
} Buf;

static int grow(Buf *b, size_t n) {
    size_t cap = b->cap ? b->cap : 1 << 16;
    while (cap < b->len + n) cap *= 2;
    char *q = PyMem_RawRealloc(b->p, cap);
    if (!q) return -1;
    b->p = q;
    b->cap = cap;
    return 0;
}

static inline int put(Buf *b, const void *src, size_t n) {
    if (b->len + n > b->cap && grow(b, n)) return -1;
    if (n) memcpy(b->p + b->len, src, n);
    b->len += n;
    return 0;
}

/* Columns of at most ``lines`` rows: bytes objects made to that size while the GIL is held (and
 * cut to the rows read at the end: no second copy). The lines are read in parts, one thread each;
 * a part writes its rows from its first line's position on, and its strings into its own buffers.
 * The parts' rows are then moved together and their strings joined. */
#define MAX_PARTS 8

typedef struct {
    Py_ssize_t lo, hi, rows;   /* its lines, and how many it read */
    Buf sdata[NSTR];
    int failed;
} Part;

typedef struct {
    PyObject *ok;            /* one byte per line */
    PyObject *soff[NSTR], *svalid[NSTR], *f[NFLT], *fvalid[NFLT], *i[NINT], *ivalid[NINT];
    char *okp, *svalidp[NSTR], *fvalidp[NFLT], *ivalidp[NINT];
    int64_t *soffp[NSTR], *ip[NINT];
    double *fp[NFLT];
    Py_ssize_t lines, rows;
    const char **ptr;        /* each line's bytes; len < 0: left */
    const Py_ssize_t *len;
    Part part[MAX_PARTS];
    int parts;
} Out;

static void out_free(Out *o) {
    Py_CLEAR(o->ok);
    for (int k = 0; k < MAX_PARTS; k++)
        for (int j = 0; j < NSTR; j++) {
            PyMem_RawFree(o->part[k].sdata[j].p);
            o->part[k].sdata[j].p = NULL;
        }
    for (int j = 0; j < NSTR; j++) {
        Py_CLEAR(o->soff[j]);
        Py_CLEAR(o->svalid[j]);
    }
    for (int j = 0; j < NFLT; j++) {
        Py_CLEAR(o->f[j]);
        Py_CLEAR(o->fvalid[j]);
    }
    for (int j = 0; j < NINT; j++) {
        Py_CLEAR(o->i[j]);
        Py_CLEAR(o->ivalid[j]);
    }
}

static char *alloc(PyObject **obj, Py_ssize_t size) {
    *obj = PyBytes_FromStringAndSize(NULL, size);
    return *obj ? PyBytes_AS_STRING(*obj) : NULL;
}

static int out_init(Out *o, Py_ssize_t lines, int threads) {
    memset(o, 0, sizeof(*o));
    Py_ssize_t n = lines, w = (Py_ssize_t)sizeof(int64_t);
    o->lines = lines;
    int bad = !(o->okp = alloc(&o->ok, n));
    for (int j = 0; j < NSTR; j++) bad |= !(o->soffp[j] = (int64_t *)alloc(&o->soff[j], (n + 1) * w)) || !(o->svalidp[j] = alloc(&o->svalid[j], n));
    for (int j = 0; j < NFLT; j++) bad |= !(o->fp[j] = (double *)alloc(&o->f[j], n * w)) || !(o->fvalidp[j] = alloc(&o->fvalid[j], n));
    for (int j = 0; j < NINT; j++) bad |= !(o->ip[j] = (int64_t *)alloc(&o->i[j], n * w)) || !(o->ivalidp[j] = alloc(&o->ivalid[j], n));
    if (bad) {
        out_free(o);
        if (!PyErr_Occurred()) PyErr_NoMemory();
        return -1;
    }
    o->parts = threads < 1 ? 1 : (threads > MAX_PARTS ? MAX_PARTS : threads);
    for (int k = 0; k < o->parts; k++) {
        o->part[k].lo = n * k / o->parts;
        o->part[k].hi = n * (k + 1) / o->parts;
    }
    return 0;
}

static inline void emit(Out *o, Part *part, const Rec *r) {
    Py_ssize_t at = part->lo + part->rows++;
    for (int j = 0; j < NSTR; j++) {
        char valid = r->s[j].p != NULL;
        if (valid) part->failed |= put(&part->sdata[j], r->s[j].p, (size_t)r->s[j].n);
        o->soffp[j][at + 1] = (int64_t)part->sdata[j].len;   /* within the part: shifted when joined */
        o->svalidp[j][at] = valid;
    }
    for (int j = 0; j < NFLT; j++) {
        char valid = (r->fmask >> j) & 1;
        o->fp[j][at] = valid ? r->f[j] : 0.0;
        o->fvalidp[j][at] = valid;
    }
    for (int j = 0; j < NINT; j++) {
        char valid = (r->imask >> j) & 1;
        o->ip[j][at] = valid ? r->i[j] : 0;
        o->ivalidp[j][at] = valid;
    }
}

static void read_part(Out *o, Part *part) {
    for (Py_ssize_t line = part->lo; line < part->hi; line++) {
        Rec r;
        char ok = o->len[line] >= 0 && parse_line(o->ptr[line], o->len[line], &r);
        if (ok) emit(o, part, &r);
        o->okp[line] = ok;
    }
}

static void *part_thread(void *arg) {
    void **pair = arg;
    read_part(pair[0], pair[1]);
    return NULL;
}

/* Every part, the first on this thread and the others on their own (one after another if a thread
 * cannot start); then their rows moved together. Called without the GIL. */
static void read_all(Out *o) {
    pthread_t thread[MAX_PARTS];
    void *pairs[MAX_PARTS][2];
    int started[MAX_PARTS] = {0};
    for (int k = 1; k < o->parts; k++) {
        pairs[k][0] = o, pairs[k][1] = &o->part[k];
        started[k] = pthread_create(&thread[k], NULL, part_thread, pairs[k]) == 0;
    }
    read_part(o, &o->part[0]);
    for (int k = 1; k < o->parts; k++) {
        if (started[k]) pthread_join(thread[k], NULL);
        else read_part(o, &o->part[k]);
    }
    Py_ssize_t rows = 0;
    for (int k = 0; k < o->parts; k++) {
        Part *part = &o->part[k];
        if (part->lo != rows && part->rows) {   /* an earlier part left lines: its rows move down */
            size_t m = (size_t)part->rows;
            for (int j = 0; j < NSTR; j++) {
                memmove(o->soffp[j] + rows + 1, o->soffp[j] + part->lo + 1, m * sizeof(int64_t));
                memmove(o->svalidp[j] + rows, o->svalidp[j] + part->lo, m);
            }
            for (int j = 0; j < NFLT; j++) {
                memmove(o->fp[j] + rows, o->fp[j] + part->lo, m * sizeof(double));
                memmove(o->fvalidp[j] + rows, o->fvalidp[j] + part->lo, m);
            }
            for (int j = 0; j < NINT; j++) {
                memmove(o->ip[j] + rows, o->ip[j] + part->lo, m * sizeof(int64_t));
                memmove(o->ivalidp[j] + rows, o->ivalidp[j] + part->lo, m);
            }
        }
        rows += part->rows;
    }
    o->rows = rows;
    for (int j = 0; j < NSTR; j++) {   /* each part's string offsets after the bytes of the parts before */
        o->soffp[j][0] = 0;
        int64_t base = 0;
        Py_ssize_t row = 0;
        for (int k = 0; k < o->parts; k++) {
            if (base)
                for (Py_ssize_t at = row + 1; at <= row + o->part[k].rows; at++) o->soffp[j][at] += base;
            base += (int64_t)o->part[k].sdata[j].len;
            row += o->part[k].rows;
        }
    }
}

/* The bytes object cut to ``size`` (it is ours alone until handed out), its reference handed over. */
static PyObject *cut(PyObject **obj, Py_ssize_t size) {
    PyObject *out = *obj;
    *obj = NULL;
    if (PyBytes_GET_SIZE(out) != size && _PyBytes_Resize(&out, size)) return NULL;
    return out;
}

/* The parts' bytes of one string column, joined (each part's buffer freed once copied). */
static PyObject *joined(Out *o, int j) {
    size_t size = 0;
    for (int k = 0; k < o->parts; k++) size += o->part[k].sdata[j].len;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    if (!out) return NULL;
    char *at = PyBytes_AS_STRING(out);
    for (int k = 0; k < o->parts; k++) {
        Buf *b = &o->part[k].sdata[j];
        if (b->len) memcpy(at, b->p, b->len);
        at += b->len;
        PyMem_RawFree(b->p);
        b->p = NULL;
    }
    return out;
}

/* {"ok": bytes (a byte per line), "rows": int, column: (kind, buffers...)} */
static PyObject *result(Out *o) {
    for (int k = 0; k < o->parts; k++)
        if (o->part[k].failed) {
            out_free(o);
            return PyErr_NoMemory();
        }
    Py_ssize_t m = o->rows, w = (Py_ssize_t)sizeof(int64_t);
    PyObject *d = PyDict_New(), *v = NULL;
    if (!d) goto fail;
    if (!(v = cut(&o->ok, o->lines)) || PyDict_SetItemString(d, "ok", v)) goto fail;
    Py_CLEAR(v);
    if (!(v = PyLong_FromSsize_t(m)) || PyDict_SetItemString(d, "rows", v)) goto fail;
    Py_CLEAR(v);
    for (int j = 0; j < NSTR; j++) {
        v = Py_BuildValue("(sNNN)", "string", cut(&o->soff[j], (m + 1) * w), joined(o, j), cut(&o->svalid[j], m));
        if (!v || PyDict_SetItemString(d, STR_NAMES[j], v)) goto fail;
        Py_CLEAR(v);
    }
    for (int j = 0; j < NFLT; j++) {
        v = Py_BuildValue("(sNN)", "float64", cut(&o->f[j], m * w), cut(&o->fvalid[j], m));
        if (!v || PyDict_SetItemString(d, FLT_NAMES[j], v)) goto fail;
        Py_CLEAR(v);
    }
    for (int j = 0; j < NINT; j++) {
        v = Py_BuildValue("(sNN)", "int64", cut(&o->i[j], m * w), cut(&o->ivalid[j], m));
        if (!v || PyDict_SetItemString(d, INT_NAMES[j], v)) goto fail;
        Py_CLEAR(v);
    }
    out_free(o);
    return d;
fail:
    Py_XDECREF(v);
    Py_XDECREF(d);
    out_free(o);
    return NULL;
}

/* ---------------------------------------------------------------------------------------- */
/* Entry points.                                                                              */
/* ---------------------------------------------------------------------------------------- */

/* The lines (each line's bytes and length, -1: left), read on ``threads`` threads. */
static PyObject *read_lines(const char **ptr, const Py_ssize_t *len, Py_ssize_t n, int threads) {
    Out o;
    if (out_init(&o, n, threads)) return NULL;
    o.ptr = ptr, o.len = len;
    Py_BEGIN_ALLOW_THREADS
    read_all(&o);
    Py_END_ALLOW_THREADS
    return result(&o);
}

/* read_strings(lines: list[str], threads: int) -> dict | None (None when an item is not a str, or
 * has no UTF-8 form) */
static PyObject *read_strings(PyObject *self, PyObject *args) {
    PyObject *lines;
    int threads;
    if (!PyArg_ParseTuple(args, "Oi", &lines, &threads)) return NULL;
    PyObject *items = PySequence_Tuple(lines);   /* holds every line while the GIL is released */
    if (!items) return NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(items);
    const char **ptr = PyMem_RawMalloc(sizeof(char *) * (size_t)(n ? n : 1));
    Py_ssize_t *len = PyMem_RawMalloc(sizeof(Py_ssize_t) * (size_t)(n ? n : 1));
    PyObject *out = NULL;
    if (!ptr || !len) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s = PyTuple_GET_ITEM(items, i);
        if (!PyUnicode_Check(s) || !(ptr[i] = PyUnicode_AsUTF8AndSize(s, &len[i]))) {
            PyErr_Clear();   /* not a str, or a lone surrogate: the other paths decide what it is */
            out = Py_NewRef(Py_None);
            goto done;
        }
    }
    out = read_lines(ptr, len, n, threads);
done:
    PyMem_RawFree(ptr), PyMem_RawFree(len);
    Py_DECREF(items);
    return out;
}

/* read_buffers(offsets: int64 buffer (n + 1), data: buffer, body: int64 buffer (n) or None, threads: int) -> dict
 * Line i is data[offsets[i] + body[i] : offsets[i + 1]]; a line whose prefix (before body[i]) holds a
 * quote is left. */
static PyObject *read_buffers(PyObject *self, PyObject *args) {
    Py_buffer off, data, body = {0};
    PyObject *body_obj, *out = NULL;
    int threads;
    if (!PyArg_ParseTuple(args, "y*y*Oi", &off, &data, &body_obj, &threads)) return NULL;
    if (body_obj != Py_None && PyObject_GetBuffer(body_obj, &body, PyBUF_SIMPLE)) {
        PyBuffer_Release(&off), PyBuffer_Release(&data);
        return NULL;
    }
    Py_ssize_t n = off.len / 8 - 1;
    const int64_t *o64 = off.buf, *b64 = body.buf;
    const char *base = data.buf;
    const char **ptr = NULL;
    Py_ssize_t *len = NULL;
    if (n < 0 || (b64 && body.len / 8 < n) || o64[n] > data.len || o64[0] < 0) {
        PyErr_SetString(PyExc_ValueError, "offsets, data and body disagree");
        goto done;
    }
    ptr = PyMem_RawMalloc(sizeof(char *) * (size_t)(n ? n : 1));
    len = PyMem_RawMalloc(sizeof(Py_ssize_t) * (size_t)(n ? n : 1));
    if (!ptr || !len) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t lo = o64[i], hi = o64[i + 1], skip = b64 ? b64[i] : 0;
        int left = hi < lo || skip < 0 || skip > hi - lo || (skip && memchr(base + lo, '"', (size_t)skip));
        ptr[i] = base + lo + (left ? 0 : skip);
        len[i] = left ? -1 : (Py_ssize_t)(hi - lo - skip);
    }
    out = read_lines(ptr, len, n, threads);
done:
    PyMem_RawFree(ptr), PyMem_RawFree(len);
    PyBuffer_Release(&off), PyBuffer_Release(&data);
    if (b64) PyBuffer_Release(&body);
    return out;
}

static PyMethodDef METHODS[] = {
    {"read_strings", read_strings, METH_VARARGS, "platform.report records from a list of str (see jsoncompiled.py)"},
    {"read_buffers", read_buffers, METH_VARARGS, "platform.report records from Arrow's buffers (see jsoncompiled.py)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef MODULE = {PyModuleDef_HEAD_INIT, "_reportjson", NULL, -1, METHODS, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__reportjson(void) { return PyModule_Create(&MODULE); }
