//! FHIR R4 `CarePlan`, `Goal` and `CareTeam` (US Core 3.1.1 and 7.0.0) over OpenEMR's
//! care plan form and care teams: read and search, in the patient's compartment, each
//! with a Provenance.
//!
//! - A CarePlan is one care plan form: the `forms` row (formdir `care_plan`) that files
//!   it in an encounter, whose `form_care_plan` rows (sharing the form's id) are its
//!   activities; the rows of type `goal` are its goals. Its category is US Core's
//!   `assess-plan`, its intent `plan`; a deleted form is `revoked`.
//! - A Goal is a `form_care_plan` row of type `goal`: its code or text is the description,
//!   `date` the start, `date_end` the target date; an inactive row is `cancelled`.
//! - A CareTeam is a `care_teams` row with its `care_team_member` rows as participants:
//!   a user member is a Practitioner, with the member's role (SNOMED CT, from the
//!   `care_team_roles` list) and facility.

use hearth_fhir::linked::Linked;
use hearth_fhir::{Fields, Param, Target, TokenColumn, TypeDef, coding, concept, reference};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR CarePlan, Goal and CareTeam resources.
pub struct FhirCare;

impl Resource for FhirCare {
    const NAME: &'static str = "fhir-care";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str =
        "FHIR CarePlan, Goal and CareTeam (US Core) over OpenEMR care plans and care teams";
    const READS: &'static [&'static str] = &[
        "forms",
        "form_care_plan",
        "care_teams",
        "care_team_member",
        "patient_data",
        "users",
        "facility",
        "form_encounter",
        "list_options",
    ];
    const ROUTES: &'static [Route] = &hearth_fhir::read_search_routes!(
        CARE_PLAN, care_plan, type = "CarePlan", acl = "patients/med", nouns = "care plans",
        one = "a care plan", schema = CARE_PLAN_SCHEMA;
        CARE_TEAM, care_team, type = "CareTeam", acl = "patients/med", nouns = "care teams",
        one = "a care team", schema = CARE_TEAM_SCHEMA;
        GOAL, goal, type = "Goal", acl = "admin/super", nouns = "goals", one = "a goal",
        schema = GOAL_SCHEMA
    );

    const WORDS: &'static [Words] = &[
        Words::new(
            "CarePlan",
            "Care plans (FHIR)",
            "care plans (FHIR CarePlan)",
        ),
        Words::new(
            "CareTeam",
            "Care teams (FHIR)",
            "care teams (FHIR CareTeam)",
        ),
        Words::new("Goal", "Goals (FHIR)", "patient goals (FHIR Goal)"),
    ];

    fn fhir_types() -> Vec<FhirType> {
        vec![
            CARE_PLAN.declaration(),
            CARE_TEAM.declaration(),
            GOAL.declaration(),
        ]
    }
}

hearth_sdk::export!(FhirCare);

const CARE_PLAN_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["CarePlan"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("text", Schema::Object(&[])).required(),
        Prop::new("status", Schema::Enum(&["active", "revoked", "completed"])).required(),
        Prop::new("intent", Schema::Enum(&["plan"])).required(),
        Prop::new("category", Schema::Array(&CODEABLE_CONCEPT)).required(),
        Prop::new("subject", REFERENCE).required(),
        Prop::new("encounter", REFERENCE),
        Prop::new("created", Schema::String),
        Prop::new("author", REFERENCE),
        Prop::new("goal", Schema::Array(&REFERENCE)),
        Prop::new("activity", Schema::Array(&Schema::Object(&[]))),
    ])
};

const GOAL_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Goal"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new(
            "lifecycleStatus",
            Schema::Enum(&["active", "cancelled", "completed"]),
        )
        .required(),
        Prop::new("description", CODEABLE_CONCEPT).required(),
        Prop::new("subject", REFERENCE).required(),
        Prop::new("startDate", Schema::String),
        Prop::new(
            "target",
            Schema::Array(&Schema::Object(&[Prop::new("dueDate", Schema::String)])),
        ),
        Prop::new("expressedBy", REFERENCE),
        Prop::new("note", Schema::Array(&ANNOTATION)),
    ])
};

const CARE_TEAM_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["CareTeam"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("status", Schema::String).required(),
        Prop::new("name", Schema::String),
        Prop::new("subject", REFERENCE).required(),
        Prop::new(
            "participant",
            Schema::Array(&Schema::Object(&[
                Prop::new("role", Schema::Array(&CODEABLE_CONCEPT)),
                Prop::new("member", REFERENCE),
                Prop::new("onBehalfOf", REFERENCE),
                Prop::new("period", PERIOD),
            ])),
        )
        .required(),
        Prop::new("note", Schema::Array(&ANNOTATION)),
    ])
};

