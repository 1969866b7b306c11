//! Synthetic demo data: `hearth demo seed` fills a site with realistic patients and their
//! encounters, vitals, SOAP notes, medical problems, allergies, medications, surgeries,
//! dental issues, appointments, immunizations and documents (small real PDFs and PNGs),
//! plus the facilities and practitioners they refer to.
//!
//! The rows are the rows the clinical plugins write, built with the same definitions
//! (`hearth-emr`'s [`Form`](hearth_emr::Form)s and [`Issues`](hearth_emr::Issues), its
//! `forms` registration, new-patient row and `GROUP`, the SDK's
//! [`comb_uuid`](hearth_sdk::comb_uuid)), with `pid`s and encounter numbers from the
//! site's `sequences` and OpenEMR's date formats, so every plugin serves them as if they
//! had come through the API. The data depends only on the seed and the number of
//! patients: the same command on an empty site writes the same rows.
//!
//! This crate is not part of the server: the `hearth` binary calls [`seed`] for
//! `hearth demo seed`, giving it the site's database as a [`Database`]. Speed comes from
//! big transactions (one per [`SeedOptions::batch`] patients) of multi-row `INSERT`s with
//! explicit ids, on SQLite and PostgreSQL alike. Each batch commits on its own: an
//! interrupted run keeps the whole batches before it and nothing of the batch it was in.

use std::future::Future;

use anyhow::{Context, Result, bail};
use hearth_emr::{Form, Issues};
use hearth_sdk::Value;
use hearth_sdk::sql::{Insert, ident};

mod data;
pub mod files;
mod generate;
mod insurance;
mod progress;

pub use progress::{Progress, plain_line};

use generate::{Gen, Staff};

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
    /// `history_data` rows (tobacco use: the smoking status).
    pub smoking_statuses: u64,
    /// `openemr_postcalendar_events` rows (appointments over the year around the
    /// reference day).
    pub appointments: u64,
    /// `immunizations` rows (CVX-coded vaccines).
    pub immunizations: u64,
    /// Care plan forms (`forms` rows of formdir `care_plan` with their `form_care_plan`
    /// rows).
    pub care_plans: u64,
    /// `form_care_plan` rows of type `goal`.
    pub goals: u64,
    /// `care_teams` rows (each with two `care_team_member` rows).
    pub care_teams: u64,
    /// `lists` rows of type `medical_device` (implants with their UDI).
    pub devices: u64,
    /// `questionnaire_response` rows (PHQ-2 screenings).
    pub questionnaire_responses: u64,
    /// `pnotes` rows (messages about patients).
    pub messages: u64,
    /// `transactions` rows (referrals, with their `lbt_data` fields).
    pub transactions: u64,
    /// `insurance_companies` rows (each with its `addresses` row).
    pub insurance_companies: u64,
    /// `insurance_data` rows (one or two policies per patient).
    pub insurance_policies: u64,
    /// `employer_data` rows.
    pub employers: u64,
    /// `contact_relation` rows (each with its `person`, `contact` and phone): the
    /// patients' emergency contacts, FHIR RelatedPersons.
    pub related_persons: u64,
    /// `drugs` rows (the formulary, RxNorm and NDC coded).
    pub drugs: u64,
    /// `prescriptions` rows.
    pub prescriptions: u64,
    /// `drug_sales` rows (dispenses of prescriptions).
    pub dispenses: u64,
    /// `procedure_order` rows (laboratory orders).
    pub procedure_orders: u64,
    /// `procedure_result` rows (LOINC-coded laboratory results).
    pub lab_results: u64,
    /// `documents` rows (small PDFs and PNGs, each with its bytes and category).
    pub documents: u64,
}

