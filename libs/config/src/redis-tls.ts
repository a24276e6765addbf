import { readFileSync } from 'node:fs';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const trusted = new Set<string>();

/**
 * Adds the CA certificates of a PEM file to those every TLS client of this process trusts (as
 * `NODE_EXTRA_CA_CERTS` would), so that every Redis connection, whichever code opened it (ioredis
 * directly, BullMQ, the RPC transport), verifies a `rediss://` server signed by a private CA.
 * Returns a sentence for the operator when the file is unusable; once per file.
 */
export function trustCaFile(file: string): string | undefined {
  if (trusted.has(file)) return undefined;
  let pem: string;
  try {
    pem = readFileSync(file, 'utf8');
  } catch (err) {
    return `cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
  }
  const certificates = pem.match(PEM_CERTIFICATE);
  if (!certificates) return `${file} holds no PEM certificate`;
  setDefaultCACertificates([...getCACertificates('default'), ...certificates]);
  trusted.add(file);
  return undefined;
}
