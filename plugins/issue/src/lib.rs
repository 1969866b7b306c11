//! OpenEMR medications, surgeries and dental issues: `lists` rows of types `medication`,
//! `surgery` and `dental`, served below `/api/patient/:pid/...` with numeric ids. The
//! three differ only by list type and id parameter; the SDK's
//! [`NumberedIssues`](hearth_emr::NumberedIssues) serves each.

use hearth_emr::prelude::*;
use hearth_emr::{Issues, NumberedIssues};

/// The medication, surgery and dental issue resource.
pub struct PatientIssue;

const MEDICATIONS: NumberedIssues = kind(Issues::MEDICATIONS, "mid");
const SURGERIES: NumberedIssues = kind(Issues::SURGERIES, "sid");
const DENTAL: NumberedIssues = kind(Issues::DENTAL, "did");

const fn kind(issues: Issues, param: &'static str) -> NumberedIssues {
    NumberedIssues {
        issues,
        param,
        columns: COLUMNS,
        rules,
    }
}

impl Resource for PatientIssue {
    const NAME: &'static str = "issue";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Medications, surgeries and dental issues (OpenEMR lists)";
    const WORDS: &'static [Words] = &[
        Words::new("medication", "Medications", "medications"),
        Words::new("surgery", "Surgeries", "surgeries"),
        Words::new("dental_issue", "Dental issues", "dental issues"),
    ];
    const READS: &'static [&'static str] = &["patient_data"];
    const WRITES: &'static [&'static str] = &["lists"];
    const ROUTES: &'static [Route] = &hearth_emr::numbered_issue_routes!(
        MEDICATIONS, path = "medication", param = "mid", noun = "medications",
            acl = { read = "patients/med", write = "patients/med:write" };
        SURGERIES, path = "surgery", param = "sid", noun = "surgeries",
            acl = { read = "patients/med", write = "patients/med:write" };
        DENTAL, path = "dental_issue", param = "did", noun = "dental issues",
            acl = { read = "patients/med", write = "patients/med:write" });
}

hearth_sdk::export!(PatientIssue);

/// What OpenEMR stores from a body.
const COLUMNS: &[Column] = &[
    Column::text("title"),
    Column::datetime("begdate"),
    Column::datetime("enddate"),
    Column::text("diagnosis"),
];

/// ListService's rules: a title on insert; dates take `YYYY-MM-DD` as well as
/// `YYYY-MM-DD HH:MM:SS`. On update every rule is optional but empty values still fail.
fn rules(v: &mut Validator<'_>, insert: bool) {
    v.field("title", "title", insert).length_between(2, 255);
    v.optional("begdate", "begdate").date_or_datetime();
    v.optional("enddate", "enddate").date_or_datetime();
    v.optional("diagnosis", "diagnosis").length_between(2, 255);
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
        assert_eq!(response.body_json(), json!({"id": 21}));
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
        let errors = &response.body_json();
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
            response.body_json()["title"]["LengthBetween::TOO_SHORT"],
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
        assert_eq!(response.body_json(), json!({"id": 21}));
        let response =
            host.call::<PatientIssue>(TestRequest::delete("/api/patient/7/dental_issue/21"));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_json(), json!(true));
    }

    #[test]
    fn reads_answer_raw_rows_of_the_patient() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_query("FROM lists", medication_rows());
        let response = host.call::<PatientIssue>(TestRequest::get("/api/patient/7/medication"));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_json()[0]["title"], "Aspirin");
        assert!(
            host.queries()[1]
                .0
                .contains(r#"ORDER BY l."date" DESC NULLS LAST, l."id" DESC"#)
        );
        let response = host.call::<PatientIssue>(TestRequest::get("/api/patient/7/medication/21"));
        assert_eq!(response.body_json()["id"], 21);
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
        assert_eq!(response.body_json(), json!([]));
    }
}
