//! The clinical core plugins over HTTP, on both databases: one table of requests and
//! what each must answer, run in order against a running server (happy paths, every
//! validation rule, missing rows, another patient's rows in the path, missing scopes, the
//! other site), and `hearth demo seed` writing what it reports and the plugins serving it.

use hearth_tests::*;
use reqwest::Method;

/// What a case expects of the answer's JSON, at a JSON pointer.
#[derive(Debug, Clone)]
enum Expect {
    /// Equal to a value.
    Eq(String, Value),
    /// An array of this length.
    Len(String, usize),
    /// A non-empty string.
    Text(String),
    /// Absent.
    Absent(String),
}

/// Who sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// An admin of site `default` with every clinical scope.
    Admin,
    /// An admin of site `second` with every clinical scope.
    SecondAdmin,
    /// A front-office user of `default` with every scope (an ACL without clinical
    /// sections).
    FrontOffice,
    /// Patient A's portal token.
    PatientA,
}

/// One step of the table.
#[derive(Debug, Clone)]
enum Step {
    /// A request and what it must answer.
    Call {
        what: String,
        who: Who,
        method: Method,
        site: &'static str,
        path: String,
        body: Option<Value>,
        status: u16,
        expect: Vec<Expect>,
    },
    /// `SELECT COUNT(*) AS n …` on site `default` must be `n`.
    Count(&'static str, i64),
}

fn call(
    what: &str,
    method: Method,
    path: impl Into<String>,
    body: Option<Value>,
    status: u16,
) -> Step {
    Step::Call {
        what: what.to_owned(),
        who: Who::Admin,
        method,
        site: "default",
        path: path.into(),
        body,
        status,
        expect: Vec::new(),
    }
}

fn get(what: &str, path: impl Into<String>, status: u16) -> Step {
    call(what, Method::GET, path, None, status)
}
fn post(what: &str, path: impl Into<String>, body: Value, status: u16) -> Step {
    call(what, Method::POST, path, Some(body), status)
}
fn put(what: &str, path: impl Into<String>, body: Value, status: u16) -> Step {
    call(what, Method::PUT, path, Some(body), status)
}
fn delete(what: &str, path: impl Into<String>, status: u16) -> Step {
    call(what, Method::DELETE, path, None, status)
}

impl Step {
    fn expect(mut self, e: Expect) -> Step {
        if let Step::Call { expect, .. } = &mut self {
            expect.push(e);
        }
        self
    }
    fn eq(self, pointer: &str, value: Value) -> Step {
        self.expect(Expect::Eq(pointer.to_owned(), value))
    }
    fn len(self, pointer: &str, n: usize) -> Step {
        self.expect(Expect::Len(pointer.to_owned(), n))
    }
    fn text(self, pointer: &str) -> Step {
        self.expect(Expect::Text(pointer.to_owned()))
    }
    fn absent(self, pointer: &str) -> Step {
        self.expect(Expect::Absent(pointer.to_owned()))
    }
    /// A validation error `rule` on `field` with `message`.
    fn invalid(self, field: &str, rule: &str, message: &str) -> Step {
        self.eq(&format!("/validationErrors/{field}/{rule}"), json!(message))
    }
    /// A validation error in a bare message map, as vitals, SOAP notes and issues answer.
    fn bare_invalid(self, field: &str, rule: &str, message: &str) -> Step {
        self.eq(&format!("/{field}/{rule}"), json!(message))
            .absent("/validationErrors")
    }
    fn by(mut self, who: Who) -> Step {
        if let Step::Call { who: w, site, .. } = &mut self {
            *w = who;
            if who == Who::SecondAdmin {
                *site = "second";
            }
        }
        self
    }
}

/// Rows made through the API before the table runs.
struct Fixture {
    facility_id: i64,
    fuuid: String,
    pruuid: String,
    pid_a: i64,
    puuid_a: String,
    pid_b: i64,
    puuid_b: String,
    eid_a: i64,
    euuid_a: String,
    eid_b: i64,
    euuid_b: String,
    vid_a: i64,
    sid_a: i64,
    muuid_a: String,
    muuid_b: String,
    auuid_a: String,
    auuid_b: String,
    medication_a: i64,
    medication_b: i64,
    surgery_a: i64,
    dental_a: i64,
}

const MISSING_UUID: &str = "01a22501-0000-4000-8000-00000000dead";

async fn created(app: &TestApp, token: &str, path: &str, body: Value) -> Value {
    let reply = app.post(&app.api("default", path), token, body).await;
    assert_eq!(reply.status, 201, "POST {path}: {}", reply.text);
    // The envelope's `data`, or the bare payload of vitals, SOAP notes and issues.
    match reply.json.get("data") {
        Some(data) => data.clone(),
        None => reply.json.clone(),
    }
}

fn text_of(value: &Value) -> String {
    value.as_str().expect("a string").to_owned()
}

impl Fixture {
    async fn build(app: &TestApp, token: &str) -> Fixture {
        let facility = created(
            app,
            token,
            "/api/facility",
            json!({"name": "Springfield Clinic", "facility_npi": "1234567890", "city": "Springfield"}),
        )
        .await;
        let practitioner = created(
            app,
            token,
            "/api/practitioner",
            json!({"fname": "Gregory", "lname": "House", "npi": "1122334455", "facility_id": facility["id"], "username": "ghouse"}),
        )
        .await;
        let (pid_a, puuid_a) = app.create_patient("default", token, "Ann", "Adams").await;
        let (pid_b, puuid_b) = app.create_patient("default", token, "Bob", "Baker").await;
        let encounter = |puuid: &str| {
            let path = format!("/api/patient/{puuid}/encounter");
            let body = json!({"pc_catid": "5", "class_code": "AMB", "reason": "Checkup", "date": "2024-03-04 10:00:00",
                              "facility_id": facility["id"], "provider_id": practitioner["id"]});
            async move { created(app, token, &path, body).await }
        };
        let enc_a = encounter(&puuid_a).await;
        let enc_b = encounter(&puuid_b).await;
        let eid_a = enc_a["eid"].as_i64().expect("eid");
        let eid_b = enc_b["eid"].as_i64().expect("eid");
        let vital = created(
            app,
            token,
            &format!("/api/patient/{pid_a}/encounter/{eid_a}/vital"),
            json!({"bps": "120", "bpd": "80", "weight": 150.5, "height": "66", "pulse": 70, "note": "seated"}),
        )
        .await;
        let soap = created(
            app,
            token,
            &format!("/api/patient/{pid_a}/encounter/{eid_a}/soap_note"),
            json!({"subjective": "Feels fine", "plan": "Return in a year"}),
        )
        .await;
        let problem = |puuid: &str, title: &str| {
            let path = format!("/api/patient/{puuid}/medical_problem");
            let body = json!({"title": title, "begdate": "2020-01-02", "diagnosis": "ICD10:I10"});
            async move { created(app, token, &path, body).await }
        };
        let allergy = |puuid: &str, title: &str| {
            let path = format!("/api/patient/{puuid}/allergy");
            let body = json!({"title": title, "begdate": "2019-05-06 00:00:00"});
            async move { created(app, token, &path, body).await }
        };
        let issue = |pid: i64, kind: &str, title: &str| {
            let path = format!("/api/patient/{pid}/{kind}");
            let body = json!({"title": title, "begdate": "2021-07-08"});
            async move {
                created(app, token, &path, body).await["id"]
                    .as_i64()
                    .expect("id")
            }
        };
        Fixture {
            facility_id: facility["id"].as_i64().expect("id"),
            fuuid: text_of(&facility["uuid"]),
            pruuid: text_of(&practitioner["uuid"]),
            pid_a,
            puuid_a: puuid_a.clone(),
            pid_b,
            puuid_b: puuid_b.clone(),
            eid_a,
            euuid_a: text_of(&enc_a["euuid"]),
            eid_b,
            euuid_b: text_of(&enc_b["euuid"]),
            vid_a: vital["vid"].as_i64().expect("vid"),
            sid_a: soap["sid"].as_i64().expect("sid"),
            muuid_a: text_of(&problem(&puuid_a, "Hypertension").await["uuid"]),
            muuid_b: text_of(&problem(&puuid_b, "Asthma").await["uuid"]),
            auuid_a: text_of(&allergy(&puuid_a, "Penicillin").await["uuid"]),
            auuid_b: text_of(&allergy(&puuid_b, "Peanuts").await["uuid"]),
            medication_a: issue(pid_a, "medication", "Lisinopril").await,
            medication_b: issue(pid_b, "medication", "Metformin").await,
            surgery_a: issue(pid_a, "surgery", "Appendectomy").await,
            dental_a: issue(pid_a, "dental_issue", "Gingivitis").await,
        }
    }
}

/// Every clinical route: (method, path, scope it needs), for the scope and site checks.
fn routes(f: &Fixture) -> Vec<(Method, String, &'static str)> {
    let (pa, puuid, euuid, eid) = (f.pid_a, &f.puuid_a, &f.euuid_a, f.eid_a);
    let mut routes = vec![
        (
            Method::GET,
            format!("/api/patient/{puuid}/encounter"),
            "encounter.s",
        ),
        (
            Method::POST,
            format!("/api/patient/{puuid}/encounter"),
            "encounter.c",
        ),
        (
            Method::GET,
            format!("/api/patient/{puuid}/encounter/{euuid}"),
            "encounter.r",
        ),
        (
            Method::PUT,
            format!("/api/patient/{puuid}/encounter/{euuid}"),
            "encounter.u",
        ),
        (
            Method::GET,
            format!("/api/patient/{pa}/encounter/{eid}/vital"),
            "vital.s",
        ),
        (
            Method::POST,
            format!("/api/patient/{pa}/encounter/{eid}/vital"),
            "vital.c",
        ),
        (
            Method::GET,
            format!("/api/patient/{pa}/encounter/{eid}/vital/{}", f.vid_a),
            "vital.r",
        ),
        (
            Method::PUT,
            format!("/api/patient/{pa}/encounter/{eid}/vital/{}", f.vid_a),
            "vital.u",
        ),
        (
            Method::GET,
            format!("/api/patient/{pa}/encounter/{eid}/soap_note"),
            "soap_note.s",
        ),
        (
            Method::POST,
            format!("/api/patient/{pa}/encounter/{eid}/soap_note"),
            "soap_note.c",
        ),
        (
            Method::GET,
            format!("/api/patient/{pa}/encounter/{eid}/soap_note/{}", f.sid_a),
            "soap_note.r",
        ),
        (
            Method::PUT,
            format!("/api/patient/{pa}/encounter/{eid}/soap_note/{}", f.sid_a),
            "soap_note.u",
        ),
        (Method::GET, "/api/practitioner".into(), "practitioner.s"),
        (Method::POST, "/api/practitioner".into(), "practitioner.c"),
        (
            Method::GET,
            format!("/api/practitioner/{}", f.pruuid),
            "practitioner.r",
        ),
        (
            Method::PUT,
            format!("/api/practitioner/{}", f.pruuid),
            "practitioner.u",
        ),
        (Method::GET, "/api/facility".into(), "facility.s"),
        (Method::POST, "/api/facility".into(), "facility.c"),
        (
            Method::GET,
            format!("/api/facility/{}", f.fuuid),
            "facility.r",
        ),
        (
            Method::PUT,
            format!("/api/facility/{}", f.fuuid),
            "facility.u",
        ),
    ];
    for (kind, uuid) in [("medical_problem", &f.muuid_a), ("allergy", &f.auuid_a)] {
        let scope = |letter: &str| -> &'static str {
            match (kind, letter) {
                ("medical_problem", "s") => "medical_problem.s",
                ("medical_problem", "r") => "medical_problem.r",
                ("medical_problem", "c") => "medical_problem.c",
                ("medical_problem", "u") => "medical_problem.u",
                ("medical_problem", _) => "medical_problem.d",
                (_, "s") => "allergy.s",
                (_, "r") => "allergy.r",
                (_, "c") => "allergy.c",
                (_, "u") => "allergy.u",
                _ => "allergy.d",
            }
        };
        routes.extend([
            (Method::GET, format!("/api/{kind}"), scope("s")),
            (Method::GET, format!("/api/{kind}/{uuid}"), scope("r")),
            (
                Method::GET,
                format!("/api/patient/{puuid}/{kind}"),
                scope("s"),
            ),
            (
                Method::POST,
                format!("/api/patient/{puuid}/{kind}"),
                scope("c"),
            ),
            (
                Method::GET,
                format!("/api/patient/{puuid}/{kind}/{uuid}"),
                scope("r"),
            ),
            (
                Method::PUT,
                format!("/api/patient/{puuid}/{kind}/{uuid}"),
                scope("u"),
            ),
            (
                Method::DELETE,
                format!("/api/patient/{puuid}/{kind}/{uuid}"),
                scope("d"),
            ),
        ]);
    }
    for (kind, id, scopes) in [
        (
            "medication",
            f.medication_a,
            [
                "medication.s",
                "medication.c",
                "medication.r",
                "medication.u",
                "medication.d",
            ],
        ),
        (
            "surgery",
            f.surgery_a,
            [
                "surgery.s",
                "surgery.c",
                "surgery.r",
                "surgery.u",
                "surgery.d",
            ],
        ),
        (
            "dental_issue",
            f.dental_a,
            [
                "dental_issue.s",
                "dental_issue.c",
                "dental_issue.r",
                "dental_issue.u",
                "dental_issue.d",
            ],
        ),
    ] {
        routes.extend([
            (Method::GET, format!("/api/patient/{pa}/{kind}"), scopes[0]),
            (Method::POST, format!("/api/patient/{pa}/{kind}"), scopes[1]),
            (
                Method::GET,
                format!("/api/patient/{pa}/{kind}/{id}"),
                scopes[2],
            ),
            (
                Method::PUT,
                format!("/api/patient/{pa}/{kind}/{id}"),
                scopes[3],
            ),
            (
                Method::DELETE,
                format!("/api/patient/{pa}/{kind}/{id}"),
                scopes[4],
            ),
        ]);
    }
    routes
}

