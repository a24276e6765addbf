/** Request patterns answered by the catalog service. */
export const CatalogPattern = {
  /** A seller registers an image record (state `pending`): `ImageView`. */
  imageRegister: 'catalog.image.register',
  /** One image the caller may see: `ImageView`, else 404 InvalidAMIID.NotFound. */
  imageGet: 'catalog.image.get',
  /** Browse and search: `ImagePage`. */
  imageList: 'catalog.image.list',
  /**
   * Browse and search for a keeper of pages (the gateway): the same request as `imageList`,
   * answered with `SerializedImagePage` (the page as JSON text, with the list generations it
   * depends on).
   */
  imageListPage: 'catalog.image.list-page',
  /** The owner changes an image's description: `ImageView`. */
  imageUpdate: 'catalog.image.update',
  /** The owner (or an admin) deregisters an image: `ImageView`. Deregistering again answers the same. */
  imageDeregister: 'catalog.image.deregister',
  /**
   * Internal (no caller): `ImageChanged` of any image, deregistered ones included; 404
   * InvalidAMIID.NotFound when there is none. For services whose projection lacks an image.
   */
  imageInternalGet: 'catalog.image.internal-get',
  /**
   * Internal (no caller): the publishing flow moves an image to `available` or `failed` (with a
   * reason) and records its bundle. Idempotent; a deregistered image never comes back.
   */
  imageSetState: 'catalog.image.set-state',
  /** Internal (no caller): adds `count` launches to an image's popularity counter. */
  imageRecordLaunches: 'catalog.image.record-launches',
  /** Who owns a product code: `ProductView`, else 404 InvalidProductCode.NotFound. */
  productGet: 'catalog.product.get',
  listingCreate: 'catalog.listing.create',
  listingUpdate: 'catalog.listing.update',
  listingGet: 'catalog.listing.get',
  listingList: 'catalog.listing.list',
  sellerProfileGet: 'catalog.seller-profile.get',
  sellerProfilePut: 'catalog.seller-profile.put',
} as const;
export type CatalogPattern = (typeof CatalogPattern)[keyof typeof CatalogPattern];
