//! Building JSON responses quickly.
//!
//! [`Json`] is serialized JSON text. [`Json::object`] and [`Json::array`] write straight
//! into a buffer (no intermediate tree), which keeps mapping a wide row to OpenEMR's
//! response shape cheap inside the sandbox.
//!
//! ```
//! use hearth_sdk::json::Json;
//! let mut patient = Json::object();
//! patient.field("pid", 1).field("fname", "Ann").field("email", None::<&str>);
//! assert_eq!(patient.end().as_str(), r#"{"pid":1,"fname":"Ann","email":null}"#);
//! ```

use std::fmt::Write as _;

use crate::store::{OneRow, Row, ValueRef};

/// Serialized JSON text.
#[derive(Clone, PartialEq, Eq)]
pub struct Json(String);

impl Json {
    /// `null`.
    pub fn null() -> Json {
        Json("null".into())
    }

    /// An empty array, `[]` (OpenEMR's "nothing" in envelopes).
    pub fn empty_array() -> Json {
        Json("[]".into())
    }

    /// Starts an object.
    pub fn object() -> ObjectWriter {
        ObjectWriter::new()
    }

    /// Starts an object expected to hold about `bytes` of JSON (wide rows), so it is
    /// written without regrowing.
    pub fn object_with_capacity(bytes: usize) -> ObjectWriter {
        ObjectWriter::with_capacity(bytes)
    }

    /// Starts an array.
    pub fn array() -> ArrayWriter {
        ArrayWriter::new()
    }

    /// Every column of `row` as an object, in column order.
    pub fn from_row(row: &Row<'_>) -> Json {
        let mut object = Json::object_with_capacity(row.json_size_hint());
        object.row(row);
        object.end()
    }

    /// Every column of a single row as an object.
    pub fn from_one(row: &OneRow) -> Json {
        Json::from_row(&row.row())
    }

    /// Wraps text that is already valid JSON. The caller vouches for it.
    pub fn raw(text: impl Into<String>) -> Json {
        Json(text.into())
    }

    /// Serializes a `serde_json` value.
    pub fn from_value(value: &serde_json::Value) -> Json {
        Json(value.to_string())
    }

    /// The JSON text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The JSON text as bytes, for a response body.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0.into_bytes()
    }

    /// Parses the text back into a `serde_json` value (for tests and inspection).
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).unwrap_or(serde_json::Value::Null)
    }
}

impl std::fmt::Debug for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Json {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Something that can be written as a JSON value.
pub trait ToJson {
    /// Appends the value's JSON text to `out`.
    fn write_json(&self, out: &mut String);
}

impl ToJson for Json {
    fn write_json(&self, out: &mut String) {
        out.push_str(&self.0)
    }
}
impl ToJson for str {
    fn write_json(&self, out: &mut String) {
        write_str(out, self)
    }
}
impl ToJson for String {
    fn write_json(&self, out: &mut String) {
        write_str(out, self)
    }
}
impl ToJson for bool {
    fn write_json(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" })
    }
}
macro_rules! int_to_json {
    ($($t:ty),*) => {$(
        impl ToJson for $t {
            fn write_json(&self, out: &mut String) {
                out.push_str(itoa::Buffer::new().format(*self));
            }
        }
    )*};
}
int_to_json!(i32, i64, u32, u64, usize, u16);
impl ToJson for f64 {
    fn write_json(&self, out: &mut String) {
        if self.is_finite() {
            let _ = write!(out, "{}", self);
        } else {
            out.push_str("null");
        }
    }
}
impl<T: ToJson + ?Sized> ToJson for &T {
    fn write_json(&self, out: &mut String) {
        (**self).write_json(out)
    }
}
impl<T: ToJson> ToJson for Option<T> {
    fn write_json(&self, out: &mut String) {
        match self {
            Some(v) => v.write_json(out),
            None => out.push_str("null"),
        }
    }
}
impl<T: ToJson> ToJson for [T] {
    fn write_json(&self, out: &mut String) {
        out.push('[');
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            v.write_json(out);
        }
        out.push(']');
    }
}
impl<T: ToJson> ToJson for Vec<T> {
    fn write_json(&self, out: &mut String) {
        self.as_slice().write_json(out)
    }
}
impl ToJson for ValueRef<'_> {
    /// Integers and reals as numbers, text as strings, `NULL` as null, blobs as null.
    fn write_json(&self, out: &mut String) {
        match self {
            ValueRef::Null | ValueRef::Blob(_) => out.push_str("null"),
            ValueRef::Integer(i) => i.write_json(out),
            ValueRef::Real(r) => r.write_json(out),
            ValueRef::Text(s) => write_str(out, s),
        }
    }
}
impl ToJson for serde_json::Value {
    fn write_json(&self, out: &mut String) {
        let _ = write!(out, "{}", self);
    }
}

/// Bytes that must be escaped inside a JSON string.
const ESCAPE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = true;
        b += 1;
    }
    table[b'"' as usize] = true;
    table[b'\\' as usize] = true;
    table
};

