//! A mock host for unit-testing plugin logic natively with `cargo test`.
//!
//! The mock answers the plugin's queries from canned rows (matched by a fragment of the
//! SQL) and records every host call, so a test can check both the response and what the
//! plugin asked of the host:
//!
//! ```
//! use hearth_sdk::prelude::*;
//! use hearth_sdk::testing::{HostCall, MockHost, TestRequest};
//!
//! struct Hello;
//! impl Resource for Hello {
//!     const NAME: &'static str = "hello";
//!     const VERSION: &'static str = "0.1.0";
//!     const READS: &'static [&'static str] = &["greeting"];
//!     const ROUTES: &'static [Route] = &[Route::get("/api/hello/:id", "hello.r", hello)];
//! }
//! fn hello(req: &Request) -> Result<Response> {
//!     let row = store::query_one("SELECT text FROM greeting WHERE id = $1", params![req.id("id")?])?
//!         .ok_or_else(ApiError::not_found)?;
//!     Ok(Response::ok(Json::from_one(&row)))
//! }
//!
//! let mut host = MockHost::new()
//!     .on_query("FROM greeting", Rows::from_values(&["text"], vec![vec!["hi".into()]]));
//! let response = host.call::<Hello>(TestRequest::get("/api/hello/7"));
//! assert_eq!(response.status, 200);
//! assert_eq!(response.body_json()["data"]["text"], "hi");
//! assert_eq!(host.queries()[0].1, vec![Value::Integer(7)]);
//! ```

use std::cell::RefCell;
use std::collections::HashMap;

use crate::request::{Caller, Request, Role};
use crate::resource::{Method, Resource, run};
use crate::response::Response;
use crate::store::{Form, RawRows, Rows, StoreError, Value, encode_columns, encode_value};

/// One call a plugin made to the host.
#[derive(Debug, Clone, PartialEq)]
pub enum HostCall {
    /// `store.query`.
    Query {
        /// The SQL.
        sql: String,
        /// Bound parameters.
        params: Vec<Value>,
    },
    /// `store.execute`.
    Execute {
        /// The SQL.
        sql: String,
        /// Bound parameters.
        params: Vec<Value>,
    },
    /// `log.write`.
    Log {
        /// 0 trace … 4 error.
        level: u8,
        /// The line.
        message: String,
    },
    /// `config.get`.
    Config(String),
    /// `util.uuid`.
    Uuid,
    /// `util.now`.
    Now,
    /// `util.request-id`.
    RequestId,
}

enum Answer {
    Rows(Rows),
    Affected(u64),
    Error(StoreError),
}

/// A scripted host.
#[derive(Default)]
pub struct MockHost {
    answers: Vec<(String, Answer)>,
    config: HashMap<String, String>,
    calls: Vec<HostCall>,
    /// Each query's SQL and the form it asked for.
    forms: Vec<(String, Form)>,
    next_uuid: u64,
    now: (i64, u32),
    request_id: String,
}

impl MockHost {
    /// A host with no answers, clock at 2024-01-02 03:04:05 UTC, request id
    /// `test-request`.
    pub fn new() -> MockHost {
        MockHost {
            now: (1_704_164_645, 0),
            request_id: "test-request".into(),
            ..MockHost::default()
        }
    }

    /// Sets the id [`crate::request_id`] answers.
    pub fn with_request_id(mut self, id: &str) -> MockHost {
        self.request_id = id.to_owned();
        self
    }

    /// Answers any query whose SQL contains `fragment` with `rows`. Earlier answers win.
    pub fn on_query(mut self, fragment: &str, rows: Rows) -> MockHost {
        self.answers.push((fragment.to_owned(), Answer::Rows(rows)));
        self
    }

    /// Answers any statement whose SQL contains `fragment` with `affected` changed rows.
    pub fn on_execute(mut self, fragment: &str, affected: u64) -> MockHost {
        self.answers
            .push((fragment.to_owned(), Answer::Affected(affected)));
        self
    }

