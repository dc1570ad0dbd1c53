-- A version is a project's whole run configuration, not only its text:
-- the instructions, the fields' extraction rules and descriptions (only
-- fields whose rule or description differ from the default "automatic,
-- no description" are listed) and the agent settings that shape output
-- (source, extractor, timeout, browser wait and steps, model route, page
-- token budget). Price, retries, kept pages and the remote agent's address
-- are operating settings, comparators and "expected empty" judging ones:
-- they stay current.
-- `parts` says what a version changed from the one before it.
alter table instruction_versions
    add column fields jsonb,
    add column agent jsonb,
    add column parts text[] not null default '{instructions}';

-- Versions saved before this knew only their text: they are given the
-- project's configuration as it stands now, the best record there is.
update instruction_versions v set
    fields = coalesce((
        select jsonb_object_agg(f.name, jsonb_build_object('rule', f.rule,
                                                           'description', f.description))
        from project_fields f
        where f.project_id = v.project_id
          and (f.rule <> '{"kind": "auto"}'::jsonb or f.description <> '')), '{}'),
    agent = (
        select jsonb_build_object(
            'kind', p.agent_kind, 'timeout_secs', p.timeout_secs,
            'extractor', p.extractor, 'wait_for', p.wait_for, 'steps', p.steps,
            'model_route', p.model_route, 'page_token_budget', p.page_token_budget)
        from projects p where p.id = v.project_id);

alter table instruction_versions
    alter column fields set not null,
    alter column agent set not null;
