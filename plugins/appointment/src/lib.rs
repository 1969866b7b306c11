//! OpenEMR appointments (`openemr_postcalendar_events`): the standard API's routes across
//! patients and per patient (OpenEMR's numeric `:pid` and `pc_eid`), and the portal's
//! routes for the caller's own appointments, with AppointmentValidator's rules, OpenEMR's
//! response fields and bare payloads.
//!
//! Where OpenEMR is defective Hearth is not: the patient in the path is honoured (another
//! patient's appointment is a 404 and is never deleted), the referenced category,
//! facilities and provider must exist, `pc_startTime` must be a time of day, and a
//! booking that overlaps another of the same provider is a 409 unless the site allows
//! overlapping bookings (plugin setting `allow_overlapping_bookings = "true"`).

use hearth_emr::prelude::*;
use hearth_sdk::{new_uuid, time};

/// The appointment resource.
pub struct Appointment;

impl Resource for Appointment {
    const NAME: &'static str = "appointment";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "Appointments (OpenEMR openemr_postcalendar_events)";
    const WORDS: &'static [Words] = &[Words::new("appointment", "Appointments", "appointments")];
    const READS: &'static [&'static str] = &[
        "patient_data",
        "users",
        "facility",
        "openemr_postcalendar_categories",
        "list_options",
    ];
    const WRITES: &'static [&'static str] = &["openemr_postcalendar_events", "sequences"];
    const CONFIG_KEYS: &'static [&'static str] = &[ALLOW_OVERLAP];
    const ROUTES: &'static [Route] = &[
        Route::get(
            "/api/patient/:pid/appointment",
            "appointment.s",
            list_for_patient,
        )
        .acl("patients/appt")
        .bare()
        .summary("List a patient's appointments")
        .params(emr::LIST_PARAMS)
        .answers_list(LISTED),
        Route::post("/api/patient/:pid/appointment", "appointment.c", create)
            .acl("patients/appt:write")
            .bare()
            .summary("Book an appointment")
            .accepts(Schema::Body(&[COLUMNS], REQUIRED))
            .answers(CREATED),
        Route::get("/api/appointment", "appointment.s", list_all)
            .acl("patients/appt")
            .bare()
            .summary("List appointments")
            .params(emr::LIST_PARAMS)
            .answers_list(LISTED),
        Route::get("/api/appointment/:eid", "appointment.r", get_any)
            .acl("patients/appt")
            .bare()
            .summary("Read an appointment (a one-element list)")
            .answers_list(RECORD),
        Route::delete(
            "/api/patient/:pid/appointment/:eid",
            "appointment.d",
            delete,
        )
        .acl("patients/appt:write")
        .bare()
        .summary("Delete a patient's appointment")
        .answers(DELETED),
        Route::get(
            "/api/patient/:pid/appointment/:eid",
            "appointment.r",
            get_for_patient,
        )
        .acl("patients/appt")
        .bare()
        .summary("Read a patient's appointment (a one-element list)")
        .answers_list(RECORD),
        Route::get("/portal/patient/appointment", "appointment.s", portal_list)
            .bare()
            .summary("List the patient's own appointments")
            .params(emr::LIST_PARAMS)
            .answers_list(LISTED),
        Route::get(
            "/portal/patient/appointment/:auuid",
            "appointment.r",
            portal_get,
        )
        .bare()
        .summary("Read one of the patient's own appointments")
        .answers(RECORD),
    ];
}

hearth_sdk::export!(Appointment);

/// The plugin setting that lets one provider's bookings overlap on a site.
pub const ALLOW_OVERLAP: &str = "allow_overlapping_bookings";

/// Statuses of appointments that no longer hold their slot: canceled, canceled late.
const CANCELED: &[&str] = &["x", "%"];

/// What a body may set (AppointmentValidator's fields).
const COLUMNS: &[Column] = &[
    Column::int("pc_catid"),
    Column::text("pc_title"),
    Column::int("pc_duration"),
    Column::text("pc_hometext"),
    Column::text("pc_apptstatus"),
    Column::date("pc_eventDate"),
    Column::text("pc_startTime"),
    Column::int("pc_facility"),
    Column::int("pc_billing_location"),
    Column::int("pc_aid"),
    Column::text("pc_website"),
    Column::text("pc_room"),
];

