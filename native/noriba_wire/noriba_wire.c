/* noriba_wire: the hot path of transforms/gtfs_rt (parse.py's HourParser, wire.py) in C.
 *
 * GTFS-Realtime FeedMessages are read straight from their bytes: split into entities, the changed
 * TripUpdates decoded (their own fields as Python values, their StopTimeUpdates found and hashed),
 * and StopTimeUpdates decoded into Arrow-ready column buffers. Also the per-entity bookkeeping of
 * HourParser that ran in Python: the unchanged entities of a snapshot found (by position and a hash of
 * their bytes, compared byte for byte) and counted, the changed trips' states and rows stored, and the
 * Arrow buffers of columns of Python values. CPython C API only.
 *
 * Every input is hostile: every length and varint is checked against the end of its message. On
 * anything this code does not read exactly as the pure Python path would (a malformed message, a
 * field of the wrong wire type, a group, a sub-message given twice, text that is not UTF-8, a kind
 * of entity other than a trip update), a function returns None and the caller takes the pure path,
 * which decides (and quarantines with its reason). None is never an error: it means "not here".
 * The bookkeeping functions (unchanged, unchanged_pos, store_trips) take the parser's own state and
 * raise on anything unexpected in it (ranges out of their data, an index past its list): the
 * snapshot is then undone and quarantined by HourParser.add.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "utf8.h"

typedef const uint8_t *P;

/* Read a varint at *p (< end) into *v. Return 0, or -1 if it runs past end or over 10 bytes. */
static inline int rd_varint(P *p, P end, uint64_t *v) {
    P q = *p;
    uint64_t r = 0;
    for (int k = 0; k < 10; k++) {
        if (q >= end) return -1;
        uint8_t b = *q++;
        r |= (uint64_t)(b & 0x7F) << (7 * k);
        if (b < 0x80) {
            *p = q;
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Read a field key: field number (1 .. 2^29-1) and wire type. Return 0 or -1. */
static inline int rd_key(P *p, P end, uint32_t *fn, int *wt) {
    uint64_t k;
    if (*p < end && **p < 0x80) {
        k = **p;
        (*p)++;
    } else if (rd_varint(p, end, &k) < 0) {
        return -1;
    }
    uint64_t f = k >> 3;
    if (f == 0 || f > 0x1FFFFFFF) return -1;
    *fn = (uint32_t)f;
    *wt = (int)(k & 7);
    return 0;
}

/* Read a length-delimited payload: its range [*s, *e). Return 0 or -1 if it runs past end. */
static inline int rd_len(P *p, P end, P *s, P *e) {
    uint64_t n;
    if (rd_varint(p, end, &n) < 0) return -1;
    if (n > (uint64_t)(end - *p)) return -1;
    *s = *p;
    *e = *p + n;
    *p = *e;
    return 0;
}

/* Skip a field of wire type 0, 1, 2 or 5. Return 0, or -1 (other wire types: groups; overruns). */
static inline int skip(P *p, P end, int wt) {
    uint64_t v;
    P s, e;
    switch (wt) {
    case 0:
        return rd_varint(p, end, &v);
    case 1:
        if (end - *p < 8) return -1;
        *p += 8;
        return 0;
    case 5:
        if (end - *p < 4) return -1;
        *p += 4;
        return 0;
    case 2:
        return rd_len(p, end, &s, &e);
    default:
        return -1;
    }
}

/* Strict UTF-8 (utf8.h). */
static int utf8_ok(P s, P e) {
    while (s < e) {
        if (*s < 0x80) {
            s++;
            continue;
        }
        int n = utf8_seq(s, e);
        if (!n) return 0;
        s += n;
    }
    return 1;
}

/* Buffer arguments (bytes, bytearray, numpy arrays: anything contiguous). */
typedef struct {
    Py_buffer b;
    int held;
} Buf;

static int get_buf(PyObject *o, Buf *out, Py_ssize_t item) {
    if (PyObject_GetBuffer(o, &out->b, PyBUF_SIMPLE) < 0) return -1;
    out->held = 1;
    if (item > 1 && out->b.len % item) {
        PyErr_SetString(PyExc_ValueError, "buffer length is not a multiple of its item size");
        return -1;
    }
    return 0;
}

static void rel_buf(Buf *b) {
    if (b->held) PyBuffer_Release(&b->b);
    b->held = 0;
}

/* A growable byte buffer. */
typedef struct {
    char *d;
    Py_ssize_t n, cap;
} Vec;

static int vec_put(Vec *v, const void *src, Py_ssize_t n) {
    if (v->n + n > v->cap) {
        Py_ssize_t cap = v->cap ? v->cap * 2 : 4096;
        while (cap < v->n + n) cap *= 2;
        char *d = PyMem_Realloc(v->d, cap);
        if (!d) {
            PyErr_NoMemory();
            return -1;
        }
        v->d = d;
        v->cap = cap;
    }
    memcpy(v->d + v->n, src, n);
    v->n += n;
    return 0;
}

static PyObject *vec_bytes(Vec *v) { return PyBytes_FromStringAndSize(v->d ? v->d : "", v->n); }

static void vec_free(Vec *v) {
    PyMem_Free(v->d);
    v->d = NULL;
    v->n = v->cap = 0;
}

/* ------------------------------------------------------------------------------------------------
 * split(data, with_bytes=True) -> (header bytes | None, [entity bytes] | None, starts int64 bytes, ends int64 bytes) | None
 *
 * As parse.split_message for a well-formed FeedMessage; None on anything it would refuse, and on a
 * FeedHeader given twice.
 */
static PyObject *split(PyObject *self, PyObject *args) {
    PyObject *arg;
    int with_bytes = 1;
    if (!PyArg_ParseTuple(args, "O|p", &arg, &with_bytes)) return NULL;
    Buf in = {0};
    if (get_buf(arg, &in, 1) < 0) return NULL;
    P base = in.b.buf, p = base, end = base + in.b.len;
    P hs = NULL, he = NULL;
    Vec st = {0}, en = {0};
    PyObject *ents = with_bytes ? PyList_New(0) : (Py_INCREF(Py_None), Py_None), *res = NULL;
    if (!ents) goto done;
    while (p < end) {
        uint32_t fn;
        int wt;
        if (rd_key(&p, end, &fn, &wt) < 0) goto none;
        if (fn == 1 || fn == 2) {
            P s, e;
            if (wt != 2 || rd_len(&p, end, &s, &e) < 0) goto none;
            if (fn == 1) {
                if (hs) goto none;
                hs = s;
                he = e;
            } else {
                int64_t a = s - base, b = e - base;
                if (with_bytes) {
                    PyObject *eb = PyBytes_FromStringAndSize((const char *)s, e - s);
                    if (!eb || PyList_Append(ents, eb) < 0) {
                        Py_XDECREF(eb);
                        goto done;
                    }
                    Py_DECREF(eb);
                }
                if (vec_put(&st, &a, 8) < 0 || vec_put(&en, &b, 8) < 0) goto done;
            }
        } else if (skip(&p, end, wt) < 0) {
            goto none;
        }
    }
    {
        PyObject *h = hs ? PyBytes_FromStringAndSize((const char *)hs, he - hs) : (Py_INCREF(Py_None), Py_None);
        PyObject *a = vec_bytes(&st), *b = vec_bytes(&en);
        if (h && a && b) res = PyTuple_Pack(4, h, ents, a, b);
        Py_XDECREF(h);
        Py_XDECREF(a);
        Py_XDECREF(b);
    }
    goto done;
none:
    res = Py_None;
    Py_INCREF(res);
done:
    Py_XDECREF(ents);
    vec_free(&st);
    vec_free(&en);
    rel_buf(&in);
    return res;
}

/* ------------------------------------------------------------------------------------------------
 * The two 64-bit hashes of wire.hash_ranges, for strings of up to HASH_WIDTH bytes hashed together
 * in ``width`` bytes (the batch's longest, rounded up to 8).
 */
#define HASH_WIDTH 256
static const uint64_t M1 = 0x9E3779B97F4A7C15ULL, M2 = 0xC2B2AE3D27D4EB4FULL;

static void hash2(P s, Py_ssize_t len, Py_ssize_t width, const uint64_t *seeds, uint64_t *o1, uint64_t *o2) {
    uint64_t a = (uint64_t)len * M1 ^ seeds[0], b = (uint64_t)len * M2 ^ seeds[1];
    for (Py_ssize_t k = 0; k < width; k += 8) {
        uint64_t w = 0;
        if (k + 8 <= len) {
            memcpy(&w, s + k, 8); /* numpy's view of the bytes as uint64: the machine's byte order */
        } else if (k < len) {
            uint8_t tmp[8] = {0};
            memcpy(tmp, s + k, len - k);
            memcpy(&w, tmp, 8);
        }
        a = (a ^ w) * M1 + seeds[2];
        a ^= a >> 31;
        b = (b ^ w ^ seeds[3]) * M2;
        b ^= b >> 29;
    }
    *o1 = a;
    *o2 = b;
}

/* ------------------------------------------------------------------------------------------------
 * Trip updates. A string field's value as parse._s gives it: None when empty; -1 if not UTF-8. */
static int str_val(P s, P e, PyObject **out, int empty_none) {
    if (s == e) {
        if (empty_none) {
            Py_INCREF(Py_None);
            *out = Py_None;
        } else {
            *out = PyUnicode_FromStringAndSize("", 0);
        }
        return *out ? 0 : -2;
    }
    if (!utf8_ok(s, e)) return -1;
    *out = PyUnicode_DecodeUTF8((const char *)s, e - s, "strict");
    return *out ? 0 : -2;
}

/* Check a StopTimeEvent as upb reads it: fields 1-4 are varints; others skipped. */
static int check_event(P p, P end) {
    while (p < end) {
        uint32_t fn;
        int wt;
        if (rd_key(&p, end, &fn, &wt) < 0) return -1;
        if (fn >= 1 && fn <= 4 && wt != 0) return -1;
        if (skip(&p, end, wt) < 0) return -1;
    }
    return 0;
}

/* Check a StopTimeUpdate as upb reads it. */
static int check_stu(P p, P end) {
    while (p < end) {
        uint32_t fn;
        int wt;
        if (rd_key(&p, end, &fn, &wt) < 0) return -1;
        if (fn == 1 || fn == 5 || fn == 7) {
            if (wt != 0) return -1;
        } else if (fn == 2 || fn == 3) {
            P s, e;
            if (wt != 2 || rd_len(&p, end, &s, &e) < 0 || check_event(s, e) < 0) return -1;
            continue;
        } else if (fn == 4) {
            if (wt != 2) return -1;
        } else if (fn == 6) {
            return -1; /* stop_time_properties: left to the pure path */
        }
        if (skip(&p, end, wt) < 0) return -1;
    }
    return 0;
}

typedef struct {
    P tid_s, tid_e, rid_s, rid_e, stt_s, stt_e, sd_s, sd_e, vid_s, vid_e, vl_s, vl_e;
    int has_dir, has_rel, has_ts, has_delay;
    uint32_t dir;
    int32_t delay;
    uint64_t rel, ts;
    Py_ssize_t nstu;
} TU;

/* One varint field of a known number; -1 on any other wire type. */
#define VARINT_FIELD(dst)                                 \
    do {                                                  \
        if (wt != 0 || rd_varint(&p, end, &(dst)) < 0) return -1; \
    } while (0)
#define STRING_FIELD(s_, e_)                                       \
    do {                                                           \
        if (wt != 2 || rd_len(&p, end, &(s_), &(e_)) < 0) return -1; \
    } while (0)

static int read_trip(P p, P end, TU *t, Py_ssize_t nrel, PyObject *rel_names) {
    while (p < end) {
        uint32_t fn;
        int wt;
        uint64_t v;
        if (rd_key(&p, end, &fn, &wt) < 0) return -1;
        switch (fn) {
        case 1: STRING_FIELD(t->tid_s, t->tid_e); break;
        case 2: STRING_FIELD(t->stt_s, t->stt_e); break;
        case 3: STRING_FIELD(t->sd_s, t->sd_e); break;
        case 5: STRING_FIELD(t->rid_s, t->rid_e); break;
        case 4:
            VARINT_FIELD(v);
            if (v > 0x7FFFFFFF) return -1;
            /* a closed enum: upb keeps the last known value; an unknown one goes to unknown fields */
            if ((Py_ssize_t)v < nrel && PyTuple_GET_ITEM(rel_names, (Py_ssize_t)v) != Py_None) {
                t->rel = v;
                t->has_rel = 1;
            }
            break;
        case 6:
            VARINT_FIELD(v);
            if (v > 0xFFFFFFFFULL) return -1;
            t->dir = (uint32_t)v;
            t->has_dir = 1;
            break;
        case 7: return -1; /* modified_trip: left to the pure path */
        default:
            if (skip(&p, end, wt) < 0) return -1;
        }
    }
    return 0;
}

static int read_vehicle(P p, P end, TU *t) {
    while (p < end) {
        uint32_t fn;
        int wt;
        uint64_t v;
        P s, e;
        if (rd_key(&p, end, &fn, &wt) < 0) return -1;
        switch (fn) {
        case 1: STRING_FIELD(t->vid_s, t->vid_e); break;
        case 2: STRING_FIELD(t->vl_s, t->vl_e); break;
        case 3: STRING_FIELD(s, e); break;
        case 4: VARINT_FIELD(v); break;
        default:
            if (skip(&p, end, wt) < 0) return -1;
        }
    }
    return 0;
}

typedef struct {
    Vec k, start, len, idx;  /* per stop_time_update: entity position (int64), start, length, stu index */
    P base;
} Stus;

static int read_tu(P p, P end, TU *t, Stus *su, int64_t kpos, Py_ssize_t nrel, PyObject *rel_names) {
    int seen_trip = 0, seen_veh = 0;
    while (p < end) {
        uint32_t fn;
        int wt;
        uint64_t v;
        P s, e;
        if (rd_key(&p, end, &fn, &wt) < 0) return -1;
        switch (fn) {
        case 1:
            STRING_FIELD(s, e);
            if (seen_trip++ || read_trip(s, e, t, nrel, rel_names) < 0) return -1;
            break;
        case 2: {
            STRING_FIELD(s, e);
            if (check_stu(s, e) < 0) return -1;
            int64_t a = s - su->base, n = e - s;
            if (vec_put(&su->k, &kpos, 8) < 0 || vec_put(&su->start, &a, 8) < 0 || vec_put(&su->len, &n, 8) < 0) return -2;
            t->nstu++;
            break;
        }
        case 3:
            STRING_FIELD(s, e);
            if (seen_veh++ || read_vehicle(s, e, t) < 0) return -1;
            break;
        case 4:
            VARINT_FIELD(t->ts);
            t->has_ts = 1;
            break;
        case 5:
            VARINT_FIELD(v);
            t->delay = (int32_t)(uint32_t)v;
            t->has_delay = 1;
            break;
        case 6: return -1; /* trip_properties: left to the pure path */
        default:
            if (skip(&p, end, wt) < 0) return -1;
        }
    }
    return 0;
}

static PyObject *opt_str(P s, P e, int *err) {
    PyObject *o = NULL;
    int r = str_val(s, e, &o, 1);
    if (r < 0) *err = r;
    return o;
}

/* The row of parse.HourParser._entity's trip update:
 * (trip_id, route_id, direction_id, start_time, start_date, schedule_relationship, vehicle_id, vehicle_label,
 *  timestamp, delay, stop_time_updates). Return NULL with *err -1 (not UTF-8) or -2 (a Python error). */
static PyObject *tu_row(TU *t, PyObject *rel_names, int *err) {
    PyObject *row = PyTuple_New(11);
    if (!row) {
        *err = -2;
        return NULL;
    }
    PyObject *items[11] = {0};
    items[0] = opt_str(t->tid_s, t->tid_e, err);
    items[1] = opt_str(t->rid_s, t->rid_e, err);
    items[2] = t->has_dir ? PyLong_FromUnsignedLong(t->dir) : (Py_INCREF(Py_None), Py_None);
    items[3] = opt_str(t->stt_s, t->stt_e, err);
    items[4] = opt_str(t->sd_s, t->sd_e, err);
    if (t->has_rel) {
        items[5] = PyTuple_GET_ITEM(rel_names, (Py_ssize_t)t->rel);
        Py_INCREF(items[5]);
    } else {
        items[5] = Py_None;
        Py_INCREF(Py_None);
    }
    items[6] = opt_str(t->vid_s, t->vid_e, err);
    items[7] = opt_str(t->vl_s, t->vl_e, err);
    items[8] = t->has_ts ? PyLong_FromUnsignedLongLong(t->ts) : (Py_INCREF(Py_None), Py_None);
    items[9] = t->has_delay ? PyLong_FromLong(t->delay) : (Py_INCREF(Py_None), Py_None);
    items[10] = PyLong_FromSsize_t(t->nstu);
    for (int i = 0; i < 11; i++) {
        if (!items[i] && !*err) *err = -2;
        if (items[i]) PyTuple_SET_ITEM(row, i, items[i]);
        else {
            Py_INCREF(Py_None);
            PyTuple_SET_ITEM(row, i, Py_None);
        }
    }
    if (*err) {
        Py_DECREF(row);
        return NULL;
    }
    return row;
}

/* trip_updates(data, starts, ends, which, trip_rel_names, seeds)
 *   -> ([(entity id, row | None)], stu_k, stu_start, stu_len, h1, h2 (bytes of int64/uint64), [long stu index]) | None
 *
 * ``which``: the entities to read (int64 indices into starts/ends, ranges of ``data``). An entity may have an id,
 * is_deleted, a trip update and unknown fields; anything else (a vehicle, an alert, ...) gives None. Each stop_time_update
 * found: the position in ``which`` of its entity, its range in ``data``, its two hashes (wire.hash_ranges of the whole
 * batch: 0 for those longer than HASH_WIDTH, listed last, which the caller hashes with BLAKE2b).
 */
static PyObject *trip_updates(PyObject *self, PyObject *args) {
    PyObject *o_data, *o_st, *o_en, *o_which, *rel_names;
    Py_buffer seeds_b;
    if (!PyArg_ParseTuple(args, "OOOOO!y*", &o_data, &o_st, &o_en, &o_which, &PyTuple_Type, &rel_names, &seeds_b)) return NULL;
    Buf data = {0}, st = {0}, en = {0}, wh = {0};
    Stus su = {0};
    PyObject *infos = NULL, *res = NULL;
    Vec h1 = {0}, h2 = {0};
    if (seeds_b.len != 32) {
        PyErr_SetString(PyExc_ValueError, "seeds: 32 bytes");
        goto done;
    }
    if (get_buf(o_data, &data, 1) < 0 || get_buf(o_st, &st, 8) < 0 || get_buf(o_en, &en, 8) < 0 || get_buf(o_which, &wh, 8) < 0)
        goto done;
    Py_ssize_t ne = st.b.len / 8, nw = wh.b.len / 8, nrel = PyTuple_GET_SIZE(rel_names);
    if (en.b.len / 8 != ne) {
        PyErr_SetString(PyExc_ValueError, "starts and ends differ in length");
        goto done;
    }
    const int64_t *S = st.b.buf, *E = en.b.buf, *W = wh.b.buf;
    P base = data.b.buf;
    su.base = base;
    infos = PyList_New(nw);
    if (!infos) goto done;
    for (Py_ssize_t k = 0; k < nw; k++) {
        int64_t i = W[k];
        if (i < 0 || i >= ne || S[i] < 0 || S[i] > E[i] || E[i] > data.b.len) {
            PyErr_SetString(PyExc_IndexError, "entity range out of the data");
            goto done;
        }
        P p = base + S[i], end = base + E[i];
        P ids = NULL, ide = NULL, tus = NULL, tue = NULL;
        while (p < end) {
            uint32_t fn;
            int wt;
            uint64_t v;
            if (rd_key(&p, end, &fn, &wt) < 0) goto none;
            if (fn == 1) {
                if (wt != 2 || rd_len(&p, end, &ids, &ide) < 0) goto none;
            } else if (fn == 2) {
                if (wt != 0 || rd_varint(&p, end, &v) < 0) goto none;
            } else if (fn == 3) {
                if (wt != 2 || tus || rd_len(&p, end, &tus, &tue) < 0) goto none;
            } else if (fn >= 4 && fn <= 8) {
                goto none; /* a vehicle, an alert, a shape, a stop, trip modifications: the pure path */
            } else if (skip(&p, end, wt) < 0) {
                goto none;
            }
        }
        PyObject *eid = NULL, *row = NULL;
        int err = 0;
        if (ids) {
            int r = str_val(ids, ide, &eid, 0);
            if (r == -1) goto none;
            if (r < 0) goto done;
        } else if (!(eid = PyUnicode_FromStringAndSize("", 0))) {
            goto done;
        }
        if (tus) {
            TU t;
            memset(&t, 0, sizeof t);
            int r = read_tu(tus, tue, &t, &su, (int64_t)k, nrel, rel_names);
            if (r < 0) {
                Py_DECREF(eid);
                if (r == -1) goto none;
                goto done;
            }
            row = tu_row(&t, rel_names, &err);
            if (!row) {
                Py_DECREF(eid);
                if (err == -1) {
                    PyErr_Clear();
                    goto none;
                }
                goto done;
            }
        } else {
            row = Py_None;
            Py_INCREF(row);
        }
        PyObject *pair = PyTuple_Pack(2, eid, row);
        Py_DECREF(eid);
        Py_DECREF(row);
        if (!pair) goto done;
        PyList_SET_ITEM(infos, k, pair);
    }
    {
        Py_ssize_t n = su.len.n / 8;
        const int64_t *L = (const int64_t *)su.len.d, *A = (const int64_t *)su.start.d;
        Py_ssize_t width = 8;
        for (Py_ssize_t j = 0; j < n; j++)
            if (L[j] <= HASH_WIDTH && (L[j] + 7) / 8 * 8 > width) width = (L[j] + 7) / 8 * 8;
        const uint64_t *seeds = seeds_b.buf;
        PyObject *longs = PyList_New(0);
        if (!longs) goto done;
        for (Py_ssize_t j = 0; j < n; j++) {
            uint64_t a = 0, b = 0;
            if (L[j] <= HASH_WIDTH) {
                hash2(base + A[j], L[j], width, seeds, &a, &b);
            } else {
                PyObject *x = PyLong_FromSsize_t(j);
                if (!x || PyList_Append(longs, x) < 0) {
                    Py_XDECREF(x);
                    Py_DECREF(longs);
                    goto done;
                }
                Py_DECREF(x);
            }
            if (vec_put(&h1, &a, 8) < 0 || vec_put(&h2, &b, 8) < 0) {
                Py_DECREF(longs);
                goto done;
            }
        }
        PyObject *bk = vec_bytes(&su.k), *bs = vec_bytes(&su.start), *bl = vec_bytes(&su.len), *b1 = vec_bytes(&h1),
                 *b2 = vec_bytes(&h2);
        if (bk && bs && bl && b1 && b2) res = PyTuple_Pack(7, infos, bk, bs, bl, b1, b2, longs);
        Py_XDECREF(bk);
        Py_XDECREF(bs);
        Py_XDECREF(bl);
        Py_XDECREF(b1);
        Py_XDECREF(b2);
        Py_DECREF(longs);
    }
    goto done;
none:
    res = Py_None;
    Py_INCREF(res);
done:
    Py_XDECREF(infos);
    vec_free(&su.k);
    vec_free(&su.start);
    vec_free(&su.len);
    vec_free(&su.idx);
    vec_free(&h1);
    vec_free(&h2);
    rel_buf(&data);
    rel_buf(&st);
    rel_buf(&en);
    rel_buf(&wh);
    PyBuffer_Release(&seeds_b);
    return res;
}

/* ------------------------------------------------------------------------------------------------
 * decode_stus([buffers], buffer_index, starts, ends, rel_index) -> (columns...) | None
 *
 * The columns of parse._STU_DECODED of the StopTimeUpdates buffers[buffer_index[i]][starts[i]:ends[i]] (int32 index,
 * int64 starts and ends), as wire.decode and parse._decode_stus
 * read them: a varint field given twice keeps the last; a sub-message (arrival, departure) given twice, a known field
 * of another wire type, a group, an overrun, a stop_id that is not UTF-8: None. ``rel_index``: int32 per
 * schedule_relationship value, its index in the dictionary (-1: unknown, null).
 *
 * Returns (stop_sequence, stop_id, arrival_time, arrival_delay, arrival_uncertainty, departure_time, departure_delay,
 * departure_uncertainty, schedule_relationship): each (validity bitmap bytes, values bytes, null count); stop_id's
 * values are (int32 offsets bytes, data bytes).
 */
typedef struct {
    uint64_t v[3];
    int has[3];
} Ev;

static int read_event(P p, P end, Ev *ev) {
    while (p < end) {
        uint32_t fn;
        int wt;
        uint64_t v;
        if (rd_key(&p, end, &fn, &wt) < 0) return -1;
        if (fn >= 1 && fn <= 3) {
            if (wt != 0 || rd_varint(&p, end, &v) < 0) return -1;
            ev->v[fn - 1] = v;
            ev->has[fn - 1] = 1;
        } else if (skip(&p, end, wt) < 0) {
            return -1;
        }
    }
    return 0;
}

enum { C_SEQ, C_AT, C_AD, C_AU, C_DT, C_DD, C_DU, C_REL, C_SID, NCOL };

static PyObject *decode_stus(PyObject *self, PyObject *args) {
    PyObject *o_bufs, *o_bi, *o_st, *o_en, *o_rel;
    if (!PyArg_ParseTuple(args, "O!OOOO", &PyList_Type, &o_bufs, &o_bi, &o_st, &o_en, &o_rel)) return NULL;
    Buf bi = {0}, st = {0}, en = {0}, rel = {0};
    Py_ssize_t nb = PyList_GET_SIZE(o_bufs);
    Buf *bl = PyMem_Calloc(nb ? nb : 1, sizeof(Buf));
    PyObject *res = NULL;
    PyObject *bufs[NCOL][2] = {{0}};
    Vec sid = {0};
    if (!bl) return PyErr_NoMemory();
    for (Py_ssize_t j = 0; j < nb; j++)
        if (get_buf(PyList_GET_ITEM(o_bufs, j), &bl[j], 1) < 0) goto done;
    if (get_buf(o_bi, &bi, 4) < 0 || get_buf(o_st, &st, 8) < 0 || get_buf(o_en, &en, 8) < 0 || get_buf(o_rel, &rel, 4) < 0)
        goto done;
    Py_ssize_t n = st.b.len / 8, nrel = rel.b.len / 4;
    if (en.b.len / 8 != n || bi.b.len / 4 != n) {
        PyErr_SetString(PyExc_ValueError, "buffer indices, starts and ends differ in length");
        goto done;
    }
    const int64_t *S = st.b.buf, *E = en.b.buf;
    const int32_t *R = rel.b.buf, *BI = bi.b.buf;
    Py_ssize_t nbm = (n + 7) / 8;
    static const int isz[NCOL] = {8, 8, 4, 4, 8, 4, 4, 4, 4};
    for (int c = 0; c < NCOL; c++) {
        bufs[c][0] = PyBytes_FromStringAndSize(NULL, nbm);
        bufs[c][1] = PyBytes_FromStringAndSize(NULL, c == C_SID ? (n + 1) * 4 : n * isz[c]);
        if (!bufs[c][0] || !bufs[c][1]) goto done;
        memset(PyBytes_AS_STRING(bufs[c][0]), 0, nbm);
        memset(PyBytes_AS_STRING(bufs[c][1]), 0, PyBytes_GET_SIZE(bufs[c][1]));
    }
    uint8_t *bm[NCOL];
    for (int c = 0; c < NCOL; c++) bm[c] = (uint8_t *)PyBytes_AS_STRING(bufs[c][0]);
    int64_t *seq = (int64_t *)PyBytes_AS_STRING(bufs[C_SEQ][1]), *at = (int64_t *)PyBytes_AS_STRING(bufs[C_AT][1]),
            *dt = (int64_t *)PyBytes_AS_STRING(bufs[C_DT][1]);
    int32_t *ad = (int32_t *)PyBytes_AS_STRING(bufs[C_AD][1]), *au = (int32_t *)PyBytes_AS_STRING(bufs[C_AU][1]),
            *dd = (int32_t *)PyBytes_AS_STRING(bufs[C_DD][1]), *du = (int32_t *)PyBytes_AS_STRING(bufs[C_DU][1]),
            *rl = (int32_t *)PyBytes_AS_STRING(bufs[C_REL][1]), *off = (int32_t *)PyBytes_AS_STRING(bufs[C_SID][1]);
    Py_ssize_t nulls[NCOL] = {0};
    off[0] = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (BI[i] < 0 || BI[i] >= nb || S[i] < 0 || S[i] > E[i] || E[i] > bl[BI[i]].b.len) {
            PyErr_SetString(PyExc_IndexError, "stop_time_update range out of its buffer");
            goto done;
        }
        P base = bl[BI[i]].b.buf, p = base + S[i], end = base + E[i];
        P ss = NULL, se = NULL, as = NULL, ae = NULL, ds = NULL, de = NULL;
        uint64_t vseq = 0, vrel = 0;
        int hseq = 0, hrel = 0;
        while (p < end) {
            uint32_t fn;
            int wt;
            if (rd_key(&p, end, &fn, &wt) < 0) goto none;
            switch (fn) {
            case 1:
                if (wt != 0 || rd_varint(&p, end, &vseq) < 0) goto none;
                hseq = 1;
                break;
            case 5:
                if (wt != 0 || rd_varint(&p, end, &vrel) < 0) goto none;
                hrel = 1;
                break;
            case 4:
                if (wt != 2 || rd_len(&p, end, &ss, &se) < 0) goto none;
                break;
            case 2:
                if (wt != 2 || as || rd_len(&p, end, &as, &ae) < 0) goto none;
                break;
            case 3:
                if (wt != 2 || ds || rd_len(&p, end, &ds, &de) < 0) goto none;
                break;
            default:
                if (skip(&p, end, wt) < 0) goto none;
            }
        }
        uint8_t bit = (uint8_t)(1u << (i & 7));
        Py_ssize_t byte = i >> 3;
#define SET(c, cond, stmt)     \
    if (cond) {                \
        bm[c][byte] |= bit;    \
        stmt;                  \
    } else {                   \
        nulls[c]++;            \
    }
        SET(C_SEQ, hseq, seq[i] = (int64_t)vseq);
        Ev a, d;
        memset(&a, 0, sizeof a);
        memset(&d, 0, sizeof d);
        if (as && read_event(as, ae, &a) < 0) goto none;
        if (ds && read_event(ds, de, &d) < 0) goto none;
        SET(C_AT, a.has[1], at[i] = (int64_t)a.v[1]);
        SET(C_AD, a.has[0], ad[i] = (int32_t)(uint32_t)a.v[0]);
        SET(C_AU, a.has[2], au[i] = (int32_t)(uint32_t)a.v[2]);
        SET(C_DT, d.has[1], dt[i] = (int64_t)d.v[1]);
        SET(C_DD, d.has[0], dd[i] = (int32_t)(uint32_t)d.v[0]);
        SET(C_DU, d.has[2], du[i] = (int32_t)(uint32_t)d.v[2]);
        int32_t ri = hrel && vrel < (uint64_t)nrel ? R[vrel] : -1;
        SET(C_REL, ri >= 0, rl[i] = ri);
        if (ss && se > ss) {
            if (!utf8_ok(ss, se)) goto none;
            if (sid.n + (se - ss) > 0x7FFFFFFF) goto none;
            if (vec_put(&sid, ss, se - ss) < 0) goto done;
            bm[C_SID][byte] |= bit;
        } else {
            nulls[C_SID]++;
        }
        off[i + 1] = (int32_t)sid.n;
#undef SET
    }
    {
        PyObject *cols = PyTuple_New(NCOL);
        if (!cols) goto done;
        PyObject *data = vec_bytes(&sid);
        if (!data) {
            Py_DECREF(cols);
            goto done;
        }
        static const int order[NCOL] = {C_SEQ, C_SID, C_AT, C_AD, C_AU, C_DT, C_DD, C_DU, C_REL};
        for (int k = 0; k < NCOL; k++) {
            int c = order[k];
            PyObject *item = c == C_SID ? Py_BuildValue("(O(OO)n)", bufs[c][0], bufs[c][1], data, nulls[c])
                                        : Py_BuildValue("(OOn)", bufs[c][0], bufs[c][1], nulls[c]);
            if (!item) {
                Py_DECREF(cols);
                Py_DECREF(data);
                goto done;
            }
            PyTuple_SET_ITEM(cols, k, item);
        }
        Py_DECREF(data);
        res = cols;
    }
    goto done;
none:
    res = Py_None;
    Py_INCREF(res);
done:
    for (int c = 0; c < NCOL; c++) {
        Py_XDECREF(bufs[c][0]);
        Py_XDECREF(bufs[c][1]);
    }
    vec_free(&sid);
    for (Py_ssize_t j = 0; j < nb; j++) rel_buf(&bl[j]);
    PyMem_Free(bl);
    rel_buf(&bi);
    rel_buf(&st);
    rel_buf(&en);
    rel_buf(&rel);
    return res;
}

/* ------------------------------------------------------------------------------------------------
 * match(job, h1, h2, ln, plo, phi, occ_h1, occ_h2, occ_ln, occ_row, occ_first) -> (row int64 bytes, first int64 bytes)
 *
 * The stop_time_updates of a snapshot's changed trip updates (job: their trip's index, ascending; two hashes and length)
 * against the previous version of the same trip (occurrences [plo[j], phi[j]) of the occ_* arrays): ``first`` is 1 for
 * the first occurrence of its bytes in its trip (hashes and length equal), and ``row`` the stored row of the previous
 * version's first occurrence of the same bytes, or -1. Two open-addressing tables keyed by the (secret-seeded) hashes:
 * linear in the number of updates whatever the input.
 */
typedef struct {
    int64_t *slot; /* index + 1 of the entry, 0: empty */
    uint64_t mask;
} Tab;

static int tab_init(Tab *t, Py_ssize_t n) {
    uint64_t size = 16;
    while (size < (uint64_t)n * 2) size <<= 1;
    t->slot = PyMem_Calloc(size, sizeof(int64_t));
    t->mask = size - 1;
    if (!t->slot) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static inline uint64_t tab_key(int64_t job, uint64_t h1) { return (h1 ^ ((uint64_t)job * M1)) * M2 >> 7; }

static PyObject *match(PyObject *self, PyObject *args) {
    PyObject *o[11];
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOO", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &o[6], &o[7], &o[8], &o[9], &o[10]))
        return NULL;
    Buf b[11];
    memset(b, 0, sizeof b);
    PyObject *res = NULL, *rb = NULL, *fb = NULL;
    Tab cur = {0}, prev = {0};
    for (int i = 0; i < 11; i++)
        if (get_buf(o[i], &b[i], 8) < 0) goto done;
    Py_ssize_t k = b[0].b.len / 8, nj = b[4].b.len / 8, nocc = b[6].b.len / 8;
    if (b[1].b.len / 8 != k || b[2].b.len / 8 != k || b[3].b.len / 8 != k || b[5].b.len / 8 != nj || b[7].b.len / 8 != nocc ||
        b[8].b.len / 8 != nocc || b[9].b.len / 8 != nocc || b[10].b.len / 8 != nocc) {
        PyErr_SetString(PyExc_ValueError, "arrays of different lengths");
        goto done;
    }
    const int64_t *job = b[0].b.buf, *ln = b[3].b.buf, *plo = b[4].b.buf, *phi = b[5].b.buf, *oln = b[8].b.buf,
                  *orow = b[9].b.buf, *ofirst = b[10].b.buf;
    const uint64_t *h1 = b[1].b.buf, *h2 = b[2].b.buf, *oh1 = b[6].b.buf, *oh2 = b[7].b.buf;
    Py_ssize_t np_ = 0;
    for (Py_ssize_t i = 0; i < k; i++)
        if (job[i] < 0 || job[i] >= nj || (i && job[i] < job[i - 1])) {
            PyErr_SetString(PyExc_IndexError, "job out of range or not ascending");
            goto done;
        }
    for (Py_ssize_t j = 0; j < nj; j++) {
        if (plo[j] < 0 || plo[j] > phi[j] || phi[j] > nocc) {
            PyErr_SetString(PyExc_IndexError, "occurrence range out of the arrays");
            goto done;
        }
        np_ += phi[j] - plo[j];
    }
    rb = PyBytes_FromStringAndSize(NULL, k * 8);
    fb = PyBytes_FromStringAndSize(NULL, k * 8);
    if (!rb || !fb || tab_init(&cur, k) < 0 || tab_init(&prev, np_) < 0) goto done;
    int64_t *row = (int64_t *)PyBytes_AS_STRING(rb), *first = (int64_t *)PyBytes_AS_STRING(fb);
    /* the previous versions' first occurrences, by (trip, bytes) */
    for (Py_ssize_t j = 0; j < nj; j++)
        for (int64_t q = plo[j]; q < phi[j]; q++) {
            if (ofirst[q] != 1) continue;
            uint64_t h = tab_key(j, oh1[q]) & prev.mask;
            for (;; h = (h + 1) & prev.mask) {
                int64_t s = prev.slot[h];
                if (!s) {
                    prev.slot[h] = q + 1;
                    break;
                }
                /* the same trip and bytes twice among first occurrences: keep the first */
                int64_t r = s - 1;
                if (oh1[r] == oh1[q] && oh2[r] == oh2[q] && oln[r] == oln[q] && r >= plo[j] && r < phi[j]) break;
            }
        }
    for (Py_ssize_t i = 0; i < k; i++) {
        int64_t j = job[i];
        row[i] = -1;
        first[i] = 1;
        uint64_t h = tab_key(j, h1[i]) & cur.mask;
        for (;; h = (h + 1) & cur.mask) {
            int64_t s = cur.slot[h];
            if (!s) {
                cur.slot[h] = i + 1;
                break;
            }
            int64_t r = s - 1;
            if (job[r] == j && h1[r] == h1[i] && h2[r] == h2[i] && ln[r] == ln[i]) {
                first[i] = 0;
                break;
            }
        }
        if (!first[i] || plo[j] == phi[j]) continue;
        h = tab_key(j, h1[i]) & prev.mask;
        for (;; h = (h + 1) & prev.mask) {
            int64_t s = prev.slot[h];
            if (!s) break;
            int64_t q = s - 1;
            if (q >= plo[j] && q < phi[j] && oh1[q] == h1[i] && oh2[q] == h2[i] && oln[q] == ln[i]) {
                row[i] = orow[q];
                break;
            }
        }
    }
    res = PyTuple_Pack(2, rb, fb);
done:
    Py_XDECREF(rb);
    Py_XDECREF(fb);
    PyMem_Free(cur.slot);
    PyMem_Free(prev.slot);
    for (int i = 0; i < 11; i++) rel_buf(&b[i]);
    return res;
}

/* ------------------------------------------------------------------------------------------------
 * Columns of Python values, as parse._strings and parse._col build them (their Arrow buffers).
 *
 * strings([str | None]) -> (validity bitmap bytes | None, int32 offsets bytes, data bytes, null count) | None
 * None (the caller's Python path then decides, and raises what it raises) on a value that is not exactly a str or
 * None, text that has no UTF-8 form (a lone surrogate), or data past 32-bit offsets.
 */
static PyObject *strings(PyObject *self, PyObject *arg) {
    if (!PyList_CheckExact(arg)) Py_RETURN_NONE;
    Py_ssize_t n = PyList_GET_SIZE(arg), nulls = 0, total = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = PyList_GET_ITEM(arg, i);
        if (o == Py_None) {
            nulls++;
            continue;
        }
        if (!PyUnicode_CheckExact(o)) Py_RETURN_NONE;
        Py_ssize_t len;
        if (!PyUnicode_AsUTF8AndSize(o, &len)) {
            PyErr_Clear();
            Py_RETURN_NONE;
        }
        total += len;
        if (total >= ((Py_ssize_t)1 << 31)) Py_RETURN_NONE;
    }
    PyObject *valid = NULL, *offs = NULL, *data = NULL, *res = NULL;
    if (nulls) {
        valid = PyBytes_FromStringAndSize(NULL, (n + 7) / 8);
        if (!valid) goto done;
        memset(PyBytes_AS_STRING(valid), 0, (n + 7) / 8);
    } else {
        valid = Py_None;
        Py_INCREF(valid);
    }
    offs = PyBytes_FromStringAndSize(NULL, (n + 1) * 4);
    data = PyBytes_FromStringAndSize(NULL, total);
    if (!offs || !data) goto done;
    {
        uint8_t *vb = nulls ? (uint8_t *)PyBytes_AS_STRING(valid) : NULL;
        char *db = PyBytes_AS_STRING(data);
        int32_t *ob = (int32_t *)PyBytes_AS_STRING(offs), at = 0;
        ob[0] = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *o = PyList_GET_ITEM(arg, i);
            if (o != Py_None) {
                Py_ssize_t len;
                const char *u = PyUnicode_AsUTF8AndSize(o, &len); /* cached by the first pass */
                if (!u || at + len > total) {
                    PyErr_Clear();
                    Py_CLEAR(res);
                    Py_DECREF(valid);
                    Py_DECREF(offs);
                    Py_DECREF(data);
                    Py_RETURN_NONE;
                }
                memcpy(db + at, u, len);
                at += (int32_t)len;
                if (vb) vb[i >> 3] |= (uint8_t)(1u << (i & 7));
            }
            ob[i + 1] = at;
        }
    }
    res = Py_BuildValue("(OOOn)", valid, offs, data, nulls);
done:
    Py_XDECREF(valid);
    Py_XDECREF(offs);
    Py_XDECREF(data);
    return res;
}

/* ints([int | None], width) -> (validity bitmap bytes | None, data bytes (int32 or int64, 0 under a null), null count) | None
 * width: 4 or 8. None on a value that is not exactly an int or None, or past the width (the caller stores it as null). */
static PyObject *ints(PyObject *self, PyObject *args) {
    PyObject *lst;
    int width;
    if (!PyArg_ParseTuple(args, "O!i", &PyList_Type, &lst, &width)) return NULL;
    if (width != 4 && width != 8) {
        PyErr_SetString(PyExc_ValueError, "width: 4 or 8");
        return NULL;
    }
    Py_ssize_t n = PyList_GET_SIZE(lst), nulls = 0;
    PyObject *valid = PyBytes_FromStringAndSize(NULL, (n + 7) / 8), *data = PyBytes_FromStringAndSize(NULL, n * width), *res = NULL;
    if (!valid || !data) goto done;
    {
        uint8_t *vb = (uint8_t *)PyBytes_AS_STRING(valid);
        char *db = PyBytes_AS_STRING(data);
        memset(vb, 0, (n + 7) / 8);
        for (Py_ssize_t i = 0; i < n; i++) {
            PyObject *o = PyList_GET_ITEM(lst, i);
            long long v = 0;
            if (o == Py_None) {
                nulls++;
            } else {
                if (!PyLong_CheckExact(o)) goto none;
                int over = 0;
                v = PyLong_AsLongLongAndOverflow(o, &over);
                if (over || (v == -1 && PyErr_Occurred())) goto none;
                if (width == 4 && (v < INT32_MIN || v > INT32_MAX)) goto none;
                vb[i >> 3] |= (uint8_t)(1u << (i & 7));
            }
            if (width == 4) {
                int32_t w = (int32_t)v;
                memcpy(db + i * 4, &w, 4);
            } else {
                int64_t w = (int64_t)v;
                memcpy(db + i * 8, &w, 8);
            }
        }
    }
    if (nulls) res = Py_BuildValue("(OOn)", valid, data, nulls);
    else res = Py_BuildValue("(OOn)", Py_None, data, nulls);
    goto done;
none:
    PyErr_Clear();
    res = Py_None;
    Py_INCREF(res);
done:
    Py_XDECREF(valid);
    Py_XDECREF(data);
    return res;
}

/* ------------------------------------------------------------------------------------------------
 * store_trips(infos, changed, by_bytes, by_id, prev_id, Entity, v0, v_base, v_count, t_rows, t_ent, t_last, undo, heads,
 *             part) -> (bases, new_v, jobs, jk, plo, phi, n_stu)
 *
 * The loop of parse.HourParser._trip_updates, step for step (see there): for each (entity id, row | None) of ``infos``
 * (the changed entities, one per item of ``changed``, then the duplicates), its state Entity(v0 + k, entity id), stored
 * as by_bytes[changed[k]] (a dict by bytes, or a list by index) and by_id[entity id] (changed ones only), its trip-update row stored or the prior's extended (undo entries first), and
 * its stop_time_updates' job. Raises on anything unexpected (the caller's snapshot is then undone and quarantined).
 */
static PyObject *S_v, *S_tu, *S_trip, *S_tu_row, *S_occ_lo, *S_occ_hi, *S_counts;

static PyObject *list_at(PyObject *lst, PyObject *idx) {
    Py_ssize_t i = PyLong_AsSsize_t(idx);
    if (i == -1 && PyErr_Occurred()) return NULL;
    if (i < 0 || i >= PyList_GET_SIZE(lst)) {
        PyErr_SetString(PyExc_IndexError, "version or row out of range");
        return NULL;
    }
    return PyList_GET_ITEM(lst, i); /* borrowed */
}

static int append_new(PyObject *lst, PyObject *o) { /* appends and drops the reference to o (NULL: an error) */
    if (!o) return -1;
    int r = PyList_Append(lst, o);
    Py_DECREF(o);
    return r;
}

static PyObject *store_trips(PyObject *self, PyObject *args) {
    PyObject *infos, *changed, *by_bytes, *by_id, *prev_id, *Entity, *v_base, *v_count, *t_rows, *t_ent, *t_last, *undo,
        *heads, *part;
    Py_ssize_t v0;
    if (!PyArg_ParseTuple(args, "O!O!OO!O!OnO!O!O!O!O!O!O!O", &PyList_Type, &infos, &PyList_Type, &changed,
                          &by_bytes, &PyDict_Type, &by_id, &PyDict_Type, &prev_id, &Entity, &v0, &PyList_Type, &v_base,
                          &PyList_Type, &v_count, &PyList_Type, &t_rows, &PyList_Type, &t_ent, &PyList_Type, &t_last,
                          &PyList_Type, &undo, &PyList_Type, &heads, &part))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(infos), nch = PyList_GET_SIZE(changed), n_stu = 0;
    if (nch > n) {
        PyErr_SetString(PyExc_ValueError, "more changed entities than infos");
        return NULL;
    }
    PyObject *bases = PyList_New(0), *new_v = PyList_New(0), *jobs = PyList_New(0), *jk = PyList_New(0),
             *plo = PyList_New(0), *phi = PyList_New(0), *zero5 = Py_BuildValue("(iiiii)", 0, 0, 0, 0, 0),
             *zero = PyLong_FromLong(0), *one = PyLong_FromLong(1), *res = NULL;
    PyObject *st = NULL, *vobj = NULL, *trip = NULL, *tmp = NULL;
    if (!bases || !new_v || !jobs || !jk || !plo || !phi || !zero5 || !zero || !one) goto done;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *item = PyList_GET_ITEM(infos, k);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_SetString(PyExc_ValueError, "infos: (entity id, row) pairs");
            goto done;
        }
        PyObject *eid = PyTuple_GET_ITEM(item, 0), *row = PyTuple_GET_ITEM(item, 1), *prior = NULL; /* borrowed */
        if (k < nch) {
            prior = PyDict_GetItemWithError(prev_id, eid);
            if (!prior && PyErr_Occurred()) goto done;
        }
        if (prior) { /* bases: v_base[prior.v] + v_count[prior.v] */
            PyObject *pv = PyObject_GetAttr(prior, S_v), *a = NULL, *b = NULL;
            if (!pv) goto done;
            a = list_at(v_base, pv);
            b = a ? list_at(v_count, pv) : NULL;
            Py_DECREF(pv);
            if (!b || append_new(bases, PyNumber_Add(a, b)) < 0) goto done;
        } else if (PyList_Append(bases, zero) < 0) {
            goto done;
        }
        vobj = PyLong_FromSsize_t(v0 + k);
        if (!vobj) goto done;
        st = PyObject_CallFunctionObjArgs(Entity, vobj, eid, NULL);
        if (!st) goto done;
        if (k < nch && (PyObject_SetItem(by_bytes, PyList_GET_ITEM(changed, k), st) < 0 || PyDict_SetItem(by_id, eid, st) < 0))
            goto done;
        if (row == Py_None) {
            if (PyObject_SetAttr(st, S_counts, zero5) < 0) goto done;
            Py_CLEAR(st);
            Py_CLEAR(vobj);
            continue;
        }
        if (!PyTuple_Check(row) || PyTuple_GET_SIZE(row) != 11) {
            PyErr_SetString(PyExc_ValueError, "a trip-update row of 11 values");
            goto done;
        }
        trip = PyTuple_GetSlice(row, 0, 6);
        if (!trip || PyObject_SetAttr(st, S_tu, row) < 0 || PyObject_SetAttr(st, S_trip, trip) < 0) goto done;
        int same_tu = 0;
        if (prior) {
            tmp = PyObject_GetAttr(prior, S_tu);
            if (!tmp) goto done;
            same_tu = PyObject_RichCompareBool(tmp, row, Py_EQ);
            Py_CLEAR(tmp);
            if (same_tu < 0) goto done;
        }
        if (same_tu) { /* the prior's row, extended: r = st.tu_row = prior.tu_row; undo((t_last, r, t_last[r])); t_last[r] = v */
            tmp = PyObject_GetAttr(prior, S_tu_row);
            if (!tmp || PyObject_SetAttr(st, S_tu_row, tmp) < 0) goto done;
            PyObject *old = list_at(t_last, tmp);
            if (!old) goto done;
            Py_ssize_t r = PyLong_AsSsize_t(tmp);
            if (append_new(undo, PyTuple_Pack(3, t_last, tmp, old)) < 0) goto done;
            Py_INCREF(vobj);
            PyList_SetItem(t_last, r, vobj); /* steals; r checked by list_at */
            Py_CLEAR(tmp);
        } else {
            tmp = PyLong_FromSsize_t(PyList_GET_SIZE(t_rows));
            if (!tmp || PyObject_SetAttr(st, S_tu_row, tmp) < 0) goto done;
            Py_CLEAR(tmp);
            if (PyList_Append(t_rows, row) < 0 || PyList_Append(t_ent, eid) < 0 || PyList_Append(new_v, vobj) < 0) goto done;
        }
        int same_trip = 0; /* same = prior if prior.trip == trip */
        if (prior) {
            tmp = PyObject_GetAttr(prior, S_trip);
            if (!tmp) goto done;
            same_trip = PyObject_RichCompareBool(tmp, trip, Py_EQ);
            Py_CLEAR(tmp);
            if (same_trip < 0) goto done;
        }
        if (PyList_Append(jobs, st) < 0 || append_new(jk, PyLong_FromSsize_t(k)) < 0) goto done;
        if (same_trip) {
            if (append_new(plo, PyObject_GetAttr(prior, S_occ_lo)) < 0 || append_new(phi, PyObject_GetAttr(prior, S_occ_hi)) < 0)
                goto done;
        } else if (PyList_Append(plo, zero) < 0 || PyList_Append(phi, zero) < 0) {
            goto done;
        }
        if (append_new(heads, PyTuple_Pack(5, part, eid, PyTuple_GET_ITEM(trip, 0), PyTuple_GET_ITEM(trip, 1),
                                           PyTuple_GET_ITEM(trip, 4))) < 0)
            goto done;
        PyObject *nst = PyTuple_GET_ITEM(row, 10);
        Py_ssize_t ns = PyLong_AsSsize_t(nst);
        if (ns == -1 && PyErr_Occurred()) goto done;
        n_stu += ns;
        tmp = PyTuple_Pack(5, zero, one, nst, zero, zero);
        if (!tmp || PyObject_SetAttr(st, S_counts, tmp) < 0) goto done;
        Py_CLEAR(tmp);
        Py_CLEAR(trip);
        Py_CLEAR(st);
        Py_CLEAR(vobj);
    }
    res = Py_BuildValue("(OOOOOOn)", bases, new_v, jobs, jk, plo, phi, n_stu);
