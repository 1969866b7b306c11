//! Data access through the host.
//!
//! SQL is the portable subset shared by SQLite and PostgreSQL, with parameters written
//! `$1`, `$2`, ... (see `docs/plugins.md`). The host runs it on the request's site inside
//! the request's transaction, only on the tables the plugin declared.
//!
//! ```no_run
//! # use hearth_sdk::prelude::*;
//! # fn f() -> Result<()> {
//! let rows = store::query("SELECT pid, fname FROM patient_data WHERE lname = $1", params!["Smith"])?;
//! for row in rows.iter() {
//!     let pid: i64 = row.int("pid").unwrap_or_default();
//!     let fname: &str = row.text("fname").unwrap_or_default();
//! }
//! # Ok(()) }
//! ```

use std::fmt;

use crate::host;

/// A value bound to a parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A 64-bit integer (also booleans, as 0 and 1).
    Integer(i64),
    /// A double.
    Real(f64),
    /// Text (also dates, datetimes and uuids).
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Integer(v)
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Integer(v.into())
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Integer(v.into())
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Integer(v.into())
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}
impl From<ValueRef<'_>> for Value {
    fn from(v: ValueRef<'_>) -> Self {
        match v {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(r) => Value::Real(r),
            ValueRef::Text(s) => Value::Text(s.to_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        }
    }
}
impl From<&serde_json::Value> for Value {
    /// JSON scalars map to their SQL counterparts; arrays and objects are stored as JSON text.
    fn from(v: &serde_json::Value) -> Self {
        match v {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Integer((*b).into()),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Integer(i),
                None => Value::Real(n.as_f64().unwrap_or_default()),
            },
            serde_json::Value::String(s) => Value::Text(s.clone()),
            other => Value::Text(other.to_string()),
        }
    }
}

