/* gbfs_status: GBFS station_status documents straight to Arrow column buffers (transforms/gbfs/parse.py).
 *
 * gbfs_status(docs, names, threads=1) reads a batch of station_status JSON documents (bytes) as
 * SnapshotReader._add_status_typed reads them (msgspec into typed objects, then the column steps), with
 * the GIL released while parsing, and returns the rows of every document it read as Arrow buffers plus
 * what the reader keeps of each document. CPython C API only (and POSIX threads for threads=2).
 *
 * Every input is hostile. A document is read here only when it is plainly well formed and every value
 * is of a type the typed path takes: anything else (JSON that is not strict RFC 8259 UTF-8, a \u escape
 * anywhere, any escape in a key or in a kept string, a number with a fraction or exponent where a whole
 * number is read, more than 18 digits, a key given twice, a key under data other than stations,
 * nesting deeper than MAXDEPTH, no station, a station without a text station_id or without a whole
 * number >= 0 of bikes, a time that is not a plain integer or the canonical RFC 3339 form
 * YYYY-MM-DDTHH:MM:SS(Z|+HH:MM|-HH:MM)) makes the document "not here" (None in the results): the
 * Python path then reads it exactly as before, with its notices and quarantine.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "utf8.h"
#ifdef __unix__
#include <pthread.h>
#define GS_THREADS 1
#endif

typedef const uint8_t *Q;

#define MAXDEPTH 32
#define MAXDIG 18
#define MAXNUM 64
#define MIN_EPOCH (-62135596800LL)
#define MAX_EPOCH 253402300799LL

/* A growable buffer allocated without the GIL. */
typedef struct {
    char *d;
    size_t n, cap;
} GV;

static int gv_grow(GV *v, size_t add) {
    if (v->n + add <= v->cap) return 0;
    size_t cap = v->cap ? v->cap * 2 : 4096;
    while (cap < v->n + add) cap *= 2;
    char *d = PyMem_RawRealloc(v->d, cap);
    if (!d) return -1;
    v->d = d;
    v->cap = cap;
    return 0;
}

static void gv_free(GV *v) {
    PyMem_RawFree(v->d);
    v->d = NULL;
    v->n = v->cap = 0;
}

typedef struct {
    Q s;
    int32_t n;
} Span;

typedef struct {
    int64_t nb, nd, bd, dd, lr;
    Q sid;
    int32_t sidlen;
    int8_t ndv, bdv, ddv, lrv, fl[3]; /* fl: 1 true, 0 false, -1 null */
} Row;

typedef struct {
    int ok, has_ttl, has_ver, thread;
    int64_t ts, ttl;
    Span ver;
    size_t row0, nrows, tid0, ntid;
} FileRes;

typedef struct {
    GV rows; /* Row */
    GV tids; /* Span */
    int oom;
} Out;

/* ------------------------------------------------------------------ scanning (0: read; -1: not here) */

static inline Q ws(Q p, Q e) {
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

/* A string at *pp ('"'): its raw bytes in *out; *esc set when it holds an escape. Strict UTF-8, no control characters,
 * no \u escapes. */
/* 1 for the bytes a string's scan must look at: '"', '\\', control characters and every byte of a multi-byte character. */
static uint8_t special[256];

static void init_special(void) {
    for (int c = 0; c < 256; c++) special[c] = c < 0x20 || c == '"' || c == '\\' || c >= 0x80;
}

static int scan_str(Q *pp, Q e, Span *out, int *esc) {
    Q p = *pp + 1, s = p;
    *esc = 0;
    for (;;) {
        while (e - p >= 4 && !special[p[0]] && !special[p[1]] && !special[p[2]] && !special[p[3]]) p += 4;
        while (p < e && !special[*p]) p++;
        if (p >= e) return -1;
        uint8_t c = *p;
        if (c == '"') break;
        if (c == '\\') {
            *esc = 1;
            if (p + 1 >= e) return -1;
            c = p[1];
            if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') {
                p += 2;
                continue;
            }
            return -1;
        }
        if (c < 0x20) return -1;
        if (c < 0x80) {
            p++;
            continue;
        }
        int n = utf8_seq(p, e);
        if (!n) return -1;
        p += n;
    }
    if (p - s > INT32_MAX) return -1;
    out->s = s;
    out->n = (int32_t)(p - s);
    *pp = p + 1;
    return 0;
}

/* A kept string: no escape at all. */
static inline int plain_str(Q *pp, Q e, Span *out) {
    int esc;
    if (*pp >= e || **pp != '"' || scan_str(pp, e, out, &esc) < 0 || esc) return -1;
    return 0;
}

