/**
 * `npx tsx tools/service-identities.ts >> .env`: a new signing identity for every process, as the
 * lines docker-compose.yml reads (SERVICE_IDENTITY_KEY_<PROCESS> and SERVICE_TRUSTED_KEYS; see
 * docs/messaging.md, "Signed callers"). The private keys are secrets: keep the file to yourself.
 */
import { formatTrustedKeys, generateIdentityKeyPair } from '@imagemart/contracts';

const processes = ['storefront-api', 'catalog', 'billing', 'permission', 'bundler-worker'] as const;
const pairs = processes.map((name) => [name, generateIdentityKeyPair()] as const);
for (const [name, pair] of pairs) {
  process.stdout.write(`SERVICE_IDENTITY_KEY_${name.toUpperCase().replace(/-/g, '_')}=${pair.privateKey}\n`);
}
process.stdout.write(
  `SERVICE_TRUSTED_KEYS=${formatTrustedKeys(pairs.map(([name, pair]) => [name, pair.publicKey] as const))}\n`,
);
