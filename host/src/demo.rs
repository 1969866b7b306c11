//! Synthetic demo data: `hearth demo seed` fills a site with realistic patients and their
//! encounters, vitals, SOAP notes, medical problems, allergies, medications, surgeries and
//! dental issues, plus the facilities and practitioners they refer to.
//!
//! The rows are the rows the clinical plugins write (uuids in the host's time-ordered
//! form, `pid`s and encounter numbers from the site's `sequences`, `forms` rows for every
//! encounter form, OpenEMR's list types and date formats), so every plugin serves them
//! as if they had come through the API. The data depends only on the seed and the
//! number of patients: the same command on an empty site writes the same rows.
//!
//! Speed comes from big transactions (one per [`SeedOptions::batch`] patients) of
//! multi-row `INSERT`s with explicit ids, run through the host's own database layer
//! ([`crate::db::store::Tx`]) on SQLite and PostgreSQL alike. Each batch commits on its
//! own: an interrupted run keeps the whole batches before it and nothing of the batch it
//! was in.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use time::{Date, Month, PrimitiveDateTime, Time};

use crate::db::Kind;
use crate::db::store::{SqlValue, Tx};
use crate::sites::Site;

/// What to seed.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// How many patients to add.
    pub patients: u64,
    /// The random seed: the same seed gives the same data.
    pub seed: u64,
    /// Patients per transaction.
    pub batch: u64,
}

impl Default for SeedOptions {
    fn default() -> Self {
        SeedOptions {
            patients: 100,
            seed: 1,
            batch: 2_000,
        }
    }
}

/// What a seed run wrote, table by table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// `facility` rows.
    pub facilities: u64,
    /// `users` rows with an NPI.
    pub practitioners: u64,
    /// `patient_data` rows.
    pub patients: u64,
    /// `form_encounter` rows.
    pub encounters: u64,
    /// `form_vitals` rows.
    pub vitals: u64,
    /// `form_soap` rows.
    pub soap_notes: u64,
    /// `forms` rows (one per encounter, vital and SOAP note).
    pub forms: u64,
    /// `lists` rows of type `medical_problem`.
    pub medical_problems: u64,
    /// `lists` rows of type `allergy`.
    pub allergies: u64,
    /// `lists` rows of type `medication`.
    pub medications: u64,
    /// `lists` rows of type `surgery`.
    pub surgeries: u64,
    /// `lists` rows of type `dental`.
    pub dental_issues: u64,
    /// `issue_encounter` rows (problems linked to the encounters that addressed them).
    pub issue_encounters: u64,
}

impl Summary {
    /// Every row written.
    pub fn rows(&self) -> u64 {
        self.facilities
            + self.practitioners
            + self.patients
            + self.encounters
            + self.vitals
            + self.soap_notes
            + self.forms
            + self.medical_problems
            + self.allergies
            + self.medications
            + self.surgeries
            + self.dental_issues
            + self.issue_encounters
    }

    /// One line per table, for the command line.
    pub fn lines(&self) -> Vec<(&'static str, u64)> {
        vec![
            ("facilities", self.facilities),
            ("practitioners", self.practitioners),
            ("patients", self.patients),
            ("encounters", self.encounters),
            ("vitals", self.vitals),
            ("SOAP notes", self.soap_notes),
            ("encounter forms", self.forms),
            ("medical problems", self.medical_problems),
            ("allergies", self.allergies),
            ("medications", self.medications),
            ("surgeries", self.surgeries),
            ("dental issues", self.dental_issues),
            ("problem-encounter links", self.issue_encounters),
        ]
    }
}

/// The most patients one run may add.
pub const MAX_PATIENTS: u64 = 10_000_000;

/// How long one batch may take before the database layer stops it.
const BATCH_DEADLINE: Duration = Duration::from_secs(3600);

/// Parameters per statement: under SQLite's 32,766 and PostgreSQL's 65,535.
const MAX_PARAMS: usize = 10_000;

/// How far `hearth demo seed` has got, on standard error: a progress bar on a terminal;
/// elsewhere (a log file, CI) a plain line at most every [`Progress::PLAIN_EVERY`] and at
/// the end, so a file gets a readable record instead of redraws.
pub struct Progress {
    site: String,
    started: Instant,
    bar: Option<ProgressBar>,
    last_line: Option<Instant>,
}

impl Progress {
    /// The least time between two plain lines.
    pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

    /// Progress of seeding `total` patients into `site`, as a bar when standard error is
    /// a terminal.
    pub fn new(site: &str, total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{msg} {wide_bar} {human_pos}/{human_len} patients [{elapsed_precise}, ETA {eta}]",
            )
            .expect("a valid progress template")
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_message(format!("seeding {site}"));
            bar.enable_steady_tick(Duration::from_millis(250));
            bar
        });
        Progress {
            site: site.to_owned(),
            started: Instant::now(),
            bar,
            last_line: None,
        }
    }

    /// Records that `done` of `total` patients are written.
    pub fn update(&mut self, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            if done >= total {
                bar.finish();
                // The bar leaves the cursor on its line; the summary starts below it.
                eprintln!();
            }
            return;
        }
        let now = Instant::now();
        let due = self
            .last_line
            .is_none_or(|last| now - last >= Self::PLAIN_EVERY);
        if due || done >= total {
            eprintln!(
                "{}",
                plain_line(&self.site, done, total, now - self.started)
            );
            self.last_line = Some(now);
        }
    }
}

impl Drop for Progress {
    /// A run that failed leaves its bar where it stopped, not cleared.
    fn drop(&mut self) {
        if let Some(bar) = self.bar.as_ref().filter(|bar| !bar.is_finished()) {
            bar.abandon();
        }
    }
}

/// `seeding default: 20000/100000 patients (20%), 12.3 s`.
pub fn plain_line(site: &str, done: u64, total: u64, elapsed: Duration) -> String {
    format!(
        "seeding {site}: {done}/{total} patients ({}%), {:.1} s",
        done * 100 / total.max(1),
        elapsed.as_secs_f64()
    )
}

