/**
 * An EC2 name filter (`*` any run of characters, `?` one character) as a LIKE pattern with `\`
 * as the escape character: LIKE's own wildcards `%` and `_` (and the escape itself) in the
 * pattern match only themselves.
 */
export function nameFilterToLike(pattern: string): string {
  let out = '';
  for (const ch of pattern) {
    if (ch === '*') out += '%';
    else if (ch === '?') out += '_';
    else if (ch === '%' || ch === '_' || ch === '\\') out += `\\${ch}`;
    else out += ch;
  }
  return out;
}
