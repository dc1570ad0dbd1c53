-- A row's jobs in an execution: re-judging the rows whose expected values
-- changed, and pairing two executions' jobs row by row when comparing.
create index jobs_row_idx on jobs (execution_id, row_index);
-- The job list filtered by verdict or state, in id order (keyset pages).
create index jobs_verdict_id_idx on jobs (execution_id, verdict, id);
create index jobs_state_id_idx on jobs (execution_id, state, id);
-- They cover these, which only cost writes now.
drop index jobs_verdict_idx;
drop index jobs_state_idx;
