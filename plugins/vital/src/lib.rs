//! OpenEMR vital signs (`form_vitals`, registered in `forms` as `vitals`) of one
//! encounter: `/api/patient/:pid/encounter/:eid/vital`, with OpenEMR's numeric ids,
//! validation rules and response fields.

use hearth_emr::prelude::*;
use hearth_emr::{EncounterForm, Form};

/// The vital signs resource.
pub struct Vital;

impl Resource for Vital {
    const NAME: &'static str = "vital";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Vital signs of an encounter (OpenEMR form_vitals)";
    const WORDS: &'static [Words] = &[Words::new("vital", "Vital signs", "vital signs")];
    const READS: &'static [&'static str] = &["patient_data", "form_encounter", "users"];
    const WRITES: &'static [&'static str] = &["form_vitals", "forms"];
    const ROUTES: &'static [Route] = &[
        Route::get("/api/patient/:pid/encounter/:eid/vital", "vital.s", list)
            .acl("encounters/notes")
            .bare()
            .summary("List an encounter's vitals")
            .params(emr::LIST_PARAMS)
            .answers_list(RECORD),
        Route::post("/api/patient/:pid/encounter/:eid/vital", "vital.c", create)
            .acl("encounters/notes:write")
            .bare()
            .summary("Record vitals")
            .accepts(Schema::Body(&[COLUMNS], &[]))
            .answers(CREATED),
        Route::get(
            "/api/patient/:pid/encounter/:eid/vital/:vid",
            "vital.r",
            get_one,
        )
        .acl("encounters/notes")
        .bare()
        .summary("Read vitals")
        .answers(RECORD),
        Route::put(
            "/api/patient/:pid/encounter/:eid/vital/:vid",
            "vital.u",
            update,
        )
        .acl("encounters/notes:write")
        .bare()
        .summary("Update vitals")
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
    Prop::new("vid", Schema::Integer).required(),
    Prop::new("fid", Schema::Integer).required(),
]);

/// What updating a record answers.
const UPDATED: Schema = Schema::Object(&[Prop::new("vid", Schema::Integer).required()]);

hearth_sdk::export!(Vital);

const FORM: EncounterForm = EncounterForm {
    form: Form::VITALS,
    id_key: "vid",
    select: SELECT,
    sort: Sort {
        alias: "v",
        keys: &[
            SortKey::column("id"),
            SortKey::column("date"),
            SortKey::renamed("date_created", "fo.date"),
            SortKey::column("bps"),
            SortKey::column("bpd"),
            SortKey::column("weight"),
            SortKey::column("height"),
            SortKey::column("temperature"),
            SortKey::column("pulse"),
            SortKey::column("respiration"),
            SortKey::column("BMI"),
            SortKey::column("oxygen_saturation"),
            SortKey::column("last_updated"),
        ],
        default: "-date",
        tiebreak: "-id",
    },
};

/// The measurements a body may set (OpenEMR's vitals form fields).
const COLUMNS: &[Column] = &[
    Column::datetime("date"),
    Column::text_or_null("bps"),
    Column::text_or_null("bpd"),
    Column::real("weight"),
    Column::real("height"),
    Column::real("temperature"),
    Column::text_or_null("temp_method"),
    Column::real("pulse"),
    Column::real("respiration"),
    Column::text_or_null("note"),
    Column::real("BMI"),
    Column::text_or_null("BMI_status"),
    Column::real("waist_circ"),
    Column::real("head_circ"),
    Column::real("oxygen_saturation"),
    Column::real("oxygen_flow_rate"),
    Column::real("inhaled_oxygen_concentration"),
    Column::real("ped_weight_height"),
    Column::real("ped_bmi"),
    Column::real("ped_head_circ"),
    Column::text_or_null("external_id"),
];

/// OpenEMR's numeric vitals (validated as numbers even where stored as text).
const NUMERIC: &[&str] = &[
    "bps",
    "bpd",
    "weight",
    "height",
    "temperature",
    "pulse",
    "respiration",
    "BMI",
    "waist_circ",
    "head_circ",
    "oxygen_saturation",
];

