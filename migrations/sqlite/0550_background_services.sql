-- Background services (OpenEMR's `background_services`, the columns the scheduler needs):
-- one row per service the host registers on the site, with its title, whether it is
-- active, how often it runs (`execute_interval`, minutes; 0 = only when run by hand), when
-- it is next due (`next_run`) and the lease that lets one host process run it at a time
-- (`lock_expires_at`, as OpenEMR's lease, and `lease_owner`, the holding process).
-- Times are seconds since the epoch. Hearth adds the last run's time, status and message
-- and a count of runs. `background_service_runs` keeps each run (which process, when,
-- how it ended) for a week. Host tables: no plugin may be granted them.
CREATE TABLE background_services (
    name TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 0,
    running INTEGER NOT NULL DEFAULT 0,
    next_run INTEGER NOT NULL DEFAULT 0,
    execute_interval INTEGER NOT NULL DEFAULT 0,
    function TEXT NOT NULL,
    require_once TEXT,
    sort_order INTEGER NOT NULL DEFAULT 100,
    lock_expires_at INTEGER,
    lease_owner TEXT,
    last_run_at INTEGER,
    last_status TEXT,
    last_message TEXT,
    run_count INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE background_service_runs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    runner TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX background_service_runs_name ON background_service_runs (name, started_at);
