import { platformKeysKey } from '../bundling/platform-keys.js';
import { INSTANCE_HOST_QUEUE } from '../catalog/instances.jobs.js';
import { EVENT_ROUTES, EventQueue, type DomainEventType } from '../events/domain-events.js';
import { apiKeyGenerationKey } from '../permission/permission.patterns.js';
import { QueueName, heartbeatKey } from './queues.js';
import { eventProducer, PATTERN_SENDERS } from './callers.js';
import { RpcService } from './services.js';

/**
 * Redis as a boundary: each process reaches Redis as its own ACL user, limited to the keys,
 * streams, queues and channels it uses and to the commands it sends (docs/operations.md, "Redis as
 * a boundary"). This file is the one definition of those rights: `npm start` creates the users
 * from it, and `tools/redis-acl-file.ts` writes the ACL file docker-compose starts Redis with.
 *
 * A right is a selector: commands bound to key patterns (`%R~` read, `%W~` write), so a process
 * may, say, push replies onto its callers' reply lists and do nothing else with them. Keyless
 * commands (PING, INFO, MULTI, CLIENT ID, ...) are the user's root permissions.
 */

/** Every process that reaches Redis, the gateway first. */
export const REDIS_ACL_PROCESSES = [
  'storefront-api',
  'permission',
  'catalog',
  'billing',
  'bundler-worker',
] as const;
export type RedisAclProcess = (typeof REDIS_ACL_PROCESSES)[number];

/**
 * A process's ACL user: `<prefix>.<process>`, so that deployments (and test runs) sharing one
 * Redis under different prefixes never share a user.
 */
export const redisUserName = (prefix: string, process: RedisAclProcess): string => `${prefix}.${process}`;

/**
 * The process a Redis user speaks for on the RPC bus: the part after `<prefix>.` of a user named
 * as {@link redisUserName} names them, else the whole user name; none for the default user. An
 * RPC client names its reply list after it (`<prefix>:rpc:reply:<caller>:<uuid>`).
 */
export function callerOfRedisUser(user: string | undefined, prefix: string): string | undefined {
  if (!user || user === 'default') return undefined;
  return user.startsWith(`${prefix}.`) ? user.slice(prefix.length + 1) : user;
}

/** One right: commands allowed on keys matching these patterns (already `%R~`, `%W~` or `%RW~`). */
export interface RedisAclGrant {
  /** What the process does with these keys, for the docs and the ACL file's comments. */
  purpose: string;
  keys: string[];
  commands: string[];
}

/** A process's whole definition: root permissions (keyless commands, channels) and its grants. */
export interface RedisAclDefinition {
  process: RedisAclProcess;
  commands: string[];
  channels: string[];
  grants: RedisAclGrant[];
}

/**
 * The services a process calls over RPC: those with a pattern it may send (PATTERN_SENDERS, the
 * one statement of who sends what). Each RPC service also calls itself: its container's health
 * check (`tools/healthcheck.ts`) pings it with the service's own credentials.
 */
function rpcCalls(process: RedisAclProcess): RpcService[] {
  return Object.values(RpcService).filter((service) =>
    Object.entries(PATTERN_SENDERS).some(
      ([pattern, senders]) => pattern.startsWith(`${service}.`) && senders.includes(process),
    ),
  );
}

/**
 * The BullMQ queues each process uses besides the event queues its outbox relays to: the queues
 * its workers consume, the ones it adds jobs to directly, and the gateway's dashboard (which shows,
 * retries and removes jobs), metrics and upload status (which read them).
 */
const OWN_QUEUES: Record<RedisAclProcess, readonly string[]> = {
  'storefront-api': Object.values(QueueName),
  permission: [EventQueue.permission],
  catalog: [EventQueue.catalog, INSTANCE_HOST_QUEUE],
  billing: [EventQueue.billing, QueueName.stripeSync],
  'bundler-worker': [EventQueue.bundling, QueueName.bundling],
};

