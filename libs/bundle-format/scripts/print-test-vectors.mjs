/**
 * Prints the "Test vectors" section of docs/bundle-format.md from the fixture inputs and the
 * doc's own keys (new keys if the doc has none yet). Run after a deliberate format change:
 *   node --import tsx libs/bundle-format/scripts/print-test-vectors.mjs > /tmp/vectors.md
 * then paste it over the section; test-vectors.spec.ts checks the doc against the code.
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Buffer } from 'node:buffer';
import { bundle } from '../src/bundle.writer.ts';
import { exportKeyPem } from '../src/keys.crypto.ts';
import { signatureInput } from '../src/manifest.signature.ts';
import { openPart, partNonce } from '../src/part.cipher.ts';
import { parseManifest } from '../src/manifest.xml.ts';
import {
  VECTOR_CASES,
  VECTOR_DATA_KEY,
  VECTOR_IMAGE,
  VECTOR_SALT,
  readVectorBlocks,
  vectorOptions,
} from '../src/test-vectors.fixture.ts';
import { sha256 } from '../src/bundle.fixture.ts';

const doc = await readFile(new URL('../../../docs/bundle-format.md', import.meta.url), 'utf8').catch(
  () => '',
);
const blocks = readVectorBlocks(doc);
const wrapPem =
  blocks.get('keys wrapping-private') ??
  exportKeyPem(generateKeyPairSync('rsa', { modulusLength: 3072 }).privateKey);
// Ed25519 from a fixed seed: PKCS#8 prefix + SHA-256("imagemart test vector signing key").
const seed = Buffer.from(sha256(Buffer.from('imagemart test vector signing key')), 'hex');
const signPem =
  blocks.get('keys signing-private') ??
  exportKeyPem(
    createPrivateKey({
      key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]),
      format: 'der',
      type: 'pkcs8',
    }),
  );
const ownerPem =
  blocks.get('keys owner-private') ??
  exportKeyPem(generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
const keys = {
  wrapping: { privateKey: createPrivateKey(wrapPem), publicKey: createPublicKey(wrapPem) },
  signing: { privateKey: createPrivateKey(signPem), publicKey: createPublicKey(signPem) },
};
const ownerPublicKey = createPublicKey(ownerPem);

const hexLines = (data) =>
  data
    .toString('hex')
    .match(/.{1,64}/g)
    ?.join('\n') ?? '';
const fence = (group, name, body, lang = 'text') =>
  `<!-- vector ${group} ${name} -->\n\`\`\`${lang}\n${body.endsWith('\n') ? body : `${body}\n`}\`\`\`\n`;
const out = [];
out.push(fence('keys', 'wrapping-private', wrapPem, 'pem'));
out.push(fence('keys', 'signing-private', signPem, 'pem'));
out.push(fence('keys', 'owner-private', ownerPem, 'pem'));
out.push(
  `Image: ${VECTOR_IMAGE.length} bytes, SHA-256 \`${sha256(VECTOR_IMAGE)}\`. Data key \`${VECTOR_DATA_KEY.toString('hex')}\`, salt \`${VECTOR_SALT.toString('hex')}\`.\n`,
);

for (const { id, compression, level, owner } of VECTOR_CASES) {
  const parts = [];
  const result = await bundle(
    [VECTOR_IMAGE],
    vectorOptions(
      keys,
      compression,
      level,
      async (p) => void parts.push(p),
      owner ? ownerPublicKey : undefined,
    ),
  );
  // The doc's manifest keeps its wrapped key (RSA-OAEP is randomized): re-run with it if present.
  const docXml = blocks.get(`${id} manifest`);
  const manifestXml = docXml ?? result.manifestXml;
  const compressed = Buffer.concat(
    parts.map((p) => openPart(VECTOR_DATA_KEY, VECTOR_SALT, p.index, p.index === parts.length - 1, p.data)),
  );
  out.push(
    `### Vector \`${id}\` (${compression} level ${level}${owner ? ', wrapped for the owner key too' : ''})\n`,
  );
  out.push(fence(id, 'compressed', hexLines(compressed)));
  for (const p of parts) {
    const last = p.index === parts.length - 1;
    out.push(
      `Part ${p.index}: \`${p.filename}\`, ${p.size} bytes, nonce \`${partNonce(VECTOR_SALT, p.index).toString('hex')}\`, AAD \`${last ? '01' : '00'}\`, SHA-256 \`${p.digest}\`\n`,
    );
    out.push(fence(id, `part-${p.index}`, hexLines(p.data)));
  }
  out.push(fence(id, 'manifest', manifestXml, 'xml'));
  const manifest = parseManifest(manifestXml);
  out.push(fence(id, 'signature-input', signatureInput(manifest, manifest.signature)));
}
console.log(out.join('\n'));
