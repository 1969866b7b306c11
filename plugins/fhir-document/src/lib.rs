//! FHIR R4 over OpenEMR's patient documents (`documents`, filed in `categories`), the rows
//! `/api/patient/:pid/document` serves:
//!
//! - `DocumentReference` (US Core 3.1.1 and 7.0.0): read and search (`patient`, `type`,
//!   `category`, `date`), with a Provenance each. Every document is a `clinical-note`
//!   (US Core's document category, as OpenEMR maps patient documents); its `type` is the
//!   LOINC code of its category (`categories.codes`), else `unknown`; its content is an
//!   attachment pointing at `Binary/<id>`.
//! - `Binary/:id`: the document's bytes with the content type they were stored with, or,
//!   with `Accept: application/fhir+json`, a Binary resource with the bytes in base64
//!   `data`. The SHA-256 recorded on upload is checked before anything is sent.
//! - `Media`: the documents whose type is an image or video OpenEMR serves as Media
//!   (FhirMediaService's list), searched by `patient`, `content-type` and `title`.
//! - `POST /fhir/DocumentReference/$docref`: generates a C-CDA R2.1 Continuity of Care
//!   Document for the patient from the chart Hearth holds ([`ccd`]), files it in the
//!   `CCDA` category, and answers a Bundle with its DocumentReference.
//!
//! A patient-bound caller sees only its own patient's documents, here as everywhere.

pub mod ccd;

use hearth_emr::documents;
use hearth_fhir::{Fields, Param, Target, TokenColumn, TypeDef, coding, concept, reference};
use hearth_sdk::prelude::*;
use hearth_sdk::{FhirType, Method, time};

/// The FHIR document resources.
pub struct FhirDocument;

impl Resource for FhirDocument {
    const NAME: &'static str = "fhir-document";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "FHIR DocumentReference, Binary, Media and $docref (CCD) over OpenEMR documents";
    const READS: &'static [&'static str] = &[
        "patient_data",
        "categories",
        "users",
        "facility",
        "form_encounter",
        "forms",
        "form_vitals",
        "lists",
        "immunizations",
        "codes",
        "list_options",
    ];
    const WRITES: &'static [&'static str] = documents::WRITES;
    const ROUTES: &'static [Route] = &{
        let [search, search_post, read] = hearth_fhir::read_search_routes!(
            DOCUMENT_REFERENCE, map_document, type = "DocumentReference", acl = "patients/docs",
            nouns = "document references", one = "a document reference",
            schema = DOCUMENT_REFERENCE_SCHEMA
        );
        let [media_search, media_search_post, media_read] = hearth_fhir::read_search_routes!(
            MEDIA, map_media, type = "Media", acl = "patients/docs", nouns = "media",
            one = "a media item", schema = MEDIA_SCHEMA
        );
        [
            Route::post(
                "/fhir/DocumentReference/$docref",
                "DocumentReference.$docref",
                docref,
            )
            .acl("patients/demo")
            .summary("Generate the patient's C-CDA CCD and answer its DocumentReference")
            .answers(Schema::Bundle(&DOCUMENT_REFERENCE_SCHEMA)),
            search,
            search_post,
            read,
            Route::get("/fhir/Binary/:id", "Binary.r", binary)
                .acl("patients/docs")
                .summary("Read a document's bytes (a Binary with Accept: application/fhir+json)")
                .answers(BINARY_SCHEMA),
            media_search,
            media_search_post,
            media_read,
        ]
    };

    const WORDS: &'static [Words] = &[
        Words::new(
            "DocumentReference",
            "Clinical documents (FHIR)",
            "documents and notes (FHIR DocumentReference)",
        ),
        Words::new(
            "Binary",
            "Document files (FHIR)",
            "the files of documents (FHIR Binary)",
        ),
        Words::new(
            "Media",
            "Images and media (FHIR)",
            "photographs and scans (FHIR Media)",
        ),
    ];

    fn fhir_types() -> Vec<FhirType> {
        vec![
            DOCUMENT_REFERENCE.declaration(),
            FhirType {
                resource_type: "Binary".to_owned(),
                profiles: Vec::new(),
                search_params: Vec::new(),
            },
            MEDIA.declaration(),
        ]
    }
}

hearth_sdk::export!(FhirDocument);

const LOINC: &str = "http://loinc.org";
const DOC_CATEGORY: &str =
    "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category";
