//! `/admin/audit`: search the site's API audit log (`api_log`) by time range, user, client,
//! route, status and patient, newest first, [`PAGE_SIZE`] rows a page; `/admin/audit.csv`
//! exports every matching row (up to [`CSV_LIMIT`]) as CSV, quoted per RFC 4180 and safe
//! to open in a spreadsheet (a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage
//! return gets a leading `'`, so it is never read as a formula).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Admin, ConsoleError, PageResult, base_path};
use crate::db::store::SqlValue;
use crate::state::AppState;
use crate::web::escape;

/// Rows a page shows.
pub const PAGE_SIZE: i64 = 50;
/// The most rows one CSV export holds.
pub const CSV_LIMIT: i64 = 100_000;

const COLUMNS: &[&str] = &[
    "id",
    "created_at",
    "method",
    "path",
    "status",
    "duration_us",
    "user_id",
    "client_id",
    "patient_id",
    "plugin",
    "ip_address",
];

/// The search a page or an export asks for.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Filters {
    /// The form's values, as sent (shown back in the form, carried to the CSV link).
    pub raw: Vec<(String, String)>,
    /// `created_at >= from` (RFC 3339 prefix).
    from: Option<String>,
    /// `created_at < until`.
    until: Option<String>,
    user: Option<String>,
    client: Option<String>,
    route: Option<String>,
    status: Option<(i64, i64)>,
    patient: Option<String>,
    /// 1-based.
    pub page: i64,
}

/// A time the form gives (`2026-12-05`, `2026-12-05T10:30`, with seconds, or RFC 3339),
/// UTC, as `YYYY-MM-DDTHH:MM:SS`; `end` makes a bare date mean the end of that day and a
/// time the end of that minute or second (the bound is exclusive).
fn time_bound(text: &str, end: bool) -> Option<String> {
    use time::macros::format_description as fd;
    use time::{Date, Duration, PrimitiveDateTime};
    let text = text.trim();
    let out = fd!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    if let Ok(date) = Date::parse(text, fd!("[year]-[month]-[day]")) {
        let at = PrimitiveDateTime::new(date, time::Time::MIDNIGHT);
        let at = if end { at + Duration::days(1) } else { at };
        return at.format(out).ok();
    }
    if let Ok(at) = PrimitiveDateTime::parse(text, fd!("[year]-[month]-[day]T[hour]:[minute]")) {
        let at = if end { at + Duration::minutes(1) } else { at };
        return at.format(out).ok();
    }
    let with_seconds =
        PrimitiveDateTime::parse(text, fd!("[year]-[month]-[day]T[hour]:[minute]:[second]"))
            .ok()
            .or_else(|| {
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .ok()
                    .map(|t| {
                        let t = t.to_offset(time::UtcOffset::UTC);
                        PrimitiveDateTime::new(
                            t.date(),
                            t.time().replace_nanosecond(0).unwrap_or(t.time()),
                        )
                    })
            })?;
    let at = if end {
        with_seconds + Duration::seconds(1)
    } else {
        with_seconds
    };
    at.format(out).ok()
}

