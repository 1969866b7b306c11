//! The request a handler receives.

use crate::json::Json;
use crate::resource::Method;
use crate::response::{ApiError, Family, Response, Result, Shape};
use crate::sql::{Column, Fields};
use crate::validate::Validator;

/// The request header in which the host says how the site answers: `openemr` when the
/// site asks for OpenEMR's own status codes and leniency (its compatibility setting),
/// `hearth` otherwise. Clients cannot set it: the host passes only the headers it names.
pub const COMPATIBILITY_HEADER: &str = "hearth-compatibility";

/// The request header in which the host says how many rows a list may answer when the
/// client asks for every row (the site's list cap).
pub const LIST_CAP_HEADER: &str = "hearth-list-cap";

/// The request header in which the host lets one of its own in-process callers (a Bulk
/// Data export) read search pages larger than a search's own cap. Clients cannot set it:
/// the host passes only the headers it names.
pub const PAGE_CAP_HEADER: &str = "hearth-page-cap";

/// The request header in which the host asks one of its own in-process callers' search
/// pages (a Bulk Data export's) as lines: each matched resource on a line of its own,
/// instead of a Bundle. A search that answers so says it with [`LINES_HEADER`] in its
/// response too (the number of lines), and gives its next page's URL in
/// [`NEXT_HEADER`]; a search that does not answers its Bundle, which the host reads as
/// it always did. Clients cannot set it: the host passes only the headers it names.
pub const LINES_HEADER: &str = "hearth-lines";

/// The response header with the next page's URL of a page answered as lines (see
/// [`LINES_HEADER`]); none on the last page.
pub const NEXT_HEADER: &str = "hearth-next";

/// The list cap when the host names none (unit tests, `hearth plugin call`): the
/// default of the site setting `api.list_cap`.
pub const DEFAULT_LIST_CAP: u32 = 2000;

/// The kind of principal behind a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A staff user.
    User,
    /// A patient.
    Patient,
    /// A backend service.
    System,
    /// No token (anonymous routes only).
    Anonymous,
}

/// Who is calling, as the host established it from the access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The principal's kind.
    pub role: Role,
    /// The principal's uuid.
    pub subject: String,
    /// The staff user's user name, else empty.
    pub username: String,
    /// The OAuth client.
    pub client_id: String,
    /// Granted scopes, space separated.
    pub scopes: String,
    /// The patient the request is bound to (the patient's own uuid, or a SMART launch
    /// patient), if any.
    pub patient: Option<String>,
}

impl Default for Caller {
    fn default() -> Self {
        Caller {
            role: Role::User,
            subject: String::new(),
            username: String::new(),
            client_id: String::new(),
            scopes: String::new(),
            patient: None,
        }
    }
}

/// A request routed to one of the plugin's handlers.
#[derive(Debug, Clone)]
pub struct Request {
    pub(crate) method: Method,
    pub(crate) family: Family,
    pub(crate) shape: Shape,
    pub(crate) template: &'static str,
    pub(crate) path: String,
    pub(crate) params: Vec<String>,
    pub(crate) query: Vec<(String, String)>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) caller: Caller,
    pub(crate) base_url: String,
}

impl Request {
    /// The HTTP method.
    pub fn method(&self) -> Method {
        self.method
    }

    /// The API family of the matched route.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The path below the family root.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// How the matched route answers (envelope, legacy envelope or bare payload).
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// True when the site answers as OpenEMR does (its compatibility setting): OpenEMR's
    /// status codes, unknown `_sort` names and malformed paging numbers ignored.
    pub fn openemr_compatible(&self) -> bool {
        self.header(COMPATIBILITY_HEADER) == Some("openemr")
    }

    /// The most rows a list answers when the client asks for every row (see
    /// [`Request::window`]).
    pub fn list_cap(&self) -> u32 {
        self.header(LIST_CAP_HEADER)
            .and_then(|cap| cap.parse().ok())
            .filter(|cap| *cap > 0)
            .unwrap_or(DEFAULT_LIST_CAP)
    }

