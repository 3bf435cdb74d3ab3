import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { ADMIN_KEY, type System, systemPerTest } from './system.js';

const { start, onCleanup } = systemPerTest();

/** Debian's chromium package (`.ci/run` installs it); Playwright downloads no browser here. */
const CHROMIUM = '/usr/bin/chromium';
const HAVE_CHROMIUM = existsSync(CHROMIUM);
const IN_CI = process.env.CI === 'true' || process.env.CI === '1';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/', import.meta.url));

async function launch() {
  const userDataDir = await mkdtemp(join(tmpdir(), 'recast-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: 1280, height: 1000 },
  });
  onCleanup(async () => {
    await context.close();
    await rm(userDataDir, { recursive: true, force: true });
  });
  return context;
}

async function logIn(page: Page, s: System, key: string) {
  await page.goto(`${s.apiUrl}/dashboard`);
  await page.fill('#key', key);
  await page.click('#login button[type=submit]');
}

/** The batch's progress bar value (0-100), status and label on the page (undefined: no row yet). */
async function progressOf(page: Page, batchId: string) {
  const row = page.locator(`tr[data-batch-id="${batchId}"]`);
  if ((await row.count()) === 0) return undefined;
  return {
    pct: Number(await row.locator('[role=progressbar]').getAttribute('aria-valuenow')),
    status: await row.locator('.status').textContent(),
    label: await row.locator('.progress-label').textContent(),
  };
}

/** Until the batch's bar is part-way (`moving`), or at 100% and completed (`done`). */
async function waitForProgress(page: Page, batchId: string, until: 'moving' | 'done') {
  await expect
    .poll(
      async () => {
        const p = await progressOf(page, batchId);
        if (!p) return false;
        return until === 'moving' ? p.pct > 0 && p.pct < 100 : p.pct === 100 && p.status === 'completed';
      },
      { timeout: 60_000, interval: 50 },
    )
    .toBe(true);
}

