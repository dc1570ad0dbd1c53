-- Evaluation against ground truth, computed when a job finishes.
alter table jobs
    -- pass (every field with an expected value passes), partial, fail,
    -- no_ground_truth, error (the job failed)
    add column verdict text check (verdict in ('pass', 'partial', 'fail', 'no_ground_truth', 'error')),
    -- {field: {pass, score, expected, extracted, explanation}} for the fields
    -- that had an expected value
    add column field_results json,
    -- Share of the compared fields that passed (null: nothing compared).
    add column accuracy real;
create index jobs_verdict_idx on jobs (execution_id, verdict);
