-- Projects with versioned instructions, output fields and agent settings;
-- batches of sites (an uploaded CSV) with their rows.

create table projects (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references organizations (id) on delete cascade,
    name text not null check (char_length(name) between 1 and 100),
    description text not null default '' check (char_length(description) <= 2000),
    -- The version executions use unless told otherwise.
    production_version integer not null default 1,
    agent_kind text not null default 'http' check (agent_kind in ('http', 'remote')),
    -- Where the remote agent service listens (agent_kind = 'remote').
    remote_url text,
    timeout_secs integer not null default 30 check (timeout_secs between 1 and 600),
    max_retries integer not null default 3 check (max_retries between 0 and 10),
    -- Millionths of a currency unit, so sums stay exact.
    price_per_job_micros bigint not null default 0 check (price_per_job_micros >= 0),
    created_by uuid references users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create unique index projects_org_name_key on projects (org_id, lower(name));
create index projects_org_idx on projects (org_id, updated_at desc);
create trigger projects_updated_at before update on projects
    for each row execute function set_updated_at();

-- Append-only: a saved version is never changed.
create table instruction_versions (
    project_id uuid not null references projects (id) on delete cascade,
    org_id uuid not null references organizations (id) on delete cascade,
    version integer not null check (version >= 1),
    body text not null check (char_length(body) <= 50000),
    note text not null default '' check (char_length(note) <= 500),
    author_id uuid references users (id) on delete set null,
    author_name text not null,
    created_at timestamptz not null default now(),
    primary key (project_id, version)
);

-- The values an agent extracts. Fields come from the gt_<field> columns of
-- uploaded batches or are added by hand.
create table project_fields (
    project_id uuid not null references projects (id) on delete cascade,
    org_id uuid not null references organizations (id) on delete cascade,
    name text not null check (char_length(name) between 1 and 64),
    position integer not null,
    field_type text not null check (field_type in ('text', 'number', 'url', 'email', 'date')),
    comparator text not null,
    comparator_options jsonb not null default '{}',
    -- How the http agent finds the value: {"kind": "auto"} or a css,
    -- json_ld, meta or regex rule.
    rule jsonb not null default '{"kind": "auto"}',
    source text not null check (source in ('csv', 'manual')),
    created_at timestamptz not null default now(),
    primary key (project_id, name)
);

create table batches (
    id uuid primary key default gen_random_uuid(),
    -- The compact key rows carry instead of the uuid (see batch_rows).
    seq bigint generated always as identity unique,
    org_id uuid not null references organizations (id) on delete cascade,
    project_id uuid not null references projects (id) on delete cascade,
    name text not null check (char_length(name) between 1 and 100),
    -- [{name, role: url|input|ground_truth, field, type}] in file order.
    column_schema jsonb not null,
    url_column text not null,
    delimiter text not null,
    row_count integer not null default 0,
    skipped_rows integer not null default 0,
    -- {field: rows with a non-empty expected value}.
    gt_coverage jsonb not null default '{}',
    file_name text,
    file_bytes bigint not null default 0,
    created_by uuid references users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index batches_project_idx on batches (project_id, created_at desc);
create index batches_org_idx on batches (org_id);
create trigger batches_updated_at before update on batches
    for each row execute function set_updated_at();

-- One row per data row of the CSV. Ground truth lives here, so every
-- execution of the batch is judged against the current expected values.
--
-- Rows are loaded by COPY, up to a million per upload, so they are kept
-- lean (measured in BENCHMARKS.md): the batch's 8-byte `seq` instead of two
-- uuids (the organization is the batch's; every read goes through the
-- batch, checked against the caller's organization first), `json` rather
-- than `jsonb` (Mino writes the values itself, so the cheaper check
-- suffices, and it keeps the file's column order), the primary key as the
-- only index, and no foreign key, whose per-row check costs as much again.
-- A row's public id is seq * 10,000,000 + row_index (see model::row_id).
create table batch_rows (
    batch_seq bigint not null,
    -- 1-based position among the data rows, and the file line it started on.
    row_index integer not null,
    line integer not null,
    site_url text not null,
    inputs json not null,
    -- {field: expected}; a field without a key has no ground truth.
    ground_truth json not null,
    gt_version integer not null default 1,
    primary key (batch_seq, row_index)
);

create function delete_batch_rows() returns trigger as $$
begin
    delete from batch_rows where batch_seq = old.seq;
    return old;
end;
$$ language plpgsql;
create trigger batches_delete_rows after delete on batches
    for each row execute function delete_batch_rows();