/* A JSON number at *pp; *whole set (and *v) when it is an integer of at most MAXDIG digits, 0 for any other number. */
static int scan_num(Q *pp, Q e, int64_t *v, int *whole) {
    Q p = *pp, s = p;
    int neg = 0;
    if (p < e && *p == '-') {
        neg = 1;
        p++;
    }
    if (p >= e || *p < '0' || *p > '9') return -1;
    Q d0 = p;
    if (*p == '0') {
        p++;
    } else {
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    Py_ssize_t nd = p - d0;
    int frac = 0;
    if (p < e && *p == '.') {
        frac = 1;
        p++;
        if (p >= e || *p < '0' || *p > '9') return -1;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        frac = 1;
        p++;
        if (p < e && (*p == '+' || *p == '-')) p++;
        if (p >= e || *p < '0' || *p > '9') return -1;
        while (p < e && *p >= '0' && *p <= '9') p++;
    }
    if (p - s > MAXNUM) return -1;
    *pp = p;
    *whole = 0;
    if (frac || nd > MAXDIG) return 0;
    int64_t x = 0;
    for (Q q = d0; q < d0 + nd; q++) x = x * 10 + (*q - '0');
    *v = neg ? -x : x;
    *whole = 1;
    return 0;
}

static inline int lit(Q *pp, Q e, const char *w, int n) {
    if (e - *pp < n || memcmp(*pp, w, n)) return -1;
    *pp += n;
    return 0;
}

/* Skip any JSON value (depth: its nesting level). */
static int skip_value(Q *pp, Q e, int depth) {
    Q p = *pp;
    if (p >= e || depth > MAXDEPTH) return -1;
    Span sp;
    int esc, whole;
    int64_t v;
    switch (*p) {
    case '"':
        if (scan_str(&p, e, &sp, &esc) < 0) return -1;
        break;
    case 't':
        if (lit(&p, e, "true", 4) < 0) return -1;
        break;
    case 'f':
        if (lit(&p, e, "false", 5) < 0) return -1;
        break;
    case 'n':
        if (lit(&p, e, "null", 4) < 0) return -1;
        break;
    case '{':
        p = ws(p + 1, e);
        if (p < e && *p == '}') {
            p++;
            break;
        }
        for (;;) {
            if (p >= e || *p != '"' || scan_str(&p, e, &sp, &esc) < 0) return -1;
            p = ws(p, e);
            if (p >= e || *p != ':') return -1;
            p = ws(p + 1, e);
            if (skip_value(&p, e, depth + 1) < 0) return -1;
            p = ws(p, e);
            if (p < e && *p == ',') {
                p = ws(p + 1, e);
                continue;
            }
            if (p < e && *p == '}') {
                p++;
                break;
            }
            return -1;
        }
        break;
    case '[':
        p = ws(p + 1, e);
        if (p < e && *p == ']') {
            p++;
            break;
        }
        for (;;) {
            if (skip_value(&p, e, depth + 1) < 0) return -1;
            p = ws(p, e);
            if (p < e && *p == ',') {
                p = ws(p + 1, e);
                continue;
            }
            if (p < e && *p == ']') {
                p++;
                break;
            }
            return -1;
        }
        break;
    default:
        if (*p == '-' || (*p >= '0' && *p <= '9')) {
            if (scan_num(&p, e, &v, &whole) < 0) return -1;
            break;
        }
        return -1;
    }
    *pp = p;
    return 0;
}

/* A key at *pp: its raw bytes (no escape), then the ':' and the space after it. */
static int key(Q *pp, Q e, Span *k) {
    Q p = *pp;
    if (plain_str(&p, e, k) < 0) return -1;
    p = ws(p, e);
    if (p >= e || *p != ':') return -1;
    *pp = ws(p + 1, e);
    return 0;
}

/* After a member: ',' (1: another member follows) or the closing bracket (0), else -1. */
static inline int next(Q *pp, Q e, uint8_t close) {
    Q p = ws(*pp, e);
    if (p < e && *p == ',') {
        *pp = ws(p + 1, e);
        return 1;
    }
    if (p < e && *p == close) {
        *pp = p + 1;
        return 0;
    }
    return -1;
}

static inline int is_key(Span k, const char *w, int n) { return k.n == n && !memcmp(k.s, w, n); }
#define IS(k, w) is_key(k, w, (int)sizeof(w) - 1)

/* Union[int, None]: *has 0 for null. A whole number only. */
static int int_or_null(Q *pp, Q e, int64_t *v, int *has) {
    if (*pp < e && **pp == 'n') {
        *has = 0;
        return lit(pp, e, "null", 4);
    }
    int whole;
    if (*pp >= e || !(**pp == '-' || (**pp >= '0' && **pp <= '9')) || scan_num(pp, e, v, &whole) < 0 || !whole) return -1;
    *has = 1;
    return 0;
}

static int64_t days_from_civil(int64_t y, int64_t m, int64_t d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(Q s, int n, int *v) {
    int x = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return 0;
}

/* discover.epoch_of for the canonical RFC 3339 form YYYY-MM-DDTHH:MM:SS followed by Z or +HH:MM / -HH:MM; -1 for any
 * other text (the Python path then decides). */
static int rfc3339(Span t, int64_t *out) {
    Q s = t.s;
    int y, mo, d, h, mi, se, oh = 0, om = 0, sign = 0;
    if (t.n != 20 && t.n != 25) return -1;
    if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' || digits(s + 8, 2, &d) || s[10] != 'T' ||
        digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &se))
        return -1;
    if (t.n == 20) {
        if (s[19] != 'Z') return -1;
    } else {
        if (s[19] == '+')
            sign = 1;
        else if (s[19] == '-')
            sign = -1;
        else
            return -1;
        if (digits(s + 20, 2, &oh) || s[22] != ':' || digits(s + 23, 2, &om) || oh > 23 || om > 59) return -1;
    }
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > dim[mo - 1] + (mo == 2 && leap) || h > 23 || mi > 59 || se > 59) return -1;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - (int64_t)sign * (oh * 3600 + om * 60);
    return 0;
}

