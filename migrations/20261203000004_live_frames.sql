-- The live view of running browser jobs. Unlogged: frames are worth
-- nothing after a crash, and they change twice a second.

-- Somebody is watching this execution (its run page or one of its job
-- pages) until `until`; viewers renew it with every frame they fetch.
-- Workers take frames only of watched executions.
create unlogged table live_watch (
    execution_id uuid primary key references executions (id) on delete cascade,
    until timestamptz not null
);

-- The latest frame of a running browser job, removed when the job ends.
create unlogged table live_frames (
    job_id bigint primary key references jobs (id) on delete cascade,
    org_id uuid not null,
    jpeg bytea not null,
    taken_at timestamptz not null default now()
);
