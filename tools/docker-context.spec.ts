import { readFileSync } from 'node:fs';
import { matchesGlob } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * What `.dockerignore` keeps out of the Docker build context (the Dockerfile copies the whole
 * context): Docker's rule is that the last pattern matching a path, or a folder above it, decides,
 * and a `!` pattern lets a path back in.
 */
const patterns = readFileSync(new URL('../.dockerignore', import.meta.url), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

function excluded(path: string): boolean {
  const parts = path.split('/');
  const selfAndParents = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let out = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = negated ? raw.slice(1) : raw;
    if (selfAndParents.some((p) => matchesGlob(p, pattern))) out = !negated;
  }
  return out;
}

describe('the Docker build context', () => {
  it('holds no local .env file, wherever it is, but the committed example', () => {
    for (const secret of [
      '.env',
      '.env.local',
      '.env.production',
      'apps/storefront-api/.env',
      'e2e/.env.test',
    ]) {
      expect(excluded(secret), secret).toBe(true);
    }
    expect(excluded('.env.example')).toBe(false);
  });

  it('holds the sources, and none of the local build or data folders', () => {
    for (const kept of ['package.json', 'apps/storefront-api/src/main.ts', 'prisma/schema.prisma'])
      expect(excluded(kept), kept).toBe(false);
    for (const out of ['node_modules/pg/package.json', 'dist/apps/x.js', '.data/keys/a.pem', '.git/HEAD'])
      expect(excluded(out), out).toBe(true);
  });
});