describe('dashboard in a real Chromium', () => {
  it.skipIf(!HAVE_CHROMIUM && !IN_CI)(
    `logs in, follows a batch to completed live, falls back to polling, saves a screenshot (needs ${CHROMIUM}; skipped without it outside CI)`,
    async () => {
      if (!HAVE_CHROMIUM) {
        throw new Error(
          `${CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium)`,
        );
      }
      // Slow tasks and 4 in flight: 20 rows finish in waves, so the bar has steps to show.
      const s = await start({
        auth: true,
        emulator: { stepMs: 60 },
        worker: { PROVIDER_MAX_IN_FLIGHT: '4' },
        api: { PROVIDER_MAX_IN_FLIGHT: '4' },
      });
      const context = await launch();

      const live = await context.newPage();
      const problems: string[] = [];
      live.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      // CSP violations and failed loads show up as console errors.
      live.on('console', (msg) => {
        if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
      });
      const batchReads: string[] = [];
      live.on('request', (request) => {
        if (/\/v1\/batches\/bat_/.test(request.url())) batchReads.push(request.url());
      });

      // A wrong key: the form again, with the API's error.
      await logIn(live, s, 'rk_not_a_key');
      await live.waitForSelector('#login-error:not([hidden])');
      expect(await live.textContent('#login-error')).toContain('UNAUTHORIZED');
      expect(await live.isHidden('#board')).toBe(true);
      problems.length = 0; // the 401 itself is logged by the browser

      await logIn(live, s, ADMIN_KEY);
      await live.waitForSelector('#board:not([hidden])');
      await expect.poll(() => live.textContent('#mode'), { timeout: 10_000 }).toBe('live');
      expect(await live.textContent('#in-flight-cap')).toBe('4');

      // The same page with the stream blocked: it must poll its way to the same end.
      const polled = await context.newPage();
      await polled.route('**/v1/events**', (route) => route.abort());
      await logIn(polled, s, ADMIN_KEY);
      await polled.waitForSelector('#board:not([hidden])');
      await expect.poll(() => polled.textContent('#mode'), { timeout: 10_000 }).toBe('polling');

      const rows = Array.from({ length: 20 }, (_, i) => ({
        custom_id: `row-${i}`,
        video: s.fixture('clip-2s-faststart.mp4'),
        images: [s.fixture('person-a.png')],
        resolution: i % 2 ? '1080p' : '720p',
        duration_seconds: 2,
      }));
      const res = await fetch(`${s.apiUrl}/v1/batches?name=dashboard-demo`, {
        method: 'POST',
        headers: { ...s.authHeaders, 'content-type': 'application/x-ndjson' },
        body: `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`,
      });
      expect(res.status).toBe(202);
      const batch = (await res.json()) as { id: string };
      // One job the provider fails (its video is not there): it is a recent failure.
      const failing = await s.submit({
        video: s.fixture('missing.mp4'),
        images: [s.fixture('person-a.png')],
        duration_seconds: 2,
      });

      // Live: the bar moves, then reaches 100% and completed, all while the stream is up.
      await waitForProgress(live, batch.id, 'moving');
      expect(await live.textContent('#mode')).toBe('live');
      await waitForProgress(live, batch.id, 'done');
      expect(await progressOf(live, batch.id)).toEqual({
        pct: 100,
        status: 'completed',
        label: '20 / 20 · 100%',
      });
      expect(await live.textContent('#mode')).toBe('live');
      // Moved by events: the page read the batch by id (polling reads only the list).
      expect(batchReads.length).toBeGreaterThan(0);

      // Figures, refreshed (throttled) after the events: failures, spend, job counts.
      const failure = live.locator(`#failures li[data-job-id="${failing.id}"]`);
      await failure.waitFor({ timeout: 20_000 });
      expect(await failure.locator('.code').textContent()).toMatch(/^[A-Z_]+$/);
      expect(await failure.locator('.message').textContent()).not.toBe('');
      // 10 × 2 s × $0.03 (720p) + 10 × 2 s × $0.06 (1080p).
      await expect.poll(() => live.textContent('#spend-today'), { timeout: 10_000 }).toBe('$1.80');
      await expect.poll(() => live.textContent('#spend-month'), { timeout: 10_000 }).toBe('$1.80');
      expect(await live.locator('#spend-chart svg rect.bar-today:not(.swatch)').count()).toBe(2);
      await expect
        .poll(() => live.textContent('#job-states [data-state=completed] strong'), { timeout: 10_000 })
        .toBe('20');

      await mkdir(ARTIFACTS, { recursive: true });
      await live.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });

      // Polling: the same end, with the stream never reachable.
      await waitForProgress(polled, batch.id, 'done');
      expect(await polled.textContent('#mode')).toBe('polling');

      // Logging out forgets the key.
      await live.click('#logout');
      await live.waitForSelector('#login:not([hidden])');
      expect(await live.evaluate('sessionStorage.length')).toBe(0);
      expect(problems).toEqual([]);
    },
    120_000,
  );

  it.skipIf(!HAVE_CHROMIUM && !IN_CI)(
    'offers cancel and retry to a submitter, goes through with them after a confirmation and follows them live; a viewer sees no actions and the API refuses them',
    async () => {
      if (!HAVE_CHROMIUM) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package`);
      // One task at a time, each slow: a batch stays in progress long enough to be cancelled.
      const s = await start({
        auth: true,
        emulator: { stepMs: 150 },
        worker: { PROVIDER_MAX_IN_FLIGHT: '1' },
        api: { PROVIDER_MAX_IN_FLIGHT: '1' },
      });
      const admin = { authorization: `Bearer ${ADMIN_KEY}`, 'content-type': 'application/json' };
      const keyOf = async (role: string) => {
        const res = await fetch(`${s.apiUrl}/v1/admin/keys`, {
          method: 'POST',
          headers: admin,
          body: JSON.stringify({ name: `${role} of acme`, role, tenant: 'acme' }),
        });
        expect(res.status).toBe(201);
        return ((await res.json()) as { key: string }).key;
      };
      const submitter = await keyOf('submitter');
      const viewer = await keyOf('viewer');
      const row = (video: string, i: number) => ({
        custom_id: `row-${i}`,
        video: s.fixture(video),
        images: [s.fixture('person-a.png')],
        duration_seconds: 2,
      });
      const upload = async (name: string, rows: object[]) => {
        const res = await fetch(`${s.apiUrl}/v1/batches?name=${name}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${submitter}`, 'content-type': 'application/x-ndjson' },
          body: `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`,
        });
        expect(res.status).toBe(202);
        return ((await res.json()) as { id: string }).id;
      };
      const statusOf = async (id: string) =>
        (
          (await (
            await fetch(`${s.apiUrl}/v1/batches/${id}`, { headers: { authorization: `Bearer ${viewer}` } })
          ).json()) as {
            status: string;
          }
        ).status;
      // One row the provider fails (its video is not there): a batch with a failed row to retry.
      const flawed = await upload('flawed', [row('clip-2s-faststart.mp4', 0), row('missing.mp4', 1)]);
      await expect.poll(() => statusOf(flawed), { timeout: 60_000 }).toBe('completed_with_errors');
      const long = await upload(
        'long',
        Array.from({ length: 8 }, (_, i) => row('clip-2s-faststart.mp4', i)),
      );

      const context = await launch();
      const problems: string[] = [];
      const watch = (page: Page) => {
        page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
        page.on('console', (msg) => {
          if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
        });
      };

      // A viewer: the batches, and no action anywhere.
      const looking = await context.newPage();
      watch(looking);
      await logIn(looking, s, viewer);
      await looking.waitForSelector(`tr[data-batch-id="${long}"]`);
      await looking.waitForSelector(`tr[data-batch-id="${flawed}"]`);
      expect(await looking.locator('#batches button[data-action]').count()).toBe(0);
      expect(await looking.isHidden('#actions-head')).toBe(true);
      await mkdir(ARTIFACTS, { recursive: true });
      await looking.screenshot({ path: join(ARTIFACTS, 'dashboard-viewer.png'), fullPage: true });
      // And the API refuses the viewer what the page does not offer.
      const refused = await fetch(`${s.apiUrl}/v1/batches/${long}/cancel`, {
        method: 'POST',
        headers: { authorization: `Bearer ${viewer}` },
      });
      expect(refused.status).toBe(403);

      // A submitter: cancel the running batch, after a confirmation that names the money.
      const acting = await context.newPage();
      watch(acting);
      await logIn(acting, s, submitter);
      await expect.poll(() => acting.textContent('#mode'), { timeout: 10_000 }).toBe('live');
      const longRow = acting.locator(`tr[data-batch-id="${long}"]`);
      await longRow.locator('button[data-action=cancel]').waitFor();
      expect(await acting.locator(`tr[data-batch-id="${flawed}"] button[data-action=cancel]`).count()).toBe(
        0,
      );
      const questions: string[] = [];
      acting.on('dialog', (dialog) => {
        questions.push(dialog.message());
        void dialog.accept();
      });
      const cancelled = acting.waitForResponse((res) => res.url().endsWith(`/v1/batches/${long}/cancel`));
      await longRow.locator('button[data-action=cancel]').click();
      // 202: some rows are at the provider, being cancelled there (200 when none was).
      expect([200, 202]).toContain((await cancelled).status());
      expect(questions[0]).toMatch(/^Cancel batch long\? \d+ of 8 rows are not finished\. Spent so far: \$/);
      // Both pages follow it to its end, live: the viewer's too.
      for (const page of [acting, looking]) {
        await expect
          .poll(async () => (await progressOf(page, long))?.status, { timeout: 60_000 })
          .toBe('cancelled');
      }
      expect(await longRow.locator('button[data-action]').count()).toBe(0);
      expect(await statusOf(long)).toBe('cancelled');

      // Retry the failed row of the other batch: it runs again (and fails again: the video is
      // still not there), and the row follows it back to completed with errors.
      const flawedRow = acting.locator(`tr[data-batch-id="${flawed}"]`);
      const retried = acting.waitForResponse((res) => res.url().endsWith(`/v1/batches/${flawed}/retry`));
      await flawedRow.locator('button[data-action=retry]').click();
      const answer = await retried;
      expect(answer.status()).toBe(202);
      expect(((await answer.json()) as { retry: { retried: number } }).retry.retried).toBe(1);
      expect(questions[1]).toMatch(/^Run the 1 failed rows of batch flawed again\?/);
      await expect.poll(() => statusOf(flawed), { timeout: 60_000 }).toBe('completed_with_errors');
      await expect
        .poll(async () => (await progressOf(acting, flawed))?.status, { timeout: 30_000 })
        .toBe('completed with errors');
      await acting.screenshot({ path: join(ARTIFACTS, 'dashboard-actions.png'), fullPage: true });
      expect(problems).toEqual([]);
    },
    120_000,
  );

  it.skipIf(!HAVE_CHROMIUM && !IN_CI)(
    'drills down from a batch to its jobs (state filter, paging) and to a job (times, provider task, estimate against the bill, error), and cancels a waiting job from there, followed live',
    async () => {
      if (!HAVE_CHROMIUM) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package`);
      const s = await start({ auth: true, emulator: { stepMs: 5 } });
      const row = (video: string, i: number) => ({
        custom_id: `row-${i}`,
        video: s.fixture(video),
        images: [s.fixture('person-a.png')],
        duration_seconds: 2,
      });
      const upload = async (query: string, rows: object[]) => {
        const res = await fetch(`${s.apiUrl}/v1/batches?${query}`, {
          method: 'POST',
          headers: { ...s.authHeaders, 'content-type': 'application/x-ndjson' },
          body: `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`,
        });
        expect(res.status).toBe(202);
        return ((await res.json()) as { id: string }).id;
      };
      const statusOf = async (id: string) =>
        (
          (await (await fetch(`${s.apiUrl}/v1/batches/${id}`, { headers: s.authHeaders })).json()) as {
            status: string;
          }
        ).status;
      // Twelve rows, the last of which the provider fails (its video is not there).
      const rows = Array.from({ length: 12 }, (_, i) =>
        row(i === 11 ? 'missing.mp4' : 'clip-2s-faststart.mp4', i),
      );
      const done = await upload('name=twelve', rows);
      await expect.poll(() => statusOf(done), { timeout: 60_000 }).toBe('completed_with_errors');
      // Rows that cannot fit their batch's cap wait for money: jobs that stay put until cancelled.
      const parked = await upload('name=parked&max_cost_usd=0.01', [row('clip-2s-faststart.mp4', 0)]);
      const waiting = async () =>
        (
          (await (await fetch(`${s.apiUrl}/v1/batches/${parked}`, { headers: s.authHeaders })).json()) as {
            counts: Record<string, number>;
          }
        ).counts.waiting_budget;
      await expect.poll(waiting, { timeout: 30_000 }).toBe(1);

      const context = await launch();
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
      });
      await logIn(page, s, ADMIN_KEY);
      await expect.poll(() => page.textContent('#mode'), { timeout: 10_000 }).toBe('live');
      // Instead of an ETA, why the parked batch does not move (and the backlog with it); a
      // finished batch has none.
      await expect
        .poll(() => page.textContent(`tr[data-batch-id="${parked}"] .eta`), { timeout: 10_000 })
        .toBe(`waiting for money: 1 parked on batch:${parked} lifetime`);
      expect(await page.locator(`tr[data-batch-id="${done}"] .eta`).count()).toBe(0);
      await expect
        .poll(() => page.textContent('#backlog-eta'), { timeout: 10_000 })
        .toBe('waiting for money: 1 parked');

      // The batch's jobs, ten at a time, in row order.
      await page.click(`button[data-open-batch="${done}"]`);
      await page.waitForSelector('#batch-detail:not([hidden])');
      const jobRows = page.locator('#batch-jobs tr');
      await expect.poll(() => jobRows.count(), { timeout: 10_000 }).toBe(10);
      expect(await page.textContent('#batch-detail-name')).toBe('twelve');
      await page.click('#batch-jobs-more');
      await expect.poll(() => jobRows.count(), { timeout: 10_000 }).toBe(12);
      expect(await page.isHidden('#batch-jobs-more')).toBe(true);
      expect(await jobRows.locator('td:first-child').allTextContents()).toEqual(rows.map((r) => r.custom_id));

      // Only the failed ones: one, with its error; and the job itself.
      await page.selectOption('#job-state', 'failed');
      await expect.poll(() => jobRows.count(), { timeout: 10_000 }).toBe(1);
      expect(await jobRows.locator('td').first().textContent()).toBe('row-11');
      expect(await jobRows.locator('.code').textContent()).toMatch(/^[A-Z_]+$/);
      await jobRows.locator('button[data-open-job]').click();
      await page.waitForSelector('#job-detail:not([hidden])');
      const fact = (name: string) => page.textContent(`#job-facts dd[data-fact="${name}"]`);
      await expect.poll(() => page.textContent('#job-detail-state'), { timeout: 10_000 }).toBe('failed');
      expect(await fact('Error')).toMatch(/^[A-Z_]+: ./);
      expect(await fact('Provider task')).not.toBe('none yet');
      // Its timeline: Recast's states, and the provider's moves and logs of its task.
      const states = () =>
        page.locator('#job-timeline li').evaluateAll((els) => els.map((el) => el.dataset.state));
      await expect.poll(async () => (await states()).at(-1), { timeout: 10_000 }).toBe('failed');
      expect((await states())[0]).toBe('queued');
      expect(await page.locator('#job-provider-events li').last().getAttribute('data-status')).toBe('failed');
      expect(await page.locator('#job-logs li').count()).toBeGreaterThan(0);

      // A completed one: what it was estimated at against what the provider billed.
      await page.selectOption('#job-state', 'completed');
      await expect.poll(() => jobRows.count(), { timeout: 10_000 }).toBe(10);
      await jobRows.first().locator('button[data-open-job]').click();
      await expect.poll(() => page.textContent('#job-detail-state'), { timeout: 10_000 }).toBe('completed');
      expect(await fact('Estimate')).toMatch(/^2\.0 s \(hint\) · \$0\.06$/);
      expect(await fact('Billed')).toMatch(
        /^\d+\.\d s at 720p · \$[\d.]+ \([+−]\$[\d.]+ against the estimate\)$/,
      );
      expect(await fact('Error')).toBe('none');
      expect(await page.locator('#job-actions button').count()).toBe(0);
      await expect.poll(async () => (await states()).at(-1), { timeout: 10_000 }).toBe('completed');
      expect(await states()).toEqual(
        expect.arrayContaining(['queued', 'submitting', 'submitted', 'completed']),
      );
      expect(await page.locator('#job-logs li').allTextContents()).toEqual(
        expect.arrayContaining([expect.stringContaining('Prediction completed successfully')]),
      );
      expect(await page.textContent('#job-provider-note')).toMatch(/^Task \S+: completed \(read /);

      // A job waiting for money: cancelled from its page after a confirmation, followed live.
      await page.selectOption('#job-state', '');
      await page.click(`button[data-open-batch="${parked}"]`);
      await expect.poll(() => jobRows.count(), { timeout: 10_000 }).toBe(1);
      await jobRows.locator('button[data-open-job]').click();
      await expect
        .poll(() => page.textContent('#job-detail-state'), { timeout: 10_000 })
        .toBe('waiting budget');
      const questions: string[] = [];
      page.on('dialog', (dialog) => {
        questions.push(dialog.message());
        void dialog.accept();
      });
      await page.click('#job-actions button[data-action=cancel-job]');
      await expect.poll(() => page.textContent('#job-detail-state'), { timeout: 10_000 }).toBe('cancelled');
      expect(questions[0]).toMatch(/^Cancel job job_\w+\? Nothing was spent on it yet/);
      // The timeline follows the cancel live; the job never reached the provider.
      await expect.poll(async () => (await states()).at(-1), { timeout: 10_000 }).toBe('cancelled');
      expect(await states()).toEqual(['queued', 'waiting_budget', 'cancelled']);
      expect(await page.textContent('#job-provider-note')).toBe('No task at the provider yet.');
      // The batch's list follows it (an event of the batch), and so does its row.
      await expect
        .poll(() => jobRows.locator('td:nth-child(3)').textContent(), { timeout: 10_000 })
        .toBe('cancelled');
      // Its only row cancelled on its own, the batch is over (with errors: a row did not complete).
      await expect.poll(() => statusOf(parked), { timeout: 10_000 }).toBe('completed_with_errors');
      await expect
        .poll(async () => (await progressOf(page, parked))?.status, { timeout: 10_000 })
        .toBe('completed with errors');
      expect(await page.textContent(`tr[data-batch-id="${parked}"] .counts`)).toBe('cancelled 1');
      await expect
        .poll(() => page.textContent('#batch-detail-status'), { timeout: 10_000 })
        .toBe('completed with errors');

      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-drilldown.png'), fullPage: true });
      // Every element id names one element (a repeated id sends a view to the wrong place).
      const ids = await page.locator('[id]').evaluateAll((els) => els.map((el) => el.id));
      expect(ids.filter((id, i) => ids.indexOf(id) !== i)).toEqual([]);
      expect(problems).toEqual([]);
    },
    120_000,
  );

  it.skipIf(!HAVE_CHROMIUM && !IN_CI)(
    'shows each budget with reserved, spent and what is parked behind it, and an admin raises one after a confirmation with the money; the parked jobs then run, followed live',
    async () => {
      if (!HAVE_CHROMIUM) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package`);
      const s = await start({ auth: true, emulator: { stepMs: 5 } });
      const admin = { ...s.authHeaders, 'content-type': 'application/json' };
      // $0.05 a day for the tenant: each job below is estimated at $0.06 (2 s at 720p), so all park.
      const limit = await fetch(`${s.apiUrl}/v1/budgets/tenant:acme`, {
        method: 'PUT',
        headers: admin,
        body: JSON.stringify({ window: 'daily', limit_usd: 0.05 }),
      });
      expect(limit.status).toBe(200);
      const jobs = [];
      for (let i = 0; i < 3; i++) {
        const res = await fetch(`${s.apiUrl}/v1/jobs`, {
          method: 'POST',
          headers: { ...admin, 'x-tenant': 'acme' },
          body: JSON.stringify({
            video: s.fixture('clip-2s-faststart.mp4'),
            images: [s.fixture('person-a.png')],
            duration_seconds: 2,
          }),
        });
        expect(res.status).toBe(202);
        jobs.push(((await res.json()) as { id: string }).id);
      }
      const stateOf = async (id: string) =>
        (
          (await (await fetch(`${s.apiUrl}/v1/jobs/${id}`, { headers: s.authHeaders })).json()) as {
            state: string;
          }
        ).state;
      for (const id of jobs) await expect.poll(() => stateOf(id), { timeout: 30_000 }).toBe('waiting_budget');

      const context = await launch();
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
      });
      // The admin acts for the tenant (its events are the ones that move the panel).
      await page.goto(`${s.apiUrl}/dashboard`);
      await page.fill('#key', ADMIN_KEY);
      await page.fill('#tenant', 'acme');
      await page.click('#login button[type=submit]');
      await expect.poll(() => page.textContent('#mode'), { timeout: 10_000 }).toBe('live');
      const budget = page.locator('tr[data-budget="tenant:acme|daily"]');
      await budget.waitFor();
      expect(await budget.locator('td').allTextContents()).toEqual([
        'tenant:acme',
        'daily',
        '$0.05',
        '$0.00',
        '$0.00',
        '$0.05',
        '3 jobs · est. $0.18',
        'Raise',
      ]);

      const dialogs: { type: string; message: string }[] = [];
      page.on('dialog', (dialog) => {
        dialogs.push({ type: dialog.type(), message: dialog.message() });
        void (dialog.type() === 'prompt' ? dialog.accept('1') : dialog.accept());
      });
      const raised = page.waitForResponse((res) => res.url().endsWith('/v1/budgets/tenant%3Aacme'));
      await budget.locator('button[data-action=raise]').click();
      expect((await raised).status()).toBe(200);
      expect(dialogs.map((d) => d.type)).toEqual(['prompt', 'confirm']);
      expect(dialogs[1]!.message).toBe(
        'Raise tenant:acme (daily) from $0.05 to $1.00? That is $0.95 more to spend; $0.00 is spent and $0.00 reserved. 3 parked jobs (est. $0.18) wait behind it.',
      );
      // The parked jobs run now: the panel follows them to spent money and nothing parked.
      for (const id of jobs) await expect.poll(() => stateOf(id), { timeout: 30_000 }).toBe('completed');
      await expect.poll(() => budget.locator('td.parked').textContent(), { timeout: 10_000 }).toBe('none');
      await expect.poll(() => budget.locator('td.limit').textContent(), { timeout: 10_000 }).toBe('$1.00');
      await expect
        .poll(() => budget.locator('td').nth(4).textContent(), { timeout: 10_000 })
        .not.toBe('$0.00');

      // A viewer sees the budgets, and no Raise.
      const key = await fetch(`${s.apiUrl}/v1/admin/keys`, {
        method: 'POST',
        headers: admin,
        body: JSON.stringify({ name: 'viewer', role: 'viewer', tenant: 'acme' }),
      });
      const viewer = ((await key.json()) as { key: string }).key;
      const looking = await context.newPage();
      await logIn(looking, s, viewer);
      await looking.locator('tr[data-budget="tenant:acme|daily"]').waitFor();
      expect(await looking.locator('#budgets button').count()).toBe(0);
      expect(await looking.isHidden('#budget-actions-head')).toBe(true);

      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-budgets.png'), fullPage: true });
      expect(problems).toEqual([]);
    },
    120_000,
  );

  it.skipIf(!HAVE_CHROMIUM && !IN_CI)(
    'charts the last 24 hours: jobs finished and dollars spent per hour, by resolution, moving as jobs finish',
    async () => {
      if (!HAVE_CHROMIUM) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package`);
      const s = await start({ auth: true, emulator: { stepMs: 5 } });
      const job = (resolution: string) => ({
        video: s.fixture('clip-2s-faststart.mp4'),
        images: [s.fixture('person-a.png')],
        duration_seconds: 2,
        resolution,
      });
      for (const resolution of ['720p', '720p', '1080p', '1080p'])
        await s.waitTerminal((await s.submit(job(resolution))).id);

      const context = await launch();
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
      });
      await logIn(page, s, ADMIN_KEY);
      await expect.poll(() => page.textContent('#mode'), { timeout: 10_000 }).toBe('live');
      // 2 × 2 s × $0.03 (720p) + 2 × 2 s × $0.06 (1080p); the emulator bills what it was asked.
      await expect
        .poll(() => page.textContent('#activity-summary'), { timeout: 10_000 })
        .toBe('(4 jobs · $0.36)');
      const byRes = (r: string) =>
        page.textContent(`#activity-by-resolution [data-resolution="${r}"] strong`);
      expect(await byRes('720p')).toBe('2 jobs · $0.12');
      expect(await byRes('1080p')).toBe('2 jobs · $0.24');
      // In the last hours of the 24 (the current one, or the one before when the run straddles the
      // hour), one segment per resolution and hour.
      const bars = page.locator('#activity-chart rect[data-hour]');
      const hours = await bars.evaluateAll((els) => els.map((el) => el.getAttribute('data-hour')));
      expect(hours.length).toBeGreaterThanOrEqual(2);
      expect(hours.length).toBeLessThanOrEqual(4);
      for (const hour of hours) expect(['22', '23']).toContain(hour);

      // Another job finishes: the chart follows it live.
      await s.waitTerminal((await s.submit(job('1080p'))).id);
      await expect
        .poll(() => page.textContent('#activity-summary'), { timeout: 10_000 })
        .toBe('(5 jobs · $0.48)');
      expect(await byRes('1080p')).toBe('3 jobs · $0.36');

      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-activity.png'), fullPage: true });
      expect(problems).toEqual([]);
    },
    120_000,
  );

  it.skipIf(!HAVE_CHROMIUM && !IN_CI)(
    "plays a job's kept output in its drill-down, read with the key",
    async () => {
      if (!HAVE_CHROMIUM) throw new Error(`${CHROMIUM} is missing: install Debian's chromium package`);
      const store = await mkdtemp(join(tmpdir(), 'recast-outputs-'));
      onCleanup(() => rm(store, { recursive: true, force: true }));
      const s = await start({
        auth: true,
        emulator: { stepMs: 5 },
        api: { OUTPUT_STORE: store },
        worker: { OUTPUT_STORE: store },
      });
      const res = await fetch(`${s.apiUrl}/v1/batches?name=kept`, {
        method: 'POST',
        headers: { ...s.authHeaders, 'content-type': 'application/x-ndjson' },
        body: `${JSON.stringify({ custom_id: 'only', video: s.fixture('clip-2s-faststart.mp4'), images: [s.fixture('person-a.png')], duration_seconds: 2 })}\n`,
      });
      expect(res.status).toBe(202);
      const batch = ((await res.json()) as { id: string }).id;
      const jobOf = async () =>
        (
          (await (
            await fetch(`${s.apiUrl}/v1/batches/${batch}/jobs`, { headers: s.authHeaders })
          ).json()) as {
            data: { id: string; output: { retention: { status: string } | null } | null }[];
          }
        ).data[0];
      await expect
        .poll(async () => (await jobOf())?.output?.retention?.status, { timeout: 60_000 })
        .toBe('stored');
      const job = (await jobOf())!;

      const context = await launch();
      const page = await context.newPage();
      const problems: string[] = [];
      page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
      page.on('console', (msg) => {
        if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
      });
      await logIn(page, s, ADMIN_KEY);
      await page.click(`button[data-open-batch="${batch}"]`);
      await page.click(`button[data-open-job="${job.id}"]`);
      const video = page.locator(`#job-video video[data-kept="${job.id}"]`);
      await video.waitFor();
      expect(await video.getAttribute('src')).toMatch(/^blob:/);
      // The browser reads the file's own header: a 2-second clip, as billed.
      await expect
        .poll(() => video.evaluate((el) => Math.round((el as unknown as { duration: number }).duration)), {
          timeout: 20_000,
        })
        .toBe(2);
      expect(await video.evaluate((el) => (el as unknown as { error: unknown }).error)).toBeNull();
      expect(await page.textContent('#job-facts dd[data-fact="Kept copy"]')).toBe(
        `/v1/jobs/${job.id}/output`,
      );
      await mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'dashboard-output.png'), fullPage: true });
      expect(problems).toEqual([]);
    },
    120_000,
  );
});
