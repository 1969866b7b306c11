//! OpenEMR's domain for Hearth plugins, on top of the generic `hearth-sdk`: its shared
//! clinical tables, as many plugins use them, the table routes of [`crud`], and the
//! route macros of the issue lists. `use hearth_emr::prelude::*` brings the SDK's prelude,
//! [`crud`] and this crate as `emr`.
//!
//!
//! - **Patients** (`patient_data`): routes name a patient by uuid (`:puuid`) or by the
//!   legacy number (`:pid`); [`path_patient`], [`path_pid`] and [`portal_patient`] turn
//!   either into a [`Patient`], or a 404 when there is none, before anything is written.
//! - **Encounters** (`form_encounter`): [`require_encounter`] checks that an encounter
//!   number belongs to the patient in the path.
//! - **Encounter forms** (`forms` plus a `form_<formdir>` table, e.g. vitals and SOAP
//!   notes): [`EncounterForm`] lists, reads, creates and updates them, always scoped by
//!   the patient and encounter in the path.
//! - **Issues** (`lists`, one `type` per kind: `medical_problem`, `allergy`,
//!   `medication`, ...): [`Issues`] writes rows of one type, scoped by the patient.
//! - **Sequences**: [`next_sequence`] takes the next encounter number (and the like).
//!
//! A plugin that uses a helper declares the tables it touches in `READS`/`WRITES`
//! (`patient_data` for the patient lookups, `form_encounter` for encounters, `forms` and
//! the form table, `lists`, `sequences`).

use hearth_sdk::json::Json;
use hearth_sdk::request::Request;
use hearth_sdk::response::{ApiError, Response, Result};
use hearth_sdk::sql::{Column, Delete, Fields, Insert, Search, Sort, SortKey, Update};
use hearth_sdk::store::{self, Row, Value};
use hearth_sdk::time;
use hearth_sdk::validate::Validator;
use hearth_sdk::{new_uuid, params};

pub mod crud;
pub mod documents;
pub mod patients;

pub use patients::*;

#[doc(hidden)]
pub use hearth_sdk as __sdk;

/// The SDK's prelude, [`crud`], and this crate as `emr`, for `use hearth_emr::prelude::*`.
pub mod prelude {
    pub use crate as emr;
    pub use crate::crud;
    pub use hearth_sdk::prelude::*;
}

/// The group OpenEMR writes into `groupname` columns; Hearth has one provider group.
pub const GROUP: &str = "Default";

/// The keys every stored record answers with: `id` and `uuid`, for response schemas
/// ([`hearth_sdk::apidocs::Schema::Row`]).
pub const IDS: &[Column] = &[Column::int("id"), Column::text("uuid")];

/// The paging and sorting query parameters of OpenEMR's lists, for route documentation.
pub const LIST_PARAMS: &[hearth_sdk::apidocs::Param] = &[
    hearth_sdk::apidocs::Param::query(
        "_sort",
        hearth_sdk::apidocs::Schema::String,
        "Comma-separated field names; a leading - sorts descending",
    ),
    hearth_sdk::apidocs::Param::query(
        "_limit",
        hearth_sdk::apidocs::Schema::Numeric,
        "Rows per page (every row when absent)",
    ),
    hearth_sdk::apidocs::Param::query(
        "_offset",
        hearth_sdk::apidocs::Schema::Numeric,
        "Rows to skip",
    ),
];

/// `{"id"}`: what creating (or updating) a numbered record answers.
pub const CREATED_ID: hearth_sdk::apidocs::Schema =
    hearth_sdk::apidocs::Schema::Object(&[hearth_sdk::apidocs::Prop::new(
        "id",
        hearth_sdk::apidocs::Schema::Integer,
    )
    .required()]);

/// `{"uuid"}`: what deleting a uuid-keyed record answers.
pub const DELETED_UUID: hearth_sdk::apidocs::Schema =
    hearth_sdk::apidocs::Schema::Object(&[hearth_sdk::apidocs::Prop::new(
        "uuid",
        hearth_sdk::apidocs::Schema::Format("uuid"),
    )
    .required()]);

/// `{"id", "uuid"}`: what creating a uuid-keyed record answers.
pub const CREATED_ID_UUID: hearth_sdk::apidocs::Schema = hearth_sdk::apidocs::Schema::Object(&[
    hearth_sdk::apidocs::Prop::new("id", hearth_sdk::apidocs::Schema::Integer).required(),
    hearth_sdk::apidocs::Prop::new("uuid", hearth_sdk::apidocs::Schema::Format("uuid")).required(),
]);

/// A 404 unless encounter number `eid` exists and belongs to patient `pid`.
pub fn require_encounter(pid: i64, eid: i64) -> Result<()> {
    let sql = "SELECT 1 AS found FROM form_encounter WHERE pid = $1 AND encounter = $2";
    store::query_one(sql, params![pid, eid])?
        .map(|_| ())
        .ok_or(ApiError::NotFound)
}

/// Takes the next value of the counter `name` in `sequences` (seeded by the migration
/// that owns the counter). Concurrent requests serialise on the row, so numbers are
/// never handed out twice.
pub fn next_sequence(name: &str) -> Result<i64> {
    let sql = "UPDATE sequences SET value = value + 1 WHERE name = $1 RETURNING value";
    store::query_one(sql, params![name])?
        .and_then(|row| row.int("value"))
        .ok_or_else(|| ApiError::Internal(format!("the sequence {name} is missing")))
}

/// Registers a form row of an encounter in `forms` (OpenEMR's `addForm`), written by the
/// caller, and answers the new `forms.id` (the `fid` OpenEMR returns).
pub fn add_form(req: &Request, pid: i64, encounter: i64, form_id: i64, form: &Form) -> Result<i64> {
    form.registration(
        new_uuid(),
        time::now().datetime(),
        Written {
            pid,
            by: req.caller().username.as_str(),
        },
        encounter,
        form_id,
    )
    .insert_id()
}

/// Whose row a new row is and who wrote it: the `pid` and `user` columns of forms and
/// issues.
#[derive(Debug, Clone, Copy)]
pub struct Written<'a> {
    /// The patient's `pid`.
    pub pid: i64,
    /// The user name of the writer (`user`).
    pub by: &'a str,
}

impl Written<'_> {
    /// Sets the columns every encounter form row and `forms` row has: `pid`, `user`,
    /// `groupname` ([`GROUP`]) and `authorized`.
    fn authorized<'i>(&self, insert: &'i mut Insert) -> &'i mut Insert {
        insert
            .set("pid", self.pid)
            .set("user", self.by)
            .set("groupname", GROUP)
            .set("authorized", 1)
    }
}

/// An encounter form as OpenEMR registers it: the table its rows live in and the
/// `formdir` and `form_name` of their `forms` rows. The encounter itself is one
/// ([`Form::ENCOUNTER`]): every encounter has a `newpatient` row in `forms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Form {
    /// The form's table, e.g. `form_vitals`.
    pub table: &'static str,
    /// `forms.formdir` of its rows, e.g. `vitals`.
    pub formdir: &'static str,
    /// `forms.form_name` of its rows, e.g. `Vitals`.
    pub form_name: &'static str,
}

