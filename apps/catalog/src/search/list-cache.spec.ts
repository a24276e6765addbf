import { describe, expect, it } from 'vitest';
import { positiveLexemes } from './list-cache.js';

describe('positiveLexemes', () => {
  it('reads the words of a query that only documents holding one of them can match', () => {
    expect(positiveLexemes("'nginx'")).toEqual(['nginx']);
    expect(positiveLexemes("'window' <-> 'server' | 'redi' & 'o' <2> 'neil'")).toEqual(['window', 'server', 'redi', 'o', 'neil']);
    expect(positiveLexemes("( 'a' | 'b' ) & 'c'")).toEqual(['a', 'b', 'c']);
    expect(positiveLexemes("'o''neil'")).toEqual(["o'neil"]);
    expect(positiveLexemes('')).toEqual([]);
  });

  it('gives up on a query that can match without its words, or that it cannot read', () => {
    expect(positiveLexemes("'nginx' & !'apache'")).toBeNull();
    expect(positiveLexemes("!'apache'")).toBeNull();
    expect(positiveLexemes("'ngin':*")).toBeNull();
    expect(positiveLexemes("'nginx':A")).toBeNull();
    expect(positiveLexemes("'unterminated")).toBeNull();
  });
});
