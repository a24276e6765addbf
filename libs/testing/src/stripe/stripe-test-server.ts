import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import qs from 'qs';
import Stripe from 'stripe';

/**
 * A small Stripe-compatible HTTP server on 127.0.0.1 for tests that drive the real `stripe` SDK:
 *
 *     const server = await startStripeTestServer();
 *     const stripe = server.client();          // new Stripe(key, { host, port, protocol: 'http' })
 *
 * It speaks what ImageMart uses: customers, products, prices, subscriptions (create, retrieve,
 * update, cancel), billing meters and meter events, invoices (retrieve). Like Stripe it reads
 * form-encoded bodies (`items[0][price]=…`), checks `Authorization: Bearer sk_test_…`, answers
 * errors as `{ error: { type, code, message, param } }`, and keeps idempotent results: the same
 * `Idempotency-Key` with the same request replays the first answer (`Idempotent-Replayed: true`);
 * with another request it is a 400 `idempotency_error`. {@link StripeTestServer.failNext} makes
 * the next requests fail with a 500 or a dropped connection, before or after they took effect, so
 * a test can prove that retries do not create anything twice.
 */

export type StripeObject = Record<string, unknown> & { id: string; object: string };

/**
 * How the next requests fail:
 * - `500`: an `api_error` before the request does anything (the SDK retries it);
 * - `drop`: the connection is closed before the request does anything;
 * - `drop-after`: the request takes effect (and its idempotent result is kept), then the
 *   connection is closed before the answer: the case only an idempotency key makes safe.
 */
export type StripeFailureMode = '500' | 'drop' | 'drop-after';

export interface StripeRequestRecord {
  method: string;
  path: string;
  idempotencyKey: string | null;
  params: Record<string, unknown>;
  status: number;
  /** The answer was a replay of an idempotent result. */
  replayed: boolean;
  /** The request was failed on purpose ({@link StripeTestServer.failNext}). */
  failed: StripeFailureMode | null;
}

export interface StripeTestServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  host: string;
  port: number;
  protocol: 'http';
  /** The secret key the server accepts. */
  secretKey: string;
  /** A real SDK client of this server. `maxNetworkRetries` defaults to 2. */
  client(options?: { maxNetworkRetries?: number; apiKey?: string }): Stripe;
  /** Settings for a service: `STRIPE_SECRET_KEY`, `STRIPE_API_HOST`, `STRIPE_API_PORT`, `STRIPE_API_PROTOCOL`. */
  env(): Record<string, string>;
  /** Fail the next `count` requests (optionally only those whose `METHOD /path` matches). */
  failNext(count: number, mode: StripeFailureMode, match?: RegExp): void;
  /** Every request received, in order. */
  readonly requests: StripeRequestRecord[];
  /** The objects of one kind (`customer`, `product`, `price`, `subscription`, `invoice`, `billing.meter`, `billing.meter_event`). */
  objects(kind: string): StripeObject[];
  get(id: string): StripeObject | undefined;
  /** Changes a stored object, as Stripe would on its own (an invoice paid, a subscription past due). */
  update(id: string, change: Record<string, unknown>): StripeObject;
  close(): Promise<void>;
}

const ID_PREFIX: Record<string, string> = {
  customer: 'cus',
  product: 'prod',
  price: 'price',
  subscription: 'sub',
  subscription_item: 'si',
  invoice: 'in',
  'billing.meter': 'mtr',
  'billing.meter_event': 'mev',
};

class StripeHttpError extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
    readonly code?: string,
    readonly param?: string,
  ) {
    super(message);
  }

  body() {
    return {
      error: {
        type: this.type,
        message: this.message,
        ...(this.code ? { code: this.code } : {}),
        ...(this.param ? { param: this.param } : {}),
      },
    };
  }
}

const missing = (param: string) =>
  new StripeHttpError(
    400,
    'invalid_request_error',
    `Missing required param: ${param}.`,
    'parameter_missing',
    param,
  );
const invalid = (param: string, message: string) =>
  new StripeHttpError(400, 'invalid_request_error', message, 'parameter_invalid', param);
