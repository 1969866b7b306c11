//! FHIR R4 `Questionnaire` (search) and `QuestionnaireResponse` (read and search, US Core
//! 7.0.0) over OpenEMR's `questionnaire_repository` and `questionnaire_response`, where
//! OpenEMR keeps each as the FHIR JSON the form tools wrote. The stored document is
//! served with the row's uuid as its id and Hearth's `meta`; what the row knows better
//! (the status, the patient, when it was written) overrides the document, and what a
//! profile requires and the document lacks is filled from the row.

use hearth_fhir::{Fields, Param, Target, TokenColumn, TypeDef, reference};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;
use serde_json::{Map, Value as Doc};

/// The FHIR Questionnaire and QuestionnaireResponse resources.
pub struct FhirQuestionnaire;

impl Resource for FhirQuestionnaire {
    const NAME: &'static str = "fhir-questionnaire";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "FHIR Questionnaire and QuestionnaireResponse over OpenEMR questionnaires";
    const READS: &'static [&'static str] = &[
        "questionnaire_repository",
        "questionnaire_response",
        "patient_data",
        "form_encounter",
        "users",
    ];
    const ROUTES: &'static [Route] = &[
        Route::get("/fhir/Questionnaire", "Questionnaire.s", |r| {
            hearth_fhir::search(r, &QUESTIONNAIRE, questionnaire)
        })
        .summary("Search questionnaires")
        .answers(Schema::Bundle(&QUESTIONNAIRE_SCHEMA)),
        Route::post("/fhir/Questionnaire/_search", "Questionnaire.s", |r| {
            hearth_fhir::search(r, &QUESTIONNAIRE, questionnaire)
        })
        .summary("Search questionnaires (form body)")
        .answers(Schema::Bundle(&QUESTIONNAIRE_SCHEMA)),
        Route::get(
            "/fhir/QuestionnaireResponse",
            "QuestionnaireResponse.s",
            |r| hearth_fhir::search(r, &RESPONSE, response),
        )
        .summary("Search questionnaire responses")
        .answers(Schema::Bundle(&RESPONSE_SCHEMA)),
        Route::post(
            "/fhir/QuestionnaireResponse/_search",
            "QuestionnaireResponse.s",
            |r| hearth_fhir::search(r, &RESPONSE, response),
        )
        .summary("Search questionnaire responses (form body)")
        .answers(Schema::Bundle(&RESPONSE_SCHEMA)),
        Route::get(
            "/fhir/QuestionnaireResponse/:id",
            "QuestionnaireResponse.r",
            |r| hearth_fhir::read(r, &RESPONSE, r.param("id")?, response),
        )
        .summary("Read a questionnaire response")
        .answers(RESPONSE_SCHEMA),
    ];

    const WORDS: &'static [Words] = &[
        Words::new(
            "Questionnaire",
            "Questionnaires (FHIR)",
            "questionnaires and forms (FHIR Questionnaire)",
        ),
        Words::new(
            "QuestionnaireResponse",
            "Questionnaire responses (FHIR)",
            "answered questionnaires (FHIR QuestionnaireResponse)",
        ),
    ];

    fn fhir_types() -> Vec<FhirType> {
        vec![QUESTIONNAIRE.declaration(), RESPONSE.declaration()]
    }
}

hearth_sdk::export!(FhirQuestionnaire);

const QUESTIONNAIRE_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Questionnaire"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("url", Schema::Format("uri")),
        Prop::new("name", Schema::String),
        Prop::new("title", Schema::String),
        Prop::new(
            "status",
            Schema::Enum(&["draft", "active", "retired", "unknown"]),
        )
        .required(),
        Prop::new("code", Schema::Array(&CODING)),
        Prop::new("item", Schema::Array(&Schema::Object(&[]))),
    ])
};

const RESPONSE_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["QuestionnaireResponse"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("questionnaire", Schema::String).required(),
        Prop::new(
            "status",
            Schema::Enum(&[
                "in-progress",
                "completed",
                "amended",
                "entered-in-error",
                "stopped",
            ]),
        )
        .required(),
        Prop::new("subject", REFERENCE).required(),
        Prop::new("encounter", REFERENCE),
        Prop::new("authored", Schema::String).required(),
        Prop::new("author", REFERENCE),
        Prop::new("item", Schema::Array(&Schema::Object(&[]))),
    ])
};

const QUESTIONNAIRE: TypeDef = TypeDef {
    resource_type: "Questionnaire",
    profiles: &[],
    columns: "q.questionnaire, q.name, q.status, q.source_url, q.code, q.code_display, \
              q.version, q.active",
    from: "questionnaire_repository q",
    id: "q.uuid",
    key: "q.id",
    last_updated: "COALESCE(q.modified_date, q.created_date)",
    patient: None,
    only: Some("q.type = 'Questionnaire'"),
    params: &[
        Param::new("name", "Questionnaire.name", Target::Text(&["q.name"])),
        Param::new(
            "status",
            "Questionnaire.status",
            Target::Token(&[TokenColumn::new("q.status", None)]),
        ),
    ],
};

