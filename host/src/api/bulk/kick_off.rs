//! The kick-off: the request's checks, the export's plan (types, patients, filters, each
//! query checked by the type's own search), the limits, the job's row.

use std::collections::HashSet;

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};

use super::{
    Asked, Call, Compatibility, Level, NOT_IN_PATIENT_COMPARTMENT, OUTPUT_FORMATS, Owner, Plan,
    Progress, TypePlan, authorize_route, bad, build_request, call_error, count_call, db_error,
    family_url, fhir_json, limits, now, outcome_text, query_pairs, rfc3339, search, search_route,
    worker,
};
use crate::auth::acl;
use crate::auth::tokens::{Principal, Role};
use crate::error::{Family, HttpError};
use crate::on_db;
use crate::plugins::{Match, SiteTable, runtime};

/// The kick-off's parameters: the query of a GET, the Parameters body of a POST.
fn parameters(call: &Call<'_>, body: &Bytes) -> Result<Vec<(String, String)>, HttpError> {
    if *call.method == Method::GET {
        return Ok(query_pairs(call.uri));
    }
    let mut pairs = query_pairs(call.uri);
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(pairs);
    }
    let doc: Value = serde_json::from_slice(body)
        .map_err(|e| bad(format!("The body is not a FHIR Parameters resource: {e}")))?;
    if doc["resourceType"] != "Parameters" {
        return Err(bad("The body must be a FHIR Parameters resource"));
    }
    for param in doc["parameter"].as_array().cloned().unwrap_or_default() {
        let Some(name) = param["name"].as_str() else {
            return Err(bad("Every parameter needs a name"));
        };
        let value = [
            "valueString",
            "valueInstant",
            "valueDateTime",
            "valueCode",
            "valueUri",
            "valueUrl",
            "valueCanonical",
        ]
        .iter()
        .find_map(|key| param[*key].as_str().map(str::to_owned))
        .or_else(|| {
            param["valueReference"]["reference"]
                .as_str()
                .map(str::to_owned)
        });
        let Some(value) = value else {
            return Err(bad(format!(
                "The parameter {name} has no value this server reads (a string, instant, code or reference)"
            )));
        };
        pairs.push((name.to_owned(), value));
    }
    Ok(pairs)
}

/// The types a site serves searches for, in its plugin table's order.
fn served_types(table: &SiteTable) -> Vec<String> {
    let mut types = Vec::new();
    for plugin in &table.plugins {
        for declared in &plugin.loaded.fhir {
            if !types.contains(&declared.resource_type) {
                types.push(declared.resource_type.clone());
            }
        }
    }
    types
        .into_iter()
        .filter(|t| {
            matches!(
                table.find(Family::Fhir, &Method::GET, &format!("/{t}")),
                Match::Found(..)
            )
        })
        .collect()
}

/// Whether `resource_type` declares the search parameter `name`.
fn has_param(table: &SiteTable, resource_type: &str, name: &str) -> bool {
    table.plugins.iter().any(|p| {
        p.loaded.fhir.iter().any(|d| {
            d.resource_type == resource_type && d.search_params.iter().any(|s| s.name == name)
        })
    })
}

