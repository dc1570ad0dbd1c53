-- What a job of an llm run was expected to cost when it started: the
-- project's last llm test run's tokens per job at the route's prices then.
-- Null for rules-only runs (their estimate is the flat price per job) and
-- for llm runs no test run had measured yet.
alter table executions add column estimated_job_cost_micros bigint;