    /// The largest search page the host allows this request (see [`PAGE_CAP_HEADER`]), when
    /// it names one.
    pub fn page_cap(&self) -> Option<u32> {
        self.header(PAGE_CAP_HEADER)
            .and_then(|cap| cap.parse().ok())
            .filter(|cap| *cap > 0)
    }

    /// Whether the host asks this search's page as lines (see [`LINES_HEADER`]).
    pub fn wants_lines(&self) -> bool {
        self.header(LINES_HEADER).is_some()
    }

    /// The value of the route's last parameter when it is a uuid (`/api/patient/:puuid`),
    /// the id OpenEMR reports as unknown.
    pub fn named_uuid(&self) -> Option<String> {
        self.params
            .last()
            .filter(|value| is_uuid(value))
            .map(|value| value.to_ascii_lowercase())
    }

    /// 200 with `data` in the route's shape: in the envelope, or bare.
    pub fn ok(&self, data: Json) -> Response {
        self.answer(200, data)
    }

    /// 201 with `data` in the route's shape.
    pub fn created(&self, data: Json) -> Response {
        self.answer(201, data)
    }

    /// `status` with `data` in the route's shape.
    pub fn answer(&self, status: u16, data: Json) -> Response {
        match self.shape {
            Shape::Bare => Response::json(status, data),
            Shape::Envelope | Shape::Legacy => Response::envelope(status, data),
        }
    }

    /// A list in the route's shape: the envelope with `links`, or a bare array. On a
    /// site in OpenEMR compatibility an empty bare list is OpenEMR's empty 404.
    pub fn list(&self, items: Json, links: Json) -> Response {
        match self.shape {
            Shape::Bare if items.as_str() == "[]" && self.openemr_compatible() => {
                Response::empty(404)
            }
            Shape::Bare => Response::json(200, items),
            Shape::Envelope | Shape::Legacy => Response::list(items, links),
        }
    }

    /// Who is calling.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// The absolute public URL of the family root (e.g. `https://host/apis/default/api`).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The raw body.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The value of the route parameter `name` (`:name` in the template).
    pub fn param(&self, name: &str) -> Result<&str> {
        let index = self
            .template
            .split('/')
            .filter(|segment| segment.starts_with(':'))
            .position(|segment| &segment[1..] == name)
            .ok_or_else(|| {
                ApiError::Internal(format!("route {} has no parameter {name}", self.template))
            })?;
        self.params
            .get(index)
            .map(String::as_str)
            .ok_or_else(|| ApiError::Internal(format!("parameter {name} was not passed")))
    }

    /// True when the route's template has the parameter `:name`.
    pub fn has_param(&self, name: &str) -> bool {
        self.template
            .split('/')
            .any(|segment| segment.strip_prefix(':') == Some(name))
    }

    /// The route parameter `name` as a UUID (lower case). A malformed value is a 400 with
    /// one validation error for `name`.
    pub fn uuid(&self, name: &str) -> Result<String> {
        let value = self.param(name)?;
        if is_uuid(value) {
            Ok(value.to_ascii_lowercase())
        } else {
            Err(ApiError::invalid(
                name,
                "Uuid::INVALID_UUID",
                &format!("{name} must be a valid UUID (valid format)"),
            ))
        }
    }

    /// The route parameter `name` as a positive integer id. Anything else is a 400.
    pub fn id(&self, name: &str) -> Result<i64> {
        let value = self.param(name)?;
        match value.parse::<i64>() {
            Ok(id) if id > 0 => Ok(id),
            _ => Err(ApiError::invalid(
                name,
                "Numeric::NOT_NUMERIC",
                &format!("{name} must be numeric"),
            )),
        }
    }

