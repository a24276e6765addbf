import { createHash, randomBytes } from 'node:crypto';
import { requestContext } from '@imagemart/observability';

/**
 * A new upload id, `upl-` + 17 hex digits. Inside a request it derives from the request id and the
 * image, so a request that runs twice (a reclaimed RPC) finds the upload its first run created.
 */
export function newUploadId(imageId: string): string {
  const requestId = requestContext.requestId();
  const bytes = requestId ? createHash('sha256').update(['upl', requestId, imageId].join('\u0000')).digest() : randomBytes(9);
  return `upl-${bytes.toString('hex').slice(0, 17)}`;
}
