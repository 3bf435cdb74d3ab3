// Recast dashboard: one plain ES module, no build step, no framework. Everything the API says goes
// into the page through textContent and attributes, never as markup, so no value can inject any.
// The enums (job states, batch statuses) come from the API's contract, served as contract.js.
import { FINISHED_BATCH_STATUSES, JOB_STATES } from './contract.js';

const KEY_ITEM = 'recast.dashboard.key';
const TENANT_ITEM = 'recast.dashboard.tenant';
const POLL_MS = 3000;
/** Stats, spend and failures after events: at most this often (a batch of 10,000 rows is noisy). */
const THROTTLE_MS = 1500;
/** Events of one batch within this long become one read of it. */
const BATCH_FLUSH_MS = 200;
/** Waits before the stream is tried again, by consecutive failures. */
const STREAM_RETRY_MS = [2000, 5000, 10_000, 30_000];
/** The server sends a comment every EVENTS_HEARTBEAT_MS (15 s); silence this long is a dead stream. */
const STREAM_IDLE_MS = 45_000;
const BATCH_LIMIT = 20;
const FAILURE_LIMIT = 10;
/** Jobs of a batch read at a time in its drill-down (More reads the next page). */
const JOB_PAGE = 10;
const TERMINAL = new Set(['completed', 'failed', 'cancelled', 'expired']);
const SVG = 'http://www.w3.org/2000/svg';

const $ = (id) => document.getElementById(id);

class AuthError extends Error {}
class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** The element `tag` with attributes and children (strings become text nodes). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  el.append(...children);
  return el;
}

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

function usd(micro) {
  const dollars = (Number(micro) || 0) / 1e6;
  if (dollars > 0 && dollars < 0.01) return `$${dollars.toFixed(4)}`;
  return `$${dollars.toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`;
}

const time = (iso) => (iso ? new Date(iso).toLocaleTimeString() : '');

let current;

// ---- the API ----

function headers(s, extra = {}) {
  const out = { authorization: `Bearer ${s.key}`, ...extra };
  if (s.tenant) out['x-tenant'] = s.tenant;
  return out;
}

async function errorOf(res) {
  try {
    const { error } = await res.json();
    return `${error.code}: ${error.message}`;
  } catch {
    return `HTTP ${res.status}`;
  }
}

/** A GET with the key; a 304 to our If-None-Match answers from what we had. */
async function api(s, path) {
  const cached = s.cache.get(path);
  const res = await fetch(path, {
    headers: headers(s, { accept: 'application/json', ...(cached ? { 'if-none-match': cached.etag } : {}) }),
    // Our own ETags, not the browser's cache: a 304 must reach this code.
    cache: 'no-store',
    signal: s.abort.signal,
  });
  if (res.status === 304 && cached) return cached.body;
  if (res.status === 401) throw new AuthError(await errorOf(res));
  if (!res.ok) throw new ApiError(res.status, await errorOf(res));
  const body = await res.json();
  const etag = res.headers.get('etag');
  if (etag) s.cache.set(path, { etag, body });
  return body;
}

const tenantQuery = (s) => (s.tenant ? `&tenant=${encodeURIComponent(s.tenant)}` : '');

/** A POST with the key (an action); its answer, or an ApiError with the API's code and message. */
async function post(s, path) {
  const res = await fetch(path, {
    method: 'POST',
    headers: headers(s, { accept: 'application/json' }),
    cache: 'no-store',
    signal: s.abort.signal,
  });
  if (res.status === 401) throw new AuthError(await errorOf(res));
  if (!res.ok) throw new ApiError(res.status, await errorOf(res));
  return res.json();
}

/** A PUT of a JSON body with the key (an admin's action). */
async function put(s, path, body) {
  const res = await fetch(path, {
    method: 'PUT',
    headers: headers(s, { accept: 'application/json', 'content-type': 'application/json' }),
    body: JSON.stringify(body),
    cache: 'no-store',
    signal: s.abort.signal,
  });
  if (res.status === 401) throw new AuthError(await errorOf(res));
  if (!res.ok) throw new ApiError(res.status, await errorOf(res));
  return res.json();
}

const HOUR_MS = 3600_000;

/**
 * Jobs finished and dollars spent per hour over the last 24 hours, by resolution: the ledger's
 * line items of yesterday and today (one per billed run), bucketed by the hour they were charged.
 */
async function loadActivity(s) {
  const now = Date.now();
  const since = now - 24 * HOUR_MS;
  const day = (ms) => new Date(ms).toISOString().slice(0, 10);
  const query = new URLSearchParams({ from: day(since), to: day(now) });
  if (s.tenant) query.set('tenant', s.tenant);
  const res = await fetch(`/v1/costs/items?${query}`, {
    headers: headers(s, { accept: 'application/x-ndjson' }),
    cache: 'no-store',
    signal: s.abort.signal,
  });
  if (res.status === 401) throw new AuthError(await errorOf(res));
  if (!res.ok) throw new ApiError(res.status, await errorOf(res));
  const first = Math.floor(since / HOUR_MS) + 1;
  const hours = Array.from({ length: 24 }, (_, i) => ({ start: (first + i) * HOUR_MS, byRes: new Map() }));
  const totals = new Map();
  for (const line of (await res.text()).split('\n')) {
    if (!line.trim()) continue;
    const item = JSON.parse(line);
    const at = Date.parse(item.charged_at);
    if (!(at >= first * HOUR_MS && at < (first + 24) * HOUR_MS)) continue;
    const hour = hours[Math.floor(at / HOUR_MS) - first];
    for (const map of [hour.byRes, totals]) {
      const t = map.get(item.resolution) ?? { jobs: 0, micro: 0 };
      // Jobs finished: the run that ended each job (retried failures and duplicates cost, but end none).
      if (item.kind === 'run') t.jobs += 1;
      t.micro += item.micro_usd;
      map.set(item.resolution, t);
    }
  }
  s.activity = { hours, totals };
  renderActivity(s);
}

