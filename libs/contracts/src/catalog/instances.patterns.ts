/**
 * Request patterns of the catalog's instances (docs/launches.md). Every public one takes the
 * `caller`: an account sees and changes only its own instances; another account's instance id
 * answers 404 InvalidInstanceID.NotFound, as a missing one does.
 */
export const CatalogInstancePattern = {
  /**
   * Launch `count` instances of an image, all or none: `LaunchResult`. Idempotent per client token
   * (and per request id when there is none).
   */
  instanceLaunch: 'catalog.instance.launch',
  /** The caller's instances, newest first, with filters: `InstancePage`. */
  instanceList: 'catalog.instance.list',
  /** One of the caller's instances: `InstanceView`. */
  instanceGet: 'catalog.instance.get',
  /**
   * Terminate one of the caller's instances: `InstanceView` (shutting-down, then terminated when
   * the host confirms). Terminating again answers the current state, changing nothing.
   */
  instanceTerminate: 'catalog.instance.terminate',
  /** Internal (no caller): the metering state of any instance, `InstanceChanged`; for reconciliation. */
  instanceInternalGet: 'catalog.instance.internal-get',
} as const;
export type CatalogInstancePattern = (typeof CatalogInstancePattern)[keyof typeof CatalogInstancePattern];
