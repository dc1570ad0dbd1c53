-- The first-run guide (F18). Steps that change something are read from
-- the audit log (who did what in which organization); the two that only
-- read — opening a run's results, comparing runs — are kept here, with
-- whether the person put the guide away.
create table guide_progress (
    user_id uuid not null references users (id) on delete cascade,
    org_id uuid not null references organizations (id) on delete cascade,
    read_results_at timestamptz,
    compared_at timestamptz,
    dismissed boolean not null default false,
    primary key (user_id, org_id)
);
