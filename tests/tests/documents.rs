//! Patient documents through the real server, on both databases: multipart upload with a
//! real multipart client (reqwest), the size limit and the type allow-list, listing by
//! category path, download byte for byte with the stored content type and the SHA-256
//! checked; FHIR DocumentReference (US Core), Binary and Media over the same rows, every
//! FHIR document validated with `fhir.resources`; `$docref` generating a C-CDA R2.1 CCD
//! checked with lxml (`tests/py/check_ccd.py`); scopes, ACLs, the patient compartment,
//! site isolation, and nothing written on a refused request.

use std::io::Write as _;
use std::process::{Command, Stdio};

use hearth_demo::files;
use hearth_tests::fhir::{Documents, fhir, ids};
use hearth_tests::*;
use reqwest::multipart::{Form, Part};

const SCOPES: &str = "openid api:oemr api:fhir user/patient.crus user/encounter.crus \
    user/vital.crus user/medical_problem.crus user/allergy.crus user/medication.crus \
    user/document.crs user/DocumentReference.rs user/Binary.read user/Media.rs \
    user/Provenance.rs user/DocumentReference.$docref";

const MEDICAL_RECORD: &str = "/Categories/Medical Record";
const PHOTOGRAPH: &str = "/Categories/Patient Information/Patient Photograph";
const LAB: &str = "/Categories/Lab Report";

async fn sql(app: &TestApp, site: &str, statement: String) {
    let site = app.state.sites.get(site).await.unwrap();
    hearth::on_db!(&site.db, |pool| {
        sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
            .execute(pool)
            .await
            .expect(&statement);
    });
}

async fn count(app: &TestApp, site: &str) -> (i64, i64, i64) {
    let rows = app
        .rows(
            site,
            "SELECT (SELECT COUNT(*) FROM documents) AS d, \
             (SELECT COUNT(*) FROM document_contents) AS c, \
             (SELECT COUNT(*) FROM categories_to_documents) AS l",
        )
        .await;
    let n = |k: &str| rows[0][k].as_i64().unwrap();
    (n("d"), n("c"), n("l"))
}

/// The URL of a patient's documents, with a query.
fn docs_url(app: &TestApp, site: &str, pid: i64, query: &str) -> String {
    app.api(site, &format!("/api/patient/{pid}/document{query}"))
}

fn path_query(path: &str) -> String {
    format!("?path={}", encode(&[("x", path)]).trim_start_matches("x="))
}

/// A file to upload: its name, declared type and bytes.
type File<'a> = (&'a str, &'a str, Vec<u8>);

/// Uploads `bytes` as the multipart field `field` with a file name and declared type.
async fn upload(
    app: &TestApp,
    url: &str,
    token: &str,
    field: &str,
    (name, mime, bytes): (&str, &str, Vec<u8>),
) -> Reply {
    let part = Part::bytes(bytes)
        .file_name(name.to_owned())
        .mime_str(mime)
        .unwrap();
    let form = Form::new()
        .text("note", "uploaded by the test")
        .part(field.to_owned(), part);
    let response = app
        .client
        .post(url)
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("the server answers");
    Reply::from(response).await
}

