-- How many days an organization keeps its attempts' screenshots and kept
-- pages (set by its admins); the hourly cleanup reads it per organization.
alter table organizations add column retention_days integer not null default 30
    check (retention_days between 1 and 3650);
