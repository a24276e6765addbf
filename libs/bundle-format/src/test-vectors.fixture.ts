import { Buffer } from 'node:buffer';
import type { KeyObject } from 'node:crypto';
import type { BundleOptions } from './bundle.writer.js';
import type { PlatformKeys } from './keys.crypto.js';

/**
 * The fixed inputs of the test vectors in docs/bundle-format.md. The keys are the doc's (read
 * from it); everything else is here. Changing anything here changes the vectors.
 */

/** 100 lines of text, 3100 bytes: small enough to print, compressible, several blocks. */
export const VECTOR_IMAGE = Buffer.from(
  Array.from({ length: 100 }, (_, i) => `ImageMart test vector line ${String(i).padStart(3, '0')}\n`).join(
    '',
  ),
  'utf8',
);

export const VECTOR_DATA_KEY = Buffer.from(
  '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f',
  'hex',
);
export const VECTOR_SALT = Buffer.from('a0b1c2d3', 'hex');

/** `owner`: a seller-made bundle, its data key wrapped for the owner's key too (`owner_wrapped_key`). */
export const VECTOR_CASES = [
  { id: 'zstd', compression: 'zstd', level: 3, owner: false },
  { id: 'gzip', compression: 'gzip', level: 1, owner: false },
  { id: 'owner', compression: 'zstd', level: 3, owner: true },
] as const;

export function vectorOptions(
  keys: PlatformKeys,
  compression: 'zstd' | 'gzip',
  level: number,
  onPart: BundleOptions['onPart'],
  ownerPublicKey?: KeyObject,
): BundleOptions {
  return {
    ...(ownerPublicKey ? { ownerPublicKey } : {}),
    image: { name: 'test-vector', version: '1.0', user: '123456789012', type: 'machine' },
    machineConfiguration: {
      architecture: 'x86_64',
      virtualizationType: 'hvm',
      kernelId: 'aki-12345678',
      blockDeviceMapping: [
        { virtual: 'ami', device: 'sda1' },
        { virtual: 'root', device: '/dev/sda1' },
      ],
      productCodes: ['abcd1234'],
    },
    platformPublicKey: keys.wrapping.publicKey,
    signingKey: keys.signing.privateKey,
    onPart,
    compression,
    level,
    blockSize: 1024,
    partSize: 256,
    concurrency: 1,
    testing: { dataKey: VECTOR_DATA_KEY, salt: VECTOR_SALT },
  };
}

/** `<!-- vector <group> <name> -->` followed by a fenced block: the doc's machine-readable parts. */
export function readVectorBlocks(markdown: string): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const m of markdown.matchAll(/<!-- vector (\S+) (\S+) -->\s*```[^\n]*\n([\s\S]*?)```/g))
    blocks.set(`${m[1]} ${m[2]}`, m[3]);
  return blocks;
}
