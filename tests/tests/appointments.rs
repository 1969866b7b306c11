//! Appointments through the real server, on both databases: booking, reading, listing,
//! paging and deleting on the standard API (the patient in the path honoured), the
//! provider overlap rule (409, or allowed by the site's plugin setting), the portal's
//! routes for the caller's own appointments, FHIR `Appointment` read and search on the
//! same rows (validated with `fhir.resources`), scopes, ACLs, site isolation, nothing
//! written on a refused request, and the OpenEMR compatibility setting's answers.

use hearth_tests::fhir::{Documents, fhir, ids};
use hearth_tests::*;

const SCOPES: &str = "openid api:oemr api:fhir user/patient.crus user/facility.crus \
    user/practitioner.crus user/appointment.cruds user/Appointment.rs";

/// What the tests book with: an appointment of `provider` at `facility` on `day` at
/// `start` for `minutes`.
fn booking(provider: i64, facility: i64, day: &str, start: &str, minutes: i64) -> Value {
    json!({
        "pc_catid": "5", "pc_title": "Office Visit", "pc_duration": (minutes * 60).to_string(),
        "pc_hometext": "Follow-up", "pc_apptstatus": "-", "pc_eventDate": day,
        "pc_startTime": start, "pc_facility": facility.to_string(),
        "pc_billing_location": facility, "pc_aid": provider.to_string(),
    })
}

/// The rows every test needs on a site: a facility, a practitioner (a user with an NPI)
/// and two patients.
struct Clinic {
    facility: i64,
    fuuid: String,
    provider: i64,
    pruuid: String,
    pid_a: i64,
    puuid_a: String,
    pid_b: i64,
}

async fn clinic(app: &TestApp, site: &str, token: &str) -> Clinic {
    let facility = app
        .post(
            &app.api(site, "/api/facility"),
            token,
            json!({"name": "Main Clinic", "facility_npi": "1234567893"}),
        )
        .await;
    assert_eq!(facility.status, 201, "{}", facility.text);
    let practitioner = app
        .post(
            &app.api(site, "/api/practitioner"),
            token,
            json!({"fname": "Gregory", "lname": "House", "npi": "1234567890", "username": "ghouse"}),
        )
        .await;
    assert_eq!(practitioner.status, 201, "{}", practitioner.text);
    let (pid_a, puuid_a) = app.create_patient(site, token, "Ann", "Adams").await;
    let (pid_b, _) = app.create_patient(site, token, "Bob", "Baker").await;
    Clinic {
        facility: facility.json["data"]["id"].as_i64().expect("id"),
        fuuid: facility.json["data"]["uuid"].as_str().expect("uuid").into(),
        provider: practitioner.json["data"]["id"].as_i64().expect("id"),
        pruuid: practitioner.json["data"]["uuid"]
            .as_str()
            .expect("uuid")
            .into(),
        pid_a,
        puuid_a,
        pid_b,
    }
}

/// Books and answers (pc_eid, uuid); the booking must succeed.
async fn book(app: &TestApp, site: &str, token: &str, pid: i64, body: Value) -> (i64, String) {
    let reply = app
        .post(
            &app.api(site, &format!("/api/patient/{pid}/appointment")),
            token,
            body,
        )
        .await;
    assert_eq!(reply.status, 201, "booking: {}", reply.text);
    (
        reply.json["id"].as_i64().expect("id"),
        reply.json["uuid"].as_str().expect("uuid").to_owned(),
    )
}

async fn count(app: &TestApp, site: &str) -> i64 {
    app.rows(
        site,
        "SELECT COUNT(*) AS n FROM openemr_postcalendar_events",
    )
    .await[0]["n"]
        .as_i64()
        .expect("a count")
}