/// Seeds `site`; `progress(done, total)` is called after each committed batch.
pub async fn seed(
    site: &Site,
    options: &SeedOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<Summary> {
    if options.patients == 0 || options.patients > MAX_PATIENTS {
        bail!("--patients must be between 1 and {MAX_PATIENTS}");
    }
    let batch = options.batch.max(1);
    let mut rng = Gen::new(options.seed);
    let mut summary = Summary::default();

    // Facilities and practitioners first, in a transaction of their own.
    let facilities = (options.patients / 5_000).clamp(2, 50);
    let practitioners = (options.patients / 200).clamp(3, 500);
    let mut tx = begin(site).await?;
    let mut ids = Ids::reserve(&mut tx, site.db.kind()).await?;
    let mut tables = Tables::default();
    let staff = generate_staff(&mut rng, &mut ids, &mut tables, facilities, practitioners);
    tables.write(&mut tx, site.db.kind()).await?;
    finish(tx, site.db.kind()).await?;
    summary.facilities = facilities;
    summary.practitioners = practitioners;

    let mut done = 0;
    while done < options.patients {
        let count = batch.min(options.patients - done);
        let mut tx = begin(site).await?;
        let mut ids = Ids::reserve(&mut tx, site.db.kind()).await?;
        ids.pid = take_sequence(&mut tx, "pid", count as i64).await?;
        let mut tables = Tables::default();
        let mut encounters = 0;
        for _ in 0..count {
            generate_patient(&mut rng, &staff, &mut ids, &mut tables, &mut encounters);
        }
        // Encounter numbers are unique across the site: take them in one block.
        let first = take_sequence(&mut tx, "encounter", encounters as i64).await?;
        tables.number_encounters(first);
        tables.count(&mut summary);
        tables.write(&mut tx, site.db.kind()).await?;
        finish(tx, site.db.kind()).await?;
        done += count;
        progress(done, options.patients);
    }
    Ok(summary)
}

async fn begin(site: &Site) -> Result<Tx> {
    let mut tx = site
        .db
        .begin(true, Instant::now() + BATCH_DEADLINE)
        .await
        .map_err(|e| anyhow::anyhow!("starting a transaction: {e:?}"))?;
    if site.db.kind() == Kind::Sqlite {
        // SQLite's default 2 MB page cache thrashes on indexes of a few million rows;
        // the cache grows only as pages are used.
        tx.execute("PRAGMA cache_size = -262144", vec![])
            .await
            .map_err(|e| anyhow::anyhow!("sizing the page cache: {e:?}"))?;
    }
    Ok(tx)
}

/// Commits, after moving PostgreSQL's identity counters past the explicit ids.
async fn finish(mut tx: Tx, kind: Kind) -> Result<()> {
    if kind == Kind::Postgres {
        for table in ID_TABLES {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT MAX(id) FROM {table})) AS v \
                 WHERE EXISTS (SELECT 1 FROM {table})"
            );
            tx.query(&sql, vec![])
                .await
                .map_err(|e| anyhow::anyhow!("advancing the ids of {table}: {e:?}"))?;
        }
    }
    tx.commit()
        .await
        .map_err(|e| anyhow::anyhow!("committing: {e:?}"))
}

/// The random source and the clock uuids are made from. Uuids take their time from a
/// clock that starts at the reference day and ticks a millisecond per uuid, as rows
/// written one after another get them from the host: so they arrive in index order,
/// which keeps the unique indexes append-only and the seed fast.
struct Gen {
    rng: StdRng,
    clock_ms: u64,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        let start = PrimitiveDateTime::new(reference_day(), Time::MIDNIGHT).assume_utc();
        Gen {
            rng: StdRng::seed_from_u64(seed),
            clock_ms: (start.unix_timestamp_nanos() / 1_000_000) as u64,
        }
    }
}

impl std::ops::Deref for Gen {
    type Target = StdRng;
    fn deref(&self) -> &StdRng {
        &self.rng
    }
}

impl std::ops::DerefMut for Gen {
    fn deref_mut(&mut self) -> &mut StdRng {
        &mut self.rng
    }
}

/// The tables whose ids the seed assigns itself.
const ID_TABLES: [&str; 8] = [
    "facility",
    "users",
    "patient_data",
    "form_encounter",
    "forms",
    "form_vitals",
    "form_soap",
    "lists",
];

/// The next id of each table the seed writes.
#[derive(Debug, Default)]
struct Ids {
    facility: i64,
    users: i64,
    patient_data: i64,
    form_encounter: i64,
    forms: i64,
    form_vitals: i64,
    form_soap: i64,
    lists: i64,
    issue_encounter: i64,
    /// The next pid (from the `pid` sequence).
    pid: i64,
}

impl Ids {
    /// Reads the highest ids. On PostgreSQL the tables are locked against other writers
    /// first (readers go on), so ids cannot collide with API writes meanwhile; SQLite's
    /// write transaction already excludes them.
    async fn reserve(tx: &mut Tx, kind: Kind) -> Result<Ids> {
        if kind == Kind::Postgres {
            tx.execute(
                "LOCK TABLE facility, users, patient_data, form_encounter, forms, form_vitals, \
                 form_soap, lists, issue_encounter IN EXCLUSIVE MODE",
                vec![],
            )
            .await
            .map_err(|e| anyhow::anyhow!("locking the tables: {e:?}"))?;
        }
        Ok(Ids {
            facility: next_id(tx, "facility").await?,
            users: next_id(tx, "users").await?,
            patient_data: next_id(tx, "patient_data").await?,
            form_encounter: next_id(tx, "form_encounter").await?,
            forms: next_id(tx, "forms").await?,
            form_vitals: next_id(tx, "form_vitals").await?,
            form_soap: next_id(tx, "form_soap").await?,
            lists: next_id(tx, "lists").await?,
            issue_encounter: next_id(tx, "issue_encounter").await?,
            pid: 0,
        })
    }
}

