import { randomBytes } from 'node:crypto';
import { newJobId } from '@recast/core/model';
import { webhookToken } from '@recast/core/provider';
import { expect, it } from 'vitest';
import { type ChaosSystem, printDetail, printSummary, startChaosSystem, took } from './harness.js';
import { jobBody } from './jobs.js';

const BODY_LIMIT = 262_144; // the API's default WEBHOOK_BODY_LIMIT_BYTES

interface Case {
  name: string;
  jobId: string;
  token: string | undefined;
  body: string;
  expect: number[];
}

/**
 * Invariant 7 at the webhook receiver, on the API as deployed: forged and misplaced tokens,
 * malformed and oversized bodies, unknown jobs are each refused with their own status and a
 * stable error code, and change nothing: no job record (state, version, any field), no Redis key,
 * no settle step. A valid webhook at the end proves the probes would have seen a change.
 */
it('refuses forged, misplaced, malformed, oversized and unknown-job webhooks, changing nothing', async () => {
  // No worker: nothing else moves the jobs or drains the settle queue while we look.
  const system: ChaosSystem = await startChaosSystem({ scenario: 'bad-webhooks', workers: 0 });
  let passed = false;
  try {
    const submitted = await system.submitJobs({ count: 2, body: jobBody(system), concurrency: 1 });
    expect(submitted.refused).toEqual([]);
    const [a, b] = submitted.accepted.map((x) => x.id) as [string, string];
    const tokenA = webhookToken(system.secret, a);
    const unknown = newJobId();
    const forged = randomBytes(32).toString('base64url').slice(0, tokenA.length);
    const task = { id: 'task_forged', status: 10, status_text: 'completed', output: null, error: null };
    const json = JSON.stringify(task);
    const huge = JSON.stringify({ ...task, padding: 'x'.repeat(BODY_LIMIT + 4096) });

    const cases: Case[] = [
      { name: 'forged token', jobId: a, token: forged, body: json, expect: [401] },
      { name: 'no token', jobId: a, token: undefined, body: json, expect: [401] },
      {
        name: 'token under another secret',
        jobId: a,
        token: webhookToken('not-the-secret-at-all-0123', a),
        body: json,
        expect: [401],
      },
      { name: "job A's token on job B", jobId: b, token: tokenA, body: json, expect: [401] },
      {
        name: 'unknown job, valid token',
        jobId: unknown,
        token: webhookToken(system.secret, unknown),
        body: json,
        expect: [404],
      },
      { name: 'unknown job, forged token', jobId: unknown, token: forged, body: json, expect: [401] },
      {
        name: 'not a job id',
        jobId: 'job_nope',
        token: webhookToken(system.secret, 'job_nope'),
        body: json,
        expect: [401, 404],
      },
      { name: 'malformed JSON', jobId: a, token: tokenA, body: '{"id":"task_1","status":', expect: [400] },
      { name: 'JSON that is not a task', jobId: a, token: tokenA, body: '{"status":10}', expect: [400] },
      { name: 'JSON array', jobId: a, token: tokenA, body: '[1,2,3]', expect: [400] },
      { name: 'empty body', jobId: a, token: tokenA, body: '', expect: [400] },
      { name: 'oversized body', jobId: a, token: tokenA, body: huge, expect: [413] },
      { name: 'oversized body, forged token', jobId: a, token: forged, body: huge, expect: [413, 401] },
    ];

    const snapshot = async () => ({
      a: await system.client.hgetall(system.keys.job(a)),
      b: await system.client.hgetall(system.keys.job(b)),
      keys: await system.client.dbsize(),
      settles: Object.values(await system.queues.settle.getJobCounts()).reduce((x, y) => x + y, 0),
    });
    const before = await snapshot();

    const post = async (c: Pick<Case, 'jobId' | 'token' | 'body'>) => {
      const query = `attempt=1${c.token === undefined ? '' : `&token=${encodeURIComponent(c.token)}`}`;
      const res = await fetch(`${system.apiUrl}/webhooks/inference/${encodeURIComponent(c.jobId)}?${query}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: c.body,
      });
      const text = await res.text();
      let code: unknown;
      try {
        code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
      } catch {
        code = undefined;
      }
      return { status: res.status, code, text: text.slice(0, 200) };
    };

    const outcomes: { name: string; status: number; code: unknown; ok: boolean; text: string }[] = [];
    for (const c of cases) {
      const answer = await post(c);
      outcomes.push({
        name: c.name,
        ...answer,
        ok: c.expect.includes(answer.status) && typeof answer.code === 'string',
      });
    }
    const after = await snapshot();

    // Positive control: a well-formed webhook with the right token is accepted and queues a settle.
    const control = await post({ jobId: a, token: tokenA, body: json });
    const afterControl = await snapshot();

    const stateChanged = [
      JSON.stringify(after.a) !== JSON.stringify(before.a),
      JSON.stringify(after.b) !== JSON.stringify(before.b),
    ].filter(Boolean).length;
    const wrong = outcomes.filter((o) => !o.ok);
    printSummary('bad-webhooks', {
      cases: cases.length,
      rejected_as_expected: outcomes.length - wrong.length,
      state_changed: stateChanged,
      keys_changed: after.keys - before.keys,
      settles_enqueued: after.settles - before.settles,
      control_status: control.status,
      control_settles: afterControl.settles - after.settles,
      took: took(system),
    });
    if (wrong.length > 0)
      printDetail(`[chaos] bad-webhooks: unexpected answers: ${JSON.stringify(wrong, null, 1)}`);

    expect(wrong).toEqual([]);
    expect(after.a).toEqual(before.a);
    expect(after.b).toEqual(before.b);
    expect(after.a.state).toBe('queued');
    expect(after.keys).toBe(before.keys);
    expect(after.settles).toBe(before.settles);
    // The probes can see a change: the control was accepted and did queue one settle step.
    expect(control.status).toBe(202);
    expect(afterControl.settles).toBe(after.settles + 1);
    passed = true;
  } finally {
    await system.close({ keepLogs: !passed });
    if (!passed) printDetail(`[chaos] bad-webhooks: logs in ${system.logDir}`);
  }
});