/* Union[int, str, None] read as a time: 1 with *v, 0 for none (null, or a number that is no date), -1: not here. */
static int time_value(Q *pp, Q e, int64_t *v) {
    if (*pp < e && **pp == '"') {
        Span t;
        if (plain_str(pp, e, &t) < 0 || rfc3339(t, v) < 0) return -1;
        return 1;
    }
    int has;
    if (int_or_null(pp, e, v, &has) < 0) return -1;
    return has && *v >= MIN_EPOCH && *v <= MAX_EPOCH;
}

/* Union[bool, int, None] as _bool: 1, 0, or -1 (null, or a number other than 0 and 1). */
static int flag(Q *pp, Q e, int8_t *f) {
    if (*pp < e && **pp == 't') {
        *f = 1;
        return lit(pp, e, "true", 4);
    }
    if (*pp < e && **pp == 'f') {
        *f = 0;
        return lit(pp, e, "false", 5);
    }
    int64_t v;
    int has;
    if (int_or_null(pp, e, &v, &has) < 0) return -1;
    *f = has && (v == 0 || v == 1) ? (int8_t)v : -1;
    return 0;
}

/* vehicle_types_available: null or a list of objects whose vehicle_type_id is text or null. */
static int types_available(Q *pp, Q e, Out *o) {
    Q p = *pp;
    if (p < e && *p == 'n') {
        if (lit(&p, e, "null", 4) < 0) return -1;
        *pp = p;
        return 0;
    }
    if (p >= e || *p != '[') return -1;
    p = ws(p + 1, e);
    if (p < e && *p == ']') {
        *pp = p + 1;
        return 0;
    }
    for (;;) {
        if (p >= e || *p != '{') return -1;
        p = ws(p + 1, e);
        int seen = 0, more = 1;
        if (p < e && *p == '}') {
            p++;
            more = 0;
        }
        while (more) {
            Span k;
            if (key(&p, e, &k) < 0) return -1;
            if (IS(k, "vehicle_type_id")) {
                if (seen) return -1;
                seen = 1;
                if (p < e && *p == 'n') {
                    if (lit(&p, e, "null", 4) < 0) return -1;
                } else {
                    Span t;
                    if (plain_str(&p, e, &t) < 0) return -1;
                    if (gv_grow(&o->tids, sizeof(Span)) < 0) {
                        o->oom = 1;
                        return -1;
                    }
                    memcpy(o->tids.d + o->tids.n, &t, sizeof(Span));
                    o->tids.n += sizeof(Span);
                }
            } else if (skip_value(&p, e, 6) < 0) {
                return -1;
            }
            if ((more = next(&p, e, '}')) < 0) return -1;
        }
        int m = next(&p, e, ']');
        if (m < 0) return -1;
        if (!m) break;
    }
    *pp = p;
    return 0;
}

enum {
    K_SID, K_NBA, K_NVA, K_NDA, K_NBD, K_NVD, K_NDD, K_INST, K_RENT, K_RET, K_LR, K_VTA, NK
};

