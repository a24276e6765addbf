import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import {
  type FileHandle,
  lstat,
  mkdir,
  open,
  readdir,
  realpath,
  rename,
  rmdir,
  unlink,
} from 'node:fs/promises';
import path from 'node:path';
import { type Readable } from 'node:stream';
import { assertValidPrefix, isValidKeySegment, isValidObjectKey, parseObjectKey } from './object-key.js';
import {
  DEFAULT_CONTENT_TYPE,
  type GetOptions,
  type ListedObject,
  type ListOptions,
  type ListPage,
  type ObjectBody,
  type ObjectInfo,
  type ObjectStore,
  type PutOptions,
  type PutResult,
} from './object-store.js';
import {
  bodyChunks,
  checkCursor,
  checkPutOptions,
  checkRange,
  compareKeys,
  discardBody,
  listLimit,
} from './object-store.util.js';
import {
  InvalidObjectKey,
  ObjectNotFound,
  ObjectStoreError,
  ObjectStoreErrorCode,
} from './object-store.exception.js';

export interface FilesystemObjectStoreOptions {
  /** The store's directory; created if missing. Relative paths are taken from the working directory. */
  root: string;
  /** Temp files untouched for this long are a crashed writer's leftovers and are removed at open. Default: one hour. */
  staleTempAfterMs?: number;
}

// Suffixes hold `~`, which no key segment can, so these files never collide with an object and
// never show in a listing.
const TEMP_MARK = '~tmp~';
const META_SUFFIX = '~meta';
/**
 * Stored objects (raw image parts, bundles) are readable by the store's own user only: files 0600,
 * directories 0700 (the process's umask can only narrow these).
 */
const FILE_MODE = 0o600;
const DIR_MODE = 0o700;
/** Tries of making an object's directories while deletes elsewhere prune them. */
const MAKE_DIRS_ATTEMPTS = 10;
const { O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_WRONLY } = constants;

/**
 * Content type and user metadata of an object, in a small file beside it. It names the exact file
 * it describes (inode, size, mtime), so after a crash between the two renames of a put, or an
 * overwrite without metadata, stale metadata is ignored rather than shown with the wrong bytes.
 */
interface Sidecar {
  ino: number;
  size: number;
  mtimeMs: number;
  contentType?: string;
  metadata: Record<string, string>;
}

/**
 * Objects as plain files under `root`, at the path their key names: `bundles/ab/part-0` is
 * `<root>/bundles/ab/part-0`, so an operator can read them with ordinary tools.
 *
 * - A put writes a temp file beside the target, syncs it and renames it over the target: readers
 *   see the old file or the whole new one (rename is atomic within a directory).
 * - Symlinks inside the root are never followed: a key whose path is, or passes through, a
 *   symlink reads as absent, is skipped by list and deletePrefix, is left alone by delete, and a
 *   put through a symlinked directory fails with ObjectKeyConflict. A put onto a symlink replaces
 *   the link itself. Every resolved path is also checked to be under the root.
 * - Unlike S3, a key cannot be both an object and a "directory": with `a` stored, putting `a/b`
 *   fails with ObjectKeyConflict, and the other way round.
 */
export class FilesystemObjectStore implements ObjectStore {
  /** Directory syncs per directory: the one running, and the next one that callers may share. */
  private readonly dirSyncs = new Map<string, { tail: Promise<void>; pending?: Promise<void> }>();

  private constructor(readonly root: string) {}

  static async open({
    root,
    staleTempAfterMs = 60 * 60 * 1000,
  }: FilesystemObjectStoreOptions): Promise<FilesystemObjectStore> {
    await mkdir(root, { recursive: true, mode: DIR_MODE });
    // The root's real path: the symlink checks below compare real paths with it.
    const store = new FilesystemObjectStore(await realpath(root));
    await store.removeStaleTempFiles(staleTempAfterMs);
    return store;
  }

