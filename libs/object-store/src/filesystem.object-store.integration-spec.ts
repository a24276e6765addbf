import { mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { waitFor } from '@imagemart/testing';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FilesystemObjectStore } from './filesystem.object-store.js';
import { failingAfter, objectStoreContract, readAll } from './object-store-contract.fixture.js';
import { ObjectNotFound, ObjectStoreErrorCode } from './object-store.exception.js';

// On the real filesystem, in a temp directory per test.
const scratch: string[] = [];
const tempDir = async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'imagemart-objects-'));
  scratch.push(dir);
  return dir;
};
afterAll(async () => {
  await Promise.all(scratch.map((dir) => rm(dir, { recursive: true, force: true })));
});

/** Every file under `dir`, relative, sorted. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((e) => !e.isDirectory())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
}

describe('FilesystemObjectStore', () => {
  describe('contract', () => {
    objectStoreContract({ open: async () => FilesystemObjectStore.open({ root: await tempDir() }) });
  });

  let root: string;
  let store: FilesystemObjectStore;
  beforeEach(async () => {
    root = await tempDir();
    store = await FilesystemObjectStore.open({ root });
  });
  afterEach(async () => {
    await store.close();
  });

  it('keeps each object as a plain file at its key, with no empty directories left behind', async () => {
    await store.put('bundles/img-1/part-0000', Buffer.from('part zero'));
    expect(await readFile(path.join(root, 'bundles/img-1/part-0000'), 'utf8')).toBe('part zero');
    await store.put('bundles/img-1/manifest.xml', Buffer.from('<manifest/>'), {
      contentType: 'application/xml',
    });
    expect(await filesUnder(root)).toEqual([
      'bundles/img-1/manifest.xml',
      'bundles/img-1/manifest.xml~meta',
      'bundles/img-1/part-0000',
    ]);
    expect(await store.deletePrefix('bundles/')).toBe(2);
    expect(await readdir(root)).toEqual([]);
  });

  it('stores objects readable by its own user only: files 0600, directories 0700', async () => {
    // Under the usual umask (022) files would otherwise be 0644 and directories 0755.
    const fresh = await FilesystemObjectStore.open({ root: path.join(await tempDir(), 'objects') });
    try {
      await fresh.put('uploads/upl-1/part-1', Buffer.from('raw image bytes'));
      await fresh.put('bundles/img-1/manifest.xml', Buffer.from('<manifest/>'), { contentType: 'application/xml' });
      const mode = async (p: string) => (await stat(path.join(fresh.root, p))).mode & 0o777;
      expect(await mode('.')).toBe(0o700);
      for (const dir of ['uploads', 'uploads/upl-1', 'bundles', 'bundles/img-1']) expect(await mode(dir), dir).toBe(0o700);
      const files = await filesUnder(fresh.root);
      expect(files).toHaveLength(3);
      for (const file of files) expect(await mode(file), file).toBe(0o600);
    } finally {
      await fresh.close();
    }
  });

  it('stores an object while deletes elsewhere prune the directories on its way', async () => {
    // Each round: the only object under uploads/ is deleted (so uploads/ itself goes) while a new
    // one is put under uploads/ beside it; the put must make uploads/ again, not fail.
    const stored: string[] = [];
    await store.put('uploads/u-0/part-1', Buffer.from('0'));
    for (let i = 1; i <= 200; i++) {
      await Promise.all([store.delete(`uploads/u-${i - 1}/part-1`), store.put(`uploads/u-${i}/part-1`, Buffer.from(String(i)))]);
      stored.push((await readAll(await store.get(`uploads/u-${i}/part-1`))).toString());
    }
    expect(stored).toEqual(Array.from({ length: 200 }, (_, i) => String(i + 1)));
    expect(await filesUnder(root)).toEqual(['uploads/u-200/part-1']);
  });

  it('a key cannot be both an object and a "directory" (S3 allows it; this driver refuses)', async () => {
    await store.put('a', Buffer.from('x'));
    await expect(store.put('a/b', Buffer.from('y'))).rejects.toMatchObject({
      code: ObjectStoreErrorCode.ObjectKeyConflict,
    });
    await store.put('c/d', Buffer.from('y'));
    await expect(store.put('c', Buffer.from('x'))).rejects.toMatchObject({
      code: ObjectStoreErrorCode.ObjectKeyConflict,
    });
    expect(await filesUnder(root)).toEqual(['a', 'c/d']);
  });

  describe('temp files', () => {
    it('an unfinished put is invisible: no list entry, no object, and its temp file goes when it fails', async () => {
      const body = new PassThrough();
      const put = store.put('up/load', body);
      body.write(Buffer.alloc(64 * 1024, 1));
      const [temp] = await waitFor(async () => {
        const files = await filesUnder(root);
        return files.length > 0 && files;
      });
      expect(temp).toMatch(/^up\/load~tmp~[0-9a-f]{16}$/);
      expect(await store.list('')).toEqual({ keys: [], nextCursor: null });
      expect(await store.exists('up/load')).toBe(false);
      await expect(store.get('up/load')).rejects.toBeInstanceOf(ObjectNotFound);

      body.end(Buffer.alloc(10, 2));
      expect(await put).toEqual({ key: 'up/load', size: 64 * 1024 + 10 });
      expect(await filesUnder(root)).toEqual(['up/load']);

      await expect(store.put('up/broken', failingAfter(3 * 1024 * 1024, new Error('cut')))).rejects.toThrow(
        'cut',
      );
      expect(await filesUnder(root)).toEqual(['up/load']);
    });

    it('removes a crashed writer’s leftovers older than the limit when it opens', async () => {
      await store.put('x/kept', Buffer.from('kept'), { metadata: { a: 'b' } });
      await mkdir(path.join(root, 'x/y'), { recursive: true });
      const stale = ['x/dead~tmp~0123456789abcdef', 'x/y/z~meta~tmp~0123456789abcdef', 'x/orphan~meta'];
      const fresh = ['x/live~tmp~fedcba9876543210'];
      const twoHoursAgo = new Date(Date.now() - 2 * 60 * 60 * 1000);
      for (const file of [...stale, ...fresh]) await writeFile(path.join(root, file), 'partial');
      for (const file of [...stale, 'x/kept', 'x/kept~meta'])
        await utimes(path.join(root, file), twoHoursAgo, twoHoursAgo);

      const reopened = await FilesystemObjectStore.open({ root });
      expect(await filesUnder(root)).toEqual(['x/kept', 'x/kept~meta', 'x/live~tmp~fedcba9876543210']);
      expect((await reopened.list('')).keys.map((k) => k.key)).toEqual(['x/kept']);
      expect(await reopened.removeStaleTempFiles(0)).toBe(1);
    });
  });

  describe('symlinks inside the root are never followed', () => {
    let outside: string;
    beforeEach(async () => {
      outside = await tempDir();
      await writeFile(path.join(outside, 'secret'), 'do not touch');
      await symlink(outside, path.join(root, 'evil-dir'));
      await symlink(path.join(outside, 'secret'), path.join(root, 'evil-file'));
    });
    const outsideIntact = async () => {
      expect(await readdir(outside)).toEqual(['secret']);
      expect(await readFile(path.join(outside, 'secret'), 'utf8')).toBe('do not touch');
    };

    it('reads through or at a symlink find nothing', async () => {
      for (const key of ['evil-dir/secret', 'evil-file']) {
        await expect(store.get(key)).rejects.toBeInstanceOf(ObjectNotFound);
        await expect(store.get(key, { start: 0, end: 3 })).rejects.toBeInstanceOf(ObjectNotFound);
        expect(await store.head(key)).toBeNull();
        expect(await store.exists(key)).toBe(false);
      }
      expect(await store.list('')).toEqual({ keys: [], nextCursor: null });
      expect(await store.list('evil-dir/')).toEqual({ keys: [], nextCursor: null });
    });

    it('deletes leave the target alone', async () => {
      await store.delete('evil-dir/secret');
      await store.delete('evil-file');
      expect(await store.deletePrefix('evil')).toBe(0);
      await outsideIntact();
      expect((await stat(path.join(root, 'evil-file'))).isFile()).toBe(true);
    });

    it('a put through a symlinked directory is refused; a put at a symlink replaces the link, not its target', async () => {
      await expect(store.put('evil-dir/new', Buffer.from('x'))).rejects.toMatchObject({
        code: ObjectStoreErrorCode.ObjectKeyConflict,
      });
      await expect(store.put('evil-dir/secret', Buffer.from('x'))).rejects.toMatchObject({
        code: ObjectStoreErrorCode.ObjectKeyConflict,
      });
      await store.put('evil-file', Buffer.from('replaced'));
      expect((await readAll(await store.get('evil-file'))).toString()).toBe('replaced');
      await outsideIntact();
    });
  });
});