    /// The first value of query parameter `key`.
    pub fn query(&self, key: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every query parameter, in order.
    pub fn query_pairs(&self) -> &[(String, String)] {
        &self.query
    }

    /// A request header (lower-case name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as a JSON object. A body that is not JSON, or not an object, is a 400.
    pub fn json_object(&self) -> Result<serde_json::Map<String, serde_json::Value>> {
        match serde_json::from_slice::<serde_json::Value>(&self.body) {
            Ok(serde_json::Value::Object(map)) => Ok(map),
            Ok(_) => Err(ApiError::invalid(
                "body",
                "Json::NOT_AN_OBJECT",
                "The request body must be a JSON object",
            )),
            Err(e) => Err(ApiError::invalid(
                "body",
                "Json::INVALID",
                &format!("The request body is not valid JSON: {e}"),
            )),
        }
    }

    /// The body as column values: `rules` run first, then the keys that are `columns`
    /// are converted to their types (other keys are ignored, as OpenEMR ignores them).
    /// Rule failures and type errors come back together as one 400, keyed by field.
    ///
    /// ```no_run
    /// # use hearth_sdk::prelude::*;
    /// # fn f(req: &Request) -> Result<()> {
    /// const COLUMNS: &[Column] = &[Column::text("title"), Column::datetime("begdate")];
    /// let fields = req.fields(COLUMNS, |v| {
    ///     v.required("title", "title").length_between(2, 255);
    /// })?;
    /// # Ok(()) }
    /// ```
    pub fn fields(
        &self,
        columns: &[Column],
        rules: impl FnOnce(&mut Validator<'_>),
    ) -> Result<Fields> {
        let body = self.json_object()?;
        let mut validator = Validator::new(&body);
        rules(&mut validator);
        let fields = Fields::collect(&body, columns, &mut validator);
        validator.finish()?;
        Ok(fields)
    }

    /// Which rows of a list the client asks for, as OpenEMR reads it: `_limit` (or
    /// `_maxresults`) rows, at most `max`, from `_offset`; or every row when the limit is
    /// absent, empty or `0` ([`Window::Every`], up to [`Request::list_cap`] rows). A value
    /// that is not a whole number from 0 up (`ten`, `-1`, `1.5`) is a 400 naming the
    /// parameter, or, on a site in OpenEMR compatibility, counts as absent (PHP's
    /// `intval` reads it as 0).
    pub fn window(&self, max: u32) -> Result<Window> {
        let lenient = self.openemr_compatible();
        let number = |key: &str| -> Result<Option<u32>> {
            match self.query(key) {
                None | Some("") => Ok(None),
                Some(v) => match v.parse::<u32>() {
                    Ok(n) => Ok(Some(n)),
                    Err(_) if lenient => Ok(None),
                    Err(_) => Err(ApiError::invalid(
                        key,
                        "Numeric::NOT_NUMERIC",
                        &format!("{key} must be numeric: a whole number, 0 or more"),
                    )),
                },
            }
        };
        let limit = number("_limit")?.or(number("_maxresults")?);
        let offset = number("_offset")?.unwrap_or(0);
        Ok(match limit {
            None | Some(0) => Window::Every {
                offset,
                cap: self.list_cap(),
            },
            Some(n) => Window::Page(Paging {
                limit: n.min(max),
                offset,
            }),
        })
    }

    /// Paging from `_limit` (or `_maxresults`) and `_offset`, always a page:
    /// the limit is `default` when absent, empty or `0` and at most `max` (a larger one
    /// is cut to `max`); the offset is 0 when absent. A value that is not a whole number
    /// from 0 up (`ten`, `-1`, `1.5`) is a 400 naming the parameter.
    pub fn paging(&self, default: u32, max: u32) -> Result<Paging> {
        let number = |key: &str| -> Result<Option<u32>> {
            match self.query(key) {
                None | Some("") => Ok(None),
                Some(v) => v.parse::<u32>().map(Some).map_err(|_| {
                    ApiError::invalid(
                        key,
                        "Numeric::NOT_NUMERIC",
                        &format!("{key} must be numeric: a whole number, 0 or more"),
                    )
                }),
            }
        };
        let limit = match number("_limit")?.or(number("_maxresults")?) {
            None | Some(0) => default,
            Some(n) => n.min(max),
        };
        let offset = number("_offset")?.unwrap_or(0);
        Ok(Paging { limit, offset })
    }

    /// Builds the envelope's `links` for a page of a list, as OpenEMR does (`first`,
    /// `previous` when not on the first page, `next` when `more` rows exist).
    pub fn paging_links(&self, paging: Paging, more: bool) -> Json {
        let link = |offset: u32| self.link(offset, paging.limit);
        let mut links = Json::object();
        links.field("first", link(0));
        if paging.offset > 0 {
            links.field("previous", link(paging.offset.saturating_sub(paging.limit)));
        }
        if more {
            links.field("next", link(paging.offset + paging.limit));
        }
        links.end()
    }

    /// The envelope's `links` for `window`: a page's links (see
    /// [`Request::paging_links`]), or only `first` (`_limit=0`: every row) when the list
    /// answered every row.
    pub fn window_links(&self, window: Window, more: bool) -> Json {
        match window {
            Window::Page(paging) => self.paging_links(paging, more),
            Window::Every { .. } => {
                let mut links = Json::object();
                links.field("first", self.link(0, 0));
                links.end()
            }
        }
    }

    /// This list's URL with its filters and `_sort`, at `offset` and `limit`.
    fn link(&self, offset: u32, limit: u32) -> String {
        let mut base = format!("{}{}", self.base_url, self.path);
        let kept: Vec<String> = self
            .query
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "_limit" | "_offset" | "_maxresults" | "_count"))
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        base.push('?');
        if !kept.is_empty() {
            base.push_str(&kept.join("&"));
            base.push('&');
        }
        format!("{base}_offset={offset}&_limit={limit}")
    }
}

