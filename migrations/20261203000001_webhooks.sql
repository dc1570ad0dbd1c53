-- Webhooks (F15): an organization's admins register URLs that are told
-- when runs start, finish or fail and when a job fails for good.
--
-- Events are queued by triggers on executions and jobs, in the transaction
-- that changed the state, so no code path (workers in any process, the
-- lease reaper, a stop from the UI) can change a state without its event,
-- and a queued delivery survives any restart. The dispatcher of any `mino`
-- process claims due deliveries (FOR UPDATE SKIP LOCKED), builds the body
-- on the first attempt and keeps it, so retries send the same bytes.

create table webhooks (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references organizations (id) on delete cascade,
    url text not null,
    description text not null default '',
    events text[] not null,
    -- Kept as given: signing needs the secret itself, not a digest of it.
    secret text not null,
    enabled boolean not null default true,
    -- Why it is disabled (by a person, or after failures in a row).
    disabled_reason text,
    disabled_at timestamptz,
    consecutive_failures integer not null default 0,
    created_by uuid references users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index webhooks_org_idx on webhooks (org_id, created_at);

create table webhook_deliveries (
    id uuid primary key default gen_random_uuid(),
    webhook_id uuid not null references webhooks (id) on delete cascade,
    org_id uuid not null,
    event text not null,
    -- The same for every hook told of one event, so receivers can dedupe.
    event_id uuid not null,
    -- The execution, or the job (its numeric id as text).
    resource_id text,
    -- Built on the first attempt, then sent unchanged.
    payload jsonb,
    -- pending → delivering → succeeded | pending (retry) | failed (gave up)
    state text not null default 'pending'
        check (state in ('pending', 'delivering', 'succeeded', 'failed')),
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    -- A claim by a dispatcher; an expired one is claimed again.
    lease_expires_at timestamptz,
    last_status integer,
    last_error text,
    created_at timestamptz not null default now(),
    finished_at timestamptz
);
create index webhook_deliveries_hook_idx on webhook_deliveries (webhook_id, created_at desc, id desc);
create index webhook_deliveries_due_idx on webhook_deliveries (next_attempt_at)
    where state in ('pending', 'delivering');

-- Every attempt of a delivery: the delivery log admins read.
create table webhook_attempts (
    delivery_id uuid not null references webhook_deliveries (id) on delete cascade,
    n integer not null,
    at timestamptz not null default now(),
    status integer,
    duration_ms integer not null,
    -- The first 1,000 characters of the receiver's answer.
    response_excerpt text,
    error text,
    primary key (delivery_id, n)
);

-- Queues one delivery of `event` to each enabled hook of `org` that wants it.
create function webhook_enqueue(p_org uuid, p_event text, p_resource text) returns void as $$
declare
    v_event_id uuid := gen_random_uuid();
begin
    insert into webhook_deliveries (webhook_id, org_id, event, event_id, resource_id)
    select w.id, w.org_id, p_event, v_event_id, p_resource
    from webhooks w
    where w.org_id = p_org and w.enabled and p_event = any (w.events);
    if found then
        perform pg_notify('mino_webhooks', '');
    end if;
end;
$$ language plpgsql;

create function webhook_execution_events() returns trigger as $$
begin
    if new.state = 'running' and (tg_op = 'INSERT' or old.state = 'queued') then
        perform webhook_enqueue(new.org_id, 'execution.started', new.id::text);
    elsif tg_op = 'UPDATE' and new.state is distinct from old.state then
        if new.state = 'failed' then
            perform webhook_enqueue(new.org_id, 'execution.failed', new.id::text);
        elsif new.state = 'completed' then
            -- A run that ended without one successful job failed as a whole
            -- (an unreachable agent, a site refusing every request).
            if exists (select 1 from jobs j where j.execution_id = new.id and j.state = 'succeeded')
               or not exists (select 1 from jobs j where j.execution_id = new.id) then
                perform webhook_enqueue(new.org_id, 'execution.completed', new.id::text);
            else
                perform webhook_enqueue(new.org_id, 'execution.failed', new.id::text);
            end if;
        end if;
    end if;
    return null;
end;
$$ language plpgsql;

create trigger executions_webhooks
    after insert or update of state on executions
    for each row execute function webhook_execution_events();

create function webhook_job_failed() returns trigger as $$
begin
    perform webhook_enqueue(new.org_id, 'job.failed', new.id::text);
    return null;
end;
$$ language plpgsql;

-- The WHEN clause keeps the trigger off the hot path: only a job's final
-- failure calls the function.
create trigger jobs_webhooks
    after update of state on jobs
    for each row when (new.state = 'failed' and old.state is distinct from 'failed')
    execute function webhook_job_failed();
