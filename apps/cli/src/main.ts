import { run } from './program.js';

// The entry: the only place that touches process (argv, env, signals, exit code).
const interrupt = new AbortController();
// First Ctrl-C: stop politely (a watch says how to resume); a second one kills as usual.
process.once('SIGINT', () => interrupt.abort());

process.exitCode = await run(process.argv.slice(2), {
  streams: { stdout: process.stdout, stderr: process.stderr },
  env: process.env,
  signal: interrupt.signal,
});