/// A GET answering the raw bytes and headers.
async fn fetch(
    app: &TestApp,
    url: &str,
    token: &str,
    accept: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = app.client.get(url).bearer_auth(token);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn lab_pdf() -> Vec<u8> {
    files::pdf(&["Lab report", "Glucose (fasting): 92 mg/dL", "HbA1c: 5.4 %"])
}

fn photo_png() -> Vec<u8> {
    files::png(24, 16, [200, 40, 40], [40, 40, 200])
}

both! {
    async fn documents_upload_list_and_download_byte_for_byte(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let (pid_a, _) = app.create_patient("default", &token, "Ann", "Adams").await;
        let (pid_b, _) = app.create_patient("default", &token, "Bob", "Baker").await;
        let note = b"Patient called: prefers morning appointments.\n".to_vec();
        let xml = b"<?xml version=\"1.0\"?><note>\xc3\xa9t\xc3\xa9</note>".to_vec();
        // (file, declared type, category path, the type stored)
        let uploads: Vec<(File<'_>, &str, &str)> = vec![
            (("labs.pdf", "application/pdf", lab_pdf()), LAB, "application/pdf"),
            (("ann.png", "image/png", photo_png()), PHOTOGRAPH, "image/png"),
            (("call.txt", "text/plain", note.clone()), MEDICAL_RECORD, "text/plain"),
            (("scan.pdf", "application/octet-stream", lab_pdf()), MEDICAL_RECORD, "application/pdf"),
            (("note.xml", "text/xml", xml.clone()), "Medical Record/", "text/xml"),
        ];
        for ((name, mime, bytes), path, _) in &uploads {
            let url = docs_url(app, "default", pid_a, &path_query(path));
            let reply = upload(app, &url, &token, "document", (name, mime, bytes.clone())).await;
            assert_eq!(reply.status, 200, "{name}: {}", reply.text);
            assert_eq!(reply.json, json!(true), "{name}: OpenEMR's answer");
            assert!(reply.header("location").unwrap().contains(&format!("/api/patient/{pid_a}/document/")), "{name}");
        }
        assert_eq!(count(app, "default").await, (5, 5, 5));

        // Listing by category, with OpenEMR's fields; the hash is the SHA-256 of the bytes.
        let reply = app.get(&docs_url(app, "default", pid_a, &path_query(MEDICAL_RECORD)), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let listed = reply.json.as_array().expect("a bare array").clone();
        let names: Vec<&str> = listed.iter().map(|d| d["filename"].as_str().unwrap()).collect();
        assert_eq!(names, ["call.txt", "scan.pdf", "note.xml"]);
        assert_eq!(listed[0]["hash"], json!(sha256(&note)));
        assert_eq!(listed[0]["mimetype"], "text/plain");
        assert_eq!(listed[1]["mimetype"], "application/pdf", "the bytes decide over octet-stream");
        assert!(listed[0]["docdate"].as_str().unwrap().len() == 10);
        for (query, expected) in [
            (format!("{}&_sort=-filename", path_query(MEDICAL_RECORD)), vec!["scan.pdf", "note.xml", "call.txt"]),
            (format!("{}&_limit=1&_offset=1", path_query(MEDICAL_RECORD)), vec!["scan.pdf"]),
            (path_query(LAB), vec!["labs.pdf"]),
            (path_query("Patient Information/Patient Photograph"), vec!["ann.png"]),
            (path_query("/Categories/Advance Directive"), vec![]),
        ] {
            let reply = app.get(&docs_url(app, "default", pid_a, &query), &token).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            let got: Vec<&str> = reply.json.as_array().unwrap().iter().map(|d| d["filename"].as_str().unwrap()).collect();
            assert_eq!(got, expected, "{query}");
        }
        let reply = app.get(&docs_url(app, "default", pid_b, &path_query(MEDICAL_RECORD)), &token).await;
        assert_eq!((reply.status, reply.json.clone()), (200, json!([])), "another patient's category is empty");

        // Download: the bytes unchanged, the stored type, as an attachment.
        let all = app.rows("default", "SELECT id, name FROM documents ORDER BY id").await;
        for (row, ((name, _, bytes), _, stored)) in all.iter().zip(&uploads) {
            assert_eq!(row["name"], json!(name));
            let id = row["id"].as_i64().unwrap();
            let (status, headers, body) = fetch(app, &docs_url(app, "default", pid_a, &format!("/{id}")), &token, None).await;
            assert_eq!(status, 200, "{name}");
            assert_eq!(&body, bytes, "{name}: byte for byte");
            assert_eq!(headers["content-type"], *stored, "{name}");
            assert_eq!(headers["content-disposition"].to_str().unwrap(), format!("attachment; filename=\"{name}\""));
            assert!(headers["repr-digest"].to_str().unwrap().starts_with("sha-256=:"));
            assert_eq!(headers["cache-control"], "private, no-store");
        }
        let first = all[0]["id"].as_i64().unwrap();
        for (url, status) in [
            (docs_url(app, "default", pid_b, &format!("/{first}")), 404),
            (docs_url(app, "default", pid_a, "/999999"), 404),
            (docs_url(app, "default", pid_a, "/abc"), 400),
            (docs_url(app, "default", 999_999, &format!("/{first}")), 404),
        ] {
            assert_eq!(app.get(&url, &token).await.status, status, "{url}");
        }

        // A document whose stored bytes changed is never served.
        let second = all[1]["id"].as_i64().unwrap();
        sql(app, "default", format!(
            "UPDATE document_contents SET data = (SELECT data FROM document_contents WHERE document_id = {second}) \
             WHERE document_id = {first}"
        )).await;
        let (status, _, body) = fetch(app, &docs_url(app, "default", pid_a, &format!("/{first}")), &token, None).await;
        assert_eq!(status, 500);
        assert!(!body.starts_with(b"\x89PNG"), "no bytes of the document leak");
    }

    async fn refused_uploads_write_nothing(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let (pid, puuid) = app.create_patient("default", &token, "Ann", "Adams").await;
        let encounter = app.post(&app.api("default", &format!("/api/patient/{puuid}/encounter")), &token,
            json!({"pc_catid": "5", "class_code": "AMB", "reason": "Checkup", "date": "2024-03-04 10:00:00"})).await;
        assert_eq!(encounter.status, 201, "{}", encounter.text);
        let eid = encounter.json["data"]["encounter"].as_i64().or_else(|| encounter.json["data"]["eid"].as_i64()).expect("eid");
        let ok = docs_url(app, "default", pid, &path_query(MEDICAL_RECORD));
        let big = {
            let mut bytes = lab_pdf();
            bytes.resize((1 << 20) + 1, b' ');
            bytes
        };
        let exe = b"MZ\x90\x00\x03\x00\x00\x00binary".to_vec();
        // (case, url, field, file, status, the field the error names)
        let cases: Vec<(&str, String, &str, File<'_>, u16, &str)> = vec![
            ("no path", docs_url(app, "default", pid, ""), "document", ("a.pdf", "application/pdf", lab_pdf()), 400, "path"),
            ("an unknown path", docs_url(app, "default", pid, &path_query("/Categories/Nope")), "document", ("a.pdf", "application/pdf", lab_pdf()), 400, "path"),
            ("another field", ok.clone(), "file", ("a.pdf", "application/pdf", lab_pdf()), 400, "document"),
            ("an empty file", ok.clone(), "document", ("a.pdf", "application/pdf", Vec::new()), 400, "document"),
            ("a type not allowed", ok.clone(), "document", ("a.exe", "application/x-msdownload", exe), 415, "document"),
            ("bytes contradicting the type", ok.clone(), "document", ("a.png", "image/png", lab_pdf()), 415, "document"),
            ("over the site's limit", ok.clone(), "document", ("big.pdf", "application/pdf", big), 413, "document"),
            ("an encounter of nobody", format!("{ok}&eid=99999"), "document", ("a.pdf", "application/pdf", lab_pdf()), 404, ""),
            ("a malformed encounter", format!("{ok}&eid=x"), "document", ("a.pdf", "application/pdf", lab_pdf()), 400, "eid"),
            ("an unknown patient", docs_url(app, "default", 99_999, &path_query(MEDICAL_RECORD)), "document", ("a.pdf", "application/pdf", lab_pdf()), 404, ""),
        ];
        for (case, url, field, file, status, named) in cases {
            let reply = upload(app, &url, &token, field, file).await;
            assert_eq!(reply.status, status, "{case}: {}", reply.text);
            if !named.is_empty() {
                assert!(reply.json[named].is_object(), "{case}: the bare map names {named}: {}", reply.text);
            }
            assert_eq!(count(app, "default").await, (0, 0, 0), "{case}: nothing written");
        }
        // Not multipart at all: 415. (A body over the host's `max_body_bytes` is the host's
        // 413 before any plugin runs, tested with the host.)
        let reply = app.post(&ok, &token, json!({"document": "x"})).await;
        assert_eq!(reply.status, 415, "{}", reply.text);
        // Scopes and ACLs.
        let read_only = app.user_token("default", "admin", "openid api:oemr user/document.rs").await;
        let reply = upload(app, &ok, &read_only, "document", ("a.pdf", "application/pdf", lab_pdf())).await;
        assert_eq!(reply.status, 403, "{}", reply.text);
        app.user("default", "frontdesk", "front_office").await;
        let front = app.user_token("default", "frontdesk", SCOPES).await;
        let reply = upload(app, &ok, &front, "document", ("a.pdf", "application/pdf", lab_pdf())).await;
        assert_eq!(reply.status, 403, "front office has no patients/docs: {}", reply.text);
        assert_eq!(app.get(&ok, &front).await.status, 403);
        assert_eq!(count(app, "default").await, (0, 0, 0));
        // With the encounter it belongs to, it is stored.
        let reply = upload(app, &format!("{ok}&eid={eid}"), &token, "document", ("visit.pdf", "application/pdf", lab_pdf())).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(app.rows("default", "SELECT encounter_id FROM documents").await[0]["encounter_id"], json!(eid));
    }

    async fn a_site_never_serves_another_sites_document(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let (pid, _) = app.create_patient("default", &token, "Ann", "Adams").await;
        let reply = upload(app, &docs_url(app, "default", pid, &path_query(LAB)), &token, "document", ("labs.pdf", "application/pdf", lab_pdf())).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let row = app.rows("default", "SELECT id, CAST(uuid AS TEXT) AS uuid FROM documents").await[0].clone();
        let (id, uuid) = (row["id"].as_i64().unwrap(), row["uuid"].as_str().unwrap().to_owned());
        // Site B has a patient with the same pid, and no documents.
        let second = app.user_token("second", "admin", SCOPES).await;
        let (pid_b, _) = app.create_patient("second", &second, "Zed", "Zimmer").await;
        assert_eq!(pid_b, pid);
        for url in [
            docs_url(app, "second", pid, &format!("/{id}")),
            fhir(app, "second", &format!("/Binary/{uuid}")),
            fhir(app, "second", &format!("/Binary/{id}")),
            fhir(app, "second", &format!("/DocumentReference/{uuid}")),
        ] {
            let (status, _, body) = fetch(app, &url, &second, None).await;
            assert_eq!(status, 404, "{url}");
            assert!(!body.starts_with(b"%PDF"), "{url}");
        }
        let reply = app.get(&docs_url(app, "second", pid, &path_query(LAB)), &second).await;
        assert_eq!((reply.status, reply.json.clone()), (200, json!([])));
        // A token of site A is no key to site B.
        assert_eq!(app.get(&docs_url(app, "second", pid, &format!("/{id}")), &token).await.status, 401);
    }

    async fn fhir_serves_document_references_binaries_and_media(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let (pid_a, puuid_a) = app.create_patient("default", &token, "Ann", "Adams").await;
        let (pid_b, puuid_b) = app.create_patient("default", &token, "Bob", "Baker").await;
        for (pid, file, path) in [
            (pid_a, ("labs.pdf", "application/pdf", lab_pdf()), LAB),
            (pid_a, ("ann.png", "image/png", photo_png()), PHOTOGRAPH),
            (pid_b, ("bob.png", "image/png", files::png(8, 8, [0, 0, 0], [255, 255, 255])), PHOTOGRAPH),
        ] {
            let reply = upload(app, &docs_url(app, "default", pid, &path_query(path)), &token, "document", file).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
        }
        let rows = app.rows("default", "SELECT id, CAST(uuid AS TEXT) AS uuid, name FROM documents ORDER BY id").await;
        let uuid = |i: usize| rows[i]["uuid"].as_str().unwrap().to_owned();
        let (labs, photo, bob) = (uuid(0), uuid(1), uuid(2));
        let mut docs = Documents::default();
        let get = |path: String, token: String| async move { app.get(&fhir(app, "default", &path), &token).await };

        let reply = get(format!("/DocumentReference/{labs}"), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let d = docs.keep(&reply);
        assert_eq!(d["status"], "current");
        assert_eq!(d["type"]["coding"][0], json!({"system": "http://loinc.org", "code": "11502-2", "display": "Lab Report"}));
        assert_eq!(d["category"][0]["coding"][0]["code"], "clinical-note");
        assert_eq!(d["subject"]["reference"], json!(format!("Patient/{puuid_a}")));
        let attachment = &d["content"][0]["attachment"];
        assert_eq!(attachment["contentType"], "application/pdf");
        assert_eq!(attachment["url"], json!(fhir(app, "default", &format!("/Binary/{labs}"))));
        assert_eq!(attachment["size"], json!(lab_pdf().len()));
        assert!(d["meta"]["profile"].as_array().unwrap().iter().any(|p| p == "http://hl7.org/fhir/us/core/StructureDefinition/us-core-documentreference|7.0.0"));

        for (query, expected) in [
            (format!("?patient={puuid_a}&_sort=date"), vec![labs.clone(), photo.clone()]),
            (format!("?patient=Patient/{puuid_b}"), vec![bob.clone()]),
            ("?type=http://loinc.org|11502-2".to_owned(), vec![labs.clone()]),
            ("?type=72170-4".to_owned(), vec![photo.clone(), bob.clone()]),
            ("?category=http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category|clinical-note&_count=1".to_owned(), vec![labs.clone()]),
            ("?date=ge2000-01-01&patient=".to_owned() + &puuid_b, vec![bob.clone()]),
            ("?date=lt2000-01-01".to_owned(), vec![]),
            (format!("?_id={photo}"), vec![photo.clone()]),
        ] {
            let reply = get(format!("/DocumentReference{query}"), token.clone()).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            assert_eq!(ids(&docs.keep(&reply)), expected, "{query}");
        }
        assert_eq!(get("/DocumentReference?date=someday".to_owned(), token.clone()).await.status, 400);
        assert_eq!(get("/DocumentReference/90cde167-0000-4000-8000-00000000dead".to_owned(), token.clone()).await.status, 404);
        let reply = get(format!("/DocumentReference?patient={puuid_a}&_revinclude=Provenance:target"), token.clone()).await;
        let bundle = docs.keep(&reply);
        let included = bundle["entry"].as_array().unwrap().iter().filter(|e| e["search"]["mode"] == "include").count();
        assert_eq!(included, 2, "{}", reply.text);

        // Binary: the bytes as stored, or the Binary resource.
        let (status, headers, body) = fetch(app, &fhir(app, "default", &format!("/Binary/{photo}")), &token, None).await;
        assert_eq!((status, body.clone()), (200, photo_png()));
        assert_eq!(headers["content-type"], "image/png");
        let (status, headers, body) = fetch(app, &fhir(app, "default", &format!("/Binary/{photo}")), &token, Some("application/fhir+json")).await;
        assert_eq!(status, 200);
        assert!(headers["content-type"].to_str().unwrap().starts_with("application/fhir+json"));
        let binary: Value = serde_json::from_slice(&body).unwrap();
        use base64::Engine as _;
        let data = base64::engine::general_purpose::STANDARD.decode(binary["data"].as_str().unwrap()).unwrap();
        assert_eq!(data, photo_png());
        assert_eq!(binary["contentType"], "image/png");
        docs.keep_value(binary);
        let numeric = rows[0]["id"].as_i64().unwrap();
        let (status, _, body) = fetch(app, &fhir(app, "default", &format!("/Binary/{numeric}")), &token, None).await;
        assert_eq!((status, body), (200, lab_pdf()), "a numeric id, as OpenEMR allows");
        assert_eq!(get("/Binary/nope".to_owned(), token.clone()).await.status, 404);

        // Media: the images only.
        for (query, expected) in [
            (format!("?patient={puuid_a}"), vec![photo.clone()]),
            ("?content-type=image/png".to_owned(), vec![photo.clone(), bob.clone()]),
            ("?title=bob".to_owned(), vec![bob.clone()]),
            ("?content-type=application/pdf".to_owned(), vec![]),
        ] {
            let reply = get(format!("/Media{query}"), token.clone()).await;
            assert_eq!(reply.status, 200, "{query}: {}", reply.text);
            assert_eq!(ids(&docs.keep(&reply)), expected, "{query}");
        }
        let reply = get(format!("/Media/{photo}"), token.clone()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let media = docs.keep(&reply);
        assert_eq!(media["status"], "completed");
        assert_eq!(media["content"]["contentType"], "image/png");
        assert_eq!(media["content"]["url"], json!(fhir(app, "default", &format!("/Binary/{photo}"))));
        assert_eq!(get(format!("/Media/{labs}"), token.clone()).await.status, 404, "a PDF is no Media");

        // The patient compartment: Bob sees only his own.
        let bound = app.patient_token("default", &puuid_b, "openid api:fhir patient/DocumentReference.rs patient/Binary.read patient/Media.rs").await;
        let reply = app.get(&fhir(app, "default", "/DocumentReference"), &bound).await;
        assert_eq!(ids(&docs.keep(&reply)), vec![bob.clone()], "{}", reply.text);
        assert_eq!(app.get(&fhir(app, "default", &format!("/DocumentReference/{labs}")), &bound).await.status, 404);
        let (status, _, body) = fetch(app, &fhir(app, "default", &format!("/Binary/{labs}")), &bound, None).await;
        assert_eq!(status, 404);
        assert!(!body.starts_with(b"%PDF"));
        let (status, _, _) = fetch(app, &fhir(app, "default", &format!("/Binary/{bob}")), &bound, None).await;
        assert_eq!(status, 200);
        let reply = app.get(&fhir(app, "default", "/Media"), &bound).await;
        assert_eq!(ids(&docs.keep(&reply)), vec![bob.clone()]);
        let none = app.user_token("default", "admin", "openid api:fhir user/Patient.rs").await;
        assert_eq!(app.get(&fhir(app, "default", "/DocumentReference"), &none).await.status, 403);
        assert_eq!(app.get(&fhir(app, "default", &format!("/Binary/{labs}")), &none).await.status, 403);
        docs.validate();
    }

    async fn docref_generates_a_ccd_of_the_chart(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let (pid, puuid) = app.create_patient("default", &token, "Ann", "Adams").await;
        let (_, other) = app.create_patient("default", &token, "Bob", "Baker").await;
        let post = |path: String, body: Value| {
            let token = token.clone();
            async move {
                let reply = app.post(&app.api("default", &path), &token, body).await;
                assert_eq!(reply.status, 201, "{path}: {}", reply.text);
                reply.json
            }
        };
        let encounter = post(format!("/api/patient/{puuid}/encounter"), json!({"pc_catid": "5", "class_code": "AMB", "reason": "Annual <physical> & labs", "date": "2024-03-04 10:00:00"})).await;
        let eid = encounter["data"]["encounter"].as_i64().or_else(|| encounter["data"]["eid"].as_i64()).expect("eid");
        post(format!("/api/patient/{pid}/encounter/{eid}/vital"), json!({"bps": "120", "bpd": "80", "weight": 150.5, "height": "66", "pulse": 70})).await;
        post(format!("/api/patient/{puuid}/medical_problem"), json!({"title": "Essential hypertension", "begdate": "2020-01-02", "diagnosis": "ICD10:I10"})).await;
        post(format!("/api/patient/{puuid}/allergy"), json!({"title": "Penicillin", "begdate": "2019-05-06 00:00:00"})).await;
        post(format!("/api/patient/{pid}/medication"), json!({"title": "Lisinopril 10 mg", "begdate": "2021-07-08", "diagnosis": "RXNORM:314076"})).await;
        sql(app, "default", format!(
            "INSERT INTO immunizations (uuid, patient_id, administered_date, cvx_code, lot_number, completion_status, create_date, update_date) \
             VALUES ('90cde167-0000-4000-8000-0000000000c1', {pid}, '2024-10-01 09:00:00', '140', 'FLU-22', 'Completed', '2024-10-01 09:05:00', '2024-10-01 09:05:00')"
        )).await;

        let url = |query: &str| fhir(app, "default", &format!("/DocumentReference/$docref{query}"));
        let reply = app.send(reqwest::Method::POST, &url(&format!("?patient={puuid}")), Some(&token), None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let mut docs = Documents::default();
        let bundle = docs.keep(&reply);
        assert_eq!(bundle["resourceType"], "Bundle");
        assert_eq!(bundle["entry"].as_array().unwrap().len(), 1);
        let reference = bundle["entry"][0]["resource"].clone();
        assert_eq!(reference["type"]["coding"][0]["code"], "34133-9");
        assert_eq!(reference["content"][0]["attachment"]["contentType"], "text/xml");
        assert_eq!(reference["content"][0]["format"]["code"], "urn:hl7-org:sdwg:ccda-structuredBody:2.1");
        let binary = reference["content"][0]["attachment"]["url"].as_str().unwrap().to_owned();
        let (status, headers, xml) = fetch(app, &binary, &token, None).await;
        assert_eq!(status, 200);
        assert_eq!(headers["content-type"], "text/xml");
        let summary = check_ccd(&xml, &["problems", "allergies", "medications", "immunizations", "vitals", "encounters"]);
        assert_eq!(summary["family"], "Adams");
        assert_eq!(summary["given"], json!(["Ann"]));
        for section in ["problems", "allergies", "medications", "immunizations", "vitals", "encounters"] {
            assert_eq!(summary["sections"][section], 1, "{section}: {summary}");
        }
        let text = String::from_utf8(xml.clone()).unwrap();
        assert!(text.contains("Annual &lt;physical&gt; &amp; labs"), "escaped by the XML writer");
        assert!(text.contains("code=\"I10\"") && text.contains("code=\"140\"") && text.contains("code=\"314076\""));
        // Filed as a document of the patient, in the CCDA category.
        let listed = app.get(&docs_url(app, "default", pid, &path_query("/Categories/CCDA")), &token).await;
        assert_eq!(listed.json.as_array().map(Vec::len), Some(1), "{}", listed.text);

        // A period leaves out what happened outside it; the sections stay, empty.
        let reply = app.send(reqwest::Method::POST, &url(&format!("?patient={puuid}&start=2025-01-01&end=2025-12-31&type=http://loinc.org|34133-9")), Some(&token), None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let later = docs.keep(&reply);
        let binary = later["entry"][0]["resource"]["content"][0]["attachment"]["url"].as_str().unwrap().to_owned();
        let (_, _, xml) = fetch(app, &binary, &token, None).await;
        let summary = check_ccd(&xml, &["problems", "encounters"]);
        assert_eq!(summary["sections"]["encounters"], 0);
        assert_eq!(summary["sections"]["problems"], 1);

        // Refusals: an OperationOutcome, nothing stored.
        let before = count(app, "default").await;
        for (query, status) in [
            ("".to_owned(), 400),
            (format!("?patient={puuid}&bogus=1"), 400),
            (format!("?patient={puuid}&type=http://loinc.org|11502-2"), 400),
            (format!("?patient={puuid}&start=someday"), 400),
            (format!("?patient={puuid}&start=2025-01-02&end=2025-01-01"), 400),
            ("?patient=90cde167-0000-4000-8000-00000000dead".to_owned(), 404),
            ("?patient=nope".to_owned(), 400),
        ] {
            let reply = app.send(reqwest::Method::POST, &url(&query), Some(&token), None).await;
            assert_eq!(reply.status, status, "{query}: {}", reply.text);
            assert_eq!(reply.json["resourceType"], "OperationOutcome", "{query}");
        }
        // A patient token reaches its own chart only: another patient is unknown to it.
        let bound = app.patient_token("default", &other, "openid api:fhir patient/DocumentReference.$docref patient/DocumentReference.rs").await;
        let reply = app.send(reqwest::Method::POST, &url(&format!("?patient={puuid}")), Some(&bound), None).await;
        assert_eq!(reply.status, 404, "{}", reply.text);
        assert_eq!(reply.json["resourceType"], "OperationOutcome");
        // Without the operation's scope a patient may not run it, nor create anything.
        let reader = app.patient_token("default", &other, "openid api:fhir patient/DocumentReference.rs").await;
        assert_eq!(app.send(reqwest::Method::POST, &url(""), Some(&reader), None).await.status, 403);
        let writer = app.patient_token("default", &other, "openid api:fhir patient/Observation.cruds").await;
        let vital = json!({"resourceType": "Observation", "status": "final"});
        assert_eq!(app.send(reqwest::Method::POST, &fhir(app, "default", "/Observation"), Some(&writer), Some(vital)).await.status, 403);
        let none = app.user_token("default", "admin", "openid api:fhir user/DocumentReference.rs").await;
        assert_eq!(app.send(reqwest::Method::POST, &url(&format!("?patient={puuid}")), Some(&none), None).await.status, 403);
        assert_eq!(count(app, "default").await, before, "nothing written by a refused $docref");
        // With it, the bound patient's own CCD (the patient parameter may be left out).
        let reply = app.send(reqwest::Method::POST, &url(""), Some(&bound), None).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let own = docs.keep(&reply);
        assert_eq!(own["entry"][0]["resource"]["subject"]["reference"], format!("Patient/{other}"));
        let (d, c, l) = before;
        assert_eq!(count(app, "default").await, (d + 1, c + 1, l + 1), "the patient's CCD is filed");
        docs.validate();
    }
}

both! {
    async fn seeded_documents_are_served_like_uploaded_ones(app) {
        let site = app.state.sites.get("default").await.expect("the site");
        let options = hearth_demo::SeedOptions { patients: 12, seed: 7, batch: 5 };
        let summary = hearth::cli::seed_demo(&site, &options, |_, _| {}).await.expect("seeding");
        assert!(summary.documents > 3, "{summary:?}");
        let token = app.user_token("default", "admin", SCOPES).await;
        let rows = app.rows("default", "SELECT d.id, d.foreign_id, d.mimetype, d.hash, c.name FROM documents d \
            JOIN categories_to_documents l ON l.document_id = d.id JOIN categories c ON c.id = l.category_id ORDER BY d.id").await;
        assert_eq!(rows.len() as u64, summary.documents);
        for row in &rows {
            let (id, pid) = (row["id"].as_i64().unwrap(), row["foreign_id"].as_i64().unwrap());
            let (status, headers, body) = fetch(app, &docs_url(app, "default", pid, &format!("/{id}")), &token, None).await;
            assert_eq!(status, 200, "{row}");
            assert_eq!(headers["content-type"], row["mimetype"].as_str().unwrap());
            assert_eq!(json!(sha256(&body)), row["hash"], "{row}");
            let magic: &[u8] = if row["mimetype"] == "image/png" { b"\x89PNG" } else { b"%PDF-1.4" };
            assert!(body.starts_with(magic), "{row}");
        }
        // Listed in their categories, and the next ids carry on after the seed's.
        let pid = rows[0]["foreign_id"].as_i64().unwrap();
        let path = format!("/Categories/{}", rows[0]["name"].as_str().unwrap());
        let path = if path.ends_with("Photograph") { PHOTOGRAPH.to_owned() } else { path };
        let listed = app.get(&docs_url(app, "default", pid, &path_query(&path)), &token).await;
        assert!(listed.json.as_array().is_some_and(|a| !a.is_empty()), "{}", listed.text);
        let reply = upload(app, &docs_url(app, "default", pid, &path_query(LAB)), &token, "document", ("new.pdf", "application/pdf", lab_pdf())).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let reply = app.get(&fhir(app, "default", "/Media?_count=50"), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
}

/// Runs `tests/py/check_ccd.py` (lxml) over a CCD; answers its summary.
fn check_ccd(xml: &[u8], sections: &[&str]) -> Value {
    let mut child = Command::new(python())
        .arg(workspace().join("tests/py/check_ccd.py"))
        .args(sections)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the CCD checker");
    child.stdin.take().unwrap().write_all(xml).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the CCD failed its check: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(xml)
    );
    serde_json::from_slice(&out.stdout).expect("the checker's summary")
}
