import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { Output } from './cli/output.js';
import { batches } from './commands/batches.js';
import { cancel } from './commands/cancel.js';
import { createKey, listKeys, revokeKey } from './commands/keys.js';
import { results } from './commands/results.js';
import { retry } from './commands/retry.js';
import { status } from './commands/status.js';
import { submit } from './commands/submit.js';
import { type Context, createContext, DEFAULT_URL, type GlobalOptions, type Io } from './context.js';
import { EXIT, EXIT_CODES_HELP, exitCodeFor } from './exit-codes.js';
import { BATCH_STATUSES } from './schemas.js';

type Run = (cmd: Command, action: (ctx: Context) => Promise<number>) => Promise<void>;

/** Run one command line; resolves to the exit code (nothing here calls process.exit). */
export async function run(argv: readonly string[], io: Io): Promise<number> {
  let code: number = EXIT.OK;
  let ctx: Context | undefined;
  const program = buildProgram(io, async (cmd, action) => {
    ctx = createContext(cmd.optsWithGlobals<GlobalOptions>(), io);
    code = await action(ctx);
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (err) {
    // Commander has already printed its own message (or the help).
    if (err instanceof CommanderError) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version'
        ? EXIT.OK
        : EXIT.USAGE;
    }
    const out = ctx?.out ?? new Output(io.streams, program.opts<GlobalOptions>().json === true);
    if (io.signal?.aborted) {
      out.note('interrupted');
      return EXIT.INTERRUPTED;
    }
    out.error(err);
    return exitCodeFor(err);
  } finally {
    await ctx?.client.close();
  }
}

export function buildProgram(io: Io, runAction: Run): Command {
  const program = new Command('recast')
    .description("Submit and follow Recast batches from a terminal: a client of Recast's public HTTP API.")
    .version('0.1.0')
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.streams.stdout.write(s),
      writeErr: (s) => io.streams.stderr.write(s),
    })
    .configureHelp({ showGlobalOptions: true })
    .showHelpAfterError('(recast --help for usage)')
    .option('--url <url>', `API base URL (env RECAST_URL, default ${DEFAULT_URL})`)
    .option('--api-key <key>', 'API key, sent as Authorization: Bearer (env RECAST_API_KEY)')
    .option(
      '--tenant <id>',
      'tenant to act for, sent as X-Tenant: an admin key may name any, other keys only their own (env RECAST_TENANT)',
    )
    .option('--json', 'machine output: one JSON document on stdout, errors as JSON on stderr')
    .addHelpText(
      'after',
      `
Examples:
  recast submit rows.jsonl --dry-run          quote a manifest: rows, seconds and $ by resolution
  recast submit rows.csv --max-cost-usd 50 --watch
  recast results bat_01J… --failed > failed.jsonl

${EXIT_CODES_HELP}`,
    );

  program
    .command('submit')
    .description('upload a manifest (JSONL or CSV, streamed from disk) as a batch')
    .argument('<manifest>', 'a .jsonl / .ndjson or .csv file, one job a row')
    .option('--dry-run', 'validate and quote without creating anything')
    .option('--watch', 'follow the batch to its end with a progress bar; exit code = outcome')
    .option('--name <name>', 'a name for the batch')
    .addOption(
      new Option('--mode <mode>', 'atomic: any bad row refuses all; partial: run the good rows').choices([
        'atomic',
        'partial',
      ]),
    )
    .option('--max-cost-usd <usd>', 'a lifetime budget for this batch, in dollars', dollars)
    .option('--defaults <json>', 'a JSON object of fields applied to every row (rows win)', jsonObject)
    .option('--callback-url <url>', 'signed POST to this URL when the batch finishes', httpUrl)
    .option('--metadata <json>', 'a JSON object kept on the batch', jsonObject)
    .addOption(
      new Option('--format <format>', 'the manifest format, when the file name does not tell').choices([
        'jsonl',
        'csv',
      ]),
    )
    .option(
      '--allow-path <dir>',
      "a directory besides the manifest's own whose files the manifest may name (repeatable)",
      (dir: string, dirs: string[] = []) => [...dirs, dir],
    )
    .action((manifest: string, _opts: unknown, cmd: Command) =>
      runAction(cmd, (ctx) => submit(ctx, manifest, cmd.opts())),
    );

  program
    .command('batches')
    .description('list batches, newest first: id, name, status, done/total, spent')
    .addOption(new Option('--status <status>', 'only batches in this status').choices(BATCH_STATUSES))
    .option('--limit <n>', 'at most this many (1-1000, default 20)', integer(1, 1000))
    .option('--cursor <cursor>', 'continue a listing where the previous page ended')
    .action((_opts: unknown, cmd: Command) => runAction(cmd, (ctx) => batches(ctx, cmd.opts())));

  program
    .command('status')
    .description("one batch's status, counts by state and costs")
    .argument('<batch>', 'batch id (bat_…)')
    .option('--watch', 'follow the batch to its end; exit code = outcome')
    .action((id: string, _opts: unknown, cmd: Command) =>
      runAction(cmd, (ctx) => status(ctx, id, cmd.opts())),
    );

  program
    .command('results')
    .description('stream the results, one line per manifest row in row order, to stdout')
    .argument('<batch>', 'batch id (bat_…)')
    .option('--failed', 'only the rows that failed')
    .option('--csv', 'CSV instead of JSON lines')
    .action((id: string, _opts: unknown, cmd: Command) =>
      runAction(cmd, (ctx) => results(ctx, id, cmd.opts())),
    );

  program
    .command('cancel')
    .description('cancel every unfinished row: queued ones at once, running ones at the provider')
    .argument('<batch>', 'batch id (bat_…)')
    .action((id: string, _opts: unknown, cmd: Command) => runAction(cmd, (ctx) => cancel(ctx, id)));

  program
    .command('retry')
    .description("run a batch's failed rows again, as new attempts")
    .argument('<batch>', 'batch id (bat_…)')
    .option('--include-cancelled', 'cancelled rows too')
    .option('--watch', 'follow the batch to its end; exit code = outcome')
    .action((id: string, _opts: unknown, cmd: Command) =>
      runAction(cmd, (ctx) => retry(ctx, id, cmd.opts())),
    );

  const keys = program.command('keys').description('API keys (with an admin key): create, list, revoke');
  keys
    .command('create')
    .description('mint a key for a tenant and role; it is printed once')
    .argument('<tenant>', 'the tenant the key acts for')
    .requiredOption('--name <name>', 'what the key is for, e.g. "ads team dashboard"')
    .addOption(
      new Option('--role <role>', 'admin: everything; submitter: submit, cancel, read; viewer: read')
        .choices(['admin', 'submitter', 'viewer'])
        .makeOptionMandatory(),
    )
    .action((tenant: string, _opts: unknown, cmd: Command) =>
      runAction(cmd, (ctx) =>
        createKey(ctx, { ...cmd.opts<{ name: string; role: 'admin' | 'submitter' | 'viewer' }>(), tenant }),
      ),
    );
  keys
    .command('list')
    .description('every key: id, name, role, tenant, first characters, created, revoked')
    .action((_opts: unknown, cmd: Command) => runAction(cmd, (ctx) => listKeys(ctx)));
  keys
    .command('revoke')
    .description('revoke a key at once, on every API process')
    .argument('<id>', 'key id (key_…)')
    .action((id: string, _opts: unknown, cmd: Command) => runAction(cmd, (ctx) => revokeKey(ctx, id)));

  return program;
}

function dollars(value: string): string {
  if (!/^\d{1,10}(\.\d{1,6})?$/.test(value)) {
    throw new InvalidArgumentError('a number of dollars with at most 6 decimals, e.g. 25 or 12.50');
  }
  return value;
}

/** Checked here (a usage error, exit 2) and sent as typed: the API parses it again. */
function jsonObject(value: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new InvalidArgumentError('not JSON; quote it for the shell, e.g. \'{"resolution":"1080p"}\'');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new InvalidArgumentError('must be a JSON object');
  }
  return value;
}

function httpUrl(value: string): string {
  if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) {
    throw new InvalidArgumentError('must be an http(s) URL');
  }
  return value;
}

function integer(min: number, max: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`must be an integer ${min}-${max}`);
    return n;
  };
}