/// The fields a create must send.
const REQUIRED: &[&str] = &[
    "pc_catid",
    "pc_title",
    "pc_duration",
    "pc_hometext",
    "pc_apptstatus",
    "pc_eventDate",
    "pc_startTime",
    "pc_facility",
    "pc_billing_location",
];

/// One appointment as the lists answer it (AppointmentService's fields).
const LISTED: Schema = Schema::Row(&[&[
    Column::int("pc_eid"),
    Column::text("pc_uuid"),
    Column::text("puuid"),
    Column::text_or_null("fname"),
    Column::text_or_null("lname"),
    Column::date("DOB"),
    Column::int("pid"),
    Column::text_or_null("pce_aid_uuid"),
    Column::text_or_null("pce_aid_fname"),
    Column::text_or_null("pce_aid_lname"),
    Column::text_or_null("pce_aid_npi"),
    Column::int("pc_aid"),
    Column::text("pc_apptstatus"),
    Column::date("pc_eventDate"),
    Column::text("pc_startTime"),
    Column::text("pc_endTime"),
    Column::datetime("pc_time"),
    Column::int("pc_facility"),
    Column::int("pc_billing_location"),
    Column::int("pc_catid"),
    Column::int("pc_pid"),
    Column::text("pc_title"),
    Column::text("pc_website"),
    Column::int("pc_informant"),
    Column::text_or_null("facility_name"),
    Column::text_or_null("facility_uuid"),
    Column::text_or_null("billing_location_name"),
    Column::text_or_null("billing_location_uuid"),
]]);

/// One appointment as a read answers it: the list's fields, the duration, room and
/// comment besides.
const RECORD: Schema = Schema::Object(&[
    Prop::new("pc_eid", Schema::Integer).required(),
    Prop::new("pc_uuid", Schema::Format("uuid")).required(),
    Prop::new("puuid", Schema::Format("uuid")).required(),
    Prop::new("pid", Schema::Integer).required(),
    Prop::new("pc_pid", Schema::Integer).required(),
    Prop::new("pc_aid", Schema::Nullable(&Schema::Integer)),
    Prop::new("pc_eventDate", Schema::Format("date")).required(),
    Prop::new("pc_startTime", Schema::String).required(),
    Prop::new("pc_endTime", Schema::String).required(),
    Prop::new("pc_duration", Schema::Integer).required(),
    Prop::new("pc_title", Schema::String).required(),
    Prop::new("pc_hometext", Schema::String),
    Prop::new("pc_room", Schema::String),
    Prop::new("pc_apptstatus", Schema::String).required(),
]);

/// What booking answers: OpenEMR's `{"id"}` (the `pc_eid`), and the new uuid.
const CREATED: Schema = Schema::Object(&[
    Prop::new("id", Schema::Integer).required(),
    Prop::new("uuid", Schema::Format("uuid")),
]);

/// What deleting answers.
const DELETED: Schema = Schema::Object(&[Prop::new("message", Schema::String).required()]);

/// The columns of AppointmentService's lists.
macro_rules! listed_columns {
    () => {
        "SELECT e.pc_eid, e.uuid AS pc_uuid, p.uuid AS puuid, p.fname, p.lname, p.\"DOB\", p.pid, \
         u.uuid AS pce_aid_uuid, u.fname AS pce_aid_fname, u.lname AS pce_aid_lname, \
         u.npi AS pce_aid_npi, e.pc_aid, e.pc_apptstatus, e.\"pc_eventDate\", e.\"pc_startTime\", \
         e.\"pc_endTime\", e.pc_time, e.pc_facility, e.pc_billing_location, e.pc_catid, e.pc_pid, \
         e.pc_title, e.pc_website, e.pc_informant, f.name AS facility_name, \
         f.uuid AS facility_uuid, b.name AS billing_location_name, b.uuid AS billing_location_uuid"
    };
}

/// The tables behind an appointment.
macro_rules! from_events {
    () => {
        " FROM openemr_postcalendar_events e JOIN patient_data p ON p.pid = e.pc_pid \
         LEFT JOIN users u ON u.id = e.pc_aid \
         LEFT JOIN facility f ON f.id = e.pc_facility \
         LEFT JOIN facility b ON b.id = e.pc_billing_location"
    };
}

/// A list's rows.
const LIST_SELECT: &str = concat!(listed_columns!(), from_events!());

/// A read's row: the list's columns, the duration, room and comment besides.
const ONE_SELECT: &str = concat!(
    listed_columns!(),
    ", e.pc_duration, e.pc_room, e.pc_hometext",
    from_events!()
);

