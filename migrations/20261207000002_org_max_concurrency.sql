-- The most jobs one run of the organization may have in flight: a plan
-- limit (it was a constant 50). MINO_MAX_CONCURRENCY caps it server-wide.
alter table organizations
    add column max_concurrency integer not null default 50
        check (max_concurrency between 1 and 1000);
