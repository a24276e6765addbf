import { BUNDLING_PHASES, type BundleProgressView, type BundlingProgress, type ImageView } from '@imagemart/contracts';

/** A job's progress when it is a bundling progress object (BullMQ also allows plain numbers). */
function progressOf(value: unknown): BundlingProgress | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const p = value as Partial<BundlingProgress>;
  const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0;
  if (!BUNDLING_PHASES.includes(p.phase as BundlingProgress['phase'])) return undefined;
  if (!isCount(p.bytesDone) || !isCount(p.bytesTotal) || !isCount(p.percent)) return undefined;
  return p as BundlingProgress;
}

/**
 * An image's publishing progress from its catalog record and the progress of its bundling jobs
 * (fixed ids `bundle-<imageId>` and `verify-<imageId>`). `percent` runs over the whole flow:
 * bundling is 0-50, verifying 50-100; it reaches 100 only when the image is available.
 */
export function bundleProgress(image: ImageView, bundleJob: unknown, verifyJob: unknown): BundleProgressView {
  const bundle = progressOf(bundleJob);
  const verify = progressOf(verifyJob);
  const base = { imageId: image.imageId, state: image.state, reason: image.state === 'failed' ? image.stateReason : null };
  if (image.state === 'available') {
    const total = image.imageSize ?? verify?.bytesTotal ?? bundle?.bytesTotal ?? 0;
    return { ...base, phase: 'done', bytesDone: total, bytesTotal: total, percent: 100 };
  }
  const cap = (n: number) => Math.min(99, Math.max(0, Math.floor(n)));
  if (verify) {
    return { ...base, phase: verify.phase === 'done' ? 'verifying' : verify.phase, bytesDone: verify.bytesDone, bytesTotal: verify.bytesTotal, percent: cap(50 + verify.percent / 2) };
  }
  if (bundle) {
    return { ...base, phase: bundle.phase, bytesDone: bundle.bytesDone, bytesTotal: bundle.bytesTotal, percent: cap(bundle.percent / 2) };
  }
  return { ...base, phase: 'waiting', bytesDone: 0, bytesTotal: image.imageSize ?? 0, percent: 0 };
}