  async put(key: string, body: ObjectBody, options: PutOptions = {}): Promise<PutResult> {
    const temps: string[] = [];
    try {
      const segments = parseObjectKey(key);
      checkPutOptions(options);
      const file = this.pathOf(segments);
      const dirSegments = segments.slice(0, -1);
      // Before writing gigabytes; the rename below still catches a directory made meanwhile.
      if ((await lstat(file).catch(() => null))?.isDirectory())
        throw conflict(key, 'a directory holds its name');

      const object = await this.createTemp(dirSegments, file);
      temps.push(object.path);
      let size = 0;
      let stats: Stats;
      try {
        for await (const chunk of bodyChunks(body, options.contentLength)) {
          await writeAll(object.handle, chunk);
          size += chunk.length;
        }
        // On disk before the name points at it, so a power cut cannot leave a renamed empty file
        // (with deferSync the caller flushes before anything points at the object).
        if (!options.deferSync) await object.handle.datasync();
        stats = await object.handle.stat();
      } finally {
        await object.handle.close();
      }

      const { contentType, metadata = {} } = options;
      if (contentType !== undefined || Object.keys(metadata).length > 0) {
        const sidecar: Sidecar = { ino: stats.ino, size, mtimeMs: stats.mtimeMs, contentType, metadata };
        const meta = await this.createTemp(dirSegments, file + META_SUFFIX);
        temps.push(meta.path);
        try {
          await writeAll(meta.handle, Buffer.from(JSON.stringify(sidecar)));
          if (!options.deferSync) await meta.handle.datasync();
        } finally {
          await meta.handle.close();
        }
        await rename(meta.path, file + META_SUFFIX);
      }
      // Without metadata, an old metadata file stays (it no longer matches): removing it could race
      // with a concurrent put's fresh one.
      await rename(object.path, file).catch((err: unknown) => {
        throw isOneOf(err, 'EISDIR', 'ENOTEMPTY', 'EEXIST')
          ? conflict(key, 'a directory holds its name', err)
          : err;
      });
      if (!options.deferSync) await this.syncDirShared(path.dirname(file));
      return { key, size };
    } catch (err) {
      discardBody(body);
      // Best effort: the caller needs the first error; the open-time sweep gets what this misses.
      await Promise.all(temps.map((temp) => removeFile(temp).catch(() => false)));
      throw err;
    }
  }

  async get(key: string, range: GetOptions = {}): Promise<Readable> {
    const file = this.pathOf(parseObjectKey(key));
    checkRange(range);
    if (!(await this.isRealDir(path.dirname(file)))) throw new ObjectNotFound(key);
    let handle: FileHandle;
    try {
      // O_NOFOLLOW: a symlink at the key is not an object.
      handle = await open(file, O_RDONLY | O_NOFOLLOW);
    } catch (err) {
      if (isOneOf(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) throw new ObjectNotFound(key, { cause: err });
      throw err;
    }
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) throw new ObjectNotFound(key);
      const { size } = stats;
      const start = range.start ?? 0;
      if ((range.start !== undefined || range.end !== undefined) && start >= size) {
        throw new ObjectStoreError(
          ObjectStoreErrorCode.InvalidRange,
          `range starts at ${start}, object ${key} has ${size} bytes`,
        );
      }
      // The open handle keeps reading the file it opened, even if a put replaces the key meanwhile.
      return handle.createReadStream({ start, end: range.end });
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  async head(key: string): Promise<ObjectInfo | null> {
    const file = this.pathOf(parseObjectKey(key));
    const stats = await this.statObject(file);
    if (!stats) return null;
    const sidecar = await readSidecar(file + META_SUFFIX, stats);
    return {
      size: stats.size,
      lastModified: stats.mtime,
      contentType: sidecar?.contentType ?? DEFAULT_CONTENT_TYPE,
      metadata: sidecar?.metadata ?? {},
    };
  }

  async exists(key: string): Promise<boolean> {
    return (await this.statObject(this.pathOf(parseObjectKey(key)))) !== null;
  }

  async delete(key: string): Promise<void> {
    const segments = parseObjectKey(key);
    const file = this.pathOf(segments);
    if (!(await this.statObject(file))) return;
    await removeFile(file + META_SUFFIX);
    await removeFile(file);
    await this.pruneEmptyDirs(segments.slice(0, -1));
  }

  async deletePrefix(prefix: string): Promise<number> {
    assertValidPrefix(prefix, { allowEmpty: false });
    let count = 0;
    for await (const { key } of this.walk(prefix)) {
      await this.delete(key);
      count++;
    }
    return count;
  }

  async list(prefix: string, options: ListOptions = {}): Promise<ListPage> {
    assertValidPrefix(prefix);
    const limit = listLimit(options.limit);
    checkCursor(options.cursor);
    const keys: ListedObject[] = [];
    for await (const object of this.walk(prefix, options.cursor)) {
      if (keys.length === limit) return { keys, nextCursor: keys[limit - 1].key };
      keys.push(object);
    }
    return { keys, nextCursor: null };
  }

  /**
   * The data sync that `deferSync` puts skipped, file by file (so it overlaps with whatever the
   * caller writes next), then one sync of each directory for their names.
   */
  async flush(keys: readonly string[]): Promise<void> {
    const dirs = new Set<string>();
    for (const key of keys) {
      const file = this.pathOf(parseObjectKey(key));
      let handle: FileHandle;
      try {
        handle = await open(file, O_RDONLY | O_NOFOLLOW);
      } catch (err) {
        if (isOneOf(err, 'ENOENT', 'ENOTDIR', 'ELOOP')) continue;
        throw err;
      }
      try {
        await handle.datasync();
      } finally {
        await handle.close();
      }
      const meta = await open(file + META_SUFFIX, O_RDONLY | O_NOFOLLOW).catch(() => undefined);
      if (meta) await meta.datasync().finally(() => meta.close());
      dirs.add(path.dirname(file));
    }
    for (const dir of dirs) await this.syncDirShared(dir);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Removes temp files, and metadata files with no object, untouched for `olderThanMs`: what a
   * writer killed mid-put leaves. Runs at open; walks the whole tree. Returns how many it removed.
   */
  async removeStaleTempFiles(olderThanMs: number): Promise<number> {
    const before = Date.now() - olderThanMs;
    let removed = 0;
    const visit = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const file = path.join(dir, entry.name);
        if (entry.isDirectory()) {
          await visit(file);
          continue;
        }
        const temp = entry.name.includes(TEMP_MARK);
        if (!entry.isFile() || !(temp || entry.name.endsWith(META_SUFFIX))) continue;
        const stats = await lstat(file).catch(() => null);
        if (!stats || stats.mtimeMs >= before) continue;
        if (!temp && (await lstat(file.slice(0, -META_SUFFIX.length)).catch(() => null))) continue;
        if (await removeFile(file)) removed++;
      }
    };
    await visit(this.root);
    return removed;
  }