/// The table: every route's happy path, rules, missing rows and wrong patients, in order.
fn table(f: &Fixture) -> Vec<Step> {
    let (pa, pb, puuid_a, puuid_b) = (f.pid_a, f.pid_b, f.puuid_a.as_str(), f.puuid_b.as_str());
    let (eid_a, eid_b, euuid_a, euuid_b) =
        (f.eid_a, f.eid_b, f.euuid_a.as_str(), f.euuid_b.as_str());
    let enc = |puuid: &str| format!("/api/patient/{puuid}/encounter");
    let vitals = |pid: i64, eid: i64| format!("/api/patient/{pid}/encounter/{eid}/vital");
    let notes = |pid: i64, eid: i64| format!("/api/patient/{pid}/encounter/{eid}/soap_note");
    let missing = MISSING_UUID;
    let mut t = vec![
        // ---- Encounters
        get("encounters of a patient", enc(puuid_a), 200)
            .len("/data", 1)
            .eq("/data/0/euuid", json!(euuid_a))
            .eq("/data/0/eid", json!(eid_a))
            .eq("/data/0/puuid", json!(puuid_a))
            .eq("/data/0/facility_name", json!("Springfield Clinic"))
            .eq("/data/0/class_title", json!("ambulatory"))
            .eq("/data/0/pc_catname", json!("Office Visit"))
            .eq("/data/0/date", json!("2024-03-04 10:00:00"))
            .text("/links/first"),
        get("one encounter", format!("{}/{euuid_a}", enc(puuid_a)), 200)
            .eq("/data/uuid", json!(euuid_a))
            .eq("/data/reason", json!("Checkup"))
            .eq("/data/provider_uuid", json!(f.pruuid))
            .eq("/data/facility_uuid", json!(f.fuuid)),
        post("an encounter with a date only", enc(puuid_a), json!({"pc_catid": 9, "class_code": "VR", "date": "2024-05-06"}), 201)
            .eq("/data/date", json!("2024-05-06 00:00:00"))
            .eq("/data/class_code", json!("VR"))
            .text("/data/uuid")
            .eq("/data/pid", json!(pa)),
        get("encounters are newest first", enc(puuid_a), 200)
            .len("/data", 2)
            .eq("/data/1/euuid", json!(euuid_a)),
        get("encounters page", format!("{}?_limit=1&_offset=1", enc(puuid_a)), 200)
            .len("/data", 1)
            .eq("/data/0/euuid", json!(euuid_a)),
        get("a bad _limit", format!("{}?_limit=many", enc(puuid_a)), 400)
            .invalid("_limit", "Numeric::NOT_NUMERIC", "_limit must be numeric: a whole number, 0 or more"),
        post("an encounter without category or class", enc(puuid_a), json!({"reason": "x"}), 400)
            .invalid("pc_catid", "Required::NON_EXISTENT_KEY", "pc_catid must be provided, but does not exist")
            .invalid("class_code", "Required::NON_EXISTENT_KEY", "class_code must be provided, but does not exist"),
        post("an encounter of an unknown class", enc(puuid_a), json!({"pc_catid": 5, "class_code": "NOPE"}), 400)
            .invalid("class_code", "Callback::INVALID_VALUE", "class_code is invalid"),
        post("an encounter at a missing facility", enc(puuid_a),
             json!({"pc_catid": 5, "class_code": "AMB", "facility_id": 999, "provider_id": "998", "supervisor_id": 0, "date": "2024-02-30"}), 400)
            .invalid("facility_id", "Callback::INVALID_VALUE", "facility_id is invalid")
            .invalid("provider_id", "Callback::INVALID_VALUE", "provider_id is invalid")
            .invalid("date", "DateTime::INVALID_VALUE", "date must be a valid date")
            .absent("/validationErrors/supervisor_id"),
        post("an encounter with a non-numeric reference", enc(puuid_a), json!({"pc_catid": 5, "class_code": "AMB", "billing_facility": "abc"}), 400)
            .invalid("billing_facility", "Numeric::NOT_NUMERIC", "billing_facility must be numeric"),
        post("a body that is not an object", enc(puuid_a), json!([1]), 400)
            .invalid("body", "Json::NOT_AN_OBJECT", "The request body must be a JSON object"),
        Step::Count("SELECT COUNT(*) AS n FROM form_encounter", 3),
        post("an encounter for a missing patient", enc(missing), json!({"pc_catid": 5, "class_code": "AMB"}), 404).eq("/data", json!([])),
        Step::Count("SELECT COUNT(*) AS n FROM form_encounter", 3),
        Step::Count("SELECT COUNT(*) AS n FROM forms WHERE formdir = 'newpatient'", 3),
        get("encounters of a missing patient", enc(missing), 404).eq("/data", json!([])),
        get("a malformed patient uuid", "/api/patient/not-a-uuid/encounter", 400)
            .text("/validationErrors/puuid/Uuid::INVALID_UUID"),
        get("another patient's encounter", format!("{}/{euuid_b}", enc(puuid_a)), 404).eq("/data", json!([])),
        get("a missing encounter", format!("{}/{missing}", enc(puuid_a)), 404),
        put("an encounter update", format!("{}/{euuid_a}", enc(puuid_a)), json!({"reason": "Follow-up", "date": "2024-03-05"}), 200)
            .eq("/data/reason", json!("Follow-up"))
            .eq("/data/date", json!("2024-03-05 00:00:00"))
            .eq("/data/class_code", json!("AMB")),
        put("an encounter update breaking a rule", format!("{}/{euuid_a}", enc(puuid_a)), json!({"class_code": "NOPE", "reason": "changed"}), 400)
            .invalid("class_code", "Callback::INVALID_VALUE", "class_code is invalid"),
        put("another patient's encounter update", format!("{}/{euuid_b}", enc(puuid_a)), json!({"reason": "Hijack"}), 404),
        get("the failed updates changed nothing", format!("{}/{euuid_b}", enc(puuid_b)), 200).eq("/data/reason", json!("Checkup")),
        get("the failed update changed nothing", format!("{}/{euuid_a}", enc(puuid_a)), 200).eq("/data/reason", json!("Follow-up")),
        get("the portal's own encounters", "/portal/patient/encounter", 200).by(Who::PatientA).len("/data", 2),
        get("the portal's own encounter", format!("/portal/patient/encounter/{euuid_a}"), 200)
            .by(Who::PatientA)
            .eq("/data/euuid", json!(euuid_a)),
        get("the portal never shows another patient's encounter", format!("/portal/patient/encounter/{euuid_b}"), 404).by(Who::PatientA),
        get("a patient token cannot use the staff API", enc(puuid_a), 403).by(Who::PatientA),
        post("a front-office user cannot write encounters", enc(puuid_a), json!({"pc_catid": 5, "class_code": "AMB"}), 403).by(Who::FrontOffice),
        // ---- Vitals
        get("vitals of an encounter", vitals(pa, eid_a), 200)
            .len("", 1)
            .eq("/0/id", json!(f.vid_a))
            .eq("/0/bps", json!("120"))
            .eq("/0/weight", json!(150.5))
            .eq("/0/weight_unit", json!("lb"))
            .eq("/0/eid", json!(eid_a)),
        get("one vital", format!("{}/{}", vitals(pa, eid_a), f.vid_a), 200)
            .eq("/pulse", json!(70))
            .eq("/note", json!("seated"))
            .text("/uuid"),
        post("vitals", vitals(pa, eid_a), json!({"weight": "151", "temperature": 98.6, "date": "2024-03-04"}), 201)
            .text("/vid")
            .text("/fid"),
        post("vitals that are not numbers", vitals(pa, eid_a), json!({"weight": "heavy", "bps": "high", "note": "x".repeat(256)}), 400)
            .bare_invalid("weight", "Numeric::NOT_NUMERIC", "weight must be numeric")
            .bare_invalid("bps", "Numeric::NOT_NUMERIC", "bps must be numeric")
            .bare_invalid("note", "LengthBetween::TOO_LONG", "note must be 255 characters or shorter"),
        post("vitals for another patient's encounter", vitals(pa, eid_b), json!({"weight": 150}), 404),
        post("vitals for a missing patient", vitals(999_999, eid_a), json!({"weight": 150}), 404),
        Step::Count("SELECT COUNT(*) AS n FROM form_vitals", 2),
        Step::Count("SELECT COUNT(*) AS n FROM forms WHERE formdir = 'vitals'", 2),
        get("vitals of another patient's encounter", vitals(pa, eid_b), 404),
        get("an empty vitals list", vitals(pb, eid_b), 200).eq("", json!([])),
        get("a vital of another encounter", format!("{}/{}", vitals(pb, eid_b), f.vid_a), 404),
        get("a non-numeric vital id", format!("{}/abc", vitals(pa, eid_a)), 400),
        put("a vital update", format!("{}/{}", vitals(pa, eid_a), f.vid_a), json!({"weight": 149}), 200).eq("/vid", json!(f.vid_a)),
        put("a vital update breaking a rule", format!("{}/{}", vitals(pa, eid_a), f.vid_a), json!({"pulse": "fast"}), 400)
            .bare_invalid("pulse", "Numeric::NOT_NUMERIC", "pulse must be numeric"),
        put("a vital update through another patient", format!("{}/{}", vitals(pb, eid_b), f.vid_a), json!({"weight": 1}), 404),
        get("the vital kept its values", format!("{}/{}", vitals(pa, eid_a), f.vid_a), 200)
            .eq("/weight", json!(149))
            .eq("/pulse", json!(70)),
        // ---- SOAP notes
        get("SOAP notes of an encounter", notes(pa, eid_a), 200).len("", 1).eq("/0/subjective", json!("Feels fine")),
        get("one SOAP note", format!("{}/{}", notes(pa, eid_a), f.sid_a), 200).eq("/plan", json!("Return in a year")).text("/uuid"),
        post("a SOAP note", notes(pa, eid_a), json!({"assessment": "Well"}), 201).text("/sid").text("/fid"),
        post("a SOAP note with a too short part", notes(pa, eid_a), json!({"subjective": "x", "objective": ""}), 400)
            .bare_invalid("subjective", "LengthBetween::TOO_SHORT", "subjective must be 2 characters or longer"),
        post("a SOAP note for another patient's encounter", notes(pa, eid_b), json!({"plan": "None"}), 404),
        Step::Count("SELECT COUNT(*) AS n FROM form_soap", 2),
        put("a SOAP note update", format!("{}/{}", notes(pa, eid_a), f.sid_a), json!({"objective": "Clear lungs"}), 200).eq("/sid", json!(f.sid_a)),
        put("a SOAP note update through another patient", format!("{}/{}", notes(pb, eid_b), f.sid_a), json!({"plan": "Hijack"}), 404),
        put("a SOAP note update breaking a rule", format!("{}/{}", notes(pa, eid_a), f.sid_a), json!({"plan": "x"}), 400)
            .bare_invalid("plan", "LengthBetween::TOO_SHORT", "plan must be 2 characters or longer"),
        get("the SOAP note kept its values", format!("{}/{}", notes(pa, eid_a), f.sid_a), 200)
            .eq("/objective", json!("Clear lungs"))
            .eq("/plan", json!("Return in a year")),
        get("a missing SOAP note", format!("{}/999999", notes(pa, eid_a)), 404),
        // ---- Practitioners
        get("practitioners", "/api/practitioner", 200).len("/data", 1).eq("/data/0/uuid", json!(f.pruuid)).absent("/data/0/role"),
        get("practitioners filtered exactly", "/api/practitioner?lname=Hous", 200).eq("/data", json!([])),
        get("practitioners filtered", "/api/practitioner?lname=House", 200).len("/data", 1),
        get("one practitioner", format!("/api/practitioner/{}", f.pruuid), 200)
            .eq("/data/npi", json!("1122334455"))
            .eq("/data/facility_id", json!(f.facility_id))
            .absent("/data/password"),
        post("a practitioner", "/api/practitioner", json!({"fname": "Lisa", "lname": "Cuddy", "npi": "5566778899"}), 201).text("/data/uuid"),
        post("a practitioner breaking every rule", "/api/practitioner", json!({"fname": "G", "npi": "12x", "email": "nope", "username": "ghouse"}), 400)
            .invalid("fname", "LengthBetween::TOO_SHORT", "First Name must be 2 characters or longer")
            .invalid("lname", "Required::NON_EXISTENT_KEY", "lname must be provided, but does not exist")
            .invalid("npi", "Numeric::NOT_NUMERIC", "NPI must be numeric")
            .invalid("email", "Email::INVALID_VALUE", "Email must be a valid email address")
            .invalid("username", "Unique::NOT_UNIQUE", "Username is already in use"),
        post("a practitioner at a missing facility", "/api/practitioner",
             json!({"fname": "James", "lname": "Wilson", "npi": "9988776655", "facility_id": 4242}), 400)
            .invalid("facility_id", "Callback::INVALID_VALUE", "Facility Id is invalid"),
        Step::Count("SELECT COUNT(*) AS n FROM users WHERE npi <> ''", 2),
        put("a practitioner update", format!("/api/practitioner/{}", f.pruuid), json!({"specialty": "Diagnostics"}), 200)
            .eq("/data/specialty", json!("Diagnostics"))
            .eq("/data/fname", json!("Gregory")),
        put("a practitioner update breaking a rule", format!("/api/practitioner/{}", f.pruuid), json!({"npi": "123"}), 400)
            .invalid("npi", "LengthBetween::TOO_SHORT", "NPI must be 10 characters or longer"),
        get("a missing practitioner", format!("/api/practitioner/{missing}"), 404),
        put("a missing practitioner update", format!("/api/practitioner/{missing}"), json!({"specialty": "x"}), 404),
        post("a front-office user cannot add practitioners", "/api/practitioner", json!({"fname": "Lisa", "lname": "Cuddy", "npi": "5566778890"}), 403)
            .by(Who::FrontOffice),
        // ---- Facilities
        get("facilities", "/api/facility", 200).len("/data", 1).eq("/data/0/name", json!("Springfield Clinic")),
        get("facilities filtered", "/api/facility?city=Springfield", 200).len("/data", 1),
        get("facilities filtered on a number", "/api/facility?billing_location=abc", 400),
        get("one facility", format!("/api/facility/{}", f.fuuid), 200).eq("/data/facility_npi", json!("1234567890")),
        post("a facility", "/api/facility", json!({"name": "Annex", "facility_npi": "1234567891", "website": "https://annex.example.org"}), 201)
            .text("/data/uuid"),
        get("facilities sorted by name", "/api/facility", 200).eq("/data/0/name", json!("Annex")).len("/data", 2),
        post("a facility breaking every rule", "/api/facility", json!({"name": "A", "email": "bad", "website": "ftp://x", "phone": "1"}), 400)
            .invalid("name", "LengthBetween::TOO_SHORT", "name must be 2 characters or longer")
            .invalid("facility_npi", "Required::NON_EXISTENT_KEY", "facility_npi must be provided, but does not exist")
            .invalid("email", "Email::INVALID_VALUE", "email must be a valid email address")
            .invalid("website", "Url::INVALID_URL", "website must be a valid URL")
            .invalid("phone", "LengthBetween::TOO_SHORT", "phone must be 3 characters or longer"),
        Step::Count("SELECT COUNT(*) AS n FROM facility", 2),
        put("a facility update", format!("/api/facility/{}", f.fuuid), json!({"city": "Shelbyville"}), 200)
            .eq("/data/city", json!("Shelbyville"))
            .eq("/data/name", json!("Springfield Clinic")),
        put("a facility update breaking a rule", format!("/api/facility/{}", f.fuuid), json!({"name": ""}), 400)
            .invalid("name", "NotEmpty::EMPTY_VALUE", "name must not be empty"),
        put("a missing facility update", format!("/api/facility/{missing}"), json!({"city": "Nowhere"}), 404),
        get("a missing facility", format!("/api/facility/{missing}"), 404).eq("/data", json!([])),
        post("a front-office user cannot add facilities", "/api/facility", json!({"name": "Annex 2", "facility_npi": "1234567892"}), 403)
            .by(Who::FrontOffice),
    ];

    // ---- Medical problems and allergies: the same shape of routes.
    for (kind, mine, theirs, title) in [
        (
            "medical_problem",
            f.muuid_a.as_str(),
            f.muuid_b.as_str(),
            "Hypertension",
        ),
        (
            "allergy",
            f.auuid_a.as_str(),
            f.auuid_b.as_str(),
            "Penicillin",
        ),
    ] {
        let of = |puuid: &str| format!("/api/patient/{puuid}/{kind}");
        let needs_begdate = kind == "medical_problem";
        t.extend([
            get(&format!("every {kind}"), format!("/api/{kind}"), 200).len("/data", 2),
            get(&format!("every {kind}, paged"), format!("/api/{kind}?_limit=1&_offset=1"), 200)
                .len("/data", 1)
                .eq("/data/0/uuid", json!(theirs)),
            get(&format!("any {kind}"), format!("/api/{kind}/{theirs}"), 200).eq("/data/uuid", json!(theirs)),
            get(&format!("a missing {kind}"), format!("/api/{kind}/{missing}"), 404).eq("/data", json!([])),
            get(&format!("a patient's {kind} list"), of(puuid_a), 200)
                .len("/data", 1)
                .eq("/data/0/title", json!(title))
                .eq("/data/0/puuid", json!(puuid_a))
                .eq("/data/0/begdate", json!(if needs_begdate { "2020-01-02 00:00:00" } else { "2019-05-06 00:00:00" })),
            get(&format!("a patient's {kind}"), format!("{}/{mine}", of(puuid_a)), 200).eq("/data/0/uuid", json!(mine)),
            get(&format!("another patient's {kind}"), format!("{}/{theirs}", of(puuid_a)), 404),
            get(&format!("{kind} of a missing patient"), of(missing), 404),
            post(&format!("a {kind}"), of(puuid_a), json!({"title": "Second", "begdate": "2023-01-01 08:00:00", "enddate": "2023-02-01"}), 201)
                .text("/data/uuid")
                .text("/data/id"),
            post(&format!("a {kind} with a short title and a US date"), of(puuid_a), json!({"title": "X", "begdate": "01/02/2020"}), 400)
                .invalid("title", "LengthBetween::TOO_SHORT", "title must be 2 characters or longer")
                .invalid("begdate", "DateTime::INVALID_VALUE", "begdate must be a valid date"),
            post(&format!("a {kind} with nothing"), of(puuid_a), json!({}), 400)
                .invalid("title", "Required::NON_EXISTENT_KEY", "title must be provided, but does not exist"),
            post(&format!("a {kind} for a missing patient"), of(missing), json!({"title": "Nobody's", "begdate": "2020-01-01"}), 404),
            put(&format!("a {kind} update"), format!("{}/{mine}", of(puuid_a)), json!({"title": "Renamed", "enddate": "2024-01-01"}), 200)
                .eq("/data/title", json!("Renamed"))
                .eq("/data/enddate", json!("2024-01-01 00:00:00")),
            put(&format!("a {kind} update breaking a rule"), format!("{}/{mine}", of(puuid_a)), json!({"title": ""}), 400)
                .invalid("title", "NotEmpty::EMPTY_VALUE", "title must not be empty"),
            put(&format!("another patient's {kind} update"), format!("{}/{theirs}", of(puuid_a)), json!({"title": "Hijack"}), 404),
            delete(&format!("another patient's {kind} delete"), format!("{}/{theirs}", of(puuid_a)), 404),
            get(&format!("the other patient's {kind} is unchanged"), format!("/api/{kind}/{theirs}"), 200)
                .eq("/data/title", json!(if needs_begdate { "Asthma" } else { "Peanuts" })),
            get(&format!("the list has both of the patient's {kind} rows"), of(puuid_a), 200).len("/data", 2),
            delete(&format!("a {kind} delete"), format!("{}/{mine}", of(puuid_a)), 200).eq("/data/uuid", json!(mine)),
            get(&format!("a deleted {kind}"), format!("/api/{kind}/{mine}"), 404),
            delete(&format!("a deleted {kind} again"), format!("{}/{mine}", of(puuid_a)), 404),
        ]);
        if needs_begdate {
            t.push(
                post(
                    "a medical problem needs a start date",
                    of(puuid_a),
                    json!({"title": "Gout"}),
                    400,
                )
                .invalid(
                    "begdate",
                    "Required::NON_EXISTENT_KEY",
                    "begdate must be provided, but does not exist",
                ),
            );
        }
    }
    t.extend([
        Step::Count(
            "SELECT COUNT(*) AS n FROM lists WHERE type = 'medical_problem'",
            2,
        ),
        Step::Count("SELECT COUNT(*) AS n FROM lists WHERE type = 'allergy'", 2),
    ]);

    // ---- Medications, surgeries and dental issues.
    for (kind, mine, title) in [
        ("medication", f.medication_a, "Lisinopril"),
        ("surgery", f.surgery_a, "Appendectomy"),
        ("dental_issue", f.dental_a, "Gingivitis"),
    ] {
        let of = |pid: i64| format!("/api/patient/{pid}/{kind}");
        t.extend([
            get(&format!("a patient's {kind} list"), of(pa), 200)
                .len("", 1)
                .eq("/0/title", json!(title))
                .eq("/0/begdate", json!("2021-07-08 00:00:00"))
                .text("/0/uuid"),
            get(&format!("one {kind}"), format!("{}/{mine}", of(pa)), 200).eq("/id", json!(mine)),
            get(&format!("{kind} through another patient"), format!("{}/{mine}", of(pb)), 404),
            get(&format!("{kind} of a missing patient"), of(999_999), 404),
            post(&format!("a {kind} with a date-time"), of(pa), json!({"title": "Second one", "begdate": "2022-02-03 04:05:06", "enddate": "2022-03-04"}), 201)
                .text("/id"),
            post(&format!("a {kind} breaking the rules"), of(pa), json!({"title": "Z", "begdate": "2022-13-01", "enddate": "tomorrow"}), 400)
                .bare_invalid("title", "LengthBetween::TOO_SHORT", "title must be 2 characters or longer")
                .bare_invalid("begdate", "DateTime::INVALID_VALUE", "begdate must be a valid date")
                .bare_invalid("enddate", "DateTime::INVALID_VALUE", "enddate must be a valid date"),
            post(&format!("a {kind} without a title"), of(pa), json!({"begdate": "2022-01-01"}), 400)
                .bare_invalid("title", "Required::NON_EXISTENT_KEY", "title must be provided, but does not exist"),
            post(&format!("a {kind} for a missing patient"), of(999_999), json!({"title": "Nobody's"}), 404),
            get(&format!("{kind} newest first"), of(pa), 200).len("", 2).eq("/1/id", json!(mine)),
            put(&format!("a {kind} update"), format!("{}/{mine}", of(pa)), json!({"enddate": "2024-01-01"}), 200).eq("/id", json!(mine)),
            put(&format!("a {kind} update breaking a rule"), format!("{}/{mine}", of(pa)), json!({"begdate": "soon"}), 400)
                .bare_invalid("begdate", "DateTime::INVALID_VALUE", "begdate must be a valid date"),
            put(&format!("a {kind} update through another patient"), format!("{}/{mine}", of(pb)), json!({"title": "Hijack"}), 404),
            delete(&format!("a {kind} delete through another patient"), format!("{}/{mine}", of(pb)), 404),
            get(&format!("the {kind} kept its title"), format!("{}/{mine}", of(pa)), 200)
                .eq("/title", json!(title))
                .eq("/enddate", json!("2024-01-01 00:00:00")),
            delete(&format!("a {kind} delete"), format!("{}/{mine}", of(pa)), 200).eq("", json!(true)),
            get(&format!("a deleted {kind}"), format!("{}/{mine}", of(pa)), 404),
            put(&format!("a deleted {kind} update"), format!("{}/{mine}", of(pa)), json!({"title": "Back"}), 404),
        ]);
    }
    t.extend([
        put(
            "a medication updated as a surgery",
            format!("/api/patient/{pb}/surgery/{}", f.medication_b),
            json!({"title": "Mixed"}),
            404,
        ),
        delete(
            "a medication deleted as a dental issue",
            format!("/api/patient/{pb}/dental_issue/{}", f.medication_b),
            404,
        ),
        get(
            "the other patient's medication is untouched",
            format!("/api/patient/{pb}/medication/{}", f.medication_b),
            200,
        )
        .eq("/title", json!("Metformin")),
        Step::Count("SELECT COUNT(*) AS n FROM lists WHERE uuid IS NULL", 0),
        Step::Count("SELECT COUNT(*) AS n FROM forms WHERE uuid IS NULL", 0),
    ]);
    t
}