/// One more than the highest id of `table`.
async fn next_id(tx: &mut Tx, table: &str) -> Result<i64> {
    let sql = format!("SELECT COALESCE(MAX(id), 0) AS m FROM {table}");
    let rows = tx
        .query(&sql, vec![])
        .await
        .map_err(|e| anyhow::anyhow!("reading the ids of {table}: {e:?}"))?;
    match rows.values().first().and_then(|row| row.first()) {
        Some(SqlValue::Integer(max)) => Ok(max + 1),
        other => bail!("unexpected MAX(id) of {table}: {other:?}"),
    }
}

fn take(counter: &mut i64) -> i64 {
    let id = *counter;
    *counter += 1;
    id
}

/// Advances the counter `name` by `count`; answers the first value taken.
async fn take_sequence(tx: &mut Tx, name: &str, count: i64) -> Result<i64> {
    if count == 0 {
        return Ok(0);
    }
    let rows = tx
        .query(
            "UPDATE sequences SET value = value + $1 WHERE name = $2 RETURNING value",
            vec![SqlValue::Integer(count), SqlValue::Text(name.to_owned())],
        )
        .await
        .map_err(|e| anyhow::anyhow!("taking from the sequence {name}: {e:?}"))?;
    match rows.values().first().and_then(|row| row.first()) {
        Some(SqlValue::Integer(last)) => Ok(last - count + 1),
        _ => bail!("the sequence {name} is missing"),
    }
}

/// Rows for one table, written as multi-row `INSERT`s.
struct Table {
    name: &'static str,
    columns: &'static [&'static str],
    values: Vec<SqlValue>,
}