  /**
   * Makes the renames done so far in `dir` durable, sharing one directory sync among the puts
   * that arrive while another is running (the parts of one bundle land in one directory, several
   * at once): a sync that has not started yet covers every rename finished before it starts, so
   * concurrent puts wait for at most one sync after their own rename instead of one each.
   */
  private syncDirShared(dir: string): Promise<void> {
    let entry = this.dirSyncs.get(dir);
    if (!entry) {
      entry = { tail: Promise.resolve() };
      this.dirSyncs.set(dir, entry);
    }
    if (entry.pending) return entry.pending;
    const state = entry;
    const run = state.tail
      .catch(() => undefined)
      .then(() => {
        // From here on a caller needs a sync of its own: its rename may come after this one's start.
        state.pending = undefined;
        return syncDir(dir);
      });
    state.pending = run;
    state.tail = run;
    run
      .finally(() => {
        if (state.tail === run && this.dirSyncs.get(dir) === state) this.dirSyncs.delete(dir);
      })
      .catch(() => undefined);
    return run;
  }

  private pathOf(segments: readonly string[]): string {
    const resolved = path.resolve(this.root, ...segments);
    // Defence in depth: parseObjectKey already rules out every way of leaving the root.
    if (resolved !== this.root && !resolved.startsWith(this.root + path.sep)) {
      throw new InvalidObjectKey(segments.join('/'), 'resolves outside the store root');
    }
    return resolved;
  }

  /** Whether `dir` is reached from the root through real directories only (no symlink on the way). */
  private async isRealDir(dir: string): Promise<boolean> {
    try {
      return (await realpath(dir)) === dir;
    } catch (err) {
      if (isOneOf(err, 'ENOENT', 'ENOTDIR')) return false;
      throw err;
    }
  }

  /** The object's stats, or null: missing, not a regular file, or reached through a symlink. */
  private async statObject(file: string): Promise<Stats | null> {
    if (!(await this.isRealDir(path.dirname(file)))) return null;
    try {
      const stats = await lstat(file);
      return stats.isFile() ? stats : null;
    } catch (err) {
      if (isOneOf(err, 'ENOENT', 'ENOTDIR')) return null;
      throw err;
    }
  }

  // Beside its target, so that the final rename stays in one directory and is atomic.
  private async createTemp(
    dirSegments: string[],
    target: string,
  ): Promise<{ path: string; handle: FileHandle }> {
    for (let attempt = 1; ; attempt++) {
      await this.makeDirs(dirSegments);
      const temp = `${target}${TEMP_MARK}${randomBytes(8).toString('hex')}`;
      try {
        return { path: temp, handle: await open(temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, FILE_MODE) };
      } catch (err) {
        // A concurrent delete pruned the directory while it was empty: make it again.
        if (!isOneOf(err, 'ENOENT') || attempt === 3) throw err;
      }
    }
  }

