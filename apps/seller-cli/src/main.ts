#!/usr/bin/env node
import { run } from './cli.program.js';

// `imagemart`: the seller's command line (docs/seller-cli.md).
process.exitCode = await run(process.argv, {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
});
