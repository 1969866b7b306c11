//! A stricter patient list under the same route as `patient` (`GET /api/patient`): it
//! refuses any query parameter and answers only names. Tests load it on one site while
//! another site loads `patient`, and load both on one site to see the collision refused.

use hearth_sdk::prelude::*;

/// The strict patient list.
pub struct PatientStrict;

impl Resource for PatientStrict {
    const NAME: &'static str = "patient-strict";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Patient names only, no filters (per-site plugin tests)";
    const READS: &'static [&'static str] = &["patient_data"];
    const ROUTES: &'static [Route] = &[Route::get("/api/patient", "patient.s", list)
        .acl("patients/demo")
        .summary("List patient names")];
}

hearth_sdk::export!(PatientStrict);

fn list(req: &Request) -> Result<Response> {
    if let Some((key, _)) = req.query_pairs().first() {
        return Err(ApiError::invalid(
            key,
            "unknown",
            "this site accepts no filters on the patient list",
        ));
    }
    // Rows passed through whole: their members are all this route reads.
    let rows = store::query_with(
        "SELECT fname, lname FROM patient_data ORDER BY pid",
        params![],
        store::Form::Json,
    )?;
    let mut items = Json::array();
    for row in rows.iter() {
        let mut item = Json::object();
        item.row(&row).field("strict", true);
        items.push(item.end());
    }
    Ok(Response::ok(items.end()))
}
