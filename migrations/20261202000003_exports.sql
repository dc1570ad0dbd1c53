-- Exports of an execution's results (F13): who asked for which format,
-- columns and filters, how many rows went out. The file itself is kept on
-- the serving host's disk (MINO_DATA_DIR/exports) until expires_at, for
-- re-download; the history stays after the file is gone.
create table exports (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references organizations (id) on delete cascade,
    batch_id uuid not null references batches (id) on delete cascade,
    execution_id uuid references executions (id) on delete set null,
    format text not null check (format in ('csv', 'json', 'xlsx')),
    columns jsonb not null,
    filters jsonb not null,
    -- running → ready | failed; ready → expired when the file is removed
    state text not null default 'running' check (state in ('running', 'ready', 'failed', 'expired')),
    -- Rows matching when it started, and rows written so far (progress).
    total_rows bigint not null default 0,
    row_count bigint not null default 0,
    bytes bigint,
    error text,
    created_by uuid references users (id) on delete set null,
    actor_name text not null,
    created_at timestamptz not null default now(),
    finished_at timestamptz,
    expires_at timestamptz not null default now() + interval '7 days'
);
create index exports_batch_idx on exports (batch_id, created_at desc);
create index exports_expiry_idx on exports (expires_at) where state = 'ready';
