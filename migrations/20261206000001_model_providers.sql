-- The LLM extractor: model providers per organization (API keys sealed),
-- their shared health (a circuit breaker every process reads), the calls
-- made to them, a project's model route, and tokens and cost per attempt.

-- A sealed check value: a process whose key does not open it refuses to
-- start (see server::secrets). One row at most.
create table secret_key_check (
    id boolean primary key default true check (id),
    sealed text not null,
    created_at timestamptz not null default now()
);

create table model_providers (
    id uuid primary key default gen_random_uuid(),
    org_id uuid not null references organizations (id) on delete cascade,
    name text not null check (char_length(name) between 1 and 100),
    kind text not null check (kind in ('openai', 'anthropic', 'gemini')),
    base_url text not null,
    -- Sealed with the process's secret key; null for servers without keys
    -- (a local llama.cpp, Ollama).
    api_key text,
    api_key_last4 text,
    -- [{name, input_price_per_million, output_price_per_million}]
    models jsonb not null default '[]',
    timeout_secs integer not null default 60 check (timeout_secs between 1 and 600),
    max_in_flight integer not null default 4 check (max_in_flight between 1 and 256),
    requests_per_minute integer check (requests_per_minute between 1 and 1000000),
    tokens_per_minute integer check (tokens_per_minute between 1 and 100000000),
    enabled boolean not null default true,
    -- The circuit breaker, shared by every process: closed (serving), open
    -- (skipped until open_until), half_open (one probe allowed).
    breaker text not null default 'closed' check (breaker in ('closed', 'open', 'half_open')),
    consecutive_failures integer not null default 0,
    open_until timestamptz,
    -- A 401/403: the key is wrong; skipped until an admin changes it.
    auth_failed boolean not null default false,
    last_error text,
    last_error_at timestamptz,
    last_success_at timestamptz,
    created_by uuid references users (id) on delete set null,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (org_id, name)
);

-- Every request to a provider: health figures (error rate, latency) of
-- the last hour, and requests and tokens per minute across processes.
create table model_calls (
    id bigint generated always as identity primary key,
    provider_id uuid not null references model_providers (id) on delete cascade,
    model text not null,
    at timestamptz not null default now(),
    -- ok, rate_limited, server_error, timeout, connection, auth, refused, invalid_output
    outcome text not null,
    latency_ms integer not null,
    input_tokens integer not null default 0,
    output_tokens integer not null default 0
);
create index model_calls_provider_at on model_calls (provider_id, at);

-- The extractor and the model route (ordered [{provider, model}]; the first
-- serves, the rest are fallbacks), and how many tokens of the page the
-- model sees.
alter table projects drop constraint projects_extractor_check;
alter table projects add constraint projects_extractor_check check (extractor in ('rules', 'llm'));
alter table projects
    add column model_route jsonb not null default '[]',
    add column page_token_budget integer not null default 6000
        check (page_token_budget between 500 and 200000);

alter table executions drop constraint executions_extractor_check;
alter table executions add constraint executions_extractor_check check (extractor in ('rules', 'llm'));
alter table executions
    add column model_route jsonb not null default '[]',
    add column page_token_budget integer not null default 6000;

-- What the model says a field means (sent to it with the field).
alter table project_fields add column description text not null default ''
    check (char_length(description) <= 1000);

-- Which provider and model answered an attempt, and what it cost
-- (cost_micros already holds the attempt's cost).
alter table attempts
    add column provider text,
    add column model text,
    add column input_tokens integer not null default 0,
    add column output_tokens integer not null default 0;
