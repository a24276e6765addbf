import { describe, expect, it } from 'vitest';
import { bundleImageMetadataSchema, type ImageView } from '@imagemart/contracts';
import { toBundleImageMetadata } from './bundle-metadata.js';

const image = (fields: Partial<ImageView>): ImageView =>
  ({
    imageId: 'ami-0123456789abcdef0',
    name: 'An image',
    version: null,
    description: null,
    architecture: 'x86_64',
    virtualizationType: 'hvm',
    rootDeviceName: '/dev/xvda',
    blockDeviceMappings: [],
    kernelId: null,
    ramdiskId: null,
    productCodes: [],
    ...fields,
  }) as unknown as ImageView;

describe('the manifest text of an image', () => {
  it('never hands the bundler text a manifest cannot hold, even from a record registered before the API refused it', () => {
    const metadata = toBundleImageMetadata(
      image({ description: ' a\uFFFEb\uFFFF\u0000c\u00A0 ', version: '1.0\uD800' }),
    );
    expect(metadata.description).toBe('a\uFFFDb\uFFFD c');
    expect(metadata.version).toBe('1.0\uFFFD');
    expect(bundleImageMetadataSchema.safeParse(metadata).success).toBe(true);
  });

  it('cuts at 255 code points, never inside a surrogate pair', () => {
    const metadata = toBundleImageMetadata(image({ description: `${'🚀'.repeat(300)}` }));
    expect(metadata.description).toBe('🚀'.repeat(255));
    expect(bundleImageMetadataSchema.safeParse(metadata).success).toBe(true);
  });
});
