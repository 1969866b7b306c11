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

/// Rows as the host sends them: one buffer of column names and values (see the WIT
/// `rows`).
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct RawRows {
    pub columns: u32,
    pub count: u32,
    pub data: Vec<u8>,
    /// Each row as JSON object members (see the WIT `rows`); empty when the sender did
    /// not render them, and then `decode` renders them itself.
    pub json: Vec<u8>,
}

/// The rows a statement returned.
#[derive(Debug, Clone, Default)]
pub struct Rows {
    columns: Vec<String>,
    data: Vec<u8>,
    /// Offset of every value in `data`, row-major.
    offsets: Vec<u32>,
    count: usize,
    /// Every row as JSON object members, `"name":value,...`, each after its u32 length
    /// (so not UTF-8 as a whole: slice it by `json_rows` only).
    json: Vec<u8>,
    /// Start and end of each row's members in `json`.
    json_rows: Vec<(u32, u32)>,
    /// Where the last column lookup by name ended: handlers read columns in about the
    /// order they were selected, so the next lookup starts there.
    hint: std::cell::Cell<usize>,
}

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
        let mut offsets = Vec::with_capacity(width * count);
        for _ in 0..width * count {
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
        let mut rows = Rows {
            columns,
            data,
            offsets,
            count,
            json: Vec::new(),
            json_rows: Vec::with_capacity(count),
            hint: std::cell::Cell::new(0),
        };
        if raw.json.is_empty() && count > 0 {
            rows.render_json();
        } else {
            let mut at = 0usize;
            for _ in 0..count {
                let len = raw.json.get(at..at + 4).ok_or_else(bad)?;
                let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
                let start = at + 4;
                raw.json.get(start..start + len).ok_or_else(bad)?;
                rows.json_rows.push((start as u32, (start + len) as u32));
                at = start + len;
            }
            rows.json = raw.json;
        }
        Ok(rows)
    }

    /// Renders every row's members, for rows that came without them (tests, mock host).
    fn render_json(&mut self) {
        let mut json = String::new();
        let mut spans = Vec::with_capacity(self.count);
        for index in 0..self.count {
            let start = json.len();
            for (i, column) in self.columns.iter().enumerate() {
                if i > 0 {
                    json.push(',');
                }
                crate::json::write_str(&mut json, column);
                json.push(':');
                crate::json::ToJson::write_json(&self.value(index, i), &mut json);
            }
            spans.push((start as u32, json.len() as u32));
        }
        self.json = json.into_bytes();
        self.json_rows = spans;
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
            json: Vec::new(),
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

    /// Every column as JSON object members (`"name":value,...`, no braces), as the host
    /// rendered them: what [`crate::json::ObjectWriter::row`] writes.
    pub fn json_members(&self) -> &'a str {
        let (start, end) = self.rows.json_rows[self.index];
        let members = &self.rows.json[start as usize..end as usize];
        // SAFETY: the contract guarantees each rendered row is valid UTF-8 (the host writes
        // it from checked strings; `render_json` from `str`s), and `decode` checked the
        // bounds.
        unsafe { std::str::from_utf8_unchecked(members) }
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

/// Runs a statement that returns rows.
pub fn query(sql: &str, params: &[Value]) -> Result<Rows, StoreError> {
    Rows::decode(host::query(sql, params)?)
}

/// Runs a statement and returns its first row, if any, as owned [`Rows`] of length 0 or 1.
pub fn query_one(sql: &str, params: &[Value]) -> Result<Option<OneRow>, StoreError> {
    let rows = query(sql, params)?;
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
            json: Vec::new(),
        };
        assert!(Rows::decode(raw).is_err());
        // Rendered rows that overrun their buffer are refused as well.
        let raw = RawRows {
            columns: 1,
            count: 1,
            data: vec![1, 0, 0, 0, b'a', 0],
            json: vec![20, 0, 0, 0, b'"', b'a', b'"'],
        };
        assert!(Rows::decode(raw).is_err());
    }

    #[test]
    fn rendered_rows_with_binary_length_prefixes_slice_per_row() {
        // As the host sends them: each row's members after a u32 length. A length byte
        // such as 0x86 is not a UTF-8 boundary, which must not matter.
        let long = "x".repeat(0x80);
        let members = [format!(r#""a":"{long}""#), r#""a":"y""#.to_owned()];
        let mut json = Vec::new();
        for m in &members {
            json.extend_from_slice(&(m.len() as u32).to_le_bytes());
            json.extend_from_slice(m.as_bytes());
        }
        let mut data = Vec::new();
        encode_columns(&mut data, ["a"].into_iter());
        encode_value(&mut data, &Value::Text(long.clone()));
        encode_value(&mut data, &Value::Text("y".into()));
        let rows = Rows::decode(RawRows {
            columns: 1,
            count: 2,
            data,
            json,
        })
        .unwrap();
        assert_eq!(rows.get(0).unwrap().json_members(), members[0]);
        assert_eq!(rows.get(1).unwrap().json_members(), members[1]);
        // The same rows rendered by the SDK itself agree.
        let local = Rows::from_values(
            &["a"],
            vec![vec![Value::Text(long)], vec![Value::Text("y".into())]],
        );
        assert_eq!(local.get(0).unwrap().json_members(), members[0]);
        assert_eq!(local.get(1).unwrap().json_members(), members[1]);
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