both! {
    async fn appointments_book_read_list_and_delete_with_the_path_patient_honoured(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let c = clinic(app, "default", &token).await;
        let url = |path: &str| app.api("default", path);
        let (pa, pb) = (c.pid_a, c.pid_b);

        // Booking: OpenEMR's fields, 201 with the pc_eid and the uuid.
        let (eid_a, uuid_a) = book(app, "default", &token, pa, booking(c.provider, c.facility, "2024-06-03", "09:30", 30)).await;
        let (eid_late, _) = book(app, "default", &token, pa, booking(c.provider, c.facility, "2024-06-04", "14:00", 15)).await;
        // The same provider's next slot starts where the first ends: no overlap.
        let (eid_b, uuid_b) = book(app, "default", &token, pb, booking(c.provider, c.facility, "2024-06-03", "10:00", 15)).await;
        // Without a provider nothing can overlap.
        let mut unassigned = booking(c.provider, c.facility, "2024-06-03", "09:30", 30);
        unassigned.as_object_mut().unwrap().remove("pc_aid");
        let (eid_free, _) = book(app, "default", &token, pb, unassigned).await;

        // Overlapping the provider's booking: 409, nothing written.
        let before = count(app, "default").await;
        for (start, minutes) in [("09:45", 10), ("09:00", 45), ("09:30", 30), ("09:59", 60)] {
            let reply = app.post(&url(&format!("/api/patient/{pb}/appointment")), &token, booking(c.provider, c.facility, "2024-06-03", start, minutes)).await;
            assert_eq!(reply.status, 409, "{start} for {minutes} min: {}", reply.text);
            assert_eq!(reply.json["error"], "conflict");
            assert!(reply.json["message"].as_str().unwrap().contains(&format!("appointment {eid_a}")) || reply.json["message"].as_str().unwrap().contains(&format!("appointment {eid_b}")), "{}", reply.text);
        }
        assert_eq!(count(app, "default").await, before, "a refused booking writes nothing");

        // OpenEMR's rules and Hearth's: a bare message map, 400, nothing written.
        let cases: Vec<(Value, &str, &str)> = vec![
            (json!({"pc_title": "Visit"}), "pc_hometext", "Required::NON_EXISTENT_KEY"),
            (json!({"pc_title": "V"}), "pc_title", "LengthBetween::TOO_SHORT"),
            (json!({"pc_startTime": "9:30"}), "pc_startTime", "Length::TOO_SHORT"),
            (json!({"pc_startTime": "25:00"}), "pc_startTime", "Callback::INVALID_VALUE"),
            (json!({"pc_eventDate": "06/03/2024"}), "pc_eventDate", "DateTime::INVALID_VALUE"),
            (json!({"pc_duration": "long"}), "pc_duration", "Numeric::NOT_NUMERIC"),
            (json!({"pc_startTime": "23:30", "pc_duration": "3600"}), "pc_duration", "Callback::INVALID_VALUE"),
            (json!({"pc_catid": "999"}), "pc_catid", "Callback::INVALID_VALUE"),
            (json!({"pc_facility": "999"}), "pc_facility", "Callback::INVALID_VALUE"),
            (json!({"pc_apptstatus": "nonsense"}), "pc_apptstatus", "Callback::INVALID_VALUE"),
            (json!({"pc_aid": "999"}), "pc_aid", "pc_aid"),
        ];
        for (change, field, rule) in cases {
            let mut body = booking(c.provider, c.facility, "2024-07-01", "08:00", 15);
            for (key, value) in change.as_object().unwrap() {
                body[key] = value.clone();
            }
            if field == "pc_hometext" {
                body.as_object_mut().unwrap().remove("pc_hometext");
            }
            let reply = app.post(&url(&format!("/api/patient/{pa}/appointment")), &token, body).await;
            assert_eq!(reply.status, 400, "{field}: {}", reply.text);
            assert!(reply.json[field][rule].is_string(), "{field} {rule}: {}", reply.text);
            assert!(reply.json.get("validationErrors").is_none(), "a bare map: {}", reply.text);
        }
        let reply = app.post(&url(&format!("/api/patient/{pa}/appointment")), &token, booking(c.provider, c.facility, "2024-07-01", "08:00", 15)).await;
        assert_eq!(reply.status, 201, "the same body without the faults books: {}", reply.text);
        let reply = app.post(&url("/api/patient/999999/appointment"), &token, booking(c.provider, c.facility, "2024-07-02", "08:00", 15)).await;
        assert_eq!(reply.status, 404, "{}", reply.text);
        let reply = app.send(reqwest::Method::POST, &url(&format!("/api/patient/{pa}/appointment")), Some(&token), None).await;
        assert_eq!(reply.status, 400, "no body: {}", reply.text);

        // Reading: the patient's list, one-element reads, every field OpenEMR answers.
        let reply = app.get(&url(&format!("/api/patient/{pa}/appointment")), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let list = reply.json.as_array().expect("a bare list").clone();
        assert_eq!(list.len(), 3);
        let first = &list[0];
        assert_eq!(first["pc_eid"], json!(eid_a), "day and start time order");
        assert_eq!(first["pc_uuid"], json!(uuid_a));
        assert_eq!(first["puuid"], json!(c.puuid_a));
        assert_eq!(first["pid"], json!(pa));
        assert_eq!(first["pc_pid"], json!(pa));
        assert_eq!(first["fname"], "Ann");
        assert_eq!(first["pce_aid_uuid"], json!(c.pruuid));
        assert_eq!(first["pce_aid_lname"], "House");
        assert_eq!(first["pce_aid_npi"], "1234567890");
        assert_eq!(first["pc_eventDate"], "2024-06-03");
        assert_eq!(first["pc_startTime"], "09:30:00");
        assert_eq!(first["pc_endTime"], "10:00:00");
        assert_eq!(first["facility_uuid"], json!(c.fuuid));
        assert_eq!(first["billing_location_name"], "Main Clinic");
        assert_eq!(first["pc_apptstatus"], "-");
        assert!(first["pc_time"].is_string() && first["pc_informant"].is_number(), "{first}");
        assert!(first.get("pc_hometext").is_none(), "lists leave out the comment, as OpenEMR's");
        for path in [format!("/api/appointment/{eid_a}"), format!("/api/patient/{pa}/appointment/{eid_a}")] {
            let reply = app.get(&url(&path), &token).await;
            assert_eq!(reply.status, 200, "{path}: {}", reply.text);
            assert_eq!(reply.json.as_array().map(Vec::len), Some(1), "{path}: a one-element list");
            assert_eq!(reply.json[0]["pc_duration"], 1800);
            assert_eq!(reply.json[0]["pc_hometext"], "Follow-up");
        }
        // The pid in the path is honoured (OpenEMR ignores it).
        let reply = app.get(&url(&format!("/api/patient/{pb}/appointment/{eid_a}")), &token).await;
        assert_eq!(reply.status, 404, "{}", reply.text);
        assert_eq!(app.get(&url("/api/appointment/999999"), &token).await.status, 404);
        assert_eq!(app.get(&url("/api/appointment/abc"), &token).await.status, 400);
        assert_eq!(app.get(&url("/api/patient/999999/appointment"), &token).await.status, 404);

        // Every patient's, sorted and paged.
        let all = app.get(&url("/api/appointment"), &token).await;
        assert_eq!(all.json.as_array().map(Vec::len), Some(5), "{}", all.text);
        let order = |reply: &Reply| reply.json.as_array().unwrap().iter().map(|a| a["pc_eid"].as_i64().unwrap()).collect::<Vec<_>>();
        let by_start = app.get(&url("/api/appointment?_sort=-pc_eventDate,pc_startTime&_limit=2"), &token).await;
        assert_eq!(order(&by_start)[0], order(&all)[4], "the latest day first: {}", by_start.text);
        let mut paged = Vec::new();
        for offset in 0..5 {
            paged.extend(order(&app.get(&url(&format!("/api/appointment?_sort=pc_title&_limit=1&_offset={offset}")), &token).await));
        }
        let mut sorted = paged.clone();
        sorted.sort();
        assert_eq!(sorted, { let mut all = order(&all); all.sort(); all }, "pages hold every row once");
        let reply = app.get(&url("/api/appointment?_sort=bogus"), &token).await;
        assert_eq!(reply.status, 400);
        assert!(reply.json["_sort"]["InArray::NOT_IN_ARRAY"].is_string(), "{}", reply.text);
        let reply = app.get(&url("/api/appointment?_limit=ten"), &token).await;
        assert_eq!(reply.status, 400);

        // Deleting: through another patient is a 404 and deletes nothing.
        let reply = app.delete(&url(&format!("/api/patient/{pb}/appointment/{eid_late}")), &token).await;
        assert_eq!(reply.status, 404, "{}", reply.text);
        assert_eq!(app.get(&url(&format!("/api/appointment/{eid_late}")), &token).await.status, 200);
        let reply = app.delete(&url(&format!("/api/patient/{pa}/appointment/{eid_late}")), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json, json!({"message": "record deleted"}));
        assert_eq!(app.get(&url(&format!("/api/appointment/{eid_late}")), &token).await.status, 404);
        assert_eq!(app.delete(&url(&format!("/api/patient/{pa}/appointment/{eid_late}")), &token).await.status, 404);
        // A slot freed by a delete can be booked again; a canceled booking frees its slot.
        let reply = app.delete(&url(&format!("/api/patient/{pb}/appointment/{eid_b}")), &token).await;
        assert_eq!(reply.status, 200);
        let (eid_again, _) = book(app, "default", &token, pa, booking(c.provider, c.facility, "2024-06-03", "10:00", 15)).await;
        let site = app.state.sites.get("default").await.unwrap();
        hearth::on_db!(&site.db, |pool| {
            sqlx::query("UPDATE openemr_postcalendar_events SET pc_apptstatus = 'x' WHERE pc_eid = $1")
                .bind(eid_again)
                .execute(pool)
                .await
                .unwrap();
        });
        book(app, "default", &token, pb, booking(c.provider, c.facility, "2024-06-03", "10:05", 10)).await;
        let _ = (uuid_b, eid_free);

        // The portal: the caller's own appointments only.
        let portal = app.patient_token("default", &c.puuid_a, "openid api:port patient/appointment.rs").await;
        let reply = app.get(&url("/portal/patient/appointment"), &portal).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let mine = reply.json.as_array().expect("a bare list");
        assert!(!mine.is_empty() && mine.iter().all(|a| a["puuid"] == json!(c.puuid_a)), "{}", reply.text);
        let reply = app.get(&url(&format!("/portal/patient/appointment/{uuid_a}")), &portal).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["pc_eid"], json!(eid_a));
        let others: Vec<Value> = app.get(&url("/api/appointment"), &token).await.json.as_array().unwrap().iter().filter(|a| a["pid"] == json!(pb)).cloned().collect();
        let other_uuid = others[0]["pc_uuid"].as_str().unwrap();
        let reply = app.get(&url(&format!("/portal/patient/appointment/{other_uuid}")), &portal).await;
        assert_eq!(reply.status, 404, "another patient's appointment: {}", reply.text);
        assert_eq!(app.get(&url("/portal/patient/appointment/not-a-uuid"), &portal).await.status, 400);

        // FHIR: the same rows as Appointments.
        let mut docs = Documents::default();
        let reply = app.get(&fhir(app, "default", &format!("/Appointment/{uuid_a}")), &token).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let a = docs.keep(&reply);
        assert_eq!(a["status"], "pending");
        assert_eq!(a["start"], "2024-06-03T09:30:00Z");
        assert_eq!(a["end"], "2024-06-03T10:00:00Z");
        assert_eq!(a["minutesDuration"], 30);
        assert_eq!(a["participant"][0]["actor"]["reference"], json!(format!("Patient/{}", c.puuid_a)));
        assert_eq!(a["participant"][1]["actor"]["reference"], json!(format!("Practitioner/{}", c.pruuid)));
        assert_eq!(a["participant"][2]["actor"]["reference"], json!(format!("Location/{}", c.fuuid)));
        let search = |query: String| {
            let token = token.clone();
            async move {
                let reply = app.get(&fhir(app, "default", &format!("/Appointment{query}")), &token).await;
                assert_eq!(reply.status, 200, "{query}: {}", reply.text);
                reply
            }
        };
        let reply = search(format!("?patient={}", c.puuid_a)).await;
        let bundle = docs.keep(&reply);
        assert_eq!(bundle["type"], "searchset");
        assert_eq!(bundle["total"], 3, "{}", reply.text);
        let reply = search(format!("?patient=Patient/{}&date=ge2024-06-03T09:45:00Z&date=lt2024-06-04", c.puuid_a)).await;
        assert_eq!(ids(&docs.keep(&reply)).len(), 1, "only the 10:00 booking: {}", reply.text);
        let reply = search(format!("?practitioner={}&_sort=-date", c.pruuid)).await;
        let bundle = docs.keep(&reply);
        assert_eq!(bundle["entry"].as_array().map(Vec::len), Some(4), "the provider's four: {}", reply.text);
        assert_eq!(bundle["entry"][0]["resource"]["start"], "2024-07-01T08:00:00Z");
        let reply = search(format!("?location={}&_count=2", c.fuuid)).await;
        assert_eq!(docs.keep(&reply)["entry"].as_array().map(Vec::len), Some(2));
        let reply = app.get(&fhir(app, "default", "/Appointment?date=tomorrow"), &token).await;
        assert_eq!(reply.status, 400, "{}", reply.text);
        assert_eq!(reply.json["resourceType"], "OperationOutcome");
        let reply = app.get(&fhir(app, "default", "/Appointment/90cde167-0000-4000-8000-00000000dead"), &token).await;
        assert_eq!(reply.status, 404);
        // A patient-bound FHIR token sees its own patient's appointments only.
        let bound = app.patient_token("default", &c.puuid_a, "openid api:fhir patient/Appointment.rs").await;
        let reply = app.get(&fhir(app, "default", "/Appointment"), &bound).await;
        let bundle = docs.keep(&reply);
        assert_eq!(bundle["total"], 3, "{}", reply.text);
        let reply = app.get(&fhir(app, "default", &format!("/Appointment/{other_uuid}")), &bound).await;
        assert_eq!(reply.status, 404, "{}", reply.text);
        docs.validate();
    }

    async fn appointments_need_their_scope_and_acl_and_stay_on_their_site(app) {
        let token = app.user_token("default", "admin", SCOPES).await;
        let c = clinic(app, "default", &token).await;
        let (eid, _) = book(app, "default", &token, c.pid_a, booking(c.provider, c.facility, "2024-06-03", "09:30", 30)).await;
        let before = count(app, "default").await;
        let url = |path: &str| app.api("default", path);
        let body = booking(c.provider, c.facility, "2024-08-01", "09:30", 30);
        let pa = c.pid_a;

        // Scopes: each route's letter.
        let routes = [
            (reqwest::Method::GET, format!("/api/patient/{pa}/appointment"), "appointment.s"),
            (reqwest::Method::POST, format!("/api/patient/{pa}/appointment"), "appointment.c"),
            (reqwest::Method::GET, "/api/appointment".to_owned(), "appointment.s"),
            (reqwest::Method::GET, format!("/api/appointment/{eid}"), "appointment.r"),
            (reqwest::Method::GET, format!("/api/patient/{pa}/appointment/{eid}"), "appointment.r"),
            (reqwest::Method::DELETE, format!("/api/patient/{pa}/appointment/{eid}"), "appointment.d"),
        ];
        for (method, path, scope) in &routes {
            let rest: String = "cruds".chars().filter(|c| !scope.ends_with(*c)).collect();
            let narrow = app.user_token("default", "admin", &format!("openid api:oemr user/appointment.{rest}")).await;
            let payload = (*method == reqwest::Method::POST).then(|| body.clone());
            let reply = app.send(method.clone(), &url(path), Some(&narrow), payload).await;
            assert_eq!(reply.status, 403, "{method} {path} without {scope}: {}", reply.text);
            assert!(reply.json["message"].as_str().unwrap_or_default().contains(&format!("user/{scope}")), "{}", reply.text);
        }
        // SMART v1 scopes are accepted as their v2 letters.
        let v1 = app.user_token("default", "admin", "openid api:oemr user/appointment.read").await;
        assert_eq!(app.get(&url("/api/appointment"), &v1).await.status, 200);
        // ACLs: accounting may read appointments but not book or delete them.
        app.user("default", "billing", "accounting").await;
        let accounting = app.user_token("default", "billing", SCOPES).await;
        assert_eq!(app.get(&url(&format!("/api/patient/{pa}/appointment")), &accounting).await.status, 200);
        let reply = app.post(&url(&format!("/api/patient/{pa}/appointment")), &accounting, body.clone()).await;
        assert_eq!(reply.status, 403, "{}", reply.text);
        let reply = app.delete(&url(&format!("/api/patient/{pa}/appointment/{eid}")), &accounting).await;
        assert_eq!(reply.status, 403, "{}", reply.text);
        // A physician (patients/* with write) books.
        app.user("default", "doc", "physician").await;
        let physician = app.user_token("default", "doc", SCOPES).await;
        book(app, "default", &physician, pa, booking(c.provider, c.facility, "2024-08-02", "09:30", 30)).await;
        assert_eq!(count(app, "default").await, before + 1, "only the physician's booking was written");
        // The portal needs the patient's scope; staff routes are not the patient's.
        let portal = app.patient_token("default", &c.puuid_a, "openid api:port patient/patient.rs").await;
        assert_eq!(app.get(&url("/portal/patient/appointment"), &portal).await.status, 403);

        // The other site has none of it, and the first site's token is not valid there.
        let second = app.user_token("second", "admin", SCOPES).await;
        let reply = app.get(&app.api("second", "/api/appointment"), &second).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.json, json!([]));
        assert_eq!(app.get(&app.api("second", &format!("/api/appointment/{eid}")), &second).await.status, 404);
        assert_eq!(app.delete(&app.api("second", &format!("/api/patient/{pa}/appointment/{eid}")), &second).await.status, 404);
        assert_eq!(app.get(&app.api("second", "/api/appointment"), &token).await.status, 401);
        assert_eq!(count(app, "second").await, 0);
        assert_eq!(count(app, "default").await, before + 1);
    }

    async fn an_openemr_compatible_site_answers_as_openemr(app) {
        let site = app.state.sites.get("second").await.unwrap();
        hearth::oauth::settings::set(&site, "api.compatibility", "openemr").await.unwrap();
        let token = app.user_token("second", "admin", SCOPES).await;
        let c = clinic(app, "second", &token).await;
        let url = |path: &str| app.api("second", path);
        let pa = c.pid_a;
        // An empty list is OpenEMR's empty 404.
        let reply = app.get(&url(&format!("/api/patient/{pa}/appointment")), &token).await;
        assert_eq!((reply.status, reply.text.as_str()), (404, ""));
        // Booking answers 200 `{"id"}`; a failed validation 200 with the bare map.
        let reply = app.post(&url(&format!("/api/patient/{pa}/appointment")), &token, booking(c.provider, c.facility, "2024-06-03", "09:30", 30)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let eid = reply.json["id"].as_i64().expect("id");
        let reply = app.post(&url(&format!("/api/patient/{pa}/appointment")), &token, json!({"pc_title": "Visit"})).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(reply.json["pc_hometext"]["Required::NON_EXISTENT_KEY"], "pc_hometext must be provided, but does not exist");
        // Not found: an empty 404.
        let reply = app.get(&url("/api/appointment/999999"), &token).await;
        assert_eq!((reply.status, reply.text.as_str()), (404, ""));
        // The overlap rule holds on this site too: it is not one of OpenEMR's answers
        // the compatibility setting restores.
        let reply = app.post(&url(&format!("/api/patient/{}/appointment", c.pid_b)), &token, booking(c.provider, c.facility, "2024-06-03", "09:45", 30)).await;
        assert_eq!(reply.status, 409, "{}", reply.text);
        let reply = app.delete(&url(&format!("/api/patient/{pa}/appointment/{eid}")), &token).await;
        assert_eq!(reply.json, json!({"message": "record deleted"}));
        assert_eq!(count(app, "second").await, 0, "nothing written by the refused requests");
    }
}

