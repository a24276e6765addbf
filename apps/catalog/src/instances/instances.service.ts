import { createHash } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG } from '@imagemart/config';
import { outboxRecords, routeDomainEvent, type CatalogImage, type CatalogInstance, type CatalogReservation, type NewOutboxEvent } from '@imagemart/database';
import {
  DomainEventType,
  ErrorCode,
  INSTANCE_HOST_QUEUE,
  InstanceHostJobName,
  type Caller,
  type InstanceChanged,
  type InstanceHostJob,
  type InstancePage,
  type InstanceStateReason,
  type InstanceView,
  type LaunchDecision,
  type LaunchInstancesBody,
  type LaunchResult,
  type ListInstancesRequest,
} from '@imagemart/contracts';
import { DomainException } from '@imagemart/messaging';
import { requestContext } from '@imagemart/observability';
import type { CatalogConfig } from '../catalog.config.js';
import { ImagesRepository } from '../images/images.repository.js';
import { readableBy } from '../search/visibility.sql.js';
import { HostFailureCode, HostLaunchFailure, INSTANCE_HOST_DRIVER, type HostedInstance, type InstanceHostDriver } from './instance-host.driver.js';
import { hostJobId, instanceIdFor, launchDigest, reservationIdFor } from './instance.ids.js';
import { toInstanceChanged, toInstanceView, type InstanceRow } from './instance.view.js';
import { InstancesRepository } from './instances.repository.js';
import { LaunchDecisions } from './launch-decisions.js';
import { LaunchGrants } from './launch-grant.js';
import { LaunchRateLimiter } from './launch-rate.limiter.js';
import { LaunchUpstreamClient } from './launch-upstream.client.js';

/** The state reasons of the ordinary life of an instance (EC2's StateReason codes where it has one). */
export const StateReason = {
  pending: { code: 'Launch.Accepted', message: 'The launch was accepted; the host is starting the instance.' },
  running: { code: 'Host.Started', message: 'The host verified the bundle and started the instance.' },
  userShutdown: { code: 'Client.UserInitiatedShutdown', message: 'User initiated shutdown' },
  internalError: { code: 'Server.InternalError', message: 'The host could not start the instance.' },
} as const satisfies Record<string, InstanceStateReason>;

export const instanceNotFound = (instanceId: string) =>
  new DomainException(ErrorCode.InvalidInstanceIDNotFound, `The instance ID '${instanceId}' does not exist.`);
const imageNotFound = (imageId: string) => new DomainException(ErrorCode.InvalidAMIIDNotFound, `The image id '${imageId}' does not exist.`);
const imageUnavailable = (imageId: string, state: string) =>
  new DomainException(ErrorCode.InvalidAMIIDUnavailable, `The image '${imageId}' is ${state} and cannot be launched.`);

/** Image records a catalog process keeps for launches, at most. */
const LAUNCHABLE_KEPT = 10_000;

/** Tries of a state change that finds the instance changed by someone else meanwhile. */
const CHANGE_ATTEMPTS = 5;

/** The page token: the last row's sort key and a digest of the filters it belongs to. */
interface PageToken {
  t: number;
  i: string;
  d: string;
}

/**
 * Launches, lists and terminates instances, and applies what the instance host reports. Every
 * change of an instance counts a revision and, in its transaction, publishes
 * `catalog.instance.changed` (billing meters from it) and, where the host has work, a host job.
 */
@Injectable()
export class InstancesService {
  private readonly logger = new Logger(InstancesService.name);
  private readonly launchable = new Map<string, { expires: number; image: CatalogImage }>();

  constructor(
    private readonly instances: InstancesRepository,
    private readonly images: ImagesRepository,
    private readonly upstream: LaunchUpstreamClient,
    private readonly decisions: LaunchDecisions,
    private readonly rate: LaunchRateLimiter,
    private readonly grants: LaunchGrants,
    @Inject(APP_CONFIG) private readonly config: CatalogConfig,
    @Inject(INSTANCE_HOST_DRIVER) private readonly driver: InstanceHostDriver | null,
  ) {}

