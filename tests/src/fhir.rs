//! What the FHIR tests share: the validator of every document received
//! (`tests/py/validate_fhir.py`, PyPI `fhir.resources` R4B models), URLs, and readers of
//! searchset Bundles.

use std::io::Write as _;
use std::process::{Command, Stdio};

use crate::{Reply, TestApp, Value, json};

/// Collects the FHIR documents a test received and validates them all at once.
#[derive(Default)]
pub struct Documents(Vec<Value>);

impl Documents {
    /// Keeps a FHIR answer for validation and answers its JSON.
    pub fn keep(&mut self, reply: &Reply) -> Value {
        assert!(
            reply.json.is_object(),
            "a FHIR answer is a JSON object: {}",
            reply.text
        );
        self.0.push(reply.json.clone());
        reply.json.clone()
    }

    /// Keeps a FHIR resource read some other way (an ndjson line) for validation.
    pub fn keep_value(&mut self, resource: Value) {
        self.0.push(resource);
    }

    /// Runs the validator over every document kept; fails the test on any failure.
    pub fn validate(self) {
        assert!(!self.0.is_empty(), "nothing to validate");
        let mut child = Command::new(crate::python())
            .arg(crate::workspace().join("tests/py/validate_fhir.py"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting the FHIR validator");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(serde_json::to_string(&self.0).expect("json").as_bytes())
            .expect("writing to the validator");
        let out = child.wait_with_output().expect("the validator ends");
        assert!(
            out.status.success(),
            "fhir.resources rejected a document:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The URL of `path` under the site's FHIR base.
pub fn fhir(app: &TestApp, site: &str, path: &str) -> String {
    app.api(site, &format!("/fhir{path}"))
}

/// A GET with a bearer token and extra headers.
pub async fn get_with(app: &TestApp, url: &str, token: &str, headers: &[(&str, &str)]) -> Reply {
    let mut request = app.client.get(url).bearer_auth(token);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    Reply::from(request.send().await.expect("the server answers")).await
}

/// Creates a patient through the standard API with `fields`; answers its uuid.
pub async fn patient(app: &TestApp, token: &str, fields: Value) -> String {
    let mut body = json!({"fname": "Ann", "lname": "Smith", "sex": "Female", "DOB": "1980-05-06"});
    for (key, value) in fields.as_object().expect("fields").clone() {
        body[key] = value;
    }
    let reply = app
        .post(&app.api("default", "/api/patient"), token, body)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.json["data"]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned()
}

/// The ids of a Bundle's entries' resources, in order.
pub fn ids(bundle: &Value) -> Vec<String> {
    bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| e["resource"]["id"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A one-id list, to compare with [`ids`].
pub fn only(id: &str) -> Vec<String> {
    vec![id.to_owned()]
}

/// The URL of a Bundle's link with this relation.
pub fn link(bundle: &Value, relation: &str) -> Option<String> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == relation)
        .and_then(|l| l["url"].as_str())
        .map(str::to_owned)
}
