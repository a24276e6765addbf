/**
 * The character rules that more than one layer must apply identically: the object store's key
 * segments and the bundle format's part names (one rule, so a part the format allows is always a
 * part the store can hold), and the text a manifest may carry (XML 1.0's characters, no control
 * characters, no white space around). The bundle format, the object store and the API schemas all
 * call these functions; none of them keeps a copy of the rule.
 */

/**
 * Longest key segment, in characters (ASCII, so bytes too). Not an S3 rule: it keeps every key a
 * legal file name (255 bytes on Linux) with room for the filesystem driver's temp and metadata
 * suffixes, so both drivers accept the same keys.
 */
export const MAX_KEY_SEGMENT_LENGTH = 200;

const SEGMENT_CHARACTERS = /^[A-Za-z0-9._-]+$/;

/**
 * Why `segment` cannot be one `/`-separated segment of an object key, or undefined if it can:
 * 1 to 200 of `A-Z a-z 0-9 . _ -`, and not `.` or `..`.
 */
export function keySegmentProblem(segment: string): string | undefined {
  if (segment === '') return 'is empty';
  if (segment === '.' || segment === '..') return `is "${segment}"`;
  if (!SEGMENT_CHARACTERS.test(segment)) return 'has a character outside A-Z a-z 0-9 . _ -';
  if (segment.length > MAX_KEY_SEGMENT_LENGTH) return `is longer than ${MAX_KEY_SEGMENT_LENGTH} characters`;
  return undefined;
}

/** The manifest's own file name beside its parts (in the object store and in a bundle directory). */
export const MANIFEST_FILENAME = 'manifest.xml';

/**
 * Why `name` cannot be a bundle part's file name, or undefined if it can: a part is stored as one
 * key segment beside the manifest, so the name is a valid key segment (see keySegmentProblem) and
 * is not the manifest's own name, in any letter case (a case-insensitive file system would put
 * both in one file).
 */
export function partFilenameProblem(name: string): string | undefined {
  const problem = keySegmentProblem(name);
  if (problem) return problem;
  if (name.toLowerCase() === MANIFEST_FILENAME) return `is the manifest's own name (${MANIFEST_FILENAME})`;
  return undefined;
}

/** The rule of part file names, for messages and docs. */
export const PART_FILENAME_RULE = `1-${MAX_KEY_SEGMENT_LENGTH} of A-Z a-z 0-9 . _ -, not "." or ".." or "${MANIFEST_FILENAME}"`;

// Text ------------------------------------------------------------------------------------------

/** A code point outside XML 1.0's Char production (#x9 #xA #xD [#x20-#xD7FF] [#xE000-#xFFFD] [#x10000-#x10FFFF]); lone surrogates included. */
const NOT_XML_CHAR = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/u;

/** The first code point of `text` that XML 1.0 does not allow (U+FFFE, U+0000, a lone surrogate, ...), or undefined. */
export function firstNonXmlCharacter(text: string): { codePoint: number; index: number } | undefined {
  const match = NOT_XML_CHAR.exec(text);
  return match ? { codePoint: match[0].codePointAt(0) ?? 0, index: match.index } : undefined;
}

/** `text` with every code point XML does not allow replaced by `replacement` (U+FFFD by default). */
export function replaceNonXmlCharacters(text: string, replacement = '\uFFFD'): string {
  return text.replace(new RegExp(NOT_XML_CHAR.source, 'gu'), replacement);
}

/** The first `max` code points of `text` (never half of a surrogate pair). */
export function sliceCodePoints(text: string, max: number): string {
  return codePointLength(text) <= max ? text : Array.from(text).slice(0, max).join('');
}

/** `U+FFFE` */
export function formatCodePoint(codePoint: number): string {
  return `U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}`;
}

/** Length in Unicode code points (what the bundle format and the API mean by "characters"), not UTF-16 units. */
export function codePointLength(text: string): number {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    // A high surrogate followed by a low one is one code point.
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** XML's white space (S): space, tab, CR, LF. Nothing else is trimmed from a manifest value. */
export function trimXmlWhiteSpace(text: string): string {
  return text.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, '');
}

const CONTROL = /\p{Cc}/u;
/** Any white space JavaScript's trim() knows (NBSP, U+3000, U+FEFF, U+2028, ...), at either end. */
const WHITE_SPACE_AT_END = /^\s|\s$/u;

/**
 * Why `text` cannot be a text value of a manifest, or undefined if it can: 1 to `max` code points,
 * every one an XML character and none a control character (Unicode Cc), and no white space of any
 * kind at either end (a reader trims only XML's own white space, so a value that starts with NBSP
 * would otherwise mean one thing to one reader and another to the next).
 */
export function manifestTextProblem(text: string, max: number): string | undefined {
  if (text.length === 0) return 'is empty';
  const bad = firstNonXmlCharacter(text);
  if (bad) return `holds ${formatCodePoint(bad.codePoint)}, a character XML does not allow`;
  if (CONTROL.test(text)) return 'holds a control character';
  if (WHITE_SPACE_AT_END.test(text)) return 'starts or ends with white space';
  if (codePointLength(text) > max) return `is longer than ${max} characters`;
  return undefined;
}
