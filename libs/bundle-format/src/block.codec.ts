import { Buffer } from 'node:buffer';
import { promisify } from 'node:util';
import { constants, gzip, zstdCompress, zstdDecompress } from 'node:zlib';
import { GZIP_LEVELS, ZSTD_LEVELS } from './bundle-format.constants.js';
import { BundleErrorCode, BundleFormatError, describeError } from './bundle-format.exception.js';
import type { CompressionAlgorithm } from './manifest.types.js';

/**
 * Block compression. Each block of input becomes one independent zstd frame (RFC 8878) or
 * one gzip member (RFC 1952), so blocks compress in parallel on libuv's thread pool and the
 * concatenation is a single valid stream for `zstd -d` / `gunzip`. Both codecs are Node's own
 * `node:zlib` (zstd since Node 22.15): the asynchronous one-shot calls run on the thread pool,
 * which is what lets a few blocks of one stream (de)compress at once.
 */

const gzipAsync = promisify(gzip);
const zstdCompressAsync = promisify(zstdCompress);
const zstdDecompressAsync = promisify(zstdDecompress);

const ZSTD_MAGIC = 0xfd2fb528;
/** The output buffer size of node:zlib's one-shot calls (see compressBlock). */
const OUTPUT_CHUNK = 1024 * 1024;
/** A zstd block never decodes to more than 128 KiB. */
const ZSTD_BLOCK_MAX = 128 * 1024;

export function levelRange(algorithm: CompressionAlgorithm): { min: number; max: number; default: number } {
  return algorithm === 'zstd' ? ZSTD_LEVELS : GZIP_LEVELS;
}

/**
 * The most a reader lets one zstd frame of a bundle decode to, judged from its block headers
 * before decompressing it, and enforced again as the decoder's output limit: a frame is decoded
 * whole into memory, so without this a small part could expand to gigabytes.
 */
export function maxFrameDecodedBound(blockSize: number): number {
  return 2 * blockSize + ZSTD_BLOCK_MAX;
}

export async function compressBlock(
  algorithm: CompressionAlgorithm,
  level: number,
  block: Buffer,
  blockSize: number,
): Promise<Buffer> {
  try {
    if (algorithm === 'gzip') return await gzipAsync(block, { level, chunkSize: OUTPUT_CHUNK });
    // A one-shot compression of a whole block writes its content size into the frame header
    // and no content checksum (the part digests and the image digest cover the bytes).
    // Output in 1 MiB chunks: with zlib's default 16 KiB, each chunk is a trip back to the main
    // thread and compression ran 2-3 times slower (measured here); a chunk the size of the whole
    // block was faster still, but its buffers raised the pipeline's peak memory by a third.
    const frame = await zstdCompressAsync(block, {
      params: { [constants.ZSTD_c_compressionLevel]: level },
      chunkSize: OUTPUT_CHUNK,
    });
    // Writers guarantee the reader's bound; an encoder that splits blocks finely enough to
    // exceed it (never seen) gets its block stored raw instead.
    const scan = scanZstdFrame(frame, 0, maxFrameDecodedBound(blockSize));
    return scan === 'incomplete' || scan === 'too-large' ? rawZstdFrame(block) : frame;
  } catch (error) {
    throw new BundleFormatError(
      BundleErrorCode.CompressionFailed,
      `${algorithm} compression failed: ${describeError(error)}`,
      { cause: error },
    );
  }
}

/** A zstd frame that stores `data` in raw blocks: single segment, 4-byte content size. */
export function rawZstdFrame(data: Buffer): Buffer {
  const blocks = Math.max(1, Math.ceil(data.length / ZSTD_BLOCK_MAX));
  const frame = Buffer.allocUnsafe(9 + 3 * blocks + data.length);
  frame.writeUInt32LE(ZSTD_MAGIC, 0);
  frame[4] = 0xa0; // Frame_Content_Size_flag 2 (4 bytes), Single_Segment_flag
  frame.writeUInt32LE(data.length, 5);
  let at = 9;
  for (let i = 0; i < blocks; i++) {
    const chunk = data.subarray(i * ZSTD_BLOCK_MAX, (i + 1) * ZSTD_BLOCK_MAX);
    frame.writeUIntLE((chunk.length << 3) | (i === blocks - 1 ? 1 : 0), at, 3); // Raw_Block
    chunk.copy(frame, at + 3);
    at += 3 + chunk.length;
  }
  return frame;
}

