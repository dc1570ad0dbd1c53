-- Usage (F20): what an organization's runs consumed, per UTC day,
-- execution, agent/extractor and model, kept current by the database
-- itself as attempts finish, so every process (serve, workers, imports)
-- counts the same way, at once and exactly, and the usage page reads a
-- few thousand rows instead of millions of attempts.
--
-- No foreign keys to projects or executions: usage is history and stays
-- when they are deleted (the organization's deletion removes it).
create table usage_daily (
    org_id uuid not null references organizations (id) on delete cascade,
    day date not null,
    project_id uuid not null,
    execution_id uuid not null,
    agent text not null,
    extractor text not null,
    -- '' when no model answered (rules, remote agents).
    model text not null,
    -- Jobs that ended (succeeded or failed for good) and attempts that
    -- finished, whatever their outcome.
    jobs bigint not null default 0,
    attempts bigint not null default 0,
    input_tokens bigint not null default 0,
    output_tokens bigint not null default 0,
    cost_micros bigint not null default 0,
    primary key (org_id, day, execution_id, agent, extractor, model)
);

-- Adds each changed attempt's values under its new key and takes its old
-- values away under its old key, so any update (finishing, a late charge
-- for model calls, a correction) leaves the rollup equal to the attempts.
-- Statement-level with transition tables: one upsert per statement (the
-- result writer finishes many attempts in one), and rows whose delta is
-- zero (claims insert unfinished, costless attempts) are dropped before
-- any join.
create function usage_count() returns trigger as $$
begin
    with changed as (
        select job_id, coalesce(finished_at, started_at) as at, coalesce(model, '') as model,
               (finished_at is not null)::int as attempts,
               coalesce(outcome in ('succeeded', 'failed'), false)::int as jobs,
               input_tokens::bigint as input_tokens, output_tokens::bigint as output_tokens,
               cost_micros
        from new_rows
        union all
        select job_id, coalesce(finished_at, started_at), coalesce(model, ''),
               -(finished_at is not null)::int, -coalesce(outcome in ('succeeded', 'failed'), false)::int,
               -input_tokens::bigint, -output_tokens::bigint, -cost_micros
        from old_rows
    ),
    moved as (
        select * from changed
        where attempts <> 0 or jobs <> 0 or input_tokens <> 0 or output_tokens <> 0
              or cost_micros <> 0
    ),
    grouped as (
        select e.org_id, (m.at at time zone 'UTC')::date as day, e.project_id,
               e.id as execution_id, e.agent, e.extractor, m.model,
               sum(m.jobs) as jobs, sum(m.attempts) as attempts,
               sum(m.input_tokens) as input_tokens, sum(m.output_tokens) as output_tokens,
               sum(m.cost_micros) as cost_micros
        from moved m
        join jobs j on j.id = m.job_id
        join executions e on e.id = j.execution_id
        group by 1, 2, 3, 4, 5, 6, 7
    )
    insert into usage_daily as u (org_id, day, project_id, execution_id, agent, extractor, model,
                                  jobs, attempts, input_tokens, output_tokens, cost_micros)
    select * from grouped
    where jobs <> 0 or attempts <> 0 or input_tokens <> 0 or output_tokens <> 0
          or cost_micros <> 0
    -- One order for every writer: concurrent statements never deadlock.
    order by org_id, day, execution_id, agent, extractor, model
    on conflict (org_id, day, execution_id, agent, extractor, model) do update
        set jobs = u.jobs + excluded.jobs, attempts = u.attempts + excluded.attempts,
            input_tokens = u.input_tokens + excluded.input_tokens,
            output_tokens = u.output_tokens + excluded.output_tokens,
            cost_micros = u.cost_micros + excluded.cost_micros;
    return null;
end;
$$ language plpgsql;

-- Insert and update need separate triggers: a transition table for old
-- rows exists only for updates.
create function usage_count_inserted() returns trigger as $$
begin
    with changed as (
        select job_id, coalesce(finished_at, started_at) as at, coalesce(model, '') as model,
               (finished_at is not null)::int as attempts,
               coalesce(outcome in ('succeeded', 'failed'), false)::int as jobs,
               input_tokens::bigint as input_tokens, output_tokens::bigint as output_tokens,
               cost_micros
        from new_rows
        where finished_at is not null or cost_micros <> 0 or input_tokens <> 0
              or output_tokens <> 0
    ),
    grouped as (
        select e.org_id, (m.at at time zone 'UTC')::date as day, e.project_id,
               e.id as execution_id, e.agent, e.extractor, m.model,
               sum(m.jobs) as jobs, sum(m.attempts) as attempts,
               sum(m.input_tokens) as input_tokens, sum(m.output_tokens) as output_tokens,
               sum(m.cost_micros) as cost_micros
        from changed m
        join jobs j on j.id = m.job_id
        join executions e on e.id = j.execution_id
        group by 1, 2, 3, 4, 5, 6, 7
    )
    insert into usage_daily as u (org_id, day, project_id, execution_id, agent, extractor, model,
                                  jobs, attempts, input_tokens, output_tokens, cost_micros)
    select * from grouped
    order by org_id, day, execution_id, agent, extractor, model
    on conflict (org_id, day, execution_id, agent, extractor, model) do update
        set jobs = u.jobs + excluded.jobs, attempts = u.attempts + excluded.attempts,
            input_tokens = u.input_tokens + excluded.input_tokens,
            output_tokens = u.output_tokens + excluded.output_tokens,
            cost_micros = u.cost_micros + excluded.cost_micros;
    return null;
end;
$$ language plpgsql;

create trigger attempts_usage_updated
    after update on attempts
    referencing old table as old_rows new table as new_rows
    for each statement execute function usage_count();

create trigger attempts_usage_inserted
    after insert on attempts
    referencing new table as new_rows
    for each statement execute function usage_count_inserted();

-- What already happened.
insert into usage_daily (org_id, day, project_id, execution_id, agent, extractor, model,
                         jobs, attempts, input_tokens, output_tokens, cost_micros)
select e.org_id, (coalesce(a.finished_at, a.started_at) at time zone 'UTC')::date, e.project_id,
       e.id, e.agent, e.extractor, coalesce(a.model, ''),
       sum(coalesce(a.outcome in ('succeeded', 'failed'), false)::int), sum((a.finished_at is not null)::int),
       sum(a.input_tokens), sum(a.output_tokens), sum(a.cost_micros)
from attempts a
join jobs j on j.id = a.job_id
join executions e on e.id = j.execution_id
where a.finished_at is not null or a.cost_micros <> 0
group by 1, 2, 3, 4, 5, 6, 7;

-- Budgets: an owner's monthly limit on cost, with an optional hard stop.
create table org_budgets (
    org_id uuid primary key references organizations (id) on delete cascade,
    monthly_micros bigint not null check (monthly_micros > 0),
    hard_stop boolean not null default false,
    updated_at timestamptz not null default now()
);

-- The thresholds (50, 80, 100 percent) each month reached: the primary key
-- makes each alert (banner, webhook, audit entry) happen once, however
-- many processes check at once.
create table budget_alerts (
    org_id uuid not null references organizations (id) on delete cascade,
    month date not null,
    threshold integer not null check (threshold in (50, 80, 100)),
    spent_micros bigint not null,
    budget_micros bigint not null,
    at timestamptz not null default now(),
    primary key (org_id, month, threshold)
);

-- Executions the hard stop paused, to resume when the budget allows.
alter table executions add column paused_by_budget boolean not null default false;