impl Summary {
    /// Every row written.
    pub fn rows(&self) -> u64 {
        self.lines().iter().map(|(_, count)| count).sum()
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
            ("smoking statuses", self.smoking_statuses),
            ("appointments", self.appointments),
            ("immunizations", self.immunizations),
            ("care plans", self.care_plans),
            ("goals", self.goals),
            ("care teams", self.care_teams),
            ("implantable devices", self.devices),
            ("questionnaire responses", self.questionnaire_responses),
            ("messages", self.messages),
            ("transactions", self.transactions),
            ("insurance companies", self.insurance_companies),
            ("insurance policies", self.insurance_policies),
            ("employers", self.employers),
            ("related persons", self.related_persons),
            ("drugs", self.drugs),
            ("prescriptions", self.prescriptions),
            ("dispenses", self.dispenses),
            ("laboratory orders", self.procedure_orders),
            ("laboratory results", self.lab_results),
            ("documents", self.documents),
        ]
    }
}

/// The most patients one run may add.
pub const MAX_PATIENTS: u64 = 10_000_000;

/// Parameters per statement: under SQLite's 32,766 and PostgreSQL's 65,535.
const MAX_PARAMS: usize = 10_000;

/// The SQL a [`Database`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite: anonymous `?` placeholders.
    Sqlite,
    /// PostgreSQL: `$N` placeholders, identity sequences.
    Postgres,
}

/// A site's database as the seed writes it: one write transaction per batch. The host
/// gives its own database layer this shape; errors carry the database's message.
pub trait Database {
    /// A write transaction.
    type Tx: Transaction;

    /// Which SQL it speaks.
    fn dialect(&self) -> Dialect;

    /// Begins a write transaction (on SQLite, holding the write lock from the start).
    fn begin(&self) -> impl Future<Output = Result<Self::Tx>>;
}

/// A write transaction of a [`Database`].
pub trait Transaction {
    /// Runs a statement that answers no rows.
    fn execute(&mut self, sql: &str, params: Vec<Value>) -> impl Future<Output = Result<()>>;

    /// Runs a statement and answers its rows, each as its values in column order.
    fn query(
        &mut self,
        sql: &str,
        params: Vec<Value>,
    ) -> impl Future<Output = Result<Vec<Vec<Value>>>>;

    /// Commits.
    fn commit(self) -> impl Future<Output = Result<()>>;
}

/// Seeds the site behind `db`; `progress(done, total)` is called after each committed
/// batch.
pub async fn seed<D: Database>(
    db: &D,
    options: &SeedOptions,
    mut progress: impl FnMut(u64, u64),
) -> Result<Summary> {
    if options.patients == 0 || options.patients > MAX_PATIENTS {
        bail!("--patients must be between 1 and {MAX_PATIENTS}");
    }
    let dialect = db.dialect();
    let batch = options.batch.max(1);
    let mut rng = Gen::new(options.seed);
    let mut summary = Summary::default();

    // Facilities and practitioners first, in a transaction of their own.
    let facilities = (options.patients / 5_000).clamp(2, 50);
    let practitioners = (options.patients / 200).clamp(3, 500);
    let mut tx = begin(db).await?;
    let mut ids = Ids::reserve(&mut tx, dialect).await?;
    let mut tables = Tables::default();
    let mut staff = Staff::generate(&mut rng, &mut ids, &mut tables, facilities, practitioners);
    let insurance_companies = tables.insurance_companies.len();
    tables.orders.count(&mut summary);
    tables.write(&mut tx, dialect).await?;
    staff.questionnaire = generate::care::questionnaires(&mut tx, "2025-06-30 08:00:00").await?;
    finish(tx, dialect).await?;
    summary.facilities = facilities;
    summary.practitioners = practitioners;
    summary.insurance_companies = insurance_companies;

    let mut done = 0;
    while done < options.patients {
        let count = batch.min(options.patients - done);
        let mut tx = begin(db).await?;
        let mut ids = Ids::reserve(&mut tx, dialect).await?;
        ids.pid = take_sequence(&mut tx, "pid", count as i64).await?;
        let mut tables = Tables::default();
        for _ in 0..count {
            generate::patient(&mut rng, &staff, &mut ids, &mut tables);
        }
        // Encounter numbers are unique across the site: take them in one block.
        let first = take_sequence(&mut tx, "encounter", tables.encounters as i64).await?;
        tables.number_encounters(first);
        tables.count(&mut summary);
        tables.write(&mut tx, dialect).await?;
        finish(tx, dialect).await?;
        done += count;
        progress(done, options.patients);
    }
    Ok(summary)
}

