import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  engines: { node: string };
};

describe('the runtime the tests run on', () => {
  it('is the Node.js major that package.json requires (the `node` dev dependency puts it on the PATH of npm scripts)', () => {
    const wanted = /^>=(\d+)\./.exec(pkg.engines.node);
    expect(wanted, `engines.node "${pkg.engines.node}"`).not.toBeNull();
    const major = Number(process.versions.node.split('.')[0]);
    process.stdout.write(`node ${process.version} (${process.execPath})\n`);
    expect(major).toBeGreaterThanOrEqual(Number(wanted![1]));
    expect(major).toBe(24);
  });

  it('has zstd in node:zlib, which the bundle format compresses with', async () => {
    const zlib = await import('node:zlib');
    expect(typeof zlib.zstdCompress).toBe('function');
    expect(process.versions['zstd']).toMatch(/^1\.5\./);
  });
});
