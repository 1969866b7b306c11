//! The values that cross the plugin boundary and the row format results are encoded in,
//! shared by both database engines ([`super::sqlite`] and [`super::store`]'s PostgreSQL
//! path), and the errors a statement ends with.

use std::io::Write as _;
use std::sync::Arc;

/// A value crossing the boundary.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    /// NULL.
    Null,
    /// An integer.
    Integer(i64),
    /// A double.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
}

/// Rows in the contract's encoding (see `wit/v0.1.0/host.wit`, record `rows`): the
/// buffer holds the column names, then the values, ready to hand to the plugin; `json`
/// holds each row rendered as JSON object members.
#[derive(Debug, Clone, Default)]
pub struct EncodedRows {
    /// Number of columns.
    pub columns: u32,
    /// Number of rows.
    pub count: u32,
    /// Column names, then values, row after row.
    pub data: Vec<u8>,
    /// Each row as a u32 length and `"name":value,...`.
    pub json: Vec<u8>,
}

/// What every result of one statement starts with: the encoded column names, and each
/// column's `"name":` JSON key. Built once per statement text and shared.
#[derive(Debug)]
pub(crate) struct RowHeader {
    columns: u32,
    /// The column names in the row encoding.
    names: Vec<u8>,
    /// Every `"name":` key, back to back.
    keys: Vec<u8>,
    /// Where each key ends in `keys`.
    key_ends: Vec<u32>,
}

impl RowHeader {
    /// The header for these column names.
    pub(crate) fn new<'a>(names: impl Iterator<Item = &'a str>) -> RowHeader {
        let mut header = RowHeader {
            columns: 0,
            names: Vec::new(),
            keys: Vec::new(),
            key_ends: Vec::new(),
        };
        for name in names {
            put_name(&mut header.names, name);
            hearth_sdk::json::write_str_bytes(&mut header.keys, name);
            header.keys.push(b':');
            header.key_ends.push(header.keys.len() as u32);
            header.columns += 1;
        }
        header
    }
}

/// Writes rows in both encodings as they are read.
pub(crate) struct RowWriter {
    rows: EncodedRows,
    header: Arc<RowHeader>,
    row_start: usize,
    column: usize,
}

impl RowWriter {
    /// A writer for rows with these column names.
    pub(crate) fn new<'a>(names: impl Iterator<Item = &'a str>) -> RowWriter {
        RowWriter::with_header(Arc::new(RowHeader::new(names)))
    }

    /// A writer for rows that start with `header`.
    pub(crate) fn with_header(header: Arc<RowHeader>) -> RowWriter {
        let mut data = Vec::with_capacity(header.names.len() + 1024);
        data.extend_from_slice(&header.names);
        RowWriter {
            rows: EncodedRows {
                columns: header.columns,
                count: 0,
                data,
                json: Vec::with_capacity(1024),
            },
            header,
            row_start: 0,
            column: 0,
        }
    }

    /// Starts a row.
    pub(crate) fn begin_row(&mut self) {
        self.row_start = self.rows.json.len();
        self.rows.json.extend_from_slice(&[0; 4]);
        self.column = 0;
    }

    fn key(&mut self) {
        let start = if self.column > 0 {
            self.rows.json.push(b',');
            self.header.key_ends[self.column - 1] as usize
        } else {
            0
        };
        let end = self.header.key_ends[self.column] as usize;
        self.rows
            .json
            .extend_from_slice(&self.header.keys[start..end]);
        self.column += 1;
    }

    /// Appends NULL.
    pub(crate) fn null(&mut self) {
        self.rows.data.push(0);
        self.key();
        self.rows.json.extend_from_slice(b"null");
    }

    /// Appends an integer.
    pub(crate) fn integer(&mut self, value: i64) {
        put(&mut self.rows.data, &SqlValue::Integer(value));
        self.key();
        let _ = write!(self.rows.json, "{value}");
    }

    /// Appends a real.
    pub(crate) fn real(&mut self, value: f64) {
        put(&mut self.rows.data, &SqlValue::Real(value));
        self.key();
        if value.is_finite() {
            let _ = write!(self.rows.json, "{value}");
        } else {
            self.rows.json.extend_from_slice(b"null");
        }
    }

    /// Appends text.
    pub(crate) fn text(&mut self, value: &str) {
        put_bytes(&mut self.rows.data, 3, value.as_bytes());
        self.key();
        hearth_sdk::json::write_str_bytes(&mut self.rows.json, value);
    }

    /// Appends a blob (null in JSON).
    pub(crate) fn blob(&mut self, value: &[u8]) {
        put_bytes(&mut self.rows.data, 4, value);
        self.key();
        self.rows.json.extend_from_slice(b"null");
    }

    /// Ends a row; refuses results past the size limit.
    pub(crate) fn end_row(&mut self) -> Result<(), StoreError> {
        let len = (self.rows.json.len() - self.row_start - 4) as u32;
        self.rows.json[self.row_start..self.row_start + 4].copy_from_slice(&len.to_le_bytes());
        self.rows.count += 1;
        if self.rows.data.len() + self.rows.json.len() > MAX_RESULT_BYTES {
            return Err(StoreError::Failed(format!(
                "the result is larger than {} MiB; page it",
                MAX_RESULT_BYTES >> 20
            )));
        }
        Ok(())
    }

    /// The rows.
    pub(crate) fn finish(self) -> EncodedRows {
        self.rows
    }
}