async fn begin<D: Database>(db: &D) -> Result<D::Tx> {
    let mut tx = db.begin().await.context("starting a transaction")?;
    if db.dialect() == Dialect::Sqlite {
        // SQLite's default 2 MB page cache thrashes on indexes of a few million rows;
        // the cache grows only as pages are used.
        tx.execute("PRAGMA cache_size = -262144", vec![])
            .await
            .context("sizing the page cache")?;
    }
    Ok(tx)
}

/// Commits, after moving PostgreSQL's identity counters past the explicit ids.
async fn finish(mut tx: impl Transaction, dialect: Dialect) -> Result<()> {
    if dialect == Dialect::Postgres {
        let tables = ID_TABLES
            .iter()
            .chain(&[
                HISTORY_DATA,
                INSURANCE_COMPANIES,
                PERSONS,
                CONTACTS,
                DOCUMENTS,
            ])
            .map(|t| (*t, "id"));
        let care = generate::care::ID_TABLES.iter().copied();
        let tables = tables.chain([(APPOINTMENTS, "pc_eid")]).chain(care);
        for (table, id) in tables.chain(generate::orders::KEYS.iter().copied()) {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{id}'), (SELECT MAX({id}) FROM {table})) AS v \
                 WHERE EXISTS (SELECT 1 FROM {table})"
            );
            tx.query(&sql, vec![])
                .await
                .with_context(|| format!("advancing the ids of {table}"))?;
        }
    }
    tx.commit().await.context("committing")
}

/// The tables whose ids the seed assigns itself, with identity columns on PostgreSQL.
const ID_TABLES: [&str; 9] = [
    "facility",
    "users",
    "patient_data",
    Form::ENCOUNTER.table,
    "forms",
    Form::VITALS.table,
    Form::SOAP.table,
    "lists",
    IMMUNIZATIONS,
];

/// The table that links problems to encounters; its ids are the seed's too.
const ISSUE_ENCOUNTER: &str = "issue_encounter";

/// Social history (tobacco use); its ids are the seed's too.
const HISTORY_DATA: &str = "history_data";

/// Immunizations; their ids are the seed's too.
const IMMUNIZATIONS: &str = "immunizations";

/// Insurance companies; their ids are the seed's too (policies name them).
const INSURANCE_COMPANIES: &str = "insurance_companies";

/// Related persons and their contact entities; their ids are the seed's too (relations
/// name them).
const PERSONS: &str = "person";
const CONTACTS: &str = "contact";
/// Patient documents; their ids are the seed's too. Each has a category link and its
/// bytes, as the document plugin stores them (see `hearth_emr::documents`).
const DOCUMENTS: &str = "documents";
const DOCUMENT_LINKS: &str = "categories_to_documents";
const DOCUMENT_CONTENTS: &str = "document_contents";

/// Appointments; their `pc_eid`s are the seed's too.
const APPOINTMENTS: &str = "openemr_postcalendar_events";

/// The next id of each table the seed writes, in the order of [`ID_TABLES`].
#[derive(Debug, Default)]
pub(crate) struct Ids {
    pub(crate) facility: i64,
    pub(crate) users: i64,
    pub(crate) patient_data: i64,
    pub(crate) form_encounter: i64,
    pub(crate) forms: i64,
    pub(crate) form_vitals: i64,
    pub(crate) form_soap: i64,
    pub(crate) lists: i64,
    pub(crate) immunizations: i64,
    pub(crate) issue_encounter: i64,
    pub(crate) history_data: i64,
    pub(crate) documents: i64,
    /// The next `pc_eid` of `openemr_postcalendar_events`.
    pub(crate) appointment: i64,
    /// The next ids of the care tables.
    pub(crate) care: generate::care::Ids,
    /// The next id of `insurance_companies`.
    pub(crate) insurance_company: i64,
    /// The next ids of `person` and `contact`.
    pub(crate) person: i64,
    pub(crate) contact: i64,
    /// The next pid (from the `pid` sequence).
    pub(crate) pid: i64,
    /// The next keys of the order and medication tables.
    pub(crate) orders: generate::orders::OrderIds,
}

