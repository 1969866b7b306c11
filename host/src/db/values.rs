//! The values that cross the plugin boundary and the row format results are encoded in,
//! shared by both database engines ([`super::sqlite`] and [`super::store`]'s PostgreSQL
//! path), and the errors a statement ends with.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

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

/// Which forms of its rows a query answers (the contract's `row-form`, 0.3.0): the host
/// encodes only what the caller reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowForm {
    /// The typed values only.
    Values,
    /// The JSON members only (the buffer holds the column names and no values).
    Json,
    /// Both.
    Both,
}

impl RowForm {
    /// True when the typed values are encoded.
    pub fn values(self) -> bool {
        matches!(self, RowForm::Values | RowForm::Both)
    }

    /// True when the JSON members are rendered.
    pub fn json(self) -> bool {
        matches!(self, RowForm::Json | RowForm::Both)
    }
}

/// Rows in the contract's encoding (see `wit/v0.3.0/host.wit`, record `rows`): `data`
/// holds the column names, then the values when they were asked for, ready to hand to the
/// plugin; `json` holds each row rendered as JSON object members when they were asked for.
#[derive(Debug, Clone, Default)]
pub struct EncodedRows {
    /// Number of columns.
    pub columns: u32,
    /// Number of rows.
    pub count: u32,
    /// Column names, then values, row after row.
    pub data: Vec<u8>,
    /// Every row's `"name":value,...`, back to back.
    pub json: String,
    /// Where each row's members end in `json`.
    pub json_ends: Vec<u32>,
}

impl EncodedRows {
    /// The JSON members in the 0.1.0 and 0.2.0 layout: each row's members after its u32
    /// length, in one buffer.
    pub fn prefixed_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.json.len() + 4 * self.json_ends.len());
        let mut start = 0;
        for &end in &self.json_ends {
            let member = &self.json.as_bytes()[start..end as usize];
            out.extend_from_slice(&(member.len() as u32).to_le_bytes());
            out.extend_from_slice(member);
            start = end as usize;
        }
        out
    }
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
    /// How many bytes the last result of the statement took in `data` and `json` (at most
    /// [`SIZE_HINT_CAP`]), so the next one starts with room for them instead of growing
    /// its buffers step by step, each step a copy.
    last_sizes: [AtomicU32; 2],
}

/// The most a statement's size hint reserves ahead. A Bulk Data export's page statements
/// return a few MiB each; grown from 1 MiB, each such result was copied into a buffer of
/// twice the size, and the freed buffers, held by the allocator for its purge delay, were
/// much of the export's peak RSS (docs/benchmarks.md). Room reserved and not written is
/// not resident.
const SIZE_HINT_CAP: usize = 8 << 20;

/// The room a statement's result starts with: its last result's size and an eighth more,
/// so a result a little larger than the last (the next window of the same page
/// statement) still fits without growing.
fn room(last: usize) -> usize {
    last.saturating_add(last / 8)
}

/// The last result sizes of statements whose row header is not kept (PostgreSQL's: there
/// the column names come with each result), by statement text: one slot per hash of the
/// text, the newest statement in a slot replacing the older one. A size read from another
/// statement whose text hashes to the same slot and tag only sets how much room a result
/// starts with.
pub(crate) struct SizeHints {
    /// The text's hash in the high 32 bits, `data`'s size in KiB in the next 16, `json`'s
    /// in the low 16 (both at most [`SIZE_HINT_CAP`]).
    slots: [std::sync::atomic::AtomicU64; SizeHints::SLOTS],
}

impl SizeHints {
    const SLOTS: usize = 256;

    /// No hints.
    pub(crate) const fn new() -> SizeHints {
        SizeHints {
            slots: [const { std::sync::atomic::AtomicU64::new(0) }; SizeHints::SLOTS],
        }
    }

