/**
 * `npx tsx tools/redis-acl-file.ts [PREFIX] > deploy/redis/users.acl.template`: writes the Redis
 * ACL file template of a deployment under PREFIX (default `imagemart`, as docker-compose.yml uses)
 * from the rules in libs/messaging/src/acl/redis-acl.rules.ts. Regenerate it whenever those rules
 * change; a test fails while the committed template differs.
 */
import { redisAclTemplate } from '@imagemart/messaging';

process.stdout.write(redisAclTemplate(process.argv[2] ?? 'imagemart'));
