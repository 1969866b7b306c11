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
    // ---- Immunizations (family L, read-only).
    case("GET /api/immunization", None, Answer(200, List), "ImmunizationRestController::getAll", Answer(200, List)),
    case("GET /api/immunization?cvx_code=140", None, Answer(200, List), "ImmunizationService::getAll filters by the immunizations columns", Answer(200, List)),
    case("GET /api/immunization/{imm_uuid}", None, Answer(200, Object), "ImmunizationRestController::getOne", Answer(200, Object)),
    case("GET /api/immunization/{unknown}", None, Answer(200, Nothing), L, Answer(404, Nothing)),
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
    user/Observation.rs user/MedicationRequest.rs user/Procedure.rs user/Provenance.rs \
    user/appointment.cruds user/Appointment.rs user/immunization.rs user/Immunization.rs \
    user/Group.cruds \
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
