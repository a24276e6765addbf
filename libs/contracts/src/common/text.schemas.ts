import { z } from 'zod';

/**
 * Free text as the platform stores it: trimmed, without control characters, and well-formed
 * Unicode. PostgreSQL cannot store a NUL in text at all (error 22021), and the other C0 controls
 * and DEL are never part of a name, a title or a search, only of an attack on whoever shows or logs
 * the text. Multi-line text (descriptions) may hold tab, CR and LF; single-line text none of the
 * C0 controls. An unpaired UTF-16 surrogate (a JSON `"\ud800"`) has no UTF-8 form: stored, it
 * would silently become U+FFFD.
 *
 * Every free-text field of the contracts is built on `text()`; each adds its own length and
 * character rules after it.
 */
const SINGLE_LINE_CONTROL = /[\u0000-\u001f\u007f]/;
const MULTI_LINE_CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;
/** With the `u` flag a pair is one code point: only unpaired surrogates match. */
const LONE_SURROGATE = /[\ud800-\udfff]/u;

export interface TextOptions {
  /** Tab, CR and LF allowed (descriptions, profiles); otherwise no control character at all. */
  multiline?: boolean;
}

export function text({ multiline = false }: TextOptions = {}) {
  const control = multiline ? MULTI_LINE_CONTROL : SINGLE_LINE_CONTROL;
  return z
    .string()
    .trim()
    .refine((s) => !control.test(s), {
      message: multiline
        ? 'may not hold control characters (tab and line breaks excepted)'
        : 'may not hold control characters (a NUL, a tab, a line break, DEL)',
    })
    .refine((s) => !LONE_SURROGATE.test(s), {
      message: 'must be valid Unicode (it holds an unpaired surrogate)',
    });
}
