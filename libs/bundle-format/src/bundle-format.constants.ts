import { availableParallelism } from 'node:os';

/** Constants of bundle format version 1 (and defaults). Changing a format constant changes the format. */

export const FORMAT_VERSION = 1;

/** Written into every manifest's `<bundler>` element. */
export const BUNDLER = { name: 'imagemart-bundle-format', version: '1.0.0' } as const;

/** Every sealed part is this size except the last, which is shorter (EC2 used 10 MiB too). */
export const DEFAULT_PART_SIZE = 10 * 1024 * 1024;
/** Input bytes per independently compressed block (one zstd frame or gzip member each). */
export const DEFAULT_BLOCK_SIZE = 4 * 1024 * 1024;

export const DATA_KEY_BYTES = 32;
export const SALT_BYTES = 4;
export const NONCE_BYTES = 12;
export const GCM_TAG_BYTES = 16;

export const CIPHER_ALGORITHM = 'AES-256-GCM';
export const NONCE_SCHEME = 'salt32-index64be';
export const KEY_WRAPPING_ALGORITHM = 'RSA-OAEP-SHA256';
export const DIGEST_ALGORITHM = 'SHA256';

/**
 * Blocks (de)compressing at once by default: node:zlib's one-shot calls run on libuv's thread pool, and
 * more than one per core only adds memory (measured on 2 cores: 2 in flight as fast as 4).
 */
export const DEFAULT_COMPRESSION_WINDOW = Math.max(2, Math.min(4, availableParallelism()));

/** What a reader accepts; anything outside is rejected before any work is done. */
export const LIMITS = {
  manifestBytes: 4 * 1024 * 1024,
  parts: 20_000,
  minPartSize: 256,
  maxPartSize: 64 * 1024 * 1024,
  minBlockSize: 256,
  maxBlockSize: 16 * 1024 * 1024,
  minRsaBits: 2048,
  /** RSA keys of up to 8192 bits: wrapped keys and RSA-PSS signatures of 256 to 1024 bytes. */
  maxRsaBits: 8192,
  /** A signature decodes to 64 bytes (Ed25519) or the RSA modulus length (256 to 1024). */
  minSignatureBytes: 64,
  maxSignatureBytes: 1024,
} as const;

export const ZSTD_LEVELS = { min: 1, max: 19, default: 3 } as const;
export const GZIP_LEVELS = { min: 1, max: 9, default: 1 } as const;
