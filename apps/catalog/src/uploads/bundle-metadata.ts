import {
  replaceNonXmlCharacters,
  sliceCodePoints,
  type BundleImageMetadata,
  type ImageView,
} from '@imagemart/contracts';

/**
 * Manifest text (the format's rule, manifestTextProblem): control characters become spaces, other
 * characters XML does not allow U+FFFD (the API refuses them; an image registered before it did
 * may hold them), runs of white space one, no white space around, at most `max` code points.
 */
function manifestText(value: string | null, max: number): string | undefined {
  if (value === null) return undefined;
  const text = sliceCodePoints(
    replaceNonXmlCharacters(value.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' '))
      .replace(/\s+/g, ' ')
      .trim(),
    max,
  ).trim();
  return text === '' ? undefined : text;
}

/**
 * What the bundle's manifest says about an image (the bundle format's `image` and
 * `machine_configuration`), from its catalog record. The manifest's block device mapping is EC2's
 * bundle mapping: the root device as `root`, each instance store volume by its virtual name
 * (`ephemeral0`, …); EBS volumes other than the root are launch settings, not part of the bundle.
 */
export function toBundleImageMetadata(image: ImageView): BundleImageMetadata {
  const mapping: BundleImageMetadata['blockDeviceMapping'] = [];
  if (image.rootDeviceName) mapping.push({ virtual: 'root', device: image.rootDeviceName });
  for (const m of image.blockDeviceMappings) {
    if (m.virtualName) mapping.push({ virtual: m.virtualName, device: m.deviceName });
  }
  const version = manifestText(image.version, 64);
  const description = manifestText(image.description, 255);
  return {
    name: manifestText(image.name, 128) ?? image.imageId,
    ...(version ? { version } : {}),
    ...(description ? { description } : {}),
    architecture: image.architecture,
    virtualizationType: image.virtualizationType,
    ...(image.kernelId ? { kernelId: image.kernelId } : {}),
    ...(image.ramdiskId ? { ramdiskId: image.ramdiskId } : {}),
    blockDeviceMapping: mapping,
    productCodes: image.productCodes,
  };
}
