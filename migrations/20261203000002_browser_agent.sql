-- The browser agent (headless Chromium) beside http and remote, and a
-- screenshot of every browser attempt.
alter table projects drop constraint projects_agent_kind_check;
alter table projects add constraint projects_agent_kind_check
    check (agent_kind in ('http', 'browser', 'remote'));
alter table executions drop constraint executions_agent_check;
alter table executions add constraint executions_agent_check
    check (agent in ('http', 'browser', 'remote'));

-- Attempts get an id of their own, for their screenshot's address.
alter table attempts add column id bigint generated always as identity unique;

-- One JPEG of the viewport at the end of a browser attempt, whatever its
-- outcome. In Postgres so every process can serve it; removed with the
-- attempt (and its job, execution, batch, organization).
create table attempt_screenshots (
    job_id bigint not null,
    n integer not null,
    org_id uuid not null references organizations (id) on delete cascade,
    jpeg bytea not null,
    created_at timestamptz not null default now(),
    primary key (job_id, n),
    foreign key (job_id, n) references attempts (job_id, n) on delete cascade
);
create index attempt_screenshots_created on attempt_screenshots (created_at);
