-- Aggregates over a finished execution's jobs (its counts, metrics and
-- failure patterns), kept so the pages of a million-job run don't scan it
-- on every view. An entry holds while its results_version equals the
-- execution's; whatever changes a finished execution's jobs (judging them
-- again after a ground-truth or comparator change, deleting jobs) bumps
-- the execution's results_version in the same transaction.
alter table executions add column results_version bigint not null default 0;

create table execution_summaries (
    execution_id uuid not null references executions (id) on delete cascade,
    kind text not null,
    results_version bigint not null,
    value jsonb not null,
    computed_at timestamptz not null default now(),
    primary key (execution_id, kind)
);

-- The job list sorted by accuracy, lowest first and jobs without one last
-- (keyset pages over (key, id), like the id order's).
create index jobs_accuracy_id_idx on jobs (execution_id, (coalesce(accuracy, 2::real)), id);
