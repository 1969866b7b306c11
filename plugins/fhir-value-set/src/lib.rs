//! FHIR R4 `ValueSet` over OpenEMR's lists: every list registered in `list_options`'
//! `lists` list is a ValueSet of its active options (code `option_id`, display `title`,
//! in `seq` order), and the calendar's appointment categories are the ValueSet
//! `appointment-type`, as OpenEMR answers. A ValueSet's id is its list's name with `_`
//! written `-` (FHIR ids allow no underscore; OpenEMR sends the name as it is). A list
//! has no time of change, so a ValueSet has no `meta.lastUpdated`.

use hearth_fhir::{Fields, Param, Target, TypeDef};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR ValueSet resource.
pub struct FhirValueSet;

impl Resource for FhirValueSet {
    const NAME: &'static str = "fhir-value-set";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "FHIR ValueSet over OpenEMR list options";
    const READS: &'static [&'static str] = &["list_options", "openemr_postcalendar_categories"];
    const ROUTES: &'static [Route] = &[
        Route::get("/fhir/ValueSet", "ValueSet.s", |r| {
            hearth_fhir::search(r, &VALUE_SET, map)
        })
        .acl("admin/super")
        .summary("Search value sets")
        .answers(Schema::Bundle(&VALUE_SET_SCHEMA)),
        Route::post("/fhir/ValueSet/_search", "ValueSet.s", |r| {
            hearth_fhir::search(r, &VALUE_SET, map)
        })
        .acl("admin/super")
        .summary("Search value sets (form body)")
        .answers(Schema::Bundle(&VALUE_SET_SCHEMA)),
        Route::get("/fhir/ValueSet/:id", "ValueSet.r", |r| {
            hearth_fhir::read_id(r, &VALUE_SET, r.param("id")?, map)
        })
        .acl("admin/super")
        .summary("Read a value set")
        .answers(VALUE_SET_SCHEMA),
    ];

    const WORDS: &'static [Words] = &[Words::new(
        "ValueSet",
        "Value sets (FHIR)",
        "the site's lists of coded choices (FHIR ValueSet)",
    )];

    fn fhir_types() -> Vec<FhirType> {
        vec![VALUE_SET.declaration()]
    }
}

hearth_sdk::export!(FhirValueSet);

const VALUE_SET_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["ValueSet"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("url", Schema::Format("uri")),
        Prop::new("version", Schema::String),
        Prop::new("name", Schema::String),
        Prop::new("title", Schema::String),
        Prop::new("status", Schema::Enum(&["active"])).required(),
        Prop::new("experimental", Schema::Boolean),
        Prop::new("publisher", Schema::String),
        Prop::new("description", Schema::String),
        Prop::new("compose", Schema::Object(&[])),
    ])
};

/// The ValueSet of the calendar's categories.
const APPOINTMENT_TYPE: &str = "appointment-type";

/// Where a list's options are named as codes.
const LIST_SYSTEM: &str = "urn:openemr:list:";

const VALUE_SET: TypeDef = TypeDef {
    resource_type: "ValueSet",
    profiles: &["http://hl7.org/fhir/StructureDefinition/shareablevalueset"],
    columns: "vs.list_id, vs.title",
    from: "(SELECT REPLACE(lo.option_id, '_', '-') AS vid, lo.option_id AS list_id, \
           lo.title, (SELECT COUNT(*) FROM list_options o2 WHERE o2.list_id = 'lists' \
           AND o2.option_id <= lo.option_id) AS vkey, CAST(NULL AS TIMESTAMP) AS updated \
           FROM list_options lo WHERE lo.list_id = 'lists' AND lo.activity = 1 \
           AND EXISTS (SELECT 1 FROM list_options o3 WHERE o3.list_id = lo.option_id \
           AND o3.activity = 1) \
           UNION ALL SELECT 'appointment-type' AS vid, 'appointment-type' AS list_id, \
           'Appointment Type' AS title, 0 AS vkey, CAST(NULL AS TIMESTAMP) AS updated \
           FROM openemr_postcalendar_categories pc WHERE pc.pc_cattype = 0 \
           AND pc.pc_catid = (SELECT MIN(c2.pc_catid) FROM openemr_postcalendar_categories c2 \
           WHERE c2.pc_cattype = 0)) vs",
    id: "vs.vid",
    key: "vs.vkey",
    last_updated: "vs.updated",
    patient: None,
    only: None,
    params: &[Param::new(
        "name",
        "ValueSet.name",
        Target::Text(&["vs.title"]),
    )],
};

/// A computer-friendly name: the id's letters and digits, capitalized words.
fn name(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut chars = w.chars();
            let first = chars.next().map(|c| c.to_ascii_uppercase());
            first.into_iter().chain(chars).collect::<String>()
        })
        .collect()
}

/// A list as a ValueSet: its options as the concepts of one include.
fn map(row: &Row<'_>, _: &Request, out: &mut Fields) {
    let list = row.text("list_id").unwrap_or("");
    let id = row.text("fhir_id").unwrap_or(list);
    let options = if list == APPOINTMENT_TYPE {
        store::query(
            "SELECT pc.pc_constant_id AS code, pc.pc_catname AS display \
             FROM openemr_postcalendar_categories pc WHERE pc.pc_cattype = 0 \
             ORDER BY pc.pc_seq, pc.pc_catid",
            &[],
        )
    } else {
        store::query(
            "SELECT lo.option_id AS code, lo.title AS display FROM list_options lo \
             WHERE lo.list_id = $1 AND lo.activity = 1 ORDER BY lo.seq, lo.option_id",
            &[Value::from(list)],
        )
    }
    .ok();
    let mut concepts = Vec::new();
    for option in options.iter().flat_map(|o| o.iter()) {
        let Some(code) = option.text("code").filter(|c| !c.trim().is_empty()) else {
            continue;
        };
        let mut concept = Fields::new();
        concept
            .set("code", code)
            .text("display", option.text("display"));
        concepts.push(concept.end());
    }
    let title = row.text("title").unwrap_or(list);
    let name = name(id);
    let description = format!("The options of the OpenEMR list {title}");
    let url = format!("{LIST_SYSTEM}{list}");
    out.set("url", url.as_str())
        .set("version", "1")
        .text("name", Some(name.as_str()))
        .text("title", Some(title))
        .set("status", "active")
        .set("experimental", false)
        .set("publisher", "OpenEMR")
        .set("description", description.as_str());
    let mut include = Fields::new();
    include
        .set("system", url.as_str())
        .list("concept", concepts);
    let mut compose = Fields::new();
    compose.list("include", vec![include.end()]);
    out.set("compose", compose.end());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_computer_friendly() {
        assert_eq!(name("Care-Team-Status"), "CareTeamStatus");
        assert_eq!(name("-ActEncounterCode"), "ActEncounterCode");
        assert_eq!(name("drug-route"), "DrugRoute");
    }
}
