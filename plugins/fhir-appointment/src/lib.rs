//! FHIR R4 `Appointment` over OpenEMR's `openemr_postcalendar_events`, the rows
//! `/api/patient/:pid/appointment` books: read and search, in the patient's compartment.
//! US Core has no Appointment profile, so the resource follows FHIR R4 and OpenEMR's
//! mapping: the patient, the provider (a Practitioner) and the facility (a Location) are
//! the participants; the calendar status (`apptstat`) becomes the Appointment's status.

use hearth_fhir::{Fields, Param, Target, TypeDef, coding, concept, reference};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR Appointment resource.
pub struct FhirAppointment;

impl Resource for FhirAppointment {
    const NAME: &'static str = "fhir-appointment";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "FHIR Appointment over OpenEMR openemr_postcalendar_events";
    const READS: &'static [&'static str] = &[
        "openemr_postcalendar_events",
        "openemr_postcalendar_categories",
        "patient_data",
        "users",
        "facility",
    ];
    const ROUTES: &'static [Route] = &hearth_fhir::read_search_routes!(
        APPOINTMENT, map, type = "Appointment", acl = "patients/appt", nouns = "appointments",
        one = "an appointment", schema = APPOINTMENT_SCHEMA
    );

    const WORDS: &'static [Words] = &[Words::new(
        "Appointment",
        "Appointments (FHIR)",
        "appointments (FHIR Appointment)",
    )];

    fn fhir_types() -> Vec<FhirType> {
        vec![APPOINTMENT.declaration()]
    }
}

/// An Appointment as the routes answer it.
const APPOINTMENT_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Appointment"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("identifier", Schema::Array(&IDENTIFIER)),
        Prop::new("status", Schema::String).required(),
        Prop::new("serviceCategory", Schema::Array(&CODEABLE_CONCEPT)),
        Prop::new("appointmentType", CODEABLE_CONCEPT),
        Prop::new("description", Schema::String),
        Prop::new("comment", Schema::String),
        Prop::new("start", Schema::String),
        Prop::new("end", Schema::String),
        Prop::new("minutesDuration", Schema::Integer),
        Prop::new("created", Schema::String),
        Prop::new(
            "participant",
            Schema::Array(&Schema::Object(&[
                Prop::new("type", Schema::Array(&CODEABLE_CONCEPT)),
                Prop::new("actor", REFERENCE),
                Prop::new("required", Schema::String),
                Prop::new("status", Schema::String).required(),
            ])),
        )
        .required(),
    ])
};

hearth_sdk::export!(FhirAppointment);

const PARTICIPATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const APPOINTMENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v2-0276";
/// OpenEMR's calendar categories, by `pc_catid`.
const CATEGORY_SYSTEM: &str = "http://open-emr.org/fhir/CodeSystem/calendar-category";

/// The day and start time as one `YYYY-MM-DD HH:MM:SS` text, on both databases.
const START: &str = "CAST(e.\"pc_eventDate\" AS TEXT) || ' ' || e.\"pc_startTime\"";

const APPOINTMENT: TypeDef = TypeDef {
    resource_type: "Appointment",
    profiles: &["http://hl7.org/fhir/StructureDefinition/Appointment"],
    columns: "e.pc_eid, e.pc_title, e.pc_hometext, e.pc_apptstatus, e.pc_duration, e.pc_time, \
              CAST(e.\"pc_eventDate\" AS TEXT) AS event_date, e.\"pc_startTime\" AS start_time, \
              e.\"pc_endTime\" AS end_time, e.pc_catid, cat.pc_catname, \
              p.uuid AS patient_uuid, p.fname AS patient_fname, p.lname AS patient_lname, \
              u.uuid AS provider_uuid, u.fname AS provider_fname, u.lname AS provider_lname, \
              f.uuid AS facility_uuid, f.name AS facility_name",
    // Only a provider with an NPI is a Practitioner a reference can name.
    from: "openemr_postcalendar_events e JOIN patient_data p ON p.pid = e.pc_pid \
           LEFT JOIN users u ON u.id = e.pc_aid AND u.npi <> '' \
           LEFT JOIN facility f ON f.id = e.pc_facility \
           LEFT JOIN openemr_postcalendar_categories cat ON cat.pc_catid = e.pc_catid",
    id: "e.uuid",
    key: "e.pc_eid",
    last_updated: "e.pc_time",
    patient: Some("p.uuid"),
    only: None,
    params: &[
        Param::new(
            "patient",
            "Appointment.participant.actor.where(resolve() is Patient)",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new("date", "Appointment.start", Target::DateTime(START)),
        Param::new(
            "practitioner",
            "Appointment.participant.actor.where(resolve() is Practitioner)",
            Target::Reference {
                column: "u.uuid",
                target: "Practitioner",
            },
        ),
        Param::new(
            "location",
            "Appointment.participant.actor.where(resolve() is Location)",
            Target::Reference {
                column: "f.uuid",
                target: "Location",
            },
        ),
    ],
};

/// The Appointment status of an OpenEMR calendar status (`apptstat`): pending until
/// confirmed, booked, arrived once the patient is in, fulfilled when checked out,
/// cancelled, no-show. A status a site added to the list counts as booked.
pub fn status(apptstat: &str) -> &'static str {
    match apptstat {
        "-" | "^" | "#" | "CALL" => "pending",
        "@" | "~" | "<" => "arrived",
        ">" | "$" => "fulfilled",
        "x" | "%" | "!" => "cancelled",
        "?" => "noshow",
        _ => "booked",
    }
}

/// The participant status that goes with the Appointment's status.
fn participation(status: &str) -> &'static str {
    match status {
        "cancelled" | "noshow" => "declined",
        "pending" => "tentative",
        _ => "accepted",
    }
}

