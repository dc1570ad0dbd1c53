-- Executions and their jobs. The jobs table is also the work queue: workers
-- claim queued jobs, hold them under a lease they renew, and write results
-- only while they hold the current attempt's lease (fencing).

create table executions (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references organizations (id) on delete cascade,
    project_id uuid not null references projects (id) on delete cascade,
    batch_id uuid not null references batches (id) on delete cascade,
    instruction_version integer not null,
    mode text not null check (mode in ('test', 'production')),
    sample_size integer,
    agent text not null check (agent in ('http', 'remote')),
    concurrency integer not null check (concurrency >= 1),
    max_retries integer not null check (max_retries between 0 and 10),
    -- Copied from the project at start, so later edits don't change a run.
    timeout_secs integer not null default 30,
    price_per_job_micros bigint not null default 0,
    state text not null check (state in ('queued', 'running', 'paused', 'stopping', 'completed', 'failed', 'cancelled')),
    -- Round robin between executions: the one served longest ago goes next.
    last_claimed_at timestamptz,
    created_by uuid references users (id) on delete set null,
    created_at timestamptz not null default now(),
    started_at timestamptz,
    finished_at timestamptz
);
create index executions_batch_idx on executions (batch_id, created_at desc);
create index executions_active_idx on executions (last_claimed_at nulls first, created_at)
    where state = 'running';

create table jobs (
    id bigint generated always as identity primary key,
    execution_id uuid not null references executions (id) on delete cascade,
    org_id uuid not null,
    row_index integer not null,
    state text not null default 'queued'
        check (state in ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    -- Attempts started so far; the running attempt's number while running.
    attempt integer not null default 0,
    lease_owner text,
    lease_expires_at timestamptz,
    -- Not claimable before this (retry backoff).
    available_at timestamptz not null default now(),
    extracted json,
    raw_output text,
    error_class text,
    error text,
    started_at timestamptz,
    finished_at timestamptz
);
create index jobs_execution_idx on jobs (execution_id, id);
create index jobs_claim_idx on jobs (execution_id, available_at, id) where state = 'queued';
create index jobs_running_idx on jobs (execution_id) where state = 'running';
create index jobs_lease_idx on jobs (lease_expires_at) where state = 'running';

-- Every attempt of every job, kept.
create table attempts (
    job_id bigint not null references jobs (id) on delete cascade,
    n integer not null,
    worker text not null,
    started_at timestamptz not null,
    finished_at timestamptz,
    outcome text check (outcome in ('succeeded', 'failed', 'retrying', 'lease_expired', 'cancelled')),
    error_class text,
    error text,
    log json not null default '[]',
    duration_ms integer,
    cost_micros bigint not null default 0,
    primary key (job_id, n)
);