function renderActivity(s) {
  const { hours, totals } = s.activity;
  const resolutions = [...totals.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const sum = [...totals.values()].reduce((a, t) => ({ jobs: a.jobs + t.jobs, micro: a.micro + t.micro }), {
    jobs: 0,
    micro: 0,
  });
  $('activity-summary').textContent = `(${sum.jobs} jobs · ${usd(sum.micro)})`;
  $('activity-by-resolution').replaceChildren(
    ...resolutions.map((r) =>
      h(
        'li',
        { class: 'state', 'data-resolution': r },
        h('span', { class: 'state-name' }, r),
        h('strong', {}, `${totals.get(r).jobs} jobs · ${usd(totals.get(r).micro)}`),
      ),
    ),
  );
  const width = 960;
  const height = 160;
  const bottom = 22;
  const max = Math.max(1, ...hours.map((hr) => [...hr.byRes.values()].reduce((a, t) => a + t.micro, 0)));
  const chart = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': 'Dollars spent per hour over the last 24 hours, by resolution',
  });
  chart.append(svg('line', { x1: 0, x2: width, y1: height - bottom, y2: height - bottom, class: 'axis' }));
  const slot = width / 24;
  hours.forEach((hour, i) => {
    let y = height - bottom;
    const x = i * slot + 2;
    resolutions.forEach((r, k) => {
      const t = hour.byRes.get(r);
      if (!t) return;
      const tall = Math.max(1, Math.round((t.micro / max) * (height - bottom - 10)));
      y -= tall;
      const rect = svg('rect', {
        x,
        y,
        width: slot - 4,
        height: tall,
        class: `bar-res-${k % 3}`,
        'data-hour': i,
      });
      rect.append(
        svg(
          'title',
          {},
          `${new Date(hour.start).toLocaleTimeString()} ${r}: ${t.jobs} jobs, ${usd(t.micro)}`,
        ),
      );
      chart.append(rect);
    });
    if (i % 3 === 0) {
      const label = new Date(hour.start).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
      chart.append(svg('text', { x: x + slot / 2, y: height - 6, class: 'label' }, label));
    }
  });
  $('activity-chart').replaceChildren(chart);
}

/** At most this many waiting jobs are read to say what is parked behind each budget. */
const PARKED_LIMIT = 500;

/** Every limit with its reserved and spent, and the jobs parked behind it (and what they would cost). */
async function loadBudgets(s) {
  const [budgets, waiting] = await Promise.all([
    api(s, '/v1/budgets'),
    api(s, `/v1/jobs?state=waiting_budget&limit=${PARKED_LIMIT}${tenantQuery(s)}`),
  ]);
  const parked = new Map();
  for (const job of waiting.data) {
    const key = job.budget.blocked_by;
    if (!key) continue;
    const p = parked.get(key) ?? { jobs: 0, micro: 0 };
    p.jobs += 1;
    p.micro += job.estimate?.micro_usd ?? 0;
    parked.set(key, p);
  }
  s.budgets = { rows: budgets.data, parked, more: waiting.next_cursor !== null };
  renderBudgets(s);
}

function renderBudgets(s) {
  const { rows, parked, more } = s.budgets;
  const admin = Boolean(s.me?.can_admin);
  $('budget-actions-head').hidden = !admin;
  $('budgets').replaceChildren(
    ...rows.map((b) => {
      const key = `${b.scope}|${b.window}`;
      const p = parked.get(key) ?? { jobs: 0, micro: 0 };
      const cells = [
        h('td', {}, b.scope),
        h('td', {}, b.window),
        h('td', { class: 'limit' }, usd(b.limit_micro_usd)),
        h('td', {}, usd(b.reserved_micro_usd)),
        h('td', {}, usd(b.spent_micro_usd)),
        h('td', {}, usd(b.available_micro_usd)),
        h(
          'td',
          { class: 'parked' },
          p.jobs ? `${p.jobs}${more ? '+' : ''} jobs · est. ${usd(p.micro)}` : 'none',
        ),
      ];
      if (admin) {
        const raise = h('button', { type: 'button', 'data-action': 'raise' }, 'Raise');
        raise.addEventListener('click', () => void raiseBudget(s, b, p));
        cells.push(h('td', {}, h('div', { class: 'actions' }, raise)));
      }
      return h('tr', { 'data-budget': key }, ...cells);
    }),
  );
  $('budgets-empty').hidden = rows.length > 0;
}

