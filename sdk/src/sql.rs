//! Table columns, JSON-to-column conversion, and INSERT/UPDATE/SELECT builders.
//!
//! OpenEMR accepts any whitelisted column in a request body and ignores other keys. A
//! plugin lists its columns once as [`Column`]s; [`Fields::from_json`] converts a body to
//! typed values (reporting type errors in OpenEMR's validation shape), and [`Insert`] and
//! [`Update`] write the statements with quoted identifiers and `$n` parameters, so the SQL
//! is portable between SQLite and PostgreSQL.
//!
//! ```
//! use hearth_sdk::sql::{Column, Fields, Insert};
//! const COLUMNS: &[Column] = &[Column::text("fname"), Column::date("DOB"), Column::int("providerID")];
//! let body = serde_json::json!({"fname": "Ann", "DOB": "1990-01-02", "ignored": 1});
//! let fields = Fields::from_json(body.as_object().unwrap(), COLUMNS).unwrap();
//! let mut insert = Insert::into("patient_data");
//! insert.set("uuid", "u-1").fields(&fields);
//! assert_eq!(insert.sql(), r#"INSERT INTO patient_data ("uuid", "fname", "DOB") VALUES ($1, $2, $3)"#);
//! ```

use serde_json::{Map, Value as Json};

use crate::request::Request;
use crate::response::ApiError;
use crate::store::{self, Rows, StoreError, Value};
use crate::time;
use crate::validate::Validator;

/// How a column's values are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text; JSON `null` becomes `''` (OpenEMR's text columns are `NOT NULL DEFAULT ''`).
    Text,
    /// Nullable text; JSON `null` stays `NULL`.
    TextOrNull,
    /// An integer; `null` and `''` become `NULL`.
    Integer,
    /// A number; `null` and `''` become `NULL`.
    Real,
    /// `YYYY-MM-DD`; `null` and `''` become `NULL`.
    Date,
    /// `YYYY-MM-DD HH:MM:SS` (a bare date is accepted and means midnight); `null` and `''`
    /// become `NULL`.
    DateTime,
}

/// A column a request body may set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    /// The column's name, also the JSON key.
    pub name: &'static str,
    /// How its values are stored.
    pub kind: Kind,
}

impl Column {
    /// A text column.
    pub const fn text(name: &'static str) -> Column {
        Column {
            name,
            kind: Kind::Text,
        }
    }
    /// A nullable text column.
    pub const fn text_or_null(name: &'static str) -> Column {
        Column {
            name,
            kind: Kind::TextOrNull,
        }
    }
    /// An integer column.
    pub const fn int(name: &'static str) -> Column {
        Column {
            name,
            kind: Kind::Integer,
        }
    }
    /// A numeric column.
    pub const fn real(name: &'static str) -> Column {
        Column {
            name,
            kind: Kind::Real,
        }
    }
    /// A date column.
    pub const fn date(name: &'static str) -> Column {
        Column {
            name,
            kind: Kind::Date,
        }
    }
    /// A datetime column.
    pub const fn datetime(name: &'static str) -> Column {
        Column {
            name,
            kind: Kind::DateTime,
        }
    }

    /// Converts a JSON value to this column's SQL value, or says which rule it breaks
    /// (`Numeric::NOT_NUMERIC`, `DateTime::INVALID_VALUE`, ...) and how.
    pub fn value_of(&self, json: &Json) -> Result<Value, (&'static str, &'static str)> {
        convert(json, self.kind)
    }
}

/// Column values taken from a request body, in column-list order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    /// Converts the keys of `body` that are in `columns`; other keys are ignored, as
    /// OpenEMR ignores them. A value of the wrong type is a 400 naming the field.
    pub fn from_json(body: &Map<String, Json>, columns: &[Column]) -> Result<Fields, ApiError> {
        let mut errors = Validator::new(body);
        let fields = Fields::collect(body, columns, &mut errors);
        errors.finish()?;
        Ok(fields)
    }

    /// Converts the keys of `body` that are in `columns`, recording type errors in
    /// `errors` for fields that have no error yet (a rule already explained them).
    pub(crate) fn collect(
        body: &Map<String, Json>,
        columns: &[Column],
        errors: &mut Validator<'_>,
    ) -> Fields {
        let mut fields = Vec::new();
        for column in columns {
            let Some(json) = body.get(column.name) else {
                continue;
            };
            match column.value_of(json) {
                Ok(value) => fields.push((column.name, value)),
                Err((rule, message)) if !errors.has_error(column.name) => {
                    errors.error(column.name, rule, format!("{} {message}", column.name))
                }
                Err(_) => {}
            }
        }
        Fields(fields)
    }

    /// True when no column was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value given for `column`.
    pub fn get(&self, column: &str) -> Option<&Value> {
        self.0.iter().find(|(c, _)| *c == column).map(|(_, v)| v)
    }

    /// Sets (or replaces) a value.
    pub fn set(&mut self, column: &'static str, value: impl Into<Value>) {
        let value = value.into();
        match self.0.iter_mut().find(|(c, _)| *c == column) {
            Some(slot) => slot.1 = value,
            None => self.0.push((column, value)),
        }
    }

    /// Sets `column` unless the body gave it a value: absent and `null` both count as not
    /// given, as OpenEMR's `empty()` checks do (e.g. an encounter's `date` defaults to now).
    pub fn set_default(&mut self, column: &'static str, value: impl Into<Value>) {
        if matches!(self.get(column), None | Some(Value::Null)) {
            self.set(column, value);
        }
    }

    /// Drops a column.
    pub fn remove(&mut self, column: &str) {
        self.0.retain(|(c, _)| *c != column);
    }

    /// The columns and values.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &Value)> {
        self.0.iter().map(|(c, v)| (*c, v))
    }
}

