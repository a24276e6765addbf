import { describe, expect, it } from 'vitest';
import {
  createUploadBodySchema,
  registerImageBodySchema,
  updateImageBodySchema,
  uploadBundleSchema,
} from '../index.js';
import {
  codePointLength,
  keySegmentProblem,
  manifestTextProblem,
  partFilenameProblem,
  sliceCodePoints,
} from './names.js';

describe('one rule for part names and object key segments', () => {
  it.each(['.', '..', 'p'.repeat(201), '', 'a/b', 'ü', 'a b'])('refuses %j as both', (name) => {
    expect(keySegmentProblem(name)).toBeDefined();
    expect(partFilenameProblem(name)).toBeDefined();
  });

  it.each(['image.part.0000', 'p'.repeat(200), '.hidden', '...', 'A_Z-0.9'])('accepts %j as both', (name) => {
    expect(keySegmentProblem(name)).toBeUndefined();
    expect(partFilenameProblem(name)).toBeUndefined();
  });

  it("keeps parts off the manifest's own name, in any letter case", () => {
    expect(keySegmentProblem('manifest.xml')).toBeUndefined();
    expect(partFilenameProblem('manifest.xml')).toMatch(/manifest/);
    expect(partFilenameProblem('Manifest.XML')).toMatch(/manifest/);
  });
});

describe('manifest text', () => {
  it('counts code points', () => {
    expect(codePointLength('🚀a')).toBe(2);
    expect(codePointLength('\uD800')).toBe(1);
    expect(sliceCodePoints('🚀🚀🚀', 2)).toBe('🚀🚀');
  });

  it.each([
    ['U+FFFE', 'a\uFFFEb', /U\+FFFE/],
    ['U+FFFF', 'a\uFFFF', /U\+FFFF/],
    ['a lone surrogate', 'a\uDC00', /U\+DC00/],
    ['a control character', 'a\u0085b', /control/],
    ['leading NBSP', '\u00A0name', /white space/],
    ['trailing U+3000', 'name\u3000', /white space/],
    ['leading U+FEFF', '\uFEFFname', /white space/],
  ])('refuses %s', (_, text, problem) => {
    expect(manifestTextProblem(text, 255)).toMatch(problem);
  });

  it('allows 255 characters that are 510 UTF-16 units', () => {
    expect(manifestTextProblem('🚀'.repeat(255), 255)).toBeUndefined();
    expect(manifestTextProblem('🚀'.repeat(256), 255)).toMatch(/longer/);
  });
});

describe('the API refuses what a manifest cannot hold', () => {
  const image = { name: 'An image', architecture: 'x86_64' };

  it.each(['\uFFFE', '\uFFFF', '\uD83D'])(
    'refuses %j in a description or version, at register, upload and update',
    (char) => {
      for (const body of [
        { ...image, description: `bad ${char}` },
        { ...image, version: `1.0${char}` },
      ]) {
        expect(registerImageBodySchema.safeParse(body).success).toBe(false);
        expect(createUploadBodySchema.safeParse({ ...body, size: 1, sha256: 'a'.repeat(64) }).success).toBe(
          false,
        );
      }
      expect(updateImageBodySchema.safeParse({ description: `x${char}` }).success).toBe(false);
    },
  );

  it('counts a description in characters (code points)', () => {
    expect(registerImageBodySchema.safeParse({ ...image, description: '🚀'.repeat(255) }).success).toBe(true);
    expect(registerImageBodySchema.safeParse({ ...image, description: '🚀'.repeat(256) }).success).toBe(
      false,
    );
  });

  it('refuses a bundle upload whose part names the store cannot hold', () => {
    const bundle = {
      manifestXml: '<manifest/>',
      signerKeyId: `sha256:${'0'.repeat(64)}`,
      signerPublicKeyPem: 'pem',
      partSize: 256,
      partFilenames: ['a.part.0000'],
      imageSize: 1,
    };
    expect(uploadBundleSchema.safeParse(bundle).success).toBe(true);
    for (const partFilenames of [['..'], ['.'], ['p'.repeat(201)], ['manifest.xml'], ['a', 'A']]) {
      expect(uploadBundleSchema.safeParse({ ...bundle, partFilenames }).success).toBe(false);
    }
  });
});