impl Table {
    fn new(name: &'static str, columns: &'static [&'static str]) -> Table {
        Table {
            name,
            columns,
            values: Vec::new(),
        }
    }

    fn push(&mut self, row: Vec<SqlValue>) {
        debug_assert_eq!(row.len(), self.columns.len(), "a row of {}", self.name);
        self.values.extend(row);
    }

    fn len(&self) -> u64 {
        (self.values.len() / self.columns.len()) as u64
    }

    /// Writes the rows. SQLite gets anonymous `?` placeholders, which it numbers in
    /// order: a numbered one (`$N` or `?N`) is a name, and SQLite finds a name's number,
    /// or a number's name, by walking a list of them, so compiling and binding a
    /// statement with thousands of them is quadratic (the binding alone took 92 % of a
    /// seed's time with `?N`). PostgreSQL gets `$N`.
    async fn write(&mut self, tx: &mut Tx, kind: Kind) -> Result<()> {
        let numbered = kind == Kind::Postgres;
        let width = self.columns.len();
        let per_statement = (MAX_PARAMS / width).max(1);
        let head = format!(
            "INSERT INTO {} ({}) VALUES ",
            self.name,
            self.columns
                .iter()
                .map(|c| format!("\"{c}\""))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let values = std::mem::take(&mut self.values);
        for chunk in values.chunks(per_statement * width) {
            let rows = chunk.len() / width;
            let mut sql = String::with_capacity(head.len() + rows * width * 7);
            sql.push_str(&head);
            for row in 0..rows {
                if row > 0 {
                    sql.push(',');
                }
                sql.push('(');
                for column in 0..width {
                    if column > 0 {
                        sql.push(',');
                    }
                    if numbered {
                        sql.push('$');
                        sql.push_str(&(row * width + column + 1).to_string());
                    } else {
                        sql.push('?');
                    }
                }
                sql.push(')');
            }
            tx.execute(&sql, chunk.to_vec())
                .await
                .map_err(|e| anyhow::anyhow!("writing {}: {e:?}", self.name))
                .with_context(|| format!("seeding {}", self.name))?;
        }
        Ok(())
    }
}

const FACILITY: &[&str] = &[
    "id",
    "uuid",
    "name",
    "phone",
    "fax",
    "street",
    "city",
    "state",
    "postal_code",
    "country_code",
    "federal_ein",
    "email",
    "facility_npi",
    "service_location",
    "billing_location",
    "pos_code",
    "last_updated",
    "organization_type",
    "date_created",
    "primary_business_entity",
];
const USERS: &[&str] = &[
    "id",
    "uuid",
    "username",
    "fname",
    "lname",
    "title",
    "npi",
    "specialty",
    "facility_id",
    "facility",
    "email",
    "phone",
    "active",
    "authorized",
    "last_updated",
    "physician_type",
    "date_created",
];
const PATIENT: &[&str] = &[
    "id",
    "uuid",
    "pid",
    "pubpid",
    "title",
    "fname",
    "lname",
    "mname",
    "DOB",
    "sex",
    "street",
    "city",
    "state",
    "postal_code",
    "country_code",
    "phone_home",
    "phone_cell",
    "email",
    "status",
    "language",
    "race",
    "ethnicity",
    "providerID",
    "date",
    "regdate",
    "last_updated",
    "sex_identified",
    "pronoun",
    "preferred_name",
    "interpreter",
    "interpreter_needed",
    "nationality_country",
];
const ENCOUNTER: &[&str] = &[
    "id",
    "uuid",
    "pid",
    "encounter",
    "date",
    "reason",
    "facility",
    "facility_id",
    "billing_facility",
    "pc_catid",
    "class_code",
    "sensitivity",
    "provider_id",
    "pos_code",
    "last_update",
];
const FORMS: &[&str] = &[
    "id",
    "uuid",
    "date",
    "encounter",
    "form_name",
    "form_id",
    "pid",
    "user",
    "groupname",
    "authorized",
    "deleted",
    "formdir",
];
const VITALS: &[&str] = &[
    "id",
    "uuid",
    "date",
    "pid",
    "user",
    "groupname",
    "authorized",
    "activity",
    "bps",
    "bpd",
    "weight",
    "height",
    "temperature",
    "temp_method",
    "pulse",
    "respiration",
    "BMI",
    "oxygen_saturation",
    "last_updated",
];
const SOAP: &[&str] = &[
    "id",
    "uuid",
    "date",
    "pid",
    "user",
    "groupname",
    "authorized",
    "activity",
    "subjective",
    "objective",
    "assessment",
    "plan",
    "last_updated",
];
const LISTS: &[&str] = &[
    "id",
    "uuid",
    "date",
    "type",
    "title",
    "begdate",
    "enddate",
    "diagnosis",
    "activity",
    "comments",
    "pid",
    "user",
    "groupname",
    "reaction",
    "verification",
    "severity_al",
    "modifydate",
];
const ISSUE_ENCOUNTER: &[&str] = &["id", "pid", "list_id", "encounter", "resolved"];

/// One batch of rows, in the order foreign keys need them.
struct Tables {
    facility: Table,
    users: Table,
    patient: Table,
    encounter: Table,
    forms: Table,
    vitals: Table,
    soap: Table,
    lists: Table,
    issue_encounter: Table,
    /// List types of the `lists` rows, for the summary.
    list_types: Vec<&'static str>,
}

impl Default for Tables {
    fn default() -> Self {
        Tables {
            facility: Table::new("facility", FACILITY),
            users: Table::new("users", USERS),
            patient: Table::new("patient_data", PATIENT),
            encounter: Table::new("form_encounter", ENCOUNTER),
            forms: Table::new("forms", FORMS),
            vitals: Table::new("form_vitals", VITALS),
            soap: Table::new("form_soap", SOAP),
            lists: Table::new("lists", LISTS),
            issue_encounter: Table::new("issue_encounter", ISSUE_ENCOUNTER),
            list_types: Vec::new(),
        }
    }
}

/// Placeholder encounter numbers are `-(n + 1)` for the batch's n-th encounter until
/// [`Tables::number_encounters`] knows where the site's sequence stands.
fn placeholder(n: usize) -> i64 {
    -(n as i64) - 1
}

impl Tables {
    /// Replaces placeholder encounter numbers with numbers from `first` on.
    fn number_encounters(&mut self, first: i64) {
        let fix = |table: &mut Table, column: &str| {
            let width = table.columns.len();
            let Some(at) = table.columns.iter().position(|c| *c == column) else {
                return;
            };
            for row in table.values.chunks_mut(width) {
                if let SqlValue::Integer(n) = row[at]
                    && n < 0
                {
                    row[at] = SqlValue::Integer(first + (-n - 1));
                }
            }
        };
        fix(&mut self.encounter, "encounter");
        fix(&mut self.forms, "encounter");
        fix(&mut self.issue_encounter, "encounter");
    }

    fn count(&self, summary: &mut Summary) {
        summary.patients += self.patient.len();
        summary.encounters += self.encounter.len();
        summary.vitals += self.vitals.len();
        summary.soap_notes += self.soap.len();
        summary.forms += self.forms.len();
        summary.issue_encounters += self.issue_encounter.len();
        for kind in &self.list_types {
            match *kind {
                "medical_problem" => summary.medical_problems += 1,
                "allergy" => summary.allergies += 1,
                "medication" => summary.medications += 1,
                "surgery" => summary.surgeries += 1,
                _ => summary.dental_issues += 1,
            }
        }
    }

    async fn write(&mut self, tx: &mut Tx, kind: Kind) -> Result<()> {
        for table in [
            &mut self.facility,
            &mut self.users,
            &mut self.patient,
            &mut self.encounter,
            &mut self.vitals,
            &mut self.soap,
            &mut self.forms,
            &mut self.lists,
            &mut self.issue_encounter,
        ] {
            table.write(tx, kind).await?;
        }
        Ok(())
    }
}

/// The seeded facilities and practitioners patients are seen at and by.
struct Staff {
    /// (id, name) of each facility.
    facilities: Vec<(i64, String)>,
    /// (id, user name, facility index) of each practitioner.
    practitioners: Vec<(i64, String, usize)>,
}

/// The day the synthetic history ends: fixed, so a seed always gives the same rows.
fn reference_day() -> Date {
    Date::from_calendar_date(2025, Month::June, 30).expect("a valid date")
}

fn text(value: impl Into<String>) -> SqlValue {
    SqlValue::Text(value.into())
}

fn datetime(moment: PrimitiveDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        moment.year(),
        moment.month() as u8,
        moment.day(),
        moment.hour(),
        moment.minute(),
        moment.second()
    )
}

fn date(day: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        day.year(),
        day.month() as u8,
        day.day()
    )
}

/// A uuid as the host makes them (`comb_uuid`): version 4 with the first 48 bits the
/// time it was made in milliseconds (from [`Gen`]'s clock), so uuids sort by creation.
fn comb_uuid(rng: &mut Gen) -> SqlValue {
    let mut bytes: [u8; 16] = rng.r#gen();
    rng.clock_ms += 1;
    let millis = rng.clock_ms;
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    text(uuid::Uuid::from_bytes(bytes).hyphenated().to_string())
}

/// A moment `days_back` days before the reference day, in office hours.
fn moment(rng: &mut Gen, days_back: i64) -> PrimitiveDateTime {
    let day = reference_day() - time::Duration::days(days_back);
    let at = Time::from_hms(rng.gen_range(8..18), rng.gen_range(0..4) * 15, 0).expect("a time");
    PrimitiveDateTime::new(day, at)
}

fn pick<'a, T>(rng: &mut Gen, items: &'a [T]) -> &'a T {
    items.choose(&mut rng.rng).expect("a non-empty list")
}

fn phone(rng: &mut Gen) -> String {
    format!(
        "{}-555-{:04}",
        rng.gen_range(201..990),
        rng.gen_range(100..10_000)
    )
}

fn npi(rng: &mut Gen) -> String {
    format!("1{:09}", rng.gen_range(0..1_000_000_000u64))
}

