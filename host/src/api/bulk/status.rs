//! The status URL: progress while a job runs (`X-Progress`, `Retry-After`, 429 when
//! polled sooner), the manifest when it is done, and `DELETE` to cancel.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use super::jobs::{owned, remove};
use super::limits::bulk_settings;
use super::{Call, Plan, Progress, db_error, family_url, fhir_json, now_ms};
use crate::auth::tokens::Principal;
use crate::error::HttpError;
use crate::on_db;

/// Thousands with commas: `120,000`.
pub(super) fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `31% - Observation 120,000/390,000`, each type being exported named with its counts
/// (`; ` between them); ASCII, as header values are.
fn progress_text(plan: &Plan, progress: &Progress, status: &str) -> String {
    if status == "queued" {
        return "queued".to_owned();
    }
    let types = &progress.types;
    let total: u64 = types.iter().filter_map(|t| t.total).sum();
    let known = !types.is_empty() && types.iter().all(|t| t.total.is_some());
    let percent = if known && total > 0 {
        (progress.done() * 100 / total).min(99)
    } else if known {
        99
    } else {
        (types.iter().filter(|t| t.done).count() * 100 / types.len().max(1)).min(99) as u64
    };
    let running: Vec<String> = plan
        .types
        .iter()
        .zip(types)
        .filter(|(_, t)| t.started && !t.done)
        .map(|(p, t)| {
            let name = &p.resource_type;
            let of_type = progress.done_of(name) + t.current;
            match t.total {
                Some(n) => format!("{name} {}/{}", grouped(of_type), grouped(n)),
                None => name.clone(),
            }
        })
        .collect();
    if !running.is_empty() {
        return format!("{percent}% - {}", running.join("; "));
    }
    match types.iter().all(|t| t.done) {
        true => format!("{percent}% - finishing"),
        false => format!("{percent}% - counting"),
    }
}

pub(super) async fn status(
    call: &Call<'_>,
    id: &str,
    principal: &Principal,
) -> Result<Response, HttpError> {
    let job = owned(call, id, principal).await?;
    let settings = bulk_settings(call.site).await;
    // A poll sooner than the advised Retry-After after the last one answered: 429.
    let now = now_ms();
    let advised = settings.retry_after_seconds * 1000;
    if job.last_poll_ms > 0 && now - job.last_poll_ms < advised {
        let wait = ((advised - (now - job.last_poll_ms)) as f64 / 1000.0).ceil() as u32;
        let mut error = HttpError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "polled_too_soon",
            format!(
                "The status was polled sooner than Retry-After advised; wait {} seconds between polls",
                settings.retry_after_seconds
            ),
        );
        error.retry_after = Some(wait.max(1));
        return Err(error);
    }
    on_db!(&call.site.db, |pool| {
        sqlx::query("UPDATE bulk_jobs SET last_poll_ms = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(pool)
            .await
            .map_err(db_error)?;
    });
    match job.status.as_str() {
        "queued" | "running" => {
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::ACCEPTED;
            let headers = response.headers_mut();
            if let Ok(value) =
                HeaderValue::try_from(progress_text(&job.plan, &job.progress, &job.status))
            {
                headers.insert("x-progress", value);
            }
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(settings.retry_after_seconds),
            );
            Ok(response)
        }
        "done" => {
            let files = family_url(call);
            let url = |name: &str| format!("{files}/$bulkdata-file/{id}/{name}");
            let output: Vec<Value> = job
                .progress
                .files
                .iter()
                .map(|f| json!({"type": f.resource_type, "url": url(&f.name), "count": f.count}))
                .collect();
            let error: Vec<Value> = if job.progress.errors.is_empty() {
                vec![]
            } else {
                vec![json!({
                    "type": "OperationOutcome",
                    "url": url("errors.ndjson"),
                    "count": job.progress.errors.len(),
                })]
            };
            let mut manifest = json!({
                "transactionTime": job.transaction_time,
                "request": job.request,
                "requiresAccessToken": true,
                "output": output,
                "deleted": [],
                "error": error,
            });
            // A type that stopped before its end is named, with what it holds and what it
            // should have held, so a client need not read the error file to know the
            // export is partial.
            if !job.progress.incomplete.is_empty() {
                let incomplete: Vec<Value> = job
                    .progress
                    .incomplete
                    .iter()
                    .map(
                        |i| json!({"type": i.resource_type, "count": i.count, "expected": i.total}),
                    )
                    .collect();
                manifest["extension"] = json!({ "incomplete": incomplete });
            }
            let mut response = Response::new(Body::from(manifest.to_string()));
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            if let Some(at) = job
                .expires_at
                .and_then(|at| time::OffsetDateTime::from_unix_timestamp(at).ok())
                && let Ok(text) = at.format(&time::format_description::well_known::Rfc2822)
                && let Ok(value) = HeaderValue::try_from(text.replace("+0000", "GMT"))
            {
                headers.insert(header::EXPIRES, value);
            }
            Ok(response)
        }
        _ => Err(HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "export_failed",
            format!(
                "The export failed: {}",
                job.message.as_deref().unwrap_or("no reason was recorded")
            ),
        )),
    }
}

pub(super) async fn cancel(
    call: &Call<'_>,
    id: &str,
    principal: &Principal,
) -> Result<Response, HttpError> {
    let job = owned(call, id, principal).await?;
    remove(&call.app.config.data_dir, call.site, id).await;
    if job.status == "queued" || job.status == "running" {
        call.app
            .telemetry
            .bulk_job_finished(&call.site.name, "cancelled");
    }
    Ok(fhir_json(
        StatusCode::ACCEPTED,
        json!({
            "resourceType": "OperationOutcome",
            "issue": [{"severity": "information", "code": "informational",
                       "diagnostics": "The export was cancelled and its files removed"}],
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_in_thousands() {
        assert_eq!(grouped(120_000), "120,000");
        assert_eq!(grouped(999), "999");
    }
}
