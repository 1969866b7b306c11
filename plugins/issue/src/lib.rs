//! OpenEMR medications, surgeries and dental issues: `lists` rows of types `medication`,
//! `surgery` and `dental`, served below `/api/patient/:pid/...` with numeric ids. The
//! three differ only by list type and id parameter, so one set of handlers serves them.

use hearth_sdk::emr::{self, IssueKey, Issues};
use hearth_sdk::prelude::*;

/// The medication, surgery and dental issue resource.
pub struct PatientIssue;

/// One of the three issue kinds: its list type and the route parameter of its id.
trait Kind {
    const ISSUES: Issues;
    const ID: &'static str;
}

struct Medication;
impl Kind for Medication {
    const ISSUES: Issues = Issues::new("medication");
    const ID: &'static str = "mid";
}

struct Surgery;
impl Kind for Surgery {
    const ISSUES: Issues = Issues::new("surgery");
    const ID: &'static str = "sid";
}

struct Dental;
impl Kind for Dental {
    const ISSUES: Issues = Issues::new("dental");
    const ID: &'static str = "did";
}

impl Resource for PatientIssue {
    const NAME: &'static str = "issue";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Medications, surgeries and dental issues (OpenEMR lists)";
    const READS: &'static [&'static str] = &["patient_data"];
    const WRITES: &'static [&'static str] = &["lists"];
    const ROUTES: &'static [Route] = &[
        Route::get(
            "/api/patient/:pid/medication",
            "medication.s",
            list::<Medication>,
        )
        .acl("patients/med")
        .summary("List a patient's medications"),
        Route::post(
            "/api/patient/:pid/medication",
            "medication.c",
            create::<Medication>,
        )
        .acl("patients/med:write")
        .summary("Add a medication"),
        Route::get(
            "/api/patient/:pid/medication/:mid",
            "medication.r",
            get_one::<Medication>,
        )
        .acl("patients/med")
        .summary("Read a medication"),
        Route::put(
            "/api/patient/:pid/medication/:mid",
            "medication.u",
            update::<Medication>,
        )
        .acl("patients/med:write")
        .summary("Update a medication"),
        Route::delete(
            "/api/patient/:pid/medication/:mid",
            "medication.d",
            delete::<Medication>,
        )
        .acl("patients/med:write")
        .summary("Delete a medication"),
        Route::get("/api/patient/:pid/surgery", "surgery.s", list::<Surgery>)
            .acl("patients/med")
            .summary("List a patient's surgeries"),
        Route::post("/api/patient/:pid/surgery", "surgery.c", create::<Surgery>)
            .acl("patients/med:write")
            .summary("Add a surgery"),
        Route::get(
            "/api/patient/:pid/surgery/:sid",
            "surgery.r",
            get_one::<Surgery>,
        )
        .acl("patients/med")
        .summary("Read a surgery"),
        Route::put(
            "/api/patient/:pid/surgery/:sid",
            "surgery.u",
            update::<Surgery>,
        )
        .acl("patients/med:write")
        .summary("Update a surgery"),
        Route::delete(
            "/api/patient/:pid/surgery/:sid",
            "surgery.d",
            delete::<Surgery>,
        )
        .acl("patients/med:write")
        .summary("Delete a surgery"),
        Route::get(
            "/api/patient/:pid/dental_issue",
            "dental_issue.s",
            list::<Dental>,
        )
        .acl("patients/med")
        .summary("List a patient's dental issues"),
        Route::post(
            "/api/patient/:pid/dental_issue",
            "dental_issue.c",
            create::<Dental>,
        )
        .acl("patients/med:write")
        .summary("Add a dental issue"),
        Route::get(
            "/api/patient/:pid/dental_issue/:did",
            "dental_issue.r",
            get_one::<Dental>,
        )
        .acl("patients/med")
        .summary("Read a dental issue"),
        Route::put(
            "/api/patient/:pid/dental_issue/:did",
            "dental_issue.u",
            update::<Dental>,
        )
        .acl("patients/med:write")
        .summary("Update a dental issue"),
        Route::delete(
            "/api/patient/:pid/dental_issue/:did",
            "dental_issue.d",
            delete::<Dental>,
        )
        .acl("patients/med:write")
        .summary("Delete a dental issue"),
    ];
}

hearth_sdk::export!(PatientIssue);

/// What OpenEMR stores from a body.
const COLUMNS: &[Column] = &[
    Column::text("title"),
    Column::datetime("begdate"),
    Column::datetime("enddate"),
    Column::text("diagnosis"),
];

/// OpenEMR answers the raw `lists` rows.
const SELECT: &str = "SELECT l.* FROM lists l";

