/**
 * A synthetic machine image for the bundle benchmark, written to disk as a stream (never whole
 * in memory). Extents of 64 KiB to 2 MiB alternate between incompressible bytes (an AES-CTR
 * keystream, like encrypted or already compressed files) and filesystem-like data, so that half
 * of the image is each:
 * - log and listing text (syslog lines, `ls -l`-style lines with paths and sizes),
 * - tables of fixed-size binary records (inode-like: small fields, counters, timestamps),
 * - code-like bytes (a skewed byte distribution, as in executables),
 * - sparse extents (zero blocks with the odd 4 KiB block of records).
 * The content depends only on the seed and the offset within the image's extent sequence.
 */
import { Buffer } from 'node:buffer';
import { createCipheriv, createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const KiB = 1024;
const MiB = 1024 * KiB;
/** Extents are written in pieces of at most this many bytes. */
const PIECE = MiB;

export interface ImageInfo {
  path: string;
  size: number;
  /** SHA-256 of the image, lowercase hex, computed while writing it. */
  sha256: string;
  randomBytes: number;
  compressibleBytes: number;
}

/** mulberry32: a small, fast, seeded PRNG (uniform in [0, 1)). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Kind = 'random' | 'text' | 'records' | 'code' | 'sparse';

class ImageContent {
  private readonly rand: () => number;
  private readonly keystream: ReturnType<typeof createCipheriv>;
  private readonly zeros = Buffer.alloc(PIECE);
  /** Maps a uniform byte to a skewed one: many 0x00, 0xff, 0x48, 0x89, 0x8b, 0xe8, ... as in x86 code. */
  private readonly codeTable = Buffer.alloc(256);
  private clock = Date.UTC(2026, 0, 1) / 1000;
  private inode = 1000;
  private pid = 300;

  constructor(seed: number) {
    this.rand = prng(seed);
    const key = createHash('sha256').update(`bench-image-${seed}`).digest();
    this.keystream = createCipheriv('aes-256-ctr', key, Buffer.alloc(16));
    const common = [
      0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x48, 0x48, 0x89, 0x89, 0x8b, 0x8b, 0xe8, 0x0f, 0x24, 0x85,
    ];
    for (let i = 0; i < 256; i++) this.codeTable[i] = i < 128 ? common[i % common.length] : i;
  }

  int(n: number): number {
    return Math.floor(this.rand() * n);
  }

  random(n: number): Buffer {
    return this.keystream.update(this.zeros.subarray(0, n));
  }

  fill(kind: Kind, n: number): Buffer {
    switch (kind) {
      case 'random':
        return this.random(n);
      case 'text':
        return this.text(n);
      case 'records':
        return this.records(Buffer.allocUnsafe(n));
      case 'code': {
        const out = this.random(n);
        const table = this.codeTable;
        for (let i = 0; i < n; i++) out[i] = table[out[i]];
        return out;
      }
      case 'sparse': {
        const out = Buffer.alloc(n);
        for (let at = 0; at < n; at += 4 * KiB)
          if (this.int(16) === 0) this.records(out.subarray(at, Math.min(n, at + 4 * KiB)));
        return out;
      }
    }
  }

  private static readonly DAEMONS = [
    'sshd',
    'systemd',
    'kernel',
    'cron',
    'dockerd',
    'nginx',
    'postgres',
    'dhclient',
  ];
  private static readonly MESSAGES = [
    (r: ImageContent) =>
      `Accepted publickey for user${r.int(50)} from 10.${r.int(256)}.${r.int(256)}.${r.int(256)} port ${1024 + r.int(60000)} ssh2`,
    (r: ImageContent) => `Started Session ${r.int(100000)} of user ubuntu.`,
    (r: ImageContent) =>
      `EXT4-fs (nvme0n1p${1 + r.int(4)}): mounted filesystem with ordered data mode. Quota mode: none.`,
    (r: ImageContent) => `(root) CMD (/usr/lib/sysstat/debian-sa1 1 1) pid=${r.int(99999)}`,
    (r: ImageContent) =>
      `GET /api/v1/images/ami-${r.int(0xffffffff).toString(16).padStart(8, '0')} HTTP/1.1" 200 ${r.int(50000)} ${r.int(900)}ms`,
    (r: ImageContent) =>
      `checkpoint complete: wrote ${r.int(5000)} buffers (${r.int(100)}.${r.int(10)}%); 0 WAL file(s) added, ${r.int(3)} removed`,
    (r: ImageContent) =>
      `DHCPACK of 172.31.${r.int(256)}.${r.int(256)} from 172.31.0.1 (xid=0x${r.int(0xffffffff).toString(16)})`,
  ];

  /** Syslog lines and directory listings, in runs. */
  private text(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let at = 0;
    while (at < n) {
      let lines = '';
      const listing = this.int(3) === 0;
      for (let i = 0; i < 64; i++) {
        if (listing) {
          this.inode += 1 + this.int(4);
          lines += `${this.inode} -rw-r--r-- 1 root root ${this.int(2_000_000)} 2025-${String(1 + this.int(12)).padStart(2, '0')}-${String(1 + this.int(28)).padStart(2, '0')} /usr/lib/x86_64-linux-gnu/lib${ImageContent.DAEMONS[this.int(8)]}${this.int(400)}.so.${this.int(9)}\n`;
        } else {
          this.clock += this.int(3);
          if (this.int(50) === 0) this.pid = 300 + this.int(60000);
          const daemon = ImageContent.DAEMONS[this.int(ImageContent.DAEMONS.length)];
          const message = ImageContent.MESSAGES[this.int(ImageContent.MESSAGES.length)](this);
          lines += `${new Date(this.clock * 1000).toISOString()} ip-172-31-${this.int(4)}-17 ${daemon}[${this.pid}]: ${message}\n`;
        }
      }
      at += out.write(lines, at, 'latin1');
    }
    return out;
  }

  /** 256-byte inode-like records: mode, ids, size, times, block pointers, padding, a checksum. */
  private records(out: Buffer): Buffer {
    out.fill(0);
    const modes = [0o100644, 0o100755, 0o040755, 0o120777];
    for (let at = 0; at + 256 <= out.length; at += 256) {
      this.inode++;
      const blocks = this.int(12);
      out.writeUInt16LE(modes[this.int(modes.length)], at);
      out.writeUInt16LE(this.int(4) === 0 ? 1000 : 0, at + 2);
      out.writeUInt32LE(this.int(1 << 24), at + 4);
      out.writeUInt32LE(this.clock - this.int(86400 * 365), at + 8);
      out.writeUInt32LE(this.clock - this.int(86400), at + 12);
      out.writeUInt32LE(this.clock, at + 16);
      out.writeUInt32LE(this.inode, at + 24);
      out.writeUInt16LE(1 + this.int(2), at + 28);
      out.writeUInt32LE(blocks * 8, at + 32);
      out.writeUInt32LE(0x80000, at + 36); // extents flag
      let block = this.int(1 << 26);
      for (let i = 0; i < blocks; i++) out.writeUInt32LE((block += 1 + this.int(3)), at + 40 + 4 * i);
      out.writeUInt32LE(this.int(0xffffffff), at + 124); // checksum
      if (at % 1024 === 0) this.random(16).copy(out, at + 128); // a uuid in some records
    }
    return out;
  }
}