both! {
    async fn demo_seed_books_a_year_of_appointments_the_plugins_serve(app) {
        let site = app.state.sites.get("second").await.expect("the site");
        let options = hearth_demo::SeedOptions { patients: 60, seed: 7, batch: 25 };
        let summary = hearth::cli::seed_demo(&site, &options, |_, _| {}).await.expect("seeding");
        assert!(summary.appointments >= 60 && summary.appointments <= 240, "{summary:?}");
        assert_eq!(count(app, "second").await as u64, summary.appointments);
        let span = app.rows("second", "SELECT CAST(MIN(\"pc_eventDate\") AS TEXT) AS first, CAST(MAX(\"pc_eventDate\") AS TEXT) AS last, COUNT(DISTINCT pc_aid) AS providers FROM openemr_postcalendar_events").await;
        assert!(span[0]["first"].as_str().unwrap() >= "2024-12-30" && span[0]["last"].as_str().unwrap() <= "2025-12-30", "{span:?}");
        assert_eq!(span[0]["providers"].as_i64(), Some(summary.practitioners as i64));
        let overlaps = app.rows("second", "SELECT COUNT(*) AS n FROM openemr_postcalendar_events a JOIN openemr_postcalendar_events b \
            ON a.pc_aid = b.pc_aid AND a.\"pc_eventDate\" = b.\"pc_eventDate\" AND a.pc_eid < b.pc_eid \
            AND a.\"pc_startTime\" < b.\"pc_endTime\" AND b.\"pc_startTime\" < a.\"pc_endTime\"").await;
        assert_eq!(overlaps[0]["n"], json!(0), "no provider is booked twice at once");

        // Every seeded appointment of the first ten patients comes back through the API and
        // FHIR, and a booking after the seed continues the ids and honours the seeded slots.
        let token = app.user_token("second", "admin", SCOPES).await;
        let mut served = 0;
        for pid in 1..=10 {
            let reply = app.get(&app.api("second", &format!("/api/patient/{pid}/appointment")), &token).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            let list = reply.json.as_array().expect("a list");
            served += list.len();
            for a in list {
                assert!(a["pce_aid_npi"].is_string() && a["facility_name"].is_string() && a["puuid"].is_string(), "{a}");
            }
            if let Some(first) = list.first() {
                let puuid = first["puuid"].as_str().unwrap();
                let bundle = app.get(&fhir(app, "second", &format!("/Appointment?patient={puuid}")), &token).await;
                assert_eq!(bundle.json["total"].as_u64(), Some(list.len() as u64), "{}", bundle.text);
            }
        }
        let in_table = app.rows("second", "SELECT COUNT(*) AS n FROM openemr_postcalendar_events WHERE pc_pid <= 10").await;
        assert_eq!(in_table[0]["n"].as_u64(), Some(served as u64));
        let taken = app.rows("second", "SELECT pc_aid, CAST(\"pc_eventDate\" AS TEXT) AS day, \"pc_startTime\" AS start, pc_facility FROM openemr_postcalendar_events WHERE pc_apptstatus NOT IN ('x', '%') ORDER BY pc_eid LIMIT 1").await;
        let slot = &taken[0];
        let body = json!({"pc_catid": "5", "pc_title": "Office Visit", "pc_duration": "900", "pc_hometext": "Extra",
            "pc_apptstatus": "-", "pc_eventDate": slot["day"], "pc_startTime": &slot["start"].as_str().unwrap()[..5],
            "pc_facility": slot["pc_facility"], "pc_billing_location": slot["pc_facility"], "pc_aid": slot["pc_aid"]});
        let reply = app.post(&app.api("second", "/api/patient/1/appointment"), &token, body).await;
        assert_eq!(reply.status, 409, "a seeded slot is taken: {}", reply.text);
        assert_eq!(reply.json["error"], "conflict");
        let free = json!({"pc_catid": "5", "pc_title": "Office Visit", "pc_duration": "900", "pc_hometext": "Extra",
            "pc_apptstatus": "-", "pc_eventDate": "2030-01-02", "pc_startTime": "07:00",
            "pc_facility": slot["pc_facility"], "pc_billing_location": slot["pc_facility"], "pc_aid": slot["pc_aid"]});
        let reply = app.post(&app.api("second", "/api/patient/1/appointment"), &token, free).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        assert_eq!(reply.json["id"].as_u64(), Some(summary.appointments + 1), "ids continue the seeded ones");
    }
}

