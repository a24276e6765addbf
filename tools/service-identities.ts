/**
 * `npx tsx tools/service-identities.ts >> .env`: a new signing identity for every process, as the
 * lines docker-compose.yml reads (SERVICE_IDENTITY_KEY_<PROCESS>, its secret, and
 * SERVICE_CALLER_KEYS_<PROCESS>, its keys for the others; see docs/messaging.md, "Signed callers").
 * Both are secrets: keep the file to yourself.
 */
import { callerKeysSetting, generateIdentitySecret, type SigningProcess } from '@imagemart/contracts';

const processes = ['storefront-api', 'catalog', 'billing', 'permission', 'bundler-worker'] as const;
const secrets = new Map<SigningProcess, string>(processes.map((name) => [name, generateIdentitySecret()]));
for (const name of processes) {
  const variable = name.toUpperCase().replace(/-/g, '_');
  process.stdout.write(`SERVICE_IDENTITY_KEY_${variable}=${secrets.get(name)}\n`);
  process.stdout.write(`SERVICE_CALLER_KEYS_${variable}=${callerKeysSetting(name, secrets)}\n`);
}
