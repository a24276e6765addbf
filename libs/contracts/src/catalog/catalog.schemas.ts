import { z } from 'zod';
import { codePointLength, firstNonXmlCharacter, formatCodePoint } from '../common/names.js';
import { imageIdSchema, imageStateSchema, productCodeSchema, type ImageState } from '../events/domain-events.js';
import { accountIdSchema, callerSchema } from '../permission/permission.schemas.js';
import { text } from '../common/text.schemas.js';

// Identifiers and enumerations ---------------------------------------------------------------

export const listingIdSchema = z.string().regex(/^lst-[0-9a-f]{17}$/, 'must be lst- followed by 17 lowercase hex digits');
export const kernelIdSchema = z.string().regex(/^aki-(?:[0-9a-f]{8}|[0-9a-f]{17})$/, 'must be aki- followed by 8 or 17 lowercase hex digits');
export const ramdiskIdSchema = z.string().regex(/^ari-(?:[0-9a-f]{8}|[0-9a-f]{17})$/, 'must be ari- followed by 8 or 17 lowercase hex digits');

export const ARCHITECTURES = ['x86_64', 'arm64', 'i386'] as const;
export const architectureSchema = z.enum(ARCHITECTURES);
export type Architecture = z.infer<typeof architectureSchema>;

export const VIRTUALIZATION_TYPES = ['hvm', 'paravirtual'] as const;
export const virtualizationTypeSchema = z.enum(VIRTUALIZATION_TYPES);

export const ROOT_DEVICE_TYPES = ['ebs', 'instance-store'] as const;
export const rootDeviceTypeSchema = z.enum(ROOT_DEVICE_TYPES);

export const PLATFORMS = ['linux', 'windows'] as const;
export const platformSchema = z.enum(PLATFORMS);
export type Platform = z.infer<typeof platformSchema>;
/** EC2's PlatformDetails for each platform, when the seller gives none. */
export const DEFAULT_PLATFORM_DETAILS: Record<Platform, string> = { linux: 'Linux/UNIX', windows: 'Windows' };

export const PRICING_TYPES = ['free', 'paid'] as const;
export const pricingTypeSchema = z.enum(PRICING_TYPES);
export type PricingType = z.infer<typeof pricingTypeSchema>;

/**
 * The fixed list of listing categories. A listing has one to three; `category` filters images by
 * their listing's categories. Adding one is a contract change (docs/catalog.md lists them).
 */
export const CATEGORIES = [
  'operating-systems',
  'security',
  'networking',
  'storage',
  'databases',
  'developer-tools',
  'devops',
  'containers',
  'machine-learning',
  'data-analytics',
  'web-servers',
  'monitoring',
  'business-applications',
  'high-performance-computing',
] as const;
export const categorySchema = z.enum(CATEGORIES);
export type Category = z.infer<typeof categorySchema>;

export const SORT_ORDERS = ['relevance', 'name', 'newest', 'popularity'] as const;
export const imageSortSchema = z.enum(SORT_ORDERS);
export type ImageSort = z.infer<typeof imageSortSchema>;

/** States a list may be filtered by; deregistered images are in no list. */
export const LISTABLE_STATES = ['pending', 'available', 'failed'] as const satisfies readonly ImageState[];

// Image fields ---------------------------------------------------------------------------------