async fn check(app: &TestApp, tokens: &Tokens, step: &Step) {
    match step {
        Step::Count(sql, n) => {
            let rows = app.rows("default", sql).await;
            assert_eq!(rows[0]["n"], json!(n), "{sql}");
        }
        Step::Call {
            what,
            who,
            method,
            site,
            path,
            body,
            status,
            expect,
        } => {
            let token = match who {
                Who::Admin => &tokens.admin,
                Who::SecondAdmin => &tokens.second,
                Who::FrontOffice => &tokens.front_office,
                Who::PatientA => &tokens.patient_a,
            };
            let reply = app
                .send(
                    method.clone(),
                    &app.api(site, path),
                    Some(token),
                    body.clone(),
                )
                .await;
            assert_eq!(
                reply.status, *status,
                "{what}: {method} {path}: {}",
                reply.text
            );
            assert_eq!(
                reply.header("content-type"),
                Some("application/json"),
                "{what}"
            );
            // Vitals, SOAP notes and issues answer bare payloads (arrays, objects, `true`,
            // bare message maps); the other routes the envelope.
            let bare = [
                "/vital",
                "/soap_note",
                "/medication",
                "/surgery",
                "/dental_issue",
            ]
            .iter()
            .any(|kind| path.contains(kind));
            if bare {
                assert!(
                    !reply.json.is_null()
                        && reply.json.get("data").is_none()
                        && reply.json.get("validationErrors").is_none(),
                    "{what}: a bare JSON payload: {}",
                    reply.text
                );
            } else {
                assert!(
                    reply.json.is_object(),
                    "{what}: a JSON object: {}",
                    reply.text
                );
            }
            if *status != 403 && !bare {
                for key in ["validationErrors", "internalErrors", "data"] {
                    assert!(
                        reply.json.get(key).is_some(),
                        "{what}: the envelope has {key}: {}",
                        reply.text
                    );
                }
            }
            for e in expect {
                match e {
                    Expect::Eq(pointer, value) => {
                        assert_eq!(
                            reply.json.pointer(pointer),
                            Some(value),
                            "{what}: {pointer} in {}",
                            reply.text
                        )
                    }
                    Expect::Len(pointer, n) => assert_eq!(
                        reply
                            .json
                            .pointer(pointer)
                            .and_then(Value::as_array)
                            .map(Vec::len),
                        Some(*n),
                        "{what}: length of {pointer} in {}",
                        reply.text
                    ),
                    Expect::Text(pointer) => assert!(
                        reply
                            .json
                            .pointer(pointer)
                            .is_some_and(
                                |v| v.as_str().is_some_and(|s| !s.is_empty()) || v.is_number()
                            ),
                        "{what}: {pointer} in {}",
                        reply.text
                    ),
                    Expect::Absent(pointer) => {
                        assert!(
                            reply.json.pointer(pointer).is_none(),
                            "{what}: no {pointer} in {}",
                            reply.text
                        )
                    }
                }
            }
        }
    }
}