/** Raise a limit (admin keys), after a confirmation with the money involved. */
async function raiseBudget(s, budget, parked) {
  const answer = window.prompt(
    `New ${budget.window} limit for ${budget.scope}, in dollars (now ${usd(budget.limit_micro_usd)})`,
    (budget.limit_micro_usd / 1e6).toFixed(2),
  );
  if (answer === null) return;
  const dollars = Number(answer);
  if (!Number.isFinite(dollars) || dollars < 0) return showError(`Not an amount in dollars: ${answer}`);
  const micro = Math.round(dollars * 1e6);
  const question =
    `Raise ${budget.scope} (${budget.window}) from ${usd(budget.limit_micro_usd)} to ${usd(micro)}? ` +
    `That is ${usd(micro - budget.limit_micro_usd)} more to spend; ${usd(budget.spent_micro_usd)} is spent and ` +
    `${usd(budget.reserved_micro_usd)} reserved. ${parked.jobs} parked jobs (est. ${usd(parked.micro)}) wait behind it.`;
  if (!window.confirm(question)) return;
  try {
    await put(s, `/v1/budgets/${encodeURIComponent(budget.scope)}`, {
      window: budget.window,
      limit_usd: dollars,
    });
    showError('');
    await settle(s, [loadBudgets(s)]);
  } catch (err) {
    if (err instanceof AuthError) return logout(err.message);
    showError(`Raising ${budget.scope} refused: ${err.message}`);
  }
}

async function loadStats(s) {
  s.stats = await api(s, '/v1/stats');
  renderStats(s);
}

async function loadCosts(s) {
  s.month = await api(s, `/v1/costs?group_by=resolution${tenantQuery(s)}`);
  renderSpend(s);
}

async function loadFailures(s) {
  const page = await api(s, `/v1/jobs?state=failed&limit=${FAILURE_LIMIT}${tenantQuery(s)}`);
  renderFailures(page.data);
}

/** Keep a batch unless a read that started later already gave it (answers may arrive out of order). */
function applyBatch(s, batch, seq) {
  if ((s.applied.get(batch.id) ?? 0) > seq) return;
  s.applied.set(batch.id, seq);
  s.batches.set(batch.id, batch);
}

function trimBatches(s) {
  // Batch ids are ULIDs: newest first is descending id order.
  const ids = [...s.batches.keys()].sort().reverse();
  for (const id of ids.slice(BATCH_LIMIT)) s.batches.delete(id);
}

async function loadBatches(s) {
  const seq = ++s.seq;
  const page = await api(s, `/v1/batches?limit=${BATCH_LIMIT}`);
  const listed = new Set(page.data.map((b) => b.id));
  for (const id of s.batches.keys())
    if (!listed.has(id) && (s.applied.get(id) ?? 0) < seq) s.batches.delete(id);
  for (const batch of page.data) applyBatch(s, batch, seq);
  trimBatches(s);
  renderBatches(s);
}

async function loadBatch(s, id) {
  const seq = ++s.seq;
  try {
    applyBatch(s, await api(s, `/v1/batches/${encodeURIComponent(id)}`), seq);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) throw err;
    s.batches.delete(id);
  }
  trimBatches(s);
  renderBatches(s);
}

/** Runs reads; a 401 logs out with its message, other errors show on the page. */
async function settle(s, reads) {
  const results = await Promise.allSettled(reads);
  if (s.closed) return;
  const failed = results.filter((r) => r.status === 'rejected').map((r) => r.reason);
  const auth = failed.find((e) => e instanceof AuthError);
  if (auth) return logout(auth.message);
  showError(failed.length ? failed.map((e) => e.message).join('; ') : '');
}

const refreshAll = (s) =>
  settle(s, [loadStats(s), loadCosts(s), loadBatches(s), loadFailures(s), loadBudgets(s), loadActivity(s)]);

// ---- live: the event stream, and polling when it is down ----

function setMode(mode) {
  $('mode').textContent = mode;
  $('mode').dataset.mode = mode;
}

function startPolling(s) {
  if (s.pollTimer !== undefined) return;
  const tick = async () => {
    await refreshAll(s);
    s.pollTimer = s.closed || s.live ? undefined : setTimeout(tick, POLL_MS);
  };
  s.pollTimer = setTimeout(tick, 0);
}

function stopPolling(s) {
  clearTimeout(s.pollTimer);
  s.pollTimer = undefined;
}

function markBatch(s, id) {
  s.dirty.add(id);
  if (s.flushTimer !== undefined) return;
  s.flushTimer = setTimeout(() => {
    s.flushTimer = undefined;
    const ids = [...s.dirty];
    s.dirty.clear();
    void settle(
      s,
      ids.map((id) => loadBatch(s, id)),
    );
  }, BATCH_FLUSH_MS);
}

/** `fn` at most once every `ms`, the last call never lost. */
function throttle(s, fn, ms) {
  let last = 0;
  let timer;
  return () => {
    if (timer !== undefined) return;
    timer = setTimeout(
      () => {
        timer = undefined;
        last = Date.now();
        if (!s.closed) void fn();
      },
      Math.max(0, last + ms - Date.now()),
    );
  };
}

function onEvent(s, type, raw) {
  if (type === 'reset') {
    // Events before this point were trimmed: what we show may have missed some. Read it all
    // again; the stream goes on from here.
    void refreshAll(s);
    return;
  }
  let data;
  try {
    data = JSON.parse(raw);
  } catch {
    return;
  }
  if (typeof data.batch === 'string' && data.batch !== '') markBatch(s, data.batch);
  // The open drill-down follows its batch and its job too.
  if (s.detail && data.batch === s.detail.batchId) s.refreshDetail();
  if (s.jobId && data.job === s.jobId) s.refreshJob();
  s.refreshFigures();
}

