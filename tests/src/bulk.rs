//! What the Bulk Data export tests (`bulk.rs`, `bulk_rules.rs`) share: kick-off headers,
//! backend-services tokens, requests, seeding and site settings.

use hearth::auth::tokens::{Grant, Role};

use crate::{Reply, TestApp, Value, json};

/// The headers every kick-off sends.
pub const KICK_OFF: [(&str, &str); 2] = [
    ("accept", "application/fhir+json"),
    ("prefer", "respond-async"),
];

/// A backend-services token of `client` with `scope`.
pub async fn system_token(app: &TestApp, site: &str, client: &str, scope: &str) -> String {
    let site_ref = app.state.sites.get(site).await.expect("the site");
    let subject = hearth::auth::users::system_user(&site_ref)
        .await
        .expect("the system user");
    app.issue(
        site,
        Grant {
            client_id: client.into(),
            subject,
            role: Role::System,
            username: None,
            acl_role: None,
            scope: scope.into(),
            patient: None,
            context: json!({}),
            lifetime: 3600,
        },
    )
    .await
}

pub async fn send(
    app: &TestApp,
    method: reqwest::Method,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Reply {
    let mut request = app.client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/fhir+json")
            .body(body.to_string());
    }
    Reply::from(request.send().await.expect("the server answers")).await
}

pub async fn seed(app: &TestApp, site: &str, patients: u64) -> hearth_demo::Summary {
    let site_ref = app.state.sites.get(site).await.expect("the site");
    let options = hearth_demo::SeedOptions {
        patients,
        seed: 7,
        batch: 50,
    };
    hearth::cli::seed_demo(&site_ref, &options, |_, _| {})
        .await
        .expect("seeding")
}

pub async fn set(app: &TestApp, site: &str, name: &str, value: &str) {
    let site_ref = app.state.sites.get(site).await.expect("the site");
    hearth::oauth::settings::set(&site_ref, name, value)
        .await
        .expect("a setting");
}

pub fn job_of(status_url: &str) -> String {
    status_url.rsplit_once("job=").expect("job=").1.to_owned()
}