/// The units OpenEMR reports next to each measurement (stored as entered, US units).
const UNITS: &[(&str, &str)] = &[
    ("weight_unit", "lb"),
    ("height_unit", "in"),
    ("head_circ_unit", "in"),
    ("waist_circ_unit", "in"),
    ("temperature_unit", "degF"),
    ("pulse_unit", "/min"),
    ("respiration_unit", "/min"),
    ("BMI_unit", "kg/m2"),
    ("bps_unit", "mm[Hg]"),
    ("bpd_unit", "mm[Hg]"),
    ("inhaled_oxygen_concentration_unit", "%"),
    ("oxygen_saturation_unit", "%"),
    ("oxygen_flow_rate_unit", "L/min"),
    ("ped_weight_height_unit", "%"),
    ("ped_bmi_unit", "%"),
    ("ped_head_circ_unit", "%"),
];

const SELECT: &str = "SELECT p.pid, p.uuid AS puuid, fe.encounter AS eid, fe.uuid AS euuid, \
    u.uuid AS user_uuid, u.npi AS user_npi, v.id, fo.form_id, v.uuid, v.date, v.external_id, v.note, \
    v.bps, v.bpd, v.weight, v.height, v.temperature, v.temp_method, v.pulse, v.respiration, v.\"BMI\", \
    v.\"BMI_status\", v.waist_circ, v.head_circ, v.oxygen_saturation, v.oxygen_flow_rate, \
    v.inhaled_oxygen_concentration, v.ped_weight_height, v.ped_bmi, v.ped_head_circ, v.last_updated, \
    fo.date AS date_created \
    FROM forms fo JOIN form_vitals v ON v.id = fo.form_id \
    JOIN patient_data p ON p.pid = fo.pid \
    JOIN form_encounter fe ON fe.pid = fo.pid AND fe.encounter = fo.encounter \
    LEFT JOIN users u ON u.username = v.\"user\"";

/// OpenEMR's vitals rules: every field optional, measurements numeric, texts 1–255.
fn rules(v: &mut Validator<'_>) {
    for key in NUMERIC {
        v.optional(key, key).numeric();
    }
    for key in ["temp_method", "note", "BMI_status"] {
        v.optional(key, key).length_between(1, 255);
    }
}

fn vital_json(row: &Row<'_>) -> Json {
    let mut out = Json::object();
    out.row(row);
    for (key, unit) in UNITS {
        out.field(key, *unit);
    }
    out.end()
}

fn list(req: &Request) -> Result<Response> {
    FORM.list(req, vital_json)
}

fn get_one(req: &Request) -> Result<Response> {
    FORM.get(req, "vid", vital_json)
}

fn create(req: &Request) -> Result<Response> {
    FORM.create(req, COLUMNS, rules)
}