done:
    Py_XDECREF(st);
    Py_XDECREF(vobj);
    Py_XDECREF(trip);
    Py_XDECREF(tmp);
    Py_XDECREF(bases);
    Py_XDECREF(new_v);
    Py_XDECREF(jobs);
    Py_XDECREF(jk);
    Py_XDECREF(plo);
    Py_XDECREF(phi);
    Py_XDECREF(zero5);
    Py_XDECREF(zero);
    Py_XDECREF(one);
    return res;
}

/* ------------------------------------------------------------------------------------------------
 * unchanged(ents, prev_bytes, by_bytes, v_count, v_last, ts) -> (changed, dups, hv, old_counts, old_lasts, rows) | raises
 *
 * The first steps of parse.HourParser._entities, in one pass over a snapshot's entities (``ents``: bytes): an entity
 * whose bytes came earlier in the snapshot is a duplicate (its index in ``dups``); else one whose bytes are a key of
 * ``prev_bytes`` (the previous snapshot's states) is unchanged: by_bytes[bytes] = its state, its version (``hv``) counted
 * once more (v_count[v] += 1, v_last[v] = ts, the values before in ``old_counts`` and ``old_lasts``) and its rows per
 * table summed into ``rows``; else it is changed (its index in ``changed``).
 */
/* Carry an unchanged entity's state over: append its version (st.v) to hv and add its five row counts (st.counts) to
   sums. Return 0, or -1 with an exception set. */