  // Launch ----------------------------------------------------------------------------------------

  /**
   * All `count` instances or none. The same client token (or, without one, the same request run
   * twice) answers the instances the first launch made, whatever changed since; the same token
   * with a different request is 409 IdempotentParameterMismatch.
   */
  async launch(caller: Caller, body: LaunchInstancesBody): Promise<LaunchResult> {
    const accountId = caller.accountId;
    const digest = launchDigest(body.imageId, body.instanceType, body.count);
    const reservationId = reservationIdFor(accountId, body.clientToken);
    // A client token's launch answers as the first one did, before any check. Without a token, a
    // request run twice (a reclaimed RPC) is rare: the launch statement finds its reservation.
    if (body.clientToken !== undefined) {
      const earlier = await this.replay(accountId, reservationId, digest, body.clientToken);
      if (earlier) return earlier;
    }

    // The rate, the image and the permission service's decision are asked at once (one wait
    // instead of three under load), and judged in this order: a request over the rate is refused
    // as such whatever else is wrong with it. An over-rate request still costs a decision; the
    // gateway's own limits bound how many arrive.
    const [taken, found, decided] = await Promise.allSettled([
      this.rate.take(accountId),
      this.imageForLaunch(body.imageId),
      this.decisions.decide(accountId, body.imageId),
    ]);
    settled(taken);
    const image = settled(found);
    if (!image) throw imageNotFound(body.imageId);
    const decision = settled(decided);
    if (!decision.allowed) throw await this.refusal(decision, accountId, body.imageId, image.state);
    // The decision reads a projection; the catalog's own record has the last word on the state,
    // and on who may learn it (the projection may not have the deregister yet).
    if (image.state !== 'available') throw await this.unavailable(accountId, body.imageId);
    const productCode = image.productCodes[0] ?? null;
    await this.upstream.checkInstanceType(body.instanceType, productCode);

    const requestId = requestContext.requestId();
    const now = new Date();
    const clientToken = body.clientToken ?? null;
    const reservation: CatalogReservation = {
      id: reservationId,
      accountId,
      clientToken,
      requestDigest: digest,
      imageId: image.id,
      instanceType: body.instanceType,
      instanceCount: body.count,
      createdAt: now,
      updatedAt: now,
    };
    const created: CatalogInstance[] = Array.from({ length: body.count }, (_, launchIndex) => ({
      id: instanceIdFor(reservationId, launchIndex),
      reservationId,
      launchIndex,
      accountId,
      imageId: image.id,
      sellerId: image.ownerId,
      productCode,
      instanceType: body.instanceType,
      state: 'pending',
      stateReasonCode: StateReason.pending.code,
      stateReasonMessage: StateReason.pending.message,
      stateChangedAt: now,
      runningAt: null,
      stoppedAt: null,
      manifestLocation: image.manifestLocation,
      revision: 1,
      createdAt: now,
      updatedAt: now,
    }));
    const events = created.flatMap((instance) => [
      ...this.changedEvents(instance, requestId),
      this.hostJob(InstanceHostJobName.start, instance.id, requestId),
    ]);
    // One statement: the lock, the replay and quota checks, every row, the image's launch count.
    const reserved = await this.instances.reserve(reservation, created, outboxRecords(events), this.config.INSTANCE_RUNNING_LIMIT);
    switch (reserved.outcome) {
      case 'created':
        return this.resultOf(reservationId, clientToken, accountId, created.map((row) => ({ ...row, clientToken })));
      case 'replay': {
        // A launch with the same token (or the same request) committed while this one was checked.
        const raced = await this.replay(accountId, reserved.reservationId, digest, body.clientToken);
        if (!raced) throw new Error(`reservation ${reserved.reservationId} was reported and then not found`);
        return raced;
      }
      case 'limit':
        throw new DomainException(
          ErrorCode.InstanceLimitExceeded,
          `Your quota allows ${this.config.INSTANCE_RUNNING_LIMIT} pending or running instances; you have ${reserved.live} and asked for ${body.count} more.`,
        );
      case 'unavailable': {
        // The image left `available` after the record this launch read (kept, or read just
        // before a deregister committed) and the decision allowed it: answered as the caller may
        // learn it, so a non-owner gets the 404 at once, not the 409 only the owner may see.
        this.launchable.delete(image.id);
        throw await this.unavailable(accountId, body.imageId);
      }
    }
  }