/* One station object into a row. */
static int station(Q *pp, Q e, Out *o, Row *r) {
    Q p = *pp;
    if (p >= e || *p != '{') return -1;
    p = ws(p + 1, e);
    unsigned seen = 0;
    int64_t v[NK] = {0};
    int has[NK] = {0};
    int8_t fl[3] = {-1, -1, -1};
    Span sid = {0};
    int more = 1;
    if (p < e && *p == '}') {
        p++;
        more = 0;
    }
    while (more) {
        Span k;
        int id = -1;
        if (key(&p, e, &k) < 0) return -1;
        switch (k.n) {
        case 10:
            if (IS(k, "station_id")) id = K_SID;
            else if (IS(k, "is_renting")) id = K_RENT;
            break;
        case 12:
            if (IS(k, "is_installed")) id = K_INST;
            else if (IS(k, "is_returning")) id = K_RET;
            break;
        case 13:
            if (IS(k, "last_reported")) id = K_LR;
            break;
        case 18:
            if (IS(k, "num_docks_disabled")) id = K_NDD;
            else if (IS(k, "num_bikes_disabled")) id = K_NBD;
            break;
        case 19:
            if (IS(k, "num_bikes_available")) id = K_NBA;
            else if (IS(k, "num_docks_available")) id = K_NDA;
            break;
        case 21:
            if (IS(k, "num_vehicles_disabled")) id = K_NVD;
            break;
        case 22:
            if (IS(k, "num_vehicles_available")) id = K_NVA;
            break;
        case 23:
            if (IS(k, "vehicle_types_available")) id = K_VTA;
            break;
        }
        if (id >= 0) {
            if (seen & (1u << id)) return -1; /* a key given twice */
            seen |= 1u << id;
        }
        switch (id) {
        case K_SID:
            if (plain_str(&p, e, &sid) < 0) return -1;
            has[K_SID] = 1;
            break;
        case K_NBA: case K_NVA: case K_NDA: case K_NBD: case K_NVD: case K_NDD:
            if (int_or_null(&p, e, &v[id], &has[id]) < 0) return -1;
            break;
        case K_INST: case K_RENT: case K_RET:
            if (flag(&p, e, &fl[id - K_INST]) < 0) return -1;
            break;
        case K_LR: {
            int t = time_value(&p, e, &v[K_LR]);
            if (t < 0) return -1;
            has[K_LR] = t;
            break;
        }
        case K_VTA:
            if (types_available(&p, e, o) < 0) return -1;
            break;
        default:
            if (skip_value(&p, e, 5) < 0) return -1;
        }
        if ((more = next(&p, e, '}')) < 0) return -1;
    }
    if (!has[K_SID]) return -1;
    int b = has[K_NBA] ? K_NBA : K_NVA;
    if (!has[b] || v[b] < 0) return -1; /* no bikes, or fewer than none: the Python path quarantines */
    int bd = has[K_NBD] ? K_NBD : K_NVD;
    r->sid = sid.s;
    r->sidlen = sid.n;
    r->nb = v[b];
    r->ndv = has[K_NDA] && v[K_NDA] >= 0;
    r->nd = r->ndv ? v[K_NDA] : 0;
    r->bdv = has[bd] && v[bd] >= 0;
    r->bd = r->bdv ? v[bd] : 0;
    r->ddv = has[K_NDD] && v[K_NDD] >= 0;
    r->dd = r->ddv ? v[K_NDD] : 0;
    r->lrv = (int8_t)has[K_LR];
    r->lr = has[K_LR] ? v[K_LR] : 0;
    memcpy(r->fl, fl, 3);
    *pp = p;
    return 0;
}

/* One document; its rows and type ids appended to o (undone when it is not read here). */
static void document(Q p, Q e, Out *o, FileRes *f) {
    size_t rows0 = o->rows.n, tids0 = o->tids.n;
    f->ok = 0;
    f->row0 = rows0 / sizeof(Row);
    f->tid0 = tids0 / sizeof(Span);
    int seen_data = 0, seen_lu = 0, seen_ttl = 0, seen_ver = 0, ts_ok = 0;
    p = ws(p, e);
    if (p >= e || *p != '{') goto not_here;
    p = ws(p + 1, e);
    if (p < e && *p == '}') goto not_here; /* no data */
    for (int more = 1; more;) {
        Span k;
        if (key(&p, e, &k) < 0) goto not_here;
        if (IS(k, "data")) {
            if (seen_data++) goto not_here;
            if (p >= e || *p != '{') goto not_here;
            p = ws(p + 1, e);
            Span k2;
            if (key(&p, e, &k2) < 0 || !IS(k2, "stations")) goto not_here; /* only stations, which is required */
            if (p >= e || *p != '[') goto not_here;
            p = ws(p + 1, e);
            if (p < e && *p == ']') goto not_here; /* no station */
            for (int m = 1; m;) {
                if (gv_grow(&o->rows, sizeof(Row)) < 0) {
                    o->oom = 1;
                    goto not_here;
                }
                Row *r = (Row *)(o->rows.d + o->rows.n);
                if (station(&p, e, o, r) < 0) goto not_here;
                o->rows.n += sizeof(Row);
                if ((m = next(&p, e, ']')) < 0) goto not_here;
            }
            if (next(&p, e, '}') != 0) goto not_here; /* a second key under data (stations twice, or another) */
        } else if (IS(k, "last_updated")) {
            if (seen_lu++) goto not_here;
            int t = time_value(&p, e, &f->ts);
            if (t < 0) goto not_here;
            ts_ok = t;
        } else if (IS(k, "ttl")) {
            if (seen_ttl++) goto not_here;
            int has;
            if (int_or_null(&p, e, &f->ttl, &has) < 0) goto not_here;
            f->has_ttl = has && f->ttl >= 0;
        } else if (IS(k, "version")) {
            if (seen_ver++) goto not_here;
            if (p < e && *p == 'n') {
                if (lit(&p, e, "null", 4) < 0) goto not_here;
                f->has_ver = 0;
            } else {
                if (plain_str(&p, e, &f->ver) < 0) goto not_here;
                f->has_ver = 1;
            }
        } else if (skip_value(&p, e, 2) < 0) {
            goto not_here;
        }
        if ((more = next(&p, e, '}')) < 0) goto not_here;
    }
    if (ws(p, e) != e || !seen_data || !ts_ok) goto not_here;
    f->ok = 1;
    f->nrows = (o->rows.n - rows0) / sizeof(Row);
    f->ntid = (o->tids.n - tids0) / sizeof(Span);
    return;
not_here:
    o->rows.n = rows0;
    o->tids.n = tids0;
    f->ok = 0;
}

