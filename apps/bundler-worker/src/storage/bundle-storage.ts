import { Buffer } from 'node:buffer';
import { LIMITS } from '@imagemart/bundle-format';
import { ObjectStoreErrorCode, isObjectStoreError, type ObjectStore } from '@imagemart/object-store';

/**
 * Reads a small object (a manifest) whole, or undefined when there is none. At most `limit` + 1
 * bytes are read, so an oversized object is never held in memory: what comes back is then
 * longer than `limit`, which the manifest parser refuses as ManifestTooLarge.
 */
export async function readObject(
  store: ObjectStore,
  key: string,
  limit: number = LIMITS.manifestBytes,
): Promise<Buffer | undefined> {
  let stream;
  try {
    stream = await store.get(key, { start: 0, end: limit });
  } catch (err) {
    if (isObjectStoreError(err, ObjectStoreErrorCode.ObjectNotFound)) return undefined;
    // A range on an empty object is "past the end": the object is there, and empty.
    if (isObjectStoreError(err, ObjectStoreErrorCode.InvalidRange)) return Buffer.alloc(0);
    throw err;
  }
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const data = chunk as Buffer;
    chunks.push(data);
    size += data.length;
    if (size > limit) break;
  }
  if (!stream.destroyed) stream.destroy();
  return Buffer.concat(chunks);
}