const US_CORE_CATEGORY: &str = "http://hl7.org/fhir/us/core/CodeSystem/careplan-category";
const SNOMED: &str = "http://snomed.info/sct";
const DATA_ABSENT: &str = "http://terminology.hl7.org/CodeSystem/data-absent-reason";

/// A care plan form: its `forms` row, status and category.
const CARE_PLAN: TypeDef = TypeDef {
    resource_type: "CarePlan",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-careplan",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-careplan|3.1.1",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-careplan|7.0.0",
    ],
    columns: "cp.form_id, cp.date, cp.encounter, cp.status, p.uuid AS patient_uuid, \
              p.fname AS patient_fname, p.lname AS patient_lname, fe.uuid AS encounter_uuid, \
              u.uuid AS author_uuid, u.fname AS author_fname, u.lname AS author_lname",
    from: "(SELECT fo.id, fo.uuid, fo.form_id, fo.date, fo.pid, fo.encounter, fo.provider_id, \
           'assess-plan' AS category, CASE WHEN fo.deleted = 0 THEN 'active' ELSE 'revoked' END \
           AS status FROM forms fo WHERE fo.formdir = 'care_plan') cp \
           JOIN patient_data p ON p.pid = cp.pid \
           LEFT JOIN form_encounter fe ON fe.pid = cp.pid AND fe.encounter = cp.encounter \
           LEFT JOIN users u ON u.id = cp.provider_id AND u.npi <> ''",
    id: "cp.uuid",
    key: "cp.id",
    last_updated: "cp.date",
    patient: Some("p.uuid"),
    only: None,
    params: &[
        Param::new(
            "patient",
            "CarePlan.subject.where(resolve() is Patient)",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "category",
            "CarePlan.category",
            Target::Token(&[TokenColumn::new("cp.category", Some(US_CORE_CATEGORY))]),
        ),
        Param::new(
            "status",
            "CarePlan.status",
            Target::Token(&[TokenColumn::new("cp.status", None)]),
        ),
        Param::new("date", "CarePlan.period", Target::DateTime("cp.date")),
    ],
};

/// A goal row: its lifecycle status, description and target date.
const GOAL: TypeDef = TypeDef {
    resource_type: "Goal",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-goal",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-goal|3.1.1",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-goal|7.0.0",
    ],
    columns: "g.code, g.codetext, g.description, g.date, g.date_end, g.lifecycle, \
              g.note_related_to, p.uuid AS patient_uuid, p.fname AS patient_fname, \
              p.lname AS patient_lname",
    from: "(SELECT cp.row_key, cp.uuid, cp.pid, cp.code, cp.codetext, cp.description, cp.date, \
           cp.date_end, cp.note_related_to, CASE WHEN cp.activity = 1 THEN 'active' ELSE \
           'cancelled' END AS lifecycle \
           FROM form_care_plan cp WHERE cp.care_plan_type = 'goal') g \
           JOIN patient_data p ON p.pid = g.pid",
    id: "g.uuid",
    key: "g.row_key",
    last_updated: "g.date",
    patient: Some("p.uuid"),
    only: None,
    params: &[
        Param::new(
            "patient",
            "Goal.subject.where(resolve() is Patient)",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "lifecycle-status",
            "Goal.lifecycleStatus",
            Target::Token(&[TokenColumn::new("g.lifecycle", None)]),
        ),
        Param::new(
            "target-date",
            "(Goal.target.due as date)",
            Target::DateTime("g.date_end"),
        ),
        Param::new(
            "description",
            "Goal.description",
            Target::Token(&[TokenColumn::new("g.code", None).text("g.description")]),
        ),
    ],
};

/// A care team: its row, status and patient; the members are read per team.
const CARE_TEAM: TypeDef = TypeDef {
    resource_type: "CareTeam",
    profiles: &[
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-careteam",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-careteam|3.1.1",
        "http://hl7.org/fhir/us/core/StructureDefinition/us-core-careteam|7.0.0",
    ],
    columns: "ct.id AS team_id, ct.status, ct.team_name, ct.note, ct.date_created, \
              p.uuid AS patient_uuid, p.fname AS patient_fname, p.lname AS patient_lname",
    from: "care_teams ct JOIN patient_data p ON p.pid = ct.pid",
    id: "ct.uuid",
    key: "ct.id",
    last_updated: "COALESCE(ct.date_updated, ct.date_created)",
    patient: Some("p.uuid"),
    only: None,
    params: &[
        Param::new(
            "patient",
            "CareTeam.subject.where(resolve() is Patient)",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "status",
            "CareTeam.status",
            Target::Token(&[TokenColumn::new("ct.status", None)]),
        ),
    ],
};