/* ------------------------------------------------------------------ the batch */

typedef struct {
    Py_buffer *bufs;
    FileRes *res;
    Py_ssize_t a, b;
    Out out;
} Job;

static void run_job(Job *j) {
    size_t bytes = 0;
    for (Py_ssize_t i = j->a; i < j->b; i++) bytes += (size_t)j->bufs[i].len;
    if (gv_grow(&j->out.rows, bytes / 192 * sizeof(Row)) < 0) j->out.oom = 1; /* a station takes ~250 bytes of JSON */
    for (Py_ssize_t i = j->a; i < j->b && !j->out.oom; i++) {
        Q p = j->bufs[i].buf;
        document(p, p + j->bufs[i].len, &j->out, &j->res[i]);
    }
}

#ifdef GS_THREADS
static void *job_main(void *arg) {
    run_job((Job *)arg);
    return NULL;
}
#endif

/* A set of byte strings (open addressing), to keep the first file of every station id / type id. */
typedef struct {
    Span *slot;
    size_t mask, n;
} Set;

static uint64_t hash_bytes(Q s, int32_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (int32_t i = 0; i < n; i++) h = (h ^ s[i]) * 0x100000001b3ULL;
    return h;
}

/* 1 if added, 0 if there already, -1 out of memory. */
static int set_add(Set *t, Span x) {
    if ((t->n + 1) * 2 > t->mask + 1) {
        size_t cap = t->mask ? (t->mask + 1) * 2 : 256;
        Span *ns = PyMem_RawCalloc(cap, sizeof(Span));
        if (!ns) return -1;
        for (size_t i = 0; t->slot && i <= t->mask; i++) {
            if (!t->slot[i].s) continue;
            size_t h = hash_bytes(t->slot[i].s, t->slot[i].n) & (cap - 1);
            while (ns[h].s) h = (h + 1) & (cap - 1);
            ns[h] = t->slot[i];
        }
        PyMem_RawFree(t->slot);
        t->slot = ns;
        t->mask = cap - 1;
    }
    size_t h = hash_bytes(x.s, x.n) & t->mask;
    while (t->slot[h].s) {
        if (t->slot[h].n == x.n && !memcmp(t->slot[h].s, x.s, x.n)) return 0;
        h = (h + 1) & t->mask;
    }
    t->slot[h] = x;
    t->n++;
    return 1;
}

static PyObject *span_list(const Span *s, Py_ssize_t n) {
    PyObject *l = PyList_New(n);
    if (!l) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *u = PyUnicode_DecodeUTF8((const char *)s[i].s, s[i].n, NULL);
        if (!u) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, i, u);
    }
    return l;
}

static PyObject *bitmap_or_none(PyObject *b, Py_ssize_t nulls) {
    if (nulls) {
        Py_INCREF(b);
        return b;
    }
    Py_RETURN_NONE;
}

#define NOUT 18
/* gbfs_status(docs, names, threads=1) -> (results, n, columns)
 *   results: per document None (not read here) or (ts, ttl | None, version | None, rows, new station ids, new type ids);
 *     new ids: those no earlier document of the batch read here names, in order of first appearance.
 *   columns (Arrow buffers, n rows of the documents read here, in order): file offsets (int32), file data, snapshot_ts
 *     (int64), station_id offsets, data, num_bikes_available (int64); then (validity | None, values, null count) for
 *     num_docks_available, num_bikes_disabled, num_docks_disabled, is_installed, is_renting, is_returning (bit-packed),
 *     last_reported. */
