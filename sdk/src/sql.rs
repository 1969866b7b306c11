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
}

/// Column values taken from a request body, in column-list order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fields(Vec<(&'static str, Value)>);

impl Fields {
    /// Converts the keys of `body` that are in `columns`; other keys are ignored, as
    /// OpenEMR ignores them. A value of the wrong type is a 400 naming the field.
    pub fn from_json(body: &Map<String, Json>, columns: &[Column]) -> Result<Fields, ApiError> {
        let mut fields = Vec::new();
        let mut errors = Validator::new(body);
        for column in columns {
            let Some(json) = body.get(column.name) else {
                continue;
            };
            match convert(json, column.kind) {
                Ok(value) => fields.push((column.name, value)),
                Err((rule, message)) => {
                    errors.error(column.name, rule, format!("{} {message}", column.name))
                }
            }
        }
        errors.finish()?;
        Ok(Fields(fields))
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
        None => format!("\"{}\"", name.replace('"', "\"\"")),
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
            columns: Vec::new(),
            values: Vec::new(),
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
}

/// An `UPDATE` statement.
pub struct Update {
    table: &'static str,
    sets: Vec<(String, Value)>,
    wheres: Vec<(String, Value)>,
}

impl Update {
    /// Updates `table`.
    pub fn table(table: &'static str) -> Update {
        Update {
            table,
            sets: Vec::new(),
            wheres: Vec::new(),
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
        self.wheres.push((ident(column), value.into()));
        self
    }

    /// The SQL text and its parameters.
    pub fn build(&self) -> (String, Vec<Value>) {
        let mut values = Vec::new();
        let mut n = 0;
        let mut next = |value: &Value| {
            values.push(value.clone());
            n += 1;
            format!("${n}")
        };
        let sets: Vec<String> = self
            .sets
            .iter()
            .map(|(c, v)| format!("{c} = {}", next(v)))
            .collect();
        let wheres: Vec<String> = self
            .wheres
            .iter()
            .map(|(c, v)| format!("{c} = {}", next(v)))
            .collect();
        let mut sql = format!("UPDATE {} SET {}", self.table, sets.join(", "));
        if !wheres.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&wheres.join(" AND "));
        }
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
        let mut out = String::new();
        let mut parts = sql.split("$?");
        out.push_str(parts.next().unwrap_or_default());
        let mut values = values.into_iter();
        for part in parts {
            let p = self.param(values.next().unwrap_or(Value::Null));
            out.push_str(&p);
            out.push_str(part);
        }
        self.conditions.push(out);
        self
    }

    /// Orders by OpenEMR's `_sort` (comma list, `-` for descending), keeping only
    /// `allowed` columns; `fallback` when nothing usable is given.
    pub fn sort(&mut self, sort: Option<&str>, allowed: &[&str], fallback: &str) -> &mut Self {
        for key in sort.unwrap_or_default().split(',').map(str::trim) {
            let (column, direction) = match key.strip_prefix('-') {
                Some(column) => (column, "DESC"),
                None => (key, "ASC"),
            };
            if allowed.contains(&column) {
                let column = self.column(column);
                self.order.push(format!("{column} {direction}"));
            }
        }
        if self.order.is_empty() && !fallback.is_empty() {
            self.order.push(fallback.to_owned());
        }
        self
    }

    /// Runs `SELECT {select} FROM {from} WHERE … ORDER BY … LIMIT … OFFSET …`.
    pub fn query(&self, select: &str, limit: u32, offset: u32) -> Result<Rows, StoreError> {
        let (sql, values) = self.build(select, Some((limit, offset)));
        store::query(&sql, &values)
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
            .sort(Some("-DOB,bogus"), &["DOB"], "");
        let (sql, values) = search.build("SELECT * FROM p", Some((10, 20)));
        assert_eq!(
            sql,
            r#"SELECT * FROM p WHERE LOWER("lname") LIKE $1 ESCAPE '\' AND "sex" = $2 ORDER BY "DOB" DESC LIMIT $3 OFFSET $4"#
        );
        assert_eq!(values[0], Value::Text("%o'b\\_\\%%".into()));
    }
}