const RESPONSE: TypeDef = TypeDef {
    resource_type: "QuestionnaireResponse",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-questionnaireresponse",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-questionnaireresponse|7.0.0",
    ],
    columns: "r.questionnaire_response, r.status, r.create_time, r.questionnaire_id, \
              r.questionnaire_name, q.uuid AS questionnaire_uuid, q.source_url, \
              p.uuid AS patient_uuid, p.fname AS patient_fname, p.lname AS patient_lname, \
              fe.uuid AS encounter_uuid",
    from: "questionnaire_response r JOIN patient_data p ON p.pid = r.patient_id \
           LEFT JOIN questionnaire_repository q ON q.id = r.questionnaire_foreign_id \
           LEFT JOIN form_encounter fe ON fe.pid = r.patient_id AND fe.encounter = r.encounter",
    id: "r.uuid",
    key: "r.id",
    last_updated: "COALESCE(r.last_updated, r.create_time)",
    patient: Some("p.uuid"),
    only: None,
    params: &[
        Param::new(
            "patient",
            "QuestionnaireResponse.subject.where(resolve() is Patient)",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "status",
            "QuestionnaireResponse.status",
            Target::Token(&[TokenColumn::new("r.status", None)]),
        ),
        Param::new(
            "authored",
            "QuestionnaireResponse.authored",
            Target::DateTime("r.create_time"),
        ),
    ],
};

/// The stored document's own fields (an object; anything else counts as empty).
fn document(text: Option<&str>) -> Map<String, Doc> {
    match text.and_then(|t| serde_json::from_str::<Doc>(t).ok()) {
        Some(Doc::Object(map)) => map,
        _ => Map::new(),
    }
}

/// Copies the document's fields but those Hearth writes itself.
fn copy(doc: &Map<String, Doc>, out: &mut Fields, skip: &[&str]) {
    for (key, value) in doc {
        if matches!(
            key.as_str(),
            "resourceType" | "id" | "meta" | "contained" | "text"
        ) || skip.contains(&key.as_str())
        {
            continue;
        }
        out.set(key, Json::raw(value.to_string()));
    }
}

fn status_of<'a>(allowed: &[&'a str], value: Option<&str>, default: &'a str) -> &'a str {
    let value = value.unwrap_or("").trim();
    allowed
        .iter()
        .find(|s| **s == value)
        .copied()
        .unwrap_or(default)
}

/// A stored questionnaire: its document, with the row's status, name and url.
fn questionnaire(row: &Row<'_>, _: &Request, out: &mut Fields) {
    let doc = document(row.text("questionnaire"));
    let stored = doc.get("status").and_then(Doc::as_str);
    let status = if row.int("active") == Some(0) {
        "retired"
    } else {
        status_of(
            &["draft", "active", "retired", "unknown"],
            row.text("status").or(stored),
            "active",
        )
    };
    let url = doc
        .get("url")
        .and_then(Doc::as_str)
        .map(str::to_owned)
        .or_else(|| row.text("source_url").map(str::to_owned));
    out.text("url", url.as_deref());
    if !doc.contains_key("name") {
        // FHIR's name is a computer-friendly one: letters, digits and underscores.
        let name: String = row
            .text("name")
            .unwrap_or("")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        if name.starts_with(|c: char| c.is_ascii_uppercase()) {
            out.set("name", name.as_str());
        }
    }
    if !doc.contains_key("title") {
        out.text("title", row.text("name"));
    }
    out.set("status", status);
    copy(&doc, out, &["url", "status"]);
}

/// A stored response: its document, with the row's patient, status and time, and its
/// questionnaire as a canonical reference.
fn response(row: &Row<'_>, _: &Request, out: &mut Fields) {
    let doc = document(row.text("questionnaire_response"));
    let questionnaire = doc
        .get("questionnaire")
        .and_then(Doc::as_str)
        .map(str::to_owned)
        .or_else(|| {
            row.text("source_url")
                .filter(|u| !u.trim().is_empty())
                .map(str::to_owned)
        })
        .or_else(|| {
            row.text("questionnaire_uuid")
                .map(|q| format!("Questionnaire/{q}"))
        })
        .unwrap_or_else(|| {
            format!(
                "Questionnaire/{}",
                row.text("questionnaire_id").unwrap_or("unknown")
            )
        });
    out.set("questionnaire", questionnaire.as_str());
    out.set(
        "status",
        status_of(
            &[
                "in-progress",
                "completed",
                "amended",
                "entered-in-error",
                "stopped",
            ],
            row.text("status"),
            "completed",
        ),
    );
    if let Some(patient) = row.text("patient_uuid") {
        let name = [row.text("patient_fname"), row.text("patient_lname")]
            .into_iter()
            .flatten()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        out.set(
            "subject",
            reference("Patient", patient, Some(name.as_str())),
        );
    }
    if let Some(encounter) = row.text("encounter_uuid") {
        out.set("encounter", reference("Encounter", encounter, None));
    }
    let authored = doc
        .get("authored")
        .and_then(Doc::as_str)
        .map(str::to_owned)
        .or_else(|| row.text("create_time").and_then(hearth_fhir::date::instant));
    out.text("authored", authored.as_deref());
    copy(
        &doc,
        out,
        &[
            "questionnaire",
            "status",
            "subject",
            "encounter",
            "authored",
        ],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_outside_the_value_set_take_the_default() {
        assert_eq!(
            status_of(&["active", "draft"], Some("draft"), "active"),
            "draft"
        );
        assert_eq!(
            status_of(&["active", "draft"], Some("bogus"), "active"),
            "active"
        );
        assert_eq!(status_of(&["active"], None, "active"), "active");
        assert!(document(Some("[1]")).is_empty());
        assert_eq!(document(Some(r#"{"a":1}"#)).len(), 1);
    }
}
