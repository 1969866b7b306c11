//! OpenEMR allergies (`lists` rows of type `allergy`): the routes across patients and
//! per patient (keyed by the patient's uuid), with AllergyIntoleranceValidator's rules
//! and OpenEMR's response fields (`diagnosis` and `reaction` as coding maps).

use hearth_emr::prelude::*;
use hearth_emr::{IssueResource, Issues};

/// The allergy resource.
pub struct Allergy;

impl Resource for Allergy {
    const NAME: &'static str = "allergy";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Allergies (OpenEMR lists, type allergy)";
    const WORDS: &'static [Words] = &[Words::new("allergy", "Allergies", "allergies")];
    const READS: &'static [&'static str] = &["patient_data", "users", "facility", "list_options"];
    const WRITES: &'static [&'static str] = &["lists"];
    const ROUTES: &'static [Route] = &hearth_emr::issue_routes!(ALLERGIES,
        kind = "allergy", param = "auuid", noun = "allergies",
        acl = { across = "patients/med", list = "patients/med", read = "patients/med",
                write = "patients/med:write" });
}

hearth_sdk::export!(Allergy);

const ALLERGIES: IssueResource = IssueResource {
    issues: Issues::ALLERGIES,
    param: "auuid",
    select: SELECT,
    map: allergy_json,
    record: RECORD,
    columns: COLUMNS,
    rules,
};

/// What the routes answer for one allergy (every `lists` column besides).
const RECORD: Schema = Schema::Object(&[
    Prop::new("id", Schema::Integer).required(),
    Prop::new("uuid", Schema::Format("uuid")).required(),
    Prop::new("puuid", Schema::Format("uuid")),
    Prop::new("title", Schema::Nullable(&Schema::String)),
    Prop::new("begdate", Schema::Nullable(&Schema::String)),
    Prop::new("enddate", Schema::Nullable(&Schema::String)),
    Prop::new("diagnosis", coding::FIELD_SCHEMA),
    Prop::new("comments", Schema::Nullable(&Schema::String)),
    Prop::new("reaction", coding::FIELD_SCHEMA),
    Prop::new("reaction_title", Schema::Nullable(&Schema::String)),
]);

/// What OpenEMR lets a body set.
const COLUMNS: &[Column] = &[
    Column::text("title"),
    Column::datetime("begdate"),
    Column::datetime("enddate"),
    Column::text("diagnosis"),
    Column::text_or_null("comments"),
];

/// Every `lists` column plus OpenEMR's derived fields: the recording user as
/// practitioner, that user's facility as organization, reaction and verification titles.
const SELECT: &str = "SELECT l.*, l.pid AS patient_id, u.uuid AS practitioner, u.npi AS practitioner_npi, \
    u.uuid AS practitioner_uuid, f.uuid AS organization, f.uuid AS organization_uuid, p.uuid AS puuid, \
    p.uuid AS patient_uuid, r.title AS reaction_title, r.codes AS reaction_codes, ver.title AS verification_title \
    FROM lists l JOIN patient_data p ON p.pid = l.pid \
    LEFT JOIN users u ON u.username = l.\"user\" \
    LEFT JOIN facility f ON f.id = u.facility_id \
    LEFT JOIN list_options r ON r.list_id = 'reaction' AND r.option_id = l.reaction \
    LEFT JOIN list_options ver ON ver.list_id = 'allergyintolerance-verification' AND ver.option_id = l.verification";

/// AllergyIntoleranceValidator: a title on insert; dates take `YYYY-MM-DD` or a
/// datetime. On update every rule is optional but empty values still fail.
fn rules(v: &mut Validator<'_>, insert: bool) {
    v.field("title", "title", insert).length_between(2, 255);
    v.optional("begdate", "begdate").date_or_datetime();
    v.optional("enddate", "enddate").date_or_datetime();
    v.optional("diagnosis", "diagnosis").length_between(2, 255);
}