/// Which rows of a list a request asks for (see [`Request::window`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// One page.
    Page(Paging),
    /// Every row from `offset`, but at most `cap` of them: past the cap the list answers
    /// a 400 asking the client to page.
    Every {
        /// Rows to skip.
        offset: u32,
        /// The most rows answered.
        cap: u32,
    },
}

/// A page of a list: how many rows and from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// Rows per page.
    pub limit: u32,
    /// Rows to skip.
    pub offset: u32,
}

/// True when `s` is a UUID in 8-4-4-4-12 hex form.
pub fn is_uuid(s: &str) -> bool {
    let bytes = s.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_query(query: &[(&str, &str)]) -> Request {
        Request {
            method: Method::Get,
            family: Family::Api,
            shape: Shape::Envelope,
            template: "/api/thing",
            path: "/thing".into(),
            params: Vec::new(),
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            headers: Vec::new(),
            body: Vec::new(),
            caller: Caller::default(),
            base_url: "https://localhost/apis/default/api".into(),
        }
    }

    #[test]
    fn paging_defaults_caps_and_refuses_bad_numbers() {
        let paging = |query: &[(&str, &str)]| with_query(query).paging(100, 200);
        assert_eq!(
            paging(&[]),
            Ok(Paging {
                limit: 100,
                offset: 0
            })
        );
        assert_eq!(
            paging(&[("_limit", "0"), ("_offset", "")]),
            Ok(Paging {
                limit: 100,
                offset: 0
            })
        );
        assert_eq!(
            paging(&[("_limit", "5000"), ("_offset", "40")]),
            Ok(Paging {
                limit: 200,
                offset: 40
            })
        );
        assert_eq!(
            paging(&[("_maxresults", "7")]),
            Ok(Paging {
                limit: 7,
                offset: 0
            })
        );
        for (key, value) in [("_limit", "ten"), ("_offset", "-1"), ("_limit", "1.5")] {
            let Err(ApiError::Validation(errors)) = paging(&[(key, value)]) else {
                panic!("{key}={value} is a 400")
            };
            assert_eq!(
                errors.to_value()[key]["Numeric::NOT_NUMERIC"],
                format!("{key} must be numeric: a whole number, 0 or more")
            );
        }
    }

    #[test]
    fn uuids_are_recognised() {
        assert!(is_uuid("90cde167-2a3b-4c5d-8e9f-0a1b2c3d4e5f"));
        assert!(!is_uuid("90cde167-2a3b-4c5d-8e9f-0a1b2c3d4e5"));
        assert!(!is_uuid("90cde167x2a3b-4c5d-8e9f-0a1b2c3d4e5f"));
        assert!(!is_uuid("not-a-uuid"));
    }
}
