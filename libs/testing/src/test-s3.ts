import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TestS3Server {
  /** `http://127.0.0.1:<port>`: use with `forcePathStyle: true`. */
  endpoint: string;
  region: string;
  /** A fresh, empty bucket. */
  bucket: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Closes the server and removes its directory. */
  stop(): Promise<void>;
}

// The part of s3rver 3.x used here (it ships no types).
interface S3rver {
  configureBuckets(): Promise<unknown>;
  /** The Koa request handler. */
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
}
type S3rverConstructor = new (options: {
  directory: string;
  silent: boolean;
  configureBuckets: { name: string }[];
}) => S3rver;

/**
 * A real S3-protocol server (s3rver) on 127.0.0.1 with a free port, a temp directory and a fresh
 * bucket, for tests of S3 code with the real AWS SDK (signatures checked, multipart included).
 * Credentials are s3rver's fixed `S3RVER`/`S3RVER`.
 *
 * s3rver 3.7 lacks two multipart calls that S3 has; this server adds them, on s3rver's own upload
 * files, so that tests can prove a failed upload leaves nothing behind:
 * AbortMultipartUpload (`DELETE /bucket/key?uploadId=`) and ListMultipartUploads (`GET /bucket?uploads`).
 */
export async function startTestS3Server(): Promise<TestS3Server> {
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;
  const directory = await mkdtemp(path.join(tmpdir(), 'imagemart-s3-'));
  const bucket = `test-${randomBytes(6).toString('hex')}`;
  const s3rver = new S3rver({ directory, silent: true, configureBuckets: [{ name: bucket }] });
  await s3rver.configureBuckets();
  const handle = s3rver.callback();
  const multipart = multipartExtras(directory);

  const server = createServer((req, res) => {
    multipart(req, res).then(
      (handled) => handled || handle(req, res),
      (err: unknown) => res.writeHead(500).end(String(err)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject).listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    region: 'us-east-1',
    bucket,
    accessKeyId: 'S3RVER',
    secretAccessKey: 'S3RVER',
    async stop() {
      // Clients keep idle keep-alive sockets open; close them so that close() returns.
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await rm(directory, { recursive: true, force: true });
    },
  };
}

/**
 * Abort and list of multipart uploads, over s3rver's store
 * (`<dir>/<bucket>/._S3rver_uploads/<uploadId>/`). Unsigned: this is a loopback test server.
 */
function multipartExtras(directory: string) {
  const uploadsOf = (bucket: string) => path.join(directory, bucket, '._S3rver_uploads');
  return async (req: IncomingMessage, res: ServerResponse): Promise<boolean> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const [bucket = '', ...rest] = url.pathname.slice(1).split('/');
    const key = rest.join('/');
    // Any bucket the tests made; the name pattern also keeps paths inside the directory.
    if (!/^[a-z0-9-]{3,63}$/.test(bucket)) return false;
    const uploadId = url.searchParams.get('uploadId');
    if (req.method === 'DELETE' && key !== '' && uploadId !== null) {
      if (!/^[0-9a-f]{32}$/.test(uploadId) || !(await isDir(path.join(uploadsOf(bucket), uploadId)))) {
        res.writeHead(404, { 'content-type': 'application/xml' }).end(s3Error('NoSuchUpload'));
      } else {
        await rm(path.join(uploadsOf(bucket), uploadId), { recursive: true });
        res.writeHead(204).end();
      }
      return true;
    }
    if (req.method === 'GET' && key === '' && url.searchParams.has('uploads')) {
      const ids = await readdir(uploadsOf(bucket)).catch(() => []);
      const uploads = await Promise.all(
        ids.map(async (id) => {
          const uploadKey = await readFile(path.join(uploadsOf(bucket), id, 'key'), 'utf8');
          return `<Upload><Key>${xml(uploadKey)}</Key><UploadId>${xml(id)}</UploadId></Upload>`;
        }),
      );
      res
        .writeHead(200, { 'content-type': 'application/xml' })
        .end(
          '<?xml version="1.0" encoding="UTF-8"?><ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
            `<Bucket>${xml(bucket)}</Bucket><IsTruncated>false</IsTruncated>${uploads.join('')}</ListMultipartUploadsResult>`,
        );
      return true;
    }
    return false;
  };
}

const isDir = (p: string) =>
  stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
const s3Error = (code: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message></Error>`;