/// A reaction with codes becomes their coding map, as in OpenEMR.
fn allergy_json(row: &Row<'_>) -> Json {
    let reacted = row.text("reaction").is_some_and(|r| !r.is_empty());
    let codes = row
        .text("reaction_codes")
        .filter(|c| reacted && !c.is_empty());
    let mut out = Json::object();
    out.row_except(row, &["diagnosis", "reaction", "reaction_codes"])
        .field("diagnosis", coding::field(row.get("diagnosis")));
    match codes {
        Some(codes) => out.field("reaction", coding::map(codes)),
        None => out.field("reaction", row.get("reaction")),
    };
    out.end()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};
    use serde_json::json;

    const PUUID: &str = "90cde167-0000-4000-8000-000000000001";
    const AUUID: &str = "90cde167-0000-4000-8000-0000000000a1";

    fn patient() -> Rows {
        Rows::from_values(&["pid", "uuid"], vec![vec![7.into(), PUUID.into()]])
    }

    fn allergy_rows(reaction: &str, codes: &str) -> Rows {
        Rows::from_values(
            &[
                "id",
                "uuid",
                "title",
                "diagnosis",
                "reaction",
                "reaction_title",
                "reaction_codes",
                "puuid",
            ],
            vec![vec![
                3.into(),
                AUUID.into(),
                "Penicillin".into(),
                "".into(),
                reaction.into(),
                "Hives".into(),
                codes.into(),
                PUUID.into(),
            ]],
        )
    }

    fn path(rest: &str) -> String {
        format!("/api/patient/{PUUID}/allergy{rest}")
    }

    #[test]
    fn the_patient_is_taken_from_its_uuid() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_query("FROM lists", allergy_rows("", ""));
        let response = host.call::<Allergy>(TestRequest::get(&path("")));
        assert_eq!(response.status, 200);
        assert_eq!(host.queries()[0].1, vec![Value::from(PUUID)]);
        let (sql, params) = &host.queries()[1];
        assert!(
            sql.contains(r#"WHERE l."type" = $1 AND l."pid" = $2"#),
            "{sql}"
        );
        assert_eq!(params[..2], [Value::from("allergy"), Value::Integer(7)]);
        let response = host.call::<Allergy>(TestRequest::get(&path(&format!("/{AUUID}"))));
        assert_eq!(response.body_json()["data"][0]["uuid"], AUUID);
    }

    #[test]
    fn create_needs_only_a_title_and_accepts_both_date_forms() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_query(
                "INSERT INTO lists",
                Rows::from_values(&["id"], vec![vec![3.into()]]),
            );
        let body = json!({"title": "Penicillin", "begdate": "2019-05-06", "enddate": "2020-01-01 10:00:00", "comments": "rash"});
        let response = host.call::<Allergy>(TestRequest::post(&path(""), body));
        assert_eq!(response.status, 201, "{}", response.text());
        assert_eq!(response.body_json()["data"]["id"], 3);
        let (_, params) = &host.writes()[0];
        assert!(
            params.contains(&Value::from("2019-05-06 00:00:00"))
                && params.contains(&Value::from("rash"))
        );

        let response = host.call::<Allergy>(TestRequest::post(
            &path(""),
            json!({"begdate": "06/05/2019", "diagnosis": "x"}),
        ));
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
            errors["diagnosis"]["LengthBetween::TOO_SHORT"],
            "diagnosis must be 2 characters or longer"
        );
        assert_eq!(host.writes().len(), 1, "the invalid create wrote nothing");
    }

    #[test]
    fn coded_reactions_become_coding_maps() {
        let mut host =
            MockHost::new().on_query("FROM lists", allergy_rows("hives", "SNOMED-CT:247472004"));
        let response = host.call::<Allergy>(TestRequest::get(&format!("/api/allergy/{AUUID}")));
        let data = &response.body_json()["data"];
        assert_eq!(
            data["reaction"]["247472004"]["system"],
            "http://snomed.info/sct"
        );
        assert_eq!(data["reaction_title"], "Hives");
        assert_eq!(data["diagnosis"], "");
        assert!(data.get("reaction_codes").is_none());

        let mut host = MockHost::new().on_query("FROM lists", allergy_rows("unassessed", ""));
        let response = host.call::<Allergy>(TestRequest::get(&format!("/api/allergy/{AUUID}")));
        assert_eq!(response.body_json()["data"]["reaction"], "unassessed");
    }

    #[test]
    fn changes_to_another_patients_allergy_are_404() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_execute("UPDATE lists", 0)
            .on_execute("DELETE FROM lists", 0);
        assert_eq!(
            host.call::<Allergy>(TestRequest::put(
                &path(&format!("/{AUUID}")),
                json!({"title": "Latex"})
            ))
            .status,
            404
        );
        assert_eq!(
            host.call::<Allergy>(TestRequest::delete(&path(&format!("/{AUUID}"))))
                .status,
            404
        );
        assert!(
            host.writes()
                .iter()
                .all(|(_, params)| params.contains(&Value::Integer(7))
                    && params.contains(&Value::from("allergy")))
        );
    }

    #[test]
    fn unknown_patients_and_allergies_are_404() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", Rows::default())
            .on_query("FROM lists", Rows::default());
        assert_eq!(
            host.call::<Allergy>(TestRequest::post(&path(""), json!({"title": "Latex"})))
                .status,
            404
        );
        assert_eq!(
            host.call::<Allergy>(TestRequest::get(&format!("/api/allergy/{AUUID}")))
                .status,
            404
        );
        assert_eq!(
            host.call::<Allergy>(TestRequest::get("/api/allergy"))
                .status,
            200
        );
        assert!(host.writes().is_empty());
    }
}