/** EC2's characters for an image name: letters, digits, ( ) [ ] space . / - ' @ _ */
export const IMAGE_NAME_CHARACTERS = /^[A-Za-z0-9()[\] ./\-'@_]*$/;
export const imageNameSchema = z
  .string()
  .trim()
  .min(3, 'must be at least 3 characters')
  .max(128, 'must be at most 128 characters')
  .regex(IMAGE_NAME_CHARACTERS, "may hold only letters, digits, spaces and ( ) [ ] . / - ' @ _");
/**
 * Image text that ends up in a bundle's manifest holds only characters XML allows (no U+FFFE,
 * U+FFFF, U+0000, lone surrogates, ...), or the platform would sign a manifest no XML parser reads.
 */
const xmlCharacters = (text: string, ctx: z.RefinementCtx) => {
  const bad = firstNonXmlCharacter(text);
  if (bad) ctx.addIssue({ code: 'custom', message: `must not hold ${formatCodePoint(bad.codePoint)}: XML does not allow it` });
};
/** Lengths in characters are Unicode code points (as the bundle format counts them), not UTF-16 units. */
const atMost = (max: number) => (text: string) => codePointLength(text) <= max;

export const imageDescriptionSchema = text({ multiline: true })
  .refine(atMost(255), 'must be at most 255 characters')
  .superRefine(xmlCharacters)
  .meta({ maxLength: 255, description: 'at most 255 characters (code points), only characters XML allows' });
export const imageVersionSchema = text()
  .min(1)
  .refine(atMost(64), 'must be at most 64 characters')
  .superRefine(xmlCharacters)
  .meta({ maxLength: 64, description: 'at most 64 characters (code points), only characters XML allows' });

export const VOLUME_TYPES = ['gp2', 'gp3', 'io1', 'io2', 'st1', 'sc1', 'standard'] as const;

export const ebsBlockDeviceSchema = z
  .strictObject({
    /** GiB. */
    volumeSize: z.number().int().min(1).max(16_384),
    volumeType: z.enum(VOLUME_TYPES).default('gp3'),
    deleteOnTermination: z.boolean().default(true),
    iops: z.number().int().min(100).max(256_000).optional(),
    encrypted: z.boolean().optional(),
    snapshotId: z.string().regex(/^snap-(?:[0-9a-f]{8}|[0-9a-f]{17})$/, 'must be snap- followed by 8 or 17 hex digits').optional(),
  })
  .refine((e) => e.iops === undefined || ['io1', 'io2', 'gp3'].includes(e.volumeType), {
    message: 'iops may be set only for io1, io2 and gp3 volumes',
    path: ['iops'],
  });

/** `/dev/sda1`, `/dev/sdb`, `/dev/xvdf`, `xvdb`, `/dev/nvme1n1`. */
const DEVICE_NAME = /^(?:\/dev\/(?:sd[a-z]{1,2}[0-9]{0,2}|xvd[a-z]{1,2}[0-9]{0,2}|hd[a-z][0-9]{0,2}|nvme[0-9]{1,2}n[0-9]{1,2})|xvd[a-z]{1,2})$/;

export const blockDeviceMappingSchema = z
  .strictObject({
    deviceName: z.string().regex(DEVICE_NAME, 'must be a device name such as /dev/sda1, /dev/sdb, /dev/xvdf or xvdb'),
    /** An instance store volume: ephemeral0 … ephemeral23. */
    virtualName: z.string().regex(/^ephemeral(?:[0-9]|1[0-9]|2[0-3])$/, 'must be ephemeral0 to ephemeral23').optional(),
    ebs: ebsBlockDeviceSchema.optional(),
    /** Suppresses a device the instance type would otherwise attach. */
    noDevice: z.literal(true).optional(),
  })
  .refine((m) => [m.virtualName, m.ebs, m.noDevice].filter((v) => v !== undefined).length === 1, {
    message: 'each mapping has exactly one of virtualName, ebs and noDevice',
  });
export type BlockDeviceMapping = z.infer<typeof blockDeviceMappingSchema>;

export const stateReasonSchema = z.strictObject({
  code: text().min(1).max(64),
  message: text({ multiline: true }).max(1024),
});
export type StateReason = z.infer<typeof stateReasonSchema>;

// Register, update, deregister -----------------------------------------------------------------

export const registerImageBodySchema = z
  .strictObject({
    name: imageNameSchema,
    description: imageDescriptionSchema.optional(),
    version: imageVersionSchema.optional(),
    architecture: architectureSchema,
    virtualizationType: virtualizationTypeSchema.default('hvm'),
    rootDeviceType: rootDeviceTypeSchema.default('ebs'),
    rootDeviceName: z.string().regex(DEVICE_NAME, 'must be a device name such as /dev/sda1').optional(),
    blockDeviceMappings: z.array(blockDeviceMappingSchema).max(32).default([]),
    kernelId: kernelIdSchema.optional(),
    ramdiskId: ramdiskIdSchema.optional(),
    platform: platformSchema.default('linux'),
    platformDetails: text().min(1).max(128).optional(),
    /** Product codes of the seller's own listings to put on the image. */
    productCodes: z.array(productCodeSchema).max(10).default([]),
    /** The listing (image family) this image is a version of; a paid listing adds its product code. */
    listingId: listingIdSchema.optional(),
    /** The image this one was made from; its product codes carry over. */
    sourceImageId: imageIdSchema.optional(),
  })
  .superRefine((body, ctx) => {
    const seen = new Set<string>();
    body.blockDeviceMappings.forEach((m, i) => {
      if (seen.has(m.deviceName)) {
        ctx.addIssue({ code: 'custom', path: ['blockDeviceMappings', i, 'deviceName'], message: `${m.deviceName} is mapped twice` });
      }
      seen.add(m.deviceName);
    });
    const root = body.rootDeviceName ? body.blockDeviceMappings.find((m) => m.deviceName === body.rootDeviceName) : undefined;
    if (body.rootDeviceType === 'ebs' && root && !root.ebs) {
      ctx.addIssue({ code: 'custom', path: ['rootDeviceName'], message: 'the root device of an ebs image must be mapped to an ebs volume' });
    }
    if (body.rootDeviceType === 'instance-store' && root?.ebs) {
      ctx.addIssue({ code: 'custom', path: ['rootDeviceName'], message: 'the root device of an instance-store image cannot be an ebs volume' });
    }
    if (body.rootDeviceType === 'ebs' && body.blockDeviceMappings.some((m) => m.ebs) && !body.rootDeviceName) {
      ctx.addIssue({ code: 'custom', path: ['rootDeviceName'], message: 'is required when ebs volumes are mapped' });
    }
    if (body.virtualizationType === 'hvm' && (body.kernelId || body.ramdiskId)) {
      ctx.addIssue({ code: 'custom', path: [body.kernelId ? 'kernelId' : 'ramdiskId'], message: 'hvm images boot without a kernel or ramdisk id' });
    }
    if (body.ramdiskId && !body.kernelId) {
      ctx.addIssue({ code: 'custom', path: ['ramdiskId'], message: 'a ramdisk needs a kernel id' });
    }
    if (body.architecture === 'arm64' && body.virtualizationType !== 'hvm') {
      ctx.addIssue({ code: 'custom', path: ['virtualizationType'], message: 'arm64 images are hvm' });
    }
  });
export type RegisterImageBody = z.infer<typeof registerImageBodySchema>;

export const registerImageRequestSchema = z.strictObject({ caller: callerSchema, image: registerImageBodySchema });
export type RegisterImageRequest = z.infer<typeof registerImageRequestSchema>;

export const getImageRequestSchema = z.strictObject({ caller: callerSchema.nullable(), imageId: imageIdSchema });
export type GetImageRequest = z.infer<typeof getImageRequestSchema>;

/** PATCH body: an empty description clears it. */
export const updateImageBodySchema = z.strictObject({ description: imageDescriptionSchema });
export type UpdateImageBody = z.infer<typeof updateImageBodySchema>;
export const updateImageRequestSchema = z.strictObject({ caller: callerSchema, imageId: imageIdSchema, image: updateImageBodySchema });
export type UpdateImageRequest = z.infer<typeof updateImageRequestSchema>;

export const deregisterImageRequestSchema = z.strictObject({ caller: callerSchema, imageId: imageIdSchema });
export type DeregisterImageRequest = z.infer<typeof deregisterImageRequestSchema>;

// Internal patterns ----------------------------------------------------------------------------

export const internalGetImageRequestSchema = z.strictObject({ imageId: imageIdSchema });
export type InternalGetImageRequest = z.infer<typeof internalGetImageRequestSchema>;

export const setImageStateRequestSchema = z.strictObject({
  imageId: imageIdSchema,
  state: imageStateSchema,
  /** `{ code, message }` as EC2's StateReason; a plain string is taken as the message. */
  stateReason: z
    .union([stateReasonSchema, text({ multiline: true }).min(1).max(1024)])
    .transform((r): StateReason => (typeof r === 'string' ? { code: 'Server.InternalError', message: r } : r))
    .optional(),
  manifestLocation: z.string().min(1).max(1024).optional(),
  /** Bytes of the original image. */
  imageSize: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
  /** SHA-256 of the verified manifest's bytes: hosts launch only from a manifest with this digest. */
  manifestDigest: z.string().regex(/^[0-9a-f]{64}$/).optional(),
  /** The key id (fingerprint) the manifest's signature verified with. */
  signerKeyId: z.string().regex(/^sha256:[0-9a-f]{64}$/).optional(),
});
export type SetImageStateRequest = z.infer<typeof setImageStateRequestSchema>;

export const recordLaunchesRequestSchema = z.strictObject({
  imageId: imageIdSchema,
  count: z.number().int().min(1).max(1_000_000),
});
export type RecordLaunchesRequest = z.infer<typeof recordLaunchesRequestSchema>;

export const getProductRequestSchema = z.strictObject({ productCode: productCodeSchema });
export type GetProductRequest = z.infer<typeof getProductRequestSchema>;

// Browse and search ----------------------------------------------------------------------------

/** A `name` filter: an image name in which `*` matches any run of characters and `?` one character. */
export const namePatternSchema = z
  .string()
  .trim()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9()[\] ./\-'@_*?]+$/, "a name pattern may hold the characters of image names and the wildcards * and ?")
  .refine((p) => (p.match(/[*?]/g)?.length ?? 0) <= 16, 'a name pattern may hold at most 16 wildcards');

/** `q`: free text over the name, the description and the listing's texts. */
export const searchTextSchema = text().min(1).max(256);

const filterValues = <T extends z.ZodType>(value: T) => z.array(value).min(1).max(20);

/** The filters of a list, as the service takes them (the gateway maps EC2-style query names to these). */
export const imageFiltersSchema = z.strictObject({
  architecture: filterValues(architectureSchema).optional(),
  /** Account ids, or `self`. */
  owner: filterValues(z.union([accountIdSchema, z.literal('self')])).optional(),
  isPublic: z.boolean().optional(),
  executableBy: z.enum(['self', 'all']).optional(),
  productCode: filterValues(productCodeSchema).optional(),
  state: filterValues(z.enum(LISTABLE_STATES)).optional(),
  name: filterValues(namePatternSchema).optional(),
  pricingType: pricingTypeSchema.optional(),
  category: filterValues(categorySchema).optional(),
});
export type ImageFilters = z.infer<typeof imageFiltersSchema>;

export const listImagesRequestSchema = z.strictObject({
  caller: callerSchema.nullable(),
  filters: imageFiltersSchema.default({}),
  /** Free text over the name, the description and the listing's texts (websearch syntax). */
  q: searchTextSchema.optional(),
  /** Defaults to `relevance` with `q`, `newest` without. */
  sort: imageSortSchema.optional(),
  limit: z.number().int().min(1).max(100).default(25),
  cursor: z.string().min(1).max(1024).optional(),
});
export type ListImagesRequest = z.infer<typeof listImagesRequestSchema>;

/**
 * The query string of `GET /v1/images`: EC2 DescribeImages filter names. A filter may repeat
 * (`architecture=x86_64&architecture=arm64`) or list values with commas; values of one filter are
 * alternatives, different filters all apply.
 */
const queryList = <T extends z.ZodType<unknown, string>>(value: T) =>
  z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(',')).map((s) => s.trim()))
    .pipe(filterValues(value));
