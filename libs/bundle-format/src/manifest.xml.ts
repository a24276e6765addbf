import { Buffer } from 'node:buffer';
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { DIGEST_ALGORITHM, FORMAT_VERSION, LIMITS } from './bundle-format.constants.js';
import { BundleErrorCode, BundleFormatError, describeError } from './bundle-format.exception.js';
import { FieldCheck, checkManifest, partSizes } from './manifest.schema.js';
import { COMPRESSION_ALGORITHMS, SIGNATURE_ALGORITHMS, type Manifest } from './manifest.types.js';

/**
 * The manifest as XML, with the EC2 AMI manifest's element names where they exist. The parser
 * reads a restricted profile of XML: UTF-8, at most LIMITS.manifestBytes, no DTD (so no entity
 * declarations, external entities or entity expansion), no CDATA, and no entity references but
 * the five predefined ones. Every element is checked against the schema; unknown ones are errors.
 */

const builder = new XMLBuilder({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  format: true,
  indentBy: '  ',
  processEntities: true,
  suppressEmptyNode: true,
});

const ARRAY_PATHS = new Set([
  'manifest.machine_configuration.block_device_mapping.mapping',
  'manifest.machine_configuration.product_codes.product_code',
  'manifest.image.parts.part',
]);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: true,
  htmlEntities: false,
  maxNestedTags: 16,
  isArray: (_name, path, _leaf, isAttribute) => isAttribute !== true && ARRAY_PATHS.has(String(path)),
});

/** The manifest's XML text. Validates every field first (InvalidParameter). */
export function buildManifest(manifest: Manifest): string {
  checkManifest(new FieldCheck(BundleErrorCode.InvalidParameter), manifest);
  const mc = manifest.machineConfiguration;
  const image = manifest.image;
  const enc = manifest.encryption;
  const digest = (hex: string) => ({ '@_algorithm': DIGEST_ALGORITHM, '#text': hex });
  return builder.build({
    '?xml': { '@_version': '1.0', '@_encoding': 'UTF-8' },
    manifest: {
      version: String(manifest.formatVersion),
      bundler: { name: manifest.bundler.name, version: manifest.bundler.version },
      machine_configuration: {
        architecture: mc.architecture,
        virtualization_type: mc.virtualizationType,
        kernel_id: mc.kernelId,
        ramdisk_id: mc.ramdiskId,
        block_device_mapping: mc.blockDeviceMapping.length
          ? { mapping: mc.blockDeviceMapping.map((m) => ({ virtual: m.virtual, device: m.device })) }
          : undefined,
        product_codes: mc.productCodes.length ? { product_code: mc.productCodes } : undefined,
      },
      image: {
        name: image.name,
        image_version: image.version,
        description: image.description,
        user: image.user,
        type: image.type,
        digest: digest(image.digest),
        size: String(image.size),
        bundled_size: String(image.bundledSize),
        compression: {
          algorithm: manifest.compression.algorithm,
          block_size: String(manifest.compression.blockSize),
        },
        encryption: {
          algorithm: enc.algorithm,
          part_size: String(enc.partSize),
          nonce_scheme: enc.nonceScheme,
          salt: enc.salt,
          wrapped_key: {
            '@_algorithm': enc.keyWrapping.algorithm,
            '@_key_id': enc.keyWrapping.keyId,
            '#text': enc.keyWrapping.wrappedKey,
          },
        },
        parts: {
          '@_count': String(manifest.parts.length),
          part: manifest.parts.map((p) => ({
            '@_index': String(p.index),
            filename: p.filename,
            digest: digest(p.digest),
          })),
        },
      },
      signature: {
        '@_algorithm': manifest.signature.algorithm,
        '@_key_id': manifest.signature.keyId,
        '#text': manifest.signature.value,
      },
    },
  });
}

function malformed(message: string, cause?: unknown): BundleFormatError {
  return new BundleFormatError(BundleErrorCode.ManifestMalformed, `the manifest is malformed: ${message}`, {
    cause,
  });
}

type XmlNode = Record<string, unknown>;

/** Typed, strict access to the parser's object tree; `path` names the element in errors. */
class Element {
  constructor(
    private readonly node: XmlNode,
    readonly path: string,
  ) {}

  static of(value: unknown, path: string): Element {
    if (value === '') return new Element({}, path); // an empty element: <x/>
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw malformed(`<${path}> must contain elements`);
    return new Element(value as XmlNode, path);
  }

  /** Fails on any child element or attribute not listed. */
  only(children: string[], attributes: string[] = []): this {
    for (const key of Object.keys(this.node)) {
      if (key.startsWith('@_') ? !attributes.includes(key.slice(2)) : !children.includes(key)) {
        const what = key.startsWith('@_')
          ? `attribute ${key.slice(2)}`
          : key === '#text'
            ? 'text'
            : `element <${key}>`;
        throw malformed(`unexpected ${what} in <${this.path}>`);
      }
    }
    return this;
  }