/// Answers a kick-off: 202 with the status URL, or the 4xx that names what is wrong.
pub(super) async fn kick_off(
    call: &Call<'_>,
    level: Level,
    principal: &Principal,
    body: Bytes,
) -> Result<Response, HttpError> {
    let header_text = |name: header::HeaderName| {
        call.headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect::<Vec<_>>()
            .join(",")
    };
    let accept = header_text(header::ACCEPT);
    if !accept
        .split(',')
        .any(|a| a.split(';').next().unwrap_or("").trim() == "application/fhir+json")
    {
        return Err(bad(
            "A Bulk Data kick-off needs the header Accept: application/fhir+json",
        ));
    }
    let prefer = header_text(header::HeaderName::from_static("prefer"));
    if !prefer
        .split([',', ';'])
        .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
    {
        return Err(bad(
            "A Bulk Data kick-off needs the header Prefer: respond-async",
        ));
    }
    match principal.role {
        Role::Patient => {
            return Err(HttpError::forbidden(
                "Patient tokens cannot start a Bulk Data export",
            ));
        }
        Role::User => {
            let role = principal.acl_role.as_deref().unwrap_or("");
            if !acl::allows(role, "admin/users") {
                return Err(HttpError::forbidden(format!(
                    "A Bulk Data export with a user token needs the access control section admin/users; the role '{role}' does not hold it"
                )));
            }
        }
        Role::System => {}
    }
    let pairs = parameters(call, &body)?;
    let mut asked_types: Option<Vec<String>> = None;
    let mut filters: Vec<String> = Vec::new();
    let mut patients: Vec<String> = Vec::new();
    let mut since: Option<String> = None;
    for (name, value) in &pairs {
        match name.as_str() {
            "_outputFormat" => {
                if !OUTPUT_FORMATS.contains(&value.as_str()) {
                    return Err(bad(format!(
                        "_outputFormat {value:?} is not supported; use one of {}",
                        OUTPUT_FORMATS.join(", ")
                    )));
                }
            }
            "_since" => {
                let parsed = time::OffsetDateTime::parse(
                    value,
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|_| {
                    bad(format!(
                        "_since must be a FHIR instant with a time zone (2024-01-31T12:00:00Z), not {value:?}"
                    ))
                })?;
                since = Some(rfc3339(parsed.to_offset(time::UtcOffset::UTC)));
            }
            // OpenEMR reads `type`; the IG names it `_type`.
            "_type" | "type" => {
                let list = asked_types.get_or_insert_with(Vec::new);
                for t in value.split(',').map(str::trim) {
                    if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric()) {
                        return Err(bad(format!("{t:?} in _type is not a resource type")));
                    }
                    if !list.iter().any(|x| x == t) {
                        list.push(t.to_owned());
                    }
                }
            }
            "_typeFilter" => filters.push(value.clone()),
            "patient" => {
                if *call.method != Method::POST {
                    return Err(bad(
                        "The patient parameter is taken in a POST kick-off's Parameters body",
                    ));
                }
                if level == Level::System {
                    return Err(bad(
                        "The patient parameter applies to Patient and Group exports only",
                    ));
                }
                let id = value.strip_prefix("Patient/").unwrap_or("");
                if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(bad(format!(
                        "patient must reference a Patient (Patient/id), not {value:?}"
                    )));
                }
                patients.push(id.to_owned());
            }
            "includeAssociatedData" => {
                return Err(bad(format!(
                    "includeAssociatedData {value:?} is not supported: this server exports no associated data"
                )));
            }
            "_elements" | "organizeOutputBy" | "allowPartialManifests" => {
                return Err(bad(format!("{name} is not supported by this server")));
            }
            other => {
                return Err(bad(format!(
                    "{other} is not a Bulk Data export parameter this server knows"
                )));
            }
        }
    }
    let table = call.app.registry.table(&call.site.name);
    let compartment_only = level != Level::System;
    let in_scope = |t: &str| !compartment_only || !NOT_IN_PATIENT_COMPARTMENT.contains(&t);
    let types: Vec<String> = match asked_types {
        Some(list) => {
            let lenient = prefer
                .split([',', ';'])
                .any(|p| p.trim().eq_ignore_ascii_case("handling=lenient"));
            let openemr = call.settings.compatibility == Compatibility::OpenEmr;
            let mut kept = Vec::new();
            for t in list {
                if !in_scope(&t) {
                    return Err(bad(format!(
                        "{t} is outside the patient compartment, so a Patient or Group export cannot hold it"
                    )));
                }
                // A type the token cannot read is refused, never silently dropped; a type
                // the site does not serve is left out only when the client asked for
                // `Prefer: handling=lenient`.
                match search_route(&table, principal, &t) {
                    Ok(_) => kept.push(t),
                    Err(error) if lenient && error.status == StatusCode::BAD_REQUEST => {}
                    // OpenEMR answers 401 for a type the token does not grant.
                    Err(error) if openemr && error.status == StatusCode::FORBIDDEN => {
                        return Err(HttpError {
                            status: StatusCode::UNAUTHORIZED,
                            ..error
                        });
                    }
                    Err(error) => return Err(error),
                }
            }
            kept
        }
        None => served_types(&table)
            .into_iter()
            .filter(|t| in_scope(t) && search_route(&table, principal, t).is_ok())
            .collect(),
    };
    if types.is_empty() {
        return Err(HttpError::forbidden(
            "The access token may read none of the types this site exports",
        ));
    }
    // The patients a Patient or Group export is about.
    if let Level::Group(id) = &level {
        let members = group_members(call, &table, principal, id).await?;
        if patients.is_empty() {
            patients = members;
        } else {
            let set: HashSet<&String> = members.iter().collect();
            if let Some(outside) = patients.iter().find(|p| !set.contains(p)) {
                return Err(bad(format!(
                    "Patient/{outside} is not a member of Group/{id}"
                )));
            }
        }
    }
    let mut plans: Vec<TypePlan> = Vec::new();
    for t in &types {
        let mut query = Vec::new();
        if let Some(since) = &since {
            query.push(("_lastUpdated".to_owned(), format!("gt{since}")));
        }
        let group_without_members = matches!(level, Level::Group(_)) && patients.is_empty();
        if !patients.is_empty() || group_without_members {
            // A Group without members exports nothing: no id matches the empty list.
            let list = if patients.is_empty() {
                "00000000-0000-0000-0000-000000000000".to_owned()
            } else {
                patients.join(",")
            };
            if t == "Patient" {
                query.push(("_id".to_owned(), list));
            } else if has_param(&table, t, "patient") {
                query.push(("patient".to_owned(), list));
            } else {
                // A type with no patient to search by has no part in these patients.
                continue;
            }
        }
        plans.push(TypePlan {
            resource_type: t.clone(),
            query,
        });
    }
    // `_typeFilter`: one search per type, run by the type's own search code.
    for filter in &filters {
        let (t, q) = filter.split_once('?').ok_or_else(|| {
            bad(format!(
                "_typeFilter {filter:?} must be a search: Type?param=value"
            ))
        })?;
        let Some(plan) = plans.iter_mut().find(|p| p.resource_type == t) else {
            return Err(bad(format!(
                "_typeFilter names {t}, which this export does not hold"
            )));
        };
        if plan.query.iter().any(|(k, _)| k.starts_with('~')) {
            return Err(bad(format!(
                "Only one _typeFilter per type is supported; {t} has two"
            )));
        }
        let extra: Vec<(String, String)> =
            form_urlencoded::parse(q.as_bytes()).into_owned().collect();
        if let Some((k, _)) = extra.iter().find(|(k, _)| {
            k.starts_with('_')
                && !matches!(k.as_str(), "_id" | "_lastUpdated" | "_tag" | "_profile")
        }) {
            return Err(bad(format!(
                "_typeFilter {filter:?}: {k} is a result parameter, not a filter"
            )));
        }
        // Marks the type as filtered (removed before the search).
        plan.query.push(("~filtered".to_owned(), String::new()));
        plan.query.extend(extra);
    }
    for plan in &mut plans {
        plan.query.retain(|(k, _)| k != "~filtered");
    }
    // Every query is checked now, strictly, by the type's own search: a bad filter is a
    // 400 at kick-off rather than an error file later. One row without a total is asked
    // for, which reads no more than that row (a count would read every match).
    let mut strict = call.headers.clone();
    strict.insert("prefer", HeaderValue::from_static("handling=strict"));
    let checking = Call {
        headers: &strict,
        ..*call
    };
    for plan in &plans {
        let mut query = plan.query.clone();
        query.push(("_count".to_owned(), "1".to_owned()));
        query.push(("_total".to_owned(), "none".to_owned()));
        let (status, body) =
            search(&checking, &table, principal, &plan.resource_type, query).await?;
        if status != 200 {
            return Err(bad(format!(
                "The {} search of this export is refused: {}",
                plan.resource_type,
                outcome_text(&body)
            )));
        }
    }
    limits::check(call.site, &principal.client_id).await?;
    let id = crate::db::comb_uuid();
    let plan = Plan {
        level,
        types: plans,
    };
    let progress = Progress::new(plan.types.len());
    let request = match call.uri.query() {
        Some(q) => format!("{}{}?{q}", family_url(call), call.path),
        None => format!("{}{}", family_url(call), call.path),
    };
    let owner = serde_json::to_string(&Owner::of(principal)).map_err(db_error)?;
    let plan_text = serde_json::to_string(&plan).map_err(db_error)?;
    let progress_text = serde_json::to_string(&progress).map_err(db_error)?;
    let transaction_time = rfc3339(time::OffsetDateTime::now_utc());
    on_db!(&call.site.db, |pool| {
        sqlx::query(
            "INSERT INTO bulk_jobs (id, client_id, owner, request, plan, progress, status, transaction_time, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $8)",
        )
        .bind(&id)
        .bind(&principal.client_id)
        .bind(&owner)
        .bind(&request)
        .bind(&plan_text)
        .bind(&progress_text)
        .bind(&transaction_time)
        .bind(now())
        .execute(pool)
        .await
        .map_err(db_error)?;
    });
    call.app.telemetry.bulk_job_queued(&call.site.name);
    worker::wake();
    let location = format!("{}/$bulkdata-status?job={id}", family_url(call));
    let mut response = fhir_json(
        StatusCode::ACCEPTED,
        json!({
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational",
                       "diagnostics": format!("The export was accepted; its status is at {location}")}],
        }),
    );
    if let Ok(value) = HeaderValue::try_from(location) {
        response
            .headers_mut()
            .insert(header::CONTENT_LOCATION, value);
    }
    Ok(response)
}