fn display(first: Option<&str>, last: Option<&str>) -> String {
    [first, last]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn subject(row: &Row<'_>, out: &mut Fields) {
    if let Some(patient) = row.text("patient_uuid") {
        let name = display(row.text("patient_fname"), row.text("patient_lname"));
        out.set(
            "subject",
            reference("Patient", patient, Some(name.as_str())),
        );
    }
}

/// A code as OpenEMR's care plan form stores it (`SNOMED-CT:123`, `LOINC:…`) with its
/// text, as a CodeableConcept; text alone when the code is not one FHIR names.
pub fn coded(code: Option<&str>, text: Option<&str>) -> Json {
    let text = text.map(str::trim).filter(|t| !t.is_empty());
    hearth_fhir::codes::concept(code.map(str::trim).filter(|c| !c.is_empty()), text)
}

/// Text made safe for XHTML.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out
}

/// The status an activity of a plan has: done once its end has passed.
fn activity_status(active: bool, ended: Option<&str>, now: &str) -> &'static str {
    match (active, ended) {
        (false, _) => "cancelled",
        (true, Some(end)) if !end.trim().is_empty() && end < now => "completed",
        _ => "in-progress",
    }
}

/// A care plan form as a US Core CarePlan: its activities and goals are its rows.
fn care_plan(row: &Row<'_>, _: &Request, out: &mut Fields) {
    let status = row.text("status").unwrap_or("active");
    // The plan's rows, read for the page's plans at once ([`hearth_fhir::linked`]). SQLite
    // would read every care plan form by its kind for each statement, without `likely`
    // (most forms a uuid names are care plans here), instead of the forms by uuid.
    static ITEMS: Linked = Linked::new(
        "SELECT fo.uuid AS fhir_parent, cp.uuid, cp.code, cp.codetext, cp.description, \
         cp.care_plan_type, cp.activity, cp.date_end FROM form_care_plan cp \
         JOIN forms fo ON fo.form_id = cp.id AND likely(fo.formdir = 'care_plan') \
         AND fo.pid = cp.pid WHERE fo.uuid IN ({keys}) ORDER BY cp.row_key",
        "fhir_id",
    );
    let now = hearth_sdk::time::now().datetime();
    let mut goals = Vec::new();
    let mut activities = Vec::new();
    let mut summary = Vec::new();
    ITEMS.each(row, |item| {
        let text = item
            .text("description")
            .filter(|d| !d.trim().is_empty())
            .or(item.text("codetext"));
        if item.text("care_plan_type") == Some("goal") {
            if let Some(uuid) = item.text("uuid") {
                goals.push(reference("Goal", uuid, text));
            }
            return;
        }
        if let Some(text) = text {
            summary.push(escape(text.trim()));
        }
        let mut detail = Fields::new();
        let concept = coded(item.text("code"), item.text("codetext"));
        if concept.as_str() != "{}" {
            detail.set("code", concept);
        }
        detail
            .set(
                "status",
                activity_status(
                    item.int("activity").unwrap_or(1) != 0,
                    item.text("date_end"),
                    &now,
                ),
            )
            .text("description", text);
        let mut activity = Fields::new();
        activity.set("detail", detail.end());
        activities.push(activity.end());
    });
    // US Core asks for a narrative: the plan's activities, or a generated note.
    let div = if summary.is_empty() {
        "<div xmlns=\"http://www.w3.org/1999/xhtml\">Care plan</div>".to_owned()
    } else {
        format!(
            "<div xmlns=\"http://www.w3.org/1999/xhtml\"><ul><li>{}</li></ul></div>",
            summary.join("</li><li>")
        )
    };
    let mut text = Fields::new();
    text.set("status", "generated").set("div", div.as_str());
    out.set("text", text.end())
        .set("status", status)
        .set("intent", "plan")
        .list(
            "category",
            vec![concept(
                coding(
                    US_CORE_CATEGORY,
                    "assess-plan",
                    Some("Assessment and Plan of Treatment"),
                ),
                None,
            )],
        );
    subject(row, out);
    if let Some(encounter) = row.text("encounter_uuid") {
        out.set("encounter", reference("Encounter", encounter, None));
    }
    let created = row.text("date").and_then(hearth_fhir::date::instant);
    out.text("created", created.as_deref());
    if let Some(author) = row.text("author_uuid") {
        let name = display(row.text("author_fname"), row.text("author_lname"));
        out.set(
            "author",
            reference("Practitioner", author, Some(name.as_str())),
        );
    }
    out.list("goal", goals).list("activity", activities);
}