  private single(name: string): unknown {
    const value = this.node[name];
    if (Array.isArray(value)) throw malformed(`<${this.path}/${name}> appears more than once`);
    return value;
  }

  child(name: string): Element {
    const value = this.single(name);
    if (value === undefined) throw malformed(`<${this.path}> has no <${name}>`);
    return Element.of(value, `${this.path}/${name}`);
  }

  optionalChild(name: string): Element | undefined {
    return this.single(name) === undefined ? undefined : this.child(name);
  }

  list(name: string): Element[] {
    const value = this.node[name];
    if (value === undefined) return [];
    return (value as unknown[]).map((item, i) => Element.of(item, `${this.path}/${name}[${i}]`));
  }

  textList(name: string): string[] {
    const value = this.node[name];
    if (value === undefined) return [];
    return (value as unknown[]).map((item, i) => {
      if (typeof item !== 'string') throw malformed(`<${this.path}/${name}[${i}]> must hold text only`);
      return item;
    });
  }

  optionalText(name: string): string | undefined {
    const value = this.single(name);
    if (value === undefined) return undefined;
    if (typeof value !== 'string') throw malformed(`<${this.path}/${name}> must hold text only`);
    return value;
  }

  text(name: string): string {
    const value = this.optionalText(name);
    if (value === undefined) throw malformed(`<${this.path}> has no <${name}>`);
    return value;
  }

  /** Text of this element when it also has attributes (`<digest algorithm="SHA256">...`). */
  ownText(): string {
    const value = this.node['#text'];
    if (typeof value !== 'string') throw malformed(`<${this.path}> must hold text`);
    return value;
  }

  attribute(name: string): string {
    const value = this.node[`@_${name}`];
    if (typeof value !== 'string') throw malformed(`<${this.path}> has no ${name} attribute`);
    return value;
  }
}

function integer(text: string, field: string): number {
  if (!/^(0|[1-9][0-9]{0,15})$/.test(text)) throw malformed(`${field} must be a decimal integer`);
  return Number(text);
}

function digestOf(element: Element): string {
  element.only(['#text'], ['algorithm']);
  const algorithm = element.attribute('algorithm');
  if (algorithm !== DIGEST_ALGORITHM) {
    throw new BundleFormatError(
      BundleErrorCode.UnsupportedAlgorithm,
      `<${element.path}> uses digest algorithm ${algorithm}; only ${DIGEST_ALGORITHM} is supported`,
    );
  }
  return element.ownText();
}

function decode(input: string | Uint8Array): string {
  const size = typeof input === 'string' ? Buffer.byteLength(input, 'utf8') : input.length;
  if (size > LIMITS.manifestBytes) {
    throw new BundleFormatError(
      BundleErrorCode.ManifestTooLarge,
      `the manifest is ${size} bytes; the limit is ${LIMITS.manifestBytes}`,
    );
  }
  if (typeof input === 'string') return input.replace(/^\uFEFF/, '');
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(input);
  } catch (error) {
    throw malformed('it is not UTF-8 text', error);
  }
}

