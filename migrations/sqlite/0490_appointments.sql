-- Appointments, as OpenEMR's calendar keeps them (`openemr_postcalendar_events`), with the
-- columns its API reads and writes. Times of day are text `HH:MM:SS` (PostgreSQL's `time`
-- is not a type plugins read); `pc_eventDate` is the day. Same table as
-- postgres/0490_appointments.sql.
CREATE TABLE openemr_postcalendar_events (
    pc_eid INTEGER PRIMARY KEY,
    uuid TEXT NOT NULL UNIQUE,
    pc_catid INTEGER NOT NULL DEFAULT 0,
    pc_multiple INTEGER NOT NULL DEFAULT 0,
    pc_aid INTEGER,
    pc_pid INTEGER,
    pc_gid INTEGER NOT NULL DEFAULT 0,
    pc_title TEXT NOT NULL DEFAULT '',
    pc_time TEXT,
    pc_hometext TEXT NOT NULL DEFAULT '',
    pc_comments INTEGER NOT NULL DEFAULT 0,
    pc_counter INTEGER NOT NULL DEFAULT 0,
    pc_topic INTEGER NOT NULL DEFAULT 1,
    pc_informant INTEGER,
    "pc_eventDate" TEXT NOT NULL,
    "pc_endDate" TEXT,
    pc_duration INTEGER NOT NULL DEFAULT 0,
    pc_recurrtype INTEGER NOT NULL DEFAULT 0,
    pc_recurrspec TEXT NOT NULL DEFAULT '',
    pc_recurrfreq INTEGER NOT NULL DEFAULT 0,
    "pc_startTime" TEXT NOT NULL,
    "pc_endTime" TEXT NOT NULL,
    pc_alldayevent INTEGER NOT NULL DEFAULT 0,
    pc_location TEXT NOT NULL DEFAULT '',
    pc_conttel TEXT NOT NULL DEFAULT '',
    pc_contname TEXT NOT NULL DEFAULT '',
    pc_contemail TEXT NOT NULL DEFAULT '',
    pc_website TEXT NOT NULL DEFAULT '',
    pc_fee TEXT NOT NULL DEFAULT '',
    pc_eventstatus INTEGER NOT NULL DEFAULT 0,
    pc_sharing INTEGER NOT NULL DEFAULT 0,
    pc_language TEXT NOT NULL DEFAULT '',
    pc_apptstatus TEXT NOT NULL DEFAULT '-',
    pc_prefcatid INTEGER NOT NULL DEFAULT 0,
    pc_facility INTEGER NOT NULL DEFAULT 0,
    pc_sendalertsms TEXT NOT NULL DEFAULT 'NO',
    pc_sendalertemail TEXT NOT NULL DEFAULT 'NO',
    pc_billing_location INTEGER NOT NULL DEFAULT 0,
    pc_room TEXT NOT NULL DEFAULT ''
);
CREATE INDEX openemr_postcalendar_events_pid ON openemr_postcalendar_events (pc_pid);
CREATE INDEX openemr_postcalendar_events_provider_day ON openemr_postcalendar_events (pc_aid, "pc_eventDate");

-- The booking lock: creating an appointment takes this row first, so two bookings of one
-- provider never both pass the overlap check (PostgreSQL holds the row lock until commit).
INSERT INTO sequences (name, value) VALUES ('appointment_booking', 0);

-- Appointment statuses (OpenEMR's `apptstat` list, as it ships).
INSERT INTO list_options (list_id, option_id, title, seq) VALUES ('lists', 'apptstat', 'Appointment Statuses', 1);
INSERT INTO list_options (list_id, option_id, title, seq, is_default) VALUES
    ('apptstat', '-', '- None', 10, 1),
    ('apptstat', '*', '* Reminder done', 20, 0),
    ('apptstat', '+', '+ Chart pulled', 30, 0),
    ('apptstat', 'x', 'x Canceled', 40, 0),
    ('apptstat', '?', '? No show', 50, 0),
    ('apptstat', '@', '@ Arrived', 60, 0),
    ('apptstat', '~', '~ Arrived late', 70, 0),
    ('apptstat', '!', '! Left w/o visit', 80, 0),
    ('apptstat', '#', '# Ins/fin issue', 90, 0),
    ('apptstat', '<', '< In exam room', 100, 0),
    ('apptstat', '>', '> Checked out', 110, 0),
    ('apptstat', '$', '$ Coding done', 120, 0),
    ('apptstat', '%', '% Canceled < 24h', 130, 0),
    ('apptstat', '^', '^ Pending', 140, 0),
    ('apptstat', 'AVM', 'AVM Confirmed', 150, 0),
    ('apptstat', 'SMS', 'SMS Confirmed', 160, 0),
    ('apptstat', 'EMAIL', 'EMAIL Confirmed', 170, 0),
    ('apptstat', 'CALL', 'Callback requested', 180, 0);