/// A value read from a row, borrowed from the result buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    /// SQL `NULL`.
    Null,
    /// An integer.
    Integer(i64),
    /// A double.
    Real(f64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Blob(&'a [u8]),
}

impl<'a> ValueRef<'a> {
    /// True for `NULL`.
    pub fn is_null(&self) -> bool {
        matches!(self, ValueRef::Null)
    }

    /// The value as text: text as is, numbers formatted, `None` for `NULL` and blobs.
    pub fn to_text(&self) -> Option<String> {
        match self {
            ValueRef::Text(s) => Some((*s).to_owned()),
            ValueRef::Integer(i) => Some(i.to_string()),
            ValueRef::Real(r) => Some(r.to_string()),
            ValueRef::Null | ValueRef::Blob(_) => None,
        }
    }
}

/// Why the host refused or failed a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// A table, function or statement kind the plugin was not granted.
    Denied(String),
    /// A unique, foreign key, not-null or check constraint failed.
    Constraint(String),
    /// The SQL does not parse, or a parameter does not fit its column.
    Invalid(String),
    /// The database failed, or the request ran out of time.
    Failed(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Denied(m) => write!(f, "denied: {m}"),
            StoreError::Constraint(m) => write!(f, "constraint failed: {m}"),
            StoreError::Invalid(m) => write!(f, "invalid statement: {m}"),
            StoreError::Failed(m) => write!(f, "database failure: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

/// Which forms of its rows a query answers (contract 0.3.0's `row-form`). The host encodes
/// only what is asked for, and only that crosses into the plugin.
///
/// - [`Form::Values`] (what [`query`] asks for): the typed values that [`Row::get`],
///   [`Row::text`], [`Row::int`] read. [`Row::json_members`] still works on such rows: the
///   SDK renders the members from the values the first time they are asked for.
/// - [`Form::Json`]: the rows' JSON members only, rendered by the host, for a plugin that
///   passes rows through as they are ([`crate::json::ObjectWriter::row`],
///   [`crate::Json::from_row`]) and reads no column itself. Reading a typed value from
///   such rows panics: ask for [`Form::Both`].
/// - [`Form::Both`]: both, for a plugin that reads some columns and copies the rest whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Form {
    /// The typed values.
    #[default]
    Values,
    /// The JSON members.
    Json,
    /// Both.
    Both,
}

impl Form {
    /// True when the typed values come with the rows.
    pub fn values(self) -> bool {
        matches!(self, Form::Values | Form::Both)
    }

    /// True when the host renders the JSON members.
    pub fn json(self) -> bool {
        matches!(self, Form::Json | Form::Both)
    }
}

/// Rows as the host sends them: one buffer of column names and, when asked for, values
/// (see the WIT `rows`), and the JSON members when asked for.
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct RawRows {
    pub columns: u32,
    pub count: u32,
    pub data: Vec<u8>,
    /// The form the rows were asked for.
    pub form: Form,
    /// Every row's JSON object members, back to back (see the WIT `rows`); empty unless
    /// `form` asked for them.
    pub json: String,
    /// Where each row's members end in `json`.
    pub json_ends: Vec<u32>,
}

/// The rows' JSON members: every row's `"name":value,...`, back to back.
#[derive(Debug, Clone, Default)]
struct Members {
    text: String,
    /// Where each row's members end in `text`.
    ends: Vec<u32>,
}

/// The rows a statement returned.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    columns: Vec<String>,
    data: Vec<u8>,
    /// Offset of every value in `data`, row-major (empty without values).
    offsets: Vec<u32>,
    count: usize,
    /// The form the rows came in.
    form: Form,
    /// The JSON members: the host's when it sent them, otherwise rendered from the values
    /// on first use.
    json: std::cell::OnceCell<Members>,
    /// Where the last column lookup by name ended: handlers read columns in about the
    /// order they were selected, so the next lookup starts there.
    hint: std::cell::Cell<usize>,
    /// This result's number, which no other result read by this instance has.
    serial: u64,
}

/// The last [`Rows::serial`] given.
static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Rows {
    pub(crate) fn decode(raw: RawRows) -> Result<Rows, StoreError> {
        let width = raw.columns as usize;
        let count = raw.count as usize;
        let data = raw.data;
        let bad = || StoreError::Failed("malformed row buffer from the host".into());
        let mut at = 0usize;
        let read_len = |at: &mut usize| -> Result<usize, StoreError> {
            let len = data.get(*at..*at + 4).ok_or_else(bad)?;
            *at += 4;
            Ok(u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize)
        };
        let mut columns = Vec::with_capacity(width);
        for _ in 0..width {
            let len = read_len(&mut at)?;
            let name = data.get(at..at + len).ok_or_else(bad)?;
            // SAFETY: the contract guarantees names are valid UTF-8 (the host checks).
            columns.push(unsafe { std::str::from_utf8_unchecked(name) }.to_owned());
            at += len;
        }
        let values = if raw.form.values() { width * count } else { 0 };
        let mut offsets = Vec::with_capacity(values);
        for _ in 0..values {
            offsets.push(u32::try_from(at).map_err(|_| bad())?);
            let tag = *data.get(at).ok_or_else(bad)?;
            at += 1;
            match tag {
                0 => {}
                1 | 2 => at += 8,
                3 | 4 => {
                    let len = read_len(&mut at)?;
                    data.get(at..at + len).ok_or_else(bad)?;
                    at += len;
                }
                _ => return Err(bad()),
            }
            if at > data.len() {
                return Err(bad());
            }
        }
        let json = std::cell::OnceCell::new();
        if raw.form.json() {
            // Every row's end follows the one before, within the text and on a character
            // boundary, so slicing a row's members never fails.
            let mut previous = 0;
            let fits = raw.json_ends.len() == count
                && raw.json_ends.iter().all(|&end| {
                    let ok = end >= previous && raw.json.is_char_boundary(end as usize);
                    previous = end;
                    ok
                });
            if !fits {
                return Err(bad());
            }
            let _ = json.set(Members {
                text: raw.json,
                ends: raw.json_ends,
            });
        }
        Ok(Rows {
            columns,
            data,
            offsets,
            count,
            form: raw.form,
            json,
            hint: std::cell::Cell::new(0),
            serial: SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1,
        })
    }

    /// A number that tells this result from every other one this instance read (a copy
    /// of it has the same): what a cache of something read for these rows is keyed by.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// The form these rows came in.
    pub fn form(&self) -> Form {
        self.form
    }

    /// The JSON members, rendered from the values when the host did not send them.
    fn members(&self) -> &Members {
        self.json.get_or_init(|| self.render_json())
    }

    /// Renders every row's members from the values, for rows that came without them (the
    /// host's `values` form, tests, the mock host). The `"name":` keys are written once.
    fn render_json(&self) -> Members {
        let mut keys = String::new();
        let mut key_ends = Vec::with_capacity(self.columns.len());
        for column in &self.columns {
            crate::json::write_str(&mut keys, column);
            keys.push(':');
            key_ends.push(keys.len());
        }
        let mut text =
            String::with_capacity(self.data.len() + (keys.len() + self.columns.len()) * self.count);
        let mut ends = Vec::with_capacity(self.count);
        for index in 0..self.count {
            let mut start = 0;
            for (i, &end) in key_ends.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                text.push_str(&keys[start..end]);
                start = end;
                crate::json::ToJson::write_json(&self.value(index, i), &mut text);
            }
            ends.push(text.len() as u32);
        }
        Members { text, ends }
    }

    /// Builds rows from column names and values, for tests and the mock host.
    pub fn from_values(columns: &[&str], rows: Vec<Vec<Value>>) -> Rows {
        let mut data = Vec::new();
        encode_columns(&mut data, columns.iter().copied());
        let count = rows.len() as u32;
        for row in rows {
            assert_eq!(
                row.len(),
                columns.len(),
                "every row needs one value per column"
            );
            for value in row {
                encode_value(&mut data, &value);
            }
        }
        Rows::decode(RawRows {
            columns: columns.len() as u32,
            count,
            data,
            form: Form::Values,
            json: String::new(),
            json_ends: Vec::new(),
        })
        .expect("rows encoded by the SDK decode")
    }

    /// The column names, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The row at `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<Row<'_>> {
        (index < self.count).then_some(Row { rows: self, index })
    }

    /// Every row, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Row<'_>> {
        (0..self.count).map(move |index| Row { rows: self, index })
    }

    /// The position of `column`, searching from where the last lookup ended.
    fn position(&self, column: &str) -> Option<usize> {
        let width = self.columns.len();
        let start = self.hint.get().min(width);
        let found = (start..width)
            .chain(0..start)
            .find(|&i| self.columns[i] == column)?;
        self.hint.set(found + 1);
        Some(found)
    }

    fn value(&self, row: usize, column: usize) -> ValueRef<'_> {
        assert!(
            self.form.values(),
            "these rows were read with Form::Json and carry no typed values; \
             read them with Form::Both (store::query_with) to read columns"
        );
        let at = self.offsets[row * self.columns.len() + column] as usize;
        let data = &self.data;
        let word = |from: usize| {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&data[from..from + 8]);
            bytes
        };
        match data[at] {
            1 => ValueRef::Integer(i64::from_le_bytes(word(at + 1))),
            2 => ValueRef::Real(f64::from_le_bytes(word(at + 1))),
            tag @ (3 | 4) => {
                let len =
                    u32::from_le_bytes([data[at + 1], data[at + 2], data[at + 3], data[at + 4]]);
                let bytes = &data[at + 5..at + 5 + len as usize];
                if tag == 3 {
                    // SAFETY: the contract guarantees text values are valid UTF-8 (the
                    // host checks them), and `decode` checked the bounds.
                    ValueRef::Text(unsafe { std::str::from_utf8_unchecked(bytes) })
                } else {
                    ValueRef::Blob(bytes)
                }
            }
            _ => ValueRef::Null,
        }
    }
}