  /**
   * The image's record, kept LAUNCH_IMAGE_CACHE_TTL_MS while it is available: what a launch reads
   * of it (owner, product codes, manifest) does not change while it is, and the launch statement
   * checks at commit that it still is.
   */
  private async imageForLaunch(imageId: string): Promise<CatalogImage | null> {
    const now = Date.now();
    const kept = this.launchable.get(imageId);
    if (kept && kept.expires > now) return kept.image;
    const image = await this.images.findById(imageId);
    const ttl = this.config.LAUNCH_IMAGE_CACHE_TTL_MS;
    if (image?.state === 'available' && ttl > 0) {
      if (this.launchable.size >= LAUNCHABLE_KEPT) this.launchable.clear();
      this.launchable.set(imageId, { expires: now + ttl, image });
    } else {
      this.launchable.delete(imageId);
    }
    return image;
  }

  private async replay(
    accountId: string,
    reservationId: string,
    digest: string,
    clientToken: string | undefined,
  ): Promise<LaunchResult | null> {
    const reservation =
      clientToken === undefined
        ? await this.instances.findReservation(reservationId)
        : await this.instances.findReservationByToken(accountId, clientToken);
    if (!reservation || reservation.accountId !== accountId) return null;
    if (reservation.requestDigest !== digest) {
      throw new DomainException(
        ErrorCode.IdempotentParameterMismatch,
        `The client token '${clientToken ?? ''}' was used for a different launch request (image, instance type or count).`,
      );
    }
    return this.resultOf(reservation.id, reservation.clientToken, accountId, await this.instances.instancesOf(reservation.id));
  }

  private resultOf(reservationId: string, clientToken: string | null, ownerId: string, rows: InstanceRow[]): LaunchResult {
    return { reservationId, ownerId, clientToken, instances: rows.map(toInstanceView) };
  }

  /**
   * An image that is not available, as the caller may learn it: 409 to whoever may still read it
   * (its owner: a pending, failed or deregistered image), 404 to anyone else, exactly as for a
   * missing image.
   */
  private async unavailable(accountId: string, imageId: string): Promise<DomainException> {
    const visible = await this.images.findVisible(imageId, readableBy(accountId));
    return visible ? imageUnavailable(imageId, visible.state === 'available' ? 'not available yet' : visible.state) : imageNotFound(imageId);
  }

  /** Why the decision said no, as the caller may learn it: an image it may not see is missing. */
  private async refusal(decision: LaunchDecision, accountId: string, imageId: string, state: string): Promise<DomainException> {
    switch (decision.reason) {
      case 'no-subscription':
        return new DomainException(
          ErrorCode.OptInRequired,
          `The image '${imageId}' is a paid product: subscribe to it (POST /v1/subscriptions) before launching it.`,
        );
      case 'image-not-available': {
        const visible = await this.images.findVisible(imageId, readableBy(accountId));
        return visible ? imageUnavailable(imageId, state === 'available' ? 'not available yet' : state) : imageNotFound(imageId);
      }
      default:
        return imageNotFound(imageId);
    }
  }

  // Reads -----------------------------------------------------------------------------------------

  async get(caller: Caller, instanceId: string): Promise<InstanceView> {
    const row = await this.instances.findOwned(caller.accountId, instanceId);
    if (!row) throw instanceNotFound(instanceId);
    return toInstanceView(row);
  }