impl Ids {
    /// Reads the highest ids. On PostgreSQL the tables are locked against other writers
    /// first (readers go on), so ids cannot collide with API writes meanwhile; SQLite's
    /// write transaction already excludes them.
    async fn reserve(tx: &mut impl Transaction, dialect: Dialect) -> Result<Ids> {
        if dialect == Dialect::Postgres {
            let care = generate::care::ID_TABLES.iter().map(|(t, _)| *t);
            let others: Vec<&str> = care
                .chain(generate::orders::KEYS.iter().map(|(t, _)| *t))
                .collect();
            let sql = format!(
                "LOCK TABLE {}, {ISSUE_ENCOUNTER}, {HISTORY_DATA}, {APPOINTMENTS}, {INSURANCE_COMPANIES}, \
                 {PERSONS}, {CONTACTS}, {DOCUMENTS}, {DOCUMENT_LINKS}, {DOCUMENT_CONTENTS}, {} IN EXCLUSIVE MODE",
                ID_TABLES.join(", "),
                others.join(", ")
            );
            tx.execute(&sql, vec![])
                .await
                .context("locking the tables")?;
        }
        let [
            facility,
            users,
            patient_data,
            form_encounter,
            forms,
            form_vitals,
            form_soap,
            lists,
            immunizations,
        ] = ID_TABLES;
        Ok(Ids {
            facility: next_id(tx, facility).await?,
            users: next_id(tx, users).await?,
            patient_data: next_id(tx, patient_data).await?,
            form_encounter: next_id(tx, form_encounter).await?,
            forms: next_id(tx, forms).await?,
            form_vitals: next_id(tx, form_vitals).await?,
            form_soap: next_id(tx, form_soap).await?,
            lists: next_id(tx, lists).await?,
            immunizations: next_id(tx, immunizations).await?,
            issue_encounter: next_id(tx, ISSUE_ENCOUNTER).await?,
            history_data: next_id(tx, HISTORY_DATA).await?,
            documents: next_id(tx, DOCUMENTS).await?,
            appointment: next_key(tx, APPOINTMENTS, "pc_eid").await?,
            care: generate::care::Ids::reserve(tx).await?,
            insurance_company: next_id(tx, INSURANCE_COMPANIES).await?,
            person: next_id(tx, PERSONS).await?,
            contact: next_id(tx, CONTACTS).await?,
            pid: 0,
            orders: generate::orders::OrderIds::reserve(tx).await?,
        })
    }
}

/// One more than the highest id of `table`.
pub(crate) async fn next_id(tx: &mut impl Transaction, table: &str) -> Result<i64> {
    next_key(tx, table, "id").await
}

/// One more than the highest `key` of `table`.
pub(crate) async fn next_key(tx: &mut impl Transaction, table: &str, key: &str) -> Result<i64> {
    let sql = format!("SELECT COALESCE(MAX({key}), 0) AS m FROM {table}");
    let rows = tx
        .query(&sql, vec![])
        .await
        .with_context(|| format!("reading the ids of {table}"))?;
    match rows.first().and_then(|row| row.first()) {
        Some(Value::Integer(max)) => Ok(max + 1),
        other => bail!("unexpected MAX(id) of {table}: {other:?}"),
    }
}

/// Advances the counter `name` by `count`; answers the first value taken.
async fn take_sequence(tx: &mut impl Transaction, name: &str, count: i64) -> Result<i64> {
    if count == 0 {
        return Ok(0);
    }
    let rows = tx
        .query(
            "UPDATE sequences SET value = value + $1 WHERE name = $2 RETURNING value",
            vec![Value::Integer(count), Value::Text(name.to_owned())],
        )
        .await
        .with_context(|| format!("taking from the sequence {name}"))?;
    match rows.first().and_then(|row| row.first()) {
        Some(Value::Integer(last)) => Ok(last - count + 1),
        _ => bail!("the sequence {name} is missing"),
    }
}