/// ListService's rules: a title on insert; dates take `YYYY-MM-DD` as well as
/// `YYYY-MM-DD HH:MM:SS`. On update every rule is optional but empty values still fail.
fn rules(v: &mut Validator<'_>, insert: bool) {
    v.field("title", "title", insert).length_between(2, 255);
    v.optional("begdate", "begdate").date_or_datetime();
    v.optional("enddate", "enddate").date_or_datetime();
    v.optional("diagnosis", "diagnosis").length_between(2, 255);
}

/// The patient's issues of kind `K`, newest first.
fn list<K: Kind>(req: &Request) -> Result<Response> {
    let patient = emr::patient(req)?;
    let mut search = K::ISSUES.search(Some(patient.pid));
    search.sort(None, &[], "l.date DESC, l.id DESC");
    crud::page(req, &search, SELECT, Json::from_row)
}

fn get_one<K: Kind>(req: &Request) -> Result<Response> {
    let patient = emr::patient(req)?;
    let mut search = K::ISSUES.search(Some(patient.pid));
    search.equals("id", req.id(K::ID)?);
    Ok(Response::ok(crud::find(&search, SELECT, Json::from_row)?))
}

fn create<K: Kind>(req: &Request) -> Result<Response> {
    let patient = emr::patient(req)?;
    let fields = req.fields(COLUMNS, |v| rules(v, true))?;
    let (id, _) = K::ISSUES.insert(req, patient.pid, &fields)?;
    Ok(Response::created(Json::object().field("id", id).end()))
}

fn update<K: Kind>(req: &Request) -> Result<Response> {
    let patient = emr::patient(req)?;
    let id = req.id(K::ID)?;
    let fields = req.fields(COLUMNS, |v| rules(v, false))?;
    K::ISSUES.update(patient.pid, IssueKey::Id(id), &fields)?;
    Ok(Response::ok(Json::object().field("id", id).end()))
}

