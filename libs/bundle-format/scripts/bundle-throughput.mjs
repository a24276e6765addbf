/**
 * Throughput and peak RSS of bundle() and unbundle() on generated, semi-compressible data
 * (half pseudo-random, half filesystem-like text per MiB). Not a test: run by hand with
 *   node --import tsx libs/bundle-format/scripts/bundle-throughput.ts [MiB=512]
 * The image is written to a file first and read back (page cache), as the worker reads an
 * upload; parts go to a folder, as the filesystem object store writes them. Each measurement
 * runs in a fresh child process so that its peak RSS is its own.
 */
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { unbundle } from '../src/bundle.reader.ts';
import { bundleOptions, imageStream, MemoryStore } from '../src/bundle.fixture.ts';
import { bundle } from '../src/bundle.writer.ts';
import { exportKeyPem, generatePlatformKeys, loadPrivateKey, loadPublicKey } from '../src/keys.crypto.ts';

const MiB = 1024 * 1024;
const [mode = 'main', ...args] = process.argv.slice(2);

async function loadKeys(dir) {
  const pem = (name) => readFile(join(dir, name), 'utf8');
  const [wrap, sign] = [loadPrivateKey(await pem('wrap.pem')), loadPrivateKey(await pem('sign.pem'))];
  return {
    wrapping: { privateKey: wrap, publicKey: loadPublicKey(await pem('wrap.pem')) },
    signing: { privateKey: sign, publicKey: loadPublicKey(await pem('sign.pem')) },
  };
}

/** Runs `work` in this (child) process and prints what it measured as one JSON line. */
async function measured(bytes, work) {
  const base = process.memoryUsage.rss();
  let peak = base;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 5);
  const start = performance.now();
  await work();
  const seconds = (performance.now() - start) / 1000;
  clearInterval(sampler);
  peak = Math.max(peak, process.resourceUsage().maxRSS * 1024);
  console.log(
    JSON.stringify({ mbps: bytes / 1e6 / seconds, seconds, peakMiB: peak / MiB, baseMiB: base / MiB }),
  );
}

if (mode === 'bundle') {
  const [work, compression, level, partsDir] = args;
  const keys = await loadKeys(work);
  const image = join(work, 'image.raw');
  const size = Number(await readFile(join(work, 'size'), 'utf8'));
  const sink =
    partsDir === '-' ? async () => {} : (part) => writeFile(join(partsDir, part.filename), part.data);
  await measured(size, async () => {
    const result = await bundle(
      createReadStream(image, { highWaterMark: MiB }),
      bundleOptions(keys, new MemoryStore(), { compression, level: Number(level), onPart: sink }),
    );
    if (partsDir !== '-') await writeFile(join(partsDir, 'manifest.xml'), result.manifestXml);
  });
} else if (mode === 'unbundle') {
  const [work, partsDir] = args;
  const keys = await loadKeys(work);
  const size = Number(await readFile(join(work, 'size'), 'utf8'));
  const xml = await readFile(join(partsDir, 'manifest.xml'));
  await measured(size, () =>
    unbundle(xml, {
      readPart: (part) => createReadStream(join(partsDir, part.filename), { highWaterMark: MiB }),
      privateKey: keys.wrapping.privateKey,
      signerPublicKey: keys.signing.publicKey,
    }),
  );
} else {
  const size = Number(args[0] ?? 512) * MiB;
  const work = await mkdtemp(join(tmpdir(), 'bundle-bench-'));
  try {
    const keys = await generatePlatformKeys();
    await writeFile(join(work, 'wrap.pem'), exportKeyPem(keys.wrapping.privateKey));
    await writeFile(join(work, 'sign.pem'), exportKeyPem(keys.signing.privateKey));
    await writeFile(join(work, 'size'), String(size));
    await pipeline(imageStream(size), createWriteStream(join(work, 'image.raw')));
    await pipeline(
      createReadStream(join(work, 'image.raw')),
      new Writable({ write: (_chunk, _encoding, done) => done() }),
    ); // warm the page cache
    const child = (...childArgs) => {
      const out = execFileSync(
        process.execPath,
        [...process.execArgv, fileURLToPath(import.meta.url), ...childArgs],
        { encoding: 'utf8' },
      );
      return JSON.parse(out.trim().split('\n').at(-1));
    };
    const show = (label, r) =>
      console.log(
        `${label.padEnd(32)} ${r.mbps.toFixed(0).padStart(5)} MB/s  ${r.seconds.toFixed(2)} s  peak RSS ${r.peakMiB.toFixed(0)} MiB (process at start ${r.baseMiB.toFixed(0)})`,
      );
    console.log(`${size / MiB} MiB image, ${process.version}`);
    for (const [compression, level] of [
      ['zstd', '3'],
      ['gzip', '1'],
    ]) {
      const parts = join(work, compression);
      await mkdir(parts);
      show(
        `bundle ${compression} -${level}, parts discarded`,
        child('bundle', work, compression, level, '-'),
      );
      show(
        `bundle ${compression} -${level}, parts to disk`,
        child('bundle', work, compression, level, parts),
      );
      show(`unbundle ${compression}, parts from disk`, child('unbundle', work, parts));
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