fn update(req: &Request) -> Result<Response> {
    FORM.update(req, "vid", COLUMNS, rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};
    use serde_json::json;

    const PATH: &str = "/api/patient/7/encounter/41/vital";

    fn found() -> Rows {
        Rows::from_values(&["found"], vec![vec![1.into()]])
    }

    fn vital_rows() -> Rows {
        Rows::from_values(
            &["pid", "eid", "id", "form_id", "weight", "BMI"],
            vec![vec![
                7.into(),
                41.into(),
                5.into(),
                5.into(),
                Value::Real(150.5),
                Value::Real(22.1),
            ]],
        )
    }

    #[test]
    fn create_answers_vid_and_fid() {
        let mut host = MockHost::new()
            .on_query("FROM form_encounter", found())
            .on_query(
                "INSERT INTO form_vitals",
                Rows::from_values(&["id"], vec![vec![5.into()]]),
            )
            .on_query(
                "INSERT INTO forms",
                Rows::from_values(&["id"], vec![vec![9.into()]]),
            );
        let body = json!({"bps": "120", "bpd": 80, "weight": "150.5", "BMI": 22.1, "note": "fine", "temperature": 98.6});
        let response = host.call::<Vital>(TestRequest::post(PATH, body));
        assert_eq!(response.status, 201, "{}", response.text());
        assert_eq!(response.body_json(), json!({"vid": 5, "fid": 9}));
        let (sql, params) = &host.writes()[0];
        assert!(
            sql.contains(r#""BMI""#) && sql.contains(r#""bps""#),
            "{sql}"
        );
        assert!(
            params.contains(&Value::Text("80".into())),
            "blood pressures are stored as text"
        );
        assert!(params.contains(&Value::Real(150.5)));
    }

    #[test]
    fn each_vitals_rule_is_reported() {
        let mut host = MockHost::new().on_query("FROM form_encounter", found());
        let body = json!({"bps": "high", "pulse": "fast", "oxygen_saturation": "x", "note": "", "temp_method": "a".repeat(256)});
        let response = host.call::<Vital>(TestRequest::post(PATH, body));
        assert_eq!(response.status, 400);
        let errors = &response.body_json();
        assert_eq!(errors["bps"]["Numeric::NOT_NUMERIC"], "bps must be numeric");
        assert_eq!(
            errors["pulse"]["Numeric::NOT_NUMERIC"],
            "pulse must be numeric"
        );
        assert_eq!(
            errors["oxygen_saturation"]["Numeric::NOT_NUMERIC"],
            "oxygen_saturation must be numeric"
        );
        assert_eq!(
            errors["note"]["NotEmpty::EMPTY_VALUE"],
            "note must not be empty"
        );
        assert_eq!(
            errors["temp_method"]["LengthBetween::TOO_LONG"],
            "temp_method must be 255 characters or shorter"
        );
        assert!(host.writes().is_empty());
    }

    #[test]
    fn a_vital_for_an_encounter_of_another_patient_is_404() {
        let mut host = MockHost::new().on_query("FROM form_encounter", Rows::default());
        let response = host.call::<Vital>(TestRequest::post(PATH, json!({"weight": 150})));
        assert_eq!(response.status, 404);
        assert!(host.writes().is_empty());
        assert_eq!(
            host.queries()[0].1,
            vec![Value::Integer(7), Value::Integer(41)]
        );
        let response = host.call::<Vital>(TestRequest::get(PATH));
        assert_eq!(response.status, 404);
    }

    #[test]
    fn update_of_a_vital_outside_the_path_is_404_and_changes_nothing() {
        let mut host = MockHost::new().on_query("SELECT fo.id FROM forms fo", Rows::default());
        let response = host.call::<Vital>(TestRequest::put(
            &format!("{PATH}/5"),
            json!({"weight": 151}),
        ));
        assert_eq!(response.status, 404);
        assert!(host.writes().is_empty());

        let mut host = MockHost::new()
            .on_query(
                "SELECT fo.id FROM forms fo",
                Rows::from_values(&["id"], vec![vec![9.into()]]),
            )
            .on_execute("UPDATE form_vitals", 1);
        let response = host.call::<Vital>(TestRequest::put(
            &format!("{PATH}/5"),
            json!({"weight": 151}),
        ));
        assert_eq!(response.status, 200);
        assert_eq!(response.body_json(), json!({"vid": 5}));
    }

    #[test]
    fn reads_carry_openemrs_units() {
        let mut host = MockHost::new().on_query("FROM forms fo", vital_rows());
        let response = host.call::<Vital>(TestRequest::get(&format!("{PATH}/5")));
        assert_eq!(response.status, 200);
        let data = &response.body_json();
        assert_eq!(data["weight"], 150.5);
        assert_eq!(data["weight_unit"], "lb");
        assert_eq!(data["bps_unit"], "mm[Hg]");
        let response = host.call::<Vital>(TestRequest::get(&format!("{PATH}/x")));
        assert_eq!(response.status, 400, "vid is numeric");
    }
}