const queryBoolean = z.enum(['true', 'false']).transform((v) => v === 'true');
const querySingle = <T extends z.ZodType<unknown, string>>(value: T) =>
  z.union([z.string(), z.array(z.string()).length(1).transform((a) => a[0])]).pipe(value);

export const IMAGE_QUERY_FILTERS = [
  'architecture',
  'owner',
  'is-public',
  'executable-by',
  'product-code',
  'state',
  'name',
  'pricing-type',
  'category',
] as const;
export const IMAGE_QUERY_PARAMETERS = [...IMAGE_QUERY_FILTERS, 'q', 'sort', 'limit', 'cursor'] as const;

export const listImagesQuerySchema = z
  .strictObject({
    architecture: queryList(architectureSchema).optional(),
    owner: queryList(z.union([accountIdSchema, z.literal('self')])).optional(),
    'is-public': querySingle(queryBoolean).optional(),
    'executable-by': querySingle(z.enum(['self', 'all'])).optional(),
    'product-code': queryList(productCodeSchema).optional(),
    state: queryList(z.enum(LISTABLE_STATES)).optional(),
    name: queryList(namePatternSchema).optional(),
    'pricing-type': querySingle(pricingTypeSchema).optional(),
    category: queryList(categorySchema).optional(),
    q: querySingle(searchTextSchema).optional(),
    sort: querySingle(imageSortSchema).optional(),
    limit: querySingle(z.string().regex(/^\d{1,3}$/, 'must be a whole number').transform(Number).pipe(z.number().int().min(1).max(100))).default(25),
    cursor: querySingle(z.string().min(1).max(1024)).optional(),
  })
  .transform((q): Omit<ListImagesRequest, 'caller'> => {
    const filters: ImageFilters = {
      ...(q.architecture ? { architecture: q.architecture } : {}),
      ...(q.owner ? { owner: q.owner } : {}),
      ...(q['is-public'] !== undefined ? { isPublic: q['is-public'] } : {}),
      ...(q['executable-by'] ? { executableBy: q['executable-by'] } : {}),
      ...(q['product-code'] ? { productCode: q['product-code'] } : {}),
      ...(q.state ? { state: q.state } : {}),
      ...(q.name ? { name: q.name } : {}),
      ...(q['pricing-type'] ? { pricingType: q['pricing-type'] } : {}),
      ...(q.category ? { category: q.category } : {}),
    };
    return {
      filters,
      limit: q.limit,
      ...(q.q ? { q: q.q } : {}),
      ...(q.sort ? { sort: q.sort } : {}),
      ...(q.cursor ? { cursor: q.cursor } : {}),
    };
  });

