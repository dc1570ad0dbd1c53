-- Evaluation a scientist would trust: per field, what an empty expected
-- cell means and the separator that splits a cell into several acceptable
-- values. (Precision, recall, F1 and their intervals are computed from the
-- jobs' field results; nothing else is stored for them.)

alter table project_fields
    add column empty_means text not null default 'unknown'
        check (empty_means in ('unknown', 'absent')),
    add column multi_value_separator text
        check (multi_value_separator is null
               or char_length(multi_value_separator) between 1 and 5);
