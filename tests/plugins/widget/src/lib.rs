//! A plugin whose route needs a scope of its own: `GET /api/widget` needs `widget.s`,
//! which is in no OpenEMR catalogue, so a client can obtain `user/widget.s` only on a
//! site that loads this plugin.

use hearth_sdk::prelude::*;

/// The plugin.
pub struct Widget;

impl Resource for Widget {
    const NAME: &'static str = "test-widget";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "A resource with its own scope (tests only)";
    const ROUTES: &'static [Route] =
        &[Route::get("/api/widget", "widget.s", list).summary("List the widgets")];
}

hearth_sdk::export!(Widget);

fn list(_: &Request) -> Result<Response> {
    let mut data = Json::object();
    data.field("widgets", 3);
    Ok(Response::ok(data.end()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    #[test]
    fn the_list_answers_in_the_envelope() {
        let response = MockHost::new().call::<Widget>(TestRequest::get("/api/widget"));
        assert_eq!(response.status, 200, "{}", response.text());
        assert_eq!(response.body_json()["data"]["widgets"], 3);
    }
}
