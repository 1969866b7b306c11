//! A second version of the `patient` plugin, for hot-reload tests: it calls itself
//! `patient` 2.0.0, serves `GET /api/patient` only, and marks every answer (a header,
//! a top-level field and every item) with its version, so a test can tell which version
//! produced each response and that no response mixes the two.

use hearth_sdk::prelude::*;

/// The patient plugin, version 2.
pub struct PatientV2;

const VERSION: &str = env!("CARGO_PKG_VERSION");

impl Resource for PatientV2 {
    const NAME: &'static str = "patient";
    const VERSION: &'static str = VERSION;
    const DESCRIPTION: &'static str = "Patient list, version 2 (hot reload tests)";
    const READS: &'static [&'static str] = &["patient_data"];
    const ROUTES: &'static [Route] = &[Route::get("/api/patient", "patient.s", list)
        .acl("patients/demo")
        .summary("List patients (version 2)")
        .answers_list(Schema::Object(&[
            Prop::new("uuid", Schema::Format("uuid")).required(),
            Prop::new("pid", Schema::Integer).required(),
            Prop::new("fname", Schema::String),
            Prop::new("lname", Schema::String),
            Prop::new("served_by", Schema::String)
                .required()
                .describe("The plugin version that answered"),
        ]))];
}

hearth_sdk::export!(PatientV2);

fn list(_: &Request) -> Result<Response> {
    // Rows passed through whole: their members are all this route reads.
    let rows = store::query_with(
        "SELECT uuid, pid, fname, lname FROM patient_data ORDER BY pid",
        params![],
        store::Form::Json,
    )?;
    let mut items = Json::array();
    for row in rows.iter() {
        let mut item = Json::object();
        item.row(&row).field("served_by", VERSION);
        items.push(item.end());
    }
    let mut body = Json::object();
    body.field("plugin_version", VERSION)
        .field("validationErrors", Json::empty_array())
        .field("internalErrors", Json::empty_array())
        .field("data", items.end());
    Ok(Response::json(200, body.end()).header("x-plugin-version", VERSION))
}