/// The rows of one table, gathered from one [`Insert`] per row (as the plugins build
/// them) and written as multi-row `INSERT`s. Every row sets the same columns in the same
/// order; the first row names them.
pub(crate) struct Batch {
    table: &'static str,
    columns: Vec<String>,
    values: Vec<Value>,
    /// A row that did not fit: written nowhere, reported by [`Batch::write`].
    misfit: Option<String>,
}

impl Batch {
    pub(crate) fn new(table: &'static str) -> Batch {
        Batch {
            table,
            columns: Vec::new(),
            values: Vec::new(),
            misfit: None,
        }
    }

    /// Adds a row.
    pub(crate) fn push(&mut self, row: Insert) {
        if self.columns.is_empty() {
            self.columns = row.columns().to_vec();
        }
        if row.table() != self.table || row.columns() != self.columns {
            self.misfit.get_or_insert_with(|| {
                format!(
                    "a row of {} with columns {:?} in a batch of {} with columns {:?}",
                    row.table(),
                    row.columns(),
                    self.table,
                    self.columns
                )
            });
            return;
        }
        self.values.extend(row.into_values());
    }

    /// How many rows it holds.
    pub(crate) fn len(&self) -> u64 {
        (self.values.len() / self.columns.len().max(1)) as u64
    }

    /// The values of `column` (unquoted), row by row.
    #[cfg(test)]
    pub(crate) fn column(&self, column: &str) -> Vec<&Value> {
        let width = self.columns.len();
        let at = self
            .columns
            .iter()
            .position(|c| *c == ident(column))
            .unwrap_or_else(|| panic!("{} has no column {column}", self.table));
        self.values.chunks(width).map(|row| &row[at]).collect()
    }

    /// Writes the rows. SQLite gets anonymous `?` placeholders, which it numbers in
    /// order: a numbered one (`$N` or `?N`) is a name, and SQLite finds a name's number,
    /// or a number's name, by walking a list of them, so compiling and binding a
    /// statement with thousands of them is quadratic (the binding alone took 92 % of a
    /// seed's time with `?N`). PostgreSQL gets `$N`.
    pub(crate) async fn write(
        &mut self,
        tx: &mut impl Transaction,
        dialect: Dialect,
    ) -> Result<()> {
        if let Some(misfit) = &self.misfit {
            bail!("seeding {}: {misfit}", self.table);
        }
        let width = self.columns.len();
        if width == 0 {
            return Ok(());
        }
        let numbered = dialect == Dialect::Postgres;
        let per_statement = (MAX_PARAMS / width).max(1);
        let head = format!(
            "INSERT INTO {} ({}) VALUES ",
            self.table,
            self.columns.join(", ")
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
                .with_context(|| format!("seeding {}", self.table))?;
        }
        Ok(())
    }
}

/// One batch of rows, in the order foreign keys need them.
pub(crate) struct Tables {
    pub(crate) facility: Batch,
    pub(crate) users: Batch,
    pub(crate) patient: Batch,
    pub(crate) encounter: Batch,
    pub(crate) forms: Batch,
    pub(crate) vitals: Batch,
    pub(crate) soap: Batch,
    pub(crate) lists: Batch,
    pub(crate) issue_encounter: Batch,
    pub(crate) history: Batch,
    pub(crate) appointments: Batch,
    pub(crate) immunizations: Batch,
    /// Care plans, care teams, devices, questionnaire responses, messages, transactions.
    pub(crate) care: generate::care::Batches,
    pub(crate) insurance_companies: Batch,
    pub(crate) addresses: Batch,
    pub(crate) insurance: Batch,
    pub(crate) employers: Batch,
    pub(crate) persons: Batch,
    pub(crate) contacts: Batch,
    pub(crate) relations: Batch,
    pub(crate) telecoms: Batch,
    /// Orders, results, drugs, prescriptions and dispenses.
    pub(crate) orders: generate::orders::OrderTables,
    pub(crate) documents: Batch,
    pub(crate) document_links: Batch,
    pub(crate) document_contents: Batch,
    /// The type of each `lists` row, for the summary.
    pub(crate) list_types: Vec<Issues>,
    /// Encounters in the batch so far (numbered with placeholders, see
    /// [`Tables::placeholder`]).
    pub(crate) encounters: usize,
}

