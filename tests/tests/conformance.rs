//! Wire conformance with OpenEMR, on both databases and in both compatibility settings.
//!
//! One table: for every route Hearth serves, requests with the status and body shape
//! OpenEMR gives (read from OpenEMR's own API tests and its controllers, services and
//! validators; each row names where), what Hearth answers by default, and what a site in
//! OpenEMR compatibility answers — which must be OpenEMR's answer unless the row says why
//! not. Each request runs on site `default` (setting `hearth`) and on site `second`
//! (setting `openemr`), each with fixtures of its own made through the API.
//!
//! Then: every route the plugins serve appears in the table and in the coverage table of
//! `docs/compatibility.md`, so neither can fall behind the routes.

use std::collections::HashMap;

use hearth_tests::*;
use reqwest::Method;

/// The shape of an answer's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Body {
    /// OpenEMR's envelope, no errors, `data` an object.
    Object,
    /// The envelope, no errors, `data` a non-empty array.
    List,
    /// The envelope, no errors, `data` an empty array.
    Nothing,
    /// The envelope with `validationErrors` naming this field.
    Invalid(&'static str),
    /// A bare object with these keys.
    Bare(&'static [&'static str]),
    /// A bare non-empty array.
    BareList,
    /// A bare empty array.
    BareEmpty,
    /// The bare JSON `true`.
    True,
    /// A bare validation map naming this field.
    BareInvalid(&'static str),
    /// No body at all.
    Empty,
    /// A host error: a JSON object with OpenEMR's keys `error`, `message` and `code`.
    Error,
    /// A bare JSON object with OpenEMR's keys `error`, `message` and `code`.
    BareError,
    /// A CORS preflight answer: no body.
    Preflight,
    /// A FHIR Bundle of this `type` (`collection`, `searchset`).
    FhirBundle(&'static str),
    /// A FHIR resource of this type.
    FhirResource(&'static str),
    /// A file: a body of bytes that is not JSON.
    Bytes,
}

/// A status and a body shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Answer(u16, Body);

/// Who sends a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Who {
    /// A staff user with every clinical scope.
    Staff,
    /// A staff token with only `user/patient.r` (no route scope for the rest).
    ReadOnly,
    /// The patient's portal token.
    Patient,
    /// No token.
    Nobody,
}

/// One request and what each party answers.
struct Case {
    /// `METHOD /path` with `{placeholders}` from the fixtures.
    request: &'static str,
    /// A JSON body, with placeholders.
    body: Option<&'static str>,
    who: Who,
    /// OpenEMR's answer.
    openemr: Answer,
    /// Where OpenEMR's answer comes from.
    source: &'static str,
    /// Hearth's answer by default.
    hearth: Answer,
    /// A site in OpenEMR compatibility, when it does not answer as OpenEMR does, and why.
    compat: Option<(Answer, &'static str)>,
}

const fn case(
    request: &'static str,
    body: Option<&'static str>,
    openemr: Answer,
    source: &'static str,
    hearth: Answer,
) -> Case {
    Case {
        request,
        body,
        who: Who::Staff,
        openemr,
        source,
        hearth,
        compat: None,
    }
}

impl Case {
    const fn by(mut self, who: Who) -> Case {
        self.who = who;
        self
    }

    const fn compat(mut self, answer: Answer, why: &'static str) -> Case {
        self.compat = Some((answer, why));
        self
    }
}

use Body::*;

const L: &str = "RestControllerHelper::handleProcessingResult: http_response_code() is overwritten by the kernel's JsonResponse, so 200";
const B_OK: &str =
    "RestControllerHelper::responseHandler: the payload with the controller's status";
const B_INVALID: &str = "RestControllerHelper::validationHandler returns the message map; the kernel answers it with 200";
const B_NONE: &str =
    "RestControllerHelper::responseHandler: an empty result is new Response('', 404)";

/// The table. Order matters: later rows use what earlier rows wrote (deletes last).
const CASES: &[Case] = &[
    // ---- Host: token before routing, scopes, methods, CORS preflight.
    case("GET /api/no/such/path", None, Answer(401, Error), "AuthorizationListener runs before RoutesExtensionListener (tests: CapabilityFhirTest::testMetadataInvalidPath)", Answer(401, Error)).by(Who::Nobody),
    case("GET /nosuchfamily/x", None, Answer(401, Error), "AuthorizationListener: no strategy matches an unknown path without a token", Answer(401, Error)).by(Who::Nobody),
    case("GET /api/no/such/path", None, Answer(404, Error), "RoutesExtensionListener: Route not found", Answer(404, Error)),
    case("GET /api/facility", None, Answer(401, Error), "ApiTestClientTest: a token without user/facility.read is 401 (scope check throws AccessDenied)", Answer(403, Error)).by(Who::ReadOnly),
    case("DELETE /api/patient", None, Answer(404, Error), "RoutesExtensionListener: no route for the method", Answer(405, Error)),
    case("GET /api/patient", None, Answer(403, Error), "BearerTokenAuthorizationStrategy: a patient may not call /api", Answer(403, Error)).by(Who::Patient),
    case("OPTIONS /api/patient", None, Answer(404, Error), "CORSListener runs after routing; OPTIONS has no route (inferred)", Answer(204, Preflight)).by(Who::Nobody)
        .compat(Answer(204, Preflight), "a preflight must succeed for browsers to call the API; OpenEMR's breaks them"),
    // ---- Patients (family M).
    case("GET /api/patient", None, Answer(200, List), "PatientApiTest::testGetAll", Answer(200, List)),
    case("GET /api/patient?_sort=-nosuchfield", None, Answer(200, List), "SearchConfigClauseBuilder skips sort fields it does not allow", Answer(400, Invalid("_sort"))),
    case("GET /api/patient?_limit=ten", None, Answer(200, List), "SearchQueryConfig: intval('ten') is 0, no limit", Answer(400, Invalid("_limit"))),
    case("GET /api/patient?_limit=1", None, Answer(200, List), "QueryPagination", Answer(200, List)),
    case("POST /api/patient", Some(r#"{"fname":"Eve","lname":"Stone","sex":"Female","DOB":"1970-01-02","postal_code":"90210"}"#), Answer(201, Object), "PatientApiTest::testPost", Answer(201, Object)),
    case("GET /api/patient?postal_code=90210", None, Answer(200, List), "PatientApiTest::testGetAll", Answer(200, List)),
    case("POST /api/patient", Some(r#"{"lname":"Stone","sex":"Female","DOB":"1970-01-02"}"#), Answer(400, Invalid("fname")), "PatientApiTest::testInvalidPost", Answer(400, Invalid("fname"))),
    case("POST /api/patient", Some(r#"{"fname":"Eve","lname":"Stone","sex":"Female","DOB":"1970-01-02","email":"nope"}"#), Answer(400, Invalid("email")), "PatientValidator: Email is not a valid email", Answer(400, Invalid("email"))),
    case("GET /api/patient/{puuid}", None, Answer(200, Object), "PatientApiTest::testGetOne", Answer(200, Object)),
    case("GET /api/patient/not-a-uuid", None, Answer(400, Invalid("uuid")), "PatientApiTest::testGetOneInvalidPid (PatientService::getOne keys it uuid)", Answer(400, Invalid("puuid")))
        .compat(Answer(400, Invalid("puuid")), "OpenEMR keys the error `uuid`; Hearth names the route parameter"),
    case("GET /api/patient/{unknown}", None, Answer(400, Invalid("uuid")), "PatientService::getOne: an unknown uuid is invalid", Answer(404, Nothing)),
    case("PUT /api/patient/{puuid}", Some(r#"{"phone_home":"222-222-2222"}"#), Answer(200, Object), "PatientApiTest::testPut", Answer(200, Object)),
    case("PUT /api/patient/not-a-uuid", Some(r#"{"phone_home":"222-222-2222"}"#), Answer(400, Invalid("uuid")), "PatientApiTest::testInvalidPut (PatientValidator keys it uuid)", Answer(400, Invalid("puuid")))
        .compat(Answer(400, Invalid("puuid")), "OpenEMR keys the error `uuid`; Hearth names the route parameter"),
    case("PUT /api/patient/{unknown}", Some(r#"{"phone_home":"222-222-2222"}"#), Answer(400, Invalid("uuid")), "PatientValidator update context: UUID … does not exist", Answer(404, Nothing)),
    case("GET /portal/patient", None, Answer(200, Object), "PatientRestController::getOne for the token's patient", Answer(200, Object)).by(Who::Patient),
    // ---- Encounters (family L).
    case("GET /api/patient/{puuid}/encounter", None, Answer(200, List), L, Answer(200, List)),
    case("GET /api/patient/{unknown}/encounter", None, Answer(200, Nothing), L, Answer(404, Nothing)),
    case("POST /api/patient/{puuid}/encounter", Some(r#"{"pc_catid":"5","class_code":"AMB","reason":"Check-up"}"#), Answer(200, Object), L, Answer(201, Object)),
    case("POST /api/patient/{puuid}/encounter", Some(r#"{"class_code":"AMB"}"#), Answer(200, Invalid("pc_catid")), L, Answer(400, Invalid("pc_catid"))),
    case("GET /api/patient/{puuid}/encounter/{euuid}", None, Answer(200, Object), L, Answer(200, Object)),
    case("GET /api/patient/{puuid}/encounter/{unknown}", None, Answer(200, Nothing), L, Answer(404, Nothing)),
    case("PUT /api/patient/{puuid}/encounter/{euuid}", Some(r#"{"reason":"Follow-up","user":"admin","group":"Default"}"#), Answer(200, Object), L, Answer(200, Object)),
    case("GET /portal/patient/encounter", None, Answer(200, List), L, Answer(200, List)).by(Who::Patient),
    case("GET /portal/patient/encounter/{euuid}", None, Answer(200, Object), L, Answer(200, Object)).by(Who::Patient),
    // ---- Vitals (family B).
    case("GET /api/patient/{pid}/encounter/{eid}/vital", None, Answer(200, BareList), B_OK, Answer(200, BareList)),
    case("GET /api/patient/{pid}/encounter/{empty_eid}/vital", None, Answer(404, Empty), B_NONE, Answer(200, BareEmpty)),
    case("POST /api/patient/{pid}/encounter/{eid}/vital", Some(r#"{"bps":"130","bpd":"85","weight":"170"}"#), Answer(201, Bare(&["vid", "fid"])), "EncounterRestController::postVital", Answer(201, Bare(&["vid", "fid"]))),
    case("POST /api/patient/{pid}/encounter/{eid}/vital", Some(r#"{"bps":"high"}"#), Answer(200, BareInvalid("bps")), B_INVALID, Answer(400, BareInvalid("bps"))),
    case("GET /api/patient/{pid}/encounter/{eid}/vital/{vid}", None, Answer(200, Bare(&["id", "bps"])), B_OK, Answer(200, Bare(&["id", "bps"]))),
    case("GET /api/patient/{pid}/encounter/{eid}/vital/999999", None, Answer(404, Empty), B_NONE, Answer(404, BareError)),
    case("PUT /api/patient/{pid}/encounter/{eid}/vital/{vid}", Some(r#"{"pulse":"72"}"#), Answer(200, Bare(&["vid"])), "EncounterRestController::putVital", Answer(200, Bare(&["vid"]))),
    case("PUT /api/patient/{pid}/encounter/{eid}/vital/999999", Some(r#"{"pulse":"72"}"#), Answer(404, Empty), "EncounterService::updateVital returns null for another patient's or encounter's vital", Answer(404, BareError)),
    // ---- SOAP notes (family B).
    case("GET /api/patient/{pid}/encounter/{eid}/soap_note", None, Answer(200, BareList), B_OK, Answer(200, BareList)),
    case("GET /api/patient/{pid}/encounter/{empty_eid}/soap_note", None, Answer(404, Empty), B_NONE, Answer(200, BareEmpty)),
    case("POST /api/patient/{pid}/encounter/{eid}/soap_note", Some(r#"{"subjective":"Feels well","plan":"Rest"}"#), Answer(201, Bare(&["sid", "fid"])), "EncounterRestController::postSoapNote", Answer(201, Bare(&["sid", "fid"]))),
    case("POST /api/patient/{pid}/encounter/{eid}/soap_note", Some(r#"{"subjective":"x"}"#), Answer(200, BareInvalid("subjective")), B_INVALID, Answer(400, BareInvalid("subjective"))),
    case("GET /api/patient/{pid}/encounter/{eid}/soap_note/{sid}", None, Answer(200, Bare(&["id", "subjective"])), B_OK, Answer(200, Bare(&["id", "subjective"]))),
    case("GET /api/patient/{pid}/encounter/{eid}/soap_note/999999", None, Answer(404, Empty), B_NONE, Answer(404, BareError)),
    case("PUT /api/patient/{pid}/encounter/{eid}/soap_note/{sid}", Some(r#"{"assessment":"Stable"}"#), Answer(200, Bare(&["sid"])), "EncounterRestController::putSoapNote", Answer(200, Bare(&["sid"]))),
    // ---- Medical problems (family L).
    case("GET /api/medical_problem", None, Answer(200, List), L, Answer(200, List)),
    case("GET /api/medical_problem/{muuid}", None, Answer(200, Object), L, Answer(200, Object)),
    case("GET /api/medical_problem/{unknown}", None, Answer(200, Nothing), L, Answer(404, Nothing)),
    case("GET /api/patient/{puuid}/medical_problem", None, Answer(200, List), L, Answer(200, List)),
    case("GET /api/patient/{puuid}/medical_problem/{muuid}", None, Answer(200, List), "ConditionRestController::getAll answers the item as a list (PatientAllergyConditionApiTest)", Answer(200, List)),
    case("POST /api/patient/{puuid}/medical_problem", Some(r#"{"title":"Asthma","begdate":"2019-03-04","diagnosis":"ICD10:J45.909"}"#), Answer(200, Object), "PatientAllergyConditionApiTest accepts 200 or 201; the kernel sends 200", Answer(201, Object)),
    case("POST /api/patient/{puuid}/medical_problem", Some(r#"{"title":"A"}"#), Answer(200, Invalid("title")), L, Answer(400, Invalid("title"))),
    case("PUT /api/patient/{puuid}/medical_problem/{muuid}", Some(r#"{"title":"Hypertension, essential"}"#), Answer(200, Object), L, Answer(200, Object)),
    case("DELETE /api/patient/{puuid}/medical_problem/{muuid_del}", None, Answer(200, Object), L, Answer(200, Object)),
    case("DELETE /api/patient/{puuid}/medical_problem/{unknown}", None, Answer(200, Invalid("UUID")), "ConditionService::delete: {\"UUID\":[\"invalid or nonexisting value\"]}, status lost", Answer(404, Nothing))
        .compat(Answer(200, Nothing), "the same status; Hearth says nothing was found rather than naming the uuid invalid"),
    // ---- Allergies (family L).
    case("GET /api/allergy", None, Answer(200, List), L, Answer(200, List)),
    case("GET /api/allergy/{auuid}", None, Answer(200, Object), L, Answer(200, Object)),
    case("GET /api/allergy/{unknown}", None, Answer(200, Nothing), L, Answer(404, Nothing)),
    case("GET /api/patient/{puuid}/allergy", None, Answer(200, List), L, Answer(200, List)),
    case("GET /api/patient/{puuid}/allergy/{auuid}", None, Answer(200, List), "AllergyIntoleranceRestController::getAll answers the item as a list", Answer(200, List)),
    case("POST /api/patient/{puuid}/allergy", Some(r#"{"title":"Peanuts","begdate":"2018-05-06"}"#), Answer(200, Object), "PatientAllergyConditionApiTest accepts 200 or 201; the kernel sends 200", Answer(201, Object)),
    case("POST /api/patient/{puuid}/allergy", Some(r#"{"title":"P"}"#), Answer(200, Invalid("title")), L, Answer(400, Invalid("title"))),
    case("PUT /api/patient/{puuid}/allergy/{auuid}", Some(r#"{"comments":"Severe"}"#), Answer(200, Object), L, Answer(200, Object)),
    case("DELETE /api/patient/{puuid}/allergy/{auuid_del}", None, Answer(200, Object), L, Answer(200, Object)),
    // ---- Medications, surgeries, dental issues (family B).
    case("GET /api/patient/{pid}/medication", None, Answer(200, BareList), "ListRestController::getAll", Answer(200, BareList)),
    case("GET /api/patient/{empty_pid}/medication", None, Answer(404, Empty), B_NONE, Answer(200, BareEmpty)),
    case("GET /api/patient/{pid}/medication?_sort=nosuchfield", None, Answer(200, BareList), "ListRestController ignores the query", Answer(400, BareInvalid("_sort"))),
    case("POST /api/patient/{pid}/medication", Some(r#"{"title":"Lisinopril","begdate":"2020-01-01 00:00:00"}"#), Answer(201, Bare(&["id"])), "ListRestController::post", Answer(201, Bare(&["id"]))),
    case("POST /api/patient/{pid}/medication", Some(r#"{"begdate":"2020-01-01 00:00:00"}"#), Answer(200, BareInvalid("title")), B_INVALID, Answer(400, BareInvalid("title"))),
    case("GET /api/patient/{pid}/medication/{mid}", None, Answer(200, Bare(&["id", "title"])), "ListService::getOne", Answer(200, Bare(&["id", "title"]))),
    case("GET /api/patient/{pid}/medication/999999", None, Answer(404, Empty), B_NONE, Answer(404, BareError)),
    case("PUT /api/patient/{pid}/medication/{mid}", Some(r#"{"title":"Lisinopril 10 mg"}"#), Answer(200, Bare(&["id"])), "ListRestController::put", Answer(200, Bare(&["id"]))),
    case("DELETE /api/patient/{pid}/medication/{mid_del}", None, Answer(200, True), "ListRestController::delete", Answer(200, True)),
    case("GET /api/patient/{pid}/surgery", None, Answer(200, BareList), "ListRestController::getAll", Answer(200, BareList)),
    case("POST /api/patient/{pid}/surgery", Some(r#"{"title":"Appendectomy","begdate":"2001-02-03 00:00:00"}"#), Answer(201, Bare(&["id"])), "ListRestController::post", Answer(201, Bare(&["id"]))),
    case("POST /api/patient/{pid}/surgery", Some(r#"{"title":"A"}"#), Answer(200, BareInvalid("title")), B_INVALID, Answer(400, BareInvalid("title"))),
    case("GET /api/patient/{pid}/surgery/{surgery}", None, Answer(200, Bare(&["id", "title"])), "ListService::getOne", Answer(200, Bare(&["id", "title"]))),
    case("PUT /api/patient/{pid}/surgery/{surgery}", Some(r#"{"title":"Laparoscopic appendectomy"}"#), Answer(200, Bare(&["id"])), "ListRestController::put", Answer(200, Bare(&["id"]))),
    case("DELETE /api/patient/{pid}/surgery/{surgery}", None, Answer(200, True), "ListRestController::delete", Answer(200, True)),
    case("GET /api/patient/{pid}/dental_issue", None, Answer(200, BareList), "ListRestController::getAll", Answer(200, BareList)),
    case("POST /api/patient/{pid}/dental_issue", Some(r#"{"title":"Cavity"}"#), Answer(201, Bare(&["id"])), "ListRestController::post", Answer(201, Bare(&["id"]))),
    case("GET /api/patient/{pid}/dental_issue/{dental}", None, Answer(200, Bare(&["id", "title"])), "ListService::getOne", Answer(200, Bare(&["id", "title"]))),
    case("PUT /api/patient/{pid}/dental_issue/{dental}", Some(r#"{"title":"Cavity, molar"}"#), Answer(200, Bare(&["id"])), "ListRestController::put", Answer(200, Bare(&["id"]))),
    case("DELETE /api/patient/{pid}/dental_issue/{dental}", None, Answer(200, True), "ListRestController::delete", Answer(200, True)),
    case("GET /api/patient/{pid}/dental_issue/{dental}", None, Answer(404, Empty), B_NONE, Answer(404, BareError)),
    // ---- Appointments (family B).
    case("GET /api/patient/{pid}/appointment", None, Answer(200, BareList), "AppointmentRestController::getAllForPatient", Answer(200, BareList)),
    case("GET /api/patient/{empty_pid}/appointment", None, Answer(404, Empty), "AppointmentRestController::getAllForPatient: no appointments is an empty 404 (measured on 8.3.0)", Answer(200, BareEmpty)),
    case("GET /api/patient/{pid}/appointment?_sort=nosuchfield", None, Answer(200, BareList), "AppointmentRestController ignores the query", Answer(400, BareInvalid("_sort"))),
    case("POST /api/patient/{pid}/appointment", Some(r#"{"pc_catid":"5","pc_title":"Office Visit","pc_duration":"900","pc_hometext":"","pc_apptstatus":"-","pc_eventDate":"2024-06-05","pc_startTime":"11:00","pc_facility":"{fid}","pc_billing_location":"{fid}","pc_aid":"{prid}"}"#), Answer(200, BareInvalid("pc_hometext")), "AppointmentValidator: pc_hometext is required and particle's required() refuses an empty string", Answer(400, BareInvalid("pc_hometext"))),
    case("POST /api/patient/{pid}/appointment", Some(r#"{"pc_catid":"5","pc_title":"Office Visit","pc_duration":"900","pc_hometext":"Check","pc_apptstatus":"-","pc_eventDate":"2024-06-05","pc_startTime":"11:00","pc_facility":"{fid}","pc_billing_location":"{fid}","pc_aid":"{prid}"}"#), Answer(200, Bare(&["id"])), "AppointmentRestController::post: 200 {\"id\"} (measured on 8.3.0)", Answer(201, Bare(&["id", "uuid"]))),
    case("POST /api/patient/{pid}/appointment", Some(r#"{"pc_title":"Office Visit"}"#), Answer(200, BareInvalid("pc_hometext")), "a failed appointment create is 200 with the bare map (measured on 8.3.0)", Answer(400, BareInvalid("pc_hometext"))),
    case("POST /api/patient/{pid}/appointment", Some(r#"{"pc_catid":"5","pc_title":"Office Visit","pc_duration":"900","pc_hometext":"Check","pc_apptstatus":"-","pc_eventDate":"2024-06-05","pc_startTime":"11:05","pc_facility":"{fid}","pc_billing_location":"{fid}","pc_aid":"{prid}"}"#), Answer(200, Bare(&["id"])), "AppointmentService::insert books a provider's slot twice", Answer(409, BareError))
        .compat(Answer(409, BareError), "a provider's double booking is refused unless the site allows it (the plugin setting allow_overlapping_bookings), whatever the compatibility setting"),
    case("POST /api/patient/999999/appointment", Some(r#"{"pc_title":"Office Visit"}"#), Answer(200, BareInvalid("pid")), "AppointmentValidator: pid must be for a valid patient", Answer(404, BareError))
        .compat(Answer(404, Empty), "the patient in the path is looked up before the body"),
    case("GET /api/appointment", None, Answer(200, BareList), "AppointmentRestController::getAll", Answer(200, BareList)),
    case("GET /api/appointment/{appt}", None, Answer(200, BareList), "AppointmentRestController::getOne: a one-element list (measured on 8.3.0)", Answer(200, BareList)),
    case("GET /api/appointment/999999", None, Answer(404, Empty), B_NONE, Answer(404, BareError)),
    case("GET /api/patient/{pid}/appointment/{appt}", None, Answer(200, BareList), "AppointmentRestController::getOne: a one-element list", Answer(200, BareList)),
    case("GET /api/patient/{empty_pid}/appointment/{appt}", None, Answer(200, BareList), "AppointmentRestController::getOne looks the appointment up by pc_eid alone", Answer(404, BareError))
        .compat(Answer(404, Empty), "another patient's appointment is not answered through this patient's path"),
    case("GET /portal/patient/appointment", None, Answer(200, BareList), "AppointmentRestController::getAllForPatientByUuid for the token's patient", Answer(200, BareList)).by(Who::Patient),
    case("GET /portal/patient/appointment/{appt_uuid}", None, Answer(200, Bare(&["pc_eid", "pc_uuid"])), "AppointmentRestController::getOneForPatient", Answer(200, Bare(&["pc_eid", "pc_uuid"]))).by(Who::Patient),
    case("DELETE /api/patient/{empty_pid}/appointment/{appt_del}", None, Answer(200, Bare(&["message"])), "AppointmentRestController::delete deletes by pc_eid alone", Answer(404, BareError))
        .compat(Answer(404, Empty), "an appointment is deleted only through its own patient's path"),
    case("DELETE /api/patient/{pid}/appointment/{appt_del}", None, Answer(200, Bare(&["message"])), "AppointmentRestController::delete: {\"message\":\"record deleted\"}", Answer(200, Bare(&["message"]))),
    // ---- Lists, users, version, product (families B and L).
    case("GET /api/list/sub_relation", None, Answer(200, BareList), "ListRestController::getOptions: the list's options", Answer(200, BareList)),
    case("GET /api/list/nosuchlist", None, Answer(404, Empty), B_NONE, Answer(404, BareError)),
    case("GET /api/user", None, Answer(200, List), "UserRestController::getAll", Answer(200, List)),
    case("GET /api/user/{user_uuid}", None, Answer(200, Object), "UserRestController::getOne", Answer(200, Object)),
    case("GET /api/user/{unknown}", None, Answer(200, Nothing), L, Answer(404, Nothing)),
    case("GET /api/version", None, Answer(200, Bare(&["v_major", "v_database", "v_acl"])), "VersionRestController::getOne, anonymous (SkipAuthorizationStrategy)", Answer(200, Bare(&["v_major", "v_database", "v_acl"]))).by(Who::Nobody),
    case("GET /api/product", None, Answer(200, Bare(&["status"])), "ProductRegistrationRestController::getOne, anonymous", Answer(200, Bare(&["status"]))).by(Who::Nobody),
    // ---- Insurance companies and types (family B).
    case("GET /api/insurance_company", None, Answer(200, BareList), "InsuranceCompanyRestController::getAll", Answer(200, BareList)),
    case("GET /api/insurance_company/{iid}", None, Answer(200, Bare(&["id", "uuid", "name", "city"])), "InsuranceCompanyRestController::getOne", Answer(200, Bare(&["id", "uuid", "name", "city"]))),
    case("GET /api/insurance_company/999999", None, Answer(404, Empty), B_NONE, Answer(404, BareError)),
    case("GET /api/insurance_type", None, Answer(200, Bare(&["1", "26"])), "InsuranceCompanyRestController::getInsuranceTypes: the types by id", Answer(200, Bare(&["1", "26"]))),
    case("POST /api/insurance_company", Some(r#"{"name":"Cigna Open Access","cms_id":"CIG62","ins_type_code":12}"#), Answer(500, Error), "InsuranceCompanyApiTest::testPostReturns500DueMissingValidateMethod", Answer(201, Bare(&["iid", "uuid"])))
        .compat(Answer(201, Bare(&["iid", "uuid"])), "OpenEMR's controller calls a method its service lacks; the route does what it was written to do"),
    case("POST /api/insurance_company", Some(r#"{"attn":"Claims"}"#), Answer(500, Error), "InsuranceCompanyRestController::post calls the missing validate() before any rule", Answer(400, BareInvalid("name")))
        .compat(Answer(200, BareInvalid("name")), "InsuranceCompanyValidator's rules, answered as OpenEMR's bare routes answer a failed validation"),
    case("PUT /api/insurance_company/{iid}", Some(r#"{"attn":"Claims Department"}"#), Answer(500, Error), "InsuranceCompanyRestController::put calls the missing validate()", Answer(200, Bare(&["iid"])))
        .compat(Answer(200, Bare(&["iid"])), "the route does what it was written to do"),
    // ---- A patient's insurance and employers (family L).
    case("GET /api/patient/{puuid}/employer", None, Answer(200, List), "EmployerRestController::getAll", Answer(200, List)),
    case("GET /api/patient/{puuid}/insurance", None, Answer(200, List), "InsuranceRestController::getAll: a list", Answer(200, List)),
    case("POST /api/patient/{puuid}/insurance", Some(r#"{"type":"secondary","provider":"{iid}","policy_number":"XJ-2002","subscriber_lname":"Smith","subscriber_fname":"Ann","subscriber_relationship":"self","subscriber_DOB":"1980-05-06","subscriber_street":"1 Main St","subscriber_postal_code":"02110","subscriber_city":"Boston","subscriber_state":"MA","subscriber_sex":"Female","accept_assignment":"TRUE","date":"2024-02-01"}"#), Answer(200, Object), "InsuranceRestController::post: the inserted policy (getOne)", Answer(201, Object)),
    case("POST /api/patient/{puuid}/insurance", Some(r#"{"policy_number":"XJ-3003"}"#), Answer(200, Invalid("provider")), "CoverageValidator: provider is required; L", Answer(400, Invalid("provider"))),
    case("GET /api/patient/{puuid}/insurance/{ins_uuid}", None, Answer(200, Object), "InsuranceRestController::getOne", Answer(200, Object)),
    case("PUT /api/patient/{puuid}/insurance/{ins_uuid}", Some(r#"{"plan_name":"Silver"}"#), Answer(200, Object), "InsuranceRestController::put: the updated policy", Answer(200, Object)),
    case("GET /api/patient/{puuid}/insurance/$swap-insurance?type=tertiary&uuid={ins_uuid}", None, Answer(200, Object), "InsuranceRestController::operationSwapInsurance: {src, target}", Answer(200, Object)),
    // ---- Immunizations (family L, read-only).
    case("GET /api/immunization", None, Answer(200, List), "ImmunizationRestController::getAll", Answer(200, List)),
    case("GET /api/immunization?cvx_code=140", None, Answer(200, List), "ImmunizationService::getAll filters by the immunizations columns", Answer(200, List)),
    case("GET /api/immunization/{imm_uuid}", None, Answer(200, Object), "ImmunizationRestController::getOne", Answer(200, Object)),
    case("GET /api/immunization/{unknown}", None, Answer(200, Nothing), L, Answer(404, Nothing)),
    // ---- Messages (family B) and transactions (family L): chart-care.
    case("POST /api/patient/{pid}/message", Some(r#"{"body":"Please call back","to":"admin","from":"admin","groupname":"Default","title":"Chart Note","message_status":"New"}"#), Answer(201, Bare(&["mid"])), "MessageRestController::post: 201 {\"mid\"}", Answer(201, Bare(&["mid"]))),
    case("POST /api/patient/{pid}/message", Some(r#"{"body":"x"}"#), Answer(200, BareInvalid("body")), B_INVALID, Answer(400, BareInvalid("body"))),
    case("PUT /api/patient/{pid}/message/{msg_id}", Some(r#"{"body":"Called back","to":"admin","from":"admin","groupname":"Default","title":"Chart Note","message_status":"Done"}"#), Answer(200, Bare(&["mid"])), "MessageRestController::put: 200 {\"mid\"}", Answer(200, Bare(&["mid"]))),
    case("PUT /api/patient/{empty_pid}/message/{msg_id}", Some(r#"{"message_status":"Read"}"#), Answer(200, Bare(&["mid"])), "MessageService::update changes the note by id alone", Answer(404, BareError))
        .compat(Answer(404, Empty), "an authorization hole stays closed: another patient's note is not changed"),
    case("DELETE /api/patient/{pid}/message/{msg_del}", None, Answer(200, True), "MessageRestController::delete: 200 true", Answer(200, True)),
    case("DELETE /api/patient/{pid}/message/999999", None, Answer(200, True), "MessageService::delete answers true whatever the id names", Answer(404, BareError))
        .compat(Answer(404, Empty), "nothing was deleted; OpenEMR's empty 404 for nothing found"),
    case("GET /api/patient/{pid}/transaction", None, Answer(200, List), "TransactionRestController::GetPatientTransactions", Answer(200, List)),
    case("POST /api/patient/{pid}/transaction", Some(r#"{"type":"LBTref","groupname":"Default","referralDate":"2024-05-01","body":"Cardiology consult","referByNpi":"1234567890"}"#), Answer(200, List), L, Answer(201, List)),
    case("POST /api/patient/{pid}/transaction", Some(r#"{"type":"LBTref","groupname":"Default","body":"Cardiology consult","referByNpi":"1234567890"}"#), Answer(200, Invalid("referralDate")), "TransactionRestController::CreateTransaction records the errors, and still inserts", Answer(400, Invalid("referralDate"))),
    case("PUT /api/transaction/{tid}", Some(r#"{"body":"Cardiology consult, urgent","riskLevel":"High"}"#), Answer(200, List), "TransactionRestController::UpdateTransaction: the transaction as a list", Answer(200, List)),
    case("PUT /api/transaction/999999", Some(r#"{"body":"Nobody's"}"#), Answer(200, Nothing), L, Answer(404, Nothing)),
    // ---- Procedure orders and drugs (family L, read-only), prescriptions (family M).
    case("GET /api/procedure", None, Answer(200, List), "ProcedureRestController::getAll", Answer(200, List)),
    case("GET /api/procedure/{proc_uuid}", None, Answer(200, Object), "ProcedureRestController::getOne", Answer(200, Object)),
    case("GET /api/procedure/{unknown}", None, Answer(200, Nothing), L, Answer(404, Nothing)),
    case("GET /api/drug", None, Answer(200, List), "DrugRestController::getAll", Answer(200, List)),
    case("GET /api/drug/{drug_uuid}", None, Answer(200, Object), "DrugRestController::getOne", Answer(200, Object)),
    case("GET /api/drug/{unknown}", None, Answer(200, Nothing), L, Answer(404, Nothing)),
    case("GET /api/prescription", None, Answer(200, List), "PrescriptionApiTest: list 200", Answer(200, List)),
    case("GET /api/prescription/{rx_uuid}", None, Answer(200, Object), "PrescriptionApiTest: get one 200", Answer(200, Object)),
    case("GET /api/prescription/{unknown}", None, Answer(404, Nothing), "PrescriptionApiTest: get one 404", Answer(404, Nothing)),
    case("POST /api/prescription", Some(r#"{"drug":"Aspirin 81 MG","patient_id":"{pid}","dosage":"1"}"#), Answer(201, Object), "PrescriptionApiTest: POST 201 {id, uuid}", Answer(201, Object)),
    case("POST /api/prescription", Some(r#"{"dosage":"1"}"#), Answer(400, Invalid("drug")), "PrescriptionApiTest: missing fields 400", Answer(400, Invalid("drug"))),
    case("DELETE /api/prescription/{unknown}", None, Answer(400, Invalid("uuid")), "PrescriptionApiTest: DELETE of an unknown uuid 400", Answer(404, Nothing)),
    case("DELETE /api/prescription/{rx_del}", None, Answer(200, Object), "PrescriptionApiTest: DELETE 200 {message: record deleted} (active = 0)", Answer(200, Object)),
    // ---- Background services (family B; the host serves them). OpenEMR's answers are its
    // controller's, reached through its local API: its OAuth tokens cannot carry the scopes.
    case("GET /api/background_service", None, Answer(200, BareList), "BackgroundServiceRestController::listAll", Answer(200, BareList)),
    case("GET /api/background_service?_sort=function", None, Answer(200, BareList), "BackgroundServiceRestController::listAll reads no query", Answer(400, BareInvalid("_sort"))),
    case("GET /api/background_service/oauth_token_cleanup", None, Answer(200, Bare(&["name", "title", "active", "running", "execute_interval", "next_run"])), "BackgroundServiceRestController::getOne", Answer(200, Bare(&["name", "title", "active", "running", "execute_interval", "next_run"]))),
    case("GET /api/background_service/nosuch", None, Answer(404, Bare(&["error"])), "BackgroundServiceRestController::getOne: 404 {\"error\":\"Service not found\"}", Answer(404, BareError)),
    case("POST /api/background_service/oauth_token_cleanup/run", Some("{}"), Answer(409, Bare(&["service", "status"])), "BackgroundServiceRunner::acquireLock: not_due, which runService answers 409", Answer(409, Bare(&["service", "status"]))),
    case("POST /api/background_service/oauth_token_cleanup/run", Some("{nope"), Answer(400, Bare(&["error"])), "runService: 400 {\"error\":\"Invalid JSON payload\"}", Answer(400, BareError)),
    case("POST /api/background_service/audit_log_retention/run", Some(r#"{"force":true}"#), Answer(200, Bare(&["service", "status"])), "BackgroundServiceRestController::runService: executed", Answer(200, Bare(&["service", "status"]))),
    case("POST /api/background_service/audit_log_retention/run", Some(r#"{"force":"yes"}"#), Answer(409, Bare(&["service", "status"])), "runService forces only on `force === true`: not forced, not due", Answer(400, BareError)),
    case("POST /api/background_service/nosuch/run", Some("{}"), Answer(404, Bare(&["error"])), "runService: not_found is 404 {\"error\":\"Service not found\"}", Answer(404, BareError)),
    case("POST /api/background_service/$run", Some("{}"), Answer(200, Bare(&["results"])), "BackgroundServiceRestController::runAllDue", Answer(200, Bare(&["results"]))),
    // ---- Practitioners (family M).
    case("GET /api/practitioner", None, Answer(200, List), "PractitionerApiTest::testGetAll", Answer(200, List)),
    case("GET /api/practitioner?_sort=nosuchfield", None, Answer(200, List), "PractitionerRestController ignores _sort", Answer(400, Invalid("_sort"))),
    case("GET /api/practitioner/{pruuid}", None, Answer(200, Object), "PractitionerApiTest::testGetOne", Answer(200, Object)),
    case("GET /api/practitioner/{unknown}", None, Answer(400, Invalid("uuid")), "PractitionerService::getOne: validateId fails", Answer(404, Nothing)),
    case("POST /api/practitioner", Some(r#"{"fname":"Meredith","lname":"Grey","npi":"1122334455"}"#), Answer(201, Object), "PractitionerApiTest::testPost", Answer(201, Object)),
    case("POST /api/practitioner", Some(r#"{"fname":"Meredith","lname":"Grey"}"#), Answer(400, Invalid("npi")), "PractitionerApiTest::testInvalidPost", Answer(400, Invalid("npi"))),
    case("PUT /api/practitioner/{pruuid}", Some(r#"{"specialty":"Surgery"}"#), Answer(200, Object), "PractitionerApiTest::testPut", Answer(200, Object)),
    case("PUT /api/practitioner/{unknown}", Some(r#"{"specialty":"Surgery"}"#), Answer(400, Invalid("uuid")), "PractitionerService::update reads the row back with getOne", Answer(404, Nothing)),
    // ---- Facilities (family M).
    case("GET /api/facility", None, Answer(200, List), "FacilityApiTest::testGetAll", Answer(200, List)),
    case("GET /api/facility?name=Main%20Clinic", None, Answer(200, List), "FacilityRestController: exact filters", Answer(200, List)),
    case("GET /api/facility/{fuuid}", None, Answer(200, Object), "FacilityApiTest::testGetOne", Answer(200, Object)),
    case("GET /api/facility/{unknown}", None, Answer(400, Invalid("uuid")), "FacilityService::getOne: validateId fails (FacilityApiTest::testGetOneInvalidId)", Answer(404, Nothing)),
    case("POST /api/facility", Some(r#"{"name":"North Clinic","facility_npi":"1234567893"}"#), Answer(201, Object), "FacilityApiTest::testPost", Answer(201, Object)),
    case("POST /api/facility", Some(r#"{"facility_npi":"1234567893"}"#), Answer(400, Invalid("name")), "FacilityApiTest::testInvalidPost", Answer(400, Invalid("name"))),
    case("PUT /api/facility/{fuuid}", Some(r#"{"city":"Springfield"}"#), Answer(200, Object), "FacilityApiTest::testPut", Answer(200, Object)),
    case("PUT /api/facility/{fuuid}", Some(r#"{"email":"not-an-email"}"#), Answer(400, Invalid("email")), "FacilityApiTest::testInvalidPut", Answer(400, Invalid("email"))),
    // ---- FHIR (the FHIR specification's answers in both settings; see docs/compatibility.md).
    case("GET /fhir/Patient", None, Answer(200, FhirBundle("collection")), "FhirPatientRestController::getAll: FhirResourcesService::createBundle('Patient', ..., false) makes a collection", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Patient/_search", None, Answer(200, FhirBundle("collection")), "FhirPatientRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/Patient/{puuid}", None, Answer(200, FhirResource("Patient")), "FhirPatientRestController::getOne", Answer(200, FhirResource("Patient"))),
    case("GET /fhir/Patient/{unknown}", None, Answer(404, BareEmpty), "FhirPatientRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("POST /fhir/Patient", Some(r#"{"resourceType":"Patient","name":[{"family":"Rivera","given":["Luz"]}],"gender":"female","birthDate":"1975-03-02"}"#), Answer(201, FhirResource("Patient")), "FhirPatientRestController::post: FhirValidationService, then the mapped insert; 201 with the created resource", Answer(201, FhirResource("Patient"))),
    case("PUT /fhir/Patient/{puuid}", Some(r#"{"resourceType":"Patient","id":"{puuid}","name":[{"family":"Smith","given":["Ann"]}],"gender":"female","birthDate":"1980-05-06"}"#), Answer(200, FhirResource("Patient")), "FhirPatientRestController::put: the mapped update; 200 with the resource", Answer(200, FhirResource("Patient"))),
    case("GET /fhir/Patient/{puuid}/_history", None, Answer(404, Error), "RoutesExtensionListener: no FHIR route has _history (Route not found)", Answer(200, FhirBundle("history")))
        .compat(Answer(200, FhirBundle("history")), "FHIR's history interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/Patient/{puuid}/_history/1", None, Answer(404, Error), "RoutesExtensionListener: no FHIR route has _history (Route not found)", Answer(200, FhirResource("Patient")))
        .compat(Answer(200, FhirResource("Patient")), "FHIR's vread interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/Practitioner", None, Answer(200, FhirBundle("collection")), "FhirPractitionerRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Practitioner/_search", None, Answer(200, FhirBundle("collection")), "FhirPractitionerRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/Practitioner/{pruuid}", None, Answer(200, FhirResource("Practitioner")), "FhirPractitionerRestController::getOne", Answer(200, FhirResource("Practitioner"))),
    case("POST /fhir/Practitioner", Some(r#"{"resourceType":"Practitioner","name":[{"family":"Grey","given":["Meredith"]}],"identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"1922334455"}]}"#), Answer(201, FhirResource("Practitioner")), "FhirPractitionerRestController::post: FhirValidationService, then the mapped insert; 201 with the created resource", Answer(201, FhirResource("Practitioner"))),
    case("PUT /fhir/Practitioner/{pruuid}", Some(r#"{"resourceType":"Practitioner","id":"{pruuid}","name":[{"family":"House","given":["Gregory"]}],"identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567890"}]}"#), Answer(200, FhirResource("Practitioner")), "FhirPractitionerRestController::put: the mapped update; 200 with the resource", Answer(200, FhirResource("Practitioner"))),
    case("GET /fhir/Practitioner/{pruuid}/_history", None, Answer(404, Error), "RoutesExtensionListener: no FHIR route has _history (Route not found)", Answer(200, FhirBundle("history")))
        .compat(Answer(200, FhirBundle("history")), "FHIR's history interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/Practitioner/{pruuid}/_history/1", None, Answer(404, Error), "RoutesExtensionListener: no FHIR route has _history (Route not found)", Answer(200, FhirResource("Practitioner")))
        .compat(Answer(200, FhirResource("Practitioner")), "FHIR's vread interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/PractitionerRole", None, Answer(200, FhirBundle("collection")), "FhirPractitionerRoleRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/PractitionerRole/_search", None, Answer(200, FhirBundle("collection")), "FhirPractitionerRoleRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/PractitionerRole/{unknown}", None, Answer(404, BareEmpty), "FhirPractitionerRoleRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("GET /fhir/Person", None, Answer(200, FhirBundle("collection")), "FhirPersonRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Person/_search", None, Answer(200, FhirBundle("collection")), "FhirPersonRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/Person/{unknown}", None, Answer(404, BareEmpty), "FhirPersonRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("GET /fhir/Organization", None, Answer(200, FhirBundle("collection")), "FhirOrganizationRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Organization/_search", None, Answer(200, FhirBundle("collection")), "FhirOrganizationRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/Organization/{fuuid}", None, Answer(200, FhirResource("Organization")), "FhirOrganizationRestController::getOne", Answer(200, FhirResource("Organization"))),
    case("POST /fhir/Organization", Some(r#"{"resourceType":"Organization","name":"East Clinic","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567893"}]}"#), Answer(201, FhirResource("Organization")), "FhirOrganizationRestController::post: FhirValidationService, then the mapped insert; 201 with the created resource", Answer(201, FhirResource("Organization"))),
    case("PUT /fhir/Organization/{fuuid}", Some(r#"{"resourceType":"Organization","id":"{fuuid}","name":"Main Clinic","identifier":[{"system":"http://hl7.org/fhir/sid/us-npi","value":"1234567893"}]}"#), Answer(200, FhirResource("Organization")), "FhirOrganizationRestController::put: the mapped update; 200 with the resource", Answer(200, FhirResource("Organization"))),
    case("GET /fhir/Organization/{fuuid}/_history", None, Answer(404, Error), "RoutesExtensionListener: no FHIR route has _history (Route not found)", Answer(200, FhirBundle("history")))
        .compat(Answer(200, FhirBundle("history")), "FHIR's history interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/Organization/{fuuid}/_history/1", None, Answer(404, Error), "RoutesExtensionListener: no FHIR route has _history (Route not found)", Answer(200, FhirResource("Organization")))
        .compat(Answer(200, FhirResource("Organization")), "FHIR's vread interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/Location", None, Answer(200, FhirBundle("collection")), "FhirLocationRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Location/_search", None, Answer(200, FhirBundle("collection")), "FhirLocationRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/Location/{fuuid}", None, Answer(200, FhirResource("Location")), "FhirLocationRestController::getOne", Answer(200, FhirResource("Location"))),
    case("GET /fhir/Encounter", None, Answer(200, FhirBundle("collection")), "FhirEncounterRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Encounter/_search", None, Answer(200, FhirBundle("collection")), "FhirEncounterRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/Encounter/{euuid}", None, Answer(200, FhirResource("Encounter")), "FhirEncounterRestController::getOne", Answer(200, FhirResource("Encounter"))),
    case("POST /fhir/Encounter", Some(r#"{"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"subject":{"reference":"Patient/{puuid}"}}"#), Answer(404, Error), "RoutesExtensionListener: OpenEMR routes no FHIR Encounter write (Route not found)", Answer(201, FhirResource("Encounter")))
        .compat(Answer(201, FhirResource("Encounter")), "FHIR's create interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("PUT /fhir/Encounter/{euuid}", Some(r#"{"resourceType":"Encounter","id":"{euuid}","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"AMB"},"subject":{"reference":"Patient/{puuid}"}}"#), Answer(404, Error), "RoutesExtensionListener: OpenEMR routes no FHIR Encounter write (Route not found)", Answer(200, FhirResource("Encounter")))
        .compat(Answer(200, FhirResource("Encounter")), "FHIR's update interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/Encounter/{euuid}/_history", None, Answer(404, Error), "RoutesExtensionListener: no FHIR route has _history (Route not found)", Answer(200, FhirBundle("history")))
        .compat(Answer(200, FhirBundle("history")), "FHIR's history interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/Encounter/{euuid}/_history/1", None, Answer(404, Error), "RoutesExtensionListener: no FHIR route has _history (Route not found)", Answer(200, FhirResource("Encounter")))
        .compat(Answer(200, FhirResource("Encounter")), "FHIR's vread interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/Condition", None, Answer(200, FhirBundle("collection")), "FhirConditionRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Condition/_search", None, Answer(200, FhirBundle("collection")), "FhirConditionRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/Condition/{unknown}", None, Answer(404, BareEmpty), "FhirConditionRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("POST /fhir/Condition", Some(r#"{"resourceType":"Condition","code":{"text":"Asthma"},"subject":{"reference":"Patient/{puuid}"}}"#), Answer(404, Error), "RoutesExtensionListener: OpenEMR routes no FHIR Condition write (Route not found)", Answer(201, FhirResource("Condition")))
        .compat(Answer(201, FhirResource("Condition")), "FHIR's create interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("PUT /fhir/Condition/{muuid}", Some(r#"{"resourceType":"Condition","id":"{muuid}","code":{"text":"Hypertension"},"subject":{"reference":"Patient/{puuid}"}}"#), Answer(404, Error), "RoutesExtensionListener: OpenEMR routes no FHIR Condition write (Route not found)", Answer(200, FhirResource("Condition")))
        .compat(Answer(200, FhirResource("Condition")), "FHIR's update interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/Condition/{muuid}/_history", None, Answer(404, Error), "RoutesExtensionListener: no FHIR route has _history (Route not found)", Answer(200, FhirBundle("history")))
        .compat(Answer(200, FhirBundle("history")), "FHIR's history interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/Condition/{muuid}/_history/1", None, Answer(404, Error), "RoutesExtensionListener: no FHIR route has _history (Route not found)", Answer(200, FhirResource("Condition")))
        .compat(Answer(200, FhirResource("Condition")), "FHIR's vread interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/AllergyIntolerance", None, Answer(200, FhirBundle("collection")), "FhirAllergyIntoleranceRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/AllergyIntolerance/_search", None, Answer(200, FhirBundle("collection")), "FhirAllergyIntoleranceRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/AllergyIntolerance/{unknown}", None, Answer(404, BareEmpty), "FhirAllergyIntoleranceRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("POST /fhir/AllergyIntolerance", Some(r#"{"resourceType":"AllergyIntolerance","code":{"text":"Latex"},"patient":{"reference":"Patient/{puuid}"}}"#), Answer(404, Error), "RoutesExtensionListener: OpenEMR routes no FHIR AllergyIntolerance write (Route not found)", Answer(201, FhirResource("AllergyIntolerance")))
        .compat(Answer(201, FhirResource("AllergyIntolerance")), "FHIR's create interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("PUT /fhir/AllergyIntolerance/{auuid}", Some(r#"{"resourceType":"AllergyIntolerance","id":"{auuid}","code":{"text":"Hypertension"},"patient":{"reference":"Patient/{puuid}"}}"#), Answer(404, Error), "RoutesExtensionListener: OpenEMR routes no FHIR AllergyIntolerance write (Route not found)", Answer(200, FhirResource("AllergyIntolerance")))
        .compat(Answer(200, FhirResource("AllergyIntolerance")), "FHIR's update interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/AllergyIntolerance/{auuid}/_history", None, Answer(404, Error), "RoutesExtensionListener: no FHIR route has _history (Route not found)", Answer(200, FhirBundle("history")))
        .compat(Answer(200, FhirBundle("history")), "FHIR's history interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/AllergyIntolerance/{auuid}/_history/1", None, Answer(404, Error), "RoutesExtensionListener: no FHIR route has _history (Route not found)", Answer(200, FhirResource("AllergyIntolerance")))
        .compat(Answer(200, FhirResource("AllergyIntolerance")), "FHIR's vread interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/Observation", None, Answer(200, FhirBundle("collection")), "FhirObservationRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Observation/_search", None, Answer(200, FhirBundle("collection")), "FhirObservationRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/Observation/{unknown}", None, Answer(404, BareEmpty), "FhirObservationRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("POST /fhir/Observation", Some(r#"{"resourceType":"Observation","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"vital-signs"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},"subject":{"reference":"Patient/{puuid}"},"encounter":{"reference":"Encounter/{euuid}"},"effectiveDateTime":"2024-03-04T10:00:00Z","valueQuantity":{"value":70,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}}"#), Answer(404, Error), "RoutesExtensionListener: OpenEMR routes no FHIR Observation write (Route not found)", Answer(201, FhirResource("Observation")))
        .compat(Answer(201, FhirResource("Observation")), "FHIR's create interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("PUT /fhir/Observation/{obs_bp}", Some(r#"{"resourceType":"Observation","id":"{obs_bp}","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"subject":{"reference":"Patient/{puuid}"},"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":118,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}},{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":76,"system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}"#), Answer(404, Error), "RoutesExtensionListener: OpenEMR routes no FHIR Observation write (Route not found)", Answer(200, FhirResource("Observation")))
        .compat(Answer(200, FhirResource("Observation")), "FHIR's update interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/Observation/{obs_bp}/_history", None, Answer(404, Error), "RoutesExtensionListener: no FHIR route has _history (Route not found)", Answer(200, FhirBundle("history")))
        .compat(Answer(200, FhirBundle("history")), "FHIR's history interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/Observation/{obs_bp}/_history/1", None, Answer(404, Error), "RoutesExtensionListener: no FHIR route has _history (Route not found)", Answer(200, FhirResource("Observation")))
        .compat(Answer(200, FhirResource("Observation")), "FHIR's vread interaction, which OpenEMR does not route; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/MedicationRequest", None, Answer(200, FhirBundle("collection")), "FhirMedicationRequestRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/MedicationRequest/_search", None, Answer(200, FhirBundle("collection")), "FhirMedicationRequestRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/MedicationRequest/{unknown}", None, Answer(404, BareEmpty), "FhirMedicationRequestRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("GET /fhir/Procedure", None, Answer(200, FhirBundle("collection")), "FhirProcedureRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Procedure/_search", None, Answer(200, FhirBundle("collection")), "FhirProcedureRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/Procedure/{unknown}", None, Answer(404, BareEmpty), "FhirProcedureRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("GET /fhir/Appointment", None, Answer(200, FhirBundle("collection")), "FhirAppointmentRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Appointment/_search", None, Answer(200, FhirBundle("collection")), "FhirAppointmentRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/Appointment/{appt_uuid}", None, Answer(200, FhirResource("Appointment")), "FhirAppointmentRestController::getOne", Answer(200, FhirResource("Appointment"))),
    case("GET /fhir/Appointment/{unknown}", None, Answer(404, BareEmpty), "FhirAppointmentRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("GET /fhir/Immunization", None, Answer(200, FhirBundle("collection")), "FhirImmunizationRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Immunization/_search", None, Answer(200, FhirBundle("collection")), "FhirImmunizationRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/Immunization/{imm_uuid}", None, Answer(200, FhirResource("Immunization")), "FhirImmunizationRestController::getOne", Answer(200, FhirResource("Immunization"))),
    case("GET /fhir/Immunization/{unknown}", None, Answer(404, BareEmpty), "FhirImmunizationRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    // ---- CarePlan, CareTeam, Goal, Device, Questionnaire(Response), ValueSet: chart-care.
    case("GET /fhir/CarePlan", None, Answer(200, FhirBundle("collection")), "FhirCarePlanRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/CarePlan/_search", None, Answer(200, FhirBundle("collection")), "FhirCarePlanRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/CarePlan/{careplan_uuid}", None, Answer(200, FhirResource("CarePlan")), "FhirCarePlanRestController::getOne", Answer(200, FhirResource("CarePlan"))),
    case("GET /fhir/CarePlan/{unknown}", None, Answer(404, BareEmpty), "FhirCarePlanRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("GET /fhir/CareTeam", None, Answer(200, FhirBundle("collection")), "FhirCareTeamRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/CareTeam/_search", None, Answer(200, FhirBundle("collection")), "FhirCareTeamRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/CareTeam/{careteam_uuid}", None, Answer(200, FhirResource("CareTeam")), "FhirCareTeamRestController::getOne", Answer(200, FhirResource("CareTeam"))),
    case("GET /fhir/CareTeam/{unknown}", None, Answer(404, BareEmpty), "FhirCareTeamRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("GET /fhir/Goal", None, Answer(200, FhirBundle("collection")), "FhirGoalRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Goal/_search", None, Answer(200, FhirBundle("collection")), "FhirGoalRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/Goal/{goal_uuid}", None, Answer(200, FhirResource("Goal")), "FhirGoalRestController::getOne", Answer(200, FhirResource("Goal"))),
    case("GET /fhir/Goal/{unknown}", None, Answer(404, BareEmpty), "FhirGoalRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("GET /fhir/Device", None, Answer(200, FhirBundle("collection")), "FhirDeviceRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Device/_search", None, Answer(200, FhirBundle("collection")), "FhirDeviceRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/Device/{device_uuid}", None, Answer(200, FhirResource("Device")), "FhirDeviceRestController::getOne", Answer(200, FhirResource("Device"))),
    case("GET /fhir/Device/{unknown}", None, Answer(404, BareEmpty), "FhirDeviceRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("GET /fhir/Questionnaire", None, Answer(200, FhirBundle("collection")), "FhirQuestionnaireRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Questionnaire/_search", None, Answer(200, FhirBundle("collection")), "FhirQuestionnaireRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/QuestionnaireResponse", None, Answer(200, FhirBundle("collection")), "FhirQuestionnaireResponseRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/QuestionnaireResponse/_search", None, Answer(200, FhirBundle("collection")), "FhirQuestionnaireResponseRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/QuestionnaireResponse/{qr_uuid}", None, Answer(200, FhirResource("QuestionnaireResponse")), "FhirQuestionnaireResponseRestController::getOne", Answer(200, FhirResource("QuestionnaireResponse"))),
    case("GET /fhir/QuestionnaireResponse/{unknown}", None, Answer(404, BareEmpty), "FhirQuestionnaireResponseRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("GET /fhir/ValueSet", None, Answer(200, FhirBundle("collection")), "FhirValueSetRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/ValueSet/_search", None, Answer(200, FhirBundle("collection")), "FhirValueSetRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/ValueSet/{valueset}", None, Answer(200, FhirResource("ValueSet")), "FhirValueSetRestController::getOne", Answer(200, FhirResource("ValueSet"))),
    case("GET /fhir/ValueSet/{unknown}", None, Answer(404, BareEmpty), "FhirValueSetRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("GET /fhir/Coverage", None, Answer(200, FhirBundle("collection")), "FhirCoverageRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Coverage/_search", None, Answer(200, FhirBundle("collection")), "FhirCoverageRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/Coverage/{ins_uuid}", None, Answer(200, FhirResource("Coverage")), "FhirCoverageRestController::getOne", Answer(200, FhirResource("Coverage"))),
    case("GET /fhir/Coverage/{unknown}", None, Answer(404, BareEmpty), "FhirCoverageRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("GET /fhir/RelatedPerson", None, Answer(200, FhirBundle("collection")), "FhirGenericRestController::getAll (RelatedPerson): a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/RelatedPerson/_search", None, Answer(200, FhirBundle("collection")), "FhirGenericRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/RelatedPerson/{rp_uuid}", None, Answer(200, FhirResource("RelatedPerson")), "FhirGenericRestController::getOne (RelatedPerson)", Answer(200, FhirResource("RelatedPerson"))),
    case("GET /fhir/RelatedPerson/{unknown}", None, Answer(404, BareEmpty), "RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("GET /fhir/Group", None, Answer(200, FhirBundle("collection")), "FhirGroupRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Group/_search", None, Answer(404, Error), "RoutesExtensionListener: OpenEMR routes no Group _search (Route not found)", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR's search by POST, as every other Hearth type answers it; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/Group/{guuid}", None, Answer(200, FhirResource("Group")), "FhirGroupRestController::getOne", Answer(200, FhirResource("Group"))),
    case("GET /fhir/Group/{unknown}", None, Answer(404, BareEmpty), "FhirGroupRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("POST /fhir/Group", Some(r#"{"resourceType":"Group","name":"New cohort","member":[{"entity":{"reference":"Patient/{puuid}"}}]}"#), Answer(404, Error), "RoutesExtensionListener: OpenEMR routes no Group create (Route not found)", Answer(201, FhirResource("Group")))
        .compat(Answer(201, FhirResource("Group")), "beyond OpenEMR: groups a Group-level export covers are made here; nothing an OpenEMR client sends reaches it"),
    case("PUT /fhir/Group/{guuid}", Some(r#"{"resourceType":"Group","id":"{guuid}","name":"Cohort","member":[{"entity":{"reference":"Patient/{puuid}"}}]}"#), Answer(404, Error), "RoutesExtensionListener: OpenEMR routes no Group update (Route not found)", Answer(200, FhirResource("Group")))
        .compat(Answer(200, FhirResource("Group")), "beyond OpenEMR: a group's members change here; nothing an OpenEMR client sends reaches it"),
    case("GET /fhir/Provenance", None, Answer(200, FhirBundle("collection")), "FhirProvenanceRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Provenance/_search", None, Answer(200, FhirBundle("collection")), "FhirProvenanceRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/Provenance/{unknown}", None, Answer(404, BareEmpty), "FhirProvenanceRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    // ---- Orders, results, specimens, drugs and dispenses (FHIR).
    case("GET /fhir/ServiceRequest", None, Answer(200, FhirBundle("collection")), "FhirServiceRequestRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/ServiceRequest/_search", None, Answer(200, FhirBundle("collection")), "FhirServiceRequestRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/ServiceRequest/{proc_uuid}", None, Answer(200, FhirResource("ServiceRequest")), "FhirServiceRequestRestController::getOne", Answer(200, FhirResource("ServiceRequest"))),
    case("GET /fhir/ServiceRequest/{unknown}", None, Answer(404, BareEmpty), "FhirServiceRequestRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("GET /fhir/DiagnosticReport", None, Answer(200, FhirBundle("collection")), "FhirDiagnosticReportRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/DiagnosticReport/_search", None, Answer(200, FhirBundle("collection")), "FhirDiagnosticReportRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/DiagnosticReport/{report_uuid}", None, Answer(200, FhirResource("DiagnosticReport")), "FhirDiagnosticReportRestController::getOne", Answer(200, FhirResource("DiagnosticReport"))),
    case("GET /fhir/DiagnosticReport/{unknown}", None, Answer(404, BareEmpty), "FhirDiagnosticReportRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("GET /fhir/Specimen", None, Answer(200, FhirBundle("collection")), "FhirSpecimenRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Specimen/_search", None, Answer(200, FhirBundle("collection")), "FhirSpecimenRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/Specimen/{spec_uuid}", None, Answer(200, FhirResource("Specimen")), "FhirSpecimenRestController::getOne", Answer(200, FhirResource("Specimen"))),
    case("GET /fhir/Specimen/{unknown}", None, Answer(404, BareEmpty), "FhirSpecimenRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("GET /fhir/Medication", None, Answer(200, FhirBundle("collection")), "FhirMedicationRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Medication/_search", None, Answer(200, FhirBundle("collection")), "FhirMedicationRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/Medication/{drug_uuid}", None, Answer(200, FhirResource("Medication")), "FhirMedicationRestController::getOne", Answer(200, FhirResource("Medication"))),
    case("GET /fhir/Medication/{unknown}", None, Answer(404, BareEmpty), "FhirMedicationRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("GET /fhir/MedicationDispense", None, Answer(200, FhirBundle("collection")), "FhirMedicationDispenseRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/MedicationDispense/_search", None, Answer(200, FhirBundle("collection")), "FhirMedicationDispenseRestController: the form body merged into the query, as getAll", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/MedicationDispense/{disp_uuid}", None, Answer(200, FhirResource("MedicationDispense")), "FhirMedicationDispenseRestController::getOne", Answer(200, FhirResource("MedicationDispense"))),
    case("GET /fhir/MedicationDispense/{unknown}", None, Answer(404, BareEmpty), "FhirMedicationDispenseRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("GET /fhir/Observation/{lab_uuid}", None, Answer(200, FhirResource("Observation")), "FhirObservationLaboratoryService: a laboratory result", Answer(200, FhirResource("Observation"))),
    case("GET /fhir/MedicationRequest/{rx_uuid}", None, Answer(200, FhirResource("MedicationRequest")), "FhirMedicationRequestService: a prescription (intent order)", Answer(200, FhirResource("MedicationRequest"))),
    // ---- Documents (family B) and DocumentReference, Binary, Media, $docref.
    case("POST /api/patient/{pid}/document?path=/Categories/Medical%20Record", None, Answer(404, Empty), "DocumentRestController::postWithPath: no uploaded file, the service answers false: an empty 404", Answer(415, BareInvalid("document"))),
    case("GET /api/patient/{pid}/document?path=/Categories/Patient%20Information/Patient%20Photograph", None, Answer(200, BareList), "DocumentRestController::getAllAtPath", Answer(200, BareList)),
    case("GET /api/patient/{pid}/document?path=/Categories/Lab%20Report", None, Answer(404, Empty), B_NONE, Answer(200, BareEmpty)),
    case("GET /api/patient/{pid}/document", None, Answer(404, Empty), "DocumentService::getAllAtPath: no category at an empty path, false: an empty 404", Answer(400, BareInvalid("path"))),
    case("GET /api/patient/{pid}/document/{did}", None, Answer(200, Bytes), "DocumentRestController::downloadFile: the file as an attachment", Answer(200, Bytes)),
    case("GET /api/patient/{pid}/document/999999", None, Answer(400, Empty), "DocumentRestController::downloadFile: no file is a 400 with no body", Answer(404, BareError))
        .compat(Answer(404, Empty), "a missing document is not a malformed request: the empty 404 OpenEMR answers for nothing found on bare routes"),
    case("GET /fhir/DocumentReference", None, Answer(200, FhirBundle("collection")), "FhirDocumentReferenceRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/DocumentReference/_search", None, Answer(200, FhirBundle("collection")), "RoutesExtensionListener: POST _search is the GET search with the form merged", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/DocumentReference/{doc_uuid}", None, Answer(200, FhirResource("DocumentReference")), "FhirDocumentReferenceRestController::getOne", Answer(200, FhirResource("DocumentReference"))),
    case("GET /fhir/DocumentReference/{unknown}", None, Answer(404, BareEmpty), "FhirDocumentReferenceRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
    case("POST /fhir/DocumentReference/$docref?patient={puuid}", None, Answer(200, FhirBundle("collection")), "FhirDocRefRestController::getAll: the patient's CCD in a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "US Core's $docref answers a searchset Bundle"),
    case("POST /fhir/DocumentReference/$docref", None, Answer(400, FhirResource("OperationOutcome")), "FhirDocRefRestController: a search error is a 400 OperationOutcome (processing)", Answer(400, FhirResource("OperationOutcome"))),
    case("GET /fhir/Binary/{doc_uuid}", None, Answer(200, Bytes), "FhirDocumentRestController::downloadDocument: the file in its own type", Answer(200, Bytes)),
    case("GET /fhir/Binary/{unknown}", None, Answer(404, FhirResource("OperationOutcome")), "FhirDocumentRestController::downloadDocument: a missing document is a 404", Answer(404, FhirResource("OperationOutcome"))),
    case("GET /fhir/Media", None, Answer(200, FhirBundle("collection")), "FhirMediaRestController::getAll: a collection Bundle", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("POST /fhir/Media/_search", None, Answer(200, FhirBundle("collection")), "RoutesExtensionListener: POST _search is the GET search with the form merged", Answer(200, FhirBundle("searchset")))
        .compat(Answer(200, FhirBundle("searchset")), "FHIR clients follow the specification: a search answers a searchset"),
    case("GET /fhir/Media/{doc_uuid}", None, Answer(200, FhirResource("Media")), "FhirMediaRestController::getOne", Answer(200, FhirResource("Media"))),
    case("GET /fhir/Media/{unknown}", None, Answer(404, BareEmpty), "FhirMediaRestController::getOne: RestControllerHelper::handleFhirProcessingResult answers [] with 404", Answer(404, FhirResource("OperationOutcome")))
        .compat(Answer(404, FhirResource("OperationOutcome")), "a FHIR error is an OperationOutcome"),
];

/// What the fixtures of one site are called in the table.
type Fixtures = HashMap<&'static str, String>;

/// A staff token with every scope the table needs: every standard API scope
/// ([`ALL_USER_SCOPES`]) and the FHIR types' search and read.
const STAFF_SCOPES: &str = "openid offline_access api:oemr api:fhir api:port \
    user/patient.cruds user/encounter.cruds user/vital.cruds user/soap_note.cruds \
    user/medical_problem.cruds user/allergy.cruds user/medication.cruds user/surgery.cruds \
    user/dental_issue.cruds user/practitioner.cruds user/facility.cruds user/Patient.cruds \
    user/Practitioner.cruds user/PractitionerRole.rs user/Person.rs user/Organization.cruds \
    user/Location.rs user/Encounter.cruds user/Condition.cruds user/AllergyIntolerance.cruds \
    user/Observation.cruds user/MedicationRequest.rs user/Procedure.rs user/Provenance.rs \
    user/appointment.cruds user/Appointment.rs user/immunization.rs user/Immunization.rs \
    user/Group.cruds user/message.cud user/transaction.crus user/CarePlan.rs user/CareTeam.rs \
    user/Goal.rs user/Device.rs user/Questionnaire.rs user/QuestionnaireResponse.rs \
    user/ValueSet.rs \
    user/insurance_company.crus user/insurance_type.s user/insurance.crus \
    user/insurance.$swap-insurance user/employer.s user/list.r user/user.rs \
    user/Coverage.rs user/RelatedPerson.rs \
    user/procedure.rs user/drug.rs user/prescription.crds user/ServiceRequest.rs \
    user/DiagnosticReport.rs user/Specimen.rs user/Medication.rs user/MedicationDispense.rs \
    user/document.crs user/DocumentReference.rs user/Binary.read \
    user/Media.rs user/DocumentReference.$docref \
    user/background_service.rs user/run.c user/background_service.$run";

/// Builds the rows the table reads, through the API, on `site`.
async fn fixtures(app: &TestApp, site: &str, token: &str) -> Fixtures {
    let mut f = Fixtures::new();
    let api = |path: &str| app.api(site, path);
    let created = |reply: &Reply, what: &str| {
        assert!(
            (200..300).contains(&reply.status),
            "creating {what} on {site}: {} {}",
            reply.status,
            reply.text
        );
        reply.json.clone()
    };
    let (pid, puuid) = app.create_patient(site, token, "Ann", "Smith").await;
    let (empty_pid, _) = app.create_patient(site, token, "Bob", "Empty").await;
    f.insert("pid", pid.to_string());
    f.insert("puuid", puuid.clone());
    f.insert("empty_pid", empty_pid.to_string());
    f.insert("unknown", "90cde167-0000-4000-8000-00000000dead".into());
    let facility = app
        .post(
            &api("/api/facility"),
            token,
            json!({"name": "Main Clinic", "facility_npi": "1234567893"}),
        )
        .await;
    f.insert(
        "fuuid",
        text(&created(&facility, "a facility")["data"]["uuid"]),
    );
    let practitioner = app
        .post(
            &api("/api/practitioner"),
            token,
            json!({"fname": "Gregory", "lname": "House", "npi": "1234567890"}),
        )
        .await;
    f.insert(
        "pruuid",
        text(&created(&practitioner, "a practitioner")["data"]["uuid"]),
    );
    f.insert("prid", text(&practitioner.json["data"]["id"]));
    // Immunizations have no write route (OpenEMR's are read-only): one row in SQL.
    let imm_uuid = "90cde167-0000-4000-8000-0000000000b1";
    let statement = format!(
        "INSERT INTO immunizations (uuid, patient_id, administered_date, cvx_code, lot_number, \
         route, create_date, update_date) VALUES ('{imm_uuid}', {pid}, '2024-01-02 10:00:00', \
         '140', 'LOT-1', 'intramuscular', '2024-01-02 10:05:00', '2024-01-02 10:05:00')"
    );
    let site_ref = app.state.sites.get(site).await.expect("the site");
    hearth::on_db!(&site_ref.db, |pool| {
        sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
            .execute(pool)
            .await
            .expect("an immunization");
    });
    f.insert("imm_uuid", imm_uuid.to_owned());
    // Care records (chart-care): a care plan form with a goal, a care team, an implanted
    // device and a questionnaire response, in SQL as OpenEMR's screens write them.
    let care = [
        format!(
            "INSERT INTO forms (uuid, date, encounter, form_name, form_id, pid, formdir) VALUES \
                 ('90cde167-0000-4000-8000-0000000000c1', '2024-01-02 10:00:00', 0, 'Care Plan', 1, {pid}, 'care_plan')"
        ),
        format!(
            "INSERT INTO form_care_plan (id, uuid, date, pid, description, care_plan_type) VALUES \
                 (1, '90cde167-0000-4000-8000-0000000000d1', '2024-01-02 10:00:00', {pid}, 'Walk daily', 'goal')"
        ),
        format!(
            "INSERT INTO care_teams (uuid, pid, team_name, date_created) VALUES \
                 ('90cde167-0000-4000-8000-0000000000e1', {pid}, 'Primary care team', '2024-01-02 10:00:00')"
        ),
        format!(
            "INSERT INTO lists (uuid, date, type, title, udi, pid) VALUES ('90cde167-0000-4000-8000-0000000000f1', \
                 '2024-01-02 10:00:00', 'medical_device', 'Cardiac pacemaker', '(01)00844588003288(17)291120(10)L1', {pid})"
        ),
        format!(
            "INSERT INTO questionnaire_response (uuid, questionnaire_id, patient_id, create_time, status, \
                 questionnaire_response) VALUES ('90cde167-0000-4000-8000-0000000000a2', '55757-9', {pid}, \
                 '2024-01-02 10:00:00', 'completed', '{{\"resourceType\":\"QuestionnaireResponse\",\"status\":\"completed\"}}')"
        ),
    ];
    for statement in care {
        hearth::on_db!(&site_ref.db, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
                .execute(pool)
                .await
                .expect("a care record");
        });
    }
    f.insert(
        "careplan_uuid",
        "90cde167-0000-4000-8000-0000000000c1".into(),
    );
    f.insert("goal_uuid", "90cde167-0000-4000-8000-0000000000d1".into());
    f.insert(
        "careteam_uuid",
        "90cde167-0000-4000-8000-0000000000e1".into(),
    );
    f.insert("device_uuid", "90cde167-0000-4000-8000-0000000000f1".into());
    f.insert("qr_uuid", "90cde167-0000-4000-8000-0000000000a2".into());
    f.insert("valueset", "Care-Team-Status".into());
    let message = json!({"body": "Please call back", "to": "admin", "from": "admin",
        "groupname": "Default", "title": "Chart Note", "message_status": "New"});
    for key in ["msg_id", "msg_del"] {
        let reply = app
            .post(
                &api(&format!("/api/patient/{pid}/message")),
                token,
                message.clone(),
            )
            .await;
        f.insert(key, text(&created(&reply, "a message")["mid"]));
    }
    let referral = app
        .post(
            &api(&format!("/api/patient/{pid}/transaction")),
            token,
            json!({"type": "LBTref", "groupname": "Default", "referralDate": "2024-05-01",
                "body": "Cardiology consult", "referByNpi": "1234567890"}),
        )
        .await;
    f.insert(
        "tid",
        text(&created(&referral, "a transaction")["data"][0]["id"]),
    );
    // Insurance: a company, the patient's primary policy, an employer and a related
    // person (the last two have no write route in OpenEMR: rows in SQL).
    let company = app
        .post(
            &api("/api/insurance_company"),
            token,
            json!({"name": "Aetna PPO", "ins_type_code": 11, "city": "Hartford", "state": "CT"}),
        )
        .await;
    f.insert(
        "iid",
        text(&created(&company, "an insurance company")["iid"]),
    );
    let policy = app
        .post(
            &api(&format!("/api/patient/{puuid}/insurance")),
            token,
            json!({"type": "primary", "provider": f["iid"], "policy_number": "XJ-1001",
                "subscriber_lname": "Smith", "subscriber_fname": "Ann",
                "subscriber_relationship": "self", "subscriber_DOB": "1980-05-06",
                "subscriber_street": "1 Main St", "subscriber_postal_code": "02110",
                "subscriber_city": "Boston", "subscriber_state": "MA",
                "subscriber_sex": "Female", "accept_assignment": "TRUE", "date": "2024-01-01"}),
        )
        .await;
    f.insert(
        "ins_uuid",
        text(&created(&policy, "a policy")["data"]["uuid"]),
    );
    let users = app.get(&api("/api/user?username=admin"), token).await;
    f.insert(
        "user_uuid",
        text(&created(&users, "the user list")["data"][0]["uuid"]),
    );
    let rp_uuid = "90cde167-0000-4000-8000-0000000002f1";
    for statement in [
        format!("INSERT INTO employer_data (uuid, name, pid, date) VALUES ('90cde167-0000-4000-8000-0000000002e1', 'Northwind Traders', {pid}, '2024-01-01 00:00:00')"),
        "INSERT INTO person (id, uuid, first_name, last_name, created_date) VALUES (1, '90cde167-0000-4000-8000-0000000001f1', 'Mary', 'Smith', '2024-01-01 00:00:00')".to_owned(),
        "INSERT INTO contact (id, foreign_table_name, foreign_id) VALUES (1, 'person', 1)".to_owned(),
        format!("INSERT INTO contact_relation (id, uuid, contact_id, target_table, target_id, relationship, created_date) VALUES (1, '{rp_uuid}', 1, 'patient_data', {pid}, 'MTH', '2024-01-01 00:00:00')"),
    ] {
        hearth::on_db!(&site_ref.db, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
                .execute(pool)
                .await
                .expect("an insurance fixture");
        });
    }
    f.insert("rp_uuid", rp_uuid.to_owned());
    f.insert("fid", text(&facility.json["data"]["id"]));
    // A Group of the patient (Hearth's own table; OpenEMR has no Group writes).
    let group = app
        .send(
            Method::POST,
            &api("/fhir/Group"),
            Some(token),
            Some(json!({"resourceType": "Group", "name": "Cohort",
                "member": [{"entity": {"reference": format!("Patient/{puuid}")}}]})),
        )
        .await;
    f.insert("guuid", text(&created(&group, "a group")["id"]));
    for (key, start) in [("appt", "09:00"), ("appt_del", "10:00")] {
        let body = json!({"pc_catid": "5", "pc_title": "Office Visit", "pc_duration": "900",
            "pc_hometext": "Check", "pc_apptstatus": "-", "pc_eventDate": "2024-06-04",
            "pc_startTime": start, "pc_facility": f["fid"], "pc_billing_location": f["fid"],
            "pc_aid": f["prid"]});
        let appointment = app
            .post(
                &api(&format!("/api/patient/{pid}/appointment")),
                token,
                body,
            )
            .await;
        let booked = created(&appointment, "an appointment");
        f.insert(key, text(&booked["id"]));
        if key == "appt" {
            f.insert("appt_uuid", text(&booked["uuid"]));
        }
    }
    for key in ["eid", "empty_eid"] {
        let encounter = app
            .post(
                &api(&format!("/api/patient/{puuid}/encounter")),
                token,
                json!({"pc_catid": "5", "class_code": "AMB"}),
            )
            .await;
        let data = &created(&encounter, "an encounter")["data"];
        f.insert(key, text(&data["eid"]));
        if key == "eid" {
            f.insert("euuid", text(&data["euuid"]));
        }
    }
    let eid = f["eid"].clone();
    let vital = app
        .post(
            &api(&format!("/api/patient/{pid}/encounter/{eid}/vital")),
            token,
            json!({"bps": "120", "bpd": "80"}),
        )
        .await;
    f.insert("vid", text(&created(&vital, "a vital")["vid"]));
    // The vital's blood pressure as a FHIR Observation: the row's uuid with slot digit 0.
    let rows = app
        .rows(
            site,
            "SELECT CAST(uuid AS TEXT) AS uuid FROM form_vitals ORDER BY id DESC LIMIT 1",
        )
        .await;
    let row_uuid = text(&rows[0]["uuid"]);
    f.insert("obs_bp", format!("{}0{}", &row_uuid[..14], &row_uuid[15..]));
    let soap = app
        .post(
            &api(&format!("/api/patient/{pid}/encounter/{eid}/soap_note")),
            token,
            json!({"subjective": "Cough"}),
        )
        .await;
    f.insert("sid", text(&created(&soap, "a SOAP note")["sid"]));
    for (kind, keys) in [
        ("medical_problem", ["muuid", "muuid_del"]),
        ("allergy", ["auuid", "auuid_del"]),
    ] {
        for key in keys {
            let issue = app
                .post(
                    &api(&format!("/api/patient/{puuid}/{kind}")),
                    token,
                    json!({"title": "Hypertension", "begdate": "2020-01-01"}),
                )
                .await;
            f.insert(key, text(&created(&issue, kind)["data"]["uuid"]));
        }
    }
    for (path, key) in [
        ("medication", "mid"),
        ("medication", "mid_del"),
        ("surgery", "surgery"),
        ("dental_issue", "dental"),
    ] {
        let issue = app
            .post(
                &api(&format!("/api/patient/{pid}/{path}")),
                token,
                json!({"title": "Aspirin"}),
            )
            .await;
        f.insert(key, text(&created(&issue, path)["id"]));
    }
    // A lab order with its report, result and specimen, and a drug with a dispense
    // (no write routes: OpenEMR's are read-only), then two prescriptions through the API.
    let order_statements = [
        format!("INSERT INTO procedure_order (uuid, patient_id, date_ordered, order_status) VALUES ('90cde167-0000-4000-8000-0000000000a1', {pid}, '2024-01-02 10:00:00', 'complete')"),
        "INSERT INTO procedure_order_code (procedure_order_id, procedure_order_seq, procedure_code, procedure_name) SELECT procedure_order_id, 1, '4548-4', 'Hemoglobin A1c' FROM procedure_order WHERE uuid = '90cde167-0000-4000-8000-0000000000a1'".to_owned(),
        "INSERT INTO procedure_report (uuid, procedure_order_id, date_report, report_status) SELECT '90cde167-0000-4000-8000-0000000000a2', procedure_order_id, '2024-01-03 10:00:00', 'final' FROM procedure_order WHERE uuid = '90cde167-0000-4000-8000-0000000000a1'".to_owned(),
        "INSERT INTO procedure_result (uuid, procedure_report_id, result_code, result_text, date, units, result, result_status) SELECT '90cde167-0000-4000-8000-0000000000a3', procedure_report_id, '4548-4', 'Hemoglobin A1c', date_report, '%', '5.4', 'final' FROM procedure_report WHERE uuid = '90cde167-0000-4000-8000-0000000000a2'".to_owned(),
        "INSERT INTO procedure_specimen (uuid, procedure_order_id, specimen_type_code, specimen_type, collected_date) SELECT '90cde167-0000-4000-8000-0000000000a4', procedure_order_id, '119297000', 'Blood specimen', date_ordered FROM procedure_order WHERE uuid = '90cde167-0000-4000-8000-0000000000a1'".to_owned(),
        "INSERT INTO drugs (uuid, name, drug_code, ndc_number, form) VALUES ('90cde167-0000-4000-8000-0000000000a5', 'Lisinopril 10 MG Oral Tablet', '314076', '68180-0513-01', '2')".to_owned(),
        format!("INSERT INTO drug_sales (uuid, drug_id, pid, sale_date, quantity, trans_type) SELECT '90cde167-0000-4000-8000-0000000000a6', drug_id, {pid}, '2024-01-04 10:00:00', 30, 1 FROM drugs WHERE uuid = '90cde167-0000-4000-8000-0000000000a5'"),
    ];
    for statement in order_statements {
        hearth::on_db!(&site_ref.db, |pool| {
            sqlx::query(sqlx::AssertSqlSafe(statement.clone()))
                .execute(pool)
                .await
                .expect("an order row");
        });
    }
    for (key, uuid) in [
        ("proc_uuid", "a1"),
        ("report_uuid", "a2"),
        ("lab_uuid", "a3"),
        ("spec_uuid", "a4"),
        ("drug_uuid", "a5"),
        ("disp_uuid", "a6"),
    ] {
        f.insert(key, format!("90cde167-0000-4000-8000-0000000000{uuid}"));
    }
    for key in ["rx_uuid", "rx_del"] {
        let rx = app
            .post(
                &api("/api/prescription"),
                token,
                json!({"drug": "Lisinopril 10 MG Oral Tablet", "patient_id": pid, "rxnorm_drugcode": "314076"}),
            )
            .await;
        f.insert(key, text(&created(&rx, "a prescription")["data"]["uuid"]));
    }
    // A patient photograph (a PNG: a document, a DocumentReference and a Media), uploaded
    // as OpenEMR's clients upload: multipart, field `document`.
    let png = hearth_demo::files::png(4, 4, [10, 20, 30], [200, 210, 220]);
    let part = reqwest::multipart::Part::bytes(png)
        .file_name("photo.png")
        .mime_str("image/png")
        .expect("a media type");
    let upload = app
        .client
        .post(api(&format!(
            "/api/patient/{pid}/document?path=/Categories/Patient%20Information/Patient%20Photograph"
        )))
        .bearer_auth(token)
        .multipart(reqwest::multipart::Form::new().part("document", part))
        .send()
        .await
        .expect("the server answers");
    let upload = Reply::from(upload).await;
    created(&upload, "a document");
    let row = app
        .rows(
            site,
            "SELECT id, CAST(uuid AS TEXT) AS uuid FROM documents WHERE name = 'photo.png'",
        )
        .await;
    f.insert("did", text(&row[0]["id"]));
    f.insert("doc_uuid", text(&row[0]["uuid"]));
    f
}

/// A JSON string or number as text.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `template` with every `{name}` replaced by the fixture of that name.
fn fill(template: &str, f: &Fixtures) -> String {
    let mut out = template.to_owned();
    for (name, value) in f {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// Why `reply` is not `expected`, or `None` when it is.
fn mismatch(reply: &Reply, expected: Answer) -> Option<String> {
    let Answer(status, body) = expected;
    if reply.status != status {
        return Some(format!("status {} instead of {status}", reply.status));
    }
    let json = &reply.json;
    let envelope_ok = |errors_empty: bool| {
        ["validationErrors", "internalErrors", "data", "links"]
            .iter()
            .all(|k| json.get(*k).is_some())
            && (json["validationErrors"]
                .as_array()
                .is_some_and(Vec::is_empty)
                || json["validationErrors"]
                    .as_object()
                    .is_some_and(|o| o.is_empty()))
                == errors_empty
    };
    let host_error =
        || json["error"].is_string() && json["message"].is_string() && json["code"].is_number();
    let ok = match body {
        Object => envelope_ok(true) && json["data"].is_object(),
        List => envelope_ok(true) && json["data"].as_array().is_some_and(|a| !a.is_empty()),
        Nothing => envelope_ok(true) && json["data"] == json!([]),
        Invalid(field) => envelope_ok(false) && json["validationErrors"].get(field).is_some(),
        Bare(keys) => json.get("data").is_none() && keys.iter().all(|k| json.get(*k).is_some()),
        BareList => json.as_array().is_some_and(|a| !a.is_empty()),
        BareEmpty => *json == json!([]),
        True => *json == json!(true),
        BareInvalid(field) => {
            json.get("validationErrors").is_none() && json.get(field).is_some_and(Value::is_object)
        }
        Empty => reply.text.is_empty(),
        Error | BareError => host_error(),
        FhirBundle(kind) => json["resourceType"] == "Bundle" && json["type"] == kind,
        FhirResource(kind) => json["resourceType"] == kind,
        Bytes => !reply.text.is_empty() && json.is_null(),
        Preflight => {
            reply.text.is_empty()
                && reply.header("access-control-allow-origin").is_some()
                && reply
                    .header("access-control-allow-headers")
                    .is_some_and(|h| h.contains("authorization"))
        }
    };
    (!ok).then(|| format!("body is not {body:?}: {}", reply.text))
}

async fn send(
    app: &TestApp,
    site: &str,
    case: &Case,
    f: &Fixtures,
    tokens: &HashMap<Who, String>,
) -> Reply {
    let (method, path) = case.request.split_once(' ').expect("METHOD /path");
    let path = fill(path, f);
    assert!(
        !path.contains('{'),
        "a placeholder without a fixture: {path}"
    );
    let url = app.api(site, &path);
    let method = Method::from_bytes(method.as_bytes()).expect("a method");
    let mut request = app.client.request(method.clone(), &url);
    if let Some(token) = tokens.get(&case.who) {
        request = request.bearer_auth(token);
    }
    if method == Method::OPTIONS {
        request = request
            .header("origin", "https://app.example.org")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization");
    }
    if let Some(body) = case.body {
        request = request
            .header("content-type", "application/json")
            .body(fill(body, f));
    }
    Reply::from(request.send().await.expect("the server answers")).await
}

both! {
    async fn every_served_route_answers_as_openemr_does_or_as_documented(app) {
        let site = app.state.sites.get("second").await.unwrap();
        hearth::oauth::settings::set(&site, "api.compatibility", "openemr").await.unwrap();
        let mut fixtures_of = HashMap::new();
        let mut tokens_of = HashMap::new();
        for name in SITES {
            let staff = app.user_token(name, "admin", STAFF_SCOPES).await;
            let f = fixtures(app, name, &staff).await;
            let mut tokens = HashMap::new();
            tokens.insert(Who::Patient, app.patient_token(name, &f["puuid"], "openid api:port patient/patient.rs patient/encounter.rs patient/appointment.rs").await);
            tokens.insert(Who::ReadOnly, app.user_token(name, "admin", "openid api:oemr user/patient.r").await);
            tokens.insert(Who::Staff, staff);
            fixtures_of.insert(name, f);
            tokens_of.insert(name, tokens);
        }
        let mut failures = Vec::new();
        for case in CASES {
            if let Some((compat, why)) = case.compat {
                assert_ne!(compat, case.openemr, "{}: a compatibility exception must differ from OpenEMR", case.request);
                assert!(!why.is_empty());
            }
            for (site, expected) in [
                ("default", case.hearth),
                ("second", case.compat.map_or(case.openemr, |(answer, _)| answer)),
            ] {
                let reply = send(app, site, case, &fixtures_of[site], &tokens_of[site]).await;
                if let Some(why) = mismatch(&reply, expected) {
                    failures.push(format!("{} on {site} ({:?}): {why}", case.request, case.who));
                }
            }
        }
        assert!(failures.is_empty(), "{} of {} cases answered otherwise:\n{}", failures.len(), CASES.len(), failures.join("\n"));
    }

    async fn the_table_covers_every_route_the_plugins_serve(app) {
        let docs = std::fs::read_to_string(workspace().join("docs/compatibility.md")).unwrap();
        let table = app.state.registry.table("default");
        let mut missing = Vec::new();
        for bound in table.routes() {
            let def = bound.def();
            let family = match def.family {
                hearth::error::Family::Api => "/api",
                hearth::error::Family::Portal => "/portal",
                hearth::error::Family::Fhir => "/fhir",
                hearth::error::Family::Other => "",
            };
            let route = format!("{} {family}{}", def.method, def.path);
            let pattern = route_pattern(&route);
            if !CASES.iter().any(|case| matches_route(&pattern, case.request)) {
                missing.push(format!("{route}: no conformance case"));
            }
            if !docs.contains(&format!("`{route}`")) {
                missing.push(format!("{route}: not in the coverage table of docs/compatibility.md"));
            }
        }
        assert!(missing.is_empty(), "{}", missing.join("\n"));
    }

    async fn the_coverage_table_lists_exactly_the_catalog_routes_hearth_answers(app) {
        use hearth_tests::catalog::{COUNTS, ROUTES};
        let of = |prefix: &str| ROUTES.iter().filter(|(_, path)| path.starts_with(prefix)).count();
        assert_eq!((of("/api/"), of("/portal/"), of("/fhir/")), COUNTS, "the catalog is whole");
        assert_eq!(ROUTES.len(), 183);
        let docs = std::fs::read_to_string(workspace().join("docs/compatibility.md")).unwrap();
        let documented = coverage_table(&docs);
        // The routes the site's plugins serve, and a token with every scope they need.
        let table = app.state.registry.table("default");
        let mut served = Vec::new();
        let mut scopes = std::collections::BTreeSet::new();
        for bound in table.routes() {
            let def = bound.def();
            let family = match def.family {
                hearth::error::Family::Api => "/api",
                hearth::error::Family::Portal => "/portal",
                hearth::error::Family::Fhir => "/fhir",
                hearth::error::Family::Other => "",
            };
            served.push(route_pattern(&format!("{} {family}{}", def.method, def.path)));
            if def.family != hearth::error::Family::Portal && !def.scope.is_empty() {
                scopes.insert(format!("user/{}", def.scope));
            }
        }
        let every = scopes.into_iter().collect::<Vec<_>>().join(" ");
        let staff = app.user_token("default", "admin", &format!("openid offline_access api:oemr api:fhir {every}")).await;
        let (pid, puuid) = app.create_patient("default", &staff, "Ann", "Catalog").await;
        let patient = app.patient_token("default", &puuid, "openid api:port patient/patient.rs patient/encounter.rs patient/appointment.rs").await;
        let mut answered = Vec::new();
        let mut failures = Vec::new();
        for (method, template) in ROUTES {
            let route = format!("{method} {template}");
            let pattern = route_pattern(&route);
            let path = template
                .split('/')
                .map(|segment| match segment.strip_prefix(':') {
                    Some("puuid") => puuid.clone(),
                    Some("pid") => pid.to_string(),
                    Some(name) if name == "id" || name.to_lowercase().ends_with("uuid") => "90cde167-0000-4000-8000-00000000dead".to_owned(),
                    Some(_) => "1".to_owned(),
                    None => segment.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("/");
            let token = if template.starts_with("/portal/") { &patient } else { &staff };
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let body = matches!(method, Method::POST | Method::PUT).then(|| json!({}));
            let reply = app.send(method.clone(), &app.api("default", &path), Some(token), body).await;
            // The host's "no route" answer: its error code, or on FHIR the
            // OperationOutcome's `details.text`.
            let no_route = reply.json["error"] == "route_not_found"
                || reply.json["issue"][0]["details"]["text"] == "route_not_found";
            let routed = reply.status != 405 && !(reply.status == 404 && no_route);
            // A plugin route of its own, or (for the host's routes, such as the
            // CapabilityStatement) an answer no plugin route with a parameter gave in its
            // place (`GET /fhir/Patient/$export` reaches `GET /fhir/Patient/:id` when no
            // export route exists).
            let own = served.contains(&pattern);
            let stand_in = !own && served.iter().any(|p| matches_route(p, &format!("{method} {path}")));
            if own && !routed {
                failures.push(format!("{route}: a plugin serves it, yet {path} answered {} {}", reply.status, reply.text));
            }
            // A stand-in plugin route answers such a path as an unknown id (404); any other
            // answer came from the route the catalog names.
            let is_answered = own || (routed && (!stand_in || reply.status != 404));
            let listed = documented.contains(&pattern);
            if is_answered && !listed {
                failures.push(format!("{route}: answered ({}), but not in the coverage table of docs/compatibility.md", reply.status));
            }
            if !is_answered && listed {
                failures.push(format!("{route}: in the coverage table, but not answered ({} {})", reply.status, reply.text));
            }
            if is_answered {
                answered.push(route);
            }
        }
        println!("route catalog: {} of {} routes answered (issue 17 is done at {}):", answered.len(), ROUTES.len(), ROUTES.len());
        for route in &answered {
            println!("  {route}");
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}

/// The routes of the coverage table (`| `METHOD /path` | …` rows of its section), as
/// patterns.
fn coverage_table(docs: &str) -> Vec<(String, Vec<Option<String>>)> {
    let section = docs
        .split("\n## Coverage, route by route")
        .nth(1)
        .expect("the coverage section");
    let section = section.split("\n## ").next().unwrap();
    let routes: Vec<_> = section
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split_once('`'))
        .map(|(route, _)| route_pattern(route))
        .collect();
    assert!(
        routes.len() > 50,
        "the coverage table has {} rows",
        routes.len()
    );
    routes
}

/// A route as segments, `None` for a parameter.
fn route_pattern(route: &str) -> (String, Vec<Option<String>>) {
    let (method, path) = route.split_once(' ').unwrap();
    let segments = path
        .trim_matches('/')
        .split('/')
        .map(|s| (!s.starts_with(':')).then(|| s.to_owned()))
        .collect();
    (method.to_owned(), segments)
}

/// True when a case's request is a request for `pattern`'s route.
fn matches_route((method, segments): &(String, Vec<Option<String>>), request: &str) -> bool {
    let (case_method, path) = request.split_once(' ').unwrap();
    let path = path.split('?').next().unwrap().trim_matches('/');
    let parts: Vec<&str> = path.split('/').collect();
    case_method == method
        && parts.len() == segments.len()
        && parts
            .iter()
            .zip(segments)
            .all(|(part, segment)| match segment {
                Some(literal) => literal == part,
                None => true,
            })
}

#[test]
fn every_difference_from_openemr_in_the_table_has_a_source() {
    for case in CASES {
        assert!(!case.source.is_empty(), "{}", case.request);
        let (method, path) = case.request.split_once(' ').unwrap();
        assert!(Method::from_bytes(method.as_bytes()).is_ok());
        assert!(path.starts_with('/'));
    }
}
