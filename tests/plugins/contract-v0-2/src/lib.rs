//! A plugin built with the SDK against the current contract (0.2.0) that uses what 0.2.0
//! added: `GET /api/contract/v0-2` answers the contract it was built against, the patient
//! count and the request's correlation id from `util.request-id`.

use hearth_sdk::prelude::*;

/// The plugin.
pub struct Current;

impl Resource for Current {
    const NAME: &'static str = "test-contract-v0-2";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Built against contract 0.2.0 (tests only)";
    const READS: &'static [&'static str] = &["patient_data"];
    const ROUTES: &'static [Route] = &[Route::get("/api/contract/v0-2", "patient.s", answer)
        .summary("Counts patients and tells the request id")];
}

hearth_sdk::export!(Current);

fn answer(_: &Request) -> Result<Response> {
    let count = store::query_one("SELECT COUNT(*) AS n FROM patient_data", params![])?
        .and_then(|row| row.int("n"))
        .unwrap_or(0);
    let mut data = Json::object();
    data.field("contract", hearth_sdk::CONTRACT_VERSION);
    data.field("patients", count);
    data.field("request_id", hearth_sdk::request_id());
    Ok(Response::ok(data.end()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{HostCall, MockHost, TestRequest};

    #[test]
    fn the_answer_carries_the_request_id_the_host_gave() {
        let mut host = MockHost::new().with_request_id("req-42").on_query(
            "FROM patient_data",
            Rows::from_values(&["n"], vec![vec![3.into()]]),
        );
        let response = host.call::<Current>(TestRequest::get("/api/contract/v0-2"));
        assert_eq!(response.status, 200, "{}", response.text());
        let body = response.body_json();
        assert_eq!(body["data"]["request_id"], "req-42");
        assert_eq!(body["data"]["patients"], 3);
        assert_eq!(body["data"]["contract"], "0.2.0");
        assert!(
            matches!(host.calls(), [HostCall::Query { .. }, HostCall::RequestId]),
            "{:?}",
            host.calls()
        );
    }
}