static int carry_state(PyObject *st, PyObject *hv, Py_ssize_t sums[5]) {
    PyObject *v = PyObject_GetAttr(st, S_v), *c = PyObject_GetAttr(st, S_counts);
    if (!v || !c || PyList_Append(hv, v) < 0 || !PyTuple_Check(c) || PyTuple_GET_SIZE(c) != 5) {
        if (c && !PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "counts: 5 values");
        Py_XDECREF(v);
        Py_XDECREF(c);
        return -1;
    }
    Py_DECREF(v);
    for (int t = 0; t < 5; t++) {
        Py_ssize_t x = PyLong_AsSsize_t(PyTuple_GET_ITEM(c, t));
        if (x == -1 && PyErr_Occurred()) {
            Py_DECREF(c);
            return -1;
        }
        sums[t] += x;
    }
    Py_DECREF(c);
    return 0;
}

/* For each carried version in hv: append its count and last timestamp as they were (the caller's undo) to oc and ol,
   then count it once more and set its last timestamp to ts. Return 0, or -1 with an exception set. */
static int bump_versions(PyObject *hv, PyObject *v_count, PyObject *v_last, PyObject *oc, PyObject *ol, PyObject *one,
                         PyObject *ts) {
    Py_ssize_t nh = PyList_GET_SIZE(hv);
    for (Py_ssize_t j = 0; j < nh; j++) {
        PyObject *a = list_at(v_count, PyList_GET_ITEM(hv, j)), *b = a ? list_at(v_last, PyList_GET_ITEM(hv, j)) : NULL;
        if (!b || PyList_Append(oc, a) < 0 || PyList_Append(ol, b) < 0) return -1;
    }
    for (Py_ssize_t j = 0; j < nh; j++) {
        PyObject *vi = PyList_GET_ITEM(hv, j), *a = list_at(v_count, vi);
        if (!a) return -1;
        PyObject *a1 = PyNumber_Add(a, one);
        if (!a1) return -1;
        Py_ssize_t k = PyLong_AsSsize_t(vi); /* checked by list_at */
        PyList_SetItem(v_count, k, a1);
        Py_INCREF(ts);
        PyList_SetItem(v_last, k, ts);
    }
    return 0;
}