/// Site `second` allows one provider's bookings to overlap; `default` does not.
const OVERLAP_ON_SECOND: &str = r#"
[plugins.patient]
file = "patient.wasm"
version = "^1.0"

[plugins.facility]
file = "facility.wasm"
version = "^1.0"

[plugins.practitioner]
file = "practitioner.wasm"
version = "^1.0"

[plugins.appointment]
file = "appointment.wasm"
version = "^1.0"

[plugins.fhir-appointment]
file = "fhir-appointment.wasm"
version = "^1.0"

[sites."*"]
plugins = ["patient", "facility", "practitioner", "appointment", "fhir-appointment"]

[sites.second]
plugins = ["patient", "facility", "practitioner", "appointment", "fhir-appointment"]
config = { appointment = { allow_overlapping_bookings = "true" } }
"#;

both! {
    options = Options::with_plugins(OVERLAP_ON_SECOND);

    async fn a_site_may_allow_overlapping_bookings(app) {
        for (site, status) in [("default", 409), ("second", 201)] {
            let token = app.user_token(site, "admin", SCOPES).await;
            let c = clinic(app, site, &token).await;
            book(app, site, &token, c.pid_a, booking(c.provider, c.facility, "2024-06-03", "09:30", 30)).await;
            let reply = app.post(&app.api(site, &format!("/api/patient/{}/appointment", c.pid_b)), &token, booking(c.provider, c.facility, "2024-06-03", "09:40", 30)).await;
            assert_eq!(reply.status, status, "{site}: {}", reply.text);
            assert_eq!(count(app, site).await, if status == 201 { 2 } else { 1 }, "{site}");
        }
    }
}
