import { Buffer } from 'node:buffer';
import { firstNonXmlCharacter, formatCodePoint, trimXmlWhiteSpace } from '@imagemart/contracts';
import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { DIGEST_ALGORITHM, FORMAT_VERSION, LIMITS } from './bundle-format.constants.js';
import { BundleErrorCode, BundleFormatError, describeError } from './bundle-format.exception.js';
import { FieldCheck, checkManifest, partSizes } from './manifest.schema.js';
import { COMPRESSION_ALGORITHMS, SIGNATURE_ALGORITHMS, type Manifest } from './manifest.types.js';

/**
 * The manifest as XML, with the EC2 AMI manifest's element names where they exist. The parser
 * reads a restricted profile of XML: UTF-8 (an encoding declaration may only say so), at most
 * LIMITS.manifestBytes, only XML 1.0's characters, no DTD (so no entity declarations, external
 * entities or entity expansion), no CDATA, no processing instructions, and no entity references
 * but the five predefined ones. Values are trimmed of XML white space (space, tab, CR, LF) only.
 * Every element is checked against the schema; unknown ones are errors, and so are empty ones.
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
  // Not JavaScript's trim(), which would also drop NBSP, U+3000 and U+FEFF: values are trimmed of
  // XML white space below (trimXmlWhiteSpace), and attribute values are not trimmed at all.
  trimValues: false,
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
          owner_wrapped_key: enc.ownerKeyWrapping
            ? {
                '@_algorithm': enc.ownerKeyWrapping.algorithm,
                '@_key_id': enc.ownerKeyWrapping.keyId,
                '#text': enc.ownerKeyWrapping.wrappedKey,
              }
            : undefined,
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

/** Every element holds something: an optional element without a value is left out, not empty. */
function empty(path: string): BundleFormatError {
  return malformed(`<${path}> is empty: an element without a value is left out, not written empty`);
}

function isWhiteSpace(value: unknown): boolean {
  return typeof value === 'string' && trimXmlWhiteSpace(value) === '';
}

/** A text-only element's value, trimmed of XML white space (and of nothing else). */
function textOf(value: unknown, path: string): string {
  if (typeof value !== 'string') throw malformed(`<${path}> must hold text only`);
  const text = trimXmlWhiteSpace(value);
  if (text === '') throw empty(path);
  return text;
}

/** Typed, strict access to the parser's object tree; `path` names the element in errors. */
class Element {
  constructor(
    private readonly node: XmlNode,
    readonly path: string,
  ) {}

  static of(value: unknown, path: string): Element {
    if (typeof value === 'string' && trimXmlWhiteSpace(value) === '') throw empty(path);
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw malformed(`<${path}> must contain elements`);
    return new Element(value as XmlNode, path);
  }

