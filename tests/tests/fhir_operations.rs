//! `GET /fhir/OperationDefinition` and `/fhir/OperationDefinition/{name}` (anonymous),
//! the definitions of the operations the host and the site's plugins serve, listed in
//! the CapabilityStatement; and the host's `$versions`.

use hearth_tests::fhir::{Documents, fhir};
use hearth_tests::{both, json};

both! {
    async fn operation_definitions_are_listed_read_and_advertised(app) {
        let mut docs = Documents::default();
        let get = async |path: &str, headers: &[(&str, &str)]| {
            let mut request = app.client.get(fhir(app, "default", path));
            for (name, value) in headers {
                request = request.header(*name, *value);
            }
            hearth_tests::Reply::from(request.send().await.expect("sent")).await
        };
        let list = get("/OperationDefinition", &[]).await;
        assert_eq!(list.status, 200, "anonymous: {}", list.text);
        assert_eq!(list.header("content-type"), Some("application/fhir+json"));
        let bundle = docs.keep(&list);
        assert_eq!(bundle["type"], "searchset");
        assert_eq!(bundle["total"], bundle["entry"].as_array().unwrap().len());
        let versions = bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["resource"]["code"] == "versions")
            .expect("the host's $versions");
        let url = fhir(app, "default", "/OperationDefinition/versions");
        assert_eq!(versions["fullUrl"], url);
        assert_eq!(versions["search"]["mode"], "match");
        assert_eq!(versions["resource"]["url"], url);
        assert_eq!(versions["resource"]["system"], true);

        let read = get("/OperationDefinition/versions", &[]).await;
        assert_eq!(read.status, 200, "{}", read.text);
        let definition = docs.keep(&read);
        assert_eq!(definition, versions["resource"]);
        assert_eq!(definition["kind"], "operation");
        assert_eq!(definition["parameter"][0]["name"], "version");
        let dollar = get("/OperationDefinition/$versions", &[]).await;
        assert_eq!(dollar.json, definition, "OpenEMR's $-prefixed id reads the same");

        let missing = get("/OperationDefinition/nothing", &[]).await;
        assert_eq!(missing.status, 404);
        assert_eq!(docs.keep(&missing)["resourceType"], "OperationOutcome");
        let ignored = get("/OperationDefinition?name=x", &[]).await;
        assert_eq!(ignored.status, 200);
        assert_eq!(ignored.json["link"][0]["url"], fhir(app, "default", "/OperationDefinition"));
        let strict = get("/OperationDefinition?name=x", &[("prefer", "handling=strict")]).await;
        assert_eq!(strict.status, 400);
        assert!(docs.keep(&strict)["issue"][0]["diagnostics"].as_str().unwrap().contains("name"));

        let statement = get("/metadata", &[]).await.json;
        let rest = &statement["rest"][0];
        assert!(rest["operation"].as_array().unwrap().contains(&json!({"name": "versions", "definition": url})));
        let od = rest["resource"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["type"] == "OperationDefinition")
            .expect("OperationDefinition is served");
        assert_eq!(od["interaction"], json!([{"code": "read"}, {"code": "search-type"}]));
        docs.keep(&get("/metadata", &[]).await);

        let answer = get("/$versions", &[]).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        let parameters = docs.keep(&answer);
        assert_eq!(parameters["resourceType"], "Parameters");
        assert_eq!(parameters["parameter"], json!([{"name": "version", "valueCode": "4.0"}, {"name": "default", "valueCode": "4.0"}]));
        let unknown = app.client.get(app.api("nowhere", "/fhir/OperationDefinition")).send().await.expect("sent");
        assert_eq!(unknown.status(), 404);
        docs.validate();
    }
}