/// How lists sort: by day and start time unless asked otherwise.
const SORT: Sort = Sort {
    alias: "e",
    keys: &[
        SortKey::column("pc_eid"),
        SortKey::column("pc_eventDate"),
        SortKey::column("pc_startTime"),
        SortKey::column("pc_endTime"),
        SortKey::column("pc_duration"),
        SortKey::column("pc_title"),
        SortKey::column("pc_apptstatus"),
        SortKey::column("pc_catid"),
        SortKey::column("pc_aid"),
        SortKey::column("pc_facility"),
        SortKey::column("pc_time"),
    ],
    default: "pc_eventDate,pc_startTime",
    tiebreak: "pc_eid",
};

fn page(req: &Request, search: &mut Search) -> Result<Response> {
    search.sort_by(req, &SORT)?;
    crud::page(req, search, LIST_SELECT, Json::from_row)
}

/// `GET /api/appointment`: every patient's appointments.
fn list_all(req: &Request) -> Result<Response> {
    page(req, &mut Search::on("e"))
}

/// `GET /api/patient/:pid/appointment`: the patient's (404 for no such patient).
fn list_for_patient(req: &Request) -> Result<Response> {
    let patient = emr::path_pid(req, "pid")?;
    let mut search = Search::on("e");
    search.equals("pc_pid", patient.pid);
    page(req, &mut search)
}

/// `GET /api/appointment/:eid`: one appointment of any patient, as OpenEMR's one-element
/// list.
fn get_any(req: &Request) -> Result<Response> {
    let mut search = Search::on("e");
    search.equals("pc_eid", req.id("eid")?);
    Ok(req.ok(crud::find_all(&search, ONE_SELECT, Json::from_row)?))
}

/// `GET /api/patient/:pid/appointment/:eid`: the patient's appointment (OpenEMR ignores
/// the patient; Hearth answers 404 for another patient's).
fn get_for_patient(req: &Request) -> Result<Response> {
    let patient = emr::path_pid(req, "pid")?;
    let mut search = Search::on("e");
    search
        .equals("pc_pid", patient.pid)
        .equals("pc_eid", req.id("eid")?);
    Ok(req.ok(crud::find_all(&search, ONE_SELECT, Json::from_row)?))
}

/// `GET /portal/patient/appointment`: the caller's own appointments.
fn portal_list(req: &Request) -> Result<Response> {
    let patient = emr::portal_patient(req)?;
    let mut search = Search::on("e");
    search.equals("pc_pid", patient.pid);
    page(req, &mut search)
}

/// `GET /portal/patient/appointment/:auuid`: one of the caller's own appointments.
fn portal_get(req: &Request) -> Result<Response> {
    let patient = emr::portal_patient(req)?;
    let mut search = Search::on("e");
    search
        .equals("pc_pid", patient.pid)
        .equals("uuid", req.uuid("auuid")?);
    Ok(req.ok(crud::find(&search, ONE_SELECT, Json::from_row)?))
}

/// `DELETE /api/patient/:pid/appointment/:eid`: deletes the patient's appointment (404
/// when the patient has none with that id) and answers OpenEMR's message.
fn delete(req: &Request) -> Result<Response> {
    let patient = emr::path_pid(req, "pid")?;
    Delete::table("openemr_postcalendar_events")
        .filter("pc_eid", req.id("eid")?)
        .filter("pc_pid", patient.pid)
        .apply()?;
    Ok(req.ok(Json::object().field("message", "record deleted").end()))
}

/// `HH:MM` (OpenEMR's five characters) as seconds after midnight.
fn time_of_day(text: &str) -> Option<i64> {
    let (hours, minutes) = text.split_once(':')?;
    let digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(hours) || !digits(minutes) {
        return None;
    }
    let (h, m): (i64, i64) = (hours.parse().ok()?, minutes.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 3600 + m * 60)
}

