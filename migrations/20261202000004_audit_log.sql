-- The audit log (F16): one row per change made through the service layer.
-- Rows are never edited or removed, with two exceptions the trigger below
-- allows: a deleted organization takes its log with it (its data is gone),
-- and a deleted user's rows lose the link to them (they are kept, anonymized).
create table audit_log (
    id bigint generated always as identity primary key,
    at timestamptz not null default now(),
    -- Null for changes to an account rather than to an organization.
    org_id uuid references organizations (id) on delete cascade,
    actor_user_id uuid references users (id) on delete set null,
    actor_key_id uuid,
    -- Kept as text so the entry still says who it was after the user or key
    -- is gone.
    actor_name text not null,
    action text not null,
    resource_type text not null,
    resource_id text,
    before jsonb,
    after jsonb,
    ip text,
    user_agent text
);

-- Admins read newest first, filtered by actor, action or resource.
create index audit_log_org_idx on audit_log (org_id, id desc);
create index audit_log_org_action_idx on audit_log (org_id, action, id desc);
create index audit_log_org_user_idx on audit_log (org_id, actor_user_id, id desc);
create index audit_log_org_resource_idx on audit_log (org_id, resource_type, resource_id, id desc);

create function audit_log_append_only() returns trigger as $$
begin
    if tg_op = 'DELETE' then
        -- Allowed only as the cascade of the organization's deletion (the
        -- organization row is already gone when the cascade runs).
        if old.org_id is not null
           and not exists (select 1 from organizations where id = old.org_id) then
            return old;
        end if;
    elsif new.actor_user_id is null
          and (new.at, new.org_id, new.actor_key_id, new.action, new.resource_type,
               new.resource_id, new.before, new.after, new.ip, new.user_agent)
              is not distinct from
              (old.at, old.org_id, old.actor_key_id, old.action, old.resource_type,
               old.resource_id, old.before, old.after, old.ip, old.user_agent) then
        -- Anonymizing a deleted user's entries.
        return new;
    end if;
    raise exception 'the audit log is append-only';
end;
$$ language plpgsql;

create trigger audit_log_append_only before update or delete on audit_log
    for each row execute function audit_log_append_only();