export interface ZstdFrameScan {
  /** Bytes of the frame, header to checksum (for a skippable frame: header and user data, which may run past the bytes given). */
  length: number;
  /** The most the frame can decode to, from its block headers (0 for a skippable frame). */
  decodedBound: number;
  /** A skippable frame (RFC 8878 §3.1.2): a reader skips it without buffering or decoding it. */
  skippable?: true;
}

/** Skippable frames have the magic numbers 0x184D2A50 to 0x184D2A5F. */
function isSkippableMagic(magic: number): boolean {
  return magic >>> 4 === 0x184d2a5;
}

/** Bytes the scanner can read: a Buffer, or two of them end to end (see joinedView). */
export interface ByteView {
  readonly length: number;
  at(index: number): number | undefined;
}

/** `a` followed by `b`, without copying either. */
export function joinedView(a: Buffer, b: Buffer): ByteView {
  return { length: a.length + b.length, at: (i) => (i < a.length ? a[i] : b[i - a.length]) };
}

function uint(bytes: ByteView, at: number, width: number): number {
  let value = 0;
  for (let i = width - 1; i >= 0; i--) value = value * 256 + (bytes.at(at + i) ?? 0);
  return value;
}

function corrupt(problem: string): BundleFormatError {
  return new BundleFormatError(
    BundleErrorCode.DecompressionFailed,
    `the compressed stream is not valid zstd: ${problem}`,
  );
}

/**
 * Walks the zstd frame that starts at `offset` through its block headers without decoding it:
 * its length, or 'incomplete' if the bytes end inside it, or 'too-large' as soon as the decoded
 * bound passes `maxDecoded` (before the rest of the frame has to be buffered). A skippable frame
 * is answered from its 8-byte header alone, its length possibly past the bytes given. A frame
 * that needs a dictionary is refused: bundles use none.
 */
export function scanZstdFrame(
  bytes: ByteView,
  offset: number,
  maxDecoded: number,
): ZstdFrameScan | 'incomplete' | 'too-large' {
  if (bytes.length - offset < 5) return 'incomplete';
  const magic = uint(bytes, offset, 4);
  if (isSkippableMagic(magic)) {
    if (bytes.length - offset < 8) return 'incomplete';
    return { length: 8 + uint(bytes, offset + 4, 4), decodedBound: 0, skippable: true };
  }
  if (magic !== ZSTD_MAGIC) throw corrupt(`no frame magic number at offset ${offset}`);
  const descriptor = uint(bytes, offset + 4, 1);
  if (descriptor & 0x08) throw corrupt('reserved bit set in a frame header');
  const singleSegment = (descriptor & 0x20) !== 0;
  const contentSizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6] ?? 0;
  const dictionaryIdBytes = [0, 1, 2, 4][descriptor & 0x03] ?? 0;
  const dictionaryAt = offset + 5 + (singleSegment ? 0 : 1);
  if (dictionaryIdBytes > 0) {
    if (dictionaryAt + dictionaryIdBytes > bytes.length) return 'incomplete';
    if (uint(bytes, dictionaryAt, dictionaryIdBytes) !== 0)
      throw corrupt('a frame needs a dictionary; bundles use none');
  }
  let at = dictionaryAt + dictionaryIdBytes + contentSizeBytes;
  let bound = 0;
  for (;;) {
    if (at + 3 > bytes.length) return 'incomplete';
    const header = uint(bytes, at, 3);
    const type = (header >> 1) & 0x03;
    const size = header >>> 3;
    if (type === 3) throw corrupt('reserved block type');
    if (size > ZSTD_BLOCK_MAX) throw corrupt('block larger than 128 KiB');
    bound += type === 2 ? ZSTD_BLOCK_MAX : size;
    if (bound > maxDecoded) return 'too-large';
    at += 3 + (type === 1 ? 1 : size); // an RLE block stores one byte
    if (header & 1) break;
  }
  if (descriptor & 0x04) at += 4; // Content_Checksum
  return at > bytes.length ? 'incomplete' : { length: at - offset, decodedBound: bound };
}

/** Decodes one frame (in OUTPUT_CHUNK pieces, see compressBlock), refusing to produce more than `maxDecoded` bytes. */
export async function decompressZstdFrame(frame: Buffer, maxDecoded: number): Promise<Buffer> {
  try {
    return await zstdDecompressAsync(frame, { maxOutputLength: maxDecoded, chunkSize: OUTPUT_CHUNK });
  } catch (error) {
    throw new BundleFormatError(
      BundleErrorCode.DecompressionFailed,
      `a zstd frame does not decompress: ${describeError(error)}`,
      { cause: error },
    );
  }
}
