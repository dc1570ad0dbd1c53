-- What happened to an execution, for the live feed on its page: control
-- actions (with who did them) and job failures and retries.
create table execution_events (
    id bigint generated always as identity primary key,
    execution_id uuid not null references executions (id) on delete cascade,
    at timestamptz not null default now(),
    -- paused, resumed, stopped, concurrency, rerun, job_failed, job_retrying
    kind text not null,
    message text not null,
    job_id bigint,
    actor_name text
);
create index execution_events_idx on execution_events (execution_id, id desc);

-- Live snapshots count an execution's jobs by state many times a second:
-- an index-only scan instead of reading every job.
create index jobs_state_idx on jobs (execution_id, state);