impl Default for Tables {
    fn default() -> Self {
        Tables {
            facility: Batch::new("facility"),
            users: Batch::new("users"),
            patient: Batch::new("patient_data"),
            encounter: Batch::new(Form::ENCOUNTER.table),
            forms: Batch::new("forms"),
            vitals: Batch::new(Form::VITALS.table),
            soap: Batch::new(Form::SOAP.table),
            lists: Batch::new("lists"),
            issue_encounter: Batch::new(ISSUE_ENCOUNTER),
            history: Batch::new(HISTORY_DATA),
            appointments: Batch::new(APPOINTMENTS),
            immunizations: Batch::new(IMMUNIZATIONS),
            care: generate::care::Batches::default(),
            insurance_companies: Batch::new(INSURANCE_COMPANIES),
            addresses: Batch::new("addresses"),
            insurance: Batch::new("insurance_data"),
            employers: Batch::new("employer_data"),
            persons: Batch::new(PERSONS),
            contacts: Batch::new(CONTACTS),
            relations: Batch::new("contact_relation"),
            telecoms: Batch::new("contact_telecom"),
            orders: generate::orders::OrderTables::default(),
            documents: Batch::new(DOCUMENTS),
            document_links: Batch::new(DOCUMENT_LINKS),
            document_contents: Batch::new(DOCUMENT_CONTENTS),
            list_types: Vec::new(),
            encounters: 0,
        }
    }
}

impl Tables {
    /// A placeholder number for the batch's next encounter: `-(n + 1)` for the n-th, until
    /// [`Tables::number_encounters`] knows where the site's sequence stands.
    pub(crate) fn placeholder(&mut self) -> i64 {
        self.encounters += 1;
        -(self.encounters as i64)
    }

    /// Replaces placeholder encounter numbers with numbers from `first` on.
    pub(crate) fn number_encounters(&mut self, first: i64) {
        let mut batches = vec![
            (&mut self.encounter, "encounter"),
            (&mut self.forms, "encounter"),
            (&mut self.issue_encounter, "encounter"),
            (&mut self.care.plans, "encounter"),
        ];
        batches.extend(self.orders.encounter_columns());
        for (batch, column) in batches {
            let column = ident(column);
            let width = batch.columns.len();
            let Some(at) = batch.columns.iter().position(|c| *c == column) else {
                continue;
            };
            for row in batch.values.chunks_mut(width) {
                if let Value::Integer(n) = row[at]
                    && n < 0
                {
                    row[at] = Value::Integer(first + (-n - 1));
                }
            }
        }
    }

    fn count(&self, summary: &mut Summary) {
        summary.patients += self.patient.len();
        summary.encounters += self.encounter.len();
        summary.vitals += self.vitals.len();
        summary.soap_notes += self.soap.len();
        summary.forms += self.forms.len();
        summary.issue_encounters += self.issue_encounter.len();
        summary.smoking_statuses += self.history.len();
        summary.appointments += self.appointments.len();
        summary.immunizations += self.immunizations.len();
        self.care.count(summary);
        summary.insurance_companies += self.insurance_companies.len();
        summary.insurance_policies += self.insurance.len();
        summary.employers += self.employers.len();
        summary.related_persons += self.relations.len();
        self.orders.count(summary);
        summary.documents += self.documents.len();
        for issues in &self.list_types {
            let count = match *issues {
                Issues::MEDICAL_PROBLEMS => &mut summary.medical_problems,
                Issues::ALLERGIES => &mut summary.allergies,
                Issues::MEDICATIONS => &mut summary.medications,
                Issues::SURGERIES => &mut summary.surgeries,
                _ => &mut summary.dental_issues,
            };
            *count += 1;
        }
    }