fn generate_staff(
    rng: &mut Gen,
    ids: &mut Ids,
    tables: &mut Tables,
    facilities: u64,
    practitioners: u64,
) -> Staff {
    let created = moment(rng, 3 * 365);
    let mut staff = Staff {
        facilities: Vec::new(),
        practitioners: Vec::new(),
    };
    for n in 0..facilities {
        let id = take(&mut ids.facility);
        let (city, state, zip) = *pick(rng, CITIES);
        let name = format!(
            "{city} {}",
            FACILITY_KINDS[n as usize % FACILITY_KINDS.len()]
        );
        tables.facility.push(vec![
            SqlValue::Integer(id),
            comb_uuid(rng),
            text(name.clone()),
            text(phone(rng)),
            text(phone(rng)),
            text(format!("{} {}", rng.gen_range(1..999), pick(rng, STREETS))),
            text(city),
            text(state),
            text(zip),
            text("US"),
            text(format!(
                "{:02}-{:07}",
                rng.gen_range(10..99),
                rng.gen_range(0..10_000_000)
            )),
            text(format!(
                "contact@{}.example.org",
                name.to_lowercase().replace(' ', "-")
            )),
            text(npi(rng)),
            SqlValue::Integer(1),
            SqlValue::Integer(1),
            SqlValue::Integer(11),
            text(datetime(created)),
            text("prov"),
            text(datetime(created)),
            // The first facility is the practice's business entity.
            SqlValue::Integer((n == 0).into()),
        ]);
        staff.facilities.push((id, name));
    }
    for _ in 0..practitioners {
        let id = take(&mut ids.users);
        let female = rng.gen_bool(0.5);
        let fname = *pick(rng, if female { FEMALE_NAMES } else { MALE_NAMES });
        let lname = *pick(rng, LAST_NAMES);
        // The id keeps user names unique however often a site is seeded.
        let username = format!("{}{}{id}", &fname[..1], lname).to_lowercase();
        let facility = rng.gen_range(0..staff.facilities.len());
        tables.users.push(vec![
            SqlValue::Integer(id),
            comb_uuid(rng),
            text(username.clone()),
            text(fname),
            text(lname),
            text(if rng.gen_bool(0.8) { "Dr." } else { "" }),
            text(npi(rng)),
            text(*pick(rng, SPECIALTIES)),
            SqlValue::Integer(staff.facilities[facility].0),
            text(staff.facilities[facility].1.clone()),
            text(format!("{username}@example.org")),
            text(phone(rng)),
            SqlValue::Integer(1),
            SqlValue::Integer(1),
            text(datetime(created)),
            text(*pick(rng, PHYSICIAN_TYPES)),
            text(datetime(created)),
        ]);
        staff.practitioners.push((id, username, facility));
    }
    staff
}

