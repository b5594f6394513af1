/* SPDX-License-Identifier: MIT */
/*
 * escape.h -- making bytes from files other users write safe to print, and
 * the UTF-8 decoder that decides what is well-formed.
 */
#ifndef FL_ESCAPE_H
#define FL_ESCAPE_H

#include <stddef.h>

/*
 * Copies the NUL-terminated s into out (cap bytes, always NUL-terminated
 * when cap > 0), writing every byte a terminal could act on as \xHH:
 * C0 controls (newline and tab included: a record cannot forge a second
 * line), DEL, the C1 controls U+0080..U+009F, and every byte that is not
 * part of well-formed UTF-8.  Printable ASCII and other well-formed UTF-8
 * pass unchanged, and so does the backslash: the output of fl__escape is
 * its own escape, so a message escaped twice reads the same.  Output that
 * does not fit is cut at a character boundary.  Returns out.
 */
char *fl__escape(char *out, size_t cap, const char *s);

/* Length of the well-formed UTF-8 sequence at s, of which avail bytes may
 * be read (1..4), with its code point in *cp (may be NULL); 0 when the bytes
 * there are not one: Python's strict decoder (no overlong forms, no
 * surrogates, nothing above U+10FFFF, no truncated sequence).  The one
 * UTF-8 decoder of the project (fl__escape, fl__utf8_valid). */
size_t fl__utf8_len(const unsigned char *s, size_t avail, unsigned *cp);

/* Worst-case size of fl__escape's output for an input of n bytes. */
#define FL__ESCAPED_SIZE(n) (4 * (n) + 1)

#endif