    /// The key of a statement's text: hashed once per statement, for [`SizeHints::get`]
    /// and [`SizeHints::put`] both.
    pub(crate) fn key(sql: &str) -> u64 {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        BuildHasherDefault::<DefaultHasher>::default().hash_one(sql)
    }

    /// The sizes of the last result of the statement whose key is `hash` (`data`,
    /// `json`), rounded up to KiB; zeros when none is known.
    pub(crate) fn get(&self, hash: u64) -> [u32; 2] {
        let slot = self.slots[hash as usize % SizeHints::SLOTS].load(Ordering::Relaxed);
        if slot >> 32 != hash >> 32 {
            return [0, 0];
        }
        [
            ((slot >> 16) & 0xffff) as u32 * 1024,
            (slot & 0xffff) as u32 * 1024,
        ]
    }

    /// Records the sizes of a result of the statement whose key is `hash`.
    pub(crate) fn put(&self, hash: u64, rows: &EncodedRows) {
        let kib = |n: usize| (n.min(SIZE_HINT_CAP).div_ceil(1024) as u64).min(0xffff);
        let slot = (hash >> 32 << 32) | (kib(rows.data.len()) << 16) | kib(rows.json.len());
        self.slots[hash as usize % SizeHints::SLOTS].store(slot, Ordering::Relaxed);
    }
}

