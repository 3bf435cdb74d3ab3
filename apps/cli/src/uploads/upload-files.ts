import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, openAsBlob } from 'node:fs';
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import { z } from 'zod';
import type { Context } from '../context.js';
import { ApiError, UnreachableError, UsageError } from '../exit-codes.js';
import type { LocalRefs } from './manifest-paths.js';

/**
 * What earlier runs uploaded, next to the manifest: the uri of each content hash (for this API,
 * tenant and key), and the hash of each path by size and mtime (so an unchanged file is not read
 * again). Written after every upload, so an interrupted run resumes where it stopped. A uri is
 * trusted without asking for STATE_TRUST_MS; older ones are confirmed with the API, which uploads
 * again what the provider may have let go (UPLOAD_REUSE_SECONDS on the API).
 */
const STATE_TRUST_MS = 24 * 3600_000;

const StateSchema = z.object({
  version: z.literal(1),
  api: z.string(),
  /** The tenant named, and a short hash of the key used: another key's uploads are not reused. */
  tenant: z.string(),
  files: z.record(z.string(), z.object({ uri: z.string(), size: z.number(), uploaded_at: z.string() })),
  paths: z.record(z.string(), z.object({ size: z.number(), mtime_ms: z.number(), sha256: z.string() })),
});
type State = z.infer<typeof StateSchema>;

/**
 * Tries of one upload when the API says it is busy (429/503: the provider documents 50 uploads a
 * minute) or cannot be reached: 1, 2, 4, ... 30 s apart, about three minutes in all.
 */
const ATTEMPTS = 10;
const MAX_BACKOFF_MS = 30_000;

export function statePathOf(manifest: string): string {
  return `${manifest}.uploads.json`;
}

async function loadState(path: string, api: string, tenant: string): Promise<State> {
  const fresh: State = { version: 1, api, tenant, files: {}, paths: {} };
  try {
    const state = StateSchema.parse(JSON.parse(await readFile(path, 'utf8')));
    // Uris of another deployment or tenant mean nothing here; the path hashes still hold.
    return state.api === api && state.tenant === tenant ? state : { ...fresh, paths: state.paths };
  } catch {
    return fresh;
  }
}

async function saveState(path: string, state: State): Promise<void> {
  const partial = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(partial, `${JSON.stringify(state, null, 2)}\n`);
  await rename(partial, path);
}

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Uploads the local files a manifest names through `POST /v1/files`, each distinct content once:
 * skipped when this manifest's state file or the API (`GET /v1/files/:sha256`) already knows it.
 * Every path is checked before anything is sent. Returns path → uri.
 */
export async function uploadLocalFiles(
  ctx: Context,
  manifest: string,
  refs: LocalRefs,
): Promise<Map<string, string>> {
  const statePath = statePathOf(manifest);
  const keyTag = ctx.config.apiKey
    ? `:${createHash('sha256').update(ctx.config.apiKey).digest('hex').slice(0, 16)}`
    : '';
  const state = await loadState(statePath, ctx.client.baseUrl, `${ctx.config.tenant ?? 'default'}${keyTag}`);
  const files: { path: string; size: number; mtimeMs: number }[] = [];
  // Checked before (local-paths.ts); a file that changed since is still named by its first line.
  for (const [path, [ref]] of refs) {
    if (!ref) continue;
    const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
      throw new UsageError(`line ${ref.line}, ${ref.field}: cannot read ${path}: ${err.code ?? err.message}`);
    });
    if (!info.isFile()) throw new UsageError(`line ${ref.line}, ${ref.field}: ${path} is not a file`);
    files.push({ path, size: info.size, mtimeMs: info.mtimeMs });
  }

  const uris = new Map<string, string>();
  const pending: { path: string; size: number; sha256: string }[] = [];
  for (const file of files) {
    const known = state.paths[file.path];
    const sha256 =
      known && known.size === file.size && known.mtime_ms === file.mtimeMs
        ? known.sha256
        : await sha256Of(file.path);
    state.paths[file.path] = { size: file.size, mtime_ms: file.mtimeMs, sha256 };
    const remembered = state.files[sha256];
    const trusted =
      remembered && Date.now() - Date.parse(remembered.uploaded_at) < STATE_TRUST_MS ? remembered : undefined;
    const uploaded = trusted ?? (await askApi(ctx, sha256, file.size));
    if (uploaded) {
      state.files[sha256] = uploaded;
      uris.set(file.path, uploaded.uri);
    } else pending.push({ path: file.path, size: file.size, sha256 });
  }
  await saveState(statePath, state);
  const skipped = files.length - pending.length;

  // Identical files under two names are sent once.
  const distinct = new Map(pending.map((p) => [p.sha256, p]));
  const total = [...distinct.values()].reduce((sum, p) => sum + p.size, 0);
  if (distinct.size > 0) {
    ctx.out.note(`uploading ${distinct.size} local file(s), ${total} bytes (${skipped} already uploaded)`);
  }
  const bar =
    ctx.out.interactive && distinct.size > 0
      ? new cliProgress.SingleBar(
          {
            stream: ctx.out.streams.stderr,
            format: ' {bar} {percentage}% | {value}/{total} bytes | {file}',
            hideCursor: true,
          },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  bar?.start(total, 0, { file: '' });
  let sent = 0;
  try {
    for (const file of distinct.values()) {
      const done = sent;
      const { uri } = await uploadWithRetries(ctx, file.path, file.size, (bytes) =>
        bar?.update(done + bytes, { file: basename(file.path) }),
      );
      sent += file.size;
      bar?.update(sent);
      state.files[file.sha256] = { uri, size: file.size, uploaded_at: new Date().toISOString() };
      await saveState(statePath, state);
      if (!bar) ctx.out.note(`uploaded ${file.path}`);
    }
  } finally {
    bar?.stop();
  }
  for (const file of pending) uris.set(file.path, state.files[file.sha256]!.uri);
  return uris;
}

async function askApi(
  ctx: Context,
  sha256: string,
  size: number,
): Promise<State['files'][string] | undefined> {
  try {
    const { api } = ctx.client;
    const found = await api.send(api.api.GET('/v1/files/{sha256}', { params: { path: { sha256 } } }));
    return { uri: found.uri, size, uploaded_at: new Date().toISOString() };
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return undefined;
    throw err;
  }
}

async function uploadWithRetries(
  ctx: Context,
  path: string,
  size: number,
  progress: (bytes: number) => void,
) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await uploadOnce(ctx, path, size, progress);
    } catch (err) {
      const busy =
        err instanceof UnreachableError || (err instanceof ApiError && [429, 503, 504].includes(err.status));
      if (!busy || attempt >= ATTEMPTS || ctx.signal?.aborted) throw err;
      ctx.out.note(`(upload of ${basename(path)} failed, retrying: ${err.message})`);
      const wait = Math.min(1000 * 2 ** (attempt - 1), MAX_BACKOFF_MS);
      await sleep(wait, undefined, ctx.signal ? { signal: ctx.signal } : {}).catch(() => {});
    }
  }
}

/**
 * One `POST /v1/files`: a multipart body of one `file` part, streamed from disk (a file-backed
 * Blob is read as it is sent), the bytes counted as they go.
 */
async function uploadOnce(ctx: Context, path: string, _size: number, progress: (bytes: number) => void) {
  const name = basename(path).replace(/[^\w.-]+/g, '_');
  const file = await openAsBlob(path);
  return ctx.client.api.uploadFile(file, {
    filename: name,
    onProgress: progress,
    fetch: ctx.client.longFetch,
  });
}