impl Form {
    /// The encounter (`form_encounter`, registered as `newpatient`).
    pub const ENCOUNTER: Form = Form {
        table: "form_encounter",
        formdir: "newpatient",
        form_name: "New Patient Encounter",
    };

    /// Vital signs (`form_vitals`).
    pub const VITALS: Form = Form {
        table: "form_vitals",
        formdir: "vitals",
        form_name: "Vitals",
    };

    /// SOAP notes (`form_soap`).
    pub const SOAP: Form = Form {
        table: "form_soap",
        formdir: "soap",
        form_name: "SOAP",
    };

    /// The `forms` row that registers row `form_id` of this form in `encounter`, made
    /// `uuid` at `date` (what [`add_form`] writes).
    pub fn registration(
        &self,
        uuid: impl Into<Value>,
        date: impl Into<Value>,
        written: Written<'_>,
        encounter: i64,
        form_id: i64,
    ) -> Insert {
        let mut insert = Insert::into("forms");
        insert
            .set("uuid", uuid)
            .set("date", date)
            .set("encounter", encounter)
            .set("form_name", self.form_name)
            .set("form_id", form_id);
        written
            .authorized(&mut insert)
            .set("deleted", 0)
            .set("formdir", self.formdir);
        insert
    }

    /// A new row of the form's own table with OpenEMR's common form columns (`uuid`,
    /// `pid`, `user`, `groupname`, `authorized`, `activity`, `last_updated` stamped
    /// `now`); the caller sets the form's own fields and its `date`.
    pub fn row(&self, uuid: impl Into<Value>, written: Written<'_>, now: &str) -> Insert {
        let mut insert = Insert::into(self.table);
        insert.set("uuid", uuid);
        written
            .authorized(&mut insert)
            .set("activity", 1)
            .set("last_updated", now);
        insert
    }
}