impl RowHeader {
    /// The header for these column names.
    pub(crate) fn new<'a>(names: impl Iterator<Item = &'a str>) -> RowHeader {
        let mut header = RowHeader {
            columns: 0,
            names: Vec::new(),
            keys: Vec::new(),
            key_ends: Vec::new(),
            last_sizes: [AtomicU32::new(0), AtomicU32::new(0)],
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

/// Writes rows in the forms asked for as they are read. Nothing is allocated per row or
/// per column: values and members are appended to the two buffers, keys copied from the
/// statement's shared header.
pub(crate) struct RowWriter {
    data: Vec<u8>,
    /// The JSON members; only whole UTF-8 sequences are appended (keys and escaped
    /// strings written from `str`s, ASCII numbers), so it is valid UTF-8 throughout.
    json: Vec<u8>,
    json_ends: Vec<u32>,
    count: u32,
    header: Arc<RowHeader>,
    values: bool,
    render: bool,
    column: usize,
}

impl RowWriter {
    /// A writer for rows with these column names.
    pub(crate) fn new<'a>(names: impl Iterator<Item = &'a str>, form: RowForm) -> RowWriter {
        RowWriter::with_header(Arc::new(RowHeader::new(names)), form)
    }

    /// A writer for rows with these column names whose statement's last result took
    /// `sizes` bytes (`data`, `json`; see [`SizeHints`]).
    pub(crate) fn hinted<'a>(
        names: impl Iterator<Item = &'a str>,
        form: RowForm,
        sizes: [u32; 2],
    ) -> RowWriter {
        let header = RowHeader::new(names);
        for (last, size) in header.last_sizes.iter().zip(sizes) {
            last.store(size, Ordering::Relaxed);
        }
        RowWriter::with_header(Arc::new(header), form)
    }

    /// A writer for rows that start with `header`, in `form`.
    pub(crate) fn with_header(header: Arc<RowHeader>, form: RowForm) -> RowWriter {
        let values = form.values();
        let render = form.json();
        let hint = |i: usize| room(header.last_sizes[i].load(Ordering::Relaxed) as usize);
        let mut data = Vec::with_capacity(if values {
            hint(0).max(header.names.len() + 1024)
        } else {
            header.names.len()
        });
        data.extend_from_slice(&header.names);
        RowWriter {
            data,
            json: if render {
                Vec::with_capacity(hint(1).max(1024))
            } else {
                Vec::new()
            },
            json_ends: Vec::new(),
            count: 0,
            header,
            values,
            render,
            column: 0,
        }
    }

    /// Starts a row.
    pub(crate) fn begin_row(&mut self) {
        self.column = 0;
    }

    /// Writes the current column's `"name":` (after a comma but for the first).
    #[inline]
    fn key(&mut self) {
        let start = if self.column > 0 {
            self.json.push(b',');
            self.header.key_ends[self.column - 1] as usize
        } else {
            0
        };
        let end = self.header.key_ends[self.column] as usize;
        self.json.extend_from_slice(&self.header.keys[start..end]);
        self.column += 1;
    }

    /// Appends NULL.
    pub(crate) fn null(&mut self) {
        if self.values {
            self.data.push(0);
        }
        if self.render {
            self.key();
            self.json.extend_from_slice(b"null");
        }
    }

    /// Appends an integer.
    pub(crate) fn integer(&mut self, value: i64) {
        if self.values {
            self.data.push(1);
            self.data.extend_from_slice(&value.to_le_bytes());
        }
        if self.render {
            self.key();
            put_decimal(&mut self.json, value);
        }
    }

    /// Appends a real.
    pub(crate) fn real(&mut self, value: f64) {
        if self.values {
            self.data.push(2);
            self.data.extend_from_slice(&value.to_le_bytes());
        }
        if self.render {
            self.key();
            if value.is_finite() {
                let _ = write!(self.json, "{value}");
            } else {
                self.json.extend_from_slice(b"null");
            }
        }
    }

    /// Appends text.
    pub(crate) fn text(&mut self, value: &str) {
        if self.values {
            put_bytes(&mut self.data, 3, value.as_bytes());
        }
        if self.render {
            self.key();
            hearth_sdk::json::write_str_bytes(&mut self.json, value);
        }
    }

    /// Appends a blob (null in JSON).
    pub(crate) fn blob(&mut self, value: &[u8]) {
        if self.values {
            put_bytes(&mut self.data, 4, value);
        }
        if self.render {
            self.key();
            self.json.extend_from_slice(b"null");
        }
    }

    /// Ends a row; refuses results past the size limit.
    pub(crate) fn end_row(&mut self) -> Result<(), StoreError> {
        if self.render {
            self.json_ends.push(self.json.len() as u32);
        }
        self.count += 1;
        if self.data.len() + self.json.len() > MAX_RESULT_BYTES {
            return Err(StoreError::Failed(format!(
                "the result is larger than {} MiB; page it",
                MAX_RESULT_BYTES >> 20
            )));
        }
        Ok(())
    }

    /// The rows.
    pub(crate) fn finish(self) -> EncodedRows {
        if self.values {
            let size = self.data.len().min(SIZE_HINT_CAP) as u32;
            self.header.last_sizes[0].store(size, Ordering::Relaxed);
        }
        if self.render {
            let size = self.json.len().min(SIZE_HINT_CAP) as u32;
            self.header.last_sizes[1].store(size, Ordering::Relaxed);
        }
        // SAFETY: `json` only ever receives whole UTF-8 sequences (see the field), so it
        // is valid UTF-8; checking it again would read every byte of every row.
        let json = unsafe { String::from_utf8_unchecked(self.json) };
        EncodedRows {
            columns: self.header.columns,
            count: self.count,
            data: self.data,
            json,
            json_ends: self.json_ends,
        }
    }
}

