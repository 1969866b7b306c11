//! OpenEMR SOAP notes (`form_soap`, registered in `forms` as `soap`) of one encounter:
//! `/api/patient/:pid/encounter/:eid/soap_note`, with OpenEMR's numeric ids and rules.

use hearth_emr::prelude::*;
use hearth_emr::{EncounterForm, Form};

/// The SOAP note resource.
pub struct SoapNote;

impl Resource for SoapNote {
    const NAME: &'static str = "soap-note";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "SOAP notes of an encounter (OpenEMR form_soap)";
    const WORDS: &'static [Words] = &[Words::new("soap_note", "SOAP notes", "SOAP notes")];
    const READS: &'static [&'static str] = &["form_encounter"];
    const WRITES: &'static [&'static str] = &["form_soap", "forms"];
    const ROUTES: &'static [Route] = &[
        Route::get(
            "/api/patient/:pid/encounter/:eid/soap_note",
            "soap_note.s",
            list,
        )
        .acl("encounters/notes")
        .bare()
        .summary("List an encounter's SOAP notes")
        .params(emr::LIST_PARAMS)
        .answers_list(RECORD),
        Route::post(
            "/api/patient/:pid/encounter/:eid/soap_note",
            "soap_note.c",
            create,
        )
        .acl("encounters/notes:write")
        .bare()
        .summary("Write a SOAP note")
        .accepts(Schema::Body(&[COLUMNS], &[]))
        .answers(CREATED),
        Route::get(
            "/api/patient/:pid/encounter/:eid/soap_note/:sid",
            "soap_note.r",
            get_one,
        )
        .acl("encounters/notes")
        .bare()
        .summary("Read a SOAP note")
        .answers(RECORD),
        Route::put(
            "/api/patient/:pid/encounter/:eid/soap_note/:sid",
            "soap_note.u",
            update,
        )
        .acl("encounters/notes:write")
        .bare()
        .summary("Update a SOAP note")
        .accepts(Schema::Body(&[COLUMNS], &[]))
        .answers(UPDATED),
    ];
}

/// A record as the routes answer it.
const RECORD: Schema = Schema::Row(&[
    emr::IDS,
    &[Column::int("pid"), Column::text("date")],
    COLUMNS,
]);

/// What creating a record answers: its id and the id of its `forms` row.
const CREATED: Schema = Schema::Object(&[
    Prop::new("sid", Schema::Integer).required(),
    Prop::new("fid", Schema::Integer).required(),
]);

/// What updating a record answers.
const UPDATED: Schema = Schema::Object(&[Prop::new("sid", Schema::Integer).required()]);

hearth_sdk::export!(SoapNote);

const FORM: EncounterForm = EncounterForm {
    form: Form::SOAP,
    id_key: "sid",
    select: "SELECT s.* FROM forms fo JOIN form_soap s ON s.id = fo.form_id",
    sort: Sort {
        alias: "s",
        keys: &[
            SortKey::column("id"),
            SortKey::column("date"),
            SortKey::column("last_updated"),
        ],
        default: "-date",
        tiebreak: "-id",
    },
};

const PARTS: [&str; 4] = ["subjective", "objective", "assessment", "plan"];

const COLUMNS: &[Column] = &[
    Column::text_or_null("subjective"),
    Column::text_or_null("objective"),
    Column::text_or_null("assessment"),
    Column::text_or_null("plan"),
];

/// OpenEMR's SOAP rules: each part optional, 2 to 65535 characters.
fn rules(v: &mut Validator<'_>) {
    for key in PARTS {
        v.optional(key, key).length_between(2, 65535);
    }
}

fn list(req: &Request) -> Result<Response> {
    FORM.list(req, Json::from_row)
}

fn get_one(req: &Request) -> Result<Response> {
    FORM.get(req, "sid", Json::from_row)
}

fn create(req: &Request) -> Result<Response> {
    FORM.create(req, COLUMNS, rules)
}

