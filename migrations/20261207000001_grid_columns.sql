-- Which columns of a run's results grid each person sees, and in which
-- order, per project. `shown` is the order; `hidden` remembers what was
-- turned off, so a field added to the project later still shows up.
create table grid_column_choices (
    user_id uuid not null references users (id) on delete cascade,
    project_id uuid not null references projects (id) on delete cascade,
    org_id uuid not null references organizations (id) on delete cascade,
    shown text[] not null,
    hidden text[] not null default '{}',
    updated_at timestamptz not null default now(),
    primary key (user_id, project_id)
);
create index grid_column_choices_project on grid_column_choices (project_id);