const DATA_ABSENT: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";
const FORMAT: &str = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode";
/// The LOINC code of a summary of episode note: a CCD.
pub const CCD_LOINC: &str = "34133-9";

const DOCUMENT_REFERENCE_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["DocumentReference"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("status", Schema::Enum(&["current"])).required(),
        Prop::new("type", CODEABLE_CONCEPT).required(),
        Prop::new("category", Schema::Array(&CODEABLE_CONCEPT)).required(),
        Prop::new("subject", REFERENCE).required(),
        Prop::new("date", Schema::String),
        Prop::new("author", Schema::Array(&REFERENCE)),
        Prop::new("description", Schema::String),
        Prop::new("content", Schema::Array(&ATTACHMENT_CONTENT)).required(),
        Prop::new("context", Schema::Json(r#"{"type":"object"}"#)),
    ])
};

const ATTACHMENT: Schema = Schema::Object(&[
    Prop::new("contentType", Schema::String).required(),
    Prop::new("url", Schema::String).required(),
    Prop::new("title", Schema::String),
    Prop::new("size", Schema::Integer),
    Prop::new("creation", Schema::String),
]);

const ATTACHMENT_CONTENT: Schema = Schema::Object(&[
    Prop::new("attachment", ATTACHMENT).required(),
    Prop::new("format", hearth_fhir::schemas::CODING),
]);

const MEDIA_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Media"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("status", Schema::Enum(&["completed"])).required(),
        Prop::new("subject", REFERENCE).required(),
        Prop::new("createdDateTime", Schema::String),
        Prop::new("encounter", REFERENCE),
        Prop::new("content", ATTACHMENT).required(),
    ])
};

const BINARY_SCHEMA: Schema = Schema::Json(
    r#"{"description":"The document's bytes in their own content type; with Accept: application/fhir+json a Binary resource","type":"object","properties":{"resourceType":{"enum":["Binary"]},"id":{"type":"string"},"contentType":{"type":"string"},"data":{"type":"string","contentEncoding":"base64"}}}"#,
);

/// The columns both document types map.
const COLUMNS: &str = "d.id AS document_id, d.name, d.mimetype, d.size, \
    CAST(d.docdate AS TEXT) AS docdate, d.date AS created, d.encounter_id, \
    p.uuid AS patient_uuid, p.fname AS patient_fname, p.lname AS patient_lname, \
    c.name AS category_name, c.codes AS category_codes, u.uuid AS author_uuid, \
    u.fname AS author_fname, u.lname AS author_lname, fe.uuid AS encounter_uuid";

/// The tables behind a document: its patient, its (first) category, its owner when a
/// practitioner, its encounter.
const FROM: &str = "documents d JOIN patient_data p ON p.pid = d.foreign_id \
    LEFT JOIN categories c ON c.id = (SELECT MIN(cd.category_id) FROM categories_to_documents cd \
    WHERE cd.document_id = d.id) \
    LEFT JOIN users u ON u.id = d.owner AND u.npi <> '' \
    LEFT JOIN form_encounter fe ON fe.encounter = d.encounter_id AND fe.pid = d.foreign_id";

/// The last change of a document row.
const UPDATED: &str = "COALESCE(d.revision, d.date)";

/// US Core DocumentReference over every stored patient document.
pub const DOCUMENT_REFERENCE: TypeDef = TypeDef {
    resource_type: "DocumentReference",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-documentreference",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-documentreference|3.1.1",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-documentreference|7.0.0",
    ],
    columns: COLUMNS,
    from: FROM,
    id: "d.uuid",
    key: "d.id",
    last_updated: UPDATED,
    patient: Some("p.uuid"),
    only: Some("d.deleted = 0"),
    params: &[
        Param::new(
            "patient",
            "DocumentReference.subject",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "type",
            "DocumentReference.type",
            Target::Token(&[TokenColumn::listed("c.codes", LOINC, "LOINC:").text("c.name")]),
        ),
        Param::new(
            "category",
            "DocumentReference.category",
            Target::Token(&[TokenColumn::new(
                "CAST('clinical-note' AS TEXT)",
                Some(DOC_CATEGORY),
            )]),
        ),
        Param::new("date", "DocumentReference.date", Target::DateTime("d.date")),
    ],
};