static PyObject *unchanged(PyObject *self, PyObject *args) {
    PyObject *ents, *prev_bytes, *by_bytes, *v_count, *v_last, *ts;
    if (!PyArg_ParseTuple(args, "O!O!O!O!O!O", &PyList_Type, &ents, &PyDict_Type, &prev_bytes, &PyDict_Type, &by_bytes,
                          &PyList_Type, &v_count, &PyList_Type, &v_last, &ts))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(ents), sums[5] = {0, 0, 0, 0, 0};
    PyObject *changed = PyList_New(0), *dups = PyList_New(0), *hv = PyList_New(0), *oc = PyList_New(0), *ol = PyList_New(0),
             *seen = PySet_New(NULL), *rows = NULL, *res = NULL, *one = PyLong_FromLong(1);
    if (!changed || !dups || !hv || !oc || !ol || !seen || !one) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *eb = PyList_GET_ITEM(ents, i); /* borrowed */
        if (!PyBytes_CheckExact(eb)) {
            PyErr_SetString(PyExc_TypeError, "entities: bytes");
            goto done;
        }
        int in = PyDict_Contains(by_bytes, eb);
        if (in == 0) in = PySet_Contains(seen, eb);
        if (in < 0) goto done;
        if (in) {
            if (append_new(dups, PyLong_FromSsize_t(i)) < 0) goto done;
            continue;
        }
        PyObject *st = PyDict_GetItemWithError(prev_bytes, eb);
        if (!st) {
            if (PyErr_Occurred() || PySet_Add(seen, eb) < 0 || append_new(changed, PyLong_FromSsize_t(i)) < 0) goto done;
            continue;
        }
        Py_INCREF(st);
        if (PyDict_SetItem(by_bytes, eb, st) < 0) {
            Py_DECREF(st);
            goto done;
        }
        int bad = carry_state(st, hv, sums);
        Py_DECREF(st);
        if (bad) goto done;
    }
    if (bump_versions(hv, v_count, v_last, oc, ol, one, ts) < 0) goto done;
    rows = Py_BuildValue("[nnnnn]", sums[0], sums[1], sums[2], sums[3], sums[4]);
    if (rows) res = PyTuple_Pack(6, changed, dups, hv, oc, ol, rows);
