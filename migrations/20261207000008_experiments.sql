-- Experiments: two to six variants (a version, optionally with another
-- source, extractor or model route) run over exactly the same rows of a
-- batch, each variant as an ordinary execution, so runs, live views,
-- capacity sharing and metrics work for them unchanged.
create table experiments (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references organizations (id) on delete cascade,
    project_id uuid not null references projects (id) on delete cascade,
    batch_id uuid not null references batches (id) on delete cascade,
    name text not null check (char_length(name) between 1 and 100),
    -- How the rows were chosen, as asked ({"sample": "random", "size": 30,
    -- "seed": 7}, {"set": …}, {"execution_id": …, "evaluation": …}).
    row_choice jsonb not null,
    row_count integer not null check (row_count >= 1),
    -- The run whose kept pages every variant reads (all read the same content).
    pages_from uuid references executions (id) on delete set null,
    created_by uuid references users (id) on delete set null,
    created_by_name text not null,
    created_at timestamptz not null default now(),
    -- Set once every variant's execution has ended.
    finished_at timestamptz,
    promoted_variant integer,
    promoted_at timestamptz
);
create index experiments_project_idx on experiments (org_id, project_id, created_at desc);

create table experiment_variants (
    experiment_id uuid not null references experiments (id) on delete cascade,
    -- 1, 2, … shown as A, B, …
    position integer not null check (position between 1 and 6),
    version integer not null,
    -- What the variant overrides of its version (null: the version's own).
    agent text,
    extractor text,
    model_route jsonb,
    execution_id uuid not null unique references executions (id) on delete cascade,
    primary key (experiment_id, position)
);

alter table executions add column experiment_id uuid references experiments (id) on delete set null;
create index executions_experiment_idx on executions (experiment_id) where experiment_id is not null;

-- When the last variant of an experiment ends, the experiment is finished
-- and `experiment.completed` is queued, once. Deferred to commit, after
-- every row update of the transaction, so it takes the experiment's lock
-- last (two variants ending together can't deadlock on it), and the
-- second of two concurrent endings sees the first one's commit.
create function experiment_variant_ended() returns trigger as $$
begin
    perform 1 from experiments where id = new.experiment_id for update;
    if exists (select 1 from executions e
               where e.experiment_id = new.experiment_id
                 and e.state not in ('completed', 'failed', 'cancelled')) then
        return null;
    end if;
    update experiments set finished_at = now()
    where id = new.experiment_id and finished_at is null;
    if found then
        perform webhook_enqueue(new.org_id, 'experiment.completed', new.experiment_id::text);
    end if;
    return null;
end;
$$ language plpgsql;

create constraint trigger executions_experiment_ended
    after update of state on executions
    deferrable initially deferred
    for each row
    when (new.experiment_id is not null
          and new.state in ('completed', 'failed', 'cancelled')
          and new.state is distinct from old.state)
    execute function experiment_variant_ended();
