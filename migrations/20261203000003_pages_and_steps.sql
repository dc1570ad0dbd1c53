-- The browser source's wait and scripted steps, page snapshots and the
-- snapshot source.

-- Project settings: a selector to wait for, steps to run after the page
-- is quiet, and whether production runs keep their pages (test runs
-- always do). The extractor is recorded beside the source.
alter table projects
    add column wait_for text,
    add column steps jsonb not null default '[]',
    add column keep_pages boolean not null default false,
    add column extractor text not null default 'rules' check (extractor in ('rules'));

-- What an execution ran with, copied from the project when it started.
-- A snapshot run reads the pages of `pages_from`.
alter table executions
    add column wait_for text,
    add column steps jsonb not null default '[]',
    add column keep_pages boolean not null default false,
    add column extractor text not null default 'rules' check (extractor in ('rules')),
    add column pages_from uuid references executions (id) on delete set null;
alter table executions drop constraint executions_agent_check;
alter table executions add constraint executions_agent_check
    check (agent in ('http', 'browser', 'remote', 'snapshot'));
alter table executions add constraint executions_snapshot_source
    check (agent <> 'snapshot' or pages_from is not null);

-- The page an attempt read its values from (the fetched HTML, or the
-- rendered DOM), gzip-compressed. Removed with the attempt, and by the
-- retention cleanup with the screenshots.
create table attempt_pages (
    job_id bigint not null,
    n integer not null,
    org_id uuid not null references organizations (id) on delete cascade,
    url text not null,
    html_gz bytea not null,
    -- Uncompressed size.
    bytes integer not null,
    created_at timestamptz not null default now(),
    primary key (job_id, n),
    foreign key (job_id, n) references attempts (job_id, n) on delete cascade
);
create index attempt_pages_created on attempt_pages (created_at);
