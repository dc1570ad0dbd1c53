-- What an execution runs with is fixed when it starts: the output fields
-- (so editing a field rule mid-run doesn't mix two rule sets in one run, and
-- evaluation knows which fields the run extracted) and the remote agent's
-- address. Workers read these once per execution and cache them.
alter table executions
    add column fields json not null default '[]',
    add column remote_url text,
    -- The execution this one reran (failed or chosen jobs).
    add column rerun_of uuid references executions (id) on delete set null;

-- What a running job's agent last reported (step, URL, percentage), for
-- the live view of running jobs.
alter table jobs add column progress json;

-- A worker that shuts down hands its running jobs back; the attempt is
-- kept and says so.
alter table attempts drop constraint attempts_outcome_check;
alter table attempts add constraint attempts_outcome_check
    check (outcome in ('succeeded', 'failed', 'retrying', 'lease_expired', 'cancelled', 'handed_back'));

-- How many of an execution's jobs are running, as two counters on two rows
-- so that claiming and finishing don't wait for each other:
-- executions.claimed counts jobs moved into 'running' (only the claim
-- statement does that, while it holds the execution's row lock), and
-- execution_counters.finished counts jobs moved out of 'running' (results,
-- failures, stops, expired leases, hand-backs, deletes — kept by a trigger,
-- so no path can forget it). running = claimed - finished. A claim reads
-- `claimed` from the locked row's newest version and `finished` from its
-- snapshot, which can only be behind (too small), never ahead: the count it
-- sees is never below the truth, so the concurrency cap holds however many
-- workers claim.
alter table executions add column claimed bigint not null default 0;
create table execution_counters (
    execution_id uuid primary key references executions (id) on delete cascade,
    finished bigint not null default 0
);
update executions e set claimed = (select count(*) from jobs j
                                   where j.execution_id = e.id and j.state = 'running');
insert into execution_counters (execution_id) select id from executions;

create function jobs_left_running() returns trigger language plpgsql as $$
begin
    update execution_counters set finished = finished + 1
    where execution_id = old.execution_id;
    return null;
end $$;

-- Row triggers with a WHEN filter: most updates of jobs (lease renewals,
-- progress) don't leave 'running' and never enter PL/pgSQL.
create trigger jobs_left_running after update of state on jobs
    for each row when (old.state = 'running' and new.state <> 'running')
    execute function jobs_left_running();

create trigger jobs_deleted_running after delete on jobs
    for each row when (old.state = 'running')
    execute function jobs_left_running();
