//! FHIR R4 `Device` (US Core Implantable Device 3.1.1 and 7.0.0) over OpenEMR's medical
//! devices: `lists` rows of type `medical_device`, whose `udi` holds the label's UDI
//! carrier. The carrier is read in the format of its issuing agency (GS1, HIBCC or
//! ICCBBA, see [`udi`]) into the device identifier and the production identifiers US
//! Core asks for; the device's type is its coded `diagnosis` (SNOMED CT), else its title.

pub mod udi;

use hearth_fhir::{Fields, Param, Target, TypeDef, reference};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR Device resource.
pub struct FhirDevice;

impl Resource for FhirDevice {
    const NAME: &'static str = "fhir-device";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "FHIR Device (US Core Implantable Device) over OpenEMR medical devices";
    const READS: &'static [&'static str] = &["lists", "patient_data"];
    const ROUTES: &'static [Route] = &hearth_fhir::read_search_routes!(
        DEVICE, map, type = "Device", acl = "admin/super", nouns = "implantable devices",
        one = "an implantable device", schema = DEVICE_SCHEMA
    );

    const WORDS: &'static [Words] = &[Words::new(
        "Device",
        "Implantable devices (FHIR)",
        "implanted devices and their UDIs (FHIR Device)",
    )];

    fn fhir_types() -> Vec<FhirType> {
        vec![DEVICE.declaration()]
    }
}

hearth_sdk::export!(FhirDevice);

const DEVICE_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Device"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new(
            "udiCarrier",
            Schema::Array(&Schema::Object(&[
                Prop::new("deviceIdentifier", Schema::String),
                Prop::new("issuer", Schema::Format("uri")),
                Prop::new("jurisdiction", Schema::Format("uri")),
                Prop::new("carrierHRF", Schema::String),
            ])),
        ),
        Prop::new("distinctIdentifier", Schema::String),
        Prop::new("status", Schema::Enum(&["active", "inactive"])),
        Prop::new("manufactureDate", Schema::String),
        Prop::new("expirationDate", Schema::String),
        Prop::new("lotNumber", Schema::String),
        Prop::new("serialNumber", Schema::String),
        Prop::new("deviceName", Schema::Array(&Schema::Object(&[]))),
        Prop::new("type", CODEABLE_CONCEPT).required(),
        Prop::new("patient", REFERENCE).required(),
        Prop::new("note", Schema::Array(&ANNOTATION)),
    ])
};

const FDA: &str = "http://hl7.org/fhir/NamingSystem/fda-udi";
const DATA_ABSENT: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";

const DEVICE: TypeDef = TypeDef {
    resource_type: "Device",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-implantable-device",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-implantable-device|3.1.1",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-implantable-device|7.0.0",
    ],
    columns: "l.title, l.udi, l.begdate, l.enddate, l.activity, l.diagnosis, l.comments, \
              p.uuid AS patient_uuid, p.fname AS patient_fname, p.lname AS patient_lname",
    from: "lists l JOIN patient_data p ON p.pid = l.pid",
    id: "l.uuid",
    key: "l.id",
    last_updated: "COALESCE(l.modifydate, l.date)",
    patient: Some("p.uuid"),
    only: Some("l.type = 'medical_device'"),
    params: &[
        Param::new(
            "patient",
            "Device.patient",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new("type", "Device.type", Target::Text(&["l.title"])),
    ],
};

/// `active` while the device is in use: recorded as active and not yet removed.
pub fn status(active: bool, removed: Option<&str>, now: &str) -> &'static str {
    let gone = removed.is_some_and(|end| !end.trim().is_empty() && end <= now);
    if active && !gone {
        "active"
    } else {
        "inactive"
    }
}

/// A `medical_device` row as a US Core Implantable Device.
fn map(row: &Row<'_>, _: &Request, out: &mut Fields) {
    let carrier = row.text("udi").map(str::trim).filter(|u| !u.is_empty());
    let parsed = carrier.and_then(udi::parse);
    if let Some(carrier) = carrier {
        let mut udi = Fields::new();
        if let Some(parsed) = &parsed {
            udi.set("deviceIdentifier", parsed.device_identifier.as_str())
                .set("issuer", parsed.issuer.system())
                .set("jurisdiction", FDA);
        }
        udi.set("carrierHRF", carrier);
        out.list("udiCarrier", vec![udi.end()]);
    }
    if let Some(parsed) = &parsed {
        out.text("distinctIdentifier", parsed.distinct.as_deref())
            .text("manufactureDate", parsed.manufactured.as_deref())
            .text("expirationDate", parsed.expires.as_deref())
            .text("lotNumber", parsed.lot.as_deref())
            .text("serialNumber", parsed.serial.as_deref());
    }
    let now = hearth_sdk::time::now().datetime();
    out.set(
        "status",
        status(
            row.int("activity").unwrap_or(1) != 0,
            row.text("enddate"),
            &now,
        ),
    );
    let title = row.text("title").map(str::trim).filter(|t| !t.is_empty());
    if let Some(title) = title {
        let mut name = Fields::new();
        name.set("name", title).set("type", "user-friendly-name");
        out.list("deviceName", vec![name.end()]);
    }
    let mut kind = hearth_fhir::codes::concept(row.text("diagnosis"), title);
    if kind.as_str() == "{}" {
        kind = hearth_fhir::concept(
            hearth_fhir::coding(DATA_ABSENT, "unknown", Some("Unknown")),
            None,
        );
    }
    out.set("type", kind);
    if let Some(patient) = row.text("patient_uuid") {
        let name = [row.text("patient_fname"), row.text("patient_lname")]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        out.set(
            "patient",
            reference("Patient", patient, Some(name.as_str())),
        );
    }
    if let Some(note) = row.text("comments").filter(|n| !n.trim().is_empty()) {
        let mut text = Fields::new();
        text.text("text", Some(note));
        out.list("note", vec![text.end()]);
    }
}