// Listings and seller profiles -----------------------------------------------------------------

const listingTexts = {
  title: text().min(3).max(128),
  summary: text().min(1).max(255),
  description: text({ multiline: true }).max(8000),
  categories: z
    .array(categorySchema)
    .min(1)
    .max(3)
    .transform((c) => [...new Set(c)]),
};

export const createListingBodySchema = z.strictObject({
  ...listingTexts,
  description: listingTexts.description.default(''),
  /** A paid listing gets a product code made by the platform; its price is set with billing. */
  pricingType: pricingTypeSchema,
});
export type CreateListingBody = z.infer<typeof createListingBodySchema>;
export const createListingRequestSchema = z.strictObject({ caller: callerSchema, listing: createListingBodySchema });
export type CreateListingRequest = z.infer<typeof createListingRequestSchema>;

/** The pricing type of a listing is fixed at creation (its product code is on its images). */
export const updateListingBodySchema = z
  .strictObject({
    title: listingTexts.title.optional(),
    summary: listingTexts.summary.optional(),
    description: listingTexts.description.optional(),
    categories: listingTexts.categories.optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'give at least one field to change');
export type UpdateListingBody = z.infer<typeof updateListingBodySchema>;
export const updateListingRequestSchema = z.strictObject({
  caller: callerSchema,
  listingId: listingIdSchema,
  listing: updateListingBodySchema,
});
export type UpdateListingRequest = z.infer<typeof updateListingRequestSchema>;

export const getListingRequestSchema = z.strictObject({ caller: callerSchema.nullable(), listingId: listingIdSchema });
export type GetListingRequest = z.infer<typeof getListingRequestSchema>;

export const listListingsRequestSchema = z.strictObject({
  caller: callerSchema.nullable(),
  category: categorySchema.optional(),
  sellerId: accountIdSchema.optional(),
  pricingType: pricingTypeSchema.optional(),
  limit: z.number().int().min(1).max(100).default(25),
  cursor: z.string().min(1).max(1024).optional(),
});
export type ListListingsRequest = z.infer<typeof listListingsRequestSchema>;

export const listListingsQuerySchema = z
  .strictObject({
    category: categorySchema.optional(),
    seller: accountIdSchema.optional(),
    'pricing-type': pricingTypeSchema.optional(),
    limit: z.coerce.number().int().min(1).max(100).default(25),
    cursor: z.string().min(1).max(1024).optional(),
  })
  .transform((q): Omit<ListListingsRequest, 'caller'> => ({
    limit: q.limit,
    ...(q.category ? { category: q.category } : {}),
    ...(q.seller ? { sellerId: q.seller } : {}),
    ...(q['pricing-type'] ? { pricingType: q['pricing-type'] } : {}),
    ...(q.cursor ? { cursor: q.cursor } : {}),
  }));

export const sellerProfileBodySchema = z.strictObject({
  displayName: text().min(2).max(64),
  about: text({ multiline: true }).max(2000).default(''),
  website: z
    .url({ protocol: /^https?$/ })
    .max(255)
    .nullable()
    .default(null),
});
export type SellerProfileBody = z.infer<typeof sellerProfileBodySchema>;
export const putSellerProfileRequestSchema = z.strictObject({
  caller: callerSchema,
  accountId: accountIdSchema,
  profile: sellerProfileBodySchema,
});
export type PutSellerProfileRequest = z.infer<typeof putSellerProfileRequestSchema>;
export const getSellerProfileRequestSchema = z.strictObject({ accountId: accountIdSchema });
export type GetSellerProfileRequest = z.infer<typeof getSellerProfileRequestSchema>;

// Responses ------------------------------------------------------------------------------------

export type ImageVisibility = 'public' | 'shared' | 'private';

export interface ImageView {
  imageId: string;
  name: string;
  description: string | null;
  version: string | null;
  ownerId: string;
  architecture: Architecture;
  virtualizationType: (typeof VIRTUALIZATION_TYPES)[number];
  rootDeviceType: (typeof ROOT_DEVICE_TYPES)[number];
  rootDeviceName: string | null;
  blockDeviceMappings: BlockDeviceMapping[];
  kernelId: string | null;
  ramdiskId: string | null;
  platform: Platform;
  platformDetails: string;
  productCodes: string[];
  /** `paid` exactly when the image carries a product code. */
  pricingType: PricingType;
  /** From the launch permissions: public (group all), shared (named accounts), else private. */
  visibility: ImageVisibility;
  state: ImageState;
  stateReason: StateReason | null;
  creationDate: string;
  deregisteredAt: string | null;
  /** Where the bundle's manifest is; shown to the owner (and admins) only. */
  manifestLocation: string | null;
  /** Bytes of the original image, once bundled. */
  imageSize: number | null;
  listingId: string | null;
  sourceImageId: string | null;
  launchCount: number;
  revision: number;
}

export interface ImagePage {
  items: ImageView[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

/**
 * `catalog.image.list-page`: an `ImagePage` as JSON text, and what whoever keeps it must check
 * before each reuse: the page is current while every validator key in Redis still holds the value
 * it had when the page was computed (a key that does not exist reads as `'0'`).
 */
export interface SerializedImagePage {
  /** The `ImagePage`, as JSON. */
  json: string;
  /** Null: the page must not be kept (the catalog's list cache is off, or Redis did not answer). */
  validators: { keys: string[]; values: string[] } | null;
  /** How much longer the page may be reused (launch counts do not move the validators), ms. */
  maxAgeMs: number;
}

export interface ProductView {
  productCode: string;
  ownerId: string;
  listingId: string;
  title: string;
}

export interface SellerProfileView {
  accountId: string;
  displayName: string;
  about: string;
  website: string | null;
}

/** What a buyer pays for a listing's images, as billing quotes it (decimal strings). */
export interface ListingPrice {
  currency: 'USD';
  monthlyFee: string;
  signUpFee: string;
  /** Per instance-hour: the platform's base rate plus the seller's markup. */
  instanceTypes: { instanceType: string; hourly: string }[];
}

export interface ListingSummaryView {
  listingId: string;
  sellerId: string;
  title: string;
  summary: string;
  description: string;
  categories: Category[];
  pricingType: PricingType;
  productCode: string | null;
  createdAt: string;
  updatedAt: string;
  seller: SellerProfileView;
  /** null when billing did not answer in time (or has no price for the product yet). */
  price: ListingPrice | null;
}

export interface ListingView extends ListingSummaryView {
  /** The listing's images the caller may see, newest first (at most 100). */
  versions: ImageView[];
}

export interface ListingPage {
  items: ListingSummaryView[];
  nextCursor: string | null;
}