done:
    Py_XDECREF(changed);
    Py_XDECREF(dups);
    Py_XDECREF(hv);
    Py_XDECREF(oc);
    Py_XDECREF(ol);
    Py_XDECREF(seen);
    Py_XDECREF(rows);
    Py_XDECREF(one);
    return res;
}

/* ------------------------------------------------------------------------------------------------
 * unchanged_pos(data, starts, ends, prev_data, prev_starts, prev_ends, prev_states, v_count, v_last, ts, prev_hashes=None)
 *   -> (changed, dups, hv, old_counts, old_lasts, rows, states, hashes)
 *
 * What unchanged() does, with each snapshot's entities given as ranges of its bytes instead of bytes objects: an entity
 * is found among the previous snapshot's by a 64-bit hash of its bytes and then compared byte for byte, so no Python
 * object is made for an unchanged entity. ``prev_states``: the state of each previous entity (None for a duplicate; the
 * first entity with given bytes is the one looked up). ``states``: the same list for this snapshot, with the unchanged
 * entities' states and None elsewhere (the caller fills in the changed ones). ``hashes``: each entity's hash (uint64 bytes),
 * given back as ``prev_hashes`` with the next snapshot (None: they are computed again).
 */
typedef struct {
    P base;
    const int64_t *s, *e;
    uint64_t *hash;
    int64_t *slot; /* index + 1; 0: empty */
    Py_ssize_t mask;
} ETab;

