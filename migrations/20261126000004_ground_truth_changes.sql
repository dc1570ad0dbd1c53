-- Every change to an expected value: who, when, before and after.
create table gt_changes (
    id bigint generated always as identity primary key,
    org_id uuid not null references organizations (id) on delete cascade,
    batch_seq bigint not null,
    row_index integer not null,
    field text not null,
    before text,
    after text,
    changed_by uuid references users (id) on delete set null,
    changed_by_name text not null,
    changed_at timestamptz not null default now()
);
create index gt_changes_row_idx on gt_changes (batch_seq, row_index, id desc);