  /**
   * `mkdir -p` that only ever passes through real directories: a symlink could lead out of the root.
   * A delete elsewhere prunes a directory the moment it is empty, possibly between this making it
   * and making the next one in it (ENOENT): then it starts again from the root.
   */
  private async makeDirs(segments: string[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.makeDirsOnce(segments);
        return;
      } catch (err) {
        if (!isOneOf(err, 'ENOENT') || attempt === MAKE_DIRS_ATTEMPTS) throw err;
      }
    }
  }

  private async makeDirsOnce(segments: string[]): Promise<void> {
    let dir = this.root;
    for (const segment of segments) {
      dir = path.join(dir, segment);
      try {
        await mkdir(dir, DIR_MODE);
      } catch (err) {
        if (!isOneOf(err, 'EEXIST')) throw err;
        if (!(await lstat(dir)).isDirectory()) {
          throw conflict(segments.join('/'), `${path.relative(this.root, dir)} is an object or a symlink`);
        }
      }
    }
  }

  /** A store has no empty directories, as S3 has none: remove them upwards, stop at the first in use. */
  private async pruneEmptyDirs(segments: string[]): Promise<void> {
    for (let n = segments.length; n > 0; n--) {
      try {
        await rmdir(this.pathOf(segments.slice(0, n)));
      } catch {
        return;
      }
    }
  }

  /** Objects whose keys start with `prefix`, in key order, after `after`. */
  private async *walk(prefix: string, after?: string): AsyncGenerator<ListedObject> {
    const cut = prefix.lastIndexOf('/') + 1;
    const dirKey = prefix.slice(0, cut);
    const dir = this.pathOf(dirKey.split('/').filter(Boolean));
    if (await this.isRealDir(dir)) yield* this.walkDir(dir, dirKey, prefix.slice(cut), after);
  }

  private async *walkDir(
    dir: string,
    dirKey: string,
    namePrefix: string,
    after?: string,
  ): AsyncGenerator<ListedObject> {
    const entries = await readdir(dir, { withFileTypes: true }).catch((err: unknown) => {
      if (isOneOf(err, 'ENOENT', 'ENOTDIR')) return [];
      throw err;
    });
    // Only real files and directories with key-shaped names: no symlinks, temp or metadata files.
    // A directory sorts as `name/`, which puts its whole subtree where its keys belong.
    const children = entries
      .filter(
        (e) => (e.isFile() || e.isDirectory()) && e.name.startsWith(namePrefix) && isValidKeySegment(e.name),
      )
      .map((e) => ({ name: e.name, isDir: e.isDirectory(), sortAs: e.isDirectory() ? `${e.name}/` : e.name }))
      .sort((a, b) => compareKeys(a.sortAs, b.sortAs));
    for (const child of children) {
      const key = dirKey + child.name;
      const file = path.join(dir, child.name);
      if (child.isDir) {
        const subKey = `${key}/`;
        // Every key below sorts before the cursor: skip the subtree without reading it.
        if (after !== undefined && subKey < after && !after.startsWith(subKey)) continue;
        yield* this.walkDir(file, subKey, '', after);
      } else if ((after === undefined || key > after) && isValidObjectKey(key)) {
        const stats = await lstat(file).catch(() => null);
        if (stats?.isFile()) yield { key, size: stats.size };
      }
    }
  }
}

async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
  for (let offset = 0; offset < chunk.length;) offset += (await handle.write(chunk, offset)).bytesWritten;
}

async function readSidecar(file: string, stats: Stats): Promise<Sidecar | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(file, O_RDONLY | O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const sidecar = JSON.parse(await handle.readFile('utf8')) as Sidecar;
    const current =
      sidecar.ino === stats.ino && sidecar.size === stats.size && sidecar.mtimeMs === stats.mtimeMs;
    return current ? sidecar : undefined;
  } catch {
    return undefined;
  } finally {
    await handle.close();
  }
}

/** Makes a rename durable: without it a power cut can forget the new name. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Unlinks a file; true if it was there. */
async function removeFile(file: string): Promise<boolean> {
  try {
    await unlink(file);
    return true;
  } catch (err) {
    if (isOneOf(err, 'ENOENT', 'ENOTDIR')) return false;
    throw err;
  }
}

function isOneOf(err: unknown, ...codes: string[]): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code !== undefined && codes.includes(code);
}

function conflict(key: string, reason: string, cause?: unknown): ObjectStoreError {
  return new ObjectStoreError(
    ObjectStoreErrorCode.ObjectKeyConflict,
    `Cannot store ${JSON.stringify(key)}: ${reason}`,
    { cause },
  );
}