/** The queues a process touches: its own, and every queue its outbox's events are routed to. */
export function queuesOf(process: RedisAclProcess): string[] {
  const relayed = (Object.keys(EVENT_ROUTES) as DomainEventType[])
    .filter((type) => eventProducer(type) === process)
    .flatMap((type) => EVENT_ROUTES[type]);
  return [...new Set([...OWN_QUEUES[process], ...relayed])].sort();
}

/** The callers a service answers: the processes that call it. */
function callersOf(service: RpcService): RedisAclProcess[] {
  return REDIS_ACL_PROCESSES.filter((p) => p === service || rpcCalls(p).includes(service));
}

const isRpcService = (process: RedisAclProcess): process is RpcService =>
  (Object.values(RpcService) as string[]).includes(process);

/**
 * Keyless commands every connection sends: AUTH (always allowed), ioredis's ready check (INFO,
 * which BullMQ also reads for the server's version and eviction policy), connection names,
 * transactions, and TIME (the launch-rate and BullMQ scripts read the clock).
 */
// prettier-ignore
const CONNECTION_COMMANDS = ['+ping', '+info', '+quit', '+client|setname', '+client|getname', '+client|id', '+multi', '+exec', '+discard', '+time'];

/**
 * What BullMQ sends on a queue's keys: its Lua scripts by EVALSHA (EVAL when Redis has not cached
 * one yet), every command those scripts call (Redis 7 checks each against the caller's ACL), the
 * commands its getters send directly, and BZPOPMIN, the worker's blocking wait.
 */
// prettier-ignore
export const BULLMQ_COMMANDS = [
  '+evalsha', '+eval', '+bzpopmin',
  '+exists', '+type', '+del', '+unlink', '+rename', '+persist', '+pexpire', '+pexpireat', '+pttl',
  '+get', '+set', '+incr', '+incrby',
  '+hget', '+hmget', '+hgetall', '+hset', '+hmset', '+hdel', '+hexists', '+hincrby', '+hlen', '+hscan',
  '+lpush', '+rpush', '+lpop', '+rpop', '+rpoplpush', '+lrem', '+llen', '+lrange', '+lindex', '+lpos', '+lset', '+ltrim',
  '+sadd', '+srem', '+scard', '+smembers', '+sismember', '+sscan',
  '+zadd', '+zrem', '+zscore', '+zcard', '+zcount', '+zlexcount', '+zrange', '+zrangebyscore', '+zrangebylex',
  '+zrevrange', '+zrevrangebyscore', '+zremrangebyscore', '+zremrangebyrank', '+zpopmin',
  '+xadd', '+xtrim', '+xlen', '+xrange', '+xread', '+xdel',
];

/** A request stream's consumer group, as the RPC server drives it. */
// prettier-ignore
const RPC_SERVER_COMMANDS = [
  '+xgroup|create', '+xgroup|delconsumer', '+xreadgroup', '+xack', '+xdel', '+xautoclaim', '+xclaim', '+xpending',
  // Its own health check sends it requests.
  '+xadd',
];

