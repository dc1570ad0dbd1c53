-- Imported runs: values extracted elsewhere, judged like any run.
alter table executions drop constraint executions_agent_check;
alter table executions add constraint executions_agent_check
    check (agent in ('http', 'browser', 'remote', 'snapshot', 'imported'));