/// The patients a Group names in `member.entity`, read through the Group plugin as the
/// caller.
async fn group_members(
    call: &Call<'_>,
    table: &SiteTable,
    principal: &Principal,
    id: &str,
) -> Result<Vec<String>, HttpError> {
    let path = format!("/Group/{id}");
    let Match::Found(bound, params) = table.find(Family::Fhir, &Method::GET, &path) else {
        return Err(HttpError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "This site serves no Group resources",
        ));
    };
    authorize_route(principal, Family::Fhir, &bound, &[])?;
    let asked = Asked {
        method: &Method::GET,
        path: &path,
        query: Vec::new(),
    };
    let request = build_request(call, asked, Bytes::new(), &bound, params, Some(principal));
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
    let outcome = result.map_err(|e| call_error(&call.site.name, call.request_id, &bound, e))?;
    if outcome.response.status != 200 {
        let body: Value = serde_json::from_slice(&outcome.response.body).unwrap_or(Value::Null);
        return Err(HttpError::new(
            StatusCode::from_u16(outcome.response.status).unwrap_or(StatusCode::NOT_FOUND),
            "group_unreadable",
            format!("Group/{id}: {}", outcome_text(&body)),
        ));
    }
    let group: Value = serde_json::from_slice(&outcome.response.body).unwrap_or(Value::Null);
    Ok(group["member"]
        .as_array()
        .map(|members| {
            members
                .iter()
                .filter(|m| m["inactive"] != true)
                .filter_map(|m| m["entity"]["reference"].as_str())
                .filter_map(|r| r.rsplit_once("Patient/").map(|(_, id)| id.to_owned()))
                .collect()
        })
        .unwrap_or_default())
}