/// One patient and their history.
fn generate_patient(
    rng: &mut Gen,
    staff: &Staff,
    ids: &mut Ids,
    tables: &mut Tables,
    encounters: &mut usize,
) {
    let pid = take(&mut ids.pid);
    let female = rng.gen_bool(0.52);
    let fname = *pick(rng, if female { FEMALE_NAMES } else { MALE_NAMES });
    let lname = *pick(rng, LAST_NAMES);
    let age_days = rng.gen_range(1..90) * 365 + rng.gen_range(0..365);
    let dob = reference_day() - time::Duration::days(age_days);
    let back = rng.gen_range(365..6 * 365);
    let registered = moment(rng, back);
    let (city, state, zip) = *pick(rng, CITIES);
    let (doctor, doctor_name, home) =
        staff.practitioners[rng.gen_range(0..staff.practitioners.len())].clone();
    let language = *pick(rng, &["english", "english", "english", "spanish", "french"]);
    tables.patient.push(vec![
        SqlValue::Integer(take(&mut ids.patient_data)),
        comb_uuid(rng),
        SqlValue::Integer(pid),
        text(pid.to_string()),
        text(if female { "Ms." } else { "Mr." }),
        text(fname),
        text(lname),
        text(String::new()),
        text(date(dob)),
        text(if female { "Female" } else { "Male" }),
        text(format!("{} {}", rng.gen_range(1..9999), pick(rng, STREETS))),
        text(city),
        text(state),
        text(zip),
        text("US"),
        text(phone(rng)),
        text(phone(rng)),
        text(format!("{}.{}{}@example.com", fname, lname, pid).to_lowercase()),
        text(*pick(
            rng,
            &[
                "married",
                "single",
                "divorced",
                "widowed",
                "domestic partner",
            ],
        )),
        text(language),
        text(*pick(
            rng,
            &[
                "white",
                "black_or_afri_amer",
                "asian",
                "amer_ind_or_alaska_native",
                "declne_to_specfy",
            ],
        )),
        text(*pick(
            rng,
            &["not_hisp_or_latin", "not_hisp_or_latin", "hisp_or_latin"],
        )),
        SqlValue::Integer(doctor),
        text(datetime(registered)),
        text(datetime(registered)),
        text(datetime(registered)),
        // Reported sex and pronouns as most patients give them; a few prefer a short
        // form of their first name; speakers of other languages may need an interpreter.
        text(if female { "Female" } else { "Male" }),
        text(match rng.gen_range(0..20) {
            0 => "they_them",
            _ if female => "she_her",
            _ => "he_him",
        }),
        if rng.gen_bool(0.15) {
            text(&fname[..fname.len().min(3)])
        } else {
            SqlValue::Null
        },
        text(if language == "english" { "" } else { language }),
        text(if language == "english" { "no" } else { "yes" }),
        text("US"),
    ]);

    // Encounters, newest last, each with its `forms` row, most with vitals and a note.
    let visits = rng.gen_range(1..=4);
    let mut patient_encounters = Vec::new();
    let since = (reference_day() - registered.date()).whole_days().max(1);
    for _ in 0..visits {
        let back = rng.gen_range(0..since);
        let at = moment(rng, back);
        let number = placeholder(*encounters);
        *encounters += 1;
        patient_encounters.push(number);
        let facility = &staff.facilities[home];
        let (reason, category) = *pick(rng, REASONS);
        let id = take(&mut ids.form_encounter);
        tables.encounter.push(vec![
            SqlValue::Integer(id),
            comb_uuid(rng),
            SqlValue::Integer(pid),
            SqlValue::Integer(number),
            text(datetime(at)),
            text(reason),
            text(facility.1.clone()),
            SqlValue::Integer(facility.0),
            SqlValue::Integer(facility.0),
            SqlValue::Integer(category),
            text(if rng.gen_bool(0.05) { "VR" } else { "AMB" }),
            text("normal"),
            SqlValue::Integer(doctor),
            SqlValue::Integer(11),
            text(datetime(at)),
        ]);
        add_form(
            rng,
            ids,
            tables,
            pid,
            number,
            id,
            at,
            &doctor_name,
            ("newpatient", "New Patient Encounter"),
        );
        if rng.gen_bool(0.8) {
            let id = take(&mut ids.form_vitals);
            let height: f64 = rng.gen_range(58.0..76.0_f64).round();
            let weight: f64 = (rng.gen_range(100.0..260.0_f64) * 10.0).round() / 10.0;
            let bmi = (703.0 * weight / (height * height) * 10.0).round() / 10.0;
            tables.vitals.push(vec![
                SqlValue::Integer(id),
                comb_uuid(rng),
                text(datetime(at)),
                SqlValue::Integer(pid),
                text(doctor_name.clone()),
                text("Default"),
                SqlValue::Integer(1),
                SqlValue::Integer(1),
                text(rng.gen_range(100..160).to_string()),
                text(rng.gen_range(60..100).to_string()),
                SqlValue::Real(weight),
                SqlValue::Real(height),
                SqlValue::Real((rng.gen_range(97.0..99.8_f64) * 10.0).round() / 10.0),
                text("Oral"),
                SqlValue::Real(f64::from(rng.gen_range(55..101))),
                SqlValue::Real(f64::from(rng.gen_range(12..21))),
                SqlValue::Real(bmi),
                SqlValue::Real(f64::from(rng.gen_range(94..101))),
                text(datetime(at)),
            ]);
            add_form(
                rng,
                ids,
                tables,
                pid,
                number,
                id,
                at,
                &doctor_name,
                ("vitals", "Vitals"),
            );
        }
        if rng.gen_bool(0.6) {
            let id = take(&mut ids.form_soap);
            let (subjective, objective, assessment, plan) = *pick(rng, SOAP_NOTES);
            tables.soap.push(vec![
                SqlValue::Integer(id),
                comb_uuid(rng),
                text(datetime(at)),
                SqlValue::Integer(pid),
                text(doctor_name.clone()),
                text("Default"),
                SqlValue::Integer(1),
                SqlValue::Integer(1),
                text(subjective),
                text(objective),
                text(assessment),
                text(plan),
                text(datetime(at)),
            ]);
            add_form(
                rng,
                ids,
                tables,
                pid,
                number,
                id,
                at,
                &doctor_name,
                ("soap", "SOAP"),
            );
        }
    }

    let issue = IssueOf {
        pid,
        user: &doctor_name,
        since,
    };
    for _ in 0..rng.gen_range(0..=3) {
        let (title, code) = *pick(rng, PROBLEMS);
        let id = issue.add(
            rng,
            ids,
            tables,
            "medical_problem",
            (title, code),
            ("", "confirmed", None),
        );
        if rng.gen_bool(0.5) {
            let encounter = *pick(rng, &patient_encounters);
            tables.issue_encounter.push(vec![
                SqlValue::Integer(take(&mut ids.issue_encounter)),
                SqlValue::Integer(pid),
                SqlValue::Integer(id),
                SqlValue::Integer(encounter),
                SqlValue::Integer(0),
            ]);
        }
    }
    for _ in 0..rng.gen_range(0..=2) {
        let (title, reaction, severity) = *pick(rng, ALLERGIES);
        issue.add(
            rng,
            ids,
            tables,
            "allergy",
            (title, ""),
            (reaction, "confirmed", Some(severity)),
        );
    }
    for _ in 0..rng.gen_range(0..=4) {
        let title = *pick(rng, MEDICATIONS);
        issue.add(rng, ids, tables, "medication", (title, ""), ("", "", None));
    }
    if rng.gen_bool(0.2) {
        let (title, code) = *pick(rng, SURGERIES);
        issue.add(rng, ids, tables, "surgery", (title, code), ("", "", None));
    }
    if rng.gen_bool(0.1) {
        let title = *pick(rng, DENTAL);
        issue.add(rng, ids, tables, "dental", (title, ""), ("", "", None));
    }
}

/// Who an issue belongs to and how far back its dates may go.
struct IssueOf<'a> {
    pid: i64,
    user: &'a str,
    since: i64,
}

impl IssueOf<'_> {
    /// A `lists` row of type `kind` as the plugins' `Issues::insert` writes it (plus
    /// reaction, verification and severity, which the API cannot set); answers its id.
    fn add(
        &self,
        rng: &mut Gen,
        ids: &mut Ids,
        tables: &mut Tables,
        kind: &'static str,
        (title, diagnosis): (&str, &str),
        (reaction, verification, severity): (&str, &str, Option<&str>),
    ) -> i64 {
        let back = rng.gen_range(0..self.since);
        let at = moment(rng, back);
        let back = rng.gen_range(0..self.since + 3650);
        let begun = moment(rng, back).min(at);
        let ended = (rng.gen_bool(0.15) && begun < at).then(|| datetime(at));
        let id = take(&mut ids.lists);
        tables.lists.push(vec![
            SqlValue::Integer(id),
            comb_uuid(rng),
            text(datetime(at)),
            text(kind),
            text(title),
            text(datetime(begun)),
            ended.map_or(SqlValue::Null, SqlValue::Text),
            text(diagnosis),
            SqlValue::Integer(1),
            SqlValue::Null,
            SqlValue::Integer(self.pid),
            text(self.user),
            text("Default"),
            text(reaction),
            text(verification),
            severity.map_or(SqlValue::Null, text),
            text(datetime(at)),
        ]);
        tables.list_types.push(kind);
        id
    }
}