/// Why a statement failed, as the plugin sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    /// Not granted.
    Denied(String),
    /// Stopped by a limit that guards the server (SQLite's heap): the request is answered
    /// 503 naming the limit.
    Limit(String),
    /// A constraint failed.
    Constraint(String),
    /// Bad SQL or a parameter that does not fit.
    Invalid(String),
    /// The statement was stopped because the request's deadline passed (SQLite's
    /// progress handler, PostgreSQL's `statement_timeout`).
    Deadline(String),
    /// The database could not be reached: the connection was refused or lost, or none
    /// came free in time. The request is answered 503 with `Retry-After`.
    Unavailable(String),
    /// Anything else.
    Failed(String),
}

impl StoreError {
    /// True when the database could not be reached.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }

    /// A statement stopped by the request's deadline, on either database.
    pub fn deadline() -> StoreError {
        StoreError::Deadline("the statement ran past the request's deadline".into())
    }
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Denied(m) => write!(f, "denied: {m}"),
            StoreError::Limit(m) => write!(f, "limit: {m}"),
            StoreError::Constraint(m) => write!(f, "constraint failed: {m}"),
            StoreError::Invalid(m) => write!(f, "invalid statement: {m}"),
            StoreError::Unavailable(m) => write!(f, "the database is unavailable: {m}"),
            StoreError::Deadline(m) | StoreError::Failed(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for StoreError {}

impl SqlValue {
    /// The text, if this is text.
    pub fn text(&self) -> Option<&str> {
        match self {
            SqlValue::Text(text) => Some(text),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn integer(&self) -> Option<i64> {
        match self {
            SqlValue::Integer(n) => Some(*n),
            _ => None,
        }
    }
}

impl EncodedRows {
    /// The rows as values (for the host's own use of the portable path).
    pub fn values(&self) -> Vec<Vec<SqlValue>> {
        struct Cursor<'a>(&'a [u8], usize);
        impl<'a> Cursor<'a> {
            fn take(&mut self, n: usize) -> &'a [u8] {
                let slice = &self.0[self.1..self.1 + n];
                self.1 += n;
                slice
            }
            fn len(&mut self) -> usize {
                let b = self.take(4);
                u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize
            }
            fn word(&mut self) -> [u8; 8] {
                let mut out = [0u8; 8];
                out.copy_from_slice(self.take(8));
                out
            }
        }
        let mut cursor = Cursor(&self.data, 0);
        for _ in 0..self.columns {
            let len = cursor.len();
            cursor.take(len);
        }
        (0..self.count)
            .map(|_| {
                (0..self.columns)
                    .map(|_| match cursor.take(1)[0] {
                        1 => SqlValue::Integer(i64::from_le_bytes(cursor.word())),
                        2 => SqlValue::Real(f64::from_le_bytes(cursor.word())),
                        3 => {
                            let len = cursor.len();
                            SqlValue::Text(String::from_utf8_lossy(cursor.take(len)).into_owned())
                        }
                        4 => {
                            let len = cursor.len();
                            SqlValue::Blob(cursor.take(len).to_vec())
                        }
                        _ => SqlValue::Null,
                    })
                    .collect()
            })
            .collect()
    }
}

/// Appends a column name in the row encoding.
pub(crate) fn put_name(data: &mut Vec<u8>, name: &str) {
    data.extend_from_slice(&(name.len() as u32).to_le_bytes());
    data.extend_from_slice(name.as_bytes());
}

/// The most a single result may hold, encoded.
pub const MAX_RESULT_BYTES: usize = 32 * 1024 * 1024;

/// Appends one value in the row encoding.
pub(crate) fn put(data: &mut Vec<u8>, value: &SqlValue) {
    match value {
        SqlValue::Null => data.push(0),
        SqlValue::Integer(i) => {
            data.push(1);
            data.extend_from_slice(&i.to_le_bytes());
        }
        SqlValue::Real(r) => {
            data.push(2);
            data.extend_from_slice(&r.to_le_bytes());
        }
        SqlValue::Text(s) => put_bytes(data, 3, s.as_bytes()),
        SqlValue::Blob(b) => put_bytes(data, 4, b),
    }
}

pub(crate) fn put_bytes(data: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    data.push(tag);
    data.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    data.extend_from_slice(bytes);
}