/// Seconds after midnight as `HH:MM:SS`.
fn clock(seconds: i64) -> String {
    format!(
        "{:02}:{:02}:{:02}",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// A whole number given as a JSON number or as digits.
fn whole(value: &serde_json::Value) -> Option<i64> {
    match value {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// True when a staff user with this id exists (OpenEMR's `pc_aid` callback).
fn is_user(id: i64) -> Result<bool> {
    let sql = "SELECT 1 AS found FROM users WHERE id = $1";
    Ok(store::query_one(sql, params![id])?.is_some())
}

/// AppointmentValidator's rules, and Hearth's: the category, facility and billing
/// location exist, `pc_startTime` is a time of day, the duration whole seconds that end
/// the appointment by midnight, the status one of the `apptstat` list.
fn rules(v: &mut Validator<'_>, provider_ok: bool) {
    v.required("pc_catid", "pc_catid")
        .numeric()
        .exists_in("openemr_postcalendar_categories", Column::int("pc_catid"));
    v.required("pc_title", "pc_title").length_between(2, 150);
    v.required("pc_duration", "pc_duration").numeric().rule(
        |d| whole(d).is_some_and(|d| (0..=86_400).contains(&d)),
        "Callback::INVALID_VALUE",
        "pc_duration must be whole seconds from 0 to 86400",
    );
    v.required("pc_hometext", "pc_hometext")
        .length_between(0, 65_535);
    v.required("pc_apptstatus", "pc_apptstatus")
        .list_option("apptstat");
    v.required("pc_eventDate", "pc_eventDate").datetime("Y-m-d");
    v.required("pc_startTime", "pc_startTime").length(5).rule(
        |t| t.as_str().and_then(time_of_day).is_some(),
        "Callback::INVALID_VALUE",
        "pc_startTime must be a time of day, HH:MM",
    );
    v.required("pc_facility", "pc_facility")
        .numeric()
        .exists_in("facility", Column::int("id"));
    v.required("pc_billing_location", "pc_billing_location")
        .numeric()
        .exists_in("facility", Column::int("id"));
    v.optional("pc_aid", "pc_aid").numeric().rule(
        |_| provider_ok,
        "pc_aid",
        "pc_aid must be for a valid user",
    );
    v.optional("pc_website", "pc_website")
        .length_between(0, 255);
    v.optional("pc_room", "pc_room").length_between(0, 20);
    if !v.has_error("pc_startTime") && !v.has_error("pc_duration") {
        let input = v.input();
        let start = input
            .get("pc_startTime")
            .and_then(|t| t.as_str())
            .and_then(time_of_day);
        let duration = input.get("pc_duration").and_then(whole);
        if let (Some(start), Some(duration)) = (start, duration)
            && start + duration > 86_400
        {
            v.error(
                "pc_duration",
                "Callback::INVALID_VALUE",
                "pc_duration runs past midnight; an appointment ends on its day",
            );
        }
    }
}

/// `POST /api/patient/:pid/appointment`: 404 for no such patient, 400 for a body that
/// breaks a rule, 409 when the provider is booked in that time, else 201 `{"id", "uuid"}`
/// (OpenEMR: 200 `{"id"}`, which a site in OpenEMR compatibility answers).
fn create(req: &Request) -> Result<Response> {
    let patient = emr::path_pid(req, "pid")?;
    let body = req.json_object()?;
    let provider = body.get("pc_aid").and_then(whole).filter(|id| *id != 0);
    let provider_ok = match provider {
        Some(id) => is_user(id)?,
        None => true,
    };
    let mut fields = req.fields(COLUMNS, |v| rules(v, provider_ok))?;
    let start = fields
        .get("pc_startTime")
        .and_then(|t| match t {
            Value::Text(t) => time_of_day(t),
            _ => None,
        })
        .ok_or_else(|| ApiError::Internal("pc_startTime passed the rules unparsed".into()))?;
    let duration = body.get("pc_duration").and_then(whole).unwrap_or_default();
    let (start_time, end_time) = (clock(start), clock(start + duration));
    let day = match fields.get("pc_eventDate") {
        Some(Value::Text(day)) => day.clone(),
        _ => {
            return Err(ApiError::Internal(
                "pc_eventDate passed the rules unset".into(),
            ));
        }
    };
    if provider.is_none() {
        fields.set("pc_aid", Value::Null);
    }
    if let Some(provider) = provider {
        check_overlap(provider, &day, &start_time, &end_time)?;
    }
    let informant = store::query_one(
        "SELECT id FROM users WHERE username = $1",
        params![req.caller().username.as_str()],
    )?
    .and_then(|row| row.int("id"));
    let uuid = new_uuid();
    let rows = Insert::into("openemr_postcalendar_events")
        .set("uuid", uuid.as_str())
        .set("pc_pid", patient.pid)
        .set("pc_time", time::now().datetime())
        .set("pc_informant", informant)
        .set("pc_eventstatus", 1)
        .set("pc_sharing", 1)
        .set("pc_startTime", start_time.as_str())
        .set("pc_endTime", end_time.as_str())
        .fields(&fields)
        .returning("pc_eid")
        .run()?;
    let id = rows
        .get(0)
        .and_then(|row| row.int("pc_eid"))
        .ok_or_else(|| ApiError::Internal("the appointment insert returned no pc_eid".into()))?;
    let status = if req.openemr_compatible() { 200 } else { 201 };
    Ok(req.answer(
        status,
        Json::object().field("id", id).field("uuid", uuid).end(),
    ))
}

/// A 409 when provider `provider` has an appointment on `day` that overlaps
/// `start..end` and is not canceled, unless the site allows overlapping bookings.
/// Takes the site's booking lock first, so two concurrent bookings of one slot cannot
/// both pass.
fn check_overlap(provider: i64, day: &str, start: &str, end: &str) -> Result<()> {
    let allowed = hearth_sdk::config(ALLOW_OVERLAP)?
        .is_some_and(|v| matches!(v.trim(), "true" | "yes" | "1"));
    if allowed {
        return Ok(());
    }
    emr::next_sequence("appointment_booking")?;
    let sql = "SELECT pc_eid, \"pc_startTime\", \"pc_endTime\" FROM openemr_postcalendar_events \
               WHERE pc_aid = $1 AND \"pc_eventDate\" = $2 AND \"pc_startTime\" < $3 \
               AND \"pc_endTime\" > $4 AND pc_apptstatus <> $5 AND pc_apptstatus <> $6 \
               ORDER BY \"pc_startTime\", pc_eid LIMIT 1";
    let clash = store::query_one(
        sql,
        params![provider, day, end, start, CANCELED[0], CANCELED[1]],
    )?;
    match clash {
        None => Ok(()),
        Some(row) => Err(ApiError::Conflict(format!(
            "provider {provider} already has appointment {} on {day} from {} to {}; \
             this booking ({start} to {end}) overlaps it",
            row.int("pc_eid").unwrap_or_default(),
            row.text("pc_startTime").unwrap_or_default(),
            row.text("pc_endTime").unwrap_or_default(),
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};
    use serde_json::json;

    const PUUID: &str = "90cde167-0000-4000-8000-000000000001";
    const PATH: &str = "/api/patient/7/appointment";

    fn patient() -> Rows {
        Rows::from_values(&["pid", "uuid"], vec![vec![7.into(), PUUID.into()]])
    }

    fn found() -> Rows {
        Rows::from_values(&["found"], vec![vec![1.into()]])
    }

    fn body() -> serde_json::Value {
        json!({"pc_catid": "5", "pc_title": "Office Visit", "pc_duration": "900",
               "pc_hometext": "Follow-up", "pc_apptstatus": "-", "pc_eventDate": "2024-06-03",
               "pc_startTime": "09:30", "pc_facility": "3", "pc_billing_location": "3", "pc_aid": "2"})
    }

    fn booking_host() -> MockHost {
        host_with_provider(found())
    }

    fn host_with_provider(provider: Rows) -> MockHost {
        MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_query("FROM users WHERE id", provider)
            .on_query("FROM openemr_postcalendar_categories", found())
            .on_query("FROM list_options", found())
            .on_query("FROM facility", found())
            .on_query(
                "UPDATE sequences",
                Rows::from_values(&["value"], vec![vec![1.into()]]),
            )
            .on_query(
                "FROM users WHERE username",
                Rows::from_values(&["id"], vec![vec![1.into()]]),
            )
            .on_query(
                "INSERT INTO openemr_postcalendar_events",
                Rows::from_values(&["pc_eid"], vec![vec![11.into()]]),
            )
    }

    #[test]
    fn a_booking_computes_its_end_and_answers_its_id() {
        let mut host = booking_host().on_query("WHERE pc_aid = $1", Rows::default());
        let response = host.call::<Appointment>(TestRequest::post(PATH, body()));
        assert_eq!(response.status, 201, "{}", response.text());
        assert_eq!(response.body_json()["id"], 11);
        let (sql, params) = host
            .writes()
            .into_iter()
            .find(|(sql, _)| sql.contains("INSERT INTO openemr_postcalendar_events"))
            .expect("the insert");
        assert!(sql.contains(r#""pc_endTime""#), "{sql}");
        assert!(params.contains(&Value::from("09:30:00")));
        assert!(params.contains(&Value::from("09:45:00")));
        assert!(params.contains(&Value::Integer(7)), "the path's patient");
    }

    #[test]
    fn an_overlapping_booking_is_a_conflict_and_writes_nothing() {
        let clash = Rows::from_values(
            &["pc_eid", "pc_startTime", "pc_endTime"],
            vec![vec![4.into(), "09:00:00".into(), "10:00:00".into()]],
        );
        let mut host = booking_host().on_query("WHERE pc_aid = $1", clash);
        let response = host.call::<Appointment>(TestRequest::post(PATH, body()));
        assert_eq!(response.status, 409, "{}", response.text());
        assert!(
            response.text().contains("appointment 4"),
            "{}",
            response.text()
        );
        assert!(
            !host
                .writes()
                .iter()
                .any(|(sql, _)| sql.contains("INSERT INTO")),
            "nothing booked"
        );
        // A site that allows overlaps books it.
        let mut host = booking_host().with_config(ALLOW_OVERLAP, "true");
        let response = host.call::<Appointment>(TestRequest::post(PATH, body()));
        assert_eq!(response.status, 201, "{}", response.text());
    }

    #[test]
    fn openemrs_rules_and_hearths_are_checked() {
        let mut host = booking_host();
        let bad = json!({"pc_title": "X", "pc_duration": "abc", "pc_startTime": "9:30",
                         "pc_eventDate": "06/03/2024", "pc_apptstatus": "-", "pc_facility": "3",
                         "pc_billing_location": "3", "pc_catid": "5"});
        let response = host.call::<Appointment>(TestRequest::post(PATH, bad));
        assert_eq!(response.status, 400, "{}", response.text());
        let errors = response.body_json();
        assert_eq!(
            errors["pc_hometext"]["Required::NON_EXISTENT_KEY"],
            "pc_hometext must be provided, but does not exist"
        );
        assert_eq!(
            errors["pc_title"]["LengthBetween::TOO_SHORT"],
            "pc_title must be 2 characters or longer"
        );
        assert_eq!(
            errors["pc_duration"]["Numeric::NOT_NUMERIC"],
            "pc_duration must be numeric"
        );
        assert_eq!(
            errors["pc_startTime"]["Length::TOO_SHORT"],
            "pc_startTime is too short and must be 5 characters long"
        );
        assert_eq!(
            errors["pc_eventDate"]["DateTime::INVALID_VALUE"],
            "pc_eventDate must be a valid date"
        );
        let mut late = body();
        late["pc_startTime"] = json!("23:50");
        let response = host.call::<Appointment>(TestRequest::post(PATH, late));
        assert_eq!(response.status, 400);
        assert!(response.body_json()["pc_duration"]["Callback::INVALID_VALUE"].is_string());
        let mut host = host_with_provider(Rows::default());
        let response = host.call::<Appointment>(TestRequest::post(PATH, body()));
        assert_eq!(
            response.body_json()["pc_aid"]["pc_aid"],
            "pc_aid must be for a valid user"
        );
        assert!(
            host.writes().is_empty(),
            "an invalid booking writes nothing"
        );
    }

    #[test]
    fn reads_and_deletes_are_scoped_by_the_patient_in_the_path() {
        let mut host = MockHost::new()
            .on_query("FROM patient_data", patient())
            .on_query("FROM openemr_postcalendar_events", Rows::default())
            .on_execute("DELETE FROM openemr_postcalendar_events", 0);
        let response = host.call::<Appointment>(TestRequest::get(&format!("{PATH}/4")));
        assert_eq!(response.status, 404);
        let (sql, params) = &host.queries()[1];
        assert!(sql.contains(r#"e."pc_pid" = $1"#), "{sql}");
        assert_eq!(params[..2], [Value::Integer(7), Value::Integer(4)]);
        let response = host.call::<Appointment>(TestRequest::delete(&format!("{PATH}/4")));
        assert_eq!(response.status, 404);
        assert!(host.writes()[0].1.contains(&Value::Integer(7)));
    }

    #[test]
    fn times_of_day_are_strict() {
        assert_eq!(time_of_day("09:30"), Some(34_200));
        assert_eq!(time_of_day("24:00"), None);
        assert_eq!(time_of_day("9:300"), None);
        assert_eq!(clock(34_200 + 900), "09:45:00");
    }
}
