-- Up Migration
-- What has finished lives here; Redis holds live work only (see packages/core/src/history/).
-- Every row is written by the archiver with upserts keyed by its id, so a pass that is repeated
-- after a crash (between the write here and the mark in Redis) changes nothing.

-- A finished job as users read it: the final record (input, estimate, cost, error, attempts,
-- provider task ids, times) in `record`, and the columns reads filter and order by.
CREATE TABLE recast_jobs (
  id          text PRIMARY KEY,
  tenant      text NOT NULL,
  batch_id    text,
  line        integer,
  state       text NOT NULL,
  version     integer NOT NULL,
  notes       integer NOT NULL DEFAULT 0,
  created_at  timestamptz NOT NULL,
  finished_at timestamptz,
  attempt     integer NOT NULL,
  task_id     text,
  cost_micro_usd bigint,
  -- json, not jsonb: the text as written, so a client's metadata keeps its key order and an
  -- archived record reads back byte for byte as it was served live.
  record      json NOT NULL,
  archived_at timestamptz NOT NULL DEFAULT now()
);
-- Job ids are ULIDs: they sort by creation time, so id order is creation order and a created
-- range is an id range. Listings page by (filter, id).
CREATE INDEX recast_jobs_tenant ON recast_jobs (tenant, id);
CREATE INDEX recast_jobs_state ON recast_jobs (state, id);
CREATE INDEX recast_jobs_tenant_state ON recast_jobs (tenant, state, id);
CREATE INDEX recast_jobs_batch ON recast_jobs (batch_id, line) WHERE batch_id IS NOT NULL;

-- A finished batch as `GET /v1/batches/:id` showed it when it was archived.
CREATE TABLE recast_batches (
  id          text PRIMARY KEY,
  tenant      text NOT NULL,
  status      text NOT NULL,
  created_at  timestamptz NOT NULL,
  finished_at timestamptz,
  view        json NOT NULL,
  archived_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX recast_batches_tenant ON recast_batches (tenant, id);

-- The ledger's line items: one row per charge.
CREATE TABLE recast_charges (
  charge_id     text PRIMARY KEY,
  job_id        text NOT NULL,
  attempt       integer,
  task_id       text,
  tenant        text NOT NULL,
  batch_id      text,
  resolution    text NOT NULL,
  billed_ms     bigint NOT NULL,
  micro_usd     bigint NOT NULL,
  price_version text NOT NULL,
  kind          text NOT NULL,
  day           date NOT NULL,
  charged_at    timestamptz NOT NULL
);
CREATE INDEX recast_charges_day ON recast_charges (day, charge_id);
CREATE INDEX recast_charges_tenant_day ON recast_charges (tenant, day, charge_id);
CREATE INDEX recast_charges_batch ON recast_charges (batch_id, day) WHERE batch_id IS NOT NULL;
CREATE INDEX recast_charges_job ON recast_charges (job_id);
CREATE UNIQUE INDEX recast_charges_task ON recast_charges (task_id) WHERE task_id IS NOT NULL;

-- The line items summed per day, tenant, batch and resolution, in the same statement that inserts
-- them (only rows actually inserted count): a month's report reads some thousands of these rows
-- instead of a million line items.
CREATE TABLE recast_cost_days (
  day           date NOT NULL,
  tenant        text NOT NULL,
  batch_id      text NOT NULL,
  resolution    text NOT NULL,
  billed_ms     bigint NOT NULL DEFAULT 0,
  runs          integer NOT NULL DEFAULT 0,
  micro_usd     bigint NOT NULL DEFAULT 0,
  duplicates    integer NOT NULL DEFAULT 0,
  duplicate_micro_usd bigint NOT NULL DEFAULT 0,
  PRIMARY KEY (day, tenant, batch_id, resolution)
);
CREATE INDEX recast_cost_days_tenant ON recast_cost_days (tenant, day);
CREATE INDEX recast_cost_days_batch ON recast_cost_days (batch_id, day);

-- Down Migration
DROP TABLE recast_cost_days;
DROP TABLE recast_charges;
DROP TABLE recast_batches;
DROP TABLE recast_jobs;