const noSuch = (kind: string, id: string) =>
  new StripeHttpError(404, 'invalid_request_error', `No such ${kind}: '${id}'`, 'resource_missing', 'id');

type Params = Record<string, unknown>;

const str = (p: Params, name: string): string | undefined =>
  typeof p[name] === 'string' ? p[name] : undefined;
const required = (p: Params, name: string): string => {
  const v = str(p, name);
  if (v === undefined || v === '') throw missing(name);
  return v;
};
const int = (p: Params, name: string): number | undefined => {
  const v = str(p, name);
  if (v === undefined) return undefined;
  if (!/^-?\d+$/.test(v)) throw invalid(name, `Invalid integer: ${v}`);
  return Number(v);
};
const bool = (p: Params, name: string): boolean | undefined => {
  const v = str(p, name);
  if (v === undefined) return undefined;
  if (v !== 'true' && v !== 'false') throw invalid(name, `Invalid boolean: ${v}`);
  return v === 'true';
};
const metadataOf = (p: Params, current: Record<string, string> = {}): Record<string, string> => {
  const m = p.metadata;
  if (m === undefined || m === '') return m === '' ? {} : current;
  if (typeof m !== 'object' || m === null) throw invalid('metadata', 'Invalid hash');
  const next = { ...current };
  for (const [k, v] of Object.entries(m as Params)) {
    if (v === '') delete next[k];
    else next[k] = String(v);
  }
  return next;
};
const listOf = (p: Params, name: string): Params[] => {
  const v = p[name];
  if (v === undefined) return [];
  const items = Array.isArray(v) ? v : typeof v === 'object' && v !== null ? Object.values(v) : null;
  if (!items || items.some((i) => typeof i !== 'object' || i === null))
    throw invalid(name, `Invalid array: ${name}`);
  return items as Params[];
};

/** Stable JSON of parsed params, to compare two uses of one idempotency key. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Params)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

const nowS = () => Math.floor(Date.now() / 1000);
/** The first instant of the next calendar month (UTC), in seconds. */
const nextMonthS = (atS: number) => {
  const d = new Date(atS * 1000);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) / 1000;
};

interface Stored {
  fingerprint: string;
  status: number;
  body: string;
}

