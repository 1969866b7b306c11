//! OpenEMR medical problems (`lists` rows of type `medical_problem`): the routes across
//! patients and per patient, with ConditionValidator's rules and OpenEMR's response
//! fields (`diagnosis` as a coding map).

use hearth_emr::prelude::*;
use hearth_emr::{IssueResource, Issues};

/// The medical problem resource.
pub struct MedicalProblem;

impl Resource for MedicalProblem {
    const NAME: &'static str = "medical-problem";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Medical problems (OpenEMR lists, type medical_problem)";
    const WORDS: &'static [Words] = &[Words::new(
        "medical_problem",
        "Medical problems",
        "medical problems",
    )];
    const READS: &'static [&'static str] = &[
        "patient_data",
        "users",
        "list_options",
        "issue_encounter",
        "form_encounter",
    ];
    const WRITES: &'static [&'static str] = &["lists"];
    const ROUTES: &'static [Route] = &hearth_emr::issue_routes!(PROBLEMS,
        kind = "medical_problem", param = "muuid", noun = "medical problems",
        acl = { across = "encounters/notes", list = "encounters/notes", read = "patients/med",
                write = "patients/med:write" });
}

hearth_sdk::export!(MedicalProblem);

const PROBLEMS: IssueResource = IssueResource {
    issues: Issues::MEDICAL_PROBLEMS,
    param: "muuid",
    select: SELECT,
    map: problem_json,
    record: RECORD,
    columns: COLUMNS,
    rules,
};

/// What the routes answer for one problem (every `lists` column besides).
const RECORD: Schema = Schema::Object(&[
    Prop::new("id", Schema::Integer).required(),
    Prop::new("uuid", Schema::Format("uuid")).required(),
    Prop::new("puuid", Schema::Format("uuid")),
    Prop::new("title", Schema::Nullable(&Schema::String)),
    Prop::new("begdate", Schema::Nullable(&Schema::String)),
    Prop::new("enddate", Schema::Nullable(&Schema::String)),
    Prop::new("diagnosis", coding::FIELD_SCHEMA),
    Prop::new("encounter_uuid", Schema::Nullable(&Schema::String)),
    Prop::new("verification_title", Schema::Nullable(&Schema::String)),
]);

/// What OpenEMR lets a body set.
const COLUMNS: &[Column] = &[
    Column::text("title"),
    Column::datetime("begdate"),
    Column::datetime("enddate"),
    Column::text("diagnosis"),
];

/// Every `lists` column plus OpenEMR's derived fields. The encounter is the latest one
/// the problem was linked to.
const SELECT: &str = "SELECT l.*, l.pid AS patient_id, \
    (SELECT fe.uuid FROM issue_encounter ie JOIN form_encounter fe ON fe.pid = ie.pid AND fe.encounter = ie.encounter \
      WHERE ie.list_id = l.id ORDER BY ie.encounter DESC LIMIT 1) AS encounter_uuid, \
    p.uuid AS puuid, p.uuid AS patient_uuid, l.uuid AS condition_uuid, l.modifydate AS last_updated_time, \
    ver.title AS verification_title, u.id AS provider_id, u.npi AS provider_npi, u.uuid AS provider_uuid, \
    u.username AS provider_username \
    FROM lists l JOIN patient_data p ON p.pid = l.pid \
    LEFT JOIN list_options ver ON ver.list_id = 'condition-verification' AND ver.option_id = l.verification \
    LEFT JOIN users u ON u.username = l.\"user\"";

/// ConditionValidator: a title and a start date on insert; on update every rule is
/// optional but empty values still fail. Dates take `YYYY-MM-DD` or a datetime.
fn rules(v: &mut Validator<'_>, insert: bool) {
    v.field("title", "title", insert).length_between(2, 255);
    v.field("begdate", "begdate", insert).date_or_datetime();
    v.optional("enddate", "enddate").date_or_datetime();
    v.optional("diagnosis", "diagnosis").length_between(2, 255);
}

