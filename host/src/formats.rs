//! FHIR format negotiation, shared by the FHIR routers (the host's own FHIR routes and
//! the plugin dispatch in [`crate::api`]): the server speaks JSON only, so a `_format` or
//! an `Accept` header that admits no JSON is answered `406 Not Acceptable` (an
//! OperationOutcome) on every FHIR route.

use axum::http::{HeaderMap, StatusCode, header};

use crate::error::HttpError;

/// The media types of a FHIR JSON answer (the DSTU2 name `application/json+fhir` too).
const JSON_TYPES: &[&str] = &[
    "application/fhir+json",
    "application/json",
    "application/json+fhir",
];

/// The media types of a Bulk Data file (newline-delimited JSON), besides [`JSON_TYPES`].
pub const NDJSON_TYPES: &[&str] = &["application/fhir+ndjson", "application/ndjson"];

/// The media types a Binary read answers besides its Binary resource: any (the document's
/// own, `application/pdf`, `image/png`, …).
pub const ANY_TYPE: &[&str] = &["*/*"];

/// Checks that the client accepts what the server answers: FHIR JSON, or one of `also`
/// (a Bulk Data file's ndjson; [`ANY_TYPE`] for a Binary's bytes). `_format` wins over
/// `Accept` (FHIR's rule): `json` or a JSON media type is served, anything else (`xml`,
/// `application/fhir+xml`, `ttl`, …) is a 406. Without `_format`, an `Accept` header none
/// of whose ranges (with `q` above 0) admits JSON — `application/fhir+xml` alone, say — is
/// a 406 too; `*/*`, `application/*` and a missing header admit it.
pub fn negotiate(query: Option<&str>, headers: &HeaderMap, also: &[&str]) -> Result<(), HttpError> {
    let essence = |media: &str| {
        media
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    };
    let named =
        |media: &str| JSON_TYPES.contains(&media) || also.contains(&media) || also.contains(&"*/*");
    let formats: Vec<String> = query
        .map(|q| {
            form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k == "_format")
                // An unencoded `+` (`application/fhir+json`) arrives as a space.
                .map(|(_, v)| v.replace(' ', "+"))
                .collect()
        })
        .unwrap_or_default();
    if let Some(format) = formats.last() {
        let wanted = essence(format);
        return if wanted == "json" || named(&wanted) {
            Ok(())
        } else {
            Err(not_acceptable(&format!(
                "_format={format} is not served: this server answers FHIR JSON only \
                 (_format=json, application/fhir+json or application/json)"
            )))
        };
    }
    let ranges: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter(|r| !r.trim().is_empty())
        .collect();
    if ranges.is_empty() {
        return Ok(());
    }
    let admits = |range: &str| {
        let refused = range.split(';').skip(1).any(|param| {
            param.split_once('=').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("q")
                    && v.trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
            })
        });
        let media = essence(range);
        !refused && (media == "*/*" || media == "application/*" || named(&media))
    };
    if ranges.iter().any(|r| admits(r)) {
        Ok(())
    } else {
        Err(not_acceptable(&format!(
            "Accept: {} admits no format this server answers: FHIR JSON only \
             (application/fhir+json or application/json)",
            ranges
                .iter()
                .map(|r| r.trim())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

fn not_acceptable(message: &str) -> HttpError {
    HttpError::new(StatusCode::NOT_ACCEPTABLE, "not_acceptable", message)
}
