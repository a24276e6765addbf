import { Buffer } from 'node:buffer';
import { beforeAll, describe, expect, it } from 'vitest';
import { BundleErrorCode, BundleFormatError } from './bundle-format.exception.js';
import { sha256 } from './bundle.fixture.js';
import { generatePlatformKeys, keyFingerprint, wrapDataKey, type PlatformKeys } from './keys.crypto.js';
import { signManifest, signatureInput, verifyManifestSignature } from './manifest.signature.js';
import type { Manifest, UnsignedManifest } from './manifest.types.js';
import { buildManifest, parseManifest } from './manifest.xml.js';

/**
 * The reader's duties that docs/bundle-format.md settles beyond XML itself: the characters a
 * manifest may hold, what white space is trimmed, the encoding declaration, processing
 * instructions, comments, empty elements, part names, lengths in code points, the order of the
 * checks, and the signature's length.
 */

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(BundleFormatError);
    return (error as BundleFormatError).code;
  }
  return undefined;
}

const expectCode = (text: string | Buffer, code: string) =>
  expect(codeOf(() => parseManifest(text))).toBe(code);

describe('the manifest profile', () => {
  let keys: PlatformKeys;
  let unsigned: UnsignedManifest;
  let manifest: Manifest;
  let xml: string;

  const signed = (change: (m: UnsignedManifest) => void): UnsignedManifest => {
    const copy = structuredClone(unsigned);
    change(copy);
    return copy;
  };

  beforeAll(async () => {
    keys = await generatePlatformKeys();
    unsigned = {
      formatVersion: 1,
      bundler: { name: 'imagemart-bundle-format', version: '1.0.0' },
      machineConfiguration: {
        architecture: 'x86_64',
        virtualizationType: 'paravirtual',
        kernelId: 'aki-00000001',
        ramdiskId: 'ari-00000001',
        blockDeviceMapping: [{ virtual: 'root', device: '/dev/xvda' }],
        productCodes: ['abcd1234'],
      },
      image: {
        name: 'profile test',
        version: '1.0',
        description: 'a description',
        user: '000000000042',
        type: 'machine',
        digest: sha256(Buffer.from('image')),
        size: 1000,
        bundledSize: 256 + 17,
      },
      compression: { algorithm: 'zstd', blockSize: 1024 },
      encryption: {
        algorithm: 'AES-256-GCM',
        partSize: 256,
        nonceScheme: 'salt32-index64be',
        salt: '0a0b0c0d',
        keyWrapping: {
          algorithm: 'RSA-OAEP-SHA256',
          keyId: keyFingerprint(keys.wrapping.publicKey),
          wrappedKey: wrapDataKey(Buffer.alloc(32, 7), keys.wrapping.publicKey),
        },
      },
      parts: [0, 1].map((i) => ({
        index: i,
        filename: `image.part.000${i}`,
        digest: sha256(Buffer.from([i])),
        size: i === 1 ? 17 : 256,
      })),
    };
    manifest = signManifest(unsigned, keys.signing.privateKey);
    xml = buildManifest(manifest);
  });

  describe('part names: one file name beside the manifest, the object store key segment rule', () => {
    it.each([
      ['.', '.'],
      ['..', '..'],
      ['201 characters', 'p'.repeat(201)],
      ['the manifest', 'manifest.xml'],
      ['the manifest in capitals', 'MANIFEST.XML'],
      ['a path', 'a/b'],
    ])('refuses %s as a part name, reading and writing', (_, name) => {
      expectCode(
        xml.replace('<filename>image.part.0001<', `<filename>${name}<`),
        BundleErrorCode.ManifestMalformed,
      );
      const bad = signed((m) => (m.parts[1].filename = name));
      expect(codeOf(() => signManifest(bad, keys.signing.privateKey))).toBe(BundleErrorCode.InvalidParameter);
    });

    it('accepts 200 characters, and refuses two names that differ only in letter case', () => {
      const long = signManifest(
        signed((m) => (m.parts[1].filename = 'p'.repeat(200))),
        keys.signing.privateKey,
      );
      expect(parseManifest(buildManifest(long)).parts[1].filename).toBe('p'.repeat(200));
      expectCode(
        xml.replace('<filename>image.part.0001<', '<filename>IMAGE.part.0000<'),
        BundleErrorCode.ManifestMalformed,
      );
    });
  });

  describe('characters', () => {
    it.each(['\uFFFE', '\uFFFF', '\uD800'])('refuses %j in a value, writing and reading', (char) => {
      const bad = signed((m) => (m.image.description = `bad ${char} description`));
      expect(codeOf(() => signManifest(bad, keys.signing.privateKey))).toBe(BundleErrorCode.InvalidParameter);
      expectCode(xml.replace('a description', `bad ${char} description`), BundleErrorCode.ManifestMalformed);
    });

    it('refuses characters XML forbids anywhere, comments included', () => {
      expectCode(xml.replace('<image>', '<image><!-- \uFFFF -->'), BundleErrorCode.ManifestMalformed);
      expectCode(xml.replace('<image>', '<image>\u0000'), BundleErrorCode.ManifestMalformed);
    });

    it('counts lengths in code points, not UTF-16 units', () => {
      const rockets = '🚀'.repeat(128); // 256 UTF-16 units, 128 characters
      const ok = signManifest(
        signed((m) => (m.image.name = rockets)),
        keys.signing.privateKey,
      );
      expect(parseManifest(buildManifest(ok)).image.name).toBe(rockets);
      const long = signed((m) => (m.image.name = `${rockets}x`));
      expect(codeOf(() => signManifest(long, keys.signing.privateKey))).toBe(
        BundleErrorCode.InvalidParameter,
      );
    });
  });

  describe('white space', () => {
    it('trims space, tab, CR and LF around values, and nothing else', () => {
      const spaced = xml.replace('<name>profile test</name>', '<name>\r\n\t profile test \n</name>');
      expect(parseManifest(spaced).image.name).toBe('profile test');
      expect(() => verifyManifestSignature(parseManifest(spaced), keys.signing.publicKey)).not.toThrow();
    });

    it.each([
      ['NBSP', '\u00A0'],
      ['U+3000', '\u3000'],
      ['U+FEFF', '\uFEFF'],
      ['U+2028', '\u2028'],
    ])('refuses a value that starts or ends with %s, instead of dropping it', (_, space) => {
      expectCode(
        xml.replace('<name>profile test<', `<name>${space}profile test<`),
        BundleErrorCode.ManifestMalformed,
      );
      expectCode(
        xml.replace('<name>profile test<', `<name>profile test${space}<`),
        BundleErrorCode.ManifestMalformed,
      );
      const bad = signed((m) => (m.image.name = `${space}profile test`));
      expect(codeOf(() => signManifest(bad, keys.signing.privateKey))).toBe(BundleErrorCode.InvalidParameter);
    });

    it('does not trim attribute values', () => {
      expectCode(
        xml.replace('<digest algorithm="SHA256">', '<digest algorithm=" SHA256">'),
        BundleErrorCode.UnsupportedAlgorithm,
      );
    });
  });

  describe('the XML declaration, processing instructions and comments', () => {
    it('accepts a UTF-8 declaration in any letter case, or none', () => {
      expect(parseManifest(xml.replace('encoding="UTF-8"', "encoding='utf-8'"))).toEqual(manifest);
      expect(parseManifest(xml.replace(/^<\?xml[^>]*>\n/, ''))).toEqual(manifest);
      expect(parseManifest(xml.replace('encoding="UTF-8"', 'encoding="UTF-8" standalone="yes"'))).toEqual(
        manifest,
      );
    });

    it.each(['ISO-8859-1', 'UTF-16', 'windows-1252'])('refuses encoding="%s"', (encoding) => {
      expectCode(
        xml.replace('encoding="UTF-8"', `encoding="${encoding}"`),
        BundleErrorCode.ManifestMalformed,
      );
    });

    it('refuses processing instructions, and a declaration anywhere but at the start', () => {
      expectCode(xml.replace('<image>', '<image><?php echo 1; ?>'), BundleErrorCode.ManifestMalformed);
      expectCode(
        xml.replace('<manifest>', '<?xml-stylesheet href="x"?><manifest>'),
        BundleErrorCode.ManifestMalformed,
      );
      expectCode(` ${xml}`, BundleErrorCode.ManifestMalformed);
    });

    it('reads comments as comments: "<!", "<?" and "&" inside one are text', () => {
      const commented = xml
        .replace('<image>', '<image><!-- <!DOCTYPE x> <?pi?> &nbsp; -->')
        .replace('</manifest>', '</manifest>\n<!-- the end -->');
      expect(parseManifest(commented)).toEqual(manifest);
      expectCode(xml.replace('<image>', '<image><!-- a -- b -->'), BundleErrorCode.ManifestMalformed);
      expectCode(xml.replace('<image>', '<image><!-- open'), BundleErrorCode.ManifestMalformed);
    });
  });

  describe('empty elements: an optional element without a value is left out', () => {
    it.each([
      ['<ramdisk_id/>', '<ramdisk_id>ari-00000001</ramdisk_id>', '<ramdisk_id/>'],
      ['<ramdisk_id></ramdisk_id>', '<ramdisk_id>ari-00000001</ramdisk_id>', '<ramdisk_id></ramdisk_id>'],
      [
        '<description> </description>',
        '<description>a description</description>',
        '<description> </description>',
      ],
      ['<product_codes/>', /<product_codes>[\s\S]*?<\/product_codes>/, '<product_codes/>'],
      [
        '<block_device_mapping/>',
        /<block_device_mapping>[\s\S]*?<\/block_device_mapping>/,
        '<block_device_mapping/>',
      ],
      ['<product_code/>', '<product_code>abcd1234</product_code>', '<product_code/>'],
    ])('refuses %s', (_, from, to) => {
      expectCode(xml.replace(from, to), BundleErrorCode.ManifestMalformed);
    });
  });

  describe('the order of the checks', () => {
    it('judges the version before the rest of the schema', () => {
      expectCode(
        xml
          .replace('<version>1</version>', '<version>2</version><future>x</future>')
          .replace('<user>', '<user>x'),
        BundleErrorCode.UnsupportedVersion,
      );
    });

    it('judges algorithms before the rest of the schema', () => {
      expectCode(
        xml.replace('<algorithm>zstd</algorithm>', '<algorithm>brotli</algorithm><level>11</level>'),
        BundleErrorCode.UnsupportedAlgorithm,
      );
      expectCode(
        xml
          .replace('<user>000000000042<', '<user>x<')
          .replace('algorithm="RSA-OAEP-SHA256"', 'algorithm="RSA-OAEP-SHA1"'),
        BundleErrorCode.UnsupportedAlgorithm,
      );
    });

    it('judges the profile before the version', () => {
      expectCode(
        xml.replace('<version>1</version>', '<version>2</version>').replace('<image>', '<image><?pi?>'),
        BundleErrorCode.ManifestMalformed,
      );
    });
  });

  describe('the signature length', () => {
    it('refuses a signature longer or shorter than the key makes, as SignatureInvalid', () => {
      const value = Buffer.from(manifest.signature.value, 'base64');
      for (const changed of [Buffer.concat([value, Buffer.from([0])]), value.subarray(0, 63)]) {
        const copy = structuredClone(manifest);
        copy.signature.value = changed.toString('base64');
        expect(codeOf(() => verifyManifestSignature(copy, keys.signing.publicKey))).toBe(
          BundleErrorCode.SignatureInvalid,
        );
      }
    });

    it('refuses a signature outside 64 to 1024 bytes when parsing', () => {
      const tooLong = Buffer.alloc(1025, 1).toString('base64');
      expectCode(xml.replace(manifest.signature.value, tooLong), BundleErrorCode.ManifestMalformed);
    });
  });

  describe("the owner's wrapped key", () => {
    it('is optional, read back, and covered by the signature only when present', () => {
      const owned = signManifest(
        signed(
          (m) =>
            (m.encryption.ownerKeyWrapping = {
              algorithm: 'RSA-OAEP-SHA256',
              keyId: keyFingerprint(keys.signing.publicKey),
              wrappedKey: wrapDataKey(Buffer.alloc(32, 7), keys.wrapping.publicKey),
            }),
        ),
        keys.signing.privateKey,
      );
      const text = buildManifest(owned);
      expect(text).toContain('<owner_wrapped_key algorithm="RSA-OAEP-SHA256"');
      expect(parseManifest(text)).toEqual(owned);
      expect(signatureInput(owned, owned.signature)).toContain('encryption.owner_key_wrapping.key_id=');
      expect(signatureInput(manifest, manifest.signature)).not.toContain('owner_key_wrapping');
      const changed = structuredClone(owned);
      changed.encryption.ownerKeyWrapping!.keyId = keyFingerprint(keys.wrapping.publicKey);
      expect(codeOf(() => verifyManifestSignature(changed, keys.signing.publicKey))).toBe(
        BundleErrorCode.SignatureInvalid,
      );
      const dropped = structuredClone(owned);
      delete dropped.encryption.ownerKeyWrapping;
      expect(codeOf(() => verifyManifestSignature(dropped, keys.signing.publicKey))).toBe(
        BundleErrorCode.SignatureInvalid,
      );
    });
  });
});