fn convert(json: &Json, kind: Kind) -> Result<Value, (&'static str, &'static str)> {
    let empty = matches!(json, Json::Null) || json.as_str() == Some("");
    match kind {
        Kind::Text => Ok(match json {
            Json::Null => Value::Text(String::new()),
            Json::String(s) => Value::Text(s.clone()),
            Json::Number(n) => Value::Text(n.to_string()),
            Json::Bool(b) => Value::Text(if *b { "1".into() } else { String::new() }),
            _ => return Err(("IsString::NOT_A_STRING", "must be a string")),
        }),
        Kind::TextOrNull => match json {
            Json::Null => Ok(Value::Null),
            other => convert(other, Kind::Text),
        },
        _ if empty => Ok(Value::Null),
        Kind::Integer => match json {
            Json::Number(n) if n.is_i64() => Ok(Value::Integer(n.as_i64().unwrap_or_default())),
            Json::String(s) if s.trim().parse::<i64>().is_ok() => {
                Ok(Value::Integer(s.trim().parse().unwrap_or_default()))
            }
            Json::Bool(b) => Ok(Value::Integer((*b).into())),
            _ => Err(("Numeric::NOT_NUMERIC", "must be numeric")),
        },
        Kind::Real => match json {
            Json::Number(n) => Ok(Value::Real(n.as_f64().unwrap_or_default())),
            Json::String(s) if s.trim().parse::<f64>().is_ok_and(f64::is_finite) => {
                Ok(Value::Real(s.trim().parse().unwrap_or_default()))
            }
            _ => Err(("Numeric::NOT_NUMERIC", "must be numeric")),
        },
        Kind::Date => json
            .as_str()
            .and_then(|s| time::parse(s, "Y-m-d"))
            .map(|d| Value::Text(d.date()))
            .ok_or(("DateTime::INVALID_VALUE", "must be a valid date")),
        Kind::DateTime => json
            .as_str()
            .and_then(time::parse_date_or_datetime)
            .map(|d| Value::Text(d.datetime()))
            .ok_or(("DateTime::INVALID_VALUE", "must be a valid date")),
    }
}

/// Quotes an identifier for both databases; `alias.column` keeps the alias unquoted.
/// Identifiers come from the plugin's own column lists, never from requests.
pub fn ident(name: &str) -> String {
    match name.split_once('.') {
        Some((alias, column)) => format!("{alias}.{}", ident(column)),
        None => {
            // One allocation: bulk writers (the demo seed) quote millions of names.
            let mut quoted = String::with_capacity(name.len() + 2);
            quoted.push('"');
            for c in name.chars() {
                if c == '"' {
                    quoted.push('"');
                }
                quoted.push(c);
            }
            quoted.push('"');
            quoted
        }
    }
}

/// An `INSERT` statement.
pub struct Insert {
    table: &'static str,
    columns: Vec<String>,
    values: Vec<Value>,
    returning: Option<&'static str>,
}

impl Insert {
    /// Inserts into `table`.
    pub fn into(table: &'static str) -> Insert {
        Insert {
            table,
            columns: Vec::with_capacity(16),
            values: Vec::with_capacity(16),
            returning: None,
        }
    }

    /// Sets one column.
    pub fn set(&mut self, column: &str, value: impl Into<Value>) -> &mut Self {
        self.columns.push(ident(column));
        self.values.push(value.into());
        self
    }

    /// Sets every column in `fields` that was not set already.
    pub fn fields(&mut self, fields: &Fields) -> &mut Self {
        for (column, value) in fields.iter() {
            if !self.columns.contains(&ident(column)) {
                self.set(column, value.clone());
            }
        }
        self
    }

