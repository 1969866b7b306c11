//! OpenEMR patient documents (`documents`, filed in `categories`): the standard API's
//! routes, `POST /api/patient/:pid/document?path=<category path>[&eid=<encounter>]` with
//! the file in the multipart field `document`, `GET /api/patient/:pid/document?path=…`
//! listing a category, and `GET /api/patient/:pid/document/:did` sending the file back
//! with the content type it was stored with, byte for byte. Bare payloads, as OpenEMR's
//! DocumentRestController answers.
//!
//! Limits, per site in `plugins.toml`: `max_upload_bytes` (default 1 MiB; the host's
//! `max_body_bytes` caps the whole request too) answers a larger file 413, and
//! `allowed_types` (comma-separated media types, default [`DEFAULT_TYPES`]) answers a file
//! of another type 415. The type is the one the bytes show where the format has a certain
//! signature (PDF, PNG, JPEG, …), else the part's declared `Content-Type`; a file whose
//! bytes contradict its declared type is refused as well. Storage and the checksum are
//! [`hearth_emr::documents`]'.

use hearth_emr::documents::{self, NewDocument};
use hearth_emr::prelude::*;
use hearth_sdk::time;

/// The document resource.
pub struct Document;

impl Resource for Document {
    const NAME: &'static str = "document";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Patient documents (OpenEMR documents and categories)";
    const WORDS: &'static [Words] = &[Words::new("document", "Documents", "documents")];
    const READS: &'static [&'static str] =
        &["patient_data", "categories", "form_encounter", "users"];
    const WRITES: &'static [&'static str] = documents::WRITES;
    const CONFIG_KEYS: &'static [&'static str] = &[MAX_UPLOAD, ALLOWED_TYPES];
    const ROUTES: &'static [Route] = &[
        Route::post("/api/patient/:pid/document", "document.c", upload_or_404)
            .acl("patients/docs:write")
            .bare()
            .summary("Upload a document (multipart field `document`) to a category path")
            .params(UPLOAD_PARAMS)
            .answers(Schema::Boolean),
        Route::get("/api/patient/:pid/document", "document.s", list)
            .acl("patients/docs")
            .bare()
            .summary("List the patient's documents in a category path")
            .params(LIST_PARAMS)
            .answers_list(LISTED),
        Route::get("/api/patient/:pid/document/:did", "document.r", download)
            .acl("patients/docs")
            .bare()
            .summary("Download a document (the stored bytes and content type)")
            .answers(Schema::Json(r#"{"type":"string","format":"binary"}"#)),
    ];
}

hearth_sdk::export!(Document);

/// The plugin setting with the largest file accepted, in bytes.
pub const MAX_UPLOAD: &str = "max_upload_bytes";
/// The plugin setting with the media types accepted, comma separated.
pub const ALLOWED_TYPES: &str = "allowed_types";
/// The largest file accepted unless the site says otherwise: 1 MiB.
pub const DEFAULT_MAX_UPLOAD: usize = 1 << 20;
/// The media types accepted unless the site says otherwise: documents, images, scans
/// and CDA/XML.
pub const DEFAULT_TYPES: &[&str] = &[
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/tiff",
    "image/bmp",
    "application/dicom",
    "text/plain",
    "text/xml",
    "application/xml",
];

const UPLOAD_PARAMS: &[Param] = &[
    Param::query(
        "path",
        Schema::String,
        "The category path, e.g. /Categories/Medical Record (required)",
    ),
    Param::query(
        "eid",
        Schema::Numeric,
        "The patient's encounter number the document belongs to",
    ),
];

const LIST_PARAMS: &[Param] = &[
    Param::query(
        "path",
        Schema::String,
        "The category path, e.g. /Categories/Medical Record (required)",
    ),
    Param::query(
        "_sort",
        Schema::String,
        "Comma-separated field names; a leading - sorts descending",
    ),
    Param::query(
        "_limit",
        Schema::Numeric,
        "Rows per page (every row when absent)",
    ),
    Param::query("_offset", Schema::Numeric, "Rows to skip"),
];

