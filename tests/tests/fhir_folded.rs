//! FHIR string search over the folded copies of the columns (`folded_text`, migration
//! 0480, kept by triggers): case- and accent-insensitive starts-with, `:contains` and
//! `:exact` follow every write of the standard API, and wildcards in a value are data.

use hearth_tests::fhir::{Documents, fhir, ids, only, patient};
use hearth_tests::{both, json};

const SCOPES: &str = "openid api:fhir api:oemr user/Patient.rs user/patient.cruds";

both! {
    async fn string_search_follows_writes_and_ignores_case_and_accents(app) {
        let mut docs = Documents::default();
        let token = app.user_token("default", "admin", SCOPES).await;
        let jose = patient(app, &token, json!({"fname": "JOSÉ", "lname": "Ñúñez", "city": "Łódź"})).await;
        let oneil = patient(app, &token, json!({"fname": "Ann", "lname": "O_Neil%"})).await;
        let search = |query: &str| fhir(app, "default", &format!("/Patient?{query}"));
        let mut found = async |query: &str| -> Vec<String> {
            let reply = app.get(&search(query), &token).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            let bundle = docs.keep(&reply);
            let mut got = ids(&bundle);
            got.sort();
            assert_eq!(bundle["total"].as_u64().unwrap() as usize, got.len(), "{query}");
            got
        };
        assert_eq!(found("family=nunez").await, only(&jose));
        assert_eq!(found("family=%C3%91U%C3%91").await, only(&jose), "ÑUÑ: accents and case alike");
        assert_eq!(found("given=jose&family=n").await, only(&jose));
        assert_eq!(found("address-city=lod").await, only(&jose));
        assert_eq!(found("name:contains=une").await, only(&jose));
        assert_eq!(found("family:exact=%C3%91%C3%BA%C3%B1ez").await, only(&jose), ":exact compares as stored");
        assert!(found("family:exact=Nunez").await.is_empty());
        assert_eq!(found("family=o_n").await, only(&oneil), "an underscore is data");
        assert!(found("family=oxn").await.is_empty(), "not a wildcard");
        assert_eq!(found("family=o_neil%25").await, only(&oneil), "a percent sign is data");
        assert!(found("family:contains=l%25x").await.is_empty());

        // A rename through the standard API: the old name no longer finds the patient.
        let renamed = app
            .put(&app.api("default", &format!("/api/patient/{jose}")), &token, json!({"lname": "Muñoz", "city": ""}))
            .await;
        assert_eq!(renamed.status, 200, "{}", renamed.text);
        assert!(found("family=nunez").await.is_empty());
        assert_eq!(found("family=munoz").await, only(&jose));
        assert!(found("address-city=lod").await.is_empty(), "a blanked column is not found");
        assert_eq!(found("given=jose").await, only(&jose), "untouched columns stay");
        let rows = app
            .rows("default", "SELECT field, folded FROM folded_text WHERE tbl = 'patient_data' ORDER BY field, folded")
            .await;
        assert!(rows.contains(&json!({"field": "lname", "folded": "munoz"})), "{rows:?}");
        assert!(!rows.iter().any(|r| r["folded"] == "nunez" || r["folded"] == "lodź"), "{rows:?}");
        docs.validate();
    }
}