fn update(req: &Request) -> Result<Response> {
    FORM.update(req, "sid", COLUMNS, rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};
    use serde_json::json;

    const PATH: &str = "/api/patient/7/encounter/41/soap_note";

    fn found() -> Rows {
        Rows::from_values(&["found"], vec![vec![1.into()]])
    }

    #[test]
    fn create_answers_sid_and_fid() {
        let mut host = MockHost::new()
            .on_query("FROM form_encounter", found())
            .on_query(
                "INSERT INTO form_soap",
                Rows::from_values(&["id"], vec![vec![3.into()]]),
            )
            .on_query(
                "INSERT INTO forms",
                Rows::from_values(&["id"], vec![vec![8.into()]]),
            );
        let body = json!({"subjective": "Cough", "objective": "Clear lungs", "assessment": "URI", "plan": "Rest"});
        let response = host.call::<SoapNote>(TestRequest::post(PATH, body));
        assert_eq!(response.status, 201, "{}", response.text());
        assert_eq!(response.body_json(), json!({"sid": 3, "fid": 8}));
        let writes = host.writes();
        assert!(writes[0].1.contains(&Value::from("Cough")));
        assert!(
            writes[1].1.contains(&Value::from("soap"))
                && writes[1].1.contains(&Value::from("SOAP"))
        );
    }

    #[test]
    fn each_part_must_be_two_characters_or_more() {
        let mut host = MockHost::new().on_query("FROM form_encounter", found());
        let response = host.call::<SoapNote>(TestRequest::post(
            PATH,
            json!({"subjective": "x", "plan": ""}),
        ));
        assert_eq!(response.status, 400);
        let errors = &response.body_json();
        assert_eq!(
            errors["subjective"]["LengthBetween::TOO_SHORT"],
            "subjective must be 2 characters or longer"
        );
        assert_eq!(
            errors["plan"]["NotEmpty::EMPTY_VALUE"],
            "plan must not be empty"
        );
        assert!(host.writes().is_empty());
    }

    #[test]
    fn notes_of_another_encounter_are_404() {
        let mut host = MockHost::new()
            .on_query("FROM form_encounter", Rows::default())
            .on_query("FROM forms fo", Rows::default());
        assert_eq!(
            host.call::<SoapNote>(TestRequest::post(PATH, json!({"plan": "Rest"})))
                .status,
            404
        );
        assert_eq!(host.call::<SoapNote>(TestRequest::get(PATH)).status, 404);
        assert_eq!(
            host.call::<SoapNote>(TestRequest::get(&format!("{PATH}/3")))
                .status,
            404
        );
        assert_eq!(
            host.call::<SoapNote>(TestRequest::put(
                &format!("{PATH}/3"),
                json!({"plan": "Rest"})
            ))
            .status,
            404
        );
        assert!(host.writes().is_empty());
    }

    #[test]
    fn notes_are_read_and_updated_through_their_forms_row() {
        let mut host = MockHost::new()
            .on_query(
                "SELECT fo.id FROM forms fo",
                Rows::from_values(&["id"], vec![vec![8.into()]]),
            )
            .on_query(
                "FROM forms fo",
                Rows::from_values(&["id", "plan"], vec![vec![3.into(), "Rest".into()]]),
            )
            .on_execute("UPDATE form_soap", 1);
        let response = host.call::<SoapNote>(TestRequest::get(&format!("{PATH}/3")));
        assert_eq!(response.body_json()["plan"], "Rest");
        let response = host.call::<SoapNote>(TestRequest::put(
            &format!("{PATH}/3"),
            json!({"plan": "Fluids"}),
        ));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_json(), json!({"sid": 3}));
        let (sql, params) = &host.writes()[0];
        assert!(
            sql.starts_with("UPDATE form_soap")
                && sql.ends_with(r#"WHERE "id" = $3 AND "pid" = $4"#),
            "{sql}"
        );
        assert_eq!(params[2..], [Value::Integer(3), Value::Integer(7)]);
    }
}