/// One document as the list answers it (DocumentService::getAllAtPath's fields).
const LISTED: Schema = Schema::Row(&[&[
    Column::text("filename"),
    Column::text("hash"),
    Column::int("id"),
    Column::text("mimetype"),
    Column::date("docdate"),
]]);

const LIST_SELECT: &str = "SELECT d.name AS filename, d.hash, d.id, d.mimetype, \
    CAST(d.docdate AS TEXT) AS docdate FROM documents d";

const SORT: Sort = Sort {
    alias: "d",
    keys: &[
        SortKey::column("id"),
        SortKey::renamed("filename", "d.name"),
        SortKey::column("docdate"),
        SortKey::column("mimetype"),
        SortKey::column("date"),
    ],
    default: "id",
    tiebreak: "id",
};

/// A bare validation map with one message.
fn invalid(field: &str, rule: &str, message: &str) -> ApiError {
    ApiError::invalid(field, rule, message)
}

/// `status` with a bare one-message map for `field` (413 and 415 refusals).
fn refuse(status: u16, field: &str, rule: &str, message: &str) -> ApiError {
    let mut reasons = Json::object();
    reasons.field(rule, message);
    let mut errors = Json::object();
    errors.field(field, reasons.end());
    ApiError::Response(Response::json(status, errors.end()))
}

/// The category the request's `path` names: a 400 when it is missing or names none.
fn category(req: &Request) -> Result<i64> {
    let path = req.query("path").map(str::trim).unwrap_or("");
    if path.is_empty() {
        return Err(invalid(
            "path",
            "Required::NON_EXISTENT_KEY",
            "path must be provided, but does not exist",
        ));
    }
    documents::category_by_path(path)?.ok_or_else(|| {
        invalid(
            "path",
            "Category::NOT_FOUND",
            &format!("No document category has the path {path}"),
        )
    })
}

/// A site setting, or `default`.
fn setting(key: &str) -> Result<Option<String>> {
    Ok(hearth_sdk::config(key)?.filter(|v| !v.trim().is_empty()))
}

/// `POST /api/patient/:pid/document` as [`upload`] answers it; on a site in OpenEMR
/// compatibility a refused upload is OpenEMR's empty 404 (its service answers `false`
/// whatever went wrong).
fn upload_or_404(req: &Request) -> Result<Response> {
    match upload(req) {
        Err(error) if req.openemr_compatible() && !matches!(error, ApiError::Internal(_)) => {
            Ok(Response::empty(404))
        }
        other => other,
    }
}

