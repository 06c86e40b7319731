/* Strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF), as Arrow and Python check it: shared by the
 * realtime parser (noriba_wire.c) and the GBFS station_status decoder (gbfs_status.c). */
#ifndef NORIBA_WIRE_UTF8_H
#define NORIBA_WIRE_UTF8_H

#include <stdint.h>

/* Return the length of the multi-byte sequence at s (s < e, *s >= 0x80): 2 to 4, or 0 if it is not strict UTF-8. */
static inline int utf8_seq(const uint8_t *s, const uint8_t *e) {
    uint8_t c = *s;
    int n;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 1;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 2;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 3;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (e - s <= n) return 0;
    for (int k = 1; k <= n; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[k] & 0x3F);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF))) return 0;
    return n + 1;
}

#endif
