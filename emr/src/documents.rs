//! Patient documents (`documents`, `categories`, `categories_to_documents`, and Hearth's
//! `document_contents` holding the bytes): what the standard API's document routes and the
//! FHIR DocumentReference, Binary and Media types share.
//!
//! A document's bytes live in the database, one `document_contents` row per document,
//! written in the request's transaction with the `documents` row, so a refused or failed
//! request leaves neither. `documents.hash` holds the SHA-256 of the bytes (lower-case
//! hex); [`content`] checks it on every read and never serves bytes that do not match.
//! A category is named by its path from the root, as OpenEMR's API names it:
//! `/Categories/Medical Record`.
//!
//! A plugin using these declares `documents`, `categories_to_documents` and
//! `document_contents` in `WRITES` (or `READS`) and `categories` in `READS`.

use hearth_sdk::new_uuid;
use hearth_sdk::params;
use hearth_sdk::response::{ApiError, Result};
use hearth_sdk::sql::Insert;
use hearth_sdk::store::{self, Value, ValueRef};
use sha2::Digest;

/// The tables a plugin writing documents declares in `WRITES`.
pub const WRITES: &[&str] = &["documents", "categories_to_documents", "document_contents"];

/// The id of OpenEMR's `CCDA` category, where generated CCDs are filed.
pub const CCDA_CATEGORY: i64 = 13;

/// The SHA-256 of `bytes`, lower-case hex, as `documents.hash` holds it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The SHA-256 of `bytes` as RFC 9530's `repr-digest` header value: `sha-256=:<base64>:`.
pub fn repr_digest(bytes: &[u8]) -> String {
    format!("sha-256=:{}:", base64(&sha2::Sha256::digest(bytes)))
}

/// Standard base64 with padding.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The media type the bytes themselves show, for the formats whose signature is certain
/// (PDF, PNG, JPEG, GIF, TIFF, BMP, DICOM, MP4); `None` for the rest (text, XML).
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    let starts = |magic: &[u8]| bytes.starts_with(magic);
    if starts(b"%PDF-") {
        Some("application/pdf")
    } else if starts(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if starts(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some("image/gif")
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        Some("image/tiff")
    } else if starts(b"BM") && bytes.len() > 14 {
        Some("image/bmp")
    } else if bytes.len() > 132 && &bytes[128..132] == b"DICM" {
        Some("application/dicom")
    } else if bytes.len() > 12 && &bytes[4..8] == b"ftyp" {
        Some("video/mp4")
    } else {
        None
    }
}

/// The id of the category at `path` (`/Categories/Lab Report`; the leading root name may
/// be left out, and a trailing `/` is ignored), or `None` when no category has that path.
pub fn category_by_path(path: &str) -> Result<Option<i64>> {
    let names: Vec<&str> = path
        .split('/')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return Ok(None);
    }
    let rows = store::query("SELECT id, name, parent FROM categories", &[])?;
    let children = |parent: i64, name: &str| {
        rows.iter().find_map(|row| {
            (row.int("parent") == Some(parent) && row.text("name") == Some(name))
                .then(|| row.int("id"))
                .flatten()
        })
    };
    // The root is `Categories` (parent 0); a path may start below it.
    let root = children(0, "Categories");
    let (mut at, rest) = match root {
        Some(root) if names[0] == "Categories" => (root, &names[1..]),
        Some(root) => (root, &names[..]),
        None => return Ok(None),
    };
    for name in rest {
        match children(at, name) {
            Some(id) => at = id,
            None => return Ok(None),
        }
    }
    Ok(Some(at))
}

/// A document to store.
pub struct NewDocument<'a> {
    /// The patient's pid (`documents.foreign_id`).
    pub pid: i64,
    /// The category it is filed in.
    pub category: i64,
    /// The file name.
    pub name: &'a str,
    /// The media type.
    pub mimetype: &'a str,
    /// The bytes.
    pub bytes: &'a [u8],
    /// The encounter number it belongs to, 0 for none.
    pub encounter: i64,
    /// The `users.id` of who stored it, if known.
    pub owner: Option<i64>,
    /// Now, `YYYY-MM-DD HH:MM:SS` (UTC).
    pub now: &'a str,
}

/// Stores a document, its category link and its bytes; answers its id and uuid.
pub fn store(doc: &NewDocument<'_>) -> Result<(i64, String)> {
    let uuid = new_uuid();
    let mut insert = Insert::into("documents");
    insert
        .set("uuid", uuid.as_str())
        .set("type", "file_url")
        .set("size", doc.bytes.len() as i64)
        .set("date", doc.now)
        .set("revision", doc.now)
        .set("mimetype", doc.mimetype)
        .set("owner", doc.owner)
        .set("foreign_id", doc.pid)
        .set("docdate", &doc.now[..10])
        .set("hash", sha256_hex(doc.bytes))
        .set("name", doc.name)
        .set("encounter_id", doc.encounter);
    let id = insert.insert_id()?;
    store::execute(
        "UPDATE documents SET url = $1 WHERE id = $2",
        params![format!("hearth:document_contents/{id}"), id],
    )?;
    store::execute(
        "INSERT INTO categories_to_documents (category_id, document_id) VALUES ($1, $2)",
        params![doc.category, id],
    )?;
    store::execute(
        "INSERT INTO document_contents (document_id, data) VALUES ($1, $2)",
        &[Value::Integer(id), Value::Blob(doc.bytes.to_vec())],
    )?;
    Ok((id, uuid))
}

/// The bytes of document `id`, checked against the SHA-256 recorded when it was stored:
/// `None` when it has none, an internal error (logged, never served) when they differ.
pub fn content(id: i64, hash: &str) -> Result<Option<Vec<u8>>> {
    let Some(row) = store::query_one(
        "SELECT data FROM document_contents WHERE document_id = $1",
        params![id],
    )?
    else {
        return Ok(None);
    };
    let bytes = match row.get("data") {
        ValueRef::Blob(bytes) => bytes.to_vec(),
        ValueRef::Text(text) => text.as_bytes().to_vec(),
        _ => return Ok(None),
    };
    if !sha256_hex(&bytes).eq_ignore_ascii_case(hash) {
        return Err(ApiError::Internal(format!(
            "document {id}: the stored bytes do not match their SHA-256 checksum; not served"
        )));
    }
    Ok(Some(bytes))
}

/// A file name safe for a `Content-Disposition` header: no quotes, backslashes or
/// control characters, at most 200 characters.
pub fn safe_filename(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .take(200)
        .collect();
    if cleaned.trim().is_empty() {
        "document".to_owned()
    } else {
        cleaned
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_digests_match_known_values() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn signatures_name_their_formats() {
        assert_eq!(sniff(b"%PDF-1.4\n"), Some("application/pdf"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff(b"hello"), None);
        assert_eq!(safe_filename("a\"b\\c\n.pdf"), "abc.pdf");
    }
}
