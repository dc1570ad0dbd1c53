-- Accounts, organizations, memberships, invitations, API keys and the
-- sign-in failure log used for throttling.

create or replace function set_updated_at() returns trigger as $$
begin
    new.updated_at = now();
    return new;
end;
$$ language plpgsql;

create table users (
    id uuid primary key default gen_random_uuid(),
    email text not null,
    name text not null,
    password_hash text not null,
    -- Bumped when the password changes: sessions carry the epoch they were
    -- created under, and an older one is treated as signed out.
    session_epoch integer not null default 0,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create unique index users_email_key on users (lower(email));
create trigger users_updated_at before update on users
    for each row execute function set_updated_at();

create table organizations (
    id uuid primary key default gen_random_uuid(),
    name text not null check (char_length(name) between 1 and 100),
    slug text not null,
    max_projects integer not null default 100,
    max_executions_per_month integer not null default 1000,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create unique index organizations_slug_key on organizations (slug);
create trigger organizations_updated_at before update on organizations
    for each row execute function set_updated_at();

create table memberships (
    org_id uuid not null references organizations (id) on delete cascade,
    user_id uuid not null references users (id) on delete cascade,
    role text not null check (role in ('viewer', 'member', 'admin', 'owner')),
    created_at timestamptz not null default now(),
    primary key (org_id, user_id)
);
create index memberships_user_idx on memberships (user_id);

create table invitations (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references organizations (id) on delete cascade,
    email text not null,
    role text not null check (role in ('viewer', 'member', 'admin', 'owner')),
    -- SHA-256 of the token in the link; the token itself is never stored.
    token_hash text not null,
    invited_by uuid references users (id) on delete set null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    accepted_at timestamptz,
    accepted_by uuid references users (id) on delete set null,
    revoked_at timestamptz
);
create unique index invitations_token_key on invitations (token_hash);
create index invitations_org_idx on invitations (org_id, created_at desc);

create table api_keys (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references organizations (id) on delete cascade,
    name text not null check (char_length(name) between 1 and 100),
    prefix text not null,
    key_hash text not null,
    scopes text[] not null,
    created_by uuid references users (id) on delete set null,
    created_at timestamptz not null default now(),
    expires_at timestamptz,
    last_used_at timestamptz,
    revoked_at timestamptz
);
create unique index api_keys_prefix_key on api_keys (prefix);
create index api_keys_org_idx on api_keys (org_id, created_at desc);

-- One row per failed sign-in; throttling counts recent rows per account and
-- per client address. Old rows are pruned by the sign-in path itself.
create table auth_failures (
    id bigserial primary key,
    account text not null,
    ip text not null,
    at timestamptz not null default now()
);
create index auth_failures_account_idx on auth_failures (account, at);
create index auth_failures_ip_idx on auth_failures (ip, at);