impl Filters {
    /// Reads the query string; a value that cannot be understood is a 400 naming it.
    pub fn parse(query: &HashMap<String, String>) -> Result<Filters, String> {
        let field = |name: &str| {
            query
                .get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut filters = Filters {
            page: 1,
            ..Filters::default()
        };
        for name in ["from", "to", "user", "client", "route", "status", "patient"] {
            if let Some(value) = field(name) {
                filters.raw.push((name.to_owned(), value));
            }
        }
        if let Some(from) = field("from") {
            filters.from = Some(time_bound(&from, false).ok_or_else(|| {
                format!("The start time {from:?} is not a date or time (YYYY-MM-DD or YYYY-MM-DDTHH:MM).")
            })?);
        }
        if let Some(to) = field("to") {
            filters.until = Some(time_bound(&to, true).ok_or_else(|| {
                format!(
                    "The end time {to:?} is not a date or time (YYYY-MM-DD or YYYY-MM-DDTHH:MM)."
                )
            })?);
        }
        filters.user = field("user");
        filters.client = field("client");
        filters.route = field("route");
        filters.patient = field("patient");
        if let Some(status) = field("status") {
            let lower = status.to_ascii_lowercase();
            filters.status = Some(
                if let Some(class) = lower.strip_suffix("xx")
                    && let Ok(digit @ 1..=5) = class.parse::<i64>()
                {
                    (digit * 100, digit * 100 + 99)
                } else if let Ok(code @ 100..=599) = lower.parse::<i64>() {
                    (code, code)
                } else {
                    return Err(format!(
                        "The status {status:?} is not a status code (such as 404) or class (such as 4xx)."
                    ));
                },
            );
        }
        if let Some(page) = field("page") {
            filters.page = page
                .parse::<i64>()
                .ok()
                .filter(|p| (1..=1_000_000).contains(p))
                .ok_or_else(|| format!("The page {page:?} is not a page number."))?;
        }
        Ok(filters)
    }

    /// The `WHERE` clause and its parameters, numbered from `$1`.
    fn clause(&self) -> (String, Vec<SqlValue>) {
        let mut conditions: Vec<String> = Vec::new();
        let mut params: Vec<SqlValue> = Vec::new();
        let next = |value: SqlValue, params: &mut Vec<SqlValue>| {
            params.push(value);
            format!("${}", params.len())
        };
        if let Some(from) = &self.from {
            let p = next(SqlValue::Text(from.clone()), &mut params);
            conditions.push(format!("created_at >= {p}"));
        }
        if let Some(until) = &self.until {
            let p = next(SqlValue::Text(until.clone()), &mut params);
            conditions.push(format!("created_at < {p}"));
        }
        if let Some(user) = &self.user {
            let a = next(SqlValue::Text(user.clone()), &mut params);
            let b = next(SqlValue::Text(user.clone()), &mut params);
            conditions.push(format!(
                "(user_id = {a} OR user_id IN (SELECT CAST(uuid AS TEXT) FROM users WHERE username = {b}))"
            ));
        }
        if let Some(client) = &self.client {
            let p = next(SqlValue::Text(client.clone()), &mut params);
            conditions.push(format!("client_id = {p}"));
        }
        if let Some(route) = &self.route {
            let pattern = format!(
                "%{}%",
                route
                    .to_lowercase()
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            );
            let p = next(SqlValue::Text(pattern), &mut params);
            conditions.push(format!("LOWER(path) LIKE {p} ESCAPE '\\'"));
        }
        if let Some((low, high)) = self.status {
            let a = next(SqlValue::Integer(low), &mut params);
            let b = next(SqlValue::Integer(high), &mut params);
            conditions.push(format!("status BETWEEN {a} AND {b}"));
        }
        if let Some(patient) = &self.patient {
            let p = next(SqlValue::Text(patient.clone()), &mut params);
            conditions.push(format!("patient_id = {p}"));
        }
        let clause = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        (clause, params)
    }

    /// The filters as a query string (for the CSV link and the pager).
    fn query_string(&self, page: Option<i64>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in &self.raw {
            query.append_pair(name, value);
        }
        if let Some(page) = page {
            query.append_pair("page", &page.to_string());
        }
        query.finish()
    }

    fn value(&self, name: &str) -> String {
        self.raw
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| escape(v))
            .unwrap_or_default()
    }
}

/// The matching rows, newest first.
async fn rows(
    admin: &Admin,
    filters: &Filters,
    limit: i64,
    offset: i64,
) -> Result<Vec<Vec<SqlValue>>, ConsoleError> {
    let (clause, mut params) = filters.clause();
    params.push(SqlValue::Integer(limit));
    let limit_at = params.len();
    params.push(SqlValue::Integer(offset));
    let offset_at = params.len();
    let sql = format!(
        "SELECT {} FROM api_log{clause} ORDER BY id DESC LIMIT ${limit_at} OFFSET ${offset_at}",
        COLUMNS.join(", ")
    );
    Ok(admin.site.db.read(&sql, params).await?)
}

/// How many rows match.
async fn count(admin: &Admin, filters: &Filters) -> Result<i64, ConsoleError> {
    let (clause, params) = filters.clause();
    let sql = format!("SELECT COUNT(*) FROM api_log{clause}");
    let rows = admin.site.db.read(&sql, params).await?;
    Ok(rows
        .first()
        .and_then(|r| r.first())
        .and_then(SqlValue::integer)
        .unwrap_or(0))
}

