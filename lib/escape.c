/* SPDX-License-Identifier: MIT */
/*
 * escape.c -- the one escaping function for text meant for a terminal,
 * and the one UTF-8 decoder (fl__utf8_len, also behind fl__utf8_valid).
 *
 * Markers, owner files, claims, records and etcd values are written by
 * whoever can write the lock directory or the cluster; their bytes reach
 * the CLI's text output and the shim's messages.  fl__escape() keeps them
 * from moving the cursor, retitling the window or forging a second line.
 * JSON output has its own escaping (strings there are quoted anyway).
 */
#include "config.h"

#include <string.h>

#include "escape.h"

size_t fl__utf8_len(const unsigned char *s, size_t avail, unsigned *cpp)
{
	size_t n;
	unsigned cp;

	if (avail == 0)
		return 0;
	if (s[0] < 0x80) {
		if (cpp)
			*cpp = s[0];
		return 1;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1fu;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07u;
	else
		return 0;
	if (n > avail)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	if (cpp)
		*cpp = cp;
	return n;
}

/* Length of the printable-as-is UTF-8 sequence at the NUL-terminated s
 * (1..4), or 0: not well-formed, or a C1 control (CSI is U+009B). */
static size_t utf8_len(const unsigned char *s)
{
	unsigned cp = 0;
	size_t n = fl__utf8_len(s, 4, &cp); /* a NUL ends a sequence: never read past it */

	return cp >= 0x80 && cp <= 0x9f ? 0 : n;
}

char *fl__escape(char *out, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;

	if (cap == 0)
		return out;
	while (*p) {
		size_t n = utf8_len(p);

		if (n == 1 && (*p < 0x20 || *p == 0x7f))
			n = 0;
		if (n > 0) {
			if (o + n >= cap)
				break;
			memcpy(out + o, p, n);
			o += n;
			p += n;
			continue;
		}
		if (o + 4 >= cap)
			break;
		out[o++] = '\\';
		out[o++] = 'x';
		out[o++] = hex[*p >> 4];
		out[o++] = hex[*p & 15];
		p++;
	}
	out[o] = '\0';
	return out;
}