#define MIX(h, w) (h = ((h) ^ (w)) * M2, h ^= (h) >> 29)
#define ROTL(x, r) (((x) << (r)) | ((x) >> (64 - (r))))

static uint64_t ent_hash(P s, Py_ssize_t len) { /* four lanes (independent multiplies), then one */
    uint64_t h = (uint64_t)len * M1 ^ 0x5bd1e9955bd1e995ULL, l1 = h ^ M1, l2 = h ^ M2, l3 = ~h;
    Py_ssize_t k = 0;
    for (; k + 32 <= len; k += 32) {
        uint64_t w[4];
        memcpy(w, s + k, 32);
        MIX(h, w[0]);
        MIX(l1, w[1]);
        MIX(l2, w[2]);
        MIX(l3, w[3]);
    }
    h ^= ROTL(l1, 17) ^ ROTL(l2, 31) ^ ROTL(l3, 47);
    for (; k + 8 <= len; k += 8) {
        uint64_t w;
        memcpy(&w, s + k, 8);
        h = (h ^ w) * M2;
        h ^= h >> 29;
    }
    if (k < len) {
        uint64_t w = 0;
        memcpy(&w, s + k, len - k);
        h = (h ^ w) * M2;
        h ^= h >> 29;
    }
    return h * M1 ^ (h >> 32);
}