  async list(req: ListInstancesRequest): Promise<InstancePage> {
    const f = req.filters;
    const digest = createHash('sha256')
      .update(JSON.stringify([req.caller.accountId, f.state ?? null, f.imageId ?? null, f.instanceType ?? null]))
      .digest('base64url')
      .slice(0, 16);
    const after = req.cursor === undefined ? undefined : decodeToken(req.cursor, digest);
    const rows = await this.instances.list({
      accountId: req.caller.accountId,
      ...(f.state ? { states: f.state } : {}),
      ...(f.imageId ? { imageIds: f.imageId } : {}),
      ...(f.instanceType ? { instanceTypes: f.instanceType } : {}),
      ...(after ? { after } : {}),
      limit: req.limit + 1,
    });
    const page = rows.slice(0, req.limit);
    const last = page.at(-1);
    return {
      items: page.map(toInstanceView),
      nextCursor: rows.length > req.limit && last ? encodeToken({ t: last.createdAt.getTime(), i: last.id, d: digest }) : null,
    };
  }

  /** Internal: the metering state of any instance. */
  async internalGet(instanceId: string): Promise<InstanceChanged> {
    const row = await this.instances.findById(instanceId);
    if (!row) throw instanceNotFound(instanceId);
    return toInstanceChanged(row);
  }

  // Terminate -------------------------------------------------------------------------------------

  /**
   * pending or running → shutting-down (usage stops: stoppedAt), and the host is told to stop it;
   * it becomes terminated when the host confirms. An instance already shutting down or terminated
   * answers as it is (EC2's TerminateInstances is idempotent too).
   */
  async terminate(caller: Caller, instanceId: string): Promise<InstanceView> {
    const row = await this.instances.findOwned(caller.accountId, instanceId);
    if (!row) throw instanceNotFound(instanceId);
    const changed = await this.change(
      row,
      ['pending', 'running'],
      (now) => ({
        state: 'shutting-down',
        stateReasonCode: StateReason.userShutdown.code,
        stateReasonMessage: StateReason.userShutdown.message,
        stateChangedAt: now,
        stoppedAt: now,
      }),
      InstanceHostJobName.stop,
    );
    if (changed) return toInstanceView({ ...changed, clientToken: row.clientToken });
    return this.get(caller, instanceId);
  }

  // What the host reports (jobs of the instance host queue) -----------------------------------------

  /** Starts a pending instance on the host; a launch that can never succeed terminates it with the reason. */
  async hostStart(job: InstanceHostJob, lastAttempt: boolean): Promise<void> {
    const instance = await this.instances.findById(job.instanceId);
    if (!instance || instance.state !== 'pending') return;
    const driver = this.requireDriver();
    try {
      if (instance.manifestLocation === null) {
        throw new HostLaunchFailure(HostFailureCode.bundle, 'The image has no bundle to start from.');
      }
      // The manifest digest and signing key recorded when the image's bundle was verified: the
      // grant pins the digest, and the host checks the manifest against both.
      const image = await this.images.findById(instance.imageId);
      if (!image?.manifestDigest || !image.signerKeyId) {
        throw new HostLaunchFailure(HostFailureCode.bundle, 'The image has no verified manifest to start from.');
      }
      const hosted = hostedOf(instance, instance.manifestLocation, image.manifestDigest, image.signerKeyId);
      const grant = this.grants.issue({
        instanceId: hosted.instanceId,
        imageId: hosted.imageId,
        manifestLocation: hosted.manifestLocation,
        manifestDigest: hosted.manifestDigest,
      });
      await driver.start(hosted, grant);
    } catch (err) {
      if (!(err instanceof HostLaunchFailure) && !lastAttempt) throw err;
      const reason = err instanceof HostLaunchFailure ? { code: err.code, message: err.message } : StateReason.internalError;
      this.logger.warn({ msg: 'the host could not start an instance; it is terminated', instanceId: instance.id, reason: reason.code, err: (err as Error).message });
      await this.change(instance, ['pending'], (now) => ({
        state: 'terminated',
        stateReasonCode: reason.code,
        stateReasonMessage: reason.message.slice(0, 1024),
        stateChangedAt: now,
        stoppedAt: now,
      }));
      return;
    }
    await this.change(instance, ['pending'], (now) => ({
      state: 'running',
      stateReasonCode: StateReason.running.code,
      stateReasonMessage: StateReason.running.message,
      stateChangedAt: now,
      runningAt: now,
    }));
  }