/** Reads `text/event-stream` frames: `event`, `data`, `id` lines, a blank line ends one. */
async function readEvents(s, body, controller) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let idle;
  const watch = () => {
    clearTimeout(idle);
    idle = setTimeout(() => controller.abort(), STREAM_IDLE_MS);
  };
  let buffer = '';
  let type = 'message';
  let data = [];
  try {
    for (;;) {
      watch();
      const { value, done } = await reader.read();
      if (done || s.closed) return;
      buffer += value;
      const lines = buffer.split(/\r\n|\r|\n/);
      buffer = lines.pop() ?? '';
      for (const line of lines) {
        if (line === '') {
          if (data.length) onEvent(s, type, data.join('\n'));
          type = 'message';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        let value = colon < 0 ? '' : line.slice(colon + 1);
        if (value.startsWith(' ')) value = value.slice(1);
        if (field === 'event') type = value;
        else if (field === 'data') data.push(value);
        else if (field === 'id' && !value.includes('\0')) s.lastEventId = value;
      }
    }
  } finally {
    clearTimeout(idle);
  }
}

async function openStream(s) {
  if (s.closed) return;
  const controller = new AbortController();
  const stop = () => controller.abort();
  s.abort.signal.addEventListener('abort', stop);
  try {
    const res = await fetch('/v1/events', {
      headers: headers(s, {
        accept: 'text/event-stream',
        ...(s.lastEventId ? { 'last-event-id': s.lastEventId } : {}),
      }),
      cache: 'no-store',
      signal: controller.signal,
    });
    if (res.status === 401) return logout(await errorOf(res));
    if (!res.ok || !res.body) throw new Error(await errorOf(res));
    s.live = true;
    s.streamFailures = 0;
    setMode('live');
    stopPolling(s);
    // Whatever moved before the stream was open is read once; the events tell the rest.
    void refreshAll(s);
    await readEvents(s, res.body, controller);
  } catch {
    // A refused, blocked or broken stream: polling covers it until the next try.
  } finally {
    s.abort.signal.removeEventListener('abort', stop);
  }
  if (s.closed) return;
  s.live = false;
  setMode('polling');
  startPolling(s);
  const wait = STREAM_RETRY_MS[Math.min(s.streamFailures++, STREAM_RETRY_MS.length - 1)];
  s.streamTimer = setTimeout(() => openStream(s), wait);
}

// ---- rendering ----

function showError(message) {
  $('error').textContent = message;
  $('error').hidden = !message;
}

function renderStats(s) {
  const { provider, jobs, tenant } = s.stats;
  $('pressure').hidden = false;
  $('in-flight').textContent = String(provider.in_flight);
  $('in-flight-cap').textContent =
    provider.max_in_flight === null ? 'no cap' : String(provider.max_in_flight);
  const ratio = provider.max_in_flight ? Math.min(1, provider.in_flight / provider.max_in_flight) : 0;
  $('in-flight-meter').style.width = `${Math.round(ratio * 100)}%`;
  $('submits').textContent = String(provider.submits_in_window);
  $('submits-cap').textContent =
    provider.submits_per_window === null ? 'no limit' : String(provider.submits_per_window);
  $('window').textContent = `${Math.round(provider.window_ms / 1000)} s`;
  // The backlog's estimate: nothing in line is "idle", else when it should be done, or why not.
  const eta = s.stats.eta;
  $('backlog-eta').textContent =
    eta && (eta.basis.jobs_ahead > 0 || eta.blocked_by || Date.parse(eta.finish_at) > Date.now())
      ? etaText(eta)
      : 'idle';
  $('scope').textContent =
    tenant === null
      ? "All tenants (an admin key): job counts, spend and failures. Batches and events: the key's own tenant."
      : `Tenant ${tenant}.`;
  $('jobs-total').textContent = `(${jobs.total})`;
  $('job-states').replaceChildren(
    ...JOB_STATES.map((state) =>
      h(
        'li',
        { class: `state state-${state}`, 'data-state': state },
        h('span', { class: 'state-name' }, state.replace('_', ' ')),
        h('strong', {}, String(jobs.by_state[state] ?? 0)),
      ),
    ),
  );
  renderSpend(s);
}