/// True when `bytes` holds a quote, a backslash or a control character. Eight bytes at a
/// time (SWAR), since this runs for every key and value written.
fn needs_escape(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        // Bytes below 0x20: subtracting 0x20 borrows into the high bit of exactly those
        // bytes whose high bit was clear.
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGHS;
        let quote = has_zero(x ^ (ONES * u64::from(b'"')));
        let backslash = has_zero(x ^ (ONES * u64::from(b'\\')));
        if control | quote | backslash != 0 {
            return true;
        }
    }
    chunks.remainder().iter().any(|b| ESCAPE[*b as usize])
}

/// Writes a JSON string literal with escapes.
pub fn write_str(out: &mut String, s: &str) {
    // SAFETY: `write_str_bytes` appends only whole UTF-8 sequences (ASCII escapes and
    // slices of `s` cut at ASCII bytes), so `out` stays valid UTF-8.
    write_str_bytes(unsafe { out.as_mut_vec() }, s)
}

/// Writes a JSON string literal with escapes to a byte buffer (the host renders rows
/// with it, so host and SDK escape alike).
pub fn write_str_bytes(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() + 2);
    out.push(b'"');
    let bytes = s.as_bytes();
    if !needs_escape(bytes) {
        // The common case: nothing to escape.
        out.extend_from_slice(bytes);
        out.push(b'"');
        return;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[(b >> 4) as usize]);
            out.push(HEX[(b & 0xf) as usize]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Writes an object, field by field.
pub struct ObjectWriter {
    out: String,
    empty: bool,
}

impl ObjectWriter {
    fn new() -> Self {
        Self::with_capacity(256)
    }

    fn with_capacity(capacity: usize) -> Self {
        let mut out = String::with_capacity(capacity);
        out.push('{');
        ObjectWriter { out, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        write_str(&mut self.out, key);
        self.out.push(':');
    }

    /// Adds `key: value`.
    pub fn field(&mut self, key: &str, value: impl ToJson) -> &mut Self {
        self.key(key);
        value.write_json(&mut self.out);
        self
    }

    /// Adds every column of `row` as a field, in column order.
    pub fn row(&mut self, row: &Row<'_>) -> &mut Self {
        let members = row.json_members();
        if !members.is_empty() {
            if !self.empty {
                self.out.push(',');
            }
            self.empty = false;
            self.out.push_str(members);
        }
        self
    }

    /// Adds every column of `row` except those in `skip`.
    pub fn row_except(&mut self, row: &Row<'_>, skip: &[&str]) -> &mut Self {
        for (column, value) in row.iter() {
            if !skip.contains(&column) {
                self.field(column, value);
            }
        }
        self
    }

    /// Finishes the object.
    pub fn end(&mut self) -> Json {
        let mut out = std::mem::take(&mut self.out);
        out.push('}');
        Json(out)
    }

    /// Finishes the object with one last field, `key: value`, written around `value`'s
    /// own text: the fields so far go in front of it, in its buffer. For a large value
    /// (a page's entries) that saves copying it, and the memory of a second one.
    ///
    /// ```
    /// use hearth_sdk::json::Json;
    /// let mut entries = Json::array();
    /// entries.push(1).push(2);
    /// let mut bundle = Json::object();
    /// bundle.field("type", "searchset");
    /// let bundle = bundle.end_with("entry", entries.end());
    /// assert_eq!(bundle.as_str(), r#"{"type":"searchset","entry":[1,2]}"#);
    /// ```
    pub fn end_with(&mut self, key: &str, value: Json) -> Json {
        self.key(key);
        let mut out = value.0;
        out.insert_str(0, &self.out);
        self.out.clear();
        out.push('}');
        Json(out)
    }
}

/// Writes an array, item by item.
pub struct ArrayWriter {
    out: String,
    empty: bool,
}

impl ArrayWriter {
    fn new() -> Self {
        ArrayWriter {
            out: String::from("["),
            empty: true,
        }
    }

    /// Appends an item.
    pub fn push(&mut self, value: impl ToJson) -> &mut Self {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        value.write_json(&mut self.out);
        self
    }

    /// Finishes the array.
    pub fn end(&mut self) -> Json {
        let mut out = std::mem::take(&mut self.out);
        out.push(']');
        Json(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_escape_check_agrees_with_the_table() {
        for b in 0u8..=255 {
            for position in 0..17 {
                let mut bytes = vec![b'a'; 17];
                bytes[position] = b;
                assert_eq!(
                    needs_escape(&bytes),
                    ESCAPE[b as usize],
                    "byte {b:#x} at {position}"
                );
            }
        }
    }

    #[test]
    fn strings_are_escaped() {
        let mut out = String::new();
        write_str(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
        let parsed: String = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed, "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn nested_writers_produce_valid_json() {
        let mut items = Json::array();
        items.push(1).push("two").push(Json::null());
        let mut object = Json::object();
        object
            .field("items", items.end())
            .field("ok", true)
            .field("x", 1.5);
        let value = object.end().to_value();
        assert_eq!(value["items"][1], "two");
        assert_eq!(value["x"], 1.5);
    }
}