/// `POST /api/patient/:pid/document`: stores the multipart field `document` in the
/// category `path` and answers OpenEMR's `true` (and the new document's URL in
/// `Location`).
fn upload(req: &Request) -> Result<Response> {
    let patient = emr::path_pid(req, "pid")?;
    let category = category(req)?;
    let encounter = match req.query("eid").filter(|e| !e.is_empty()) {
        Some(eid) => {
            let eid: i64 = eid
                .parse()
                .map_err(|_| invalid("eid", "Numeric::NOT_NUMERIC", "eid must be numeric"))?;
            emr::require_encounter(patient.pid, eid)?;
            eid
        }
        None => 0,
    };
    let content_type = req.header("content-type").unwrap_or("");
    let boundary = multipart::boundary(content_type).ok_or_else(|| {
        refuse(
            415,
            "document",
            "Upload::NOT_MULTIPART",
            "The file must be sent as multipart/form-data in the field document",
        )
    })?;
    let parts = multipart::parse(req.body(), &boundary).ok_or_else(|| {
        invalid(
            "document",
            "Upload::MALFORMED",
            "The multipart/form-data body is malformed",
        )
    })?;
    let file = parts.iter().find(|p| p.name == "document").ok_or_else(|| {
        invalid(
            "document",
            "Required::NON_EXISTENT_KEY",
            "document must be provided, but does not exist",
        )
    })?;
    if file.data.is_empty() {
        return Err(invalid(
            "document",
            "NotEmpty::EMPTY_VALUE",
            "document must not be empty",
        ));
    }
    let limit = match setting(MAX_UPLOAD)? {
        Some(text) => text.trim().parse::<usize>().map_err(|_| {
            ApiError::Internal(format!("{MAX_UPLOAD} is not a number of bytes: {text}"))
        })?,
        None => DEFAULT_MAX_UPLOAD,
    };
    if file.data.len() > limit {
        return Err(refuse(
            413,
            "document",
            "Upload::TOO_LARGE",
            &format!(
                "The file has {} bytes; this site accepts at most {limit}",
                file.data.len()
            ),
        ));
    }
    let declared = file
        .content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let mimetype = match documents::sniff(file.data) {
        Some(seen) if declared.is_empty() || declared == "application/octet-stream" => seen,
        Some(seen) if seen == declared => seen,
        Some(seen) => {
            return Err(refuse(
                415,
                "document",
                "Upload::TYPE_MISMATCH",
                &format!("The file is declared {declared} but its bytes are {seen}"),
            ));
        }
        None if declared.is_empty() => "application/octet-stream",
        None => declared.as_str(),
    };
    let allowed: Vec<String> = match setting(ALLOWED_TYPES)? {
        Some(list) => list
            .split(',')
            .map(|t| t.trim().to_ascii_lowercase())
            .filter(|t| !t.is_empty())
            .collect(),
        None => DEFAULT_TYPES.iter().map(|t| (*t).to_owned()).collect(),
    };
    if !allowed.iter().any(|t| t == mimetype) {
        return Err(refuse(
            415,
            "document",
            "Upload::TYPE_NOT_ALLOWED",
            &format!(
                "Files of type {mimetype} are not accepted; this site accepts {}",
                allowed.join(", ")
            ),
        ));
    }
    let name = documents::safe_filename(file.filename.as_deref().unwrap_or("document"));
    let owner = store::query_one(
        "SELECT id FROM users WHERE username = $1",
        params![req.caller().username.as_str()],
    )?
    .and_then(|row| row.int("id"));
    let now = time::now().datetime();
    let (id, _) = documents::store(&NewDocument {
        pid: patient.pid,
        category,
        name: &name,
        mimetype,
        bytes: file.data,
        encounter,
        owner,
        now: &now,
    })?;
    let location = format!("{}/patient/{}/document/{id}", req.base_url(), patient.pid);
    Ok(req.ok(Json::raw("true")).header("location", &location))
}

/// `GET /api/patient/:pid/document?path=…`: the patient's documents in the category.
fn list(req: &Request) -> Result<Response> {
    let patient = emr::path_pid(req, "pid")?;
    // OpenEMR finds no documents at a missing or unknown path: its empty 404.
    let category = category(req).map_err(|error| {
        if req.openemr_compatible() {
            ApiError::Response(Response::empty(404))
        } else {
            error
        }
    })?;
    let mut search = Search::on("d");
    search
        .equals("foreign_id", patient.pid)
        .equals("deleted", 0)
        .condition(
            "d.id IN (SELECT document_id FROM categories_to_documents WHERE category_id = $?)",
            vec![Value::Integer(category)],
        );
    search.sort_by(req, &SORT)?;
    crud::page(req, &search, LIST_SELECT, Json::from_row)
}

/// `GET /api/patient/:pid/document/:did`: the file, as an attachment, with the content
/// type it was stored with; 404 for another patient's or a deleted document.
fn download(req: &Request) -> Result<Response> {
    let patient = emr::path_pid(req, "pid")?;
    let did = req.id("did")?;
    let row = store::query_one(
        "SELECT id, name, mimetype, hash FROM documents \
         WHERE id = $1 AND foreign_id = $2 AND deleted = 0",
        params![did, patient.pid],
    )?
    .ok_or(ApiError::NotFound)?;
    let bytes = documents::content(did, row.text("hash").unwrap_or(""))?.ok_or_else(|| {
        // OpenEMR answers a document without a file 400 with an empty body.
        ApiError::Response(Response::empty(400))
    })?;
    let name = documents::safe_filename(row.text("name").unwrap_or(""));
    let mimetype = row
        .text("mimetype")
        .filter(|m| !m.is_empty())
        .unwrap_or("application/octet-stream");
    let digest = documents::repr_digest(&bytes);
    Ok(Response {
        status: 200,
        headers: Vec::new(),
        body: bytes,
    }
    .header("content-type", mimetype)
    .header(
        "content-disposition",
        &format!("attachment; filename=\"{name}\""),
    )
    .header("cache-control", "private, no-store")
    .header("repr-digest", &digest)
    .header("x-content-type-options", "nosniff"))
}

