/** Exit codes of `imagemart`: documented in docs/seller-cli.md. */
export const ExitCode = {
  ok: 0,
  /** Anything that went wrong: the one-line message says what. */
  error: 1,
  /** The command line itself: an unknown option, a missing argument. */
  usage: 2,
  /** `status`: the image failed (its bundle did not verify). */
  imageFailed: 3,
  /** `verify`: the bundle does not verify (the line, or the JSON's `error`, says why). */
  bundleInvalid: 4,
} as const;

/** An error meant for the person at the terminal: printed as one line, then the process exits with `exitCode`. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.error,
    /** A failure that may pass if tried again (the network, a 5xx). */
    readonly transient = false,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** One line: no stack, no line breaks. */
export function oneLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.replace(/\s+/g, ' ').trim();
}