/// The `forms` row of an encounter form, as the plugins' `add_form` writes it.
#[allow(clippy::too_many_arguments)]
fn add_form(
    rng: &mut Gen,
    ids: &mut Ids,
    tables: &mut Tables,
    pid: i64,
    encounter: i64,
    form_id: i64,
    at: PrimitiveDateTime,
    user: &str,
    (formdir, form_name): (&str, &str),
) {
    tables.forms.push(vec![
        SqlValue::Integer(take(&mut ids.forms)),
        comb_uuid(rng),
        text(datetime(at)),
        SqlValue::Integer(encounter),
        text(form_name),
        SqlValue::Integer(form_id),
        SqlValue::Integer(pid),
        text(user),
        text("Default"),
        SqlValue::Integer(1),
        SqlValue::Integer(0),
        text(formdir),
    ]);
}

const FEMALE_NAMES: &[&str] = &[
    "Mary",
    "Patricia",
    "Jennifer",
    "Linda",
    "Elizabeth",
    "Barbara",
    "Susan",
    "Jessica",
    "Sarah",
    "Karen",
    "Lisa",
    "Nancy",
    "Betty",
    "Sandra",
    "Margaret",
    "Ashley",
    "Emily",
    "Donna",
    "Michelle",
    "Carol",
    "Amanda",
    "Melissa",
    "Deborah",
    "Stephanie",
    "Rebecca",
    "Laura",
    "Helen",
    "Sharon",
    "Cynthia",
    "Kathleen",
    "Amy",
    "Angela",
    "Anna",
    "Ruth",
    "Maria",
    "Sofia",
    "Olivia",
    "Emma",
    "Ava",
    "Isabella",
];
const MALE_NAMES: &[&str] = &[
    "James",
    "Robert",
    "John",
    "Michael",
    "David",
    "William",
    "Richard",
    "Joseph",
    "Thomas",
    "Christopher",
    "Charles",
    "Daniel",
    "Matthew",
    "Anthony",
    "Mark",
    "Donald",
    "Steven",
    "Andrew",
    "Paul",
    "Joshua",
    "Kenneth",
    "Kevin",
    "Brian",
    "George",
    "Timothy",
    "Ronald",
    "Jason",
    "Edward",
    "Jeffrey",
    "Ryan",
    "Jacob",
    "Gary",
    "Nicholas",
    "Eric",
    "Jonathan",
    "Luis",
    "Carlos",
    "Wei",
    "Ahmed",
    "Noah",
];
const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Mitchell",
    "Carter",
    "Roberts",
    "Chen",
    "Patel",
    "Kim",
    "Cohen",
    "Murphy",
    "O'Brien",
];
const CITIES: &[(&str, &str, &str)] = &[
    ("Springfield", "IL", "62701"),
    ("Madison", "WI", "53703"),
    ("Portland", "OR", "97205"),
    ("Austin", "TX", "78701"),
    ("Columbus", "OH", "43215"),
    ("Raleigh", "NC", "27601"),
    ("Denver", "CO", "80202"),
    ("Burlington", "VT", "05401"),
    ("Albany", "NY", "12207"),
    ("Tucson", "AZ", "85701"),
    ("Boise", "ID", "83702"),
    ("Savannah", "GA", "31401"),
];
const STREETS: &[&str] = &[
    "Main St",
    "Oak Ave",
    "Maple Dr",
    "Cedar Ln",
    "Elm St",
    "Pine Rd",
    "Washington Blvd",
    "Lake View Dr",
    "Hillcrest Ave",
    "Park Pl",
    "River Rd",
    "Sunset Blvd",
];
const FACILITY_KINDS: &[&str] = &[
    "Family Clinic",
    "Medical Center",
    "Health Partners",
    "Community Health",
    "Internal Medicine",
];
/// `physician_type` options the migrations seed.
const PHYSICIAN_TYPES: &[&str] = &[
    "attending_physician",
    "consultant_physician",
    "general_physician",
    "physician",
    "resident_physician",
];
const SPECIALTIES: &[&str] = &[
    "Family Medicine",
    "Internal Medicine",
    "Pediatrics",
    "Cardiology",
    "Dermatology",
    "Endocrinology",
];
/// Visit reasons and their calendar category (`pc_catid`).
const REASONS: &[(&str, i64)] = &[
    ("Annual physical", 13),
    ("Follow-up visit", 9),
    ("Blood pressure check", 9),
    ("Cough and fever", 5),
    ("Sore throat", 5),
    ("Back pain", 5),
    ("Medication review", 9),
    ("New patient visit", 10),
    ("Diabetes follow-up", 9),
    ("Headache", 5),
    ("Skin rash", 5),
    ("Well child check", 13),
];
const SOAP_NOTES: &[(&str, &str, &str, &str)] = &[
    (
        "Patient reports feeling well, no new complaints.",
        "Vitals within normal limits. Lungs clear, heart regular.",
        "Stable chronic conditions.",
        "Continue current medications. Return in 6 months.",
    ),
    (
        "Cough for 5 days with low-grade fever.",
        "Mild pharyngeal erythema, scattered rhonchi.",
        "Acute bronchitis, likely viral.",
        "Supportive care, fluids, return if worse.",
    ),
    (
        "Lower back pain after lifting, no radiation.",
        "Paraspinal tenderness, straight leg raise negative.",
        "Lumbar strain.",
        "NSAIDs, heat, physical therapy referral.",
    ),
    (
        "Home blood pressure readings around 145/90.",
        "BP elevated in office, no edema.",
        "Essential hypertension, not at goal.",
        "Increase lisinopril, recheck in 4 weeks.",
    ),
    (
        "Fatigue and increased thirst for 2 months.",
        "Weight up 6 lb, A1c 7.8%.",
        "Type 2 diabetes, suboptimal control.",
        "Start metformin, diabetes education, labs in 3 months.",
    ),
];
/// Medical problems and their ICD-10 codes, as `diagnosis` strings.
const PROBLEMS: &[(&str, &str)] = &[
    ("Essential hypertension", "ICD10:I10"),
    ("Type 2 diabetes mellitus", "ICD10:E11.9"),
    ("Hyperlipidemia", "ICD10:E78.5"),
    ("Asthma", "ICD10:J45.909"),
    ("Gastro-esophageal reflux disease", "ICD10:K21.9"),
    ("Major depressive disorder", "ICD10:F32.9"),
    ("Osteoarthritis of knee", "ICD10:M17.9"),
    ("Hypothyroidism", "ICD10:E03.9"),
    ("Chronic low back pain", "ICD10:M54.50"),
    ("Obesity", "ICD10:E66.9"),
];
/// Allergies with a reaction from the `reaction` list and a severity.
const ALLERGIES: &[(&str, &str, &str)] = &[
    ("Penicillin", "hives", "moderate"),
    ("Sulfa drugs", "hives", "mild"),
    ("Peanuts", "shortness_of_breath", "severe"),
    ("Latex", "hives", "mild"),
    ("Codeine", "nausea", "moderate"),
    ("Shellfish", "shortness_of_breath", "severe"),
    ("Aspirin", "unassessed", "mild"),
];
const MEDICATIONS: &[&str] = &[
    "Lisinopril 10 MG Oral Tablet",
    "Metformin 500 MG Oral Tablet",
    "Atorvastatin 20 MG Oral Tablet",
    "Levothyroxine 50 MCG Oral Tablet",
    "Albuterol 90 MCG Inhaler",
    "Omeprazole 20 MG Oral Capsule",
    "Sertraline 50 MG Oral Tablet",
    "Amlodipine 5 MG Oral Tablet",
    "Ibuprofen 400 MG Oral Tablet",
    "Hydrochlorothiazide 25 MG Oral Tablet",
];
const SURGERIES: &[(&str, &str)] = &[
    ("Appendectomy", "CPT4:44950"),
    ("Cholecystectomy", "CPT4:47562"),
    ("Total knee replacement", "CPT4:27447"),
    ("Cataract extraction", "CPT4:66984"),
    ("Tonsillectomy", "CPT4:42826"),
];
const DENTAL: &[&str] = &[
    "Dental caries",
    "Gingivitis",
    "Impacted wisdom tooth",
    "Cracked molar",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn generate(seed: u64, patients: u64) -> Tables {
        let mut rng = Gen::new(seed);
        let mut ids = Ids {
            pid: 1,
            ..Ids::default()
        };
        let mut tables = Tables::default();
        let staff = generate_staff(&mut rng, &mut ids, &mut tables, 2, 3);
        let mut encounters = 0;
        for _ in 0..patients {
            generate_patient(&mut rng, &staff, &mut ids, &mut tables, &mut encounters);
        }
        tables.number_encounters(1);
        tables
    }

    #[test]
    fn the_same_seed_gives_the_same_rows() {
        let a = generate(7, 20);
        let b = generate(7, 20);
        assert_eq!(a.patient.values, b.patient.values);
        assert_eq!(a.lists.values, b.lists.values);
        assert_eq!(a.forms.values, b.forms.values);
        let c = generate(8, 20);
        assert_ne!(a.patient.values, c.patient.values);
    }

    #[test]
    fn every_form_points_at_its_encounter_and_row() {
        let tables = generate(3, 50);
        let encounters = tables.encounter.len();
        assert!(encounters >= 50);
        let width = FORMS.len();
        let mut newpatient = 0;
        for row in tables.forms.values.chunks(width) {
            let SqlValue::Integer(number) = row[3] else {
                panic!("encounter number {:?}", row[3])
            };
            assert!(
                (1..=encounters as i64).contains(&number),
                "numbered {number}"
            );
            if row[11] == text("newpatient") {
                newpatient += 1;
            }
        }
        assert_eq!(newpatient, encounters, "one forms row per encounter");
        assert_eq!(
            tables.forms.len(),
            tables.encounter.len() + tables.vitals.len() + tables.soap.len()
        );
    }

    #[test]
    fn rows_look_like_plugin_rows() {
        let tables = generate(5, 10);
        let patient = &tables.patient.values[..PATIENT.len()];
        let SqlValue::Text(uuid) = &patient[1] else {
            panic!()
        };
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert_eq!(
            patient[2],
            SqlValue::Integer(1),
            "pids start at the sequence"
        );
        assert_eq!(patient[3], text("1"), "pubpid is the pid");
        let SqlValue::Text(dob) = &patient[8] else {
            panic!()
        };
        assert_eq!(dob.len(), 10, "DOB is YYYY-MM-DD");
        let SqlValue::Text(date) = &patient[23] else {
            panic!()
        };
        assert_eq!(date.len(), 19, "dates are YYYY-MM-DD HH:MM:SS");
        for kind in &tables.list_types {
            assert!(
                [
                    "medical_problem",
                    "allergy",
                    "medication",
                    "surgery",
                    "dental"
                ]
                .contains(kind)
            );
        }
    }

    #[test]
    fn plain_progress_lines_say_how_far_and_how_long() {
        assert_eq!(
            plain_line("default", 20_000, 100_000, Duration::from_millis(12_340)),
            "seeding default: 20000/100000 patients (20%), 12.3 s"
        );
        assert_eq!(
            plain_line("x", 7, 7, Duration::ZERO),
            "seeding x: 7/7 patients (100%), 0.0 s"
        );
    }
}
