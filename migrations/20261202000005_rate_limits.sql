-- Request rate limits (F14): per API key and per organization, as plan
-- limits an owner can change, counted in fixed one-minute windows shared
-- by every `mino serve` process on this database.
alter table organizations
    add column api_requests_per_minute integer not null default 1200,
    add column key_requests_per_minute integer not null default 600;

-- Unlogged: counters for the current minute are not worth WAL, and after a
-- crash an empty table only means one generous minute.
create unlogged table rate_limit_hits (
    bucket text not null,
    window_start timestamptz not null,
    hits integer not null,
    primary key (bucket, window_start)
);