/// Appends `value` in decimal, as `{value}` formats it, without the formatting machinery.
fn put_decimal(out: &mut Vec<u8>, value: i64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut rest = value.unsigned_abs();
    loop {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&digits[at..]);
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
    /// The rows as values (for the host's own use of the portable path; the rows must
    /// have been read with their values).
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

pub(crate) fn put_bytes(data: &mut Vec<u8>, tag: u8, bytes: &[u8]) {
    data.push(tag);
    data.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    data.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statements_next_result_starts_with_room_for_its_last() {
        let hints = SizeHints::new();
        let (page, other) = (
            SizeHints::key("SELECT a FROM t WHERE k > $1"),
            SizeHints::key("SELECT b FROM u"),
        );
        assert_eq!(hints.get(page), [0, 0]);
        let mut out = RowWriter::hinted(["a"].into_iter(), RowForm::Values, hints.get(page));
        let small = out.data.capacity();
        for i in 0..100_000 {
            out.begin_row();
            out.text(&format!("row {i:>20}"));
            out.end_row().unwrap();
        }
        let rows = out.finish();
        let size = rows.data.len();
        assert!(size > 2 << 20, "{size}");
        hints.put(page, &rows);
        // Rounded up to KiB, json empty.
        let [data, json] = hints.get(page);
        assert!(
            data as usize >= size && data as usize - size < 1024,
            "{data} {size}"
        );
        assert_eq!(json, 0);
        assert_eq!(hints.get(other), [0, 0]);
        // The next result of the statement has room for the last and an eighth more: it
        // is never grown (each growth a copy into a new buffer) while it stays within.
        let next = RowWriter::hinted(["a"].into_iter(), RowForm::Values, hints.get(page));
        assert!(
            next.data.capacity() >= size + size / 8,
            "{}",
            next.data.capacity()
        );
        assert!(small < 1 << 20, "{small}");
        // A hint never reserves more than the cap.
        let huge = EncodedRows {
            columns: 1,
            count: 0,
            data: vec![0; SIZE_HINT_CAP * 2],
            json: String::new(),
            json_ends: Vec::new(),
        };
        hints.put(other, &huge);
        assert_eq!(hints.get(other)[0] as usize, SIZE_HINT_CAP);
    }

    fn write(form: RowForm) -> EncodedRows {
        let mut out = RowWriter::new(["id", "name", "score", "raw", "none"].into_iter(), form);
        for (id, name, score) in [(-7, "a\"b", 1.5), (i64::MIN, "ü", f64::NAN)] {
            out.begin_row();
            out.integer(id);
            out.text(name);
            out.real(score);
            out.blob(&[1, 2]);
            out.null();
            out.end_row().unwrap();
        }
        out.finish()
    }

    #[test]
    fn each_form_holds_only_what_was_asked_for() {
        let both = write(RowForm::Both);
        let first = r#""id":-7,"name":"a\"b","score":1.5,"raw":null,"none":null"#;
        let second = r#""id":-9223372036854775808,"name":"ü","score":null,"raw":null,"none":null"#;
        assert_eq!(both.json, format!("{first}{second}"));
        assert_eq!(
            both.json_ends,
            vec![first.len() as u32, (first.len() + second.len()) as u32]
        );
        assert_eq!(both.values()[1][0], SqlValue::Integer(i64::MIN));
        assert_eq!(both.values()[0][1], SqlValue::Text("a\"b".into()));

        let values = write(RowForm::Values);
        assert_eq!(values.data, both.data);
        assert!(values.json.is_empty() && values.json_ends.is_empty());

        let json = write(RowForm::Json);
        assert_eq!(
            (json.json.as_str(), &json.json_ends),
            (both.json.as_str(), &both.json_ends)
        );
        // The names only: no values.
        let mut names = Vec::new();
        for name in ["id", "name", "score", "raw", "none"] {
            put_name(&mut names, name);
        }
        assert_eq!(json.data, names);
        assert_eq!((json.columns, json.count), (5, 2));

        // The 0.1.0 and 0.2.0 layout: a u32 length before each row.
        let prefixed = both.prefixed_json();
        assert_eq!(&prefixed[..4], &(first.len() as u32).to_le_bytes());
        assert_eq!(&prefixed[4..4 + first.len()], first.as_bytes());
    }

    #[test]
    fn decimals_match_the_formatter() {
        for value in [0, 1, -1, 9, 10, -10, 1234567890, i64::MAX, i64::MIN] {
            let mut out = Vec::new();
            put_decimal(&mut out, value);
            assert_eq!(String::from_utf8(out).unwrap(), value.to_string());
        }
    }
}