/// Media: the documents whose type is an image or video.
pub const MEDIA: TypeDef = TypeDef {
    resource_type: "Media",
    profiles: &[],
    columns: COLUMNS,
    from: FROM,
    id: "d.uuid",
    key: "d.id",
    last_updated: UPDATED,
    patient: Some("p.uuid"),
    // The media types OpenEMR serves as Media (FhirMediaService's list).
    only: Some(
        "d.deleted = 0 AND d.mimetype IN ('application/dicom', 'image/jpeg', 'image/png', \
         'image/gif', 'image/bmp', 'image/tiff', 'video/mp4', 'video/quicktime')",
    ),
    params: &[
        Param::new(
            "patient",
            "Media.subject",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "content-type",
            "Media.content.contentType",
            Target::Text(&["d.mimetype"]),
        ),
        Param::new("title", "Media.content.title", Target::Text(&["d.name"])),
    ],
};

fn display(first: Option<&str>, last: Option<&str>) -> String {
    [first, last]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The attachment of a document row: its type, its Binary URL, title, size, creation.
fn attachment(row: &Row<'_>, req: &Request) -> Json {
    let id = row.text("fhir_id").unwrap_or_default();
    let mut out = Fields::new();
    out.text(
        "contentType",
        Some(row.text("mimetype").unwrap_or("application/octet-stream")),
    )
    .set("url", format!("{}/Binary/{id}", req.base_url()).as_str())
    .text("title", row.text("name"));
    if let Some(size) = row.int("size") {
        out.set("size", size);
    }
    if let Some(created) = row.text("created").and_then(hearth_fhir::date::instant) {
        out.set("creation", created.as_str());
    }
    out.end()
}

fn subject(row: &Row<'_>, out: &mut Fields) {
    if let Some(patient) = row.text("patient_uuid") {
        let name = display(row.text("patient_fname"), row.text("patient_lname"));
        out.set(
            "subject",
            reference("Patient", patient, Some(name.as_str())),
        );
    }
}

/// The LOINC code in an OpenEMR code list (`LOINC:34133-9;…`).
fn loinc(codes: &str) -> Option<&str> {
    codes
        .split(';')
        .find_map(|c| c.trim().strip_prefix("LOINC:"))
        .filter(|c| !c.is_empty())
}

/// A document row as a US Core DocumentReference.
fn map_document(row: &Row<'_>, req: &Request, out: &mut Fields) {
    out.set("status", "current");
    let category = row.text("category_name");
    let kind = match row.text("category_codes").and_then(loinc) {
        Some(code) => concept(coding(LOINC, code, category), category),
        None => concept(coding(DATA_ABSENT, "unknown", Some("Unknown")), category),
    };
    out.set("type", kind);
    out.list(
        "category",
        vec![concept(
            coding(DOC_CATEGORY, "clinical-note", Some("Clinical Note")),
            None,
        )],
    );
    subject(row, out);
    if let Some(created) = row.text("created").and_then(hearth_fhir::date::instant) {
        out.set("date", created.as_str());
    }
    if let Some(author) = row.text("author_uuid") {
        let name = display(row.text("author_fname"), row.text("author_lname"));
        out.list(
            "author",
            vec![reference("Practitioner", author, Some(name.as_str()))],
        );
    }
    out.text("description", row.text("name"));
    let ccd = row.text("category_codes").and_then(loinc) == Some(CCD_LOINC)
        && row.text("mimetype").is_some_and(|m| m.ends_with("xml"));
    let format = if ccd {
        coding(
            FORMAT,
            "urn:hl7-org:sdwg:ccda-structuredBody:2.1",
            Some("Documents following C-CDA constraints using a structured body"),
        )
    } else {
        coding(
            FORMAT,
            "urn:ihe:iti:xds:2017:mimeTypeSufficient",
            Some("mimeType Sufficient"),
        )
    };
    let mut content = Fields::new();
    content
        .set("attachment", attachment(row, req))
        .set("format", format);
    out.list("content", vec![content.end()]);
    let mut context = Fields::new();
    if let Some(encounter) = row.text("encounter_uuid") {
        context.list("encounter", vec![reference("Encounter", encounter, None)]);
    }
    if let Some(day) = row.text("docdate").filter(|d| d.len() >= 10) {
        let mut period = Fields::new();
        period.set("start", &day[..10]);
        context.object("period", period.end());
    }
    out.object("context", context.end());
}

/// A document row as a Media.
fn map_media(row: &Row<'_>, req: &Request, out: &mut Fields) {
    out.set("status", "completed");
    subject(row, out);
    if let Some(encounter) = row.text("encounter_uuid") {
        out.set("encounter", reference("Encounter", encounter, None));
    }
    if let Some(created) = row.text("created").and_then(hearth_fhir::date::instant) {
        out.set("createdDateTime", created.as_str());
    }
    out.set("content", attachment(row, req));
}

/// `GET /fhir/Binary/:id`: a document's bytes (`:id` its uuid or number), in the caller's
/// compartment; 404 otherwise.
fn binary(req: &Request) -> Result<Response> {
    let id = req.param("id")?;
    let not_found = || hearth_fhir::error(404, "not-found", &format!("Binary/{id} is not known"));
    let mut sql = String::from(
        "SELECT d.id, d.uuid, d.mimetype, d.hash, p.uuid AS patient_uuid \
         FROM documents d JOIN patient_data p ON p.pid = d.foreign_id WHERE d.deleted = 0 AND ",
    );
    let mut params = Vec::new();
    if hearth_sdk::request::is_uuid(id) {
        sql.push_str("d.uuid = $1");
        params.push(Value::from(id.to_ascii_lowercase()));
    } else if let Ok(number) = id.parse::<i64>() {
        sql.push_str("d.id = $1");
        params.push(Value::Integer(number));
    } else {
        return Err(not_found());
    }
    match hearth_fhir::compartment(req, "Binary") {
        None => {}
        Some(None) => return Err(not_found()),
        Some(Some(patient)) => {
            sql.push_str(" AND p.uuid = $2");
            params.push(Value::from(patient));
        }
    }
    let row = store::query_one(&sql, &params)?.ok_or_else(not_found)?;
    let document = row.int("id").unwrap_or_default();
    let bytes =
        documents::content(document, row.text("hash").unwrap_or(""))?.ok_or_else(not_found)?;
    let mimetype = row
        .text("mimetype")
        .filter(|m| !m.is_empty())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let wants_resource = req.header("accept").is_some_and(|accept| {
        accept.split(',').any(|a| {
            matches!(
                a.split(';').next().unwrap_or("").trim(),
                "application/fhir+json" | "application/json+fhir"
            )
        })
    });
    if wants_resource {
        let mut out = Fields::new();
        out.set("resourceType", "Binary")
            .text("id", row.text("uuid"))
            .set("contentType", mimetype.as_str())
            .set("data", documents::base64(&bytes).as_str());
        return Ok(hearth_fhir::answer(200, out.end()));
    }
    let digest = documents::repr_digest(&bytes);
    Ok(Response {
        status: 200,
        headers: Vec::new(),
        body: bytes,
    }
    .header("content-type", &mimetype)
    .header("cache-control", "private, no-store")
    .header("repr-digest", &digest)
    .header("x-content-type-options", "nosniff"))
}

/// The parameters `$docref` takes.
const DOCREF_PARAMS: &[&str] = &["patient", "start", "end", "type"];

/// `POST /fhir/DocumentReference/$docref?patient=…[&start=…&end=…&type=…]`: generates
/// the patient's CCD, stores it, and answers a searchset Bundle with its
/// DocumentReference.
fn docref(req: &Request) -> Result<Response> {
    let processing = |text: &str| hearth_fhir::error(400, "processing", text);
    let mut query = req.query_pairs().to_vec();
    if req.method() == Method::Post && !req.body().is_empty() {
        let form = req.header("content-type").is_some_and(|t| {
            t.trim_start()
                .starts_with("application/x-www-form-urlencoded")
        });
        if !form {
            return Err(hearth_fhir::error(
                415,
                "not-supported",
                "$docref takes its parameters in the query or an application/x-www-form-urlencoded body",
            ));
        }
        let body = std::str::from_utf8(req.body())
            .map_err(|_| processing("The form body is not UTF-8"))?;
        query.extend(hearth_fhir::form_pairs(body));
    }
    if let Some((key, _)) = query
        .iter()
        .find(|(k, _)| !DOCREF_PARAMS.contains(&k.as_str()))
    {
        return Err(processing(&format!("$docref has no parameter {key}")));
    }
    let value = |key: &str| -> Result<Option<String>> {
        let mut values = query.iter().filter(|(k, _)| k == key);
        let first = values.next().map(|(_, v)| v.trim().to_owned());
        if values.next().is_some() {
            return Err(processing(&format!("{key} may be given once")));
        }
        Ok(first.filter(|v| !v.is_empty()))
    };
    let asked =
        value("patient")?.map(|p| p.strip_prefix("Patient/").map(str::to_owned).unwrap_or(p));
    let patient = match (hearth_fhir::compartment(req, "DocumentReference"), asked) {
        (Some(None), _) => return Err(processing("The token is bound to no patient")),
        (Some(Some(own)), Some(asked)) if !asked.eq_ignore_ascii_case(&own) => {
            return Err(hearth_fhir::error(
                404,
                "not-found",
                &format!("Patient/{asked} is not known"),
            ));
        }
        (Some(Some(own)), _) => own,
        (None, Some(asked)) => asked,
        (None, None) => return Err(processing("$docref needs the patient parameter")),
    };
    if !hearth_sdk::request::is_uuid(&patient) {
        return Err(processing(&format!(
            "patient {patient} is not a Patient id"
        )));
    }
    if let Some(kind) = value("type")? {
        let code = kind.rsplit('|').next().unwrap_or("");
        let system_ok = !kind.contains('|') || kind.starts_with(&format!("{LOINC}|"));
        if code != CCD_LOINC || !system_ok {
            return Err(processing(&format!(
                "Only the CCD ({LOINC}|{CCD_LOINC}) can be generated, not {kind}"
            )));
        }
    }
    let day = |key: &str| -> Result<Option<String>> {
        match value(key)? {
            None => Ok(None),
            Some(text) => time::parse_date_or_datetime(&text)
                .map(|d| Some(d.date()))
                .ok_or_else(|| processing(&format!("{key} must be a date (YYYY-MM-DD): {text}"))),
        }
    };
    let (start, end) = (day("start")?, day("end")?);
    if let (Some(s), Some(e)) = (&start, &end)
        && s > e
    {
        return Err(processing("start must not be after end"));
    }
    let row = store::query_one(
        "SELECT pid FROM patient_data WHERE uuid = $1",
        params![patient.to_ascii_lowercase()],
    )?
    .ok_or_else(|| {
        hearth_fhir::error(404, "not-found", &format!("Patient/{patient} is not known"))
    })?;
    let pid = row.int("pid").unwrap_or_default();
    let now = time::now();
    let xml = ccd::generate(&ccd::Request {
        pid,
        start: start.as_deref(),
        end: end.as_deref(),
        now: &now.datetime(),
        document_id: &hearth_sdk::new_uuid(),
    })
    .map_err(ApiError::Internal)?;
    let stamp: String = now
        .datetime()
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    let (_, uuid) = documents::store(&documents::NewDocument {
        pid,
        category: documents::CCDA_CATEGORY,
        name: &format!("CCD-{pid}-{stamp}.xml"),
        mimetype: "text/xml",
        bytes: xml.as_bytes(),
        encounter: 0,
        owner: store::query_one(
            "SELECT id FROM users WHERE username = $1",
            params![req.caller().username.as_str()],
        )?
        .and_then(|r| r.int("id")),
        now: &now.datetime(),
    })?;
    let read = hearth_fhir::read(req, &DOCUMENT_REFERENCE, &uuid, map_document)?;
    let resource = Json::raw(String::from_utf8_lossy(&read.body).into_owned());
    let mut entry = Json::object();
    entry
        .field(
            "fullUrl",
            format!("{}/DocumentReference/{uuid}", req.base_url()),
        )
        .field("resource", resource)
        .field("search", Json::raw(r#"{"mode":"match"}"#));
    let mut entries = Json::array();
    entries.push(entry.end());
    let mut bundle = Json::object();
    bundle
        .field("resourceType", "Bundle")
        .field("type", "searchset")
        .field("total", 1i64)
        .field("entry", entries.end());
    Ok(hearth_fhir::answer(200, bundle.end()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loinc_codes_come_from_openemrs_code_lists() {
        assert_eq!(loinc("LOINC:34133-9"), Some("34133-9"));
        assert_eq!(loinc("SNOMED-CT:1; LOINC:11502-2"), Some("11502-2"));
        assert_eq!(loinc(""), None);
        assert!(MEDIA.only.unwrap().contains("'image/png'"));
    }
}
