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

-- Counting must not slow the executor: a row-level trigger whose WHEN
-- clause skips what changes nothing (claims insert unfinished, costless
-- attempts; lease renewals touch other columns) appends one delta row per
-- change to usage_delta — no unique key, so concurrent writers never wait
-- on each other — and a compactor (any process, one at a time) folds the
-- deltas into usage_daily every few seconds. Readers add the deltas not yet
-- folded, so figures are exact at once. Each delta adds the attempt's new
-- values under its new key and takes its old values away under its old
-- key, so finishing, a late charge for model calls or a correction all
-- leave the sums equal to the attempts.
create table usage_delta (
    org_id uuid not null,
    day date not null,
    project_id uuid not null,
    execution_id uuid not null,
    agent text not null,
    extractor text not null,
    model text not null,
    jobs bigint not null,
    attempts bigint not null,
    input_tokens bigint not null,
    output_tokens bigint not null,
    cost_micros bigint not null
);

create function usage_count() returns trigger as $$
declare
    x record;
begin
    select e.org_id, e.project_id, e.id, e.agent, e.extractor into x
    from jobs j join executions e on e.id = j.execution_id
    where j.id = new.job_id;
    if not found then
        return null;
    end if;
    if tg_op = 'UPDATE' and (old.finished_at is not null or old.cost_micros <> 0
                             or old.input_tokens <> 0 or old.output_tokens <> 0) then
        insert into usage_delta values (
            x.org_id, (coalesce(old.finished_at, old.started_at) at time zone 'UTC')::date,
            x.project_id, x.id, x.agent, x.extractor, coalesce(old.model, ''),
            -coalesce(old.outcome in ('succeeded', 'failed'), false)::int,
            -(old.finished_at is not null)::int,
            -old.input_tokens, -old.output_tokens, -old.cost_micros);
    end if;
    if new.finished_at is not null or new.cost_micros <> 0 or new.input_tokens <> 0
       or new.output_tokens <> 0 then
        insert into usage_delta values (
            x.org_id, (coalesce(new.finished_at, new.started_at) at time zone 'UTC')::date,
            x.project_id, x.id, x.agent, x.extractor, coalesce(new.model, ''),
            coalesce(new.outcome in ('succeeded', 'failed'), false)::int,
            (new.finished_at is not null)::int,
            new.input_tokens, new.output_tokens, new.cost_micros);
    end if;
    return null;
end;
$$ language plpgsql;

create trigger attempts_usage_updated
    after update on attempts
    for each row
    when (old.finished_at is distinct from new.finished_at
          or old.outcome is distinct from new.outcome
          or old.cost_micros <> new.cost_micros
          or old.input_tokens <> new.input_tokens
          or old.output_tokens <> new.output_tokens
          or old.model is distinct from new.model
          or old.started_at <> new.started_at)
    execute function usage_count();

create trigger attempts_usage_inserted
    after insert on attempts
    for each row
    when (new.finished_at is not null or new.cost_micros <> 0 or new.input_tokens <> 0
          or new.output_tokens <> 0)
    execute function usage_count();

-- Folds the deltas into usage_daily (the caller holds the compactor's
-- advisory lock). Rows appended while this runs stay for the next time.
create function usage_compact() returns bigint as $$
declare
    n bigint;
begin
    with moved as (delete from usage_delta returning *),
    grouped as (
        select org_id, day, project_id, execution_id, agent, extractor, model,
               sum(jobs) as jobs, sum(attempts) as attempts, sum(input_tokens) as input_tokens,
               sum(output_tokens) as output_tokens, sum(cost_micros) as cost_micros,
               count(*) as deltas
        from moved group by 1, 2, 3, 4, 5, 6, 7
    ),
    folded as (
        insert into usage_daily as u (org_id, day, project_id, execution_id, agent, extractor,
                                      model, jobs, attempts, input_tokens, output_tokens,
                                      cost_micros)
        select org_id, day, project_id, execution_id, agent, extractor, model, jobs, attempts,
               input_tokens, output_tokens, cost_micros
        from grouped
        -- Only organizations that still exist (a deleted one takes its usage).
        where exists (select 1 from organizations o where o.id = grouped.org_id)
        order by org_id, day, execution_id, agent, extractor, model
        on conflict (org_id, day, execution_id, agent, extractor, model) do update
            set jobs = u.jobs + excluded.jobs, attempts = u.attempts + excluded.attempts,
                input_tokens = u.input_tokens + excluded.input_tokens,
                output_tokens = u.output_tokens + excluded.output_tokens,
                cost_micros = u.cost_micros + excluded.cost_micros
        returning 1
    )
    -- (A data-modifying CTE runs whether or not it is read.)
    select coalesce(sum(deltas), 0) into n from grouped;
    return n;
end;
$$ language plpgsql;

-- Usage as readers see it: the folded rollup plus the deltas not yet folded.
create view usage_now as
    select org_id, day, project_id, execution_id, agent, extractor, model,
           jobs, attempts, input_tokens, output_tokens, cost_micros
    from usage_daily
    union all
    select org_id, day, project_id, execution_id, agent, extractor, model,
           jobs, attempts, input_tokens, output_tokens, cost_micros
    from usage_delta;

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
