//! `_include` on FHIR searches: the host's half (the plugin's half is
//! `hearth_fhir::include`).
//!
//! A FHIR search answers its page and, in the `hearth-fhir-include` header, the ids of
//! the resources its `_include` parameters reference, grouped by type (`Type=id,id;…`).
//! For each type the host finds the site's search route for it, checks it for the same
//! caller exactly as a direct search (scope, ACL; a refused type is left out, not an
//! error), and calls it with `_id=` the ids. The target plugin applies the caller's
//! patient compartment itself, so nothing the caller could not search for directly is
//! ever included. Each resource found joins the Bundle once, as a
//! `search.mode: include` entry.

use axum::http::Method;
use serde_json::{Value, json};

use super::{Asked, Call, authorize_route, build_request, count_call};
use crate::auth::tokens::Principal;
use crate::error::Family;
use crate::plugins::{Match, bindings, runtime};

/// The response header a FHIR search names its referenced ids in.
pub const HEADER: &str = "hearth-fhir-include";

/// Ids asked of one plugin call (a page holds at most 200 rows, each with a few
/// references).
const IDS_PER_CALL: usize = 100;

/// The ids to include, by type, from a header value `Type=id,id;Type=id`.
fn decode(header: &str) -> Vec<(String, Vec<String>)> {
    header
        .split(';')
        .filter_map(|group| {
            let (target, ids) = group.split_once('=')?;
            let ids: Vec<String> = ids
                .split(',')
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect();
            let plain = target.chars().all(|c| c.is_ascii_alphanumeric());
            (plain && !target.is_empty() && !ids.is_empty()).then(|| (target.to_owned(), ids))
        })
        .collect()
}

/// Appends the resources a search's `_include` named to its Bundle. Answers `response`
/// as it is when it names none or is not a 200 Bundle.
pub(super) async fn append(
    call: &Call<'_>,
    principal: Option<&Principal>,
    mut response: bindings::Response,
) -> bindings::Response {
    let Some(header) = response
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(HEADER))
        .map(|(_, value)| value.clone())
    else {
        return response;
    };
    let Some(principal) = principal else {
        return response;
    };
    if response.status != 200 {
        return response;
    }
    let Ok(mut bundle) = serde_json::from_slice::<Value>(&response.body) else {
        return response;
    };
    let mut seen: Vec<String> = bundle["entry"]
        .as_array()
        .map(|entries| {
            entries
                .iter()
                .filter_map(|e| e["fullUrl"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let mut added = Vec::new();
    let table = call.app.registry.table(&call.site.name);
    for (target, ids) in decode(&header) {
        let Match::Found(bound, params) =
            table.find(Family::Fhir, &Method::GET, &format!("/{target}"))
        else {
            continue;
        };
        if authorize_route(principal, Family::Fhir, &bound, &[]).is_err() {
            continue;
        }
        for chunk in ids.chunks(IDS_PER_CALL) {
            let query = vec![
                ("_id".to_owned(), chunk.join(",")),
                ("_count".to_owned(), chunk.len().to_string()),
            ];
            let path = format!("/{target}");
            let asked = Asked {
                method: &Method::GET,
                path: &path,
                query,
            };
            let request = build_request(
                call,
                asked,
                Default::default(),
                &bound,
                params.clone(),
                Some(principal),
            );
            let result = runtime::call(
                &call.app.registry.engine,
                call.site,
                &bound.plugin,
                request,
                call.request_id,
                false,
            )
            .await;
            count_call(&call.app.telemetry, &call.site.name, &bound, &result);
            let found = match result {
                Ok(outcome) if outcome.response.status == 200 => outcome.response,
                Ok(outcome) => {
                    tracing::warn!(site = %call.site.name, resource_type = %target, status = outcome.response.status, "an _include search failed");
                    continue;
                }
                Err(error) => {
                    tracing::warn!(site = %call.site.name, resource_type = %target, "an _include search failed: {error}");
                    continue;
                }
            };
            let Ok(included) = serde_json::from_slice::<Value>(&found.body) else {
                continue;
            };
            for mut entry in included["entry"].as_array().cloned().unwrap_or_default() {
                let Some(url) = entry["fullUrl"].as_str().map(str::to_owned) else {
                    continue;
                };
                if seen.contains(&url) {
                    continue;
                }
                seen.push(url);
                entry["search"] = json!({"mode": "include"});
                added.push(entry);
            }
        }
    }
    if added.is_empty() {
        return response;
    }
    match bundle["entry"].as_array_mut() {
        Some(entries) => entries.extend(added),
        None => bundle["entry"] = Value::Array(added),
    }
    if let Ok(body) = serde_json::to_vec(&bundle) {
        response.body = body;
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_names_plain_types_and_their_ids() {
        assert_eq!(
            decode("Patient=a,b;Practitioner=c;=d;Bad/Type=e;Empty="),
            [
                ("Patient".to_owned(), vec!["a".to_owned(), "b".to_owned()]),
                ("Practitioner".to_owned(), vec!["c".to_owned()]),
            ]
        );
    }
}