/** A bar pair per resolution: today's spend and this month's, in one scale. */
function renderSpend(s) {
  const today = s.stats?.spend_today;
  const month = s.month;
  if (!today || !month) return;
  $('spend-today').textContent = usd(today.total_micro_usd);
  $('spend-month').textContent = usd(month.total.micro_usd);
  const byRes = new Map();
  for (const row of today.by_resolution) byRes.set(row.resolution, { today: row, month: undefined });
  for (const row of month.rows) byRes.set(row.resolution, { ...byRes.get(row.resolution), month: row });
  const resolutions = [...byRes.keys()].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
  const width = 520;
  const height = 220;
  const top = 52;
  const bottom = 28;
  const chart = svg('svg', {
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': 'Spend by resolution, today and this month',
  });
  chart.append(
    svg('rect', { x: width - 200, y: 6, width: 12, height: 12, class: 'swatch bar-today' }),
    svg('text', { x: width - 182, y: 17, class: 'legend' }, 'today'),
    svg('rect', { x: width - 120, y: 6, width: 12, height: 12, class: 'swatch bar-month' }),
    svg('text', { x: width - 102, y: 17, class: 'legend' }, 'this month'),
    svg('line', { x1: 0, x2: width, y1: height - bottom, y2: height - bottom, class: 'axis' }),
  );
  if (resolutions.length === 0) {
    chart.append(svg('text', { x: width / 2, y: height / 2, class: 'none' }, 'No spend yet this month'));
  }
  const max = Math.max(
    1,
    ...resolutions.flatMap((r) => [byRes.get(r).today, byRes.get(r).month]).map((t) => t?.micro_usd ?? 0),
  );
  const group = width / Math.max(1, resolutions.length);
  const bar = Math.min(70, group / 3);
  resolutions.forEach((resolution, i) => {
    const { today: t, month: m } = byRes.get(resolution);
    const x = i * group + group / 2;
    [
      ['today', t, x - bar - 2, 'bar-today'],
      ['this month', m, x + 2, 'bar-month'],
    ].forEach(([label, row, left, cls]) => {
      const micro = row?.micro_usd ?? 0;
      const tall = Math.round((micro / max) * (height - top - bottom));
      const y = height - bottom - tall;
      const rect = svg('rect', { x: left, y, width: bar, height: Math.max(tall, 1), class: cls });
      rect.append(
        svg(
          'title',
          {},
          `${resolution} ${label}: ${usd(micro)}, ${row?.jobs ?? 0} jobs, ${row?.seconds ?? 0} s`,
        ),
      );
      chart.append(rect, svg('text', { x: left + bar / 2, y: y - 4, class: 'value' }, usd(micro)));
    });
    chart.append(svg('text', { x, y: height - 8, class: 'label' }, resolution));
  });
  $('spend-chart').replaceChildren(chart);
}