/// Appends the column names of the row encoding.
#[doc(hidden)]
pub fn encode_columns<'a>(data: &mut Vec<u8>, columns: impl Iterator<Item = &'a str>) {
    for column in columns {
        data.extend_from_slice(&(column.len() as u32).to_le_bytes());
        data.extend_from_slice(column.as_bytes());
    }
}

/// Appends one value in the row encoding.
#[doc(hidden)]
pub fn encode_value(data: &mut Vec<u8>, value: &Value) {
    match value {
        Value::Null => data.push(0),
        Value::Integer(i) => {
            data.push(1);
            data.extend_from_slice(&i.to_le_bytes());
        }
        Value::Real(r) => {
            data.push(2);
            data.extend_from_slice(&r.to_le_bytes());
        }
        Value::Text(s) => {
            data.push(3);
            data.extend_from_slice(&(s.len() as u32).to_le_bytes());
            data.extend_from_slice(s.as_bytes());
        }
        Value::Blob(b) => {
            data.push(4);
            data.extend_from_slice(&(b.len() as u32).to_le_bytes());
            data.extend_from_slice(b);
        }
    }
}

/// One row of a result.
#[derive(Clone, Copy)]
pub struct Row<'a> {
    rows: &'a Rows,
    index: usize,
}

impl<'a> Row<'a> {
    /// The rows this row is one of.
    pub fn rows(&self) -> &'a Rows {
        self.rows
    }

    /// This row's position in [`Row::rows`].
    pub fn index(&self) -> usize {
        self.index
    }

    /// The value of `column`; `NULL` when the row has no such column.
    pub fn get(&self, column: &str) -> ValueRef<'a> {
        match self.rows.position(column) {
            Some(i) => self.rows.value(self.index, i),
            None => ValueRef::Null,
        }
    }

    /// The value at column position `i`.
    pub fn at(&self, i: usize) -> ValueRef<'a> {
        self.rows.value(self.index, i)
    }

    /// Every column as JSON object members (`"name":value,...`, no braces): what
    /// [`crate::json::ObjectWriter::row`] writes. The host rendered them when the query
    /// asked for [`Form::Json`] or [`Form::Both`]; otherwise the SDK renders every row's
    /// members from the values on the first call, alike.
    pub fn json_members(&self) -> &'a str {
        let members = self.rows.members();
        let start = match self.index {
            0 => 0,
            i => members.ends[i - 1] as usize,
        };
        // `decode` checked that the ends are ordered character boundaries of the text.
        &members.text[start..members.ends[self.index] as usize]
    }

    /// `column` as text, if it is text.
    pub fn text(&self, column: &str) -> Option<&'a str> {
        match self.get(column) {
            ValueRef::Text(s) => Some(s),
            _ => None,
        }
    }

    /// `column` as an integer: integers as is, integral text parsed.
    pub fn int(&self, column: &str) -> Option<i64> {
        match self.get(column) {
            ValueRef::Integer(i) => Some(i),
            ValueRef::Real(r) if r.fract() == 0.0 => Some(r as i64),
            ValueRef::Text(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// `column` as a double: numbers as is, numeric text parsed.
    pub fn real(&self, column: &str) -> Option<f64> {
        match self.get(column) {
            ValueRef::Integer(i) => Some(i as f64),
            ValueRef::Real(r) => Some(r),
            ValueRef::Text(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// About how many bytes this row takes as a JSON object.
    pub fn json_size_hint(&self) -> usize {
        // The members, the braces, and room for a few fields a plugin adds.
        self.json_members().len() + 64
    }

    /// The form the row's query asked for.
    pub fn form(&self) -> Form {
        self.rows.form
    }

    /// Every column with its value, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, ValueRef<'a>)> + 'a {
        let rows = self.rows;
        let index = self.index;
        rows.columns
            .iter()
            .enumerate()
            .map(move |(i, c)| (c.as_str(), rows.value(index, i)))
    }
}

impl fmt::Debug for Row<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Runs a statement that returns rows, and answers their typed values ([`Form::Values`]).
pub fn query(sql: &str, params: &[Value]) -> Result<Rows, StoreError> {
    query_with(sql, params, Form::Values)
}

/// Runs a statement that returns rows, and answers them in `form`: [`Form::Json`] for rows
/// passed through whole, [`Form::Both`] for rows read and passed through.
pub fn query_with(sql: &str, params: &[Value], form: Form) -> Result<Rows, StoreError> {
    Rows::decode(host::query(sql, params, form)?)
}

/// Runs a statement and returns its first row, if any, as owned [`Rows`] of length 0 or 1.
pub fn query_one(sql: &str, params: &[Value]) -> Result<Option<OneRow>, StoreError> {
    query_one_with(sql, params, Form::Values)
}

/// [`query_one`] in `form` (see [`query_with`]).
pub fn query_one_with(
    sql: &str,
    params: &[Value],
    form: Form,
) -> Result<Option<OneRow>, StoreError> {
    let rows = query_with(sql, params, form)?;
    Ok((!rows.is_empty()).then_some(OneRow(rows)))
}

/// Runs a statement that returns no rows and answers how many rows it changed.
pub fn execute(sql: &str, params: &[Value]) -> Result<u64, StoreError> {
    host::execute(sql, params)
}

/// The single row [`query_one`] found; derefs to its [`Row`] through [`OneRow::row`].
#[derive(Debug, Clone)]
pub struct OneRow(Rows);

impl OneRow {
    /// The row.
    pub fn row(&self) -> Row<'_> {
        Row {
            rows: &self.0,
            index: 0,
        }
    }

    /// `column` as text.
    pub fn text(&self, column: &str) -> Option<&str> {
        self.row().text(column)
    }

    /// `column` as an integer.
    pub fn int(&self, column: &str) -> Option<i64> {
        self.row().int(column)
    }

    /// The value of `column`.
    pub fn get(&self, column: &str) -> ValueRef<'_> {
        self.row().get(column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_the_encoding() {
        let rows = Rows::from_values(
            &["id", "name", "score", "note", "raw"],
            vec![
                vec![
                    1.into(),
                    "Ann".into(),
                    Value::Real(2.5),
                    Value::Null,
                    Value::Blob(vec![1, 2]),
                ],
                vec![
                    2.into(),
                    "Bo".into(),
                    Value::Real(-1.0),
                    "x".into(),
                    Value::Null,
                ],
            ],
        );
        assert_eq!(rows.len(), 2);
        let second = rows.get(1).unwrap();
        assert_eq!(second.int("id"), Some(2));
        assert_eq!(second.text("name"), Some("Bo"));
        assert_eq!(second.real("score"), Some(-1.0));
        assert_eq!(second.text("note"), Some("x"));
        assert!(second.get("raw").is_null());
        assert!(second.get("missing").is_null());
        assert_eq!(rows.get(0).unwrap().get("raw"), ValueRef::Blob(&[1, 2]));
    }

    #[test]
    fn malformed_buffers_are_refused() {
        let raw = RawRows {
            columns: 1,
            count: 1,
            data: vec![1, 0, 0, 0, b'a', 3, 10, 0, 0, 0, b'x'],
            ..RawRows::default()
        };
        assert!(Rows::decode(raw).is_err());
        // Rendered rows that overrun their buffer, end out of order, or inside a
        // character, are refused as well.
        for ends in [vec![20], vec![1, 0], vec![6], vec![]] {
            let raw = RawRows {
                columns: 1,
                count: if ends.len() == 2 { 2 } else { 1 },
                data: vec![1, 0, 0, 0, b'a'],
                form: Form::Json,
                json: r#""a":"ü""#.to_owned(),
                json_ends: ends.clone(),
            };
            assert!(Rows::decode(raw).is_err(), "{ends:?}");
        }
    }

    #[test]
    fn rows_in_each_form_slice_their_members_per_row() {
        // As the host sends them: the members back to back, each row's end listed.
        let long = "x".repeat(0x80);
        let members = [format!(r#""a":"{long}""#), r#""a":"ÿ""#.to_owned()];
        let mut data = Vec::new();
        encode_columns(&mut data, ["a"].into_iter());
        let names = data.clone();
        encode_value(&mut data, &Value::Text(long.clone()));
        encode_value(&mut data, &Value::Text("ÿ".into()));
        let json = members.concat();
        let ends = vec![members[0].len() as u32, json.len() as u32];
        let both = Rows::decode(RawRows {
            columns: 1,
            count: 2,
            data: data.clone(),
            form: Form::Both,
            json: json.clone(),
            json_ends: ends.clone(),
        })
        .unwrap();
        assert_eq!(both.get(0).unwrap().json_members(), members[0]);
        assert_eq!(both.get(1).unwrap().json_members(), members[1]);
        assert_eq!(both.get(1).unwrap().text("a"), Some("ÿ"));
        // JSON only: the buffer holds the names, the members are the host's.
        let json_only = Rows::decode(RawRows {
            columns: 1,
            count: 2,
            data: names,
            form: Form::Json,
            json,
            json_ends: ends,
        })
        .unwrap();
        assert_eq!(json_only.columns(), ["a"]);
        assert_eq!(json_only.get(1).unwrap().json_members(), members[1]);
        // Values only: the SDK renders the same members itself.
        let values = Rows::decode(RawRows {
            columns: 1,
            count: 2,
            data,
            ..RawRows::default()
        })
        .unwrap();
        assert_eq!(values.get(0).unwrap().json_members(), members[0]);
        assert_eq!(values.get(1).unwrap().json_members(), members[1]);
    }

    #[test]
    #[should_panic(expected = "Form::Json")]
    fn typed_reads_of_rows_read_as_json_only_panic() {
        let mut data = Vec::new();
        encode_columns(&mut data, ["a"].into_iter());
        let rows = Rows::decode(RawRows {
            columns: 1,
            count: 1,
            data,
            form: Form::Json,
            json: r#""a":1"#.to_owned(),
            json_ends: vec![5],
        })
        .unwrap();
        let _ = rows.get(0).unwrap().int("a");
    }

    #[test]
    fn lookups_by_name_find_columns_in_any_order() {
        let rows = Rows::from_values(
            &["a", "b", "c"],
            vec![vec![
                Value::Integer(1),
                Value::Integer(2),
                Value::Integer(3),
            ]],
        );
        let row = rows.get(0).unwrap();
        for (name, want) in [("c", 3), ("a", 1), ("b", 2), ("c", 3), ("b", 2), ("a", 1)] {
            assert_eq!(row.int(name), Some(want), "{name}");
        }
        assert!(row.get("d").is_null());
        assert_eq!(row.int("a"), Some(1));
    }

    #[test]
    fn rows_render_as_json_members() {
        let rows = Rows::from_values(
            &["id", "name", "score", "raw"],
            vec![vec![
                Value::Integer(7),
                Value::Text("a\"b".into()),
                Value::Real(1.5),
                Value::Blob(vec![1]),
            ]],
        );
        let row = rows.get(0).unwrap();
        assert_eq!(
            row.json_members(),
            r#""id":7,"name":"a\"b","score":1.5,"raw":null"#
        );
        let json = crate::json::Json::object()
            .field("first", 1)
            .row(&row)
            .field("last", true)
            .end();
        assert_eq!(
            json.as_str(),
            r#"{"first":1,"id":7,"name":"a\"b","score":1.5,"raw":null,"last":true}"#
        );
    }
}