/** Parses and validates a manifest. Checks structure only: verify its signature before trusting it. */
export function parseManifest(input: string | Uint8Array): Manifest {
  const xml = decode(input);
  // A DTD is how entity expansion ("billion laughs") and external entities (XXE) get in.
  if (/<!(?!--)/.test(xml))
    throw malformed('DOCTYPE, ENTITY and other declarations (and CDATA) are not allowed');
  if (/&(?!(?:amp|lt|gt|quot|apos);)/.test(xml))
    throw malformed('only the entities &amp; &lt; &gt; &quot; &apos; are allowed');
  const validation = XMLValidator.validate(xml);
  if (validation !== true)
    throw malformed(`${validation.err.msg} (line ${validation.err.line}, column ${validation.err.col})`);
  let tree: unknown;
  try {
    tree = parser.parse(xml);
  } catch (error) {
    throw malformed(describeError(error), error);
  }
  const doc = Element.of(tree, '').only(['manifest']);
  const root = doc
    .child('manifest')
    .only(['version', 'bundler', 'machine_configuration', 'image', 'signature']);

  const version = root.text('version');
  if (version !== String(FORMAT_VERSION)) {
    throw new BundleFormatError(
      BundleErrorCode.UnsupportedVersion,
      `bundle format version ${version} is not supported; this reader reads version ${FORMAT_VERSION}`,
    );
  }
  const bundler = root.child('bundler').only(['name', 'version']);
  const mc = root
    .child('machine_configuration')
    .only([
      'architecture',
      'virtualization_type',
      'kernel_id',
      'ramdisk_id',
      'block_device_mapping',
      'product_codes',
    ]);
  const image = root
    .child('image')
    .only([
      'name',
      'image_version',
      'description',
      'user',
      'type',
      'digest',
      'size',
      'bundled_size',
      'compression',
      'encryption',
      'parts',
    ]);
  const compression = image.child('compression').only(['algorithm', 'block_size']);
  const encryption = image
    .child('encryption')
    .only(['algorithm', 'part_size', 'nonce_scheme', 'salt', 'wrapped_key']);
  const wrappedKey = encryption.child('wrapped_key').only(['#text'], ['algorithm', 'key_id']);
  const parts = image.child('parts').only(['part'], ['count']);
  const signature = root.child('signature').only(['#text'], ['algorithm', 'key_id']);

  const unsupported = (what: string, value: string) =>
    new BundleFormatError(BundleErrorCode.UnsupportedAlgorithm, `${what} ${value} is not supported`);
  const compressionAlgorithm = compression.text('algorithm');
  if (!(COMPRESSION_ALGORITHMS as readonly string[]).includes(compressionAlgorithm))
    throw unsupported('compression', compressionAlgorithm);
  for (const [what, value, known] of [
    ['cipher', encryption.text('algorithm'), 'AES-256-GCM'],
    ['nonce scheme', encryption.text('nonce_scheme'), 'salt32-index64be'],
    ['key wrapping', wrappedKey.attribute('algorithm'), 'RSA-OAEP-SHA256'],
  ] as const) {
    if (value !== known) throw unsupported(what, value);
  }
  const signatureAlgorithm = signature.attribute('algorithm');
  if (!(SIGNATURE_ALGORITHMS as readonly string[]).includes(signatureAlgorithm))
    throw unsupported('signature algorithm', signatureAlgorithm);

  const partElements = parts.list('part');
  const count = integer(parts.attribute('count'), 'parts count');
  if (count !== partElements.length)
    throw malformed(`<parts count="${count}"> lists ${partElements.length} parts`);
  if (count > LIMITS.parts) throw malformed(`${count} parts is more than the limit of ${LIMITS.parts}`);
  const partSize = integer(encryption.text('part_size'), 'part_size');
  const bundledSize = integer(image.text('bundled_size'), 'bundled_size');
  const sizes = partSizes(partSize, count, bundledSize);

  const manifest: Manifest = {
    formatVersion: FORMAT_VERSION,
    bundler: { name: bundler.text('name'), version: bundler.text('version') },
    machineConfiguration: {
      architecture: mc.text('architecture') as Manifest['machineConfiguration']['architecture'],
      virtualizationType: mc.optionalText(
        'virtualization_type',
      ) as Manifest['machineConfiguration']['virtualizationType'],
      kernelId: mc.optionalText('kernel_id'),
      ramdiskId: mc.optionalText('ramdisk_id'),
      blockDeviceMapping: (
        mc.optionalChild('block_device_mapping')?.only(['mapping']).list('mapping') ?? []
      ).map((m) => {
        m.only(['virtual', 'device']);
        return { virtual: m.text('virtual'), device: m.text('device') };
      }),
      productCodes: mc.optionalChild('product_codes')?.only(['product_code']).textList('product_code') ?? [],
    },
    image: {
      name: image.text('name'),
      version: image.optionalText('image_version'),
      description: image.optionalText('description'),
      user: image.text('user'),
      type: image.text('type') as Manifest['image']['type'],
      digest: digestOf(image.child('digest')),
      size: integer(image.text('size'), 'size'),
      bundledSize,
    },
    compression: {
      algorithm: compressionAlgorithm as Manifest['compression']['algorithm'],
      blockSize: integer(compression.text('block_size'), 'block_size'),
    },
    encryption: {
      algorithm: 'AES-256-GCM',
      partSize,
      nonceScheme: 'salt32-index64be',
      salt: encryption.text('salt'),
      keyWrapping: {
        algorithm: 'RSA-OAEP-SHA256',
        keyId: wrappedKey.attribute('key_id'),
        wrappedKey: wrappedKey.ownText(),
      },
    },
    parts: partElements.map((p, i) => {
      p.only(['filename', 'digest'], ['index']);
      return {
        index: integer(p.attribute('index'), `part ${i} index`),
        filename: p.text('filename'),
        digest: digestOf(p.child('digest')),
        size: sizes[i] ?? 0,
      };
    }),
    signature: {
      algorithm: signatureAlgorithm as Manifest['signature']['algorithm'],
      keyId: signature.attribute('key_id'),
      value: signature.ownText(),
    },
  };
  checkManifest(new FieldCheck(BundleErrorCode.ManifestMalformed), manifest);
  return manifest;
}