/// `multipart/form-data` (RFC 7578), as much as an upload needs: the boundary, and each
/// part's name, file name, content type and bytes.
pub mod multipart {
    /// One part of the body.
    #[derive(Debug)]
    pub struct Part<'a> {
        /// The form field's name.
        pub name: String,
        /// The file name, when the part is a file.
        pub filename: Option<String>,
        /// The part's declared `Content-Type` (empty when none).
        pub content_type: String,
        /// The part's bytes.
        pub data: &'a [u8],
    }

    /// The boundary of a `multipart/form-data` content type, or `None` for another type.
    pub fn boundary(content_type: &str) -> Option<String> {
        let mut pieces = content_type.split(';');
        let kind = pieces.next()?.trim();
        if !kind.eq_ignore_ascii_case("multipart/form-data") {
            return None;
        }
        pieces.find_map(|piece| {
            let (key, value) = piece.split_once('=')?;
            key.trim()
                .eq_ignore_ascii_case("boundary")
                .then(|| value.trim().trim_matches('"').to_owned())
                .filter(|b| !b.is_empty() && b.len() <= 70)
        })
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    /// A header parameter (`name="x"`) of a `Content-Disposition` value.
    fn parameter(value: &str, key: &str) -> Option<String> {
        value.split(';').skip(1).find_map(|piece| {
            let (k, v) = piece.split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case(key)
                .then(|| v.trim().trim_matches('"').to_owned())
        })
    }

    /// The parts of `body`, or `None` when it is not a well-formed multipart body with
    /// this boundary.
    pub fn parse<'a>(body: &'a [u8], boundary: &str) -> Option<Vec<Part<'a>>> {
        let delimiter = format!("--{boundary}");
        let delimiter = delimiter.as_bytes();
        let start = find(body, delimiter)?;
        let mut rest = &body[start + delimiter.len()..];
        let mut parts = Vec::new();
        loop {
            if rest.starts_with(b"--") {
                return Some(parts);
            }
            rest = rest.strip_prefix(b"\r\n")?;
            let head_end = find(rest, b"\r\n\r\n")?;
            let head = std::str::from_utf8(&rest[..head_end]).ok()?;
            let after = &rest[head_end + 4..];
            let mut close = b"\r\n".to_vec();
            close.extend_from_slice(delimiter);
            let end = find(after, &close)?;
            let mut name = None;
            let mut filename = None;
            let mut content_type = String::new();
            for line in head.split("\r\n") {
                let (key, value) = line.split_once(':')?;
                if key.trim().eq_ignore_ascii_case("content-disposition") {
                    name = parameter(value, "name");
                    filename = parameter(value, "filename");
                } else if key.trim().eq_ignore_ascii_case("content-type") {
                    content_type = value.trim().to_owned();
                }
            }
            parts.push(Part {
                name: name?,
                filename,
                content_type,
                data: &after[..end],
            });
            rest = &after[end + close.len()..];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::multipart;

    #[test]
    fn a_multipart_body_gives_its_parts() {
        let body =
            b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"document\"; filename=\"a.pdf\"\r\n\
Content-Type: application/pdf\r\n\r\n%PDF-1.4\r\n\x00\xff\r\n--XyZ--\r\n";
        let boundary = multipart::boundary("multipart/form-data; boundary=\"XyZ\"").unwrap();
        let parts = multipart::parse(body, &boundary).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].name, "note");
        assert_eq!(parts[0].data, b"hi");
        assert_eq!(parts[1].filename.as_deref(), Some("a.pdf"));
        assert_eq!(parts[1].content_type, "application/pdf");
        assert_eq!(parts[1].data, b"%PDF-1.4\r\n\x00\xff");
        assert!(multipart::boundary("application/json").is_none());
        assert!(multipart::parse(b"--XyZ\r\nbroken", "XyZ").is_none());
    }
}