struct Tokens {
    admin: String,
    second: String,
    front_office: String,
    patient_a: String,
}

/// Every clinical scope letter of a resource but `letter`.
fn scopes_without(scope: &str) -> String {
    let (resource, letter) = scope.split_once('.').expect("resource.letter");
    let rest: String = "cruds"
        .chars()
        .filter(|c| c.to_string() != letter)
        .collect();
    format!("openid api:oemr user/{resource}.{rest}")
}

/// The `field` of every row a list answers, in order (the list must answer 200).
async fn order_of(app: &TestApp, token: &str, path: &str, field: &str) -> Vec<Value> {
    let reply = app.get(&app.api("default", path), token).await;
    assert_eq!(reply.status, 200, "GET {path}: {}", reply.text);
    // The envelope's `data`, or a bare list (vitals, SOAP notes, issues).
    reply
        .json
        .get("data")
        .unwrap_or(&reply.json)
        .as_array()
        .unwrap_or_else(|| panic!("GET {path}: a list: {}", reply.text))
        .iter()
        .map(|row| row[field].clone())
        .collect()
}

/// A list case: the path with its query, the field compared, the values in order.
type SortCase = (String, &'static str, Vec<Value>);

/// More rows for every list, with keys chosen so that each order differs from creation
/// order and from the others, ties included; answers the cases over them.
async fn sort_cases(app: &TestApp, token: &str, f: &Fixture) -> Vec<SortCase> {
    let (pa, pu, eid) = (f.pid_a, f.puuid_a.as_str(), f.eid_a);
    let encounter = |reason: &str, date: &str| {
        let body = json!({"pc_catid": "5", "class_code": "AMB", "reason": reason, "date": date});
        let path = format!("/api/patient/{pu}/encounter");
        async move { created(app, token, &path, body).await["eid"].clone() }
    };
    // The fixture's encounter: Checkup on 2024-03-04.
    let e1 = json!(f.eid_a);
    let e2 = encounter("Follow-up", "2024-01-01 09:00:00").await;
    let e3 = encounter("Annual", "2024-06-01 09:00:00").await;
    let e4 = encounter("Checkup", "2023-01-01 09:00:00").await;
    // The fixture's vitals were taken now, noted "seated".
    for (note, date) in [
        ("standing", "2024-02-01 08:00:00"),
        ("lying", "2024-01-01 08:00:00"),
    ] {
        let body = json!({"note": note, "date": date, "pulse": 60});
        created(
            app,
            token,
            &format!("/api/patient/{pa}/encounter/{eid}/vital"),
            body,
        )
        .await;
    }
    let soap = |plan: &'static str| {
        let path = format!("/api/patient/{pa}/encounter/{eid}/soap_note");
        async move { created(app, token, &path, json!({"plan": plan})).await["sid"].clone() }
    };
    let (s1, s2) = (json!(f.sid_a), soap("Second note").await);
    let s3 = soap("Third note").await;
    for (title, begdate) in [("Asthma", "2018-01-01"), ("Diabetes", "2022-05-05")] {
        let body = json!({"title": title, "begdate": begdate});
        created(
            app,
            token,
            &format!("/api/patient/{pu}/medical_problem"),
            body,
        )
        .await;
    }
    for (title, begdate) in [("Latex", "2010-01-01"), ("Sulfa", "2021-01-01")] {
        let body = json!({"title": title, "begdate": begdate});
        created(app, token, &format!("/api/patient/{pu}/allergy"), body).await;
    }
    for (title, begdate) in [("Aspirin", "2019-01-01"), ("Warfarin", "2023-01-01")] {
        let body = json!({"title": title, "begdate": begdate});
        created(app, token, &format!("/api/patient/{pa}/medication"), body).await;
    }
    created(
        app,
        token,
        &format!("/api/patient/{pa}/surgery"),
        json!({"title": "Tonsillectomy"}),
    )
    .await;
    for (fname, lname, npi) in [
        ("Lisa", "Cuddy", "2233445566"),
        ("James", "Wilson", "3344556677"),
    ] {
        let body = json!({"fname": fname, "lname": lname, "npi": npi});
        created(app, token, "/api/practitioner", body).await;
    }
    for (name, city, npi) in [
        ("Alpha Care", "Shelbyville", "1234567891"),
        ("Zeta Health", "Capital City", "1234567892"),
    ] {
        let body = json!({"name": name, "city": city, "facility_npi": npi});
        created(app, token, "/api/facility", body).await;
    }
    let texts = |items: &[&str]| items.iter().map(|t| json!(t)).collect::<Vec<_>>();
    let encounters = format!("/api/patient/{pu}/encounter");
    let vitals = format!("/api/patient/{pa}/encounter/{eid}/vital");
    let notes = format!("/api/patient/{pa}/encounter/{eid}/soap_note");
    let problems = format!("/api/patient/{pu}/medical_problem");
    let allergies = format!("/api/patient/{pu}/allergy");
    let medications = format!("/api/patient/{pa}/medication");
    vec![
        // Encounters: newest number first by default; ties on reason broken by id.
        (
            encounters.clone(),
            "eid",
            vec![e4.clone(), e3.clone(), e2.clone(), e1.clone()],
        ),
        (
            format!("{encounters}?_sort=date"),
            "eid",
            vec![e4.clone(), e2.clone(), e1.clone(), e3.clone()],
        ),
        (
            format!("{encounters}?_sort=-date"),
            "eid",
            vec![e3.clone(), e1.clone(), e2.clone(), e4.clone()],
        ),
        (
            format!("{encounters}?_sort=reason"),
            "eid",
            vec![e3.clone(), e1.clone(), e4.clone(), e2.clone()],
        ),
        (
            format!("{encounters}?_sort=reason,-date"),
            "eid",
            vec![e3.clone(), e1.clone(), e4.clone(), e2.clone()],
        ),
        (
            format!("{encounters}?_sort=reason,date"),
            "eid",
            vec![e3.clone(), e4.clone(), e1.clone(), e2.clone()],
        ),
        (
            format!("{encounters}?_sort=-eid"),
            "eid",
            vec![e4.clone(), e3.clone(), e2.clone(), e1.clone()],
        ),
        (
            format!("{encounters}?_sort=date&_limit=2&_offset=1"),
            "eid",
            vec![e2.clone(), e1.clone()],
        ),
        (
            format!("{encounters}?_sort=date&_limit=2&_offset=3"),
            "eid",
            vec![e3.clone()],
        ),
        // Vitals and SOAP notes: newest first by default.
        (
            vitals.clone(),
            "note",
            texts(&["seated", "standing", "lying"]),
        ),
        (
            format!("{vitals}?_sort=date"),
            "note",
            texts(&["lying", "standing", "seated"]),
        ),
        (
            format!("{vitals}?_sort=-pulse,date"),
            "note",
            texts(&["seated", "lying", "standing"]),
        ),
        (
            format!("{vitals}?_sort=pulse&_limit=1&_offset=1"),
            "note",
            texts(&["standing"]),
        ),
        (
            notes.clone(),
            "id",
            vec![s3.clone(), s2.clone(), s1.clone()],
        ),
        (
            format!("{notes}?_sort=id"),
            "id",
            vec![s1.clone(), s2.clone(), s3.clone()],
        ),
        (
            format!("{notes}?_sort=-id&_limit=2&_offset=1"),
            "id",
            vec![s2.clone(), s1.clone()],
        ),
        // Medical problems and allergies: oldest first by default, across patients too.
        (
            problems.clone(),
            "title",
            texts(&["Hypertension", "Asthma", "Diabetes"]),
        ),
        (
            format!("{problems}?_sort=title"),
            "title",
            texts(&["Asthma", "Diabetes", "Hypertension"]),
        ),
        (
            format!("{problems}?_sort=-begdate"),
            "title",
            texts(&["Diabetes", "Hypertension", "Asthma"]),
        ),
        ("/api/medical_problem?_sort=-title".to_owned(), "uuid", {
            let rows = order_of(app, token, &format!("{problems}?_sort=title"), "uuid").await;
            vec![
                rows[2].clone(),
                rows[1].clone(),
                json!(f.muuid_b),
                rows[0].clone(),
            ]
        }),
        (
            allergies.clone(),
            "title",
            texts(&["Penicillin", "Latex", "Sulfa"]),
        ),
        (
            format!("{allergies}?_sort=-begdate"),
            "title",
            texts(&["Sulfa", "Penicillin", "Latex"]),
        ),
        (
            "/api/allergy?_sort=title&_limit=2&_offset=2".to_owned(),
            "title",
            texts(&["Penicillin", "Sulfa"]),
        ),
        // Medications, surgeries, dental issues: newest first by default.
        (
            medications.clone(),
            "title",
            texts(&["Warfarin", "Aspirin", "Lisinopril"]),
        ),
        (
            format!("{medications}?_sort=title"),
            "title",
            texts(&["Aspirin", "Lisinopril", "Warfarin"]),
        ),
        (
            format!("{medications}?_sort=-begdate"),
            "title",
            texts(&["Warfarin", "Lisinopril", "Aspirin"]),
        ),
        (
            format!("/api/patient/{pa}/surgery?_sort=-title"),
            "title",
            texts(&["Tonsillectomy", "Appendectomy"]),
        ),
        (
            format!("/api/patient/{pa}/dental_issue?_sort=title,-date"),
            "title",
            texts(&["Gingivitis"]),
        ),
        // Practitioners by id, facilities by name, unless asked otherwise.
        (
            "/api/practitioner".to_owned(),
            "lname",
            texts(&["House", "Cuddy", "Wilson"]),
        ),
        (
            "/api/practitioner?_sort=lname".to_owned(),
            "lname",
            texts(&["Cuddy", "House", "Wilson"]),
        ),
        (
            "/api/practitioner?_sort=-fname&_limit=2".to_owned(),
            "lname",
            texts(&["Cuddy", "Wilson"]),
        ),
        (
            "/api/facility".to_owned(),
            "name",
            texts(&["Alpha Care", "Springfield Clinic", "Zeta Health"]),
        ),
        (
            "/api/facility?_sort=city".to_owned(),
            "name",
            texts(&["Zeta Health", "Alpha Care", "Springfield Clinic"]),
        ),
        (
            "/api/facility?_sort=-name&_offset=1".to_owned(),
            "name",
            texts(&["Springfield Clinic", "Alpha Care"]),
        ),
        // Patients.
        (
            "/api/patient?_sort=-lname".to_owned(),
            "lname",
            texts(&["Baker", "Adams"]),
        ),
        (
            "/api/patient?_sort=lname&_limit=1&_offset=1".to_owned(),
            "lname",
            texts(&["Baker"]),
        ),
    ]
}