/// A value as text (empty for NULL).
fn text(value: &SqlValue) -> String {
    match value {
        SqlValue::Null => String::new(),
        SqlValue::Integer(i) => i.to_string(),
        SqlValue::Real(r) => r.to_string(),
        SqlValue::Text(t) => t.clone(),
        SqlValue::Blob(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

/// `GET /admin/audit`.
pub async fn page(State(app): State<Arc<AppState>>, admin: Admin, request: Request) -> PageResult {
    let filters = Filters::parse(&super::query(request.uri())).map_err(ConsoleError::bad)?;
    let base = escape(&base_path(&app));
    let offset = (filters.page - 1) * PAGE_SIZE;
    let found = rows(&admin, &filters, PAGE_SIZE, offset).await?;
    let total = count(&admin, &filters).await?;
    let mut table = String::new();
    for row in &found {
        let cell = |i: usize| escape(&row.get(i).map(text).unwrap_or_default());
        table.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td><code>{} {}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            cell(0), cell(1), cell(2), cell(3), cell(4), cell(5), cell(6), cell(7), cell(8), cell(9), cell(10)
        ));
    }
    if found.is_empty() {
        table.push_str("<tr><td colspan=\"10\">No request matches.</td></tr>");
    }
    let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
    let mut pager = String::new();
    if filters.page > 1 {
        pager.push_str(&format!(
            "<a href=\"{base}/audit?{}\" rel=\"prev\">Newer</a>",
            escape(&filters.query_string(Some(filters.page - 1)))
        ));
    }
    pager.push_str(&format!(
        "<span>Page {} of {pages} ({total} matching requests)</span>",
        filters.page
    ));
    if filters.page < pages {
        pager.push_str(&format!(
            "<a href=\"{base}/audit?{}\" rel=\"next\">Older</a>",
            escape(&filters.query_string(Some(filters.page + 1)))
        ));
    }
    let body = format!(
        "<form method=\"get\" action=\"{base}/audit\"><div class=\"filters\">\
<div><label for=\"from\">From (UTC)</label><input type=\"text\" id=\"from\" name=\"from\" value=\"{from}\" placeholder=\"YYYY-MM-DDTHH:MM\"></div>\
<div><label for=\"to\">To (UTC)</label><input type=\"text\" id=\"to\" name=\"to\" value=\"{to}\" placeholder=\"YYYY-MM-DD\"></div>\
<div><label for=\"user\">User (name or uuid)</label><input type=\"text\" id=\"user\" name=\"user\" value=\"{user}\"></div>\
<div><label for=\"client\">Client id</label><input type=\"text\" id=\"client\" name=\"client\" value=\"{client}\"></div>\
<div><label for=\"route\">Path contains</label><input type=\"text\" id=\"route\" name=\"route\" value=\"{route}\"></div>\
<div><label for=\"status\">Status (404 or 4xx)</label><input type=\"text\" id=\"status\" name=\"status\" value=\"{status}\"></div>\
<div><label for=\"patient\">Patient uuid</label><input type=\"text\" id=\"patient\" name=\"patient\" value=\"{patient}\"></div>\
</div><button type=\"submit\">Search</button></form>\
<p><a href=\"{base}/audit.csv?{csv}\" download>Export the matching requests as CSV</a></p>\
<table><caption class=\"visually-hidden\">Audited requests</caption><thead><tr><th scope=\"col\">Id</th><th scope=\"col\">Time (UTC)</th><th scope=\"col\">Request</th><th scope=\"col\">Status</th>\
<th scope=\"col\">µs</th><th scope=\"col\">User</th><th scope=\"col\">Client</th><th scope=\"col\">Patient</th><th scope=\"col\">Plugin</th><th scope=\"col\">Address</th></tr></thead>\
<tbody>{table}</tbody></table><nav class=\"pager\" aria-label=\"Pages\">{pager}</nav>",
        from = filters.value("from"),
        to = filters.value("to"),
        user = filters.value("user"),
        client = filters.value("client"),
        route = filters.value("route"),
        status = filters.value("status"),
        patient = filters.value("patient"),
        csv = escape(&filters.query_string(None)),
    );
    Ok(super::page(&app, &admin, "audit", "Audit log", None, &body))
}

/// One CSV cell: quoted when it holds a comma, a quote or a line break (RFC 4180), and a
/// leading `'` when a spreadsheet would read it as a formula.
pub fn csv_cell(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// `GET /admin/audit.csv`.
pub async fn csv(State(_app): State<Arc<AppState>>, admin: Admin, request: Request) -> PageResult {
    let filters = Filters::parse(&super::query(request.uri())).map_err(ConsoleError::bad)?;
    let found = rows(&admin, &filters, CSV_LIMIT, 0).await?;
    let mut out = String::new();
    out.push_str(&COLUMNS.join(","));
    out.push_str("\r\n");
    for row in &found {
        let line = row
            .iter()
            .map(|v| csv_cell(&text(v)))
            .collect::<Vec<_>>()
            .join(",");
        out.push_str(&line);
        out.push_str("\r\n");
    }
    let mut response: Response = (StatusCode::OK, out).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!(
        "attachment; filename=\"audit-{}.csv\"",
        admin.site.name
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_never_formulas() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("-cmd"), "'-cmd");
        assert_eq!(csv_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_cell(""), "");
    }

    #[test]
    fn times_are_read_as_utc_bounds() {
        assert_eq!(
            time_bound("2026-12-05", false).as_deref(),
            Some("2026-12-05T00:00:00")
        );
        assert_eq!(
            time_bound("2026-12-05", true).as_deref(),
            Some("2026-12-06T00:00:00")
        );
        assert_eq!(
            time_bound("2026-12-05T10:30", true).as_deref(),
            Some("2026-12-05T10:31:00")
        );
        assert_eq!(
            time_bound("2026-12-05T10:30:00+01:00", false).as_deref(),
            Some("2026-12-05T09:30:00")
        );
        assert_eq!(time_bound("yesterday", false), None);
    }

    #[test]
    fn filters_are_checked_and_numbered() {
        let query: HashMap<String, String> = [
            ("status", "4xx"),
            ("user", "admin"),
            ("route", "50%_off"),
            ("page", "2"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let filters = Filters::parse(&query).unwrap();
        assert_eq!(filters.page, 2);
        let (clause, params) = filters.clause();
        assert!(clause.contains("status BETWEEN $4 AND $5"), "{clause}");
        assert_eq!(params[2], SqlValue::Text("%50\\%\\_off%".into()));
        for bad in [("status", "abc"), ("from", "soon"), ("page", "0")] {
            let query: HashMap<String, String> =
                [(bad.0.to_owned(), bad.1.to_owned())].into_iter().collect();
            assert!(Filters::parse(&query).is_err(), "{bad:?}");
        }
    }
}