/** The image's bytes, `PIECE` at a time: extents of 64 KiB to 2 MiB, half of the bytes random. */
function* imagePieces(
  size: number,
  seed: number,
  info: ImageInfo,
  hash: ReturnType<typeof createHash>,
): Generator<Buffer> {
  const content = new ImageContent(seed);
  const kinds: Kind[] = [
    'text',
    'text',
    'text',
    'records',
    'records',
    'code',
    'code',
    'sparse',
    'sparse',
    'sparse',
  ];
  let offset = 0;
  while (offset < size) {
    // Whichever half is behind gets the next extent, so the split stays within one extent of 50/50.
    const random = info.randomBytes <= info.compressibleBytes;
    const kind: Kind = random ? 'random' : kinds[content.int(kinds.length)];
    let extent = Math.min(size - offset, (16 + content.int(497)) * 4 * KiB);
    while (extent > 0) {
      const n = Math.min(PIECE, extent);
      const piece = content.fill(kind, n);
      hash.update(piece);
      if (random) info.randomBytes += n;
      else info.compressibleBytes += n;
      offset += n;
      extent -= n;
      yield piece;
    }
  }
}

/** Writes `size` bytes of image to `path` and returns its SHA-256. */
export async function writeImage(path: string, size: number, seed = 1): Promise<ImageInfo> {
  const info: ImageInfo = { path, size, sha256: '', randomBytes: 0, compressibleBytes: 0 };
  const hash = createHash('sha256');
  await pipeline(
    Readable.from(imagePieces(size, seed, info, hash), { objectMode: false, highWaterMark: 1 }),
    createWriteStream(path, { highWaterMark: PIECE }),
  );
  info.sha256 = hash.digest('hex');
  return info;
}