/// A goal row as a US Core Goal.
fn goal(row: &Row<'_>, _: &Request, out: &mut Fields) {
    out.set("lifecycleStatus", row.text("lifecycle").unwrap_or("active"));
    let text = row
        .text("description")
        .filter(|d| !d.trim().is_empty())
        .or(row.text("codetext"));
    let mut description = coded(row.text("code"), text);
    if description.as_str() == "{}" {
        description = concept(coding(DATA_ABSENT, "unknown", Some("Unknown")), None);
    }
    out.set("description", description);
    subject(row, out);
    let start = row.text("date").map(|d| d.get(..10).unwrap_or(d));
    out.text("startDate", start);
    if let Some(due) = row
        .text("date_end")
        .map(|d| d.get(..10).unwrap_or(d))
        .filter(|d| !d.trim().is_empty())
    {
        let mut target = Fields::new();
        target.set("dueDate", due);
        out.list("target", vec![target.end()]);
    }
    if let Some(note) = row.text("note_related_to").filter(|n| !n.trim().is_empty()) {
        let mut text = Fields::new();
        text.text("text", Some(note));
        out.list("note", vec![text.end()]);
    }
}

/// A care team row as a US Core CareTeam, its members as participants.
fn care_team(row: &Row<'_>, _: &Request, out: &mut Fields) {
    out.set("status", row.text("status").unwrap_or("active"))
        .text("name", row.text("team_name"));
    subject(row, out);
    // The team's members, read for the page's teams at once ([`hearth_fhir::linked`]).
    static MEMBERS: Linked = Linked::new(
        "SELECT m.care_team_id AS fhir_parent, m.role, CAST(m.provider_since AS TEXT) AS provider_since, \
         m.status, u.uuid AS user_uuid, u.fname, u.lname, \
         f.uuid AS facility_uuid, f.name AS facility_name, r.title AS role_title, \
         r.notes AS role_code FROM care_team_member m \
         LEFT JOIN users u ON u.id = m.user_id \
         LEFT JOIN facility f ON f.id = m.facility_id \
         LEFT JOIN list_options r ON r.list_id = 'care_team_roles' AND r.option_id = m.role \
         WHERE m.care_team_id IN ({keys}) ORDER BY m.id",
        "team_id",
    );
    let mut participants = Vec::new();
    MEMBERS.each(row, |member| {
        let Some(user) = member.text("user_uuid") else {
            return;
        };
        let mut who = Fields::new();
        let title = member.text("role_title").or(member.text("role"));
        let role = match member.text("role_code").filter(|c| !c.trim().is_empty()) {
            Some(code) => concept(coding(SNOMED, code, title), title),
            None => concept(coding(DATA_ABSENT, "unknown", Some("Unknown")), title),
        };
        let name = display(member.text("fname"), member.text("lname"));
        who.list("role", vec![role]).set(
            "member",
            reference("Practitioner", user, Some(name.as_str())),
        );
        if let Some(facility) = member.text("facility_uuid") {
            who.set(
                "onBehalfOf",
                reference("Organization", facility, member.text("facility_name")),
            );
        }
        if let Some(since) = member
            .text("provider_since")
            .filter(|s| !s.trim().is_empty())
        {
            let mut period = Fields::new();
            period.set("start", since.get(..10).unwrap_or(since));
            who.set("period", period.end());
        }
        participants.push(who.end());
    });
    if participants.is_empty() {
        // US Core needs a participant; a team without members says so.
        let mut who = Fields::new();
        who.list(
            "role",
            vec![concept(
                coding(DATA_ABSENT, "unknown", Some("Unknown")),
                None,
            )],
        );
        participants.push(who.end());
    }
    out.list("participant", participants);
    if let Some(note) = row.text("note").filter(|n| !n.trim().is_empty()) {
        let mut text = Fields::new();
        text.text("text", Some(note));
        out.list("note", vec![text.end()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activities_are_done_when_their_end_has_passed() {
        let now = "2025-01-01 00:00:00";
        assert_eq!(activity_status(true, None, now), "in-progress");
        assert_eq!(
            activity_status(true, Some("2024-12-01 00:00:00"), now),
            "completed"
        );
        assert_eq!(
            activity_status(true, Some("2025-12-01 00:00:00"), now),
            "in-progress"
        );
        assert_eq!(activity_status(false, None, now), "cancelled");
    }

    #[test]
    fn narrative_text_is_escaped_and_codes_are_coded() {
        assert_eq!(escape("a < b & c"), "a &lt; b &amp; c");
        let c = coded(Some("SNOMED-CT:281302008"), Some("Weight loss"));
        let v: serde_json::Value = serde_json::from_str(c.as_str()).unwrap();
        assert_eq!(v["coding"][0]["system"], SNOMED);
        assert_eq!(v["coding"][0]["code"], "281302008");
        assert_eq!(v["text"], "Weight loss");
    }
}