/// Validation rules for a request body; they receive the body's [`Validator`].
pub type Rules = fn(&mut Validator<'_>);

/// An encounter form: a `form_<formdir>` table whose rows are registered in `forms`, and
/// served below `/api/patient/:pid/encounter/:eid/...`.
///
/// Every operation reads the route parameters `pid` and `eid` and is scoped by them: a
/// form of another encounter or patient is a 404 and is never changed.
#[derive(Debug, Clone, Copy)]
pub struct EncounterForm {
    /// The form, e.g. [`Form::VITALS`]. Its table has OpenEMR's common form columns:
    /// `id`, `uuid`, `date`, `pid`, `user`, `groupname`, `authorized`, `activity` and
    /// `last_updated`.
    pub form: Form,
    /// The key that carries the form's id in create and update answers, e.g. `vid`.
    pub id_key: &'static str,
    /// The `SELECT … FROM forms fo JOIN <table> … ` that reads the form; conditions on
    /// the `forms` row (aliased `fo`) are appended to it.
    pub select: &'static str,
    /// How lists may be sorted (by the form table's columns: its `date`, measurements, ...;
    /// newest first by default).
    pub sort: Sort,
}

impl EncounterForm {
    fn path(req: &Request) -> Result<(i64, i64)> {
        Ok((req.id("pid")?, req.id("eid")?))
    }

    /// The `forms` rows of this form for encounter `eid` of patient `pid`.
    fn search(&self, pid: i64, eid: i64) -> Search {
        let mut search = Search::new();
        search
            .equals("fo.pid", pid)
            .equals("fo.encounter", eid)
            .equals("fo.formdir", self.form.formdir)
            .equals("fo.deleted", 0);
        search
    }

    /// `GET …/:eid/<form>`: the encounter's forms in `_sort` order (see
    /// [`EncounterForm::sort`]), one page at a time. A 404 when the encounter is not the
    /// patient's.
    pub fn list(&self, req: &Request, map: impl Fn(&Row<'_>) -> Json) -> Result<Response> {
        let (pid, eid) = Self::path(req)?;
        require_encounter(pid, eid)?;
        let mut search = self.search(pid, eid);
        search.sort_by(req, &self.sort)?;
        crud::page(req, &search, self.select, map)
    }

    /// `GET …/:eid/<form>/:<id_param>`: one form of the encounter, or a 404.
    pub fn get(
        &self,
        req: &Request,
        id_param: &str,
        map: impl Fn(&Row<'_>) -> Json,
    ) -> Result<Response> {
        let (pid, eid) = Self::path(req)?;
        let mut search = self.search(pid, eid);
        search.equals("fo.form_id", req.id(id_param)?);
        Ok(req.ok(crud::find(&search, self.select, map)?))
    }

    /// `POST …/:eid/<form>`: checks the encounter is the patient's (404), validates the
    /// body with `rules` and `columns` (400), writes the form row and its `forms` row, and
    /// answers 201 `{"<id_key>": id, "fid": forms.id}`.
    pub fn create(&self, req: &Request, columns: &[Column], rules: Rules) -> Result<Response> {
        let (pid, eid) = Self::path(req)?;
        require_encounter(pid, eid)?;
        let mut fields = req.fields(columns, rules)?;
        let now = time::now().datetime();
        fields.set_default("date", now.as_str());
        let written = Written {
            pid,
            by: req.caller().username.as_str(),
        };
        let id = self
            .form
            .row(new_uuid(), written, &now)
            .fields(&fields)
            .insert_id()?;
        let fid = add_form(req, pid, eid, id, &self.form)?;
        let mut data = Json::object();
        data.field(self.id_key, id).field("fid", fid);
        Ok(req.created(data.end()))
    }

    /// `PUT …/:eid/<form>/:<id_param>`: a 404 unless the form belongs to the encounter and
    /// patient in the path; then validates (400), updates the given columns and
    /// `last_updated`, and answers 200 `{"<id_key>": id}`.
    pub fn update(
        &self,
        req: &Request,
        id_param: &str,
        columns: &[Column],
        rules: Rules,
    ) -> Result<Response> {
        let (pid, eid) = Self::path(req)?;
        let id = req.id(id_param)?;
        let mut search = self.search(pid, eid);
        search.equals("fo.form_id", id);
        crud::find(&search, "SELECT fo.id FROM forms fo", |_| Json::null())?;
        let fields = req.fields(columns, rules)?;
        Update::table(self.form.table)
            .set("last_updated", time::now().datetime())
            .fields(&fields)
            .filter("id", id)
            .filter("pid", pid)
            .apply()?;
        let mut data = Json::object();
        data.field(self.id_key, id);
        Ok(req.ok(data.end()))
    }
}

/// How a route names one issue: OpenEMR's numeric `lists.id` or its uuid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueKey<'a> {
    /// `lists.id` (medication, surgery and dental routes).
    Id(i64),
    /// `lists.uuid` (medical problem and allergy routes).
    Uuid(&'a str),
}

/// The `lists` rows of one `type` (OpenEMR's patient issues). Writes are always scoped by
/// the patient and the type, so an issue of another patient or of another kind is a 404
/// and is never changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Issues {
    /// `lists.type`: `medical_problem`, `allergy`, `medication`, `surgery`, `dental`, ...
    pub kind: &'static str,
}

impl Issues {
    /// The `lists` fields every issue list sorts by (`_sort`); the table is aliased `l`.
    pub const SORT_KEYS: &'static [SortKey] = &[
        SortKey::column("id"),
        SortKey::column("title"),
        SortKey::column("begdate"),
        SortKey::column("enddate"),
        SortKey::column("date"),
        SortKey::column("modifydate"),
        SortKey::column("diagnosis"),
        SortKey::column("outcome"),
        SortKey::column("activity"),
    ];

    /// Oldest first (by `id`), the order of medical problems and allergies.
    pub const BY_ID: Sort = Sort {
        alias: "l",
        keys: Issues::SORT_KEYS,
        default: "id",
        tiebreak: "id",
    };

    /// Newest first (by `date`, then `id`), the order of medications, surgeries and
    /// dental issues.
    pub const NEWEST_FIRST: Sort = Sort {
        alias: "l",
        keys: Issues::SORT_KEYS,
        default: "-date",
        tiebreak: "-id",
    };

    /// Medical problems.
    pub const MEDICAL_PROBLEMS: Issues = Issues::new("medical_problem");
    /// Allergies.
    pub const ALLERGIES: Issues = Issues::new("allergy");
    /// Medications.
    pub const MEDICATIONS: Issues = Issues::new("medication");
    /// Surgeries.
    pub const SURGERIES: Issues = Issues::new("surgery");
    /// Dental issues.
    pub const DENTAL: Issues = Issues::new("dental");

    /// The issues of type `kind`.
    pub const fn new(kind: &'static str) -> Issues {
        Issues { kind }
    }

    /// A new, active issue of this type (what [`Issues::insert`] writes before the
    /// body's fields): `uuid`, `type`, `pid`, `date` and `modifydate` stamped `now`,
    /// `activity`, `user` and `groupname`.
    pub fn row(&self, uuid: impl Into<Value>, written: Written<'_>, now: &str) -> Insert {
        let mut insert = Insert::into("lists");
        insert
            .set("uuid", uuid)
            .set("type", self.kind)
            .set("pid", written.pid)
            .set("date", now)
            .set("modifydate", now)
            .set("activity", 1)
            .set("user", written.by)
            .set("groupname", GROUP);
        insert
    }

    /// A search over issues of this type, the `lists` table aliased `l`, of patient `pid`
    /// when one is given. Add conditions and an order, then run it with
    /// [`crud::page`]/[`crud::find`].
    pub fn search(&self, pid: Option<i64>) -> Search {
        let mut search = Search::on("l");
        search.equals("type", self.kind);
        if let Some(pid) = pid {
            search.equals("pid", pid);
        }
        search
    }

    /// Inserts an issue of patient `pid` with the given columns, written by the caller,
    /// active, stamped now and with a new uuid; answers its `id` and `uuid`.
    pub fn insert(&self, req: &Request, pid: i64, fields: &Fields) -> Result<(i64, String)> {
        let uuid = new_uuid();
        let now = time::now().datetime();
        let written = Written {
            pid,
            by: req.caller().username.as_str(),
        };
        let id = self
            .row(uuid.as_str(), written, &now)
            .fields(fields)
            .insert_id()?;
        Ok((id, uuid))
    }

    /// The column and value that pick out the issue `key`.
    fn key(key: IssueKey<'_>) -> (&'static str, hearth_sdk::Value) {
        match key {
            IssueKey::Id(id) => ("id", id.into()),
            IssueKey::Uuid(uuid) => ("uuid", uuid.into()),
        }
    }

    /// Updates the given columns (and `modifydate`) of the issue `key` of patient `pid`;
    /// a 404 when the patient has no such issue of this type.
    pub fn update(&self, pid: i64, key: IssueKey<'_>, fields: &Fields) -> Result<()> {
        let (column, value) = Self::key(key);
        Update::table("lists")
            .set("modifydate", time::now().datetime())
            .fields(fields)
            .filter(column, value)
            .filter("pid", pid)
            .filter("type", self.kind)
            .apply()
    }

    /// Deletes the issue `key` of patient `pid`; a 404 when the patient has no such issue
    /// of this type.
    pub fn delete(&self, pid: i64, key: IssueKey<'_>) -> Result<()> {
        let (column, value) = Self::key(key);
        Delete::table("lists")
            .filter(column, value)
            .filter("pid", pid)
            .filter("type", self.kind)
            .apply()
    }
}

pub use crate::crud::BodyRules;

/// The routes OpenEMR serves for a uuid-keyed issue type (medical problems, allergies):
/// `GET /api/<kind>` and `/api/<kind>/:<param>` across patients, and
/// `/api/patient/:puuid/<kind>[/:<param>]` for one patient (list, read, create, update,
/// delete). Every per-patient route is scoped by the patient in the path.
#[derive(Debug, Clone, Copy)]
pub struct IssueResource {
    /// The issue type.
    pub issues: Issues,
    /// The route parameter that holds the issue's uuid, e.g. `muuid`.
    pub param: &'static str,
    /// The `SELECT … FROM lists l …` that reads issues; conditions on `l` are appended.
    pub select: &'static str,
    /// Maps a row of `select` to the answer's shape.
    pub map: fn(&Row<'_>) -> Json,
    /// The JSON Schema of what `map` answers, for route documentation.
    pub record: hearth_sdk::apidocs::Schema,
    /// The columns a body may set.
    pub columns: &'static [Column],
    /// The body's rules (`true` on create).
    pub rules: BodyRules,
}

impl IssueResource {
    fn page(&self, req: &Request, pid: Option<i64>) -> Result<Response> {
        let mut search = self.issues.search(pid);
        search.sort_by(req, &Issues::BY_ID)?;
        crud::page(req, &search, self.select, self.map)
    }

    fn one(&self, pid: Option<i64>, uuid: &str) -> Search {
        let mut search = self.issues.search(pid);
        search.equals("uuid", uuid);
        search
    }

    /// `GET /api/<kind>`: every patient's issues of this type, a page at a time.
    pub fn list_all(&self, req: &Request) -> Result<Response> {
        self.page(req, None)
    }

    /// `GET /api/<kind>/:<param>`: one issue of any patient, or a 404.
    pub fn get_any(&self, req: &Request) -> Result<Response> {
        let search = self.one(None, &req.uuid(self.param)?);
        Ok(req.ok(crud::find(&search, self.select, self.map)?))
    }

    /// `GET /api/patient/:puuid/<kind>`: the patient's issues (404 for no such patient).
    pub fn list(&self, req: &Request) -> Result<Response> {
        let patient = patient(req)?;
        self.page(req, Some(patient.pid))
    }

    /// `GET /api/patient/:puuid/<kind>/:<param>`: the patient's issue as a one-element
    /// list, as OpenEMR answers this route (its clients read `data[0]`); a 404 when the
    /// patient has no such issue.
    pub fn get(&self, req: &Request) -> Result<Response> {
        let patient = patient(req)?;
        let search = self.one(Some(patient.pid), &req.uuid(self.param)?);
        Ok(req.ok(crud::find_all(&search, self.select, self.map)?))
    }

    /// `POST /api/patient/:puuid/<kind>`: 404 for no such patient, 400 for a body that
    /// breaks the rules, else 201 `{"id", "uuid"}`.
    pub fn create(&self, req: &Request) -> Result<Response> {
        let patient = patient(req)?;
        let rules = self.rules;
        let fields = req.fields(self.columns, |v| rules(v, true))?;
        let (id, uuid) = self.issues.insert(req, patient.pid, &fields)?;
        Ok(req.created(Json::object().field("id", id).field("uuid", uuid).end()))
    }

    /// `PUT /api/patient/:puuid/<kind>/:<param>`: updates the given columns of the
    /// patient's issue (404 when the patient has none with that uuid) and answers it.
    pub fn update(&self, req: &Request) -> Result<Response> {
        let patient = patient(req)?;
        let uuid = req.uuid(self.param)?;
        let rules = self.rules;
        let fields = req.fields(self.columns, |v| rules(v, false))?;
        self.issues
            .update(patient.pid, IssueKey::Uuid(&uuid), &fields)?;
        let search = self.one(Some(patient.pid), &uuid);
        Ok(req.ok(crud::find(&search, self.select, self.map)?))
    }

    /// `DELETE /api/patient/:puuid/<kind>/:<param>`: deletes the patient's issue (404
    /// when the patient has none with that uuid) and answers `{"uuid"}`.
    pub fn delete(&self, req: &Request) -> Result<Response> {
        let patient = patient(req)?;
        let uuid = req.uuid(self.param)?;
        self.issues.delete(patient.pid, IssueKey::Uuid(&uuid))?;
        Ok(req.ok(Json::object().field("uuid", uuid).end()))
    }
}

/// The seven routes of a uuid-keyed issue type served by an [`IssueResource`] constant:
/// `GET /api/<kind>`, `GET /api/<kind>/:<param>`, and `GET|POST
/// /api/patient/:puuid/<kind>`, `GET|PUT|DELETE /api/patient/:puuid/<kind>/:<param>`,
/// with scopes `<kind>.s|r|c|u|d` and the ACL sections OpenEMR checks on each.
///
/// ```ignore
/// const ROUTES: &'static [Route] = &hearth_emr::issue_routes!(ALLERGIES,
///     kind = "allergy", param = "auuid", noun = "allergies",
///     acl = { across = "patients/med", list = "patients/med", read = "patients/med",
///             write = "patients/med:write" });
/// ```
#[macro_export]
macro_rules! issue_routes {
    ($resource:ident, kind = $kind:literal, param = $param:literal, noun = $noun:literal,
     acl = { across = $across:literal, list = $list:literal, read = $read:literal, write = $write:literal }) => {
        [
            $crate::__sdk::Route::get(concat!("/api/", $kind), concat!($kind, ".s"), |r| {
                $resource.list_all(r)
            })
            .acl($across)
            .legacy()
            .summary(concat!("List ", $noun))
            .params($crate::LIST_PARAMS)
            .answers_list($resource.record),
            $crate::__sdk::Route::get(
                concat!("/api/", $kind, "/:", $param),
                concat!($kind, ".r"),
                |r| $resource.get_any(r),
            )
            .acl($across)
            .legacy()
            .summary(concat!("Read one of the ", $noun))
            .answers($resource.record),
            $crate::__sdk::Route::get(
                concat!("/api/patient/:puuid/", $kind),
                concat!($kind, ".s"),
                |r| $resource.list(r),
            )
            .acl($list)
            .legacy()
            .summary(concat!("List a patient's ", $noun))
            .params($crate::LIST_PARAMS)
            .answers_list($resource.record),
            $crate::__sdk::Route::get(
                concat!("/api/patient/:puuid/", $kind, "/:", $param),
                concat!($kind, ".r"),
                |r| $resource.get(r),
            )
            .acl($read)
            .legacy()
            .summary(concat!("Read one of a patient's ", $noun))
            .answers_list($resource.record),
            $crate::__sdk::Route::post(
                concat!("/api/patient/:puuid/", $kind),
                concat!($kind, ".c"),
                |r| $resource.create(r),
            )
            .acl($write)
            .legacy()
            .summary(concat!("Add to a patient's ", $noun))
            .accepts($crate::__sdk::apidocs::Schema::Body(
                &[$resource.columns],
                &[],
            ))
            .answers($crate::CREATED_ID_UUID),
            $crate::__sdk::Route::put(
                concat!("/api/patient/:puuid/", $kind, "/:", $param),
                concat!($kind, ".u"),
                |r| $resource.update(r),
            )
            .acl($write)
            .legacy()
            .summary(concat!("Update one of a patient's ", $noun))
            .accepts($crate::__sdk::apidocs::Schema::Body(
                &[$resource.columns],
                &[],
            ))
            .answers($resource.record),
            $crate::__sdk::Route::delete(
                concat!("/api/patient/:puuid/", $kind, "/:", $param),
                concat!($kind, ".d"),
                |r| $resource.delete(r),
            )
            .acl($write)
            .legacy()
            .summary(concat!("Delete one of a patient's ", $noun))
            .answers($crate::DELETED_UUID),
        ]
    };
}

/// The routes OpenEMR serves below `/api/patient/:pid/<kind>` for an issue type keyed by
/// its numeric `lists.id` (medications, surgeries, dental issues): list, read, create,
/// update and delete, scoped by the patient in the path and the list type. Reads answer
/// the raw `lists` rows; create answers `{"id"}`, update `{"id"}`, delete `true`.
#[derive(Debug, Clone, Copy)]
pub struct NumberedIssues {
    /// The issue type.
    pub issues: Issues,
    /// The route parameter that holds the issue's id, e.g. `mid`.
    pub param: &'static str,
    /// The columns a body may set.
    pub columns: &'static [Column],
    /// The body's rules (`true` on create).
    pub rules: BodyRules,
}

impl NumberedIssues {
    const SELECT: &'static str = "SELECT l.* FROM lists l";

    /// `GET`: the patient's issues of this type in `_sort` order (newest first by
    /// default, see [`Issues::NEWEST_FIRST`]), a page at a time.
    pub fn list(&self, req: &Request) -> Result<Response> {
        let patient = patient(req)?;
        let mut search = self.issues.search(Some(patient.pid));
        search.sort_by(req, &Issues::NEWEST_FIRST)?;
        crud::page(req, &search, Self::SELECT, Json::from_row)
    }

    /// `GET …/:<param>`: one of the patient's issues, or a 404.
    pub fn get(&self, req: &Request) -> Result<Response> {
        let patient = patient(req)?;
        let mut search = self.issues.search(Some(patient.pid));
        search.equals("id", req.id(self.param)?);
        Ok(req.ok(crud::find(&search, Self::SELECT, Json::from_row)?))
    }

    /// `POST`: 404 for no such patient, 400 for a body that breaks the rules, else 201
    /// `{"id"}`.
    pub fn create(&self, req: &Request) -> Result<Response> {
        let patient = patient(req)?;
        let rules = self.rules;
        let fields = req.fields(self.columns, |v| rules(v, true))?;
        let (id, _) = self.issues.insert(req, patient.pid, &fields)?;
        Ok(req.created(Json::object().field("id", id).end()))
    }

    /// `PUT …/:<param>`: updates the given columns (404 when the patient has no such
    /// issue of this type) and answers `{"id"}`.
    pub fn update(&self, req: &Request) -> Result<Response> {
        let patient = patient(req)?;
        let id = req.id(self.param)?;
        let rules = self.rules;
        let fields = req.fields(self.columns, |v| rules(v, false))?;
        self.issues.update(patient.pid, IssueKey::Id(id), &fields)?;
        Ok(req.ok(Json::object().field("id", id).end()))
    }

    /// `DELETE …/:<param>`: deletes the patient's issue (404 when there is none) and
    /// answers `true`.
    pub fn delete(&self, req: &Request) -> Result<Response> {
        let patient = patient(req)?;
        self.issues
            .delete(patient.pid, IssueKey::Id(req.id(self.param)?))?;
        Ok(req.ok(Json::raw("true")))
    }
}

/// The five routes of each [`NumberedIssues`] constant named (one after the other, in one
/// array; separate kinds with `;`) below `/api/patient/:pid/<path>`, with scopes
/// `<path>.s|r|c|u|d`, the read ACL on reads and the write ACL on writes.
///
/// ```ignore
/// hearth_emr::numbered_issue_routes!(
///     MEDICATIONS, path = "medication", param = "mid", noun = "medications",
///         acl = { read = "patients/med", write = "patients/med:write" };
///     SURGERIES, path = "surgery", param = "sid", noun = "surgeries",
///         acl = { read = "patients/med", write = "patients/med:write" })
/// ```
#[macro_export]
macro_rules! numbered_issue_routes {
    ($($resource:ident, path = $path:literal, param = $param:literal, noun = $noun:literal,
     acl = { read = $read:literal, write = $write:literal });+ $(;)?) => {
        [$(
            $crate::__sdk::Route::get(
                concat!("/api/patient/:pid/", $path),
                concat!($path, ".s"),
                |r| $resource.list(r),
            )
            .acl($read)
            .bare()
            .summary(concat!("List a patient's ", $noun))
            .params($crate::LIST_PARAMS)
            .answers_list($crate::__sdk::apidocs::Schema::Row(&[$crate::IDS, $resource.columns])),
            $crate::__sdk::Route::post(
                concat!("/api/patient/:pid/", $path),
                concat!($path, ".c"),
                |r| $resource.create(r),
            )
            .acl($write)
            .bare()
            .summary(concat!("Add to a patient's ", $noun))
            .accepts($crate::__sdk::apidocs::Schema::Body(&[$resource.columns], &[]))
            .answers($crate::CREATED_ID),
            $crate::__sdk::Route::get(
                concat!("/api/patient/:pid/", $path, "/:", $param),
                concat!($path, ".r"),
                |r| $resource.get(r),
            )
            .acl($read)
            .bare()
            .summary(concat!("Read one of a patient's ", $noun))
            .answers($crate::__sdk::apidocs::Schema::Row(&[$crate::IDS, $resource.columns])),
            $crate::__sdk::Route::put(
                concat!("/api/patient/:pid/", $path, "/:", $param),
                concat!($path, ".u"),
                |r| $resource.update(r),
            )
            .acl($write)
            .bare()
            .summary(concat!("Update one of a patient's ", $noun))
            .accepts($crate::__sdk::apidocs::Schema::Body(&[$resource.columns], &[]))
            .answers($crate::CREATED_ID),
            $crate::__sdk::Route::delete(
                concat!("/api/patient/:pid/", $path, "/:", $param),
                concat!($path, ".d"),
                |r| $resource.delete(r),
            )
            .acl($write)
            .bare()
            .summary(concat!("Delete one of a patient's ", $noun))
            .answers($crate::__sdk::apidocs::Schema::Boolean),
        )+]
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::prelude::*;
    use hearth_sdk::testing::{MockHost, TestRequest};
    use serde_json::json;

    const COLUMNS: &[Column] = &[Column::real("weight"), Column::text("note")];
    const NOTES: EncounterForm = EncounterForm {
        form: Form {
            table: "form_notes",
            formdir: "notes",
            form_name: "Notes",
        },
        id_key: "nid",
        select: "SELECT n.* FROM forms fo JOIN form_notes n ON n.id = fo.form_id",
        sort: Sort {
            alias: "n",
            keys: &[SortKey::column("date"), SortKey::column("weight")],
            default: "-date",
            tiebreak: "-id",
        },
    };
    const PROBLEMS: Issues = Issues::new("medical_problem");
    const ALLERGIES: IssueResource = IssueResource {
        issues: Issues::new("allergy"),
        param: "auuid",
        select: "SELECT l.* FROM lists l",
        map: Json::from_row,
        record: hearth_sdk::apidocs::Schema::Row(&[IDS, &[Column::text("title")]]),
        columns: &[Column::text("title")],
        rules: |v, insert| {
            v.field("title", "title", insert).length_between(2, 255);
        },
    };

    fn rules(v: &mut Validator<'_>) {
        v.optional("note", "note").length_between(2, 10);
    }

    struct Notes;
    impl Resource for Notes {
        const NAME: &'static str = "notes";
        const VERSION: &'static str = "0.1.0";
        const ROUTES: &'static [Route] = &[
            Route::get("/api/patient/:pid/encounter/:eid/note", "note.s", |r| {
                NOTES.list(r, Json::from_row)
            }),
            Route::get(
                "/api/patient/:pid/encounter/:eid/note/:nid",
                "note.r",
                |r| NOTES.get(r, "nid", Json::from_row),
            ),
            Route::post("/api/patient/:pid/encounter/:eid/note", "note.c", |r| {
                NOTES.create(r, COLUMNS, rules)
            }),
            Route::put(
                "/api/patient/:pid/encounter/:eid/note/:nid",
                "note.u",
                |r| NOTES.update(r, "nid", COLUMNS, rules),
            ),
            Route::get("/api/patient/:puuid/problem", "problem.s", problems),
            Route::put(
                "/api/patient/:puuid/problem/:muuid",
                "problem.u",
                update_problem,
            ),
            Route::get("/portal/patient/problem", "problem.s", problems),
            Route::get("/api/allergy", "allergy.s", |r| ALLERGIES.list_all(r)),
            Route::get("/api/allergy/:auuid", "allergy.r", |r| ALLERGIES.get_any(r)).legacy(),
            Route::get("/api/patient/:puuid/allergy/:auuid", "allergy.r", |r| {
                ALLERGIES.get(r)
            }),
            Route::post("/api/patient/:puuid/allergy", "allergy.c", |r| {
                ALLERGIES.create(r)
            })
            .legacy(),
            Route::put("/api/patient/:puuid/allergy/:auuid", "allergy.u", |r| {
                ALLERGIES.update(r)
            }),
            Route::delete("/api/patient/:puuid/allergy/:auuid", "allergy.d", |r| {
                ALLERGIES.delete(r)
            }),
        ];
    }

    fn problems(req: &Request) -> Result<Response> {
        let patient = patient(req)?;
        crud::page(
            req,
            &PROBLEMS.search(Some(patient.pid)),
            "SELECT l.* FROM lists l",
            Json::from_row,
        )
    }

    fn update_problem(req: &Request) -> Result<Response> {
        let patient = patient(req)?;
        let fields = req.fields(&[Column::text("title")], |_| {})?;
        PROBLEMS.update(patient.pid, IssueKey::Uuid(&req.uuid("muuid")?), &fields)?;
        Ok(Response::ok(Json::null()))
    }

    const PUUID: &str = "90cde167-0000-4000-8000-000000000001";

    fn patient_rows() -> Rows {
        Rows::from_values(&["pid", "uuid"], vec![vec![7.into(), PUUID.into()]])
    }

    fn found() -> Rows {
        Rows::from_values(&["found"], vec![vec![1.into()]])
    }

    #[test]
    fn a_form_is_created_with_its_forms_row() {
        let mut host = MockHost::new()
            .on_query("FROM form_encounter", found())
            .on_query(
                "INSERT INTO form_notes",
                Rows::from_values(&["id"], vec![vec![5.into()]]),
            )
            .on_query(
                "INSERT INTO forms",
                Rows::from_values(&["id"], vec![vec![9.into()]]),
            );
        let response = host.call::<Notes>(TestRequest::post(
            "/api/patient/7/encounter/3/note",
            json!({"weight": "70.5", "note": "ok"}),
        ));
        assert_eq!(response.status, 201, "{}", response.text());
        assert_eq!(response.body_json()["data"], json!({"nid": 5, "fid": 9}));
        let writes = host.writes();
        assert!(writes[0].0.contains(r#""weight""#) && writes[0].1.contains(&Value::Real(70.5)));
        assert!(
            writes[0]
                .1
                .contains(&Value::Text("2024-01-02 03:04:05".into())),
            "date defaults to now"
        );
        assert!(
            writes[1].1.contains(&Value::Text("notes".into()))
                && writes[1].1.contains(&Value::Integer(5))
        );
    }

    #[test]
    fn a_form_for_an_encounter_of_another_patient_is_404_and_writes_nothing() {
        let mut host = MockHost::new().on_query("FROM form_encounter", Rows::default());
        let response = host.call::<Notes>(TestRequest::post(
            "/api/patient/7/encounter/3/note",
            json!({"note": "ok"}),
        ));
        assert_eq!(response.status, 404);
        assert_eq!(response.body_json()["data"], json!([]));
        assert!(host.writes().is_empty());
        assert_eq!(
            host.queries()[0].1,
            vec![Value::Integer(7), Value::Integer(3)]
        );
    }

    #[test]
    fn form_validation_merges_rules_and_types() {
        let mut host = MockHost::new().on_query("FROM form_encounter", found());
        let response = host.call::<Notes>(TestRequest::post(
            "/api/patient/7/encounter/3/note",
            json!({"weight": "heavy", "note": "x"}),
        ));
        assert_eq!(response.status, 400);
        let errors = &response.body_json()["validationErrors"];
        assert_eq!(
            errors["weight"]["Numeric::NOT_NUMERIC"],
            "weight must be numeric"
        );
        assert_eq!(
            errors["note"]["LengthBetween::TOO_SHORT"],
            "note must be 2 characters or longer"
        );
        assert!(host.writes().is_empty());
    }

    #[test]
    fn a_form_update_is_scoped_by_patient_and_encounter() {
        let mut host = MockHost::new().on_query("SELECT fo.id FROM forms fo", Rows::default());
        let response = host.call::<Notes>(TestRequest::put(
            "/api/patient/7/encounter/3/note/5",
            json!({"note": "fine"}),
        ));
        assert_eq!(response.status, 404);
        assert!(host.writes().is_empty());
        let (sql, params) = &host.queries()[0];
        assert!(
            sql.contains(r#"fo."pid" = $1 AND fo."encounter" = $2 AND fo."formdir" = $3"#),
            "{sql}"
        );
        assert_eq!(params[4], Value::Integer(5));

        let mut host = MockHost::new()
            .on_query(
                "SELECT fo.id FROM forms fo",
                Rows::from_values(&["id"], vec![vec![9.into()]]),
            )
            .on_execute("UPDATE form_notes", 1);
        let response = host.call::<Notes>(TestRequest::put(
            "/api/patient/7/encounter/3/note/5",
            json!({"note": "fine"}),
        ));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_json()["data"], json!({"nid": 5}));
        let (sql, _) = &host.writes()[0];
        assert!(sql.ends_with(r#"WHERE "id" = $3 AND "pid" = $4"#), "{sql}");
    }

    #[test]
    fn forms_list_and_get_read_through_the_forms_row() {
        let mut host = MockHost::new()
            .on_query("FROM form_encounter", found())
            .on_query(
                "JOIN form_notes",
                Rows::from_values(&["id", "note"], vec![vec![5.into(), "ok".into()]]),
            );
        let response = host.call::<Notes>(TestRequest::get("/api/patient/7/encounter/3/note"));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_json()["data"][0]["note"], "ok");
        assert!(
            host.queries()[1]
                .0
                .contains(r#"ORDER BY n."date" DESC NULLS LAST, n."id" DESC LIMIT"#),
            "newest first by default"
        );
        let response = host.call::<Notes>(TestRequest::get("/api/patient/7/encounter/3/note/5"));
        assert_eq!(response.body_json()["data"]["id"], 5);
        let response = host.call::<Notes>(TestRequest::get(
            "/api/patient/7/encounter/3/note?_sort=weight,-date",
        ));
        assert_eq!(response.status, 200);
        let (sql, _) = host.queries().pop().unwrap();
        assert!(
            sql.contains(
                r#"ORDER BY n."weight" ASC NULLS FIRST, n."date" DESC NULLS LAST, n."id" DESC LIMIT"#
            ),
            "{sql}"
        );
        let response = host.call::<Notes>(TestRequest::get(
            "/api/patient/7/encounter/3/note?_sort=note",
        ));
        assert_eq!(response.status, 400, "note is not a sort key");
        assert!(response.body_json()["validationErrors"]["_sort"].is_object());
    }

    #[test]
    fn patients_in_the_path_must_exist() {
        let mut host = MockHost::new().on_query("FROM patient_data", Rows::default());
        let response =
            host.call::<Notes>(TestRequest::get(&format!("/api/patient/{PUUID}/problem")));
        assert_eq!(response.status, 404);
        let response = host.call::<Notes>(TestRequest::get("/api/patient/nope/problem"));
        assert_eq!(response.status, 400);
        let response = host.call::<Notes>(TestRequest::get("/portal/patient/problem"));
        assert_eq!(
            response.status, 404,
            "a portal call without a bound patient"
        );
    }

    #[test]
    fn issues_are_scoped_by_type_and_patient() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient_rows())
            .on_query("FROM lists", Rows::default());
        let response =
            host.call::<Notes>(TestRequest::get("/portal/patient/problem").as_patient(PUUID));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_json()["data"], json!([]));
        let (sql, params) = &host.queries()[1];
        assert!(
            sql.contains(r#"WHERE l."type" = $1 AND l."pid" = $2"#),
            "{sql}"
        );
        assert_eq!(
            params[..2],
            [Value::from("medical_problem"), Value::Integer(7)]
        );

        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient_rows())
            .on_execute("UPDATE lists", 0);
        let muuid = "90cde167-0000-4000-8000-0000000000ff";
        let response = host.call::<Notes>(TestRequest::put(
            &format!("/api/patient/{PUUID}/problem/{muuid}"),
            json!({"title": "Flu"}),
        ));
        assert_eq!(
            response.status, 404,
            "an issue of another patient is not found"
        );
        let (sql, params) = &host.writes()[0];
        assert!(
            sql.ends_with(r#"WHERE "uuid" = $3 AND "pid" = $4 AND "type" = $5"#),
            "{sql}"
        );
        assert_eq!(params[3], Value::Integer(7));
    }

    #[test]
    fn issue_resources_answer_in_openemrs_shapes() {
        let auuid = "90cde167-0000-4000-8000-0000000000a1";
        let allergy = Rows::from_values(
            &["id", "uuid", "title"],
            vec![vec![3.into(), auuid.into(), "Latex".into()]],
        );
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient_rows())
            .on_query(
                "INSERT INTO lists",
                Rows::from_values(&["id"], vec![vec![3.into()]]),
            )
            .on_execute("UPDATE lists", 1)
            .on_execute("DELETE FROM lists", 1)
            .on_query("FROM lists", allergy);
        let base = format!("/api/patient/{PUUID}/allergy");
        let response = host.call::<Notes>(TestRequest::post(&base, json!({"title": "Latex"})));
        assert_eq!(response.status, 201);
        assert_eq!(response.body_json()["data"]["id"], 3);
        assert!(response.body_json()["data"]["uuid"].is_string());
        let response = host.call::<Notes>(TestRequest::post(&base, json!({"title": "L"})));
        assert_eq!(response.status, 400);
        let one = format!("{base}/{auuid}");
        let response = host.call::<Notes>(TestRequest::get(&one));
        assert_eq!(
            response.body_json()["data"][0]["title"],
            "Latex",
            "the per-patient read is a list"
        );
        let response = host.call::<Notes>(TestRequest::get(&format!("/api/allergy/{auuid}")));
        assert_eq!(
            response.body_json()["data"]["title"],
            "Latex",
            "the read across patients is an object"
        );
        let response = host.call::<Notes>(TestRequest::put(&one, json!({"title": "Latex gloves"})));
        assert_eq!(response.body_json()["data"]["uuid"], auuid);
        let response = host.call::<Notes>(TestRequest::delete(&one));
        assert_eq!(response.body_json()["data"], json!({"uuid": auuid}));
        let writes = host.writes();
        assert_eq!(writes.len(), 3, "the invalid create wrote nothing");
        assert!(
            writes
                .iter()
                .all(|(_, params)| params.contains(&Value::from("allergy"))
                    && params.contains(&Value::Integer(7)))
        );
    }

    #[test]
    fn the_route_decides_where_the_patient_comes_from() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient_rows())
            .on_query("FROM lists", Rows::default());
        host.call::<Notes>(TestRequest::get(&format!("/api/patient/{PUUID}/problem")));
        host.call::<Notes>(TestRequest::get("/portal/patient/problem").as_patient(PUUID));
        let queries = host.queries();
        assert!(
            queries[0].0.ends_with("WHERE uuid = $1") && queries[0].1 == vec![Value::from(PUUID)]
        );
        assert!(
            queries[2].0.ends_with("WHERE uuid = $1") && queries[2].1 == vec![Value::from(PUUID)]
        );
        let mut host = MockHost::new();
        let response = host.call::<Notes>(TestRequest::get("/portal/patient/problem"));
        assert_eq!(response.status, 404);
    }

    #[test]
    fn sequences_hand_out_the_next_number() {
        let mut host = MockHost::new().on_query(
            "UPDATE sequences",
            Rows::from_values(&["value"], vec![vec![41.into()]]),
        );
        assert_eq!(host.run(|| next_sequence("encounter")), Ok(41));
        let mut empty = MockHost::new().on_query("UPDATE sequences", Rows::default());
        assert!(matches!(
            empty.run(|| next_sequence("encounter")),
            Err(ApiError::Internal(_))
        ));
    }

    const MEDICATIONS: NumberedIssues = NumberedIssues {
        issues: Issues::new("medication"),
        param: "mid",
        columns: &[Column::text("title")],
        rules: |v, insert| {
            v.field("title", "title", insert).length_between(2, 255);
        },
    };

    #[test]
    fn issue_route_macros_name_paths_scopes_and_acls() {
        use hearth_sdk::Method;
        let routes = crate::issue_routes!(ALLERGIES, kind = "allergy", param = "auuid",
            noun = "allergies", acl = { across = "a/x", list = "a/l", read = "a/r", write = "a/w:write" });
        let got: Vec<(&str, &str, &str)> =
            routes.iter().map(|r| (r.path, r.scope, r.acl)).collect();
        assert_eq!(
            got,
            [
                ("/api/allergy", "allergy.s", "a/x"),
                ("/api/allergy/:auuid", "allergy.r", "a/x"),
                ("/api/patient/:puuid/allergy", "allergy.s", "a/l"),
                ("/api/patient/:puuid/allergy/:auuid", "allergy.r", "a/r"),
                ("/api/patient/:puuid/allergy", "allergy.c", "a/w:write"),
                (
                    "/api/patient/:puuid/allergy/:auuid",
                    "allergy.u",
                    "a/w:write"
                ),
                (
                    "/api/patient/:puuid/allergy/:auuid",
                    "allergy.d",
                    "a/w:write"
                ),
            ]
        );
        let routes = crate::numbered_issue_routes!(MEDICATIONS, path = "medication", param = "mid",
            noun = "medications", acl = { read = "p/m", write = "p/m:write" });
        let got: Vec<(Method, &str, &str)> =
            routes.iter().map(|r| (r.method, r.path, r.scope)).collect();
        assert_eq!(
            got,
            [
                (Method::Get, "/api/patient/:pid/medication", "medication.s"),
                (Method::Post, "/api/patient/:pid/medication", "medication.c"),
                (
                    Method::Get,
                    "/api/patient/:pid/medication/:mid",
                    "medication.r"
                ),
                (
                    Method::Put,
                    "/api/patient/:pid/medication/:mid",
                    "medication.u"
                ),
                (
                    Method::Delete,
                    "/api/patient/:pid/medication/:mid",
                    "medication.d"
                ),
            ]
        );
    }

    struct Medications;
    impl Resource for Medications {
        const NAME: &'static str = "medications";
        const VERSION: &'static str = "0.1.0";
        const ROUTES: &'static [Route] = &crate::numbered_issue_routes!(MEDICATIONS,
            path = "medication", param = "mid", noun = "medications",
            acl = { read = "patients/med", write = "patients/med:write" });
    }

    #[test]
    fn numbered_issues_are_scoped_by_patient_and_type() {
        let patient = Rows::from_values(&["pid", "uuid"], vec![vec![7.into(), "u-7".into()]]);
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient)
            .on_execute("UPDATE lists", 0)
            .on_execute("DELETE FROM lists", 0);
        let response = host.call::<Medications>(TestRequest::put(
            "/api/patient/7/medication/21",
            json!({"title": "Aspirin"}),
        ));
        assert_eq!(response.status, 404, "{}", response.text());
        let (sql, params) = &host.writes()[0];
        assert!(
            sql.contains(r#""pid" = "#) && sql.contains(r#""type" = "#),
            "{sql}"
        );
        assert!(params.contains(&Value::from("medication")) && params.contains(&Value::Integer(7)));
        let response =
            host.call::<Medications>(TestRequest::delete("/api/patient/7/medication/21"));
        assert_eq!(response.status, 404);
        let response = host.call::<Medications>(TestRequest::post(
            "/api/patient/7/medication",
            json!({"title": "A"}),
        ));
        assert_eq!(response.status, 400, "{}", response.text());
        assert_eq!(
            response.body_json()["title"]["LengthBetween::TOO_SHORT"],
            "title must be 2 characters or longer",
            "numbered issues answer bare payloads"
        );
        let response = host.call::<Medications>(TestRequest::get("/api/patient/x/medication"));
        assert_eq!(response.status, 400, "a pid must be a number");
    }

    #[test]
    fn bare_routes_answer_openemrs_statuses_on_openemr_sites() {
        let patient = || Rows::from_values(&["pid", "uuid"], vec![vec![7.into(), "u-7".into()]]);
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_query("FROM lists", Rows::default());
        let list = "/api/patient/7/medication";
        let one = "/api/patient/7/medication/21";
        let invalid = json!({"title": "A"});

        let empty = host.call::<Medications>(TestRequest::get(list));
        assert_eq!((empty.status, empty.body_json()), (200, json!([])));
        let missing = host.call::<Medications>(TestRequest::get(one));
        assert_eq!(missing.status, 404);
        assert_eq!(
            missing.body_json()["error"],
            "not_found",
            "a JSON body by default"
        );
        let refused = host.call::<Medications>(TestRequest::post(list, invalid.clone()));
        assert_eq!((refused.status, refused.wire()), (400, 400));

        let empty = host.call::<Medications>(TestRequest::get(list).openemr());
        assert_eq!(
            (empty.status, empty.text()),
            (404, ""),
            "OpenEMR: an empty list is an empty 404"
        );
        let missing = host.call::<Medications>(TestRequest::get(one).openemr());
        assert_eq!((missing.status, missing.text()), (404, ""));
        let refused = host.call::<Medications>(TestRequest::post(list, invalid).openemr());
        assert_eq!(
            refused.status, 400,
            "the plugin's own status decides the transaction"
        );
        assert_eq!(
            refused.wire(),
            200,
            "OpenEMR answers a failed validation with 200"
        );
        assert_eq!(
            refused.body_json()["title"]["LengthBetween::TOO_SHORT"],
            "title must be 2 characters or longer"
        );
        let unknown = host.call::<Medications>(
            TestRequest::get("/api/patient/7/medication?_sort=nosuch").openemr(),
        );
        assert_eq!(
            unknown.status, 404,
            "an unknown _sort name is left out, not refused"
        );
    }

    #[test]
    fn legacy_routes_answer_200_on_openemr_sites_whatever_happened() {
        let auuid = "90cde167-0000-4000-8000-0000000000a1";
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient_rows())
            .on_query(
                "INSERT INTO lists",
                Rows::from_values(&["id"], vec![vec![3.into()]]),
            )
            .on_query("FROM lists", Rows::default());
        let base = format!("/api/patient/{PUUID}/allergy");
        for (request, status) in [
            (TestRequest::post(&base, json!({"title": "Latex"})), 201),
            (TestRequest::post(&base, json!({"title": "L"})), 400),
            (TestRequest::get(&format!("/api/allergy/{auuid}")), 404),
        ] {
            let hearth = host.call::<Notes>(request.clone());
            assert_eq!((hearth.status, hearth.wire()), (status, status));
            let openemr = host.call::<Notes>(request.openemr());
            assert_eq!((openemr.status, openemr.wire()), (status, 200));
            assert!(
                openemr.body_json()["validationErrors"].is_array()
                    || openemr.body_json()["validationErrors"].is_object()
            );
        }
    }

    #[test]
    fn issue_lists_sort_by_lists_fields_with_a_stable_tiebreaker() {
        let patient = Rows::from_values(&["pid", "uuid"], vec![vec![7.into(), "u-7".into()]]);
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient)
            .on_query("FROM lists", Rows::default());
        let order = |host: &MockHost| {
            let (sql, _) = host.queries().pop().unwrap();
            sql.split(" ORDER BY ").nth(1).unwrap().to_owned()
        };
        host.call::<Medications>(TestRequest::get("/api/patient/7/medication"));
        assert_eq!(
            order(&host),
            r#"l."date" DESC NULLS LAST, l."id" DESC LIMIT $3 OFFSET $4"#,
            "medications are newest first"
        );
        host.call::<Medications>(TestRequest::get(
            "/api/patient/7/medication?_sort=title,-begdate",
        ));
        assert_eq!(
            order(&host),
            r#"l."title" ASC NULLS FIRST, l."begdate" DESC NULLS LAST, l."id" DESC LIMIT $3 OFFSET $4"#
        );
        host.call::<Notes>(TestRequest::get("/api/allergy?_sort=-enddate"));
        assert_eq!(
            order(&host),
            r#"l."enddate" DESC NULLS LAST, l."id" ASC LIMIT $2 OFFSET $3"#
        );
        host.call::<Notes>(TestRequest::get("/api/allergy"));
        assert_eq!(
            order(&host),
            r#"l."id" ASC NULLS FIRST LIMIT $2 OFFSET $3"#,
            "allergies and problems are oldest first"
        );
        let response = host.call::<Notes>(TestRequest::get("/api/allergy?_sort=pid"));
        assert_eq!(response.status, 400);
        assert_eq!(
            response.body_json()["validationErrors"]["_sort"]["InArray::NOT_IN_ARRAY"],
            "_sort cannot order by \"pid\"; it takes a comma list of id, title, begdate, enddate, date, modifydate, diagnosis, outcome, activity (a leading - sorts descending)"
        );
    }
}