    /// Adds `RETURNING columns`.
    pub fn returning(&mut self, columns: &'static str) -> &mut Self {
        self.returning = Some(columns);
        self
    }

    /// The table it writes.
    pub fn table(&self) -> &'static str {
        self.table
    }

    /// The columns set so far, in order, quoted (see [`ident`]).
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The values set so far, in the order of [`Insert::columns`]: what a caller that
    /// writes many rows in one statement takes from each row's `Insert`.
    pub fn into_values(self) -> Vec<Value> {
        self.values
    }

    /// The SQL text.
    pub fn sql(&self) -> String {
        let params: Vec<String> = (1..=self.values.len()).map(|i| format!("${i}")).collect();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            self.table,
            self.columns.join(", "),
            params.join(", ")
        );
        if let Some(returning) = self.returning {
            sql.push_str(" RETURNING ");
            sql.push_str(returning);
        }
        sql
    }

    /// Runs it and answers the `RETURNING` rows (empty without `RETURNING`).
    pub fn run(&self) -> Result<Rows, StoreError> {
        if self.returning.is_some() {
            store::query(&self.sql(), &self.values)
        } else {
            store::execute(&self.sql(), &self.values).map(|_| Rows::default())
        }
    }

    /// Runs it with `RETURNING id` and answers the new row's `id`, the numeric key
    /// OpenEMR hands back from creates (`{"id": …}`, `{"vid": …}`, `fid`, ...).
    pub fn insert_id(&mut self) -> Result<i64, ApiError> {
        self.returning = Some("id");
        self.run()?
            .get(0)
            .and_then(|row| row.int("id"))
            .ok_or_else(|| ApiError::Internal(format!("INSERT INTO {} returned no id", self.table)))
    }
}

/// The `WHERE` clause of an [`Update`] or [`Delete`]: conditions ANDed, each with its own
/// parameters written `$?` until the statement is numbered.
#[derive(Default)]
struct Filter(Vec<(String, Vec<Value>)>);

impl Filter {
    fn equals(&mut self, column: &str, value: Value) {
        self.0
            .push((format!("{} = $?", ident(column)), vec![value]));
    }

    fn condition(&mut self, sql: &str, values: Vec<Value>) {
        self.0.push((sql.to_owned(), values));
    }

    /// Appends ` WHERE …` to `sql`, numbering parameters after those in `values`.
    fn write(&self, sql: &mut String, values: &mut Vec<Value>) {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(condition, params)| number(condition, params.clone(), values))
            .collect();
        if !parts.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&parts.join(" AND "));
        }
    }

    /// Answers whether any row of `table` matches, for writes that changed nothing.
    fn matches_any(&self, table: &str) -> Result<bool, StoreError> {
        let mut sql = format!("SELECT 1 AS found FROM {table}");
        let mut values = Vec::new();
        self.write(&mut sql, &mut values);
        sql.push_str(" LIMIT 1");
        Ok(!store::query(&sql, &values)?.is_empty())
    }
}

/// Replaces each `$?` in `sql` with the next parameter number, moving `params` to `out`.
/// A missing parameter binds `NULL`.
fn number(sql: &str, params: Vec<Value>, out: &mut Vec<Value>) -> String {
    let mut parts = sql.split("$?");
    let mut text = parts.next().unwrap_or_default().to_owned();
    let mut params = params.into_iter();
    for part in parts {
        out.push(params.next().unwrap_or(Value::Null));
        text.push_str(&format!("${}", out.len()));
        text.push_str(part);
    }
    text
}

/// An `UPDATE` statement.
pub struct Update {
    table: &'static str,
    sets: Vec<(String, Value)>,
    wheres: Filter,
}

impl Update {
    /// Updates `table`.
    pub fn table(table: &'static str) -> Update {
        Update {
            table,
            sets: Vec::new(),
            wheres: Filter::default(),
        }
    }

    /// Sets one column.
    pub fn set(&mut self, column: &str, value: impl Into<Value>) -> &mut Self {
        self.sets.push((ident(column), value.into()));
        self
    }

    /// Sets every column in `fields` that was not set already.
    pub fn fields(&mut self, fields: &Fields) -> &mut Self {
        for (column, value) in fields.iter() {
            let quoted = ident(column);
            if !self.sets.iter().any(|(c, _)| *c == quoted) {
                self.sets.push((quoted, value.clone()));
            }
        }
        self
    }

    /// Adds `column = value` to the `WHERE` clause (all conditions are ANDed).
    pub fn filter(&mut self, column: &str, value: impl Into<Value>) -> &mut Self {
        self.wheres.equals(column, value.into());
        self
    }