/** How long, for a person: `45s`, `3m 12s`, `1h 04m`, `2d 3h`. */
function durationText(ms) {
  const sec = Math.max(0, Math.round(ms / 1000));
  if (sec < 60) return `${sec}s`;
  const m = Math.floor(sec / 60);
  if (m < 60) return `${m}m ${String(sec % 60).padStart(2, '0')}s`;
  const hours = Math.floor(m / 60);
  if (hours < 48) return `${hours}h ${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}

/**
 * An estimate in words (the same as the CLI's): when, or why nothing moves instead (parked on a
 * budget, the provider paused after a 429); a full in-flight cap is named next to the estimate.
 */
function etaText(eta) {
  if (!eta) return '';
  const why = eta.blocked_by;
  if (why?.reason === 'budget') {
    const on = why.scope ? ` on ${why.scope}${why.window ? ` ${why.window}` : ''}` : '';
    return `waiting for money: ${why.parked} parked${on}`;
  }
  if (why?.reason === 'provider_paused') {
    return `provider paused (429) until ${new Date(why.until).toISOString().slice(11, 19)} UTC`;
  }
  const when = eta.finish_at
    ? `done in ${durationText(Date.parse(eta.finish_at) - Date.now())} (${new Date(eta.finish_at).toISOString().slice(11, 19)} UTC)`
    : 'no estimate';
  const speed = eta.basis.processing_source === 'default' ? ', default speed' : '';
  const full =
    why?.reason === 'in_flight_full' ? `; in-flight cap full (${why.in_flight}/${why.max_in_flight})` : '';
  return `${when}${speed}${full}`;
}

function progressOf(batch) {
  const { completed, failed, cancelled } = batch.counts;
  const expired = batch.counts.expired ?? 0;
  const total = batch.rows.total;
  const done = completed + failed + cancelled + expired;
  const pct = total ? Math.floor((done / total) * 100) : 100;
  return { total, done, pct, completed, failed, cancelled, expired };
}

/**
 * Act on a batch (keys that may write only; the API checks the role regardless), after a
 * confirmation that says what is at stake; the answer is the batch as it is now, and the events
 * that follow move the row on.
 */
async function act(s, batch, action) {
  const p = progressOf(batch);
  const cost = batch.cost;
  const name = batch.name ?? batch.id;
  const question =
    action === 'cancel'
      ? `Cancel batch ${name}? ${p.total - p.done} of ${p.total} rows are not finished. ` +
        `Spent so far: ${usd(cost.spent_micro_usd)} of ${usd(cost.estimated_micro_usd)} estimated; ` +
        `rows already at the provider are billed for what ran.`
      : `Run the ${p.failed} failed rows of batch ${name} again? ` +
        `Each run is charged on its own (up to about ${usd((cost.estimated_micro_usd / Math.max(1, p.total)) * p.failed)} more).`;
  if (!window.confirm(question)) return;
  const seq = ++s.seq;
  try {
    const answer = await post(s, `/v1/batches/${encodeURIComponent(batch.id)}/${action}`);
    applyBatch(s, answer, seq);
    renderBatches(s);
    showError('');
  } catch (err) {
    if (err instanceof AuthError) return logout(err.message);
    showError(`${action === 'cancel' ? 'Cancel' : 'Retry'} of ${name} refused: ${err.message}`);
  }
}

function actionsOf(s, batch) {
  const finished = FINISHED_BATCH_STATUSES.includes(batch.status);
  const buttons = [];
  if (!finished && batch.status !== 'cancelling') {
    const cancel = h('button', { type: 'button', class: 'danger', 'data-action': 'cancel' }, 'Cancel');
    cancel.addEventListener('click', () => act(s, batch, 'cancel'));
    buttons.push(cancel);
  }
  if (finished && batch.counts.failed > 0) {
    const retry = h('button', { type: 'button', 'data-action': 'retry' }, 'Retry failed');
    retry.addEventListener('click', () => act(s, batch, 'retry'));
    buttons.push(retry);
  }
  return h('td', {}, h('div', { class: 'actions' }, ...buttons));
}

function batchRow(s, batch) {
  const p = progressOf(batch);
  const bar = h('div', {
    class: 'progress',
    role: 'progressbar',
    'aria-valuemin': 0,
    'aria-valuemax': 100,
    'aria-valuenow': p.pct,
    'aria-label': `${batch.name ?? batch.id}: ${p.done} of ${p.total} rows finished`,
  });
  for (const part of ['completed', 'failed', 'cancelled', 'expired']) {
    const seg = h('span', { class: `seg seg-${part}` });
    // CSSOM, not a style attribute: the CSP forbids inline styles, not this.
    seg.style.width = p.total ? `${(p[part] / p.total) * 100}%` : '0';
    bar.append(seg);
  }
  const counts = JOB_STATES.filter((state) => batch.counts[state] > 0).map((state) =>
    h('span', { class: `count state-${state}` }, `${state.replace('_', ' ')} ${batch.counts[state]}`),
  );
  const cost = batch.cost;
  return h(
    'tr',
    { 'data-batch-id': batch.id },
    h('td', {}, h('div', { class: 'name' }, openButton(s, batch)), h('div', { class: 'id' }, batch.id)),
    h('td', {}, h('span', { class: `status status-${batch.status}` }, batch.status.replaceAll('_', ' '))),
    h(
      'td',
      {},
      bar,
      h('div', { class: 'progress-label' }, `${p.done} / ${p.total} · ${p.pct}%`),
      ...(batch.eta
        ? [
            h(
              'div',
              { class: `eta${batch.eta.finish_at ? '' : ' eta-blocked'}`, 'data-eta': '' },
              etaText(batch.eta),
            ),
          ]
        : []),
    ),
    h('td', {}, h('div', { class: 'counts' }, ...counts)),
    h(
      'td',
      { class: 'spend' },
      h('div', {}, usd(cost.spent_micro_usd)),
      h(
        'div',
        { class: 'id' },
        `est. ${usd(cost.estimated_micro_usd)}${cost.max_cost_usd === null ? '' : ` · cap $${Number(cost.max_cost_usd).toFixed(2)}`}`,
      ),
    ),
    // Viewers get no actions at all (not disabled ones): the column is not there.
    ...(s.me?.can_write ? [actionsOf(s, batch)] : []),
  );
}

function openButton(s, batch) {
  const open = h(
    'button',
    { type: 'button', class: 'open', 'data-open-batch': batch.id },
    batch.name ?? '(unnamed)',
  );
  open.addEventListener('click', () => void openBatch(s, batch.id));
  return open;
}

// ---- drill-down: a batch's jobs, and a job ----

async function openBatch(s, id) {
  s.detail = { batchId: id, state: $('job-state').value, jobs: [], next: null };
  $('batch-detail').hidden = false;
  await settle(s, [loadBatchJobs(s, false)]);
}

/** The batch's jobs in row order: the first page (or as many as shown), or the next one (More). */
async function loadBatchJobs(s, more) {
  const d = s.detail;
  if (!d) return;
  const limit = more ? JOB_PAGE : Math.min(500, Math.max(JOB_PAGE, d.jobs.length));
  const query = new URLSearchParams({ limit: String(limit) });
  if (d.state) query.set('state', d.state);
  if (more && d.next) query.set('cursor', d.next);
  const page = await api(s, `/v1/batches/${encodeURIComponent(d.batchId)}/jobs?${query}`);
  if (s.detail !== d) return;
  d.jobs = more ? [...d.jobs, ...page.data] : page.data;
  d.next = page.next_cursor;
  renderBatchJobs(s);
}

function renderBatchJobs(s) {
  const d = s.detail;
  const batch = s.batches.get(d.batchId);
  $('batch-detail-name').textContent = batch?.name ?? d.batchId;
  $('batch-detail-status').textContent = batch ? batch.status.replaceAll('_', ' ') : '';
  $('batch-jobs').replaceChildren(
    ...d.jobs.map((job) => {
      const open = h('button', { type: 'button', class: 'open', 'data-open-job': job.id }, job.id);
      open.addEventListener('click', () => void openJob(s, job.id));
      return h(
        'tr',
        { 'data-job-id': job.id },
        h('td', {}, job.custom_id ?? String(job.line ?? '')),
        h('td', {}, open),
        h('td', {}, h('span', { class: `count state-${job.state}` }, job.state.replace('_', ' '))),
        h('td', { class: 'estimate' }, job.estimate?.micro_usd == null ? '–' : usd(job.estimate.micro_usd)),
        h('td', { class: 'billed' }, job.cost ? usd(job.cost.micro_usd) : '–'),
        h('td', { class: 'code' }, job.error?.code ?? ''),
      );
    }),
  );
  $('batch-jobs-empty').hidden = d.jobs.length > 0;
  $('batch-jobs-more').hidden = !d.next;
}

async function openJob(s, id) {
  s.jobId = id;
  $('job-detail').hidden = false;
  await settle(s, [loadJob(s)]);
}

async function loadJob(s) {
  const id = s.jobId;
  if (!id) return;
  const path = `/v1/jobs/${encodeURIComponent(id)}`;
  const [job, timeline] = await Promise.all([api(s, path), api(s, `${path}/timeline`)]);
  if (s.jobId !== id) return;
  renderJob(s, job);
  renderTimeline(timeline);
}

const stamp = (iso) => h('time', { datetime: iso ?? '' }, iso ? new Date(iso).toLocaleTimeString() : '–');

/** The job's states with their times, and its provider task's status moves and logs. */
function renderTimeline(t) {
  $('job-timeline').replaceChildren(
    ...t.states.map((entry) =>
      h('li', { 'data-state': entry.state }, stamp(entry.at), entry.state.replace('_', ' ')),
    ),
  );
  const p = t.provider;
  $('job-provider-note').textContent = !p
    ? 'No task at the provider yet.'
    : p.error
      ? `Task ${p.task_id} could not be read: ${p.error}`
      : `Task ${p.task_id}: ${p.status ?? 'no status'} (read ${new Date(p.read_at).toLocaleTimeString()})`;
  $('job-provider-events').replaceChildren(
    ...(p?.events ?? []).map((event) =>
      h('li', { 'data-status': event.status }, stamp(event.at), event.status),
    ),
  );
  $('job-logs').replaceChildren(
    ...(p?.logs ?? []).map((log) => h('li', { 'data-log': log.type }, stamp(log.at), log.content)),
  );
}

const seconds = (n) => (n == null ? '–' : `${Number(n).toFixed(1)} s`);
const when = (iso) => (iso ? new Date(iso).toLocaleString() : '–');

function renderJob(s, job) {
  $('job-detail-id').textContent = job.id;
  $('job-detail-state').textContent = job.state.replace('_', ' ');
  const estimate = job.estimate;
  const billed = job.cost;
  const diff = estimate?.micro_usd != null && billed ? billed.micro_usd - estimate.micro_usd : undefined;
  const facts = [
    ['Batch', job.batch_id ? `${job.batch_id} (row ${job.custom_id ?? job.line})` : 'none'],
    ['Created', when(job.created_at)],
    ['Submitted', when(job.submitted_at)],
    ['Finished', when(job.finished_at)],
    ['Attempt', String(job.attempt)],
    [
      'Provider task',
      job.provider ? `${job.provider.task_id} (${job.provider.status ?? 'no status yet'})` : 'none yet',
    ],
    [
      'Estimate',
      estimate
        ? `${seconds(estimate.seconds)} (${estimate.source ?? 'unknown'}) · ${estimate.micro_usd == null ? '–' : usd(estimate.micro_usd)}`
        : '–',
    ],
    [
      'Billed',
      billed
        ? `${seconds(billed.seconds)} at ${billed.resolution} · ${usd(billed.micro_usd)}${diff === undefined ? '' : ` (${diff >= 0 ? '+' : '−'}${usd(Math.abs(diff))} against the estimate)`}`
        : 'nothing yet',
    ],
    ['Output', job.output?.video_url ?? 'none'],
    ['Kept copy', job.output?.recast_url ?? 'none'],
    ['Error', job.error ? `${job.error.code}: ${job.error.message}` : 'none'],
  ];
  $('job-facts').replaceChildren(
    ...facts.flatMap(([name, value]) => [h('dt', {}, name), h('dd', { 'data-fact': name }, value)]),
  );
  showKept(s, job);
  const actions = [];
  if (s.me?.can_write && !TERMINAL.has(job.state) && job.state !== 'cancelling') {
    const cancel = h(
      'button',
      { type: 'button', class: 'danger', 'data-action': 'cancel-job' },
      'Cancel job',
    );
    cancel.addEventListener('click', () => void cancelJob(s, job));
    actions.push(cancel);
  }
  $('job-actions').replaceChildren(...actions);
}

/**
 * The kept output, played in the page: read with the key (a video element cannot send one) into
 * a blob, once per job; none while the copy is not stored.
 */
async function showKept(s, job) {
  const stored = job.output?.recast_url && job.output.retention?.status === 'stored';
  if (!stored) {
    if (s.kept?.jobId !== job.id) {
      if (s.kept) URL.revokeObjectURL(s.kept.url);
      s.kept = undefined;
      $('job-video').replaceChildren();
    }
    return;
  }
  if (s.kept?.jobId === job.id) return;
  if (s.kept) URL.revokeObjectURL(s.kept.url);
  s.kept = { jobId: job.id, url: '' };
  $('job-video').replaceChildren();
  try {
    const res = await fetch(job.output.recast_url, {
      headers: headers(s),
      cache: 'no-store',
      signal: s.abort.signal,
    });
    if (!res.ok) throw new ApiError(res.status, await errorOf(res));
    const url = URL.createObjectURL(await res.blob());
    if (s.kept?.jobId !== job.id) return URL.revokeObjectURL(url);
    s.kept.url = url;
    $('job-video').replaceChildren(
      h('video', { controls: '', preload: 'metadata', src: url, 'data-kept': job.id }),
    );
  } catch (err) {
    showError(`The kept output of ${job.id} could not be read: ${err.message}`);
  }
}

async function cancelJob(s, job) {
  const held = job.budget.reserved_micro_usd;
  const question =
    `Cancel job ${job.id}? ` +
    (job.provider
      ? 'It is at the provider: what already ran is billed.'
      : `Nothing was spent on it yet${held ? `; ${usd(held)} held for it is released` : ''}.`);
  if (!window.confirm(question)) return;
  try {
    renderJob(s, await post(s, `/v1/jobs/${encodeURIComponent(job.id)}/cancel`));
    showError('');
  } catch (err) {
    if (err instanceof AuthError) return logout(err.message);
    showError(`Cancel of ${job.id} refused: ${err.message}`);
  }
}

function renderBatches(s) {
  const ids = [...s.batches.keys()].sort().reverse();
  $('actions-head').hidden = !s.me?.can_write;
  $('batches').replaceChildren(...ids.map((id) => batchRow(s, s.batches.get(id))));
  // The drill-down's heading follows its batch as the list does.
  const open = s.detail && s.batches.get(s.detail.batchId);
  if (open) $('batch-detail-status').textContent = open.status.replaceAll('_', ' ');
  $('batches-empty').hidden = ids.length > 0;
}

function renderFailures(jobs) {
  $('failures').replaceChildren(
    ...jobs.map((job) =>
      h(
        'li',
        { 'data-job-id': job.id },
        h('span', { class: 'id' }, job.id),
        h('span', { class: 'id' }, job.batch_id ?? 'no batch'),
        h('span', { class: 'code' }, job.error?.code ?? 'UNKNOWN'),
        h('span', { class: 'message' }, job.error?.message ?? ''),
        h('time', { datetime: job.finished_at ?? '' }, time(job.finished_at)),
      ),
    ),
  );
  $('failures-empty').hidden = jobs.length > 0;
}

// ---- log in and out ----

function showLogin(message = '') {
  $('board').hidden = true;
  $('pressure').hidden = true;
  $('logout').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message;
  $('login-error').hidden = !message;
  setMode('offline');
  $('key').focus();
}

function logout(message = '') {
  const s = current;
  current = undefined;
  if (s) {
    s.closed = true;
    s.abort.abort();
    clearTimeout(s.pollTimer);
    clearTimeout(s.streamTimer);
    clearTimeout(s.flushTimer);
  }
  sessionStorage.removeItem(KEY_ITEM);
  sessionStorage.removeItem(TENANT_ITEM);
  showLogin(message);
}

async function begin(key, tenant) {
  const s = {
    key,
    tenant,
    abort: new AbortController(),
    cache: new Map(),
    batches: new Map(),
    applied: new Map(),
    dirty: new Set(),
    seq: 0,
    live: false,
    closed: false,
    streamFailures: 0,
    lastEventId: undefined,
  };
  s.refreshFigures = throttle(
    s,
    () => settle(s, [loadStats(s), loadCosts(s), loadFailures(s), loadBudgets(s), loadActivity(s)]),
    THROTTLE_MS,
  );
  s.refreshDetail = throttle(s, () => settle(s, [loadBatchJobs(s, false)]), BATCH_FLUSH_MS);
  s.refreshJob = throttle(s, () => settle(s, [loadJob(s)]), BATCH_FLUSH_MS);
  current = s;
  setMode('connecting');
  try {
    await loadStats(s);
    // What this key may do decides which actions the page offers.
    s.me = await api(s, '/v1/me');
  } catch (err) {
    if (!s.closed) logout(err.message);
    return;
  }
  sessionStorage.setItem(KEY_ITEM, key);
  sessionStorage.setItem(TENANT_ITEM, tenant);
  $('login').hidden = true;
  $('batch-detail').hidden = true;
  $('job-detail').hidden = true;
  $('board').hidden = false;
  $('logout').hidden = false;
  showError('');
  void refreshAll(s);
  void openStream(s);
}

$('login').addEventListener('submit', (event) => {
  event.preventDefault();
  const key = $('key').value.trim();
  const tenant = $('tenant').value.trim();
  $('key').value = '';
  logout();
  void begin(key, tenant);
});
$('logout').addEventListener('click', () => logout());
$('job-state').append(...JOB_STATES.map((state) => h('option', { value: state }, state.replace('_', ' '))));
$('job-state').addEventListener('change', () => {
  if (current?.detail) void openBatch(current, current.detail.batchId);
});
$('batch-jobs-more').addEventListener('click', () => {
  if (current) void settle(current, [loadBatchJobs(current, true)]);
});
$('batch-detail-close').addEventListener('click', () => {
  if (current) current.detail = undefined;
  $('batch-detail').hidden = true;
});
$('job-detail-close').addEventListener('click', () => {
  if (current) current.jobId = undefined;
  $('job-detail').hidden = true;
});

const saved = sessionStorage.getItem(KEY_ITEM);
if (saved) void begin(saved, sessionStorage.getItem(TENANT_ITEM) ?? '');
else showLogin();