    async fn write(&mut self, tx: &mut impl Transaction, dialect: Dialect) -> Result<()> {
        for batch in [
            &mut self.facility,
            &mut self.users,
            &mut self.patient,
            &mut self.encounter,
            &mut self.vitals,
            &mut self.soap,
            &mut self.forms,
            &mut self.lists,
            &mut self.issue_encounter,
            &mut self.history,
            &mut self.appointments,
            &mut self.immunizations,
            &mut self.insurance_companies,
            &mut self.addresses,
            &mut self.insurance,
            &mut self.employers,
            &mut self.persons,
            &mut self.contacts,
            &mut self.relations,
            &mut self.telecoms,
            &mut self.documents,
            &mut self.document_links,
            &mut self.document_contents,
        ] {
            batch.write(tx, dialect).await?;
        }
        self.care.write(tx, dialect).await?;
        for batch in self.orders.batches() {
            batch.write(tx, dialect).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::request::is_uuid;

    fn generate(seed: u64, patients: u64) -> Tables {
        let mut rng = Gen::new(seed);
        let mut ids = Ids {
            pid: 1,
            ..Ids::default()
        };
        let mut tables = Tables::default();
        let staff = Staff::generate(&mut rng, &mut ids, &mut tables, 2, 3);
        for _ in 0..patients {
            generate::patient(&mut rng, &staff, &mut ids, &mut tables);
        }
        tables.number_encounters(1);
        tables
    }

    fn text(value: &Value) -> &str {
        match value {
            Value::Text(text) => text,
            other => panic!("not text: {other:?}"),
        }
    }

    fn int(value: &Value) -> i64 {
        match value {
            Value::Integer(n) => *n,
            other => panic!("not an integer: {other:?}"),
        }
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
        for number in tables.forms.column("encounter") {
            assert!(
                (1..=encounters as i64).contains(&int(number)),
                "numbered {number:?}"
            );
        }
        let formdirs = tables.forms.column("formdir");
        let count = |form: Form| formdirs.iter().filter(|d| text(d) == form.formdir).count();
        assert_eq!(
            count(Form::ENCOUNTER) as u64,
            encounters,
            "one per encounter"
        );
        assert_eq!(count(Form::VITALS) as u64, tables.vitals.len());
        assert_eq!(count(Form::SOAP) as u64, tables.soap.len());
        assert_eq!(
            tables.forms.len(),
            tables.encounter.len()
                + tables.vitals.len()
                + tables.soap.len()
                + tables.care.plan_forms
        );
        // Each vitals row is registered once, under its own id.
        let mut registered: Vec<i64> = tables
            .forms
            .column("form_id")
            .into_iter()
            .zip(&formdirs)
            .filter(|(_, dir)| text(dir) == Form::VITALS.formdir)
            .map(|(id, _)| int(id))
            .collect();
        registered.sort_unstable();
        let ids: Vec<i64> = tables.vitals.column("id").into_iter().map(int).collect();
        assert_eq!(registered, ids);
    }

    #[test]
    fn rows_are_built_as_the_plugins_build_them() {
        let tables = generate(5, 10);
        let uuid = text(tables.patient.column("uuid")[0]);
        assert!(is_uuid(uuid) && &uuid[14..15] == "4", "{uuid}");
        assert_eq!(
            int(tables.patient.column("pid")[0]),
            1,
            "pids start at the sequence"
        );
        assert_eq!(
            text(tables.patient.column("pubpid")[0]),
            "1",
            "pubpid is the pid"
        );
        assert_eq!(
            text(tables.patient.column("DOB")[0]).len(),
            10,
            "YYYY-MM-DD"
        );
        assert_eq!(text(tables.patient.column("date")[0]).len(), 19);
        // The plugins' builders set the group and the stamps.
        for batch in [&tables.forms, &tables.vitals, &tables.soap, &tables.lists] {
            for group in batch.column("groupname") {
                assert_eq!(text(group), hearth_emr::GROUP, "{}", batch.table);
            }
        }
        let dates = tables.lists.column("date");
        assert_eq!(dates, tables.lists.column("modifydate"));
        assert_eq!(
            tables.vitals.column("date"),
            tables.vitals.column("last_updated")
        );
        let kinds = tables.lists.column("type");
        assert_eq!(kinds.len(), tables.list_types.len());
        for (kind, issues) in kinds.iter().zip(&tables.list_types) {
            assert_eq!(text(kind), issues.kind);
        }
        // Uuids come in creation order, so unique indexes grow at one end.
        let uuids: Vec<&str> = tables.lists.column("uuid").into_iter().map(text).collect();
        assert!(uuids.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn a_row_with_other_columns_is_refused_at_write() {
        let mut batch = Batch::new("lists");
        let mut first = Insert::into("lists");
        first.set("id", 1).set("title", "a");
        batch.push(first);
        let mut other = Insert::into("lists");
        other.set("title", "b").set("id", 2);
        batch.push(other);
        assert_eq!(batch.len(), 1, "the misfit is not added");
        assert!(
            batch
                .misfit
                .as_deref()
                .is_some_and(|m| m.contains("a row of lists"))
        );
    }

    #[test]
    fn every_patient_has_a_primary_policy_with_a_seeded_company() {
        let tables = generate(7, 40);
        let companies: Vec<i64> = tables
            .insurance_companies
            .column("id")
            .into_iter()
            .map(int)
            .collect();
        assert_eq!(companies.len() as u64, tables.addresses.len());
        let pids = tables.insurance.column("pid");
        let kinds = tables.insurance.column("type");
        let dates = tables.insurance.column("date");
        let mut keys = std::collections::HashSet::new();
        for (i, provider) in tables.insurance.column("provider").into_iter().enumerate() {
            assert!(companies.contains(&int(provider)));
            let key = (int(pids[i]), text(kinds[i]), text(dates[i]));
            assert!(keys.insert(key), "OpenEMR's (pid, type, date) key holds");
        }
        for pid in tables.patient.column("pid") {
            let primary = (0..pids.len()).any(|i| pids[i] == pid && text(kinds[i]) == "primary");
            assert!(primary, "patient {pid:?} has a primary policy");
        }
        assert!(tables.employers.len() > 0 && tables.employers.len() < 40);
        let persons = tables.persons.column("id");
        assert_eq!(tables.contacts.column("foreign_id"), persons);
        assert_eq!(tables.relations.len(), tables.persons.len());
        assert!(tables.relations.len() > 0);
    }

    #[test]
    fn the_summary_adds_up_every_table() {
        let summary = Summary {
            facilities: 2,
            practitioners: 3,
            patients: 10,
            forms: 7,
            issue_encounters: 1,
            ..Summary::default()
        };
        assert_eq!(summary.rows(), 23);
        assert_eq!(summary.lines().len(), 33);
    }

    #[test]
    fn documents_are_real_files_stored_with_their_checksums() {
        let tables = generate(3, 40);
        assert!(tables.documents.len() > 10, "{}", tables.documents.len());
        assert_eq!(tables.document_contents.len(), tables.documents.len());
        assert_eq!(tables.document_links.len(), tables.documents.len());
        let hashes = tables.documents.column("hash");
        let types = tables.documents.column("mimetype");
        for ((hash, kind), data) in hashes
            .iter()
            .zip(types)
            .zip(tables.document_contents.column("data"))
        {
            let Value::Blob(bytes) = data else {
                panic!("bytes are a blob: {data:?}");
            };
            let expected = match kind {
                Value::Text(t) if t == "application/pdf" => &b"%PDF-1.4"[..],
                _ => &b"\x89PNG\r\n\x1a\n"[..],
            };
            assert!(bytes.starts_with(expected), "{kind:?}");
            assert_eq!(
                **hash,
                Value::Text(hearth_emr::documents::sha256_hex(bytes))
            );
        }
    }
}
