-- Evaluation sets: named, versioned sets of a batch's rows, so a team
-- keeps a stable regression set to run every change against. Saving a set
-- under a name it already has makes that name's next version; earlier
-- versions stay (runs and CI jobs may name them).
create table evaluation_sets (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references organizations (id) on delete cascade,
    batch_id uuid not null references batches (id) on delete cascade,
    name text not null check (char_length(name) between 1 and 100),
    version integer not null check (version >= 1),
    -- Row numbers (row_index), ascending, no repeats.
    row_indexes integer[] not null check (cardinality(row_indexes) between 1 and 100000),
    -- How the rows were chosen: {"rows": n} by hand, or
    -- {"execution_id": …, "filter": {…}} from a run's jobs.
    source jsonb not null default '{}',
    created_by uuid references users (id) on delete set null,
    created_by_name text not null,
    created_at timestamptz not null default now(),
    unique (batch_id, name, version)
);
create index evaluation_sets_org_idx on evaluation_sets (org_id);