  /** Stops a shutting-down instance on the host, then marks it terminated. */
  async hostStop(job: InstanceHostJob): Promise<void> {
    const instance = await this.instances.findById(job.instanceId);
    if (!instance || instance.state !== 'shutting-down') return;
    await this.requireDriver().stop(hostedOf(instance, instance.manifestLocation ?? '', '', ''));
    await this.change(instance, ['shutting-down'], (now) => ({ state: 'terminated', stateChangedAt: now }));
  }

  /**
   * Applies a change to an instance still in one of `from` (else nothing, null), with its event
   * and, if named, a host job; one statement, written only if nobody changed the instance since
   * it was read (else it is read again and the rule applied to what is there now).
   */
  private async change(
    read: CatalogInstance,
    from: readonly string[],
    data: (now: Date) => Partial<CatalogInstance>,
    hostJobName?: string,
  ): Promise<CatalogInstance | null> {
    const requestId = requestContext.requestId();
    let current: CatalogInstance | null = read;
    for (let attempt = 0; attempt < CHANGE_ATTEMPTS; attempt++) {
      if (!current || !from.includes(current.state)) return null;
      const now = new Date();
      const next: CatalogInstance = { ...current, ...data(now), revision: current.revision + 1, updatedAt: now };
      const events = [...this.changedEvents(next, requestId), ...(hostJobName ? [this.hostJob(hostJobName, next.id, requestId)] : [])];
      if (await this.instances.change(next, current.revision, outboxRecords(events))) return next;
      current = await this.instances.findById(read.id);
    }
    throw new Error(`instance ${read.id} changed under ${CHANGE_ATTEMPTS} attempts to change it`);
  }

  private requireDriver(): InstanceHostDriver {
    if (!this.driver) throw new Error('this process has no instance host driver (INSTANCE_HOST_DRIVER=external)');
    return this.driver;
  }

  // Outbox ------------------------------------------------------------------------------------------

  /** `catalog.instance.changed` for this version of the instance, as outbox rows. */
  private changedEvents(instance: CatalogInstance, requestId: string | undefined): NewOutboxEvent[] {
    return routeDomainEvent({ type: DomainEventType.instanceChanged, payload: toInstanceChanged(instance), ...(requestId ? { requestId } : {}) });
  }

  /** A host job, relayed with the events; its id makes one start and one stop per instance. */
  private hostJob(name: string, instanceId: string, requestId: string | undefined): NewOutboxEvent {
    const payload: InstanceHostJob = { instanceId };
    return { id: hostJobId(name, instanceId), type: name, queue: INSTANCE_HOST_QUEUE, payload, ...(requestId ? { requestId } : {}) };
  }
}

/** The value of a settled promise, or its reason thrown. */
function settled<T>(result: PromiseSettledResult<T>): T {
  if (result.status === 'rejected') throw result.reason;
  return result.value;
}

function hostedOf(instance: CatalogInstance, manifestLocation: string, manifestDigest: string, signerKeyId: string): HostedInstance {
  return { instanceId: instance.id, imageId: instance.imageId, instanceType: instance.instanceType, manifestLocation, manifestDigest, signerKeyId };
}

function encodeToken(token: PageToken): string {
  return Buffer.from(JSON.stringify(token), 'utf8').toString('base64url');
}

function decodeToken(cursor: string, digest: string): { createdAt: Date; id: string } {
  const bad = () => new DomainException(ErrorCode.InvalidPaginationToken, 'The pagination token is not valid for this list.');
  let token: PageToken;
  try {
    token = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as PageToken;
  } catch {
    throw bad();
  }
  if (
    typeof token !== 'object' ||
    token === null ||
    typeof token.t !== 'number' ||
    !Number.isFinite(token.t) ||
    typeof token.i !== 'string' ||
    !/^i-[0-9a-f]{17}$/.test(token.i) ||
    token.d !== digest
  ) {
    throw bad();
  }
  return { createdAt: new Date(token.t), id: token.i };
}
