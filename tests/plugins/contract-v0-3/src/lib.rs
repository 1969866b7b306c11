//! A plugin built with the SDK against the current contract (0.3.0) that uses what 0.3.0
//! added: `GET /api/contract/v0-3` reads the patients' names in each row form a query may
//! ask for — typed values, the host's JSON members, both — and answers what each gave, so
//! the test can check that they agree and that each form carries only what it should.

use hearth_sdk::prelude::*;
use hearth_sdk::store::Form;

/// The plugin.
pub struct Current;

impl Resource for Current {
    const NAME: &'static str = "test-contract-v0-3";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Built against contract 0.3.0 (tests only)";
    const READS: &'static [&'static str] = &["patient_data"];
    const ROUTES: &'static [Route] = &[Route::get("/api/contract/v0-3", "patient.s", answer)
        .summary("Reads the patients' names in each row form")];
}

hearth_sdk::export!(Current);

const NAMES: &str = "SELECT pid, fname, lname FROM patient_data ORDER BY pid";

fn answer(_: &Request) -> Result<Response> {
    // Typed values: read column by column (the SDK renders the members itself).
    let values = store::query(NAMES, params![])?;
    let mut typed = Json::array();
    for row in values.iter() {
        typed.push(format!(
            "{} {}",
            row.text("fname").unwrap_or_default(),
            row.text("lname").unwrap_or_default()
        ));
    }
    let rendered: Vec<Json> = values.iter().map(|row| Json::from_row(&row)).collect();
    // The host's members only: passed through whole.
    let json = store::query_with(NAMES, params![], Form::Json)?;
    let mut host = Json::array();
    for row in json.iter() {
        host.push(Json::from_row(&row));
    }
    // Both: one column read, the rest passed through.
    let both = store::query_with(NAMES, params![], Form::Both)?;
    let mut mixed = Json::array();
    for row in both.iter() {
        let mut item = Json::object();
        item.row(&row).field("is_first", row.int("pid") == Some(1));
        mixed.push(item.end());
    }
    let mut sdk = Json::array();
    for item in rendered {
        sdk.push(item);
    }
    let mut data = Json::object();
    data.field("contract", hearth_sdk::CONTRACT_VERSION)
        .field("typed", typed.end())
        .field("sdk_members", sdk.end())
        .field("host_members", host.end())
        .field("both", mixed.end())
        .field("request_id", hearth_sdk::request_id());
    Ok(Response::ok(data.end()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    #[test]
    fn each_query_asks_for_its_form_and_all_agree() {
        let rows = Rows::from_values(
            &["pid", "fname", "lname"],
            vec![vec![1.into(), "Ann".into(), "Smith".into()]],
        );
        let mut host = MockHost::new().on_query("FROM patient_data", rows);
        let response = host.call::<Current>(TestRequest::get("/api/contract/v0-3"));
        assert_eq!(response.status, 200, "{}", response.text());
        let data = &response.body_json()["data"];
        assert_eq!(data["contract"], "0.3.0");
        assert_eq!(data["typed"][0], "Ann Smith");
        assert_eq!(data["sdk_members"], data["host_members"]);
        assert_eq!(data["host_members"][0]["lname"], "Smith");
        assert_eq!(data["both"][0]["is_first"], true);
        let forms: Vec<Form> = host.query_forms().iter().map(|(_, form)| *form).collect();
        assert_eq!(forms, [Form::Values, Form::Json, Form::Both]);
    }
}