  /** Fails on any child element or attribute not listed, and on text besides white space. */
  only(children: string[], attributes: string[] = []): this {
    for (const key of Object.keys(this.node)) {
      // The white space that indents child elements.
      if (key === '#text' && !children.includes(key) && isWhiteSpace(this.node[key])) continue;
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
    return (value as unknown[]).map((item, i) => textOf(item, `${this.path}/${name}[${i}]`));
  }

  optionalText(name: string): string | undefined {
    const value = this.single(name);
    if (value === undefined) return undefined;
    return textOf(value, `${this.path}/${name}`);
  }

  text(name: string): string {
    const value = this.optionalText(name);
    if (value === undefined) throw malformed(`<${this.path}> has no <${name}>`);
    return value;
  }

  /** Text of this element when it also has attributes (`<digest algorithm="SHA256">...`). */
  ownText(): string {
    const value = this.node['#text'];
    if (value === undefined) throw empty(this.path);
    return textOf(value, this.path);
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

const XML_DECLARATION =
  /^<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(["'])1\.0\1(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(["'])([A-Za-z][A-Za-z0-9._-]*)\2)?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(["'])(?:yes|no)\4)?[ \t\r\n]*\?>/;

/**
 * The XML profile, checked on the text before any XML parser sees it: only XML 1.0 characters;
 * an XML declaration, if any, first and saying version 1.0 and (if it names one) the encoding
 * UTF-8; comments anywhere markup may be (their content is not markup: `<!` or `&` inside one is
 * text), but `--` never inside one; no other `<!` (DOCTYPE, ENTITY, CDATA) and no `<?` (processing
 * instructions); no `&` but the five predefined entity references.
 */
function checkProfile(xml: string): void {
  const bad = firstNonXmlCharacter(xml);
  if (bad) {
    throw malformed(
      `it holds ${formatCodePoint(bad.codePoint)} at offset ${bad.index}, a character XML 1.0 does not allow`,
    );
  }
  let at = 0;
  if (xml.startsWith('<?xml') && /^<\?xml[ \t\r\n?]/.test(xml)) {
    const declaration = XML_DECLARATION.exec(xml);
    if (!declaration) throw malformed('the XML declaration must be <?xml version="1.0" encoding="UTF-8"?>');
    const encoding = declaration[3];
    if (encoding !== undefined && encoding.toUpperCase() !== 'UTF-8')
      throw malformed(`the XML declaration says encoding="${encoding}"; a manifest is UTF-8`);
    at = declaration[0].length;
  }
  // One pass: each match is judged where it is, and a comment is skipped whole.
  const markup = /<[!?]|&/g;
  markup.lastIndex = at;
  for (let match = markup.exec(xml); match; match = markup.exec(xml)) {
    at = match.index;
    if (xml.startsWith('<!--', at)) {
      const close = xml.indexOf('-->', at + 4);
      if (close < 0) throw malformed('a comment is not closed');
      const body = xml.slice(at + 4, close);
      if (body.includes('--') || body.endsWith('-')) throw malformed('a comment holds "--"');
      markup.lastIndex = close + 3;
    } else if (xml.startsWith('<!', at)) {
      // A DTD is how entity expansion ("billion laughs") and external entities (XXE) get in.
      throw malformed('DOCTYPE, ENTITY and other declarations (and CDATA) are not allowed');
    } else if (xml.startsWith('<?', at)) {
      throw malformed('processing instructions are not allowed (the XML declaration only at the very start)');
    } else if (!/^&(?:amp|lt|gt|quot|apos);/.test(xml.slice(at, at + 6))) {
      throw malformed('only the entities &amp; &lt; &gt; &quot; &apos; are allowed');
    }
  }
}

/** A value in the parsed tree, read leniently (for the checks that come before the schema's). */
function peek(node: unknown, ...path: string[]): unknown {
  let value = node;
  for (const name of path) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    value = (value as XmlNode)[name];
  }
  // Text is trimmed of XML white space; attribute values are taken as they are.
  const attribute = path[path.length - 1]?.startsWith('@_') ?? false;
  return typeof value === 'string' && !attribute ? trimXmlWhiteSpace(value) : value;
}

/**
 * Algorithms are judged before the rest of the schema, so a manifest that uses an unknown one is
 * UnsupportedAlgorithm whatever else is wrong with it (a newer writer's manifest may differ in more).
 */
function checkAlgorithms(root: unknown): void {
  const unsupported = (what: string, value: string) =>
    new BundleFormatError(BundleErrorCode.UnsupportedAlgorithm, `${what} ${value} is not supported`);
  const image = peek(root, 'image');
  const encryption = peek(image, 'encryption');
  const known: [string, unknown, readonly string[]][] = [
    ['compression', peek(image, 'compression', 'algorithm'), COMPRESSION_ALGORITHMS],
    ['cipher', peek(encryption, 'algorithm'), ['AES-256-GCM']],
    ['nonce scheme', peek(encryption, 'nonce_scheme'), ['salt32-index64be']],
    ['key wrapping', peek(encryption, 'wrapped_key', '@_algorithm'), ['RSA-OAEP-SHA256']],
    ['key wrapping', peek(encryption, 'owner_wrapped_key', '@_algorithm'), ['RSA-OAEP-SHA256']],
    ['signature algorithm', peek(root, 'signature', '@_algorithm'), SIGNATURE_ALGORITHMS],
    ['digest algorithm', peek(image, 'digest', '@_algorithm'), [DIGEST_ALGORITHM]],
  ];
  const parts = peek(image, 'parts', 'part');
  if (Array.isArray(parts)) {
    for (const part of parts)
      known.push(['digest algorithm', peek(part, 'digest', '@_algorithm'), [DIGEST_ALGORITHM]]);
  }
  for (const [what, value, allowed] of known) {
    if (typeof value === 'string' && !allowed.includes(value)) throw unsupported(what, value);
  }
}

/**
 * Parses and validates a manifest. Checks structure only: verify its signature before trusting it.
 * The order of the checks is the format's (docs/bundle-format.md): size, UTF-8, the XML profile
 * and well-formedness, the version, the algorithms, then the rest of the schema.
 */
export function parseManifest(input: string | Uint8Array): Manifest {
  const xml = decode(input);
  checkProfile(xml);
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
  const root = doc.child('manifest');

  const version = root.text('version');
  if (version !== String(FORMAT_VERSION)) {
    throw new BundleFormatError(
      BundleErrorCode.UnsupportedVersion,
      `bundle format version ${version} is not supported; this reader reads version ${FORMAT_VERSION}`,
    );
  }
  checkAlgorithms(peek(tree, 'manifest'));

  root.only(['version', 'bundler', 'machine_configuration', 'image', 'signature']);
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
    .only(['algorithm', 'part_size', 'nonce_scheme', 'salt', 'wrapped_key', 'owner_wrapped_key']);
  const wrappedKey = encryption.child('wrapped_key').only(['#text'], ['algorithm', 'key_id']);
  const ownerWrappedKey = encryption
    .optionalChild('owner_wrapped_key')
    ?.only(['#text'], ['algorithm', 'key_id']);
  const parts = image.child('parts').only(['part'], ['count']);
  const signature = root.child('signature').only(['#text'], ['algorithm', 'key_id']);

  // Required; their values were judged by checkAlgorithms.
  const compressionAlgorithm = compression.text('algorithm');
  encryption.text('algorithm');
  encryption.text('nonce_scheme');
  wrappedKey.attribute('algorithm');
  ownerWrappedKey?.attribute('algorithm');
  const signatureAlgorithm = signature.attribute('algorithm');

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
      ...(ownerWrappedKey
        ? {
            ownerKeyWrapping: {
              algorithm: 'RSA-OAEP-SHA256' as const,
              keyId: ownerWrappedKey.attribute('key_id'),
              wrappedKey: ownerWrappedKey.ownText(),
            },
          }
        : {}),
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
