import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { bundleCommand, type BundleCommandOptions } from './commands/bundle.command.js';
import {
  generateKeyCommand,
  listKeysCommand,
  registerKeyCommand,
  revokeKeyCommand,
  type KeysApiOptions,
} from './commands/keys.command.js';
import { statusCommand, type StatusCommandOptions } from './commands/status.command.js';
import { uploadCommand, type UploadCommandOptions } from './commands/upload.command.js';
import { verifyCommand, type VerifyCommandOptions } from './commands/verify.command.js';
import { CliError, ExitCode, oneLine } from './cli.errors.js';

export const CLI_VERSION = '0.1.0';

const ARCHITECTURES = ['i386', 'x86_64', 'arm64'];

function wholeNumber(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min)
      throw new InvalidArgumentError(`must be a whole number of at least ${min}`);
    return n;
  };
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

const apiOption = () =>
  new Option('--api <url>', 'the ImageMart API, e.g. https://api.imagemart.example').env('IMAGEMART_API');
const apiKeyOption = () => new Option('--api-key <key>', 'your API key').env('IMAGEMART_API_KEY');

export interface CliIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

/** The `imagemart` command line; `run()` parses `argv` and answers the exit code. */
export function createProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  const program = new Command('imagemart')
    .description('Bundle machine images on your own machine and publish them on ImageMart.')
    .version(CLI_VERSION)
    .exitOverride()
    .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) });

  program
    .command('bundle')
    .description(
      'compress, encrypt, split and sign a raw image into a bundle directory (parts + manifest.xml)',
    )
    .requiredOption('--image <file>', 'the raw image (a disk or file system image)')
    .requiredOption('--name <name>', 'the image name (1-128 characters)')
    .addOption(
      new Option('--arch <architecture>', 'the architecture').choices(ARCHITECTURES).makeOptionMandatory(),
    )
    .option('--kernel <id>', 'the default kernel id (aki-…), for paravirtual images')
    .option('--ramdisk <id>', 'the default ramdisk id (ari-…)')
    .addOption(
      new Option('--virtualization <type>', 'the virtualization type').choices(['hvm', 'paravirtual']),
    )
    .option('--image-version <version>', "the image's version, e.g. 2026.11.1")
    .option('--description <text>', 'a description (at most 255 characters)')
    .option('--root-device <device>', 'the root device, e.g. /dev/xvda')
    .option('--product-code <code>', 'a product code of your listing (repeat for several)', collect)
    .requiredOption('--key <pem>', 'your signing private key (PEM: Ed25519, or RSA of 2048 bits or more)')
    .addOption(
      new Option('--key-passphrase <passphrase>', 'the passphrase of an encrypted key').env(
        'IMAGEMART_KEY_PASSPHRASE',
      ),
    )
    .option(
      '--owner-key <pem>',
      'your RSA key the data key is wrapped for too, so `imagemart verify --key` can open the bundle; default: wrapping-key.pem beside --key, or --key when it is RSA',
    )
    .option('--no-owner-key', 'wrap the data key for the platform alone')
    .option(
      '--platform-key <pem>',
      "the platform's public wrapping key (PEM); fetched from --api when left out",
    )
    .option('--user <accountId>', 'your account id; asked from --api with --api-key when left out')
    .requiredOption('--out <dir>', 'the directory to write the parts and manifest.xml into')
    .addOption(
      new Option('--compression <algorithm>', 'zstd, or gzip for tools that only know gzip')
        .choices(['zstd', 'gzip'])
        .default('zstd'),
    )
    .addOption(apiOption())
    .addOption(apiKeyOption())
    .action(async (options: BundleCommandOptions) => {
      await bundleCommand(options, io.out);
    });

  program
    .command('verify')
    .description(
      'check a bundle directory: signature and every part (no private key needed), or with --key also decrypt it and prove the image',
    )
    .requiredOption('--bundle <dir>', 'the directory holding manifest.xml and the parts')
    .option(
      '--signer-key <pem>',
      "the expected signer's public key (e.g. your signing-key.pub.pem); default: the platform's signing key from --api",
    )
    .option(
      '--key <pem>',
      'an RSA private key the data key is wrapped for (your wrapping-key.pem): decrypt, decompress and prove the image too',
    )
    .addOption(
      new Option('--key-passphrase <passphrase>', 'the passphrase of an encrypted key').env(
        'IMAGEMART_KEY_PASSPHRASE',
      ),
    )
    .addOption(apiOption())
    .option('--json', 'print the result as one JSON object', false)
    .action(async (options: VerifyCommandOptions) => {
      setExitCode(await verifyCommand(options, io.out));
    });

  program
    .command('upload')
    .description('upload a bundle directory; resumes where an earlier run stopped')
    .requiredOption('--bundle <dir>', 'the directory imagemart bundle wrote')
    .addOption(apiOption().makeOptionMandatory())
    .addOption(apiKeyOption())
    .option('--retries <n>', 'failures in a row (network, 5xx) before giving up', wholeNumber(0), 5)
    .option(
      '--retry-delay <seconds>',
      'wait before the first retry, doubled each time (at most 30 s)',
      wholeNumber(0),
      2,
    )
    .addOption(new Option('--platform <platform>', 'the image platform').choices(['linux', 'windows']))
    .option('--listing-id <id>', 'the listing (lst-…) the image is a version of')
    .action(async (options: UploadCommandOptions) => {
      await uploadCommand(options, io.out);
    });

  program
    .command('status')
    .description("an image's state and its bundle's progress")
    .argument('<imageId>', 'the image id (ami-…)')
    .addOption(apiOption().makeOptionMandatory())
    .addOption(apiKeyOption())
    .option('--wait', 'poll until the image is available or failed', false)
    .option('--interval <seconds>', 'seconds between polls with --wait', wholeNumber(1), 2)
    .option('--json', 'print the API answer as JSON lines', false)
    .action(async (imageId: string, options: StatusCommandOptions) => {
      setExitCode(await statusCommand(imageId, options, io.out));
    });

  const keys = program.command('keys').description('your signing keys (the keys that sign your manifests)');
  keys
    .command('register')
    .description('register a public key (a private key file is read for its public half only)')
    .requiredOption('--key <pem>', 'the public (or private) key PEM')
    .option('--name <name>', 'a name to tell keys apart')
    .option('--account <accountId>', "the account (admins); default: the API key's")
    .addOption(apiOption().makeOptionMandatory())
    .addOption(apiKeyOption())
    .action(async (options: KeysApiOptions & { key: string; name?: string }) => {
      await registerKeyCommand(options, io.out);
    });
  keys
    .command('list')
    .description('list your signing keys')
    .option('--account <accountId>', 'the account (admins)')
    .addOption(apiOption().makeOptionMandatory())
    .addOption(apiKeyOption())
    .action(async (options: KeysApiOptions) => {
      await listKeysCommand(options, io.out);
    });
  keys
    .command('revoke')
    .description('revoke a signing key (sha256:…); uploads signed with it are refused from then on')
    .argument('<keyId>', 'the key id')
    .option('--account <accountId>', 'the account (admins)')
    .addOption(apiOption().makeOptionMandatory())
    .addOption(apiKeyOption())
    .action(async (keyId: string, options: KeysApiOptions) => {
      await revokeKeyCommand(keyId, options, io.out);
    });
  keys
    .command('generate')
    .description('generate a signing key pair: signing-key.pem (private, mode 0600) and signing-key.pub.pem')
    .requiredOption('--out <dir>', 'the directory to write them into')
    .addOption(new Option('--type <type>', 'the key type').choices(['ed25519', 'rsa']).default('ed25519'))
    .action(async (options: { out: string; type: string }) => {
      await generateKeyCommand(options, io.out);
    });

  return program;
}

/** Runs the CLI: 0 when all went well, else the exit code, with one line on stderr saying why. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  let code: number = ExitCode.ok;
  const program = createProgram(io, (c) => (code = c));
  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander printed its own line (or the help, or the version).
      return err.exitCode === 0 ? ExitCode.ok : ExitCode.usage;
    }
    io.err(`imagemart: error: ${oneLine(err)}`);
    return err instanceof CliError ? err.exitCode : ExitCode.error;
  }
}