fn delete<K: Kind>(req: &Request) -> Result<Response> {
    let patient = emr::patient(req)?;
    K::ISSUES.delete(patient.pid, IssueKey::Id(req.id(K::ID)?))?;
    Ok(Response::ok(Json::raw("true")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};
    use serde_json::json;

    fn patient() -> Rows {
        Rows::from_values(
            &["pid", "uuid"],
            vec![vec![
                7.into(),
                "90cde167-0000-4000-8000-000000000001".into(),
            ]],
        )
    }

    fn medication_rows() -> Rows {
        Rows::from_values(
            &["id", "uuid", "type", "title", "pid"],
            vec![vec![
                21.into(),
                "u-21".into(),
                "medication".into(),
                "Aspirin".into(),
                7.into(),
            ]],
        )
    }

    #[test]
    fn create_accepts_dates_and_datetimes_and_gives_a_uuid() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_query(
                "INSERT INTO lists",
                Rows::from_values(&["id"], vec![vec![21.into()]]),
            );
        let body = json!({"title": "Aspirin", "begdate": "2013-04-13", "enddate": "2013-05-01 08:00:00", "diagnosis": "ICD10:I10"});
        let response =
            host.call::<PatientIssue>(TestRequest::post("/api/patient/7/medication", body));
        assert_eq!(response.status, 201, "{}", response.text());
        assert_eq!(response.body_json()["data"], json!({"id": 21}));
        let (sql, params) = &host.writes()[0];
        assert!(sql.contains(r#""uuid""#), "{sql}");
        assert_eq!(
            params[0],
            Value::from("00000000-0000-4000-8000-000000000001")
        );
        assert!(params.contains(&Value::from("medication")) && params.contains(&Value::Integer(7)));
        assert!(
            params.contains(&Value::from("2013-04-13 00:00:00"))
                && params.contains(&Value::from("2013-05-01 08:00:00"))
        );
    }

    #[test]
    fn each_kind_writes_its_own_list_type() {
        for (path, kind) in [("surgery", "surgery"), ("dental_issue", "dental")] {
            let mut host = MockHost::new()
                .on_query("FROM patient_data", patient())
                .on_query(
                    "INSERT INTO lists",
                    Rows::from_values(&["id"], vec![vec![1.into()]]),
                );
            let response = host.call::<PatientIssue>(TestRequest::post(
                &format!("/api/patient/7/{path}"),
                json!({"title": "Crown"}),
            ));
            assert_eq!(response.status, 201);
            assert!(host.writes()[0].1.contains(&Value::from(kind)));
        }
    }

    #[test]
    fn create_reports_each_rule() {
        let mut host = MockHost::new().on_query("FROM patient_data", patient());
        let body = json!({"begdate": "13/04/2013", "enddate": "2013-02-30", "diagnosis": "I"});
        let response =
            host.call::<PatientIssue>(TestRequest::post("/api/patient/7/medication", body));
        assert_eq!(response.status, 400);
        let errors = &response.body_json()["validationErrors"];
        assert_eq!(
            errors["title"]["Required::NON_EXISTENT_KEY"],
            "title must be provided, but does not exist"
        );
        assert_eq!(
            errors["begdate"]["DateTime::INVALID_VALUE"],
            "begdate must be a valid date"
        );
        assert_eq!(
            errors["enddate"]["DateTime::INVALID_VALUE"],
            "enddate must be a valid date"
        );
        assert_eq!(
            errors["diagnosis"]["LengthBetween::TOO_SHORT"],
            "diagnosis must be 2 characters or longer"
        );
        let response = host.call::<PatientIssue>(TestRequest::post(
            "/api/patient/7/medication",
            json!({"title": "A"}),
        ));
        assert_eq!(
            response.body_json()["validationErrors"]["title"]["LengthBetween::TOO_SHORT"],
            "title must be 2 characters or longer"
        );
        assert!(host.writes().is_empty());
    }

    #[test]
    fn a_missing_patient_is_404() {
        let mut host = MockHost::new().on_query("FROM patient_data", Rows::default());
        assert_eq!(
            host.call::<PatientIssue>(TestRequest::post(
                "/api/patient/8/medication",
                json!({"title": "Aspirin"})
            ))
            .status,
            404
        );
        assert_eq!(
            host.call::<PatientIssue>(TestRequest::get("/api/patient/8/medication"))
                .status,
            404
        );
        assert_eq!(
            host.call::<PatientIssue>(TestRequest::get("/api/patient/x/medication"))
                .status,
            400
        );
        assert!(host.writes().is_empty());
    }

    #[test]
    fn updates_and_deletes_are_scoped_by_patient_and_type() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_execute("UPDATE lists", 0)
            .on_execute("DELETE FROM lists", 0);
        let response = host.call::<PatientIssue>(TestRequest::put(
            "/api/patient/7/medication/21",
            json!({"title": "Ibuprofen"}),
        ));
        assert_eq!(
            response.status, 404,
            "a medication of another patient (or a surgery) is not found"
        );
        let response = host.call::<PatientIssue>(TestRequest::delete("/api/patient/7/surgery/21"));
        assert_eq!(response.status, 404);
        let writes = host.writes();
        assert!(
            writes[0]
                .0
                .ends_with(r#"WHERE "id" = $3 AND "pid" = $4 AND "type" = $5"#),
            "{}",
            writes[0].0
        );
        assert_eq!(
            writes[0].1[2..],
            [
                Value::Integer(21),
                Value::Integer(7),
                Value::from("medication")
            ]
        );
        assert_eq!(
            writes[1].1,
            vec![
                Value::Integer(21),
                Value::Integer(7),
                Value::from("surgery")
            ]
        );
    }

    #[test]
    fn update_answers_the_id_and_delete_true() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_execute("UPDATE lists", 1)
            .on_execute("DELETE FROM lists", 1);
        let response = host.call::<PatientIssue>(TestRequest::put(
            "/api/patient/7/dental_issue/21",
            json!({"enddate": "2020-01-01"}),
        ));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_json()["data"], json!({"id": 21}));
        let response =
            host.call::<PatientIssue>(TestRequest::delete("/api/patient/7/dental_issue/21"));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_json()["data"], json!(true));
    }

    #[test]
    fn reads_answer_raw_rows_of_the_patient() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_query("FROM lists", medication_rows());
        let response = host.call::<PatientIssue>(TestRequest::get("/api/patient/7/medication"));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_json()["data"][0]["title"], "Aspirin");
        assert!(
            host.queries()[1]
                .0
                .contains("ORDER BY l.date DESC, l.id DESC")
        );
        let response = host.call::<PatientIssue>(TestRequest::get("/api/patient/7/medication/21"));
        assert_eq!(response.body_json()["data"]["id"], 21);
        let (sql, params) = &host.queries()[3];
        assert!(
            sql.contains(r#"l."type" = $1 AND l."pid" = $2 AND l."id" = $3"#),
            "{sql}"
        );
        assert_eq!(
            params[..3],
            [
                Value::from("medication"),
                Value::Integer(7),
                Value::Integer(21)
            ]
        );

        let mut empty = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_query("FROM lists", Rows::default());
        assert_eq!(
            empty
                .call::<PatientIssue>(TestRequest::get("/api/patient/7/medication/22"))
                .status,
            404
        );
        let response = empty.call::<PatientIssue>(TestRequest::get("/api/patient/7/medication"));
        assert_eq!(response.status, 200, "an empty list is not an error");
        assert_eq!(response.body_json()["data"], json!([]));
    }
}
