-- Usage is counted per statement instead of per row (issue 22). The row
-- triggers of 20261207000003 ran PL/pgSQL, a join and an insert for every
-- attempt a result write finished: about a tenth of the executor's
-- throughput. These statement triggers see the statement's rows as
-- transition tables and append one delta per key (organization, day,
-- execution, agent, extractor, model) for the whole statement — a result
-- write of 25 jobs of one run appends one row instead of 25. The rule is
-- the one described there: each changed attempt takes its old values away
-- under its old key and adds its new values under its new key, so the
-- sums stay equal to the attempts whichever path changed them.

drop trigger attempts_usage_updated on attempts;
drop trigger attempts_usage_inserted on attempts;
drop function usage_count();

-- The counted side of a set of attempt rows, signed, grouped by key.
-- (Rows that count nothing — a claim's unfinished, costless attempt — are
-- left out, so claims append nothing.)
create function usage_count_inserted() returns trigger as $$
begin
    insert into usage_delta
    select e.org_id, (coalesce(n.finished_at, n.started_at) at time zone 'UTC')::date,
           e.project_id, e.id, e.agent, e.extractor, coalesce(n.model, ''),
           sum(coalesce(n.outcome in ('succeeded', 'failed'), false)::int),
           sum((n.finished_at is not null)::int),
           sum(n.input_tokens), sum(n.output_tokens), sum(n.cost_micros)
    from new_attempts n
    join jobs j on j.id = n.job_id
    join executions e on e.id = j.execution_id
    where n.finished_at is not null or n.cost_micros <> 0 or n.input_tokens <> 0
          or n.output_tokens <> 0
    group by 1, 2, 3, 4, 5, 6, 7;
    return null;
end;
$$ language plpgsql;

create function usage_count_updated() returns trigger as $$
begin
    insert into usage_delta
    with changed as (
        select o.job_id, o.finished_at as o_finished, o.started_at as o_started,
               o.outcome as o_outcome, o.model as o_model, o.input_tokens as o_in,
               o.output_tokens as o_out, o.cost_micros as o_cost,
               n.finished_at as n_finished, n.started_at as n_started,
               n.outcome as n_outcome, n.model as n_model, n.input_tokens as n_in,
               n.output_tokens as n_out, n.cost_micros as n_cost
        from old_attempts o join new_attempts n on n.job_id = o.job_id and n.n = o.n
        where (o.finished_at, o.outcome, o.cost_micros, o.input_tokens, o.output_tokens,
               o.model, o.started_at)
              is distinct from
              (n.finished_at, n.outcome, n.cost_micros, n.input_tokens, n.output_tokens,
               n.model, n.started_at)
    ),
    signed as (
        select job_id, coalesce(o_finished, o_started) as at, coalesce(o_model, '') as model,
               -coalesce(o_outcome in ('succeeded', 'failed'), false)::int as jobs,
               -(o_finished is not null)::int as attempts,
               -o_in as input_tokens, -o_out as output_tokens, -o_cost as cost_micros
        from changed
        where o_finished is not null or o_cost <> 0 or o_in <> 0 or o_out <> 0
        union all
        select job_id, coalesce(n_finished, n_started), coalesce(n_model, ''),
               coalesce(n_outcome in ('succeeded', 'failed'), false)::int,
               (n_finished is not null)::int,
               n_in, n_out, n_cost
        from changed
        where n_finished is not null or n_cost <> 0 or n_in <> 0 or n_out <> 0
    )
    select e.org_id, (s.at at time zone 'UTC')::date, e.project_id, e.id, e.agent,
           e.extractor, s.model,
           sum(s.jobs), sum(s.attempts), sum(s.input_tokens), sum(s.output_tokens),
           sum(s.cost_micros)
    from signed s
    join jobs j on j.id = s.job_id
    join executions e on e.id = j.execution_id
    group by 1, 2, 3, 4, 5, 6, 7;
    return null;
end;
$$ language plpgsql;

create trigger attempts_usage_inserted
    after insert on attempts
    referencing new table as new_attempts
    for each statement execute function usage_count_inserted();

create trigger attempts_usage_updated
    after update on attempts
    referencing old table as old_attempts new table as new_attempts
    for each statement execute function usage_count_updated();

-- The result writer counts the jobs it finishes in its own statement (one
-- update of the run's counter row per write instead of one per job: the
-- per-row updates queued behind each other on that row and cost more than
-- the rest of the write). It says so for its transaction with
-- `mino.finished_counted`; every other path (failures, stops, expired
-- leases, hand-backs, deletes) is still counted here.
drop trigger jobs_left_running on jobs;
create trigger jobs_left_running after update of state on jobs
    for each row when (old.state = 'running' and new.state <> 'running'
                       and current_setting('mino.finished_counted', true) is distinct from 'on')
    execute function jobs_left_running();