/// Given name and family name, blanks left out.
fn display(first: Option<&str>, last: Option<&str>) -> String {
    [first, last]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A calendar row as an Appointment.
fn map(row: &Row<'_>, _: &Request, out: &mut Fields) {
    if let Some(number) = row.int("pc_eid") {
        let mut id = Fields::new();
        id.set("use", "usual")
            .set("value", number.to_string().as_str());
        out.list("identifier", vec![id.end()]);
    }
    let status = status(row.text("pc_apptstatus").unwrap_or("-").trim());
    out.set("status", status);
    if let Some(category) = row.int("pc_catid") {
        let code = category.to_string();
        out.list(
            "serviceCategory",
            vec![concept(
                coding(CATEGORY_SYSTEM, &code, row.text("pc_catname")),
                row.text("pc_catname"),
            )],
        );
    }
    // OpenEMR's calendar books routine visits.
    out.set(
        "appointmentType",
        concept(
            coding(APPOINTMENT_TYPE, "ROUTINE", Some("Routine appointment")),
            None,
        ),
    );
    out.text("description", row.text("pc_title"))
        .text("comment", row.text("pc_hometext"));
    if let Some(day) = row.text("event_date") {
        let at = |time: Option<&str>| {
            time.and_then(|t| hearth_fhir::date::instant(&format!("{day} {t}")))
        };
        out.text("start", at(row.text("start_time")).as_deref())
            .text("end", at(row.text("end_time")).as_deref());
    }
    if let Some(seconds) = row.int("pc_duration").filter(|s| *s > 0) {
        out.set("minutesDuration", (seconds + 59) / 60);
    }
    let created = row.text("pc_time").and_then(hearth_fhir::date::instant);
    out.text("created", created.as_deref());
    let mut participants = Vec::new();
    let person = |kind: Option<(&str, &str)>, actor: Json| {
        let mut p = Fields::new();
        if let Some((code, name)) = kind {
            p.list(
                "type",
                vec![concept(coding(PARTICIPATION, code, Some(name)), None)],
            );
        }
        p.set("actor", actor)
            .set("required", "required")
            .set("status", participation(status));
        p.end()
    };
    if let Some(patient) = row.text("patient_uuid") {
        let name = display(row.text("patient_fname"), row.text("patient_lname"));
        participants.push(person(
            None,
            reference("Patient", patient, Some(name.as_str())),
        ));
    }
    if let Some(provider) = row.text("provider_uuid") {
        let name = display(row.text("provider_fname"), row.text("provider_lname"));
        participants.push(person(
            Some(("PPRF", "primary performer")),
            reference("Practitioner", provider, Some(name.as_str())),
        ));
    }
    if let Some(facility) = row.text("facility_uuid") {
        participants.push(person(
            None,
            reference("Location", facility, row.text("facility_name")),
        ));
    }
    out.list("participant", participants);
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    const UUID: &str = "90cde167-0000-4000-8000-000000000009";
    const PATIENT: &str = "90cde167-0000-4000-8000-000000000001";

    #[test]
    fn an_appointment_names_its_patient_provider_and_place() {
        let rows = Rows::from_values(
            &[
                "fhir_id",
                "fhir_last_updated",
                "fhir_key",
                "pc_eid",
                "pc_title",
                "pc_apptstatus",
                "pc_duration",
                "event_date",
                "start_time",
                "end_time",
                "pc_catid",
                "pc_catname",
                "patient_uuid",
                "patient_fname",
                "patient_lname",
                "provider_uuid",
                "facility_uuid",
            ],
            vec![vec![
                UUID.into(),
                "2024-05-01 07:08:09".into(),
                1.into(),
                12.into(),
                "Office Visit".into(),
                "@".into(),
                900.into(),
                "2024-06-03".into(),
                "09:30:00".into(),
                "09:45:00".into(),
                5.into(),
                "Office Visit".into(),
                PATIENT.into(),
                "Ann".into(),
                "Smith".into(),
                "90cde167-0000-4000-8000-000000000002".into(),
                "90cde167-0000-4000-8000-000000000003".into(),
            ]],
        );
        let mut host = MockHost::new().on_query("WHERE e.uuid = $1", rows);
        let response =
            host.call::<FhirAppointment>(TestRequest::get(&format!("/fhir/Appointment/{UUID}")));
        assert_eq!(response.status, 200, "{}", response.text());
        let a = response.body_json();
        assert_eq!(a["status"], "arrived");
        assert_eq!(a["start"], "2024-06-03T09:30:00Z");
        assert_eq!(a["end"], "2024-06-03T09:45:00Z");
        assert_eq!(a["minutesDuration"], 15);
        assert_eq!(
            a["participant"][0]["actor"]["reference"],
            format!("Patient/{PATIENT}")
        );
        assert_eq!(a["participant"][0]["status"], "accepted");
        assert_eq!(a["participant"][1]["type"][0]["coding"][0]["code"], "PPRF");
        assert!(
            a["participant"][2]["actor"]["reference"]
                .as_str()
                .unwrap()
                .starts_with("Location/")
        );
        assert_eq!(a["serviceCategory"][0]["coding"][0]["code"], "5");
    }

    #[test]
    fn calendar_statuses_map_to_appointment_statuses() {
        for (apptstat, expected) in [
            ("-", "pending"),
            ("*", "booked"),
            ("AVM", "booked"),
            ("@", "arrived"),
            (">", "fulfilled"),
            ("x", "cancelled"),
            ("?", "noshow"),
        ] {
            assert_eq!(status(apptstat), expected, "{apptstat}");
        }
    }
}