PyObject *noriba_gbfs_status(PyObject *self, PyObject *args) {
    PyObject *o_docs, *o_names;
    int threads = 1;
    if (!PyArg_ParseTuple(args, "O!O!|i", &PyList_Type, &o_docs, &PyList_Type, &o_names, &threads)) return NULL;
    if (!special['"']) init_special();
    Py_ssize_t nd = PyList_GET_SIZE(o_docs);
    if (PyList_GET_SIZE(o_names) != nd) {
        PyErr_SetString(PyExc_ValueError, "docs and names differ in length");
        return NULL;
    }
    Py_buffer *bufs = PyMem_Calloc(nd ? nd : 1, sizeof(Py_buffer));
    FileRes *res = PyMem_Calloc(nd ? nd : 1, sizeof(FileRes));
    PyObject **names = PyMem_Calloc(nd ? nd : 1, sizeof(PyObject *));
    const char **nm = PyMem_Calloc(nd ? nd : 1, sizeof(char *));
    Py_ssize_t *nml = PyMem_Calloc(nd ? nd : 1, sizeof(Py_ssize_t));
    Job jobs[2];
    memset(jobs, 0, sizeof jobs);
    Set sids = {0}, tids = {0};
    GV newsid = {0}, newtid = {0}; /* Span per new id, file by file */
    size_t *nsid = NULL, *ntid = NULL; /* per file: how many new ids */
    PyObject *out[NOUT] = {0}, *results = NULL, *ret = NULL;
    Py_ssize_t held = 0, nj = 1;
    int oom = 0;
    if (!bufs || !res || !names || !nm || !nml) {
        PyErr_NoMemory();
        goto done;
    }
    for (; held < nd; held++) {
        if (PyObject_GetBuffer(PyList_GET_ITEM(o_docs, held), &bufs[held], PyBUF_SIMPLE) < 0) goto done;
    }
    for (Py_ssize_t i = 0; i < nd; i++) {
        PyObject *nmo = PyList_GET_ITEM(o_names, i);
        if (!PyUnicode_Check(nmo)) {
            PyErr_SetString(PyExc_TypeError, "names must be str");
            goto done;
        }
        Py_INCREF(nmo);
        names[i] = nmo;
        nm[i] = PyUnicode_AsUTF8AndSize(nmo, &nml[i]);
        if (!nm[i]) PyErr_Clear(); /* a name that is not UTF-8 (a lone surrogate): the Python path */
    }
#ifdef GS_THREADS
    if (threads >= 2 && nd >= 2) nj = 2;
#endif
    {
        /* split by bytes */
        Py_ssize_t total = 0, acc = 0, cut = nd;
        for (Py_ssize_t i = 0; i < nd; i++) total += bufs[i].len;
        if (nj == 2) {
            for (Py_ssize_t i = 0; i < nd; i++) {
                acc += bufs[i].len;
                if (acc * 2 >= total) {
                    cut = i + 1;
                    break;
                }
            }
        }
        jobs[0].a = 0;
        jobs[0].b = cut;
        jobs[1].a = cut;
        jobs[1].b = nd;
        for (int t = 0; t < 2; t++) {
            jobs[t].bufs = bufs;
            jobs[t].res = res;
        }
    }
    Py_ssize_t n = 0, fdata = 0, sdata = 0;
    Py_BEGIN_ALLOW_THREADS
#ifdef GS_THREADS
    pthread_t th;
    int started = nj == 2 && jobs[1].a < jobs[1].b && pthread_create(&th, NULL, job_main, &jobs[1]) == 0;
    run_job(&jobs[0]);
    if (started)
        pthread_join(th, NULL);
    else if (nj == 2)
        run_job(&jobs[1]);
#else
    run_job(&jobs[0]);
#endif
    oom = jobs[0].out.oom || jobs[1].out.oom;
    /* the text columns' sizes (32-bit offsets: a document past them is left to the Python path) */
    for (Py_ssize_t i = 0; i < nd; i++) {
        FileRes *f = &res[i];
        f->thread = i >= jobs[1].a && nj == 2;
        if (nm[i] == NULL) f->ok = 0;
        if (!f->ok) continue;
        Py_ssize_t s = 0;
        const Row *rows = (const Row *)jobs[f->thread].out.rows.d + f->row0;
        for (size_t r = 0; r < f->nrows; r++) s += rows[r].sidlen;
        Py_ssize_t fl = nml[i] * (Py_ssize_t)f->nrows;
        if (fdata + fl > INT32_MAX || sdata + s > INT32_MAX) {
            f->ok = 0;
            continue;
        }
        fdata += fl;
        sdata += s;
        n += f->nrows;
    }
    /* the new ids of each document, in order */
    nsid = PyMem_RawCalloc(nd ? nd : 1, sizeof(size_t));
    ntid = PyMem_RawCalloc(nd ? nd : 1, sizeof(size_t));
    if (!nsid || !ntid) oom = 1;
    const Row *prev = NULL; /* the last document read here: its ids are in the set */
    size_t nprev = 0;
    for (Py_ssize_t i = 0; i < nd && !oom; i++) {
        FileRes *f = &res[i];
        if (!f->ok) continue;
        Out *o = &jobs[f->thread].out;
        const Row *rows = (const Row *)o->rows.d + f->row0;
        for (size_t r = 0; r < f->nrows && !oom; r++) {
            Span s = {rows[r].sid, rows[r].sidlen};
            if (r < nprev && prev[r].sidlen == s.n && !memcmp(prev[r].sid, s.s, s.n)) continue; /* as in the last one */
            int a = set_add(&sids, s);
            if (a < 0 || (a && gv_grow(&newsid, sizeof(Span)) < 0)) {
                oom = 1;
            } else if (a) {
                memcpy(newsid.d + newsid.n, &s, sizeof(Span));
                newsid.n += sizeof(Span);
                nsid[i]++;
            }
        }
        const Span *ts = (const Span *)o->tids.d + f->tid0;
        for (size_t r = 0; r < f->ntid && !oom; r++) {
            int a = set_add(&tids, ts[r]);
            if (a < 0 || (a && gv_grow(&newtid, sizeof(Span)) < 0)) {
                oom = 1;
            } else if (a) {
                memcpy(newtid.d + newtid.n, &ts[r], sizeof(Span));
                newtid.n += sizeof(Span);
                ntid[i]++;
            }
        }
        prev = rows;
        nprev = f->nrows;
    }
    Py_END_ALLOW_THREADS
    if (oom) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t nbm = (n + 7) / 8;
    Py_ssize_t sizes[NOUT] = {(n + 1) * 4, fdata, n * 8, (n + 1) * 4, sdata, n * 8, nbm, n * 8, nbm, n * 8, nbm, n * 8,
                              nbm, nbm, nbm, nbm, nbm, nbm};
    /* out: 0 foff 1 fdata 2 ts 3 soff 4 sdata 5 nb 6 ndv 7 nd 8 bdv 9 bd 10 ddv 11 dd 12 instv 13 inst 14 rentv 15 rent
     * 16 retv 17 ret; last_reported below */
    PyObject *lrv = NULL, *lr = NULL;
    for (int c = 0; c < NOUT; c++) {
        if (!(out[c] = PyBytes_FromStringAndSize(NULL, sizes[c]))) goto done;
    }
    if (!(lrv = PyBytes_FromStringAndSize(NULL, nbm)) || !(lr = PyBytes_FromStringAndSize(NULL, n * 8))) {
        Py_XDECREF(lrv);
        Py_XDECREF(lr);
        goto done;
    }
    Py_ssize_t nulls[5] = {0}; /* nd bd dd lr; flags below */
    Py_ssize_t fnulls[3] = {0};
    {
        char *B[NOUT];
        for (int c = 0; c < NOUT; c++) B[c] = PyBytes_AS_STRING(out[c]);
        char *LRV = PyBytes_AS_STRING(lrv), *LR = PyBytes_AS_STRING(lr);
        Py_BEGIN_ALLOW_THREADS
        for (int c = 6; c < NOUT; c += 2) memset(B[c], 0, nbm);
        for (int c = 13; c < NOUT; c += 2) memset(B[c], 0, nbm);
        memset(LRV, 0, nbm);
        int32_t *foff = (int32_t *)B[0], *soff = (int32_t *)B[3];
        int64_t *ts = (int64_t *)B[2], *nb = (int64_t *)B[5], *ndc = (int64_t *)B[7], *bd = (int64_t *)B[9], *dd = (int64_t *)B[11],
                *lrc = (int64_t *)LR;
        uint8_t *ndv = (uint8_t *)B[6], *bdv = (uint8_t *)B[8], *ddv = (uint8_t *)B[10], *lrvb = (uint8_t *)LRV;
        uint8_t *fv[3] = {(uint8_t *)B[12], (uint8_t *)B[14], (uint8_t *)B[16]}, *fb[3] = {(uint8_t *)B[13], (uint8_t *)B[15],
                                                                                        (uint8_t *)B[17]};
        int32_t fo = 0, so = 0;
        Py_ssize_t k = 0;
        foff[0] = soff[0] = 0;
        for (Py_ssize_t i = 0; i < nd; i++) {
            FileRes *f = &res[i];
            if (!f->ok) continue;
            const Row *rows = (const Row *)jobs[f->thread].out.rows.d + f->row0;
            for (size_t r = 0; r < f->nrows; r++, k++) {
                const Row *w = &rows[r];
                memcpy(B[1] + fo, nm[i], nml[i]);
                fo += (int32_t)nml[i];
                foff[k + 1] = fo;
                memcpy(B[4] + so, w->sid, w->sidlen);
                so += w->sidlen;
                soff[k + 1] = so;
                ts[k] = f->ts;
                nb[k] = w->nb;
                uint8_t bit = (uint8_t)(1u << (k & 7));
                ndc[k] = w->nd;
                if (w->ndv) ndv[k >> 3] |= bit; else nulls[0]++;
                bd[k] = w->bd;
                if (w->bdv) bdv[k >> 3] |= bit; else nulls[1]++;
                dd[k] = w->dd;
                if (w->ddv) ddv[k >> 3] |= bit; else nulls[2]++;
                lrc[k] = w->lr;
                if (w->lrv) lrvb[k >> 3] |= bit; else nulls[3]++;
                for (int q = 0; q < 3; q++) {
                    if (w->fl[q] < 0) {
                        fnulls[q]++;
                    } else {
                        fv[q][k >> 3] |= bit;
                        if (w->fl[q]) fb[q][k >> 3] |= bit;
                    }
                }
            }
        }
        Py_END_ALLOW_THREADS
    }
    /* per document */
    if (!(results = PyList_New(nd))) goto done_lr;
    {
        const Span *ns = (const Span *)newsid.d, *nt = (const Span *)newtid.d;
        for (Py_ssize_t i = 0; i < nd; i++) {
            FileRes *f = &res[i];
            PyObject *r;
            if (!f->ok) {
                Py_INCREF(Py_None);
                PyList_SET_ITEM(results, i, Py_None);
                continue;
            }
            PyObject *ver = f->has_ver ? PyUnicode_DecodeUTF8((const char *)f->ver.s, f->ver.n, NULL) : (Py_INCREF(Py_None), Py_None);
            PyObject *ls = span_list(ns, (Py_ssize_t)nsid[i]), *lt = span_list(nt, (Py_ssize_t)ntid[i]);
            ns += nsid[i];
            nt += ntid[i];
            if (!ver || !ls || !lt) {
                Py_XDECREF(ver);
                Py_XDECREF(ls);
                Py_XDECREF(lt);
                goto done_lr;
            }
            if (f->has_ttl)
                r = Py_BuildValue("(LLNnNN)", (long long)f->ts, (long long)f->ttl, ver, (Py_ssize_t)f->nrows, ls, lt);
            else
                r = Py_BuildValue("(LONnNN)", (long long)f->ts, Py_None, ver, (Py_ssize_t)f->nrows, ls, lt);
            if (!r) goto done_lr;
            PyList_SET_ITEM(results, i, r);
        }
    }
    {
        PyObject *cols = Py_BuildValue(
            "(OOOOOO(NOn)(NOn)(NOn)(NOn)(NOn)(NOn)(NOn))", out[0], out[1], out[2], out[3], out[4], out[5],
            bitmap_or_none(out[6], nulls[0]), out[7], nulls[0], bitmap_or_none(out[8], nulls[1]), out[9], nulls[1],
            bitmap_or_none(out[10], nulls[2]), out[11], nulls[2], bitmap_or_none(out[12], fnulls[0]), out[13], fnulls[0],
            bitmap_or_none(out[14], fnulls[1]), out[15], fnulls[1], bitmap_or_none(out[16], fnulls[2]), out[17], fnulls[2],
            bitmap_or_none(lrv, nulls[3]), lr, nulls[3]);
        if (cols) ret = Py_BuildValue("(NnN)", results, n, cols);
        else Py_DECREF(results);
        results = NULL;
    }
done_lr:
    Py_XDECREF(results);
    Py_DECREF(lrv);
    Py_DECREF(lr);
done:
    for (int c = 0; c < NOUT; c++) Py_XDECREF(out[c]);
    for (Py_ssize_t i = 0; i < held; i++) PyBuffer_Release(&bufs[i]);
    for (Py_ssize_t i = 0; names && i < nd; i++) Py_XDECREF(names[i]);
    for (int t = 0; t < 2; t++) {
        gv_free(&jobs[t].out.rows);
        gv_free(&jobs[t].out.tids);
    }
    PyMem_RawFree(sids.slot);
    PyMem_RawFree(tids.slot);
    gv_free(&newsid);
    gv_free(&newtid);
    PyMem_RawFree(nsid);
    PyMem_RawFree(ntid);
    PyMem_Free(bufs);
    PyMem_Free(res);
    PyMem_Free(names);
    PyMem_Free(nm);
    PyMem_Free(nml);
    return ret;
}