    /// Adds a raw condition with its own parameters written `$?` (numbered for you),
    /// e.g. `condition("npi <> ''", vec![])`.
    pub fn condition(&mut self, sql: &str, values: Vec<Value>) -> &mut Self {
        self.wheres.condition(sql, values);
        self
    }

    /// The SQL text and its parameters.
    pub fn build(&self) -> (String, Vec<Value>) {
        let mut values = Vec::new();
        let sets: Vec<String> = self
            .sets
            .iter()
            .map(|(c, v)| {
                values.push(v.clone());
                format!("{c} = ${}", values.len())
            })
            .collect();
        let mut sql = format!("UPDATE {} SET {}", self.table, sets.join(", "));
        self.wheres.write(&mut sql, &mut values);
        (sql, values)
    }

    /// Runs it and answers how many rows changed. Nothing to set changes nothing.
    pub fn run(&self) -> Result<u64, StoreError> {
        if self.sets.is_empty() {
            return Ok(0);
        }
        let (sql, values) = self.build();
        store::execute(&sql, &values)
    }

    /// Runs it for the one row a route addresses: a 404 when no row matches the filter,
    /// so an id of another patient (or another list type) is never changed. With nothing
    /// to set it only checks that the row exists.
    pub fn apply(&self) -> Result<(), ApiError> {
        let found = if self.sets.is_empty() {
            self.wheres.matches_any(self.table)?
        } else {
            self.run()? > 0
        };
        found.then_some(()).ok_or(ApiError::NotFound)
    }
}

/// A `DELETE` statement.
pub struct Delete {
    table: &'static str,
    wheres: Filter,
}

impl Delete {
    /// Deletes rows of `table`.
    pub fn table(table: &'static str) -> Delete {
        Delete {
            table,
            wheres: Filter::default(),
        }
    }

    /// Adds `column = value` to the `WHERE` clause (all conditions are ANDed).
    pub fn filter(&mut self, column: &str, value: impl Into<Value>) -> &mut Self {
        self.wheres.equals(column, value.into());
        self
    }

    /// Adds a raw condition with its own parameters written `$?`.
    pub fn condition(&mut self, sql: &str, values: Vec<Value>) -> &mut Self {
        self.wheres.condition(sql, values);
        self
    }

    /// The SQL text and its parameters.
    pub fn build(&self) -> (String, Vec<Value>) {
        let mut values = Vec::new();
        let mut sql = format!("DELETE FROM {}", self.table);
        self.wheres.write(&mut sql, &mut values);
        (sql, values)
    }

    /// Runs it and answers how many rows it removed.
    pub fn run(&self) -> Result<u64, StoreError> {
        let (sql, values) = self.build();
        store::execute(&sql, &values)
    }

    /// Runs it for the one row a route addresses: a 404 when nothing matched.
    pub fn apply(&self) -> Result<(), ApiError> {
        (self.run()? > 0).then_some(()).ok_or(ApiError::NotFound)
    }
}

/// One key a list can be sorted by: the field name a client writes in `_sort` (as the
/// responses name it) and the column it orders by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    /// The name in `_sort`.
    pub name: &'static str,
    /// The column: `alias.column`, or a bare name taken under the [`Sort::alias`].
    pub column: &'static str,
}

impl SortKey {
    /// A field that is the column of the same name.
    pub const fn column(name: &'static str) -> SortKey {
        SortKey { name, column: name }
    }

    /// A field whose column has another name or table, e.g. an encounter's `eid` is
    /// `fe.encounter`.
    pub const fn renamed(name: &'static str, column: &'static str) -> SortKey {
        SortKey { name, column }
    }
}

/// How a list may be ordered: OpenEMR's `_sort` over a whitelist of fields, a default,
/// and a tie-breaker that makes every order total, so paging with `_offset` neither
/// repeats nor skips rows.
///
/// `NULL`s sort first ascending and last descending on both databases. Text sorts by the
/// database's collation (byte order on SQLite, the database locale on PostgreSQL).
///
/// ```
/// use hearth_sdk::sql::{Search, Sort, SortKey};
/// const SORT: Sort = Sort {
///     alias: "fe",
///     keys: &[SortKey::renamed("eid", "encounter"), SortKey::column("date")],
///     default: "-eid",
///     tiebreak: "id",
/// };
/// let mut search = Search::new();
/// search.sort(Some("-date"), &SORT).unwrap();
/// let (sql, _) = search.build("SELECT * FROM form_encounter fe", None);
/// assert!(sql.ends_with(r#"ORDER BY fe."date" DESC NULLS LAST, fe."id" ASC"#));
/// assert!(Search::new().sort(Some("reason"), &SORT).is_err(), "not a sort key: a 400");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    /// The table alias of the bare column names (`""` for none).
    pub alias: &'static str,
    /// The fields `_sort` may name.
    pub keys: &'static [SortKey],
    /// The order without `_sort`, written as `_sort` is, e.g. `"-date"`.
    pub default: &'static str,
    /// The column (a unique one, usually `id`) ordered by last, written as `_sort` is,
    /// e.g. `"-id"`; it is skipped when the order already ends with it.
    pub tiebreak: &'static str,
}