export async function startStripeTestServer(options: { secretKey?: string } = {}): Promise<StripeTestServer> {
  const secretKey = options.secretKey ?? `sk_test_${randomBytes(12).toString('hex')}`;
  const objects = new Map<string, StripeObject>();
  const idempotent = new Map<string, Stored>();
  const requests: StripeRequestRecord[] = [];
  const failures: { mode: StripeFailureMode; match?: RegExp }[] = [];
  const sockets = new Set<Socket>();

  const newId = (kind: string) => `${ID_PREFIX[kind] ?? 'obj'}_${randomBytes(10).toString('hex')}`;
  const put = <T extends StripeObject>(obj: T): T => {
    objects.set(obj.id, obj);
    return obj;
  };
  const find = (kind: string, id: string, label = kind): StripeObject => {
    const obj = objects.get(id);
    if (!obj || obj.object !== kind) throw noSuch(label, id);
    return obj;
  };

  // ---- resources -------------------------------------------------------------------------------

  const createCustomer = (p: Params) =>
    put({
      id: newId('customer'),
      object: 'customer',
      created: nowS(),
      livemode: false,
      email: str(p, 'email') ?? null,
      name: str(p, 'name') ?? null,
      metadata: metadataOf(p),
    });

  const createProduct = (p: Params) => {
    const id = str(p, 'id') ?? newId('product');
    if (objects.has(id))
      throw new StripeHttpError(
        400,
        'invalid_request_error',
        `Product already exists.`,
        'resource_already_exists',
        'id',
      );
    return put({
      id,
      object: 'product',
      created: nowS(),
      updated: nowS(),
      livemode: false,
      active: bool(p, 'active') ?? true,
      name: required(p, 'name'),
      description: str(p, 'description') ?? null,
      metadata: metadataOf(p),
    });
  };

  const createPrice = (p: Params) => {
    const currency = required(p, 'currency').toLowerCase();
    const product = required(p, 'product');
    find('product', product);
    const unitAmount = int(p, 'unit_amount');
    const unitAmountDecimal = str(p, 'unit_amount_decimal');
    if (unitAmount === undefined && unitAmountDecimal === undefined) throw missing('unit_amount');
    if (unitAmountDecimal !== undefined && !/^\d+(\.\d{1,12})?$/.test(unitAmountDecimal))
      throw invalid('unit_amount_decimal', 'Invalid decimal');
    const recurringParams = p.recurring as Params | undefined;
    let recurring: Params | null = null;
    if (recurringParams) {
      const interval = required(recurringParams, 'interval');
      if (!['day', 'week', 'month', 'year'].includes(interval))
        throw invalid('recurring[interval]', `Invalid interval: ${interval}`);
      const usageType = str(recurringParams, 'usage_type') ?? 'licensed';
      const meter = str(recurringParams, 'meter') ?? null;
      if (usageType === 'metered' && !meter) throw missing('recurring[meter]');
      if (meter) find('billing.meter', meter, 'billing meter');
      recurring = {
        interval,
        interval_count: int(recurringParams, 'interval_count') ?? 1,
        usage_type: usageType,
        meter,
      };
    }
    return put({
      id: newId('price'),
      object: 'price',
      created: nowS(),
      livemode: false,
      active: bool(p, 'active') ?? true,
      currency,
      product,
      nickname: str(p, 'nickname') ?? null,
      lookup_key: str(p, 'lookup_key') ?? null,
      type: recurring ? 'recurring' : 'one_time',
      recurring,
      unit_amount:
        unitAmount ??
        (unitAmountDecimal && /^\d+$/.test(unitAmountDecimal) ? Number(unitAmountDecimal) : null),
      unit_amount_decimal: unitAmountDecimal ?? String(unitAmount),
      billing_scheme: 'per_unit',
      metadata: metadataOf(p),
    });
  };

  const updateSimple = (kind: string, id: string, p: Params, fields: string[]) => {
    const obj = find(kind, id);
    for (const f of fields) {
      if (f === 'active') {
        const v = bool(p, 'active');
        if (v !== undefined) obj.active = v;
      } else if (str(p, f) !== undefined) obj[f] = str(p, f);
    }
    obj.metadata = metadataOf(p, obj.metadata as Record<string, string>);
    return obj;
  };

  /** Licensed prices in cents, for the invoice a new subscription opens with. */
  const centsOf = (price: StripeObject, quantity: number) =>
    Math.round(Number(price.unit_amount_decimal) * quantity);

  const createSubscription = (p: Params) => {
    const customer = required(p, 'customer');
    find('customer', customer);
    const itemParams = listOf(p, 'items');
    if (itemParams.length === 0) throw missing('items');
    const created = nowS();
    const anchor = int(p, 'billing_cycle_anchor') ?? nextMonthS(created);
    const id = newId('subscription');
    const items = itemParams.map((i, n) => {
      const priceId = str(i, 'price');
      if (!priceId) throw missing(`items[${n}][price]`);
      const price = find('price', priceId);
      if (price.type !== 'recurring')
        throw invalid(`items[${n}][price]`, `The price ${priceId} is not recurring.`);
      const metered = (price.recurring as Params).usage_type === 'metered';
      return {
        id: newId('subscription_item'),
        object: 'subscription_item',
        created,
        subscription: id,
        price,
        quantity: metered ? undefined : (int(i, 'quantity') ?? 1),
        current_period_start: created,
        current_period_end: anchor,
        metadata: metadataOf(i),
      };
    });
    const addInvoiceItems = listOf(p, 'add_invoice_items').map((i, n) => {
      const priceId = str(i, 'price');
      if (!priceId) throw missing(`add_invoice_items[${n}][price]`);
      return { price: find('price', priceId), quantity: int(i, 'quantity') ?? 1 };
    });
    const amount =
      items.reduce((sum, i) => sum + (i.quantity ? centsOf(i.price, i.quantity) : 0), 0) +
      addInvoiceItems.reduce((sum, i) => sum + centsOf(i.price, i.quantity), 0);
    const invoice = put({
      id: newId('invoice'),
      object: 'invoice',
      created,
      livemode: false,
      customer,
      status: 'paid',
      currency: typeof items[0]?.price.currency === 'string' ? items[0].price.currency : 'usd',
      amount_due: amount,
      amount_paid: amount,
      amount_remaining: 0,
      billing_reason: 'subscription_create',
      parent: {
        type: 'subscription_details',
        subscription_details: { subscription: id, metadata: metadataOf(p) },
      },
      period_start: created,
      period_end: created,
      status_transitions: {
        finalized_at: created,
        paid_at: created,
        voided_at: null,
        marked_uncollectible_at: null,
      },
      metadata: {},
    });
    return put({
      id,
      object: 'subscription',
      created,
      livemode: false,
      customer,
      status: 'active',
      currency: invoice.currency,
      billing_cycle_anchor: anchor,
      cancel_at_period_end: bool(p, 'cancel_at_period_end') ?? false,
      cancel_at: null,
      canceled_at: null,
      ended_at: null,
      start_date: created,
      latest_invoice: invoice.id,
      collection_method: str(p, 'collection_method') ?? 'charge_automatically',
      proration_behavior: str(p, 'proration_behavior') ?? 'create_prorations',
      items: {
        object: 'list',
        data: items,
        has_more: false,
        url: `/v1/subscription_items?subscription=${id}`,
      },
      metadata: metadataOf(p),
    });
  };

  const updateSubscription = (id: string, p: Params) => {
    const sub = find('subscription', id);
    if (sub.status === 'canceled') {
      throw new StripeHttpError(
        400,
        'invalid_request_error',
        'A canceled subscription can only update its cancellation_details and metadata.',
      );
    }
    const cancelAtPeriodEnd = bool(p, 'cancel_at_period_end');
    if (cancelAtPeriodEnd !== undefined) {
      sub.cancel_at_period_end = cancelAtPeriodEnd;
      const items = (sub.items as { data: { current_period_end: number }[] }).data;
      sub.cancel_at = cancelAtPeriodEnd ? (items[0]?.current_period_end ?? null) : null;
      sub.canceled_at = cancelAtPeriodEnd ? nowS() : null;
    }
    sub.metadata = metadataOf(p, sub.metadata as Record<string, string>);
    return sub;
  };

  const cancelSubscription = (id: string) => {
    const sub = find('subscription', id);
    if (sub.status === 'canceled') {
      throw new StripeHttpError(
        400,
        'invalid_request_error',
        `This subscription is already canceled: ${id}`,
        'resource_missing',
      );
    }
    const t = nowS();
    Object.assign(sub, { status: 'canceled', canceled_at: sub.canceled_at ?? t, ended_at: t });
    return sub;
  };

  const createMeter = (p: Params) => {
    const eventName = required(p, 'event_name');
    const agg = (p.default_aggregation as Params | undefined) ?? {};
    return put({
      id: newId('billing.meter'),
      object: 'billing.meter',
      created: nowS(),
      livemode: false,
      display_name: required(p, 'display_name'),
      event_name: eventName,
      status: 'active',
      default_aggregation: { formula: required(agg, 'formula') },
      customer_mapping: {
        event_payload_key: 'stripe_customer_id',
        type: 'by_id',
        ...((p.customer_mapping as Params | undefined) ?? {}),
      },
      value_settings: { event_payload_key: 'value', ...((p.value_settings as Params | undefined) ?? {}) },
    });
  };

  const createMeterEvent = (p: Params) => {
    const eventName = required(p, 'event_name');
    const payload = p.payload as Params | undefined;
    if (!payload || typeof payload !== 'object') throw missing('payload');
    const meter = [...objects.values()].find(
      (o) => o.object === 'billing.meter' && o.event_name === eventName,
    );
    if (!meter) throw invalid('event_name', `No active meter found for event_name ${eventName}.`);
    const customerKey = (meter.customer_mapping as Params).event_payload_key as string;
    const customer = str(payload, customerKey);
    if (!customer) throw missing(`payload[${customerKey}]`);
    find('customer', customer);
    const valueKey = (meter.value_settings as Params).event_payload_key as string;
    if (!/^\d+$/.test(str(payload, valueKey) ?? ''))
      throw invalid(`payload[${valueKey}]`, 'The value must be a whole number.');
    const identifier = str(p, 'identifier') ?? randomBytes(8).toString('hex');
    // Stripe refuses an identifier it has seen within 24 hours.
    if (
      [...objects.values()].some((o) => o.object === 'billing.meter_event' && o.identifier === identifier)
    ) {
      throw new StripeHttpError(
        400,
        'invalid_request_error',
        `An event already exists with identifier ${identifier}.`,
        'resource_already_exists',
        'identifier',
      );
    }
    const event = {
      id: newId('billing.meter_event'),
      object: 'billing.meter_event',
      created: nowS(),
      livemode: false,
      event_name: eventName,
      identifier,
      payload,
      timestamp: int(p, 'timestamp') ?? nowS(),
    };
    put(event);
    // The answer has no id in Stripe; it is kept with one here so tests can list events.
    return {
      object: 'billing.meter_event',
      created: event.created,
      livemode: false,
      event_name: eventName,
      identifier,
      payload,
      timestamp: event.timestamp,
    };
  };

  // ---- routing ---------------------------------------------------------------------------------

  type Route = [method: string, pattern: RegExp, handle: (p: Params, m: RegExpMatchArray) => unknown];
  const routes: Route[] = [
    ['POST', /^\/v1\/customers$/, (p) => createCustomer(p)],
    ['GET', /^\/v1\/customers\/([^/]+)$/, (_p, m) => find('customer', m[1])],
    ['POST', /^\/v1\/customers\/([^/]+)$/, (p, m) => updateSimple('customer', m[1], p, ['email', 'name'])],
    ['POST', /^\/v1\/products$/, (p) => createProduct(p)],
    ['GET', /^\/v1\/products\/([^/]+)$/, (_p, m) => find('product', m[1])],
    [
      'POST',
      /^\/v1\/products\/([^/]+)$/,
      (p, m) => updateSimple('product', m[1], p, ['name', 'description', 'active']),
    ],
    ['POST', /^\/v1\/prices$/, (p) => createPrice(p)],
    ['GET', /^\/v1\/prices\/([^/]+)$/, (_p, m) => find('price', m[1])],
    ['POST', /^\/v1\/prices\/([^/]+)$/, (p, m) => updateSimple('price', m[1], p, ['active', 'nickname'])],
    ['POST', /^\/v1\/subscriptions$/, (p) => createSubscription(p)],
    ['GET', /^\/v1\/subscriptions\/([^/]+)$/, (_p, m) => find('subscription', m[1])],
    ['POST', /^\/v1\/subscriptions\/([^/]+)$/, (p, m) => updateSubscription(m[1], p)],
    ['DELETE', /^\/v1\/subscriptions\/([^/]+)$/, (_p, m) => cancelSubscription(m[1])],
    ['GET', /^\/v1\/invoices\/([^/]+)$/, (_p, m) => find('invoice', m[1])],
    ['POST', /^\/v1\/billing\/meters$/, (p) => createMeter(p)],
    ['GET', /^\/v1\/billing\/meters\/([^/]+)$/, (_p, m) => find('billing.meter', m[1], 'billing meter')],
    ['POST', /^\/v1\/billing\/meter_events$/, (p) => createMeterEvent(p)],
  ];

  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  const send = (res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, {
      'content-type': 'application/json',
      'request-id': `req_${randomBytes(7).toString('hex')}`,
      ...headers,
    });
    res.end(body);
  };

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const method = req.method ?? 'GET';
    const raw = await readBody(req);
    const params = (
      method === 'GET' || method === 'DELETE'
        ? qs.parse(url.search.slice(1), { depth: 10 })
        : qs.parse(raw, { depth: 10, arrayLimit: 1000 })
    ) as Params;
    const key = (req.headers['idempotency-key'] as string | undefined) ?? null;
    const record: StripeRequestRecord = {
      method,
      path: url.pathname,
      idempotencyKey: key,
      params,
      status: 0,
      replayed: false,
      failed: null,
    };
    requests.push(record);

    const failureAt = failures.findIndex((f) => !f.match || f.match.test(`${method} ${url.pathname}`));
    const failure = failureAt >= 0 ? failures.splice(failureAt, 1)[0] : undefined;
    if (failure) record.failed = failure.mode;
    if (failure?.mode === 'drop') {
      req.socket.destroy();
      return;
    }
    if (failure?.mode === '500') {
      record.status = 500;
      send(
        res,
        500,
        JSON.stringify({
          error: { type: 'api_error', message: 'An unknown error occurred (a test asked for it).' },
        }),
      );
      return;
    }

    const answer = (status: number, body: string, headers: Record<string, string> = {}) => {
      record.status = status;
      if (failure?.mode === 'drop-after') {
        req.socket.destroy();
        return;
      }
      send(res, status, body, headers);
    };

    const auth = req.headers.authorization ?? '';
    if (auth !== `Bearer ${secretKey}`) {
      const shown = auth.startsWith('Bearer ') ? `${auth.slice(7, 15)}…` : '';
      answer(
        401,
        JSON.stringify({
          error: {
            type: 'invalid_request_error',
            message: shown ? `Invalid API Key provided: ${shown}` : 'You did not provide an API key.',
          },
        }),
      );
      return;
    }

    const fingerprint = `${method} ${url.pathname} ${canonical(params)}`;
    if (key && method === 'POST') {
      const stored = idempotent.get(key);
      if (stored) {
        if (stored.fingerprint !== fingerprint) {
          answer(
            400,
            JSON.stringify({
              error: {
                type: 'idempotency_error',
                message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
              },
            }),
          );
          return;
        }
        record.replayed = true;
        answer(stored.status, stored.body, { 'idempotency-key': key, 'idempotent-replayed': 'true' });
        return;
      }
    }

    let status = 200;
    let body: string;
    const route = routes.find(([m, pattern]) => m === method && pattern.test(url.pathname));
    try {
      if (!route)
        throw new StripeHttpError(
          404,
          'invalid_request_error',
          `Unrecognized request URL (${method}: ${url.pathname}).`,
        );
      body = JSON.stringify(route[2](params, url.pathname.match(route[1])!));
    } catch (err) {
      if (!(err instanceof StripeHttpError)) throw err;
      status = err.status;
      body = JSON.stringify(err.body());
    }
    // As Stripe: a result is kept once the endpoint ran; a request that failed validation is not.
    const ran = status < 400 || status >= 500;
    if (key && method === 'POST' && ran) idempotent.set(key, { fingerprint, status, body });
    answer(status, body, key ? { 'idempotency-key': key } : {});
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent)
        send(res, 500, JSON.stringify({ error: { type: 'api_error', message: String(err) } }));
    });
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    protocol: 'http',
    secretKey,
    client: (opts = {}) =>
      new Stripe(opts.apiKey ?? secretKey, {
        host: '127.0.0.1',
        port,
        protocol: 'http',
        maxNetworkRetries: opts.maxNetworkRetries ?? 2,
      }),
    env: () => ({
      STRIPE_SECRET_KEY: secretKey,
      STRIPE_API_HOST: '127.0.0.1',
      STRIPE_API_PORT: String(port),
      STRIPE_API_PROTOCOL: 'http',
    }),
    failNext(count, mode, match) {
      for (let i = 0; i < count; i++) failures.push({ mode, match });
    },
    requests,
    objects: (kind) => [...objects.values()].filter((o) => o.object === kind),
    get: (id) => objects.get(id),
    update(id, change) {
      const obj = objects.get(id);
      if (!obj) throw new Error(`no object ${id}`);
      return Object.assign(obj, change);
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
