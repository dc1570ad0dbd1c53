-- A row's jobs in an execution: re-judging the rows whose expected values
-- changed, and pairing two executions' jobs row by row when comparing.
create index jobs_row_idx on jobs (execution_id, row_index);
