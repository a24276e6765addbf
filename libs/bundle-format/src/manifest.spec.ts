import { Buffer } from 'node:buffer';
import { beforeAll, describe, expect, it } from 'vitest';
import { LIMITS } from './bundle-format.constants.js';
import { BundleErrorCode, BundleFormatError } from './bundle-format.exception.js';
import { sha256 } from './bundle.fixture.js';
import { generatePlatformKeys, keyFingerprint, wrapDataKey, type PlatformKeys } from './keys.crypto.js';
import {
  SIGNATURE_INPUT_HEADER,
  signManifest,
  signatureInput,
  verifyManifestSignature,
} from './manifest.signature.js';
import type { Manifest, UnsignedManifest } from './manifest.types.js';
import { buildManifest, parseManifest } from './manifest.xml.js';

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(BundleFormatError);
    return (error as BundleFormatError).code;
  }
  return undefined;
}

describe('the manifest', () => {
  let keys: PlatformKeys;
  let rsaSigner: PlatformKeys;
  let unsigned: UnsignedManifest;
  let manifest: Manifest;
  let xml: string;

  beforeAll(async () => {
    [keys, rsaSigner] = await Promise.all([generatePlatformKeys(), generatePlatformKeys({ signing: 'rsa' })]);
    unsigned = {
      formatVersion: 1,
      bundler: { name: 'imagemart-bundle-format', version: '1.0.0' },
      machineConfiguration: {
        architecture: 'arm64',
        virtualizationType: 'hvm',
        ramdiskId: 'ari-00000001',
        blockDeviceMapping: [{ virtual: 'root', device: '/dev/xvda' }],
        productCodes: ['ABCD1234', 'pc-2'],
      },
      image: {
        name: `Tom & Jerry's <"quoted"> image — ünïcödé 🚀`,
        version: '2024.10-1',
        description: 'a & b < c > d " e \' f',
        user: '000000000042',
        type: 'machine',
        digest: sha256(Buffer.from('image')),
        size: 123456789,
        bundledSize: 2 * 1024 * 1024 + 17,
      },
      compression: { algorithm: 'gzip', blockSize: 4 * 1024 * 1024 },
      encryption: {
        algorithm: 'AES-256-GCM',
        partSize: 1024 * 1024,
        nonceScheme: 'salt32-index64be',
        salt: '0a0b0c0d',
        keyWrapping: {
          algorithm: 'RSA-OAEP-SHA256',
          keyId: keyFingerprint(keys.wrapping.publicKey),
          wrappedKey: wrapDataKey(Buffer.alloc(32, 7), keys.wrapping.publicKey),
        },
      },
      parts: [0, 1, 2].map((i) => ({
        index: i,
        filename: `image.part.000${i}`,
        digest: sha256(Buffer.from([i])),
        size: i === 2 ? 17 : 1024 * 1024,
      })),
    };
    manifest = signManifest(unsigned, keys.signing.privateKey);
    xml = buildManifest(manifest);
  });

  it('round-trips through XML, awkward characters included', () => {
    expect(parseManifest(xml)).toEqual(manifest);
    expect(parseManifest(Buffer.from(xml))).toEqual(manifest);
    expect(xml).toContain('<digest algorithm="SHA256">');
    expect(xml).toContain('<parts count="3">');
    expect(xml).toContain('Tom &amp; Jerry&apos;s &lt;&quot;quoted&quot;&gt;');
  });

  it('leaves out absent optional fields, and reads them back as absent', () => {
    const bare = signManifest(
      {
        ...unsigned,
        machineConfiguration: { architecture: 'i386', blockDeviceMapping: [], productCodes: [] },
      },
      keys.signing.privateKey,
    );
    const text = buildManifest(bare);
    expect(text).not.toContain('kernel_id');
    expect(text).not.toContain('block_device_mapping');
    expect(parseManifest(text)).toEqual(bare);
  });

  it('signs with Ed25519 or RSA-PSS, picked from the key', () => {
    expect(manifest.signature.algorithm).toBe('Ed25519');
    expect(() => verifyManifestSignature(parseManifest(xml), keys.signing.publicKey)).not.toThrow();
    const rsa = signManifest(unsigned, rsaSigner.signing.privateKey);
    expect(rsa.signature.algorithm).toBe('RSA-PSS-SHA256');
    expect(() =>
      verifyManifestSignature(parseManifest(buildManifest(rsa)), rsaSigner.signing.publicKey),
    ).not.toThrow();
    expect(codeOf(() => verifyManifestSignature(rsa, keys.signing.publicKey))).toBe(
      BundleErrorCode.SignatureInvalid,
    );
    expect(codeOf(() => verifyManifestSignature(manifest, rsaSigner.signing.publicKey))).toBe(
      BundleErrorCode.SignatureInvalid,
    );
  });

  it('covers every field: any change breaks the signature', () => {
    const changes: ((m: Manifest) => void)[] = [
      (m) => (m.machineConfiguration.productCodes = ['ABCD1234']),
      (m) => (m.machineConfiguration.kernelId = 'aki-1'),
      (m) => (m.machineConfiguration.blockDeviceMapping[0].device = '/dev/xvdb'),
      (m) => (m.image.name += '!'),
      (m) => (m.image.user = '000000000043'),
      (m) => (m.image.size += 1),
      (m) => (m.encryption.salt = '0a0b0c0e'),
      (m) => (m.compression.algorithm = 'zstd'),
      (m) => (m.parts[1].digest = sha256(Buffer.from('x'))),
      (m) => m.parts.reverse().forEach((p, i) => (p.index = i)),
      (m) => m.parts.pop(),
    ];
    for (const change of changes) {
      const copy = structuredClone(manifest);
      change(copy);
      expect(codeOf(() => verifyManifestSignature(copy, keys.signing.publicKey))).toBe(
        BundleErrorCode.SignatureInvalid,
      );
    }
  });

  it('has a canonical signature input of one key=value line per field', () => {
    const input = signatureInput(manifest, manifest.signature);
    const lines = input.split('\n');
    expect(lines[0]).toBe(SIGNATURE_INPUT_HEADER);
    expect(lines.at(-1)).toBe('');
    expect(lines).toContain('machine.kernel_id=');
    expect(lines).toContain('machine.block_device_mapping.0=root /dev/xvda');
    expect(lines).toContain(`parts.2=17 ${manifest.parts[2].digest} image.part.0002`);
  });

  describe('parsing is hardened', () => {
    const expectCode = (text: string | Buffer, code: string) =>
      expect(codeOf(() => parseManifest(text))).toBe(code);

    it('refuses DOCTYPE, entity declarations and external entities', () => {
      const billionLaughs = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]><manifest>&lol2;</manifest>`;
      const xxe = `<?xml version="1.0"?><!DOCTYPE m [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><manifest><version>&xxe;</version></manifest>`;
      expectCode(billionLaughs, BundleErrorCode.ManifestMalformed);
      expectCode(xxe, BundleErrorCode.ManifestMalformed);
      expectCode(
        xml.replace('<manifest>', '<!doctype manifest SYSTEM "http://evil/x.dtd"><manifest>'),
        BundleErrorCode.ManifestMalformed,
      );
      expectCode(xml.replace('<manifest>', '<manifest><![CDATA[x]]>'), BundleErrorCode.ManifestMalformed);
    });

    it('refuses entity references other than the five predefined ones', () => {
      expectCode(xml.replace('<name>', '<name>&#65;'), BundleErrorCode.ManifestMalformed);
      expectCode(xml.replace('<name>', '<name>&nbsp;'), BundleErrorCode.ManifestMalformed);
    });

    it('limits the size before parsing', () => {
      const huge = 'x'.repeat(LIMITS.manifestBytes + 1);
      expectCode(huge, BundleErrorCode.ManifestTooLarge);
      expectCode(Buffer.from(huge), BundleErrorCode.ManifestTooLarge);
    });

    it('refuses XML that is not well formed, not UTF-8, or has two roots', () => {
      expectCode(xml.replace('</manifest>', ''), BundleErrorCode.ManifestMalformed);
      expectCode(Buffer.from([0x3c, 0xff, 0xfe, 0x3e]), BundleErrorCode.ManifestMalformed);
      expectCode(`${xml}<manifest/>`, BundleErrorCode.ManifestMalformed);
      expectCode('', BundleErrorCode.ManifestMalformed);
    });

    it('refuses unknown, repeated and missing elements', () => {
      expectCode(xml.replace('<image>', '<image><extra>1</extra>'), BundleErrorCode.ManifestMalformed);
      expectCode(xml.replace('<user>', '<user>1</user><user>'), BundleErrorCode.ManifestMalformed);
      expectCode(xml.replace(/<signature[^>]*>[^<]*<\/signature>/, ''), BundleErrorCode.ManifestMalformed);
      expectCode(
        xml.replace('<digest algorithm="SHA256">', '<digest algorithm="SHA256" extra="1">'),
        BundleErrorCode.ManifestMalformed,
      );
    });

    it('validates every field', () => {
      expectCode(
        xml.replace('<architecture>arm64<', '<architecture>sparc<'),
        BundleErrorCode.ManifestMalformed,
      );
      expectCode(xml.replace('<user>000000000042<', '<user>42<'), BundleErrorCode.ManifestMalformed);
      expectCode(xml.replace('<size>123456789<', '<size>-1<'), BundleErrorCode.ManifestMalformed);
      expectCode(xml.replace('<size>123456789<', '<size>1e9<'), BundleErrorCode.ManifestMalformed);
      expectCode(xml.replace('<parts count="3">', '<parts count="4">'), BundleErrorCode.ManifestMalformed);
      expectCode(xml.replace('<part index="1">', '<part index="5">'), BundleErrorCode.ManifestMalformed);
      expectCode(
        xml.replace('<filename>image.part.0001<', '<filename>../etc/passwd<'),
        BundleErrorCode.ManifestMalformed,
      );
      expectCode(
        xml.replace('<filename>image.part.0001<', '<filename>image.part.0000<'),
        BundleErrorCode.ManifestMalformed,
      );
      expectCode(
        xml.replace(`<bundled_size>${2 * 1024 * 1024 + 17}<`, `<bundled_size>${3 * 1024 * 1024 + 1}<`),
        BundleErrorCode.ManifestMalformed,
      );
      expectCode(xml.replace('<salt>0a0b0c0d<', '<salt>0a0b<'), BundleErrorCode.ManifestMalformed);
      expectCode(xml.replace(manifest.parts[0].digest, 'ABC'), BundleErrorCode.ManifestMalformed);
      expectCode(xml.replace('<description>a', '<description>&#x1b;a'), BundleErrorCode.ManifestMalformed);
    });

    it('limits the part count', () => {
      const many = Array.from({ length: LIMITS.parts + 1 }, (_, i) => `<part index="${i}"/>`).join('');
      expectCode(
        xml.replace(
          /<parts count="3">[\s\S]*<\/parts>/,
          `<parts count="${LIMITS.parts + 1}">${many}</parts>`,
        ),
        BundleErrorCode.ManifestMalformed,
      );
    });

    it('says so when the version or an algorithm is unknown', () => {
      expectCode(
        xml.replace('<version>1</version>', '<version>2</version>'),
        BundleErrorCode.UnsupportedVersion,
      );
      expectCode(
        xml.replace('<algorithm>gzip</algorithm>', '<algorithm>brotli</algorithm>'),
        BundleErrorCode.UnsupportedAlgorithm,
      );
      expectCode(
        xml.replace('<algorithm>AES-256-GCM</algorithm>', '<algorithm>AES-128-CBC</algorithm>'),
        BundleErrorCode.UnsupportedAlgorithm,
      );
      expectCode(
        xml.replace('signature algorithm="Ed25519"', 'signature algorithm="DSA"'),
        BundleErrorCode.UnsupportedAlgorithm,
      );
      expectCode(
        xml.replace('<digest algorithm="SHA256">', '<digest algorithm="SHA1">'),
        BundleErrorCode.UnsupportedAlgorithm,
      );
    });
  });

  it('refuses to build or sign an invalid manifest', () => {
    const bad = structuredClone(manifest);
    bad.image.name = 'line\nbreak';
    expect(codeOf(() => buildManifest(bad))).toBe(BundleErrorCode.InvalidParameter);
    expect(
      codeOf(() =>
        signManifest({ ...unsigned, image: { ...unsigned.image, name: ' padded' } }, keys.signing.privateKey),
      ),
    ).toBe(BundleErrorCode.InvalidParameter);
    expect(codeOf(() => signManifest(unsigned, keys.signing.publicKey))).toBe(BundleErrorCode.InvalidKey);
  });
});
