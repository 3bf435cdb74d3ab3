import type { BatchView } from '@recast/core/batches';
import { batchCallbackBody, type CallbackSender, jobCallbackBody, redactUrl } from '@recast/core/callbacks';
import { assertNever } from '@recast/core/errors';
import type { Logger } from '@recast/core/infra';
import { type JobStore, type NotifyPayload, NotifyPayloadSchema } from '@recast/core/model';
import { inJobSpan, SpanKind, tracingActive } from '@recast/core/telemetry';
import { type Job, UnrecoverableError } from 'bullmq';

export interface NotifyDeps {
  store: JobStore;
  /** A batch as `GET /v1/batches/:id` shows it (see loadBatchView). */
  batchView: (batchId: string) => Promise<BatchView | undefined>;
  sender: CallbackSender;
  logger: Logger;
}

/**
 * `job.notify`: deliver one signed callback. A 2xx ends it; a 410 or a URL the SSRF policy refuses
 * stops it for good (UnrecoverableError: no retry); anything else throws, so BullMQ retries with
 * the notify backoff under the same `webhook-id`. The body is rebuilt from the record on every
 * attempt (a terminal record does not change), signed with a fresh timestamp.
 */
export function createNotifyProcessor(deps: NotifyDeps) {
  const step = deliver(deps);
  return async (job: Job) => {
    // A job's callback joins the job's trace (its delivery is the span's outbound request).
    const jobId = job.data?.kind === 'job' ? (job.data.jobId as string) : undefined;
    if (!tracingActive() || !jobId) return step(job);
    const kept = await deps.store.traceOf(jobId).catch(() => ({}));
    return inJobSpan('recast.callback', { jobId, ...kept, kind: SpanKind.CLIENT }, () => step(job));
  };
}

function deliver(deps: NotifyDeps) {
  return async (job: Job) => {
    try {
      return await notify(deps, job);
    } catch (error) {
      // Delivery outcomes are logged where they happen; this catches the rest (Redis, bad payload).
      if (!(error instanceof Error && reported.has(error))) {
        deps.logger.error(
          {
            bullJobId: job.id,
            jobId: job.data?.jobId,
            batchId: job.data?.batchId,
            attempt: job.attemptsMade + 1,
            err: String(error),
          },
          'notify step failed',
        );
      }
      throw error;
    }
  };
}

const reported = new WeakSet<Error>();
function logged<E extends Error>(error: E): E {
  reported.add(error);
  return error;
}

/** What one callback message sends: where, the body, and who it is about (for the logs). */
interface Message {
  url: string;
  body: string;
  log: Logger;
}

async function jobMessage(deps: NotifyDeps, payload: Extract<NotifyPayload, { kind: 'job' }>) {
  const { jobId, event, messageId } = payload;
  const record = await deps.store.get(jobId);
  if (!record) {
    deps.logger.warn({ jobId, event, messageId }, 'callback for a job record that no longer exists');
    return { skipped: 'missing' } as const;
  }
  const log = deps.logger.child({ jobId, tenant: record.tenant, batchId: record.batch_id, event, messageId });
  if (!record.callback_url) {
    log.warn('callback queued for a job without a callback_url; nothing to send');
    return { skipped: 'no-callback-url' } as const;
  }
  return { url: record.callback_url, body: JSON.stringify(jobCallbackBody(record, event)), log };
}

async function batchMessage(deps: NotifyDeps, payload: Extract<NotifyPayload, { kind: 'batch' }>) {
  const { batchId, event, messageId } = payload;
  const view = await deps.batchView(batchId);
  if (!view?.callback_url) {
    deps.logger.warn({ batchId, event, messageId }, 'batch callback for a batch without a callback_url');
    return { skipped: 'missing' } as const;
  }
  const log = deps.logger.child({ batchId, tenant: view.tenant, event, messageId });
  return { url: view.callback_url, body: JSON.stringify(batchCallbackBody(view, event)), log };
}

async function notify(deps: NotifyDeps, job: Job) {
  const payload = NotifyPayloadSchema.parse(job.data);
  const attempt = job.attemptsMade + 1;
  const maxAttempts = job.opts.attempts ?? 1;
  const { messageId } = payload;
  let message: Message | { skipped: string };
  switch (payload.kind) {
    case 'job':
      message = await jobMessage(deps, payload);
      break;
    case 'batch':
      message = await batchMessage(deps, payload);
      break;
    default:
      return assertNever(payload, 'notify payload');
  }
  if ('skipped' in message) return message;
  const { url, body, log } = message;
  const result = await deps.sender.send({ url, id: messageId, body });
  const fields = { attempt, maxAttempts, url: redactUrl(url), durationMs: result.durationMs };
  switch (result.outcome) {
    case 'delivered':
      log.info({ ...fields, status: result.status }, 'callback delivered');
      return { status: result.status, attempt };
    case 'gone':
      log.info({ ...fields, status: result.status }, 'receiver asked to stop (410 Gone); not retrying');
      throw logged(new UnrecoverableError('receiver asked to stop (410 Gone)'));
    case 'refused':
      log.warn({ ...fields, reason: result.reason }, 'callback URL refused by the SSRF policy; not retrying');
      throw logged(new UnrecoverableError(`callback URL refused: ${result.reason}`));
    case 'retry': {
      const last = attempt >= maxAttempts;
      log[last ? 'error' : 'warn'](
        { ...fields, status: result.status, reason: result.reason },
        last ? 'callback failed; giving up after the last attempt' : 'callback failed; will retry',
      );
      throw logged(new Error(`callback not delivered: ${result.reason}`));
    }
    default:
      return assertNever(result, 'delivery outcome');
  }
}