impl Sort {
    fn column(&self, column: &str) -> String {
        if column.contains('.') || self.alias.is_empty() {
            ident(column)
        } else {
            format!("{}.{}", self.alias, ident(column))
        }
    }

    /// The `ORDER BY` terms for the `_sort` value `sort` (or the default), with the
    /// tie-breaker last. Empty items (`a,,b`, a trailing comma) are skipped.
    pub fn order_by(&self, sort: Option<&str>) -> Result<Vec<String>, ApiError> {
        let items = |text: &'static str| text.split(',').map(str::trim).filter(|i| !i.is_empty());
        let given: Vec<&str> = sort
            .map(|text| {
                text.split(',')
                    .map(str::trim)
                    .filter(|i| !i.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let requested = !given.is_empty();
        let chosen: Vec<&str> = if requested {
            given
        } else {
            items(self.default).collect()
        };
        let mut order = Vec::new();
        for item in chosen {
            let (name, descending) = split_direction(item);
            let key = self.keys.iter().find(|k| k.name == name);
            let Some(key) = key else {
                return Err(self.unknown(name, requested));
            };
            order.push(direction(self.column(key.column), descending));
        }
        let (tiebreak, descending) = split_direction(self.tiebreak);
        let last = self.column(tiebreak);
        if !tiebreak.is_empty()
            && !order
                .iter()
                .any(|term| term.starts_with(&format!("{last} ")))
        {
            order.push(format!(
                "{last} {}",
                if descending { "DESC" } else { "ASC" }
            ));
        }
        Ok(order)
    }

    /// `sort` without the names this list does not offer (`None` when none is left), as
    /// OpenEMR drops sort columns it does not allow.
    pub fn known_only(&self, sort: Option<&str>) -> Option<String> {
        let kept: Vec<&str> = sort?
            .split(',')
            .map(str::trim)
            .filter(|item| {
                let (name, _) = split_direction(item);
                self.keys.iter().any(|key| key.name == name)
            })
            .collect();
        (!kept.is_empty()).then(|| kept.join(","))
    }

    /// The error for a key the list does not offer: a 400 for a request's `_sort`, a
    /// 500 for a default that names no key (a plugin bug).
    fn unknown(&self, name: &str, requested: bool) -> ApiError {
        if !requested {
            return ApiError::Internal(format!("the default sort names an unknown key {name}"));
        }
        let names: Vec<&str> = self.keys.iter().map(|k| k.name).collect();
        ApiError::invalid(
            "_sort",
            "InArray::NOT_IN_ARRAY",
            &format!(
                "_sort cannot order by \"{name}\"; it takes a comma list of {} (a leading - sorts descending)",
                names.join(", ")
            ),
        )
    }
}

/// `("date", true)` for `-date`.
fn split_direction(item: &str) -> (&str, bool) {
    match item.strip_prefix('-') {
        Some(name) => (name.trim(), true),
        None => (item, false),
    }
}

/// An `ORDER BY` term with the same `NULL` placement on SQLite and PostgreSQL.
fn direction(column: String, descending: bool) -> String {
    if descending {
        format!("{column} DESC NULLS LAST")
    } else {
        format!("{column} ASC NULLS FIRST")
    }
}

/// A `WHERE` clause built from list filters, `ORDER BY` from `_sort`, and paging.
#[derive(Default)]
pub struct Search {
    alias: Option<&'static str>,
    conditions: Vec<String>,
    values: Vec<Value>,
    order: Vec<String>,
}

impl Search {
    /// An empty search.
    pub fn new() -> Search {
        Search::default()
    }

    /// An empty search whose columns belong to the table aliased `alias` in the query.
    pub fn on(alias: &'static str) -> Search {
        Search {
            alias: Some(alias),
            ..Search::default()
        }
    }

    fn column(&self, column: &str) -> String {
        match self.alias {
            Some(alias) => format!("{alias}.{}", ident(column)),
            None => ident(column),
        }
    }

    fn param(&mut self, value: Value) -> String {
        self.values.push(value);
        format!("${}", self.values.len())
    }

    /// `column = value`.
    pub fn equals(&mut self, column: &str, value: impl Into<Value>) -> &mut Self {
        let p = self.param(value.into());
        let column = self.column(column);
        self.conditions.push(format!("{column} = {p}"));
        self
    }

    /// Case-insensitive "contains" on text, as OpenEMR's LIKE '%v%'.
    pub fn contains(&mut self, column: &str, text: &str) -> &mut Self {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let p = self.param(Value::Text(format!("%{}%", escaped.to_lowercase())));
        let column = self.column(column);
        self.conditions
            .push(format!("LOWER({column}) LIKE {p} ESCAPE '\\'"));
        self
    }

    /// A raw condition with its own parameters written `$?` (numbered for you).
    pub fn condition(&mut self, sql: &str, values: Vec<Value>) -> &mut Self {
        let text = number(sql, values, &mut self.values);
        self.conditions.push(text);
        self
    }

    /// `column = value` for every query parameter named like one of `columns`, the value
    /// converted to the column's type (so integer columns compare with integers on
    /// PostgreSQL). Other parameters are ignored, as OpenEMR ignores them; a value of the
    /// wrong type is a 400 naming the parameter.
    pub fn filter_exact(
        &mut self,
        query: &[(String, String)],
        columns: &[Column],
    ) -> Result<&mut Self, ApiError> {
        for (key, text) in query {
            if let Some(column) = columns.iter().find(|c| c.name == key) {
                let value =
                    column
                        .value_of(&Json::String(text.clone()))
                        .map_err(|(rule, message)| {
                            ApiError::invalid(key, rule, &format!("{key} {message}"))
                        })?;
                self.equals(column.name, value);
            }
        }
        Ok(self)
    }

    /// Case-insensitive "contains" for every query parameter named in `columns` (text
    /// columns), as OpenEMR's `LIKE '%v%'` filters.
    pub fn filter_contains(&mut self, query: &[(String, String)], columns: &[&str]) -> &mut Self {
        for (key, text) in query {
            if let Some(column) = columns.iter().find(|c| *c == key) {
                self.contains(column, text);
            }
        }
        self
    }

    /// Orders by OpenEMR's `_sort` (a comma list of field names, `-` before a name for
    /// descending) over the keys `spec` offers, then by its tie-breaker so equal keys
    /// keep one order from page to page; `spec.default` when `_sort` is absent or empty.
    /// A key the list does not offer is a 400 that names the keys it does.
    pub fn sort(&mut self, sort: Option<&str>, spec: &Sort) -> Result<&mut Self, ApiError> {
        self.order = spec.order_by(sort)?;
        Ok(self)
    }

    /// [`Search::sort`] by the request's `_sort`. On a site in OpenEMR compatibility a
    /// name the list does not offer is left out instead of refused, as OpenEMR does.
    pub fn sort_by(&mut self, req: &Request, spec: &Sort) -> Result<&mut Self, ApiError> {
        if req.openemr_compatible() {
            let known = spec.known_only(req.query("_sort"));
            self.sort(known.as_deref(), spec)
        } else {
            self.sort(req.query("_sort"), spec)
        }
    }

    /// Runs `SELECT {select} FROM {from} WHERE … ORDER BY … LIMIT … OFFSET …` and answers
    /// the rows' typed values.
    pub fn query(&self, select: &str, limit: u32, offset: u32) -> Result<Rows, StoreError> {
        self.query_with(select, limit, offset, store::Form::Values)
    }

    /// [`Search::query`], its rows in `form` (see [`store::query_with`]).
    pub fn query_with(
        &self,
        select: &str,
        limit: u32,
        offset: u32,
        form: store::Form,
    ) -> Result<Rows, StoreError> {
        let (sql, values) = self.build(select, Some((limit, offset)));
        store::query_with(&sql, &values, form)
    }

    /// The SQL and parameters; `select` is everything from `SELECT` up to the `WHERE`.
    pub fn build(&self, select: &str, page: Option<(u32, u32)>) -> (String, Vec<Value>) {
        let mut sql = select.to_owned();
        let mut values = self.values.clone();
        if !self.conditions.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&self.conditions.join(" AND "));
        }
        if !self.order.is_empty() {
            sql.push_str(" ORDER BY ");
            sql.push_str(&self.order.join(", "));
        }
        if let Some((limit, offset)) = page {
            values.push(Value::Integer(limit.into()));
            values.push(Value::Integer(offset.into()));
            sql.push_str(&format!(
                " LIMIT ${} OFFSET ${}",
                values.len() - 1,
                values.len()
            ));
        }
        (sql, values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_with_inner_quotes_doubled_and_aliases_kept() {
        assert_eq!(ident("BMI"), r#""BMI""#);
        assert_eq!(ident("fo.pid"), r#"fo."pid""#);
        assert_eq!(ident(r#"a"b"#), r#""a""b""#);
    }
    use crate::testing::MockHost;
    use serde_json::json;

    const COLUMNS: &[Column] = &[
        Column::text("fname"),
        Column::int("providerID"),
        Column::date("DOB"),
        Column::datetime("regdate"),
        Column::text_or_null("note"),
    ];

    #[test]
    fn bodies_convert_to_typed_columns() {
        let body = json!({"fname": null, "providerID": "7", "DOB": "", "regdate": "2020-01-02", "note": null, "x": 1});
        let fields = Fields::from_json(body.as_object().unwrap(), COLUMNS).unwrap();
        assert_eq!(fields.get("fname"), Some(&Value::Text(String::new())));
        assert_eq!(fields.get("providerID"), Some(&Value::Integer(7)));
        assert_eq!(fields.get("DOB"), Some(&Value::Null));
        assert_eq!(
            fields.get("regdate"),
            Some(&Value::Text("2020-01-02 00:00:00".into()))
        );
        assert_eq!(fields.get("note"), Some(&Value::Null));
        assert_eq!(fields.get("x"), None);
    }

    #[test]
    fn wrong_types_are_validation_errors() {
        let body = json!({"providerID": "seven", "DOB": "02/03/2020"});
        let error = Fields::from_json(body.as_object().unwrap(), COLUMNS).unwrap_err();
        let ApiError::Validation(json) = error else {
            panic!("validation error expected")
        };
        let v = json.to_value();
        assert_eq!(
            v["providerID"]["Numeric::NOT_NUMERIC"],
            "providerID must be numeric"
        );
        assert_eq!(
            v["DOB"]["DateTime::INVALID_VALUE"],
            "DOB must be a valid date"
        );
    }

    const PATIENTS: Sort = Sort {
        alias: "p",
        keys: &[
            SortKey::column("DOB"),
            SortKey::column("lname"),
            SortKey::renamed("provider", "u.lname"),
        ],
        default: "lname",
        tiebreak: "id",
    };

    #[test]
    fn sort_follows_the_keys_in_order_then_the_tiebreaker() {
        assert_eq!(
            PATIENTS.order_by(Some("-DOB, lname,provider")).unwrap(),
            [
                r#"p."DOB" DESC NULLS LAST"#,
                r#"p."lname" ASC NULLS FIRST"#,
                r#"u."lname" ASC NULLS FIRST"#,
                r#"p."id" ASC"#
            ]
        );
        assert_eq!(
            PATIENTS.order_by(None).unwrap(),
            [r#"p."lname" ASC NULLS FIRST"#, r#"p."id" ASC"#],
            "the default, then the tiebreaker"
        );
        assert_eq!(
            PATIENTS.order_by(Some(" ,")).unwrap(),
            PATIENTS.order_by(None).unwrap(),
            "an empty _sort is the default"
        );
        assert_eq!(
            PATIENTS.order_by(Some("lname,,-DOB,")).unwrap().len(),
            3,
            "empty items are skipped"
        );
    }

    #[test]
    fn the_tiebreaker_is_not_repeated() {
        const BY_ID: Sort = Sort {
            alias: "l",
            keys: &[SortKey::column("id"), SortKey::column("date")],
            default: "-date",
            tiebreak: "-id",
        };
        assert_eq!(
            BY_ID.order_by(None).unwrap(),
            [r#"l."date" DESC NULLS LAST"#, r#"l."id" DESC"#]
        );
        assert_eq!(
            BY_ID.order_by(Some("id")).unwrap(),
            [r#"l."id" ASC NULLS FIRST"#]
        );
    }

    #[test]
    fn unknown_sort_keys_are_a_400_naming_the_offered_keys() {
        let Err(ApiError::Validation(errors)) = PATIENTS.order_by(Some("lname,-ss")) else {
            panic!("a 400 expected")
        };
        assert_eq!(
            errors.to_value()["_sort"]["InArray::NOT_IN_ARRAY"],
            "_sort cannot order by \"ss\"; it takes a comma list of DOB, lname, provider (a leading - sorts descending)"
        );
        assert!(
            PATIENTS.order_by(Some("p.id; DROP TABLE x")).is_err(),
            "only whitelisted names reach the SQL"
        );
        let broken = Sort {
            default: "nope",
            ..PATIENTS
        };
        assert!(matches!(broken.order_by(None), Err(ApiError::Internal(_))));
    }

    #[test]
    fn builders_number_their_parameters() {
        let mut update = Update::table("t");
        update.set("a", 1).set("B", "x").filter("id", 9);
        let (sql, values) = update.build();
        assert_eq!(sql, r#"UPDATE t SET "a" = $1, "B" = $2 WHERE "id" = $3"#);
        assert_eq!(values.len(), 3);

        let mut search = Search::new();
        search
            .contains("lname", "O'B_%")
            .equals("sex", "Female")
            .sort(Some("-DOB"), &PATIENTS)
            .unwrap();
        let (sql, values) = search.build("SELECT * FROM p", Some((10, 20)));
        assert_eq!(
            sql,
            r#"SELECT * FROM p WHERE LOWER("lname") LIKE $1 ESCAPE '\' AND "sex" = $2 ORDER BY p."DOB" DESC NULLS LAST, p."id" ASC LIMIT $3 OFFSET $4"#
        );
        assert_eq!(values[0], Value::Text("%o'b\\_\\%%".into()));
    }

    #[test]
    fn update_and_delete_conditions_share_the_numbering() {
        let mut update = Update::table("users");
        update
            .set("fname", "Ann")
            .filter("uuid", "u-1")
            .condition("npi <> '' AND id > $?", vec![Value::Integer(3)]);
        let (sql, values) = update.build();
        assert_eq!(
            sql,
            r#"UPDATE users SET "fname" = $1 WHERE "uuid" = $2 AND npi <> '' AND id > $3"#
        );
        assert_eq!(values, vec!["Ann".into(), "u-1".into(), Value::Integer(3)]);

        let mut delete = Delete::table("lists");
        delete
            .filter("id", 7)
            .filter("pid", 1)
            .filter("type", "medication");
        let (sql, values) = delete.build();
        assert_eq!(
            sql,
            r#"DELETE FROM lists WHERE "id" = $1 AND "pid" = $2 AND "type" = $3"#
        );
        assert_eq!(values.len(), 3);
    }

    #[test]
    fn apply_is_a_404_when_no_row_matches() {
        let mut host = MockHost::new()
            .on_execute("UPDATE lists", 0)
            .on_execute("DELETE FROM lists", 1)
            .on_query("SELECT 1 AS found FROM lists", Rows::default());
        host.run(|| {
            let mut update = Update::table("lists");
            update.set("title", "x").filter("id", 1);
            assert_eq!(update.apply(), Err(ApiError::NotFound));
            let mut nothing = Update::table("lists");
            nothing.filter("id", 1);
            assert_eq!(
                nothing.apply(),
                Err(ApiError::NotFound),
                "an empty update still checks the row"
            );
            let mut delete = Delete::table("lists");
            delete.filter("id", 1);
            assert_eq!(delete.apply(), Ok(()));
        });
        let (sql, _) = &host.queries()[1];
        assert_eq!(
            sql,
            r#"SELECT 1 AS found FROM lists WHERE "id" = $1 LIMIT 1"#
        );
    }

    #[test]
    fn insert_id_returns_the_new_rows_id() {
        let mut host = MockHost::new().on_query(
            "INSERT INTO facility",
            Rows::from_values(&["id"], vec![vec![12.into()]]),
        );
        let id = host.run(|| Insert::into("facility").set("name", "Clinic").insert_id());
        assert_eq!(id, Ok(12));
        assert_eq!(
            host.queries()[0].0,
            r#"INSERT INTO facility ("name") VALUES ($1) RETURNING id"#
        );
    }

    #[test]
    fn exact_filters_convert_to_the_column_type() {
        let query = vec![
            ("facility_id".to_owned(), "3".to_owned()),
            ("name".to_owned(), "Main".to_owned()),
            ("x".to_owned(), "1".to_owned()),
        ];
        let columns = [Column::int("facility_id"), Column::text("name")];
        let mut search = Search::new();
        search
            .filter_exact(&query, &columns)
            .unwrap()
            .filter_contains(&query, &["name"]);
        let (sql, values) = search.build("SELECT * FROM facility", None);
        assert_eq!(
            sql,
            r#"SELECT * FROM facility WHERE "facility_id" = $1 AND "name" = $2 AND LOWER("name") LIKE $3 ESCAPE '\'"#
        );
        assert_eq!(values[0], Value::Integer(3));

        let bad = vec![("facility_id".to_owned(), "three".to_owned())];
        let Err(ApiError::Validation(errors)) =
            Search::new().filter_exact(&bad, &columns).map(|_| ())
        else {
            panic!("a 400 expected")
        };
        assert_eq!(
            errors.to_value()["facility_id"]["Numeric::NOT_NUMERIC"],
            "facility_id must be numeric"
        );
    }

    #[test]
    fn defaults_fill_only_missing_or_null_fields() {
        let body = json!({"date": null, "reason": "x"});
        let mut fields = Fields::from_json(
            body.as_object().unwrap(),
            &[Column::datetime("date"), Column::text("reason")],
        )
        .unwrap();
        fields.set_default("date", "2024-01-01 00:00:00");
        fields.set_default("reason", "y");
        assert_eq!(
            fields.get("date"),
            Some(&Value::Text("2024-01-01 00:00:00".into()))
        );
        assert_eq!(fields.get("reason"), Some(&Value::Text("x".into())));
    }
}