/** The rules of one process's user under `prefix`: its root permissions and its grants. */
export function redisAclDefinition(prefix: string, process: RedisAclProcess): RedisAclDefinition {
  const k = (suffix: string) => `${prefix}:${suffix}`;
  const commands = [...CONNECTION_COMMANDS];
  const channels: string[] = [];
  const grants: RedisAclGrant[] = [];

  // RPC: requests onto the called services' streams, replies read from its own lists.
  const calls = isRpcService(process) ? [...rpcCalls(process), process] : rpcCalls(process);
  if (calls.length > 0) {
    grants.push({
      purpose: `sends requests to ${calls.join(', ')}`,
      keys: calls.map((s) => `%W~${k(`rpc:${s}`)}`),
      commands: ['+xadd'],
    });
    grants.push({
      purpose: 'reads the replies to its own calls',
      keys: [`%RW~${k(`rpc:reply:${process}:*`)}`],
      commands: ['+blmpop', '+blpop', '+unlink'],
    });
  }
  if (isRpcService(process)) {
    // CLIENT UNBLOCK ends its own blocked XREADGROUP at shutdown.
    commands.push('+client|unblock');
    grants.push({
      purpose: `serves its request stream as the consumer group ${process}`,
      keys: [`%RW~${k(`rpc:${process}`)}`],
      commands: RPC_SERVER_COMMANDS,
    });
    grants.push({
      purpose: "remembers the request ids it acted on (the caller assertions' replay guard, a script)",
      keys: [`%RW~${k(`rpc:seen:${process}:*`)}`],
      commands: ['+evalsha', '+eval', '+set', '+get'],
    });
    grants.push({
      purpose: `answers its callers (${callersOf(process).join(', ')}) on their reply lists`,
      keys: callersOf(process).map((c) => `%W~${k(`rpc:reply:${c}:*`)}`),
      commands: ['+rpush', '+pexpire'],
    });
  }

  grants.push({
    purpose: `BullMQ queues ${queuesOf(process).join(', ')}`,
    keys: queuesOf(process).map((q) => `%RW~${k(`${q}:*`)}`),
    commands: BULLMQ_COMMANDS,
  });

  switch (process) {
    case 'storefront-api':
      grants.push(
        {
          purpose: 'rate limits per client address and per API key',
          keys: [`%RW~${k('ratelimit:*')}`],
          commands: ['+evalsha', '+eval', '+set', '+incrby', '+pttl', '+expire'],
        },
        {
          purpose: "checks the permission service's API-key generation and reads the platform's public keys",
          keys: [`%R~${apiKeyGenerationKey(prefix)}`, `%R~${platformKeysKey(prefix)}`],
          commands: ['+get'],
        },
        {
          purpose: "checks the catalog's list generations before reusing a page",
          keys: [`%R~${k('catalog:list-generation*')}`],
          commands: ['+mget'],
        },
        {
          purpose: "counts the bundler-worker's live replicas (and drops beats long gone) for /health",
          keys: [`%RW~${heartbeatKey(prefix, 'bundler-worker')}`],
          commands: ['+zcount', '+zremrangebyscore'],
        },
      );
      break;
    case 'catalog':
      grants.push(
        {
          purpose: 'list-cache generations and launch rates',
          keys: [`%RW~${k('catalog:*')}`],
          commands: ['+evalsha', '+eval', '+mget', '+incr', '+set', '+hmget', '+hset', '+pexpire'],
        },
        {
          purpose: "reads the permission service's decision generations",
          keys: [`%R~${k('permission:decision-generation:*')}`],
          commands: ['+mget'],
        },
      );
      break;
    case 'permission':
      channels.push(`&${k('permission:decision-invalidations')}`);
      commands.push('+subscribe', '+unsubscribe', '+publish');
      grants.push({
        purpose: 'moves the API-key and decision generations',
        keys: [`%RW~${k('permission:*')}`],
        commands: ['+incr', '+mget', '+get'],
      });
      break;
    case 'bundler-worker':
      grants.push(
        {
          purpose: "publishes the platform's public keys",
          keys: [`%W~${platformKeysKey(prefix)}`],
          commands: ['+set'],
        },
        {
          purpose: 'beats its heartbeat (and its container health check reads it)',
          keys: [`%RW~${heartbeatKey(prefix, 'bundler-worker')}`],
          commands: ['+zadd', '+zrem', '+zcount', '+zremrangebyscore'],
        },
      );
      break;
    case 'billing':
      break;
  }
  return { process, commands, channels, grants };
}

/**
 * The ACL SETUSER rules of one process's user, without its password: everything reset, the user
 * on, root commands and channels, then one selector per grant. Append `>password` (ACL SETUSER) or
 * `#sha256` (an ACL file).
 */
export function redisAclRules(prefix: string, process: RedisAclProcess): string[] {
  const definition = redisAclDefinition(prefix, process);
  return [
    'reset',
    'on',
    ...definition.commands,
    ...(definition.channels.length > 0 ? definition.channels : ['resetchannels']),
    ...definition.grants.map((g) => `(${[...g.keys, ...g.commands].join(' ')})`),
  ];
}
