import { describe, expect, it } from 'vitest';
import { nameFilterToLike } from './name-pattern.js';

describe('nameFilterToLike', () => {
  it('turns * and ? into LIKE wildcards', () => {
    expect(nameFilterToLike('ubuntu-*')).toBe('ubuntu-%');
    expect(nameFilterToLike('web-?.0')).toBe('web-_.0');
    expect(nameFilterToLike('*')).toBe('%');
  });

  it("escapes LIKE's own wildcards and the escape character", () => {
    expect(nameFilterToLike('my_image')).toBe('my\\_image');
    expect(nameFilterToLike('100%')).toBe('100\\%');
    expect(nameFilterToLike('a\\b*')).toBe('a\\\\b%');
  });
});