both! {
    async fn every_clinical_route_answers_as_the_table_says(app) {
        let admin = app.user_token("default", "admin", ALL_USER_SCOPES).await;
        let fixture = Fixture::build(app, &admin).await;
        app.user("default", "frontdesk", "front_office").await;
        let tokens = Tokens {
            second: app.user_token("second", "admin", ALL_USER_SCOPES).await,
            front_office: app.user_token("default", "frontdesk", ALL_USER_SCOPES).await,
            patient_a: app.patient_token("default", &fixture.puuid_a, "openid api:port patient/encounter.rs").await,
            admin,
        };
        for step in table(&fixture) {
            check(app, &tokens, &step).await;
        }
    }

    async fn every_clinical_list_sorts_by_its_fields_and_pages_in_that_order(app) {
        let admin = app.user_token("default", "admin", ALL_USER_SCOPES).await;
        let fixture = Fixture::build(app, &admin).await;
        for (path, field, expected) in sort_cases(app, &admin, &fixture).await {
            assert_eq!(order_of(app, &admin, &path, field).await, expected, "GET {path}: {field} in order");
        }
        let pu = &fixture.puuid_a;
        let lists = [
            format!("/api/patient/{pu}/encounter"),
            format!("/api/patient/{}/encounter/{}/vital", fixture.pid_a, fixture.eid_a),
            format!("/api/patient/{}/encounter/{}/soap_note", fixture.pid_a, fixture.eid_a),
            format!("/api/patient/{pu}/medical_problem"),
            "/api/medical_problem".to_owned(),
            format!("/api/patient/{pu}/allergy"),
            "/api/allergy".to_owned(),
            format!("/api/patient/{}/medication", fixture.pid_a),
            format!("/api/patient/{}/surgery", fixture.pid_a),
            format!("/api/patient/{}/dental_issue", fixture.pid_a),
            "/api/practitioner".to_owned(),
            "/api/facility".to_owned(),
            "/api/patient".to_owned(),
        ];
        for list in &lists {
            // The envelope's validation errors, or the bare message map.
            let errors = |reply: &Reply| reply.json.get("validationErrors").cloned().unwrap_or_else(|| reply.json.clone());
            let reply = app.get(&app.api("default", &format!("{list}?_sort=id,-bogus")), &admin).await;
            assert_eq!(reply.status, 400, "{list}: an unknown sort key: {}", reply.text);
            let message = errors(&reply)["_sort"]["InArray::NOT_IN_ARRAY"].as_str().unwrap_or_default().to_owned();
            assert!(message.starts_with("_sort cannot order by \"bogus\"; it takes a comma list of "), "{list}: {}", reply.text);
            if reply.json.get("validationErrors").is_some() {
                assert_eq!(reply.json["data"], json!([]), "{list}");
            }
            for (query, key) in [("_limit=ten", "_limit"), ("_offset=-1", "_offset"), ("_limit=1.5", "_limit")] {
                let reply = app.get(&app.api("default", &format!("{list}?{query}")), &admin).await;
                assert_eq!(reply.status, 400, "{list}?{query}: {}", reply.text);
                assert!(errors(&reply)[key]["Numeric::NOT_NUMERIC"].as_str().is_some_and(|m| m.starts_with(key)), "{list}?{query}: {}", reply.text);
            }
        }
        // Stable paging: pages of one row in any order hold every row once.
        let encounters = format!("/api/patient/{pu}/encounter");
        for sort in ["reason", "-reason", "class_code,-pc_catid"] {
            let all = order_of(app, &admin, &format!("{encounters}?_sort={sort}"), "eid").await;
            let mut paged = Vec::new();
            for offset in 0..all.len() {
                paged.extend(order_of(app, &admin, &format!("{encounters}?_sort={sort}&_limit=1&_offset={offset}"), "eid").await);
            }
            assert_eq!(paged, all, "_sort={sort} page by page");
        }
        let reply = app.get(&app.api("default", &format!("{encounters}?_sort=date&_limit=2&_offset=1")), &admin).await;
        assert!(reply.json["links"]["next"].as_str().is_some_and(|l| l.contains("_sort=date") && l.ends_with("_offset=3&_limit=2")), "{}", reply.text);
    }

    async fn every_clinical_route_needs_its_scope(app) {
        let admin = app.user_token("default", "admin", ALL_USER_SCOPES).await;
        let fixture = Fixture::build(app, &admin).await;
        for (method, path, scope) in routes(&fixture) {
            let token = app.user_token("default", "admin", &scopes_without(scope)).await;
            let body = (method == Method::POST || method == Method::PUT).then(|| json!({"title": "Anything"}));
            let reply = app.send(method.clone(), &app.api("default", &path), Some(&token), body).await;
            assert_eq!(reply.status, 403, "{method} {path} without {scope}: {}", reply.text);
            assert_eq!(reply.json["error"], "insufficient_scope");
            assert!(reply.json["message"].as_str().unwrap_or_default().contains(&format!("user/{scope}")), "{}", reply.text);
        }
        let counts = app.rows("default", "SELECT (SELECT COUNT(*) FROM lists) + (SELECT COUNT(*) FROM form_encounter) AS n").await;
        assert_eq!(counts[0]["n"], json!(10), "nothing was written without a scope");
    }

    async fn the_other_site_sees_none_of_the_data(app) {
        let admin = app.user_token("default", "admin", ALL_USER_SCOPES).await;
        let fixture = Fixture::build(app, &admin).await;
        let second = app.user_token("second", "admin", ALL_USER_SCOPES).await;
        for (method, path, _) in routes(&fixture) {
            let body = (method == Method::POST || method == Method::PUT).then(|| json!({"title": "Anything"}));
            let reply = app.send(method.clone(), &app.api("second", &path), Some(&second), body).await;
            let global_list = method == Method::GET && matches!(path.as_str(), "/api/medical_problem" | "/api/allergy" | "/api/practitioner" | "/api/facility");
            if global_list {
                assert_eq!(reply.status, 200, "{path}: {}", reply.text);
                assert_eq!(reply.json["data"], json!([]), "{path} on the other site");
            } else if method == Method::POST && matches!(path.as_str(), "/api/practitioner" | "/api/facility") {
                assert_eq!(reply.status, 400, "{path}: an incomplete body: {}", reply.text);
            } else {
                assert_eq!(reply.status, 404, "{method} {path} on the other site: {}", reply.text);
            }
        }
        let reply = app.get(&app.api("second", &format!("/api/patient/{}/encounter", fixture.puuid_a)), &admin).await;
        assert_eq!(reply.status, 401, "a token of one site is not valid on another");
        let rows = app.rows("second", "SELECT (SELECT COUNT(*) FROM lists) + (SELECT COUNT(*) FROM form_encounter) + (SELECT COUNT(*) FROM facility) AS n").await;
        assert_eq!(rows[0]["n"], json!(0));
    }

    async fn demo_seed_writes_what_it_reports_and_the_plugins_serve_it(app) {
        let site = app.state.sites.get("second").await.expect("the site");
        let mut calls = Vec::new();
        let options = hearth_demo::SeedOptions { patients: 120, seed: 42, batch: 50 };
        let summary = hearth::cli::seed_demo(&site, &options, |done, total| calls.push((done, total)))
            .await
            .expect("seeding");
        assert_eq!(calls, vec![(50, 120), (100, 120), (120, 120)], "progress after each batch");
        assert_eq!(summary.patients, 120);
        let count = move |sql: &'static str| async move {
            app.rows("second", sql).await[0]["n"].as_i64().expect("a count") as u64
        };
        assert_eq!(count("SELECT COUNT(*) AS n FROM patient_data").await, summary.patients);
        assert_eq!(count("SELECT COUNT(*) AS n FROM facility").await, summary.facilities);
        assert_eq!(count("SELECT COUNT(*) AS n FROM users WHERE npi <> ''").await, summary.practitioners);
        assert_eq!(count("SELECT COUNT(*) AS n FROM form_encounter").await, summary.encounters);
        assert_eq!(count("SELECT COUNT(*) AS n FROM form_vitals").await, summary.vitals);
        assert_eq!(count("SELECT COUNT(*) AS n FROM form_soap").await, summary.soap_notes);
        assert_eq!(count("SELECT COUNT(*) AS n FROM forms").await, summary.forms);
        assert_eq!(
            summary.forms,
            summary.encounters + summary.vitals + summary.soap_notes + summary.care_plans,
            "every encounter, vitals, SOAP note and care plan form has its forms row"
        );
        assert_eq!(count("SELECT COUNT(*) AS n FROM lists WHERE type = 'medical_problem'").await, summary.medical_problems);
        assert_eq!(count("SELECT COUNT(*) AS n FROM lists WHERE type = 'allergy'").await, summary.allergies);
        assert_eq!(count("SELECT COUNT(*) AS n FROM lists WHERE type = 'medication'").await, summary.medications);
        assert_eq!(count("SELECT COUNT(*) AS n FROM lists WHERE type = 'surgery'").await, summary.surgeries);
        assert_eq!(count("SELECT COUNT(*) AS n FROM lists WHERE type = 'dental'").await, summary.dental_issues);
        assert_eq!(count("SELECT COUNT(*) AS n FROM issue_encounter").await, summary.issue_encounters);
        assert_eq!(count("SELECT COUNT(*) AS n FROM history_data").await, summary.smoking_statuses);
        assert!(summary.smoking_statuses > 0);
        assert!(summary.encounters >= 120 && summary.medications > 0 && summary.allergies > 0);
        assert_eq!(count("SELECT MAX(value) AS n FROM sequences WHERE name = 'pid'").await, 120, "the pid sequence moved on");
        assert_eq!(count("SELECT MAX(value) AS n FROM sequences WHERE name = 'encounter'").await, summary.encounters);
        assert_eq!(count("SELECT COUNT(DISTINCT encounter) AS n FROM form_encounter").await, summary.encounters);
        assert_eq!(count("SELECT COUNT(*) AS n FROM forms fo LEFT JOIN form_encounter fe ON fe.pid = fo.pid AND fe.encounter = fo.encounter WHERE fe.id IS NULL").await, 0);
        assert_eq!(count("SELECT COUNT(*) AS n FROM patient_data WHERE pubpid <> CAST(pid AS TEXT)").await, 0);
        assert!(app.rows("default", "SELECT id FROM patient_data").await.is_empty(), "only the named site");

        // The plugins serve the seeded rows, and the API writes next to them.
        let token = app.user_token("second", "admin", ALL_USER_SCOPES).await;
        let patients = app.get(&app.api("second", "/api/patient?_limit=200"), &token).await;
        assert_eq!(patients.json["data"].as_array().map(Vec::len), Some(120));
        // Every seeded row of the first 20 patients comes back through the API: the
        // counts served match the tables, kind by kind.
        let mut served = std::collections::BTreeMap::<&str, u64>::new();
        let mut add = |kind, items: &serde_json::Value| {
            *served.entry(kind).or_default() += items.as_array().map_or(0, Vec::len) as u64;
        };
        let listed = patients.json["data"].as_array().expect("patients");
        let first_twenty = listed.iter().filter(|p| p["pid"].as_i64().is_some_and(|pid| pid <= 20));
        for patient in first_twenty {
            let (pid, puuid) = (patient["pid"].as_i64().expect("pid"), patient["uuid"].as_str().expect("uuid"));
            add("patients", &json!([patient]));
            let encounters = app.get(&app.api("second", &format!("/api/patient/{puuid}/encounter")), &token).await;
            assert_eq!(encounters.status, 200, "{}", encounters.text);
            add("encounters", &encounters.json["data"]);
            for encounter in encounters.json["data"].as_array().expect("encounters") {
                assert_eq!(encounter["puuid"], json!(puuid));
                assert!(encounter["facility_name"].is_string() && encounter["provider_uuid"].is_string(), "{encounter}");
                let eid = encounter["eid"].as_i64().expect("eid");
                let vitals = app.get(&app.api("second", &format!("/api/patient/{pid}/encounter/{eid}/vital")), &token).await;
                assert_eq!(vitals.status, 200, "{}", vitals.text);
                for vital in vitals.json.as_array().expect("vitals") {
                    assert!(vital["bps"].is_string() && !vital["weight"].is_null() && vital["user_uuid"].is_string(), "{vital}");
                    assert_eq!(vital["eid"], json!(eid), "{vital}");
                }
                add("vitals", &vitals.json);
                let notes = app.get(&app.api("second", &format!("/api/patient/{pid}/encounter/{eid}/soap_note")), &token).await;
                assert_eq!(notes.status, 200, "{}", notes.text);
                for note in notes.json.as_array().expect("notes") {
                    assert!(note["subjective"].as_str().is_some_and(|s| !s.is_empty()), "{note}");
                }
                add("soap notes", &notes.json);
            }
            let problems = app.get(&app.api("second", &format!("/api/patient/{puuid}/medical_problem")), &token).await;
            assert_eq!(problems.status, 200);
            for problem in problems.json["data"].as_array().expect("problems") {
                assert_eq!(problem["diagnosis"].as_object().map(|m| m.len()), Some(1), "{problem}");
                assert_eq!(problem["verification_title"], "Confirmed");
            }
            add("medical problems", &problems.json["data"]);
            let allergies = app.get(&app.api("second", &format!("/api/patient/{puuid}/allergy")), &token).await;
            for allergy in allergies.json["data"].as_array().expect("allergies") {
                assert!(allergy["practitioner"].is_string(), "{allergy}");
            }
            add("allergies", &allergies.json["data"]);
            for (kind, path) in [("medications", "medication"), ("surgeries", "surgery"), ("dental issues", "dental_issue")] {
                let reply = app.get(&app.api("second", &format!("/api/patient/{pid}/{path}")), &token).await;
                assert_eq!(reply.status, 200, "{path}: {}", reply.text);
                add(kind, &reply.json);
            }
        }
        let in_tables = [
            ("patients", count("SELECT COUNT(*) AS n FROM patient_data WHERE pid <= 20").await),
            ("encounters", count("SELECT COUNT(*) AS n FROM form_encounter WHERE pid <= 20").await),
            ("vitals", count("SELECT COUNT(*) AS n FROM form_vitals WHERE pid <= 20").await),
            ("soap notes", count("SELECT COUNT(*) AS n FROM form_soap WHERE pid <= 20").await),
            ("medical problems", count("SELECT COUNT(*) AS n FROM lists WHERE pid <= 20 AND type = 'medical_problem'").await),
            ("allergies", count("SELECT COUNT(*) AS n FROM lists WHERE pid <= 20 AND type = 'allergy'").await),
            ("medications", count("SELECT COUNT(*) AS n FROM lists WHERE pid <= 20 AND type = 'medication'").await),
            ("surgeries", count("SELECT COUNT(*) AS n FROM lists WHERE pid <= 20 AND type = 'surgery'").await),
            ("dental issues", count("SELECT COUNT(*) AS n FROM lists WHERE pid <= 20 AND type = 'dental'").await),
        ];
        for (kind, rows) in in_tables {
            assert_eq!(served.get(kind).copied().unwrap_or(0), rows, "{kind} served for pids 1 to 20: {served:?}");
        }
        assert_eq!(served["patients"], 20);
        assert!(served["encounters"] >= 20 && served["vitals"] > 0 && served["medical problems"] > 0 && served["medications"] > 0, "{served:?}");
        let practitioners = app.get(&app.api("second", "/api/practitioner"), &token).await;
        assert_eq!(practitioners.json["data"].as_array().map(Vec::len), Some(summary.practitioners as usize));
        let facilities = app.get(&app.api("second", "/api/facility"), &token).await;
        assert_eq!(facilities.json["data"].as_array().map(Vec::len), Some(summary.facilities as usize));

        let (pid, puuid) = app.create_patient("second", &token, "After", "Seeding").await;
        assert_eq!(pid, 121, "the API's pids follow the seeded ones");
        let reply = app.post(&app.api("second", &format!("/api/patient/{puuid}/encounter")), &token, json!({"pc_catid": 5, "class_code": "AMB"})).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        assert_eq!(reply.json["data"]["eid"], json!(summary.encounters + 1));
        let reply = app.post(&app.api("second", &format!("/api/patient/{puuid}/allergy")), &token, json!({"title": "Dust"})).await;
        assert_eq!(reply.status, 201, "new ids follow the seeded ones: {}", reply.text);

        // The same seed on a fresh site writes the same rows.
        let third = app.state.sites.create("third", None).await;
        let third = third.expect("a third site");
        let again = hearth::cli::seed_demo(&third, &options, |_, _| {}).await.expect("seeding again");
        assert_eq!(again, summary);
        let uuids = "SELECT CAST(uuid AS TEXT) AS u, fname, CAST(\"DOB\" AS TEXT) AS dob FROM patient_data WHERE pid <= 120 ORDER BY pid";
        let first = app.rows("second", uuids).await;
        assert_eq!(app.rows("third", uuids).await, first, "the same seed, the same patients");
        assert_eq!(first.len(), 120);
    }
}