static int etab_init(ETab *t, P base, const int64_t *s, const int64_t *e, Py_ssize_t n) {
    Py_ssize_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    t->base = base;
    t->s = s;
    t->e = e;
    t->mask = cap - 1;
    t->slot = PyMem_Calloc(cap, sizeof(int64_t));
    t->hash = PyMem_Malloc((n ? n : 1) * sizeof(uint64_t));
    if (!t->slot || !t->hash) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static void etab_free(ETab *t) {
    PyMem_Free(t->slot);
    PyMem_Free(t->hash);
    t->slot = NULL;
    t->hash = NULL;
}

/* The index of an entity of t with bytes [s, s + len) (hash h), or -1; with insert, add index i when none is found. */
static Py_ssize_t etab_find(ETab *t, P s, Py_ssize_t len, uint64_t h, int insert, Py_ssize_t i) {
    Py_ssize_t at = (Py_ssize_t)(h & (uint64_t)t->mask);
    for (;;) {
        int64_t x = t->slot[at];
        if (!x) {
            if (insert) {
                t->slot[at] = i + 1;
                t->hash[i] = h;
            }
            return -1;
        }
        Py_ssize_t j = (Py_ssize_t)(x - 1);
        if (t->hash[j] == h && t->e[j] - t->s[j] == len && !memcmp(t->base + t->s[j], s, len)) return j;
        at = (at + 1) & t->mask;
    }
}

static int ranges_ok(const Buf *d, const Buf *st, const Buf *en) {
    Py_ssize_t n = st->b.len / 8;
    const int64_t *S = st->b.buf, *E = en->b.buf;
    if (en->b.len / 8 != n) {
        PyErr_SetString(PyExc_ValueError, "starts and ends differ in length");
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (S[i] < 0 || S[i] > E[i] || E[i] > d->b.len) {
            PyErr_SetString(PyExc_IndexError, "entity range out of the data");
            return -1;
        }
    return 0;
}

static PyObject *unchanged_pos(PyObject *self, PyObject *args) {
    PyObject *o[6], *prev_states, *v_count, *v_last, *ts, *o_ph = Py_None;
    if (!PyArg_ParseTuple(args, "OOOOOOO!O!O!O|O", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &PyList_Type, &prev_states,
                          &PyList_Type, &v_count, &PyList_Type, &v_last, &ts, &o_ph))
        return NULL;
    Buf ph;
    memset(&ph, 0, sizeof ph);
    Buf b[6];
    ETab cur, prev;
    memset(b, 0, sizeof b);
    memset(&cur, 0, sizeof cur);
    memset(&prev, 0, sizeof prev);
    Py_ssize_t sums[5] = {0, 0, 0, 0, 0};
    PyObject *changed = NULL, *dups = NULL, *hv = NULL, *oc = NULL, *ol = NULL, *states = NULL, *rows = NULL, *res = NULL,
             *one = NULL, *hashes = NULL;
    for (int k = 0; k < 6; k++)
        if (get_buf(o[k], &b[k], k % 3 ? 8 : 1) < 0) goto done;
    if (o_ph != Py_None && get_buf(o_ph, &ph, 8) < 0) goto done;
    if (ranges_ok(&b[0], &b[1], &b[2]) < 0 || ranges_ok(&b[3], &b[4], &b[5]) < 0) goto done;
    Py_ssize_t n = b[1].b.len / 8, np_ = b[4].b.len / 8;
    if (PyList_GET_SIZE(prev_states) != np_) {
        PyErr_SetString(PyExc_ValueError, "prev_states: one per previous entity");
        goto done;
    }
    const int64_t *S = b[1].b.buf, *E = b[2].b.buf, *PS = b[4].b.buf, *PE = b[5].b.buf;
    P base = b[0].b.buf, pbase = b[3].b.buf;
    if (ph.held && ph.b.len / 8 != np_) {
        PyErr_SetString(PyExc_ValueError, "prev_hashes: one per previous entity");
        goto done;
    }
    if (etab_init(&cur, base, S, E, n) < 0 || etab_init(&prev, pbase, PS, PE, np_) < 0) goto done;
    const uint64_t *PH = ph.held ? ph.b.buf : NULL;
    for (Py_ssize_t j = 0; j < np_; j++) { /* the first of each previous bytes */
        P s = pbase + PS[j];
        Py_ssize_t len = PE[j] - PS[j];
        etab_find(&prev, s, len, PH ? PH[j] : ent_hash(s, len), 1, j);
    }
    changed = PyList_New(0), dups = PyList_New(0), hv = PyList_New(0), oc = PyList_New(0), ol = PyList_New(0);
    states = PyList_New(n), one = PyLong_FromLong(1);
    if (!changed || !dups || !hv || !oc || !ol || !states || !one) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_INCREF(Py_None);
        PyList_SET_ITEM(states, i, Py_None);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        P s = base + S[i];
        Py_ssize_t len = E[i] - S[i];
        uint64_t h = ent_hash(s, len);
        cur.hash[i] = h; /* (etab_find sets it only when it inserts) */
        if (etab_find(&cur, s, len, h, 1, i) >= 0) {
            if (append_new(dups, PyLong_FromSsize_t(i)) < 0) goto done;
            continue;
        }
        Py_ssize_t j = etab_find(&prev, s, len, h, 0, 0);
        PyObject *st = j >= 0 ? PyList_GET_ITEM(prev_states, j) : NULL;
        if (!st || st == Py_None) {
            if (append_new(changed, PyLong_FromSsize_t(i)) < 0) goto done;
            continue;
        }
        Py_INCREF(st);
        PyList_SetItem(states, i, st); /* steals */
        if (carry_state(st, hv, sums) < 0) goto done; /* st is held by states */
    }
    if (bump_versions(hv, v_count, v_last, oc, ol, one, ts) < 0) goto done;
    rows = Py_BuildValue("[nnnnn]", sums[0], sums[1], sums[2], sums[3], sums[4]);
    hashes = PyBytes_FromStringAndSize((const char *)cur.hash, n * 8);
    if (rows && hashes) res = PyTuple_Pack(8, changed, dups, hv, oc, ol, rows, states, hashes);
done:
    Py_XDECREF(hashes);
    rel_buf(&ph);
    etab_free(&cur);
    etab_free(&prev);
    for (int k = 0; k < 6; k++) rel_buf(&b[k]);
    Py_XDECREF(changed);
    Py_XDECREF(dups);
    Py_XDECREF(hv);
    Py_XDECREF(oc);
    Py_XDECREF(ol);
    Py_XDECREF(states);
    Py_XDECREF(rows);
    Py_XDECREF(one);
    return res;
}

PyObject *noriba_gbfs_status(PyObject *self, PyObject *args); /* gbfs_status.c */

static PyMethodDef methods[] = {
    {"split", split, METH_VARARGS, "split(data, with_bytes=True) -> (header | None, [entity bytes] | None, starts, ends) | None"},
    {"trip_updates", trip_updates, METH_VARARGS,
     "trip_updates(data, starts, ends, which, trip_rel_names, seeds) -> (infos, stu_k, stu_start, stu_len, h1, h2, longs) | None"},
    {"decode_stus", decode_stus, METH_VARARGS, "decode_stus([buffers], buffer_index, starts, ends, rel_index) -> columns | None"},
    {"match", match, METH_VARARGS, "match(job, h1, h2, ln, plo, phi, occ_h1, occ_h2, occ_ln, occ_row, occ_first) -> (row, first)"},
    {"strings", strings, METH_O, "strings([str | None]) -> (valid | None, offsets, data, nulls) | None"},
    {"ints", ints, METH_VARARGS, "ints([int | None], width) -> (valid | None, data, nulls) | None"},
    {"unchanged", unchanged, METH_VARARGS,
     "unchanged(ents, prev_bytes, by_bytes, v_count, v_last, ts) -> (changed, dups, hv, old_counts, old_lasts, rows)"},
    {"unchanged_pos", unchanged_pos, METH_VARARGS,
     "unchanged_pos(data, starts, ends, prev_data, prev_starts, prev_ends, prev_states, v_count, v_last, ts, prev_hashes=None) "
     "-> (changed, dups, hv, old_counts, old_lasts, rows, states, hashes)"},
    {"store_trips", store_trips, METH_VARARGS,
     "store_trips(infos, changed, by_bytes, by_id, prev_id, Entity, v0, v_base, v_count, t_rows, t_ent, t_last, undo, heads, "
     "part) -> (bases, new_v, jobs, jk, plo, phi, n_stu)"},
    {"gbfs_status", noriba_gbfs_status, METH_VARARGS,
     "gbfs_status([doc bytes], [name], threads=1) -> ([None | (ts, ttl, version, rows, new_sids, new_tids)], rows, columns)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "noriba_wire", "GTFS-Realtime wire-format hot path (see noriba_wire.c).", -1,
                                    methods};

PyMODINIT_FUNC PyInit_noriba_wire(void) {
    if (!(S_v = PyUnicode_InternFromString("v")) || !(S_tu = PyUnicode_InternFromString("tu")) ||
        !(S_trip = PyUnicode_InternFromString("trip")) || !(S_tu_row = PyUnicode_InternFromString("tu_row")) ||
        !(S_occ_lo = PyUnicode_InternFromString("occ_lo")) || !(S_occ_hi = PyUnicode_InternFromString("occ_hi")) ||
        !(S_counts = PyUnicode_InternFromString("counts")))
        return NULL;
    return PyModule_Create(&module);
}