fn problem_json(row: &Row<'_>) -> Json {
    let mut out = Json::object();
    out.row_except(row, &["diagnosis"])
        .field("diagnosis", coding::field(row.get("diagnosis")));
    out.end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};
    use serde_json::json;

    const PUUID: &str = "90cde167-0000-4000-8000-000000000001";
    const MUUID: &str = "90cde167-0000-4000-8000-0000000000c1";

    fn patient() -> Rows {
        Rows::from_values(&["pid", "uuid"], vec![vec![7.into(), PUUID.into()]])
    }

    fn problem_rows() -> Rows {
        Rows::from_values(
            &["id", "uuid", "type", "title", "diagnosis", "pid"],
            vec![vec![
                12.into(),
                MUUID.into(),
                "medical_problem".into(),
                "Hypertension".into(),
                "ICD10:I10".into(),
                7.into(),
            ]],
        )
    }

    fn path(rest: &str) -> String {
        format!("/api/patient/{PUUID}/medical_problem{rest}")
    }

    #[test]
    fn create_answers_id_and_uuid_and_writes_the_type() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_query(
                "INSERT INTO lists",
                Rows::from_values(&["id"], vec![vec![12.into()]]),
            );
        let body = json!({"title": "Hypertension", "begdate": "2020-01-02", "diagnosis": "ICD10:I10", "pid": 99});
        let response = host.call::<MedicalProblem>(TestRequest::post(&path(""), body));
        assert_eq!(response.status, 201, "{}", response.text());
        assert_eq!(
            response.body_json()["data"],
            json!({"id": 12, "uuid": "00000000-0000-4000-8000-000000000001"})
        );
        let (sql, params) = &host.writes()[0];
        assert!(
            params.contains(&Value::from("medical_problem")) && params.contains(&Value::Integer(7))
        );
        assert!(
            !params.contains(&Value::Integer(99)),
            "the patient comes from the path: {sql}"
        );
        assert!(params.contains(&Value::from("2020-01-02 00:00:00")));
    }

    #[test]
    fn create_reports_each_condition_rule() {
        let mut host = MockHost::new().on_query("FROM patient_data", patient());
        let body = json!({"title": "H", "enddate": "2020-02-30", "diagnosis": "I"});
        let response = host.call::<MedicalProblem>(TestRequest::post(&path(""), body));
        assert_eq!(response.status, 400);
        let errors = &response.body_json()["validationErrors"];
        assert_eq!(
            errors["title"]["LengthBetween::TOO_SHORT"],
            "title must be 2 characters or longer"
        );
        assert_eq!(
            errors["begdate"]["Required::NON_EXISTENT_KEY"],
            "begdate must be provided, but does not exist"
        );
        assert_eq!(
            errors["enddate"]["DateTime::INVALID_VALUE"],
            "enddate must be a valid date"
        );
        assert_eq!(
            errors["diagnosis"]["LengthBetween::TOO_SHORT"],
            "diagnosis must be 2 characters or longer"
        );
        assert!(host.writes().is_empty());
    }

    #[test]
    fn a_problem_for_a_missing_patient_is_404() {
        let mut host = MockHost::new().on_query("FROM patient_data", Rows::default());
        let response = host.call::<MedicalProblem>(TestRequest::post(
            &path(""),
            json!({"title": "Flu", "begdate": "2020-01-02"}),
        ));
        assert_eq!(response.status, 404);
        assert!(host.writes().is_empty());
    }

    #[test]
    fn diagnosis_is_answered_as_a_coding_map() {
        let mut host = MockHost::new().on_query("FROM lists", problem_rows());
        let response =
            host.call::<MedicalProblem>(TestRequest::get(&format!("/api/medical_problem/{MUUID}")));
        assert_eq!(response.status, 200);
        let data = &response.body_json()["data"];
        assert_eq!(data["title"], "Hypertension");
        assert_eq!(
            data["diagnosis"]["I10"]["system"],
            "http://hl7.org/fhir/sid/icd-10-cm"
        );
        let (sql, params) = &host.queries()[0];
        assert!(
            sql.contains(r#"WHERE l."type" = $1 AND l."uuid" = $2"#),
            "{sql}"
        );
        assert_eq!(params[0], Value::from("medical_problem"));
    }

    #[test]
    fn the_per_patient_read_answers_a_list_like_openemr() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_query("FROM lists", problem_rows());
        let response = host.call::<MedicalProblem>(TestRequest::get(&path(&format!("/{MUUID}"))));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_json()["data"][0]["uuid"], MUUID);
        let (sql, _) = &host.queries()[1];
        assert!(sql.contains(r#"l."pid" = $2 AND l."uuid" = $3"#), "{sql}");
    }

    #[test]
    fn update_and_delete_of_another_patients_problem_are_404() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_execute("UPDATE lists", 0)
            .on_execute("DELETE FROM lists", 0);
        let response = host.call::<MedicalProblem>(TestRequest::put(
            &path(&format!("/{MUUID}")),
            json!({"title": "Flu"}),
        ));
        assert_eq!(response.status, 404);
        let response =
            host.call::<MedicalProblem>(TestRequest::delete(&path(&format!("/{MUUID}"))));
        assert_eq!(response.status, 404);
        for (sql, params) in host.writes() {
            assert!(
                sql.ends_with(r#""uuid" = $1 AND "pid" = $2 AND "type" = $3"#)
                    || sql.ends_with(r#""uuid" = $3 AND "pid" = $4 AND "type" = $5"#),
                "{sql}"
            );
            assert!(params.contains(&Value::Integer(7)));
        }
    }

    #[test]
    fn update_answers_the_record_and_delete_its_uuid() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_execute("UPDATE lists", 1)
            .on_execute("DELETE FROM lists", 1)
            .on_query("FROM lists", problem_rows());
        let response = host.call::<MedicalProblem>(TestRequest::put(
            &path(&format!("/{MUUID}")),
            json!({"enddate": "2021-01-01"}),
        ));
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.body_json()["data"]["title"], "Hypertension");
        let response = host.call::<MedicalProblem>(TestRequest::put(
            &path(&format!("/{MUUID}")),
            json!({"title": ""}),
        ));
        assert_eq!(
            response.body_json()["validationErrors"]["title"]["NotEmpty::EMPTY_VALUE"],
            "title must not be empty"
        );
        let response =
            host.call::<MedicalProblem>(TestRequest::delete(&path(&format!("/{MUUID}"))));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_json()["data"], json!({"uuid": MUUID}));
    }

    #[test]
    fn lists_page_through_every_patients_problems() {
        let mut host = MockHost::new().on_query("FROM lists", problem_rows());
        let response = host.call::<MedicalProblem>(TestRequest::get(
            "/api/medical_problem?_limit=1&title=ignored",
        ));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_json()["data"][0]["title"], "Hypertension");
        let (sql, _) = &host.queries()[0];
        assert!(
            sql.contains(r#"WHERE l."type" = $1 ORDER BY l."id" ASC NULLS FIRST LIMIT $2"#)
                && !sql.contains("title\" ="),
            "{sql}"
        );
    }
}