    /// Fails any statement whose SQL contains `fragment` with `error`.
    pub fn on_error(mut self, fragment: &str, error: StoreError) -> MockHost {
        self.answers
            .push((fragment.to_owned(), Answer::Error(error)));
        self
    }

    /// Sets a configuration value.
    pub fn with_config(mut self, key: &str, value: &str) -> MockHost {
        self.config.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Every host call so far, in order.
    pub fn calls(&self) -> &[HostCall] {
        &self.calls
    }

    /// The SQL of every `query` so far, with the [`Form`] it asked its rows in: a test
    /// asserts that a route asks only for what it reads.
    pub fn query_forms(&self) -> &[(String, Form)] {
        &self.forms
    }

    /// The SQL and parameters of every `query` and `execute` so far.
    pub fn queries(&self) -> Vec<(String, Vec<Value>)> {
        self.calls
            .iter()
            .filter_map(|call| match call {
                HostCall::Query { sql, params } | HostCall::Execute { sql, params } => {
                    Some((sql.clone(), params.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// The SQL and parameters of every statement that writes (`INSERT`, `UPDATE`,
    /// `DELETE`), in order: a test asserts "nothing was written" with
    /// `assert!(host.writes().is_empty())`.
    pub fn writes(&self) -> Vec<(String, Vec<Value>)> {
        self.queries()
            .into_iter()
            .filter(|(sql, _)| {
                let verb = sql.split_whitespace().next().unwrap_or_default();
                ["INSERT", "UPDATE", "DELETE"]
                    .iter()
                    .any(|w| verb.eq_ignore_ascii_case(w))
            })
            .collect()
    }

    /// Runs `f` with this host installed, for testing helpers that call the host outside
    /// a route handler.
    pub fn run<T>(&mut self, f: impl FnOnce() -> T) -> T {
        let previous = HOST.with(|cell| cell.borrow_mut().replace(std::mem::take(self)));
        let result = f();
        let mine = HOST.with(|cell| std::mem::replace(&mut *cell.borrow_mut(), previous));
        *self = mine.expect("mock host installed for the call");
        result
    }

    /// Runs `request` through `R`'s routes with this host, as the real host would: the
    /// route is matched by method and path; an unmatched request is a 404 or 405.
    pub fn call<R: Resource>(&mut self, request: TestRequest) -> Response {
        let Some((route, params)) = R::ROUTES.iter().find_map(|route| {
            (route.method == request.method)
                .then(|| match_path(route.path, &request.path).map(|params| (route, params)))
                .flatten()
        }) else {
            let status = if R::ROUTES
                .iter()
                .any(|r| match_path(r.path, &request.path).is_some())
            {
                405
            } else {
                404
            };
            return Response::json(status, crate::json::Json::raw("{}"));
        };
        let (family, below) = route.split();
        let prefix_len = route.path.len() - below.len();
        let built = Request {
            method: route.method,
            family,
            shape: route.shape,
            template: route.path,
            path: request.path[prefix_len..].to_owned(),
            params,
            query: request.query,
            headers: request.headers,
            body: request.body,
            caller: request.caller,
            base_url: format!(
                "https://localhost/apis/default{}",
                &route.path[..prefix_len]
            ),
        };
        let body = built.body.clone();
        let response = self.run(|| run(route, &built));
        check_declared(route, &body, &response);
        response
    }

    pub(crate) fn query(
        &mut self,
        sql: &str,
        params: &[Value],
        form: Form,
    ) -> Result<RawRows, StoreError> {
        self.calls.push(HostCall::Query {
            sql: sql.to_owned(),
            params: params.to_vec(),
        });
        self.forms.push((sql.to_owned(), form));
        match self.answer(sql) {
            Some(Answer::Rows(rows)) => Ok(encode_rows(rows, form)),
            Some(Answer::Affected(_)) => Ok(RawRows {
                form,
                ..RawRows::default()
            }),
            Some(Answer::Error(error)) => Err(error.clone()),
            None => panic!("MockHost has no answer for query: {sql}"),
        }
    }

    pub(crate) fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, StoreError> {
        self.calls.push(HostCall::Execute {
            sql: sql.to_owned(),
            params: params.to_vec(),
        });
        match self.answer(sql) {
            Some(Answer::Affected(n)) => Ok(*n),
            Some(Answer::Rows(rows)) => Ok(rows.len() as u64),
            Some(Answer::Error(error)) => Err(error.clone()),
            None => panic!("MockHost has no answer for statement: {sql}"),
        }
    }

    fn answer(&self, sql: &str) -> Option<&Answer> {
        self.answers
            .iter()
            .find(|(fragment, _)| sql.contains(fragment.as_str()))
            .map(|(_, answer)| answer)
    }

    pub(crate) fn log(&mut self, level: u8, message: &str) {
        self.calls.push(HostCall::Log {
            level,
            message: message.to_owned(),
        });
    }

    pub(crate) fn config(&mut self, key: &str) -> Result<Option<String>, String> {
        self.calls.push(HostCall::Config(key.to_owned()));
        Ok(self.config.get(key).cloned())
    }

    pub(crate) fn uuid(&mut self) -> String {
        self.calls.push(HostCall::Uuid);
        self.next_uuid += 1;
        format!("00000000-0000-4000-8000-{:012x}", self.next_uuid)
    }

    pub(crate) fn now(&mut self) -> (i64, u32) {
        self.calls.push(HostCall::Now);
        self.now
    }

    pub(crate) fn request_id(&mut self) -> String {
        self.calls.push(HostCall::RequestId);
        self.request_id.clone()
    }
}

/// `rows` as the host sends them in `form`: the values only when asked for (so a plugin
/// that reads columns of rows it asked for as JSON fails here as it would on the host),
/// the JSON members only when asked for.
fn encode_rows(rows: &Rows, form: Form) -> RawRows {
    let mut data = Vec::new();
    encode_columns(&mut data, rows.columns().iter().map(String::as_str));
    if form.values() {
        for row in rows.iter() {
            for i in 0..rows.columns().len() {
                encode_value(&mut data, &row.at(i).into());
            }
        }
    }
    let mut json = String::new();
    let mut json_ends = Vec::new();
    if form.json() {
        for row in rows.iter() {
            json.push_str(row.json_members());
            json_ends.push(json.len() as u32);
        }
    }
    RawRows {
        columns: rows.columns().len() as u32,
        count: rows.len() as u32,
        data,
        form,
        json,
        json_ends,
    }
}

thread_local! {
    static HOST: RefCell<Option<MockHost>> = const { RefCell::new(None) };
}

/// Runs `f` with the mock host of the current [`MockHost::call`].
pub(crate) fn with_host<T>(f: impl FnOnce(&mut MockHost) -> T) -> T {
    HOST.with(|cell| {
        let mut host = cell.borrow_mut();
        let host = host
            .as_mut()
            .expect("host calls outside MockHost::call: run handlers through MockHost::call");
        f(host)
    })
}

/// Matches a path against a template; answers the parameter values.
fn match_path(template: &str, path: &str) -> Option<Vec<String>> {
    let mut params = Vec::new();
    let mut t = template.split('/');
    let mut p = path.split('/');
    loop {
        match (t.next(), p.next()) {
            (None, None) => return Some(params),
            (Some(ts), Some(ps)) if ts.starts_with(':') && !ps.is_empty() => {
                params.push(ps.to_owned())
            }
            (Some(ts), Some(ps)) if ts == ps => {}
            _ => return None,
        }
    }
}

/// A request for [`MockHost::call`].
#[derive(Debug, Clone)]
pub struct TestRequest {
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    caller: Caller,
}

impl TestRequest {
    fn new(method: Method, path: &str) -> TestRequest {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        TestRequest {
            method,
            path: path.to_owned(),
            query: query
                .split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (k.to_owned(), v.to_owned())
                })
                .collect(),
            headers: Vec::new(),
            body: Vec::new(),
            caller: Caller {
                role: Role::User,
                subject: "00000000-0000-4000-8000-0000000000aa".into(),
                username: "admin".into(),
                client_id: "test-client".into(),
                scopes: String::new(),
                patient: None,
            },
        }
    }

    /// A GET of `path` (family prefix included; a `?query` is parsed).
    pub fn get(path: &str) -> TestRequest {
        TestRequest::new(Method::Get, path)
    }

    /// A POST of `body` as JSON.
    pub fn post(path: &str, body: serde_json::Value) -> TestRequest {
        TestRequest::new(Method::Post, path).body(body)
    }

    /// A PUT of `body` as JSON.
    pub fn put(path: &str, body: serde_json::Value) -> TestRequest {
        TestRequest::new(Method::Put, path).body(body)
    }

    /// A DELETE.
    pub fn delete(path: &str) -> TestRequest {
        TestRequest::new(Method::Delete, path)
    }

    /// Sets a JSON body.
    pub fn body(mut self, body: serde_json::Value) -> TestRequest {
        self.body = body.to_string().into_bytes();
        self.headers
            .push(("content-type".into(), "application/json".into()));
        self
    }

    /// Sets a raw body.
    pub fn raw_body(mut self, body: &[u8]) -> TestRequest {
        self.body = body.to_vec();
        self
    }

    /// Calls as a patient with uuid `patient`.
    pub fn as_patient(mut self, patient: &str) -> TestRequest {
        self.caller.role = Role::Patient;
        self.caller.subject = patient.to_owned();
        self.caller.username.clear();
        self.caller.patient = Some(patient.to_owned());
        self
    }

    /// Calls as the host does for a site in OpenEMR compatibility (its
    /// `api.compatibility` setting is `openemr`).
    pub fn openemr(self) -> TestRequest {
        self.header(crate::request::COMPATIBILITY_HEADER, "openemr")
    }

    /// Calls as the host does for a site whose list cap is `cap` rows.
    pub fn list_cap(self, cap: u32) -> TestRequest {
        self.header(crate::request::LIST_CAP_HEADER, &cap.to_string())
    }

    /// Adds a request header.
    pub fn header(mut self, name: &str, value: &str) -> TestRequest {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// Sets the whole caller.
    pub fn caller(mut self, caller: Caller) -> TestRequest {
        self.caller = caller;
        self
    }
}

/// Fails the test when a route that succeeded (2xx) took a body its declared request
/// schema refuses, or answered a payload its declared response schema refuses (see
/// [`crate::apidocs`]).
fn check_declared(route: &crate::Route, body: &[u8], response: &Response) {
    use crate::apidocs::{Answer, schema_json};
    if !(200..300).contains(&response.status) {
        return;
    }
    let parse = |text: String| -> serde_json::Value {
        serde_json::from_str(&text).expect("the SDK writes valid JSON")
    };
    if let Some(accepts) = &route.accepts
        && !body.is_empty()
        && let Ok(sent) = serde_json::from_slice::<serde_json::Value>(body)
    {
        let schema = parse(schema_json(accepts));
        if let Err(error) = conforms(&sent, &schema, "body") {
            panic!(
                "{} {} accepted a body its declared request schema refuses: {error}\nschema: {schema}",
                method_name(route.method),
                route.path
            );
        }
    }
    let (item, list) = match &route.answer {
        Answer::Undeclared => return,
        Answer::One(item) => (item, false),
        Answer::List(item) => (item, true),
    };
    // Empty, or a page the host asked as lines (its own callers', never a client's).
    let lines = response
        .headers
        .iter()
        .any(|(k, _)| k == crate::request::LINES_HEADER);
    if response.body.is_empty() || lines {
        return;
    }
    let answered = response.body_json();
    let payload = if route.shape == crate::Shape::Bare || route.split().0 == crate::Family::Fhir {
        &answered
    } else {
        &answered["data"]
    };
    let item = parse(schema_json(item));
    let schema = if list {
        serde_json::json!({"type": "array", "items": item})
    } else {
        item
    };
    if let Err(error) = conforms(payload, &schema, "response") {
        panic!(
            "{} {} answered a payload its declared response schema refuses: {error}\nschema: {schema}",
            method_name(route.method),
            route.path
        );
    }
}

fn method_name(method: Method) -> &'static str {
    match method {
        Method::Get => "GET",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
    }
}

/// Checks `value` against `schema`: the JSON Schema keywords the SDK writes (`type`,
/// `enum`, `const`, `properties`, `required`, `items`, `anyOf`, `allOf`, `pattern` for
/// digits, `format` `date` and `uuid`). Says where and why on a mismatch.
pub fn conforms(
    value: &serde_json::Value,
    schema: &serde_json::Value,
    at: &str,
) -> std::result::Result<(), String> {
    use serde_json::Value as J;
    let type_of = |v: &J| match v {
        J::Null => "null",
        J::Bool(_) => "boolean",
        J::Number(n) if n.is_i64() || n.is_u64() => "integer",
        J::Number(_) => "number",
        J::String(_) => "string",
        J::Array(_) => "array",
        J::Object(_) => "object",
    };
    let fits = |name: &str| {
        let actual = type_of(value);
        actual == name || (name == "number" && actual == "integer")
    };
    match schema.get("type") {
        Some(J::String(name)) if !fits(name.as_str()) => {
            return Err(format!("{at} is {}, not {name}", type_of(value)));
        }
        Some(J::Array(names)) if !names.iter().any(|n| n.as_str().is_some_and(fits)) => {
            return Err(format!(
                "{at} is {}, not one of {}",
                type_of(value),
                J::Array(names.clone())
            ));
        }
        _ => {}
    }
    if let Some(expected) = schema.get("const")
        && expected != value
    {
        return Err(format!("{at} is {value}, not {expected}"));
    }
    if let Some(J::Array(values)) = schema.get("enum")
        && !values.contains(value)
    {
        return Err(format!(
            "{at} is {value}, not one of {}",
            J::Array(values.clone())
        ));
    }
    if let (Some(text), Some(J::String(pattern))) = (value.as_str(), schema.get("pattern"))
        && pattern == "^-?[0-9]+$"
    {
        let digits = text.strip_prefix('-').unwrap_or(text);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{at} is {value}, not a whole number"));
        }
    }
    if let (Some(text), Some(J::String(format))) = (value.as_str(), schema.get("format")) {
        let ok = match format.as_str() {
            "date" => text.len() == 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-',
            "uuid" => crate::request::is_uuid(text),
            _ => true,
        };
        if !ok {
            return Err(format!("{at} is {value}, not a {format}"));
        }
    }
    if let (J::Object(object), Some(J::Object(properties))) = (value, schema.get("properties")) {
        for (key, sub) in properties {
            if let Some(v) = object.get(key) {
                conforms(v, sub, &format!("{at}.{key}"))?;
            }
        }
    }
    if let (J::Object(object), Some(J::Array(required))) = (value, schema.get("required")) {
        for key in required.iter().filter_map(J::as_str) {
            if !object.contains_key(key) {
                return Err(format!("{at} has no {key}"));
            }
        }
    }
    if let (J::Array(items), Some(sub)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            conforms(item, sub, &format!("{at}[{i}]"))?;
        }
    }
    if let Some(J::Array(all)) = schema.get("allOf") {
        for sub in all {
            conforms(value, sub, at)?;
        }
    }
    if let Some(J::Array(any)) = schema.get("anyOf") {
        let errors: Vec<String> = any
            .iter()
            .filter_map(|sub| conforms(value, sub, at).err())
            .collect();
        if errors.len() == any.len() {
            return Err(errors.join("; and "));
        }
    }
    Ok(())
}
