//! US Core Provenance: who is responsible for each US Core resource Hearth serves.
//!
//! Hearth records no per-write audit trail a Provenance could cite, so it answers what
//! OpenEMR answers: one Provenance per resource, whose `target` is the resource,
//! `recorded` its last change, and whose author agent is the organization running the
//! EHR (the site's primary business entity facility, else its first facility) — US
//! Core's "author organization" for data an EHR holds. A site with no facility yet has
//! no organization to name: the agent's `who` then carries a `data-absent-reason`
//! (`unknown`) instead of a made-up reference.
//!
//! The Provenance of a resource has the resource's id (Provenance is a type of its own, so
//! the ids cannot clash with the target's; among the targets they are unique, being
//! random uuids or derived from them, see [`crate::tables`]), except where two types
//! share ids: a Location is its Organization's facility and a PractitionerRole its
//! Practitioner's user, so their Provenances' ids carry a slot digit of their own
//! ([`provenance_id`]). It is read at `/fhir/Provenance/{id}`, searched by `_id`,
//! `_lastUpdated` and `target` (`Location/{id}`, a bare id, or this server's full URL),
//! and added to a search of a US Core type with `_revinclude=Provenance:target` (entries
//! with `search.mode: "include"`). A caller whose scopes on the target's type are granular
//! (`patient/Observation.rs?category=…|vital-signs`) sees only the Provenance of the
//! targets they admit ([`restrict`]).

use hearth_sdk::{Json, Result, Row, store};

use crate::branches::Branches;
use crate::search::{Param, Sql, Target as SearchTarget, TokenColumn};
use crate::{Fields, coding, date, granular, reference, version_id};

/// The US Core Provenance profiles.
pub const PROFILES: &[&str] = &[
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance",
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance|3.1.1",
    "http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance|7.0.0",
];

/// The `_revinclude` value that asks for Provenance.
pub const REVINCLUDE: &str = "Provenance:target";

/// A US Core type whose resources have a Provenance: where its rows are.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// The resource type.
    pub resource_type: &'static str,
    /// The `FROM` clause.
    pub from: &'static str,
    /// The id expression (text).
    pub id: &'static str,
    /// The last-change expression.
    pub last_updated: &'static str,
    /// The patient uuid expression (a `NULL` uuid outside patient compartments: typed, so
    /// a branch read on its own, as a page reads it, has the other branches' type).
    pub patient: &'static str,
    /// The integer row key.
    pub key: &'static str,
    /// The condition every row meets.
    pub only: &'static str,
    /// The target's category (text) and the search parameter reading it, for a type
    /// whose scopes may be granular (`?category=`): `("NULL", None)` for the others.
    pub category: (&'static str, Option<&'static [TokenColumn]>),
    /// For a type whose ids are another type's (a Location is its Organization's
    /// facility, a PractitionerRole its Practitioner's user): the version digit (the 15th
    /// character) its Provenance's id carries in place of the uuid's, so the two
    /// Provenances' ids differ (see [`provenance_id`]). `None`: the Provenance's id is the
    /// target's.
    pub slot: Option<u8>,
}

/// Observation categories, as the Provenance table holds them.
const OBSERVATION_CATEGORY: &[TokenColumn] = &[TokenColumn::new(
    "pv.category",
    Some("http://terminology.hl7.org/CodeSystem/observation-category"),
)];

/// Condition categories, as the Provenance table holds them.
const CONDITION_CATEGORY: &[TokenColumn] = &[TokenColumn::new(
    "pv.category",
    Some("http://terminology.hl7.org/CodeSystem/condition-category"),
)];

/// ServiceRequest categories (SNOMED CT), as the Provenance table holds them.
const ORDER_CATEGORY: &[TokenColumn] = &[TokenColumn::new(
    "pv.category",
    Some("http://snomed.info/sct"),
)];

/// DiagnosticReport categories (every report Hearth serves is a laboratory report), as
/// the Provenance table holds them.
const REPORT_CATEGORY: &[TokenColumn] = &[TokenColumn::new(
    "pv.category",
    Some("http://terminology.hl7.org/CodeSystem/v2-0074"),
)];

/// Every US Core type Hearth serves, with where its rows are (the same as its plugin's
/// `TypeDef`). New targets go last: a Provenance's paging key holds its target's place.
pub const TARGETS: &[Target] = &[
    Target {
        resource_type: "Patient",
        from: "patient_data p",
        id: "CAST(p.uuid AS TEXT)",
        last_updated: "p.last_updated",
        patient: "p.uuid",
        key: "p.id",
        only: "1=1",
        category: ("NULL", None),
        slot: None,
    },
    Target {
        resource_type: "Practitioner",
        from: "users u",
        id: "CAST(u.uuid AS TEXT)",
        last_updated: "u.last_updated",
        patient: "CAST(NULL AS UUID)",
        key: "u.id",
        only: "u.npi <> ''",
        category: ("NULL", None),
        slot: None,
    },
    Target {
        resource_type: "Organization",
        from: "facility f",
        id: "CAST(f.uuid AS TEXT)",
        last_updated: "f.last_updated",
        patient: "CAST(NULL AS UUID)",
        key: "f.id",
        only: "1=1",
        category: ("NULL", None),
        slot: None,
    },
    Target {
        resource_type: "Encounter",
        from: "form_encounter fe JOIN patient_data p ON p.pid = fe.pid",
        id: "CAST(fe.uuid AS TEXT)",
        last_updated: "fe.last_update",
        patient: "p.uuid",
        key: "fe.id",
        only: "1=1",
        category: ("NULL", None),
        slot: None,
    },
    Target {
        resource_type: "AllergyIntolerance",
        from: "lists l JOIN patient_data p ON p.pid = l.pid",
        id: "CAST(l.uuid AS TEXT)",
        last_updated: "COALESCE(l.modifydate, l.date)",
        patient: "p.uuid",
        key: "l.id",
        only: "l.type = 'allergy'",
        category: ("NULL", None),
        slot: None,
    },
    Target {
        resource_type: "Condition",
        from: crate::tables::CONDITIONS,
        id: "c.cid",
        last_updated: "c.updated",
        patient: "c.patient_uuid",
        key: "c.ckey",
        only: "1=1",
        category: ("c.category", Some(CONDITION_CATEGORY)),
        slot: None,
    },
    Target {
        resource_type: "Observation",
        from: crate::tables::OBSERVATIONS,
        id: "o.oid",
        last_updated: "o.updated",
        patient: "o.patient_uuid",
        key: "o.okey",
        only: "1=1",
        category: ("o.category", Some(OBSERVATION_CATEGORY)),
        slot: None,
    },
    Target {
        resource_type: "MedicationRequest",
        from: crate::tables::MEDICATION_REQUESTS,
        id: "m.mid",
        last_updated: "m.updated",
        patient: "m.patient_uuid",
        key: "m.mkey",
        only: "1=1",
        category: ("NULL", None),
        slot: None,
    },
    Target {
        resource_type: "Procedure",
        from: "lists l JOIN patient_data p ON p.pid = l.pid",
        id: "CAST(l.uuid AS TEXT)",
        last_updated: "COALESCE(l.modifydate, l.date)",
        patient: "p.uuid",
        key: "l.id",
        only: "l.type = 'surgery'",
        category: ("NULL", None),
        slot: None,
    },
    Target {
        resource_type: "Immunization",
        from: "immunizations i JOIN patient_data p ON p.pid = i.patient_id",
        id: "CAST(i.uuid AS TEXT)",
        last_updated: "COALESCE(i.update_date, i.create_date)",
        patient: "p.uuid",
        key: "i.id",
        only: "1=1",
        category: ("NULL", None),
        slot: None,
    },
    // Care plans (the care plan forms), goals, care teams and implantable devices
    // (plugins fhir-care and fhir-device).
    Target {
        resource_type: "CarePlan",
        from: "forms fo JOIN patient_data p ON p.pid = fo.pid",
        id: "CAST(fo.uuid AS TEXT)",
        last_updated: "fo.date",
        patient: "p.uuid",
        key: "fo.id",
        only: "fo.formdir = 'care_plan'",
        category: ("NULL", None),
        slot: None,
    },
    Target {
        resource_type: "Goal",
        from: "form_care_plan cp JOIN patient_data p ON p.pid = cp.pid",
        id: "CAST(cp.uuid AS TEXT)",
        last_updated: "cp.date",
        patient: "p.uuid",
        key: "cp.row_key",
        only: "cp.care_plan_type = 'goal'",
        category: ("NULL", None),
        slot: None,
    },
    Target {
        resource_type: "CareTeam",
        from: "care_teams ct JOIN patient_data p ON p.pid = ct.pid",
        id: "CAST(ct.uuid AS TEXT)",
        last_updated: "COALESCE(ct.date_updated, ct.date_created)",
        patient: "p.uuid",
        key: "ct.id",
        only: "1=1",
        category: ("NULL", None),
        slot: None,
    },
    Target {
        resource_type: "Device",
        from: "lists l JOIN patient_data p ON p.pid = l.pid",
        id: "CAST(l.uuid AS TEXT)",
        last_updated: "COALESCE(l.modifydate, l.date)",
        patient: "p.uuid",
        key: "l.id",
        only: "l.type = 'medical_device'",
        category: ("NULL", None),
        slot: None,
    },
    // Coverage and RelatedPerson (plugins fhir-coverage and fhir-related-person).
    Target {
        resource_type: "Coverage",
        from: "insurance_data d JOIN patient_data p ON p.pid = d.pid",
        id: "CAST(d.uuid AS TEXT)",
        last_updated: "COALESCE(d.last_updated, d.date)",
        patient: "p.uuid",
        key: "d.id",
        only: "1=1",
        category: ("NULL", None),
        slot: None,
    },
    Target {
        resource_type: "RelatedPerson",
        from: "contact_relation cr JOIN patient_data p ON cr.target_table = 'patient_data' \
               AND p.pid = cr.target_id",
        id: "CAST(cr.uuid AS TEXT)",
        last_updated: "COALESCE(cr.updated_date, cr.created_date)",
        patient: "p.uuid",
        key: "cr.id",
        only: "1=1",
        category: ("NULL", None),
        slot: None,
    },
    // Orders, reports, specimens and dispenses (`fhir-order`, `fhir-medication`).
    Target {
        resource_type: "ServiceRequest",
        from: "procedure_order po JOIN patient_data p ON p.pid = po.patient_id",
        id: "CAST(po.uuid AS TEXT)",
        last_updated: "COALESCE(po.date_transmitted, po.date_ordered)",
        patient: "p.uuid",
        key: "po.procedure_order_id",
        only: "1=1",
        category: (crate::tables::ORDER_CATEGORY, Some(ORDER_CATEGORY)),
        slot: None,
    },
    Target {
        resource_type: "DiagnosticReport",
        from: "procedure_report pr JOIN procedure_order po \
               ON po.procedure_order_id = pr.procedure_order_id \
               JOIN patient_data p ON p.pid = po.patient_id",
        id: "CAST(pr.uuid AS TEXT)",
        last_updated: "COALESCE(pr.date_report, pr.date_collected, po.date_ordered)",
        patient: "p.uuid",
        key: "pr.procedure_report_id",
        only: "1=1",
        category: ("'LAB'", Some(REPORT_CATEGORY)),
        slot: None,
    },
    Target {
        resource_type: "Specimen",
        from: "procedure_specimen ps JOIN procedure_order po \
               ON po.procedure_order_id = ps.procedure_order_id \
               JOIN patient_data p ON p.pid = po.patient_id",
        id: "CAST(ps.uuid AS TEXT)",
        last_updated: "COALESCE(ps.updated_at, ps.created_at, ps.collected_date)",
        patient: "p.uuid",
        key: "ps.procedure_specimen_id",
        only: "1=1",
        category: ("NULL", None),
        slot: None,
    },
    Target {
        resource_type: "MedicationDispense",
        from: "drug_sales ds JOIN patient_data p ON p.pid = ds.pid",
        id: "CAST(ds.uuid AS TEXT)",
        last_updated: "COALESCE(ds.last_updated, ds.sale_date)",
        patient: "p.uuid",
        key: "ds.sales_id",
        only: "ds.trans_type = 1",
        category: ("NULL", None),
        slot: None,
    },
    // Documents (plugin fhir-document).
    Target {
        resource_type: "DocumentReference",
        from: "documents d JOIN patient_data p ON p.pid = d.foreign_id",
        id: "CAST(d.uuid AS TEXT)",
        last_updated: "COALESCE(d.revision, d.date)",
        patient: "p.uuid",
        key: "d.id",
        only: "d.deleted = 0",
        category: ("NULL", None),
        slot: None,
    },
    // Locations and practitioner roles: the same facility and user rows as Organization
    // and Practitioner, under ids of their own (the slot digit).
    Target {
        resource_type: "Location",
        from: "facility f",
        id: "CAST(f.uuid AS TEXT)",
        last_updated: "f.last_updated",
        patient: "CAST(NULL AS UUID)",
        key: "f.id",
        only: "1=1",
        category: ("NULL", None),
        slot: Some(b'a'),
    },
    Target {
        resource_type: "PractitionerRole",
        from: "users u JOIN facility f ON f.id = u.facility_id",
        id: "CAST(u.uuid AS TEXT)",
        last_updated: "u.last_updated",
        patient: "CAST(NULL AS UUID)",
        key: "u.id",
        only: "u.npi <> ''",
        category: ("NULL", None),
        slot: Some(b'b'),
    },
];

/// The sources of a diagnostic report's last change (`COALESCE(pr.date_report,
/// pr.date_collected, po.date_ordered)`, over the report and its order): the reports
/// whose own times or order's time meets a condition, each through an index of that
/// column (see [`crate::branches::Narrow::Sources`]).
const REPORT_UPDATED: &[(&str, &str)] = &[
    (
        "SELECT pr2.procedure_report_id FROM procedure_report pr2 WHERE {}",
        "pr2.date_report",
    ),
    (
        "SELECT pr2.procedure_report_id FROM procedure_report pr2 WHERE {}",
        "pr2.date_collected",
    ),
    (
        "SELECT pr2.procedure_report_id FROM procedure_order po2 JOIN procedure_report pr2 \
         ON pr2.procedure_order_id = po2.procedure_order_id WHERE {}",
        "po2.date_ordered",
    ),
];

/// A Provenance's paging key is its target's key times this plus the target's place in
/// [`TARGETS`], so keys of different targets never collide.
const KEY_STRIDE: usize = 64;
const _: () = assert!(TARGETS.len() <= KEY_STRIDE, "widen KEY_STRIDE");

/// The Provenance columns of target `t` (at place `i` in [`TARGETS`]) over its rows,
/// without the target's own condition.
fn target_select(t: &Target, i: usize) -> String {
    format!(
        "SELECT {pid} AS pid, {id} AS tid, '{ty}' AS target_type, {updated} AS updated, \
         {patient} AS patient_uuid, {key} * {KEY_STRIDE} + {i} AS pkey, {category} AS category \
         FROM {from}",
        pid = slotted(t.id, t.slot),
        id = t.id,
        ty = t.resource_type,
        updated = t.last_updated,
        patient = t.patient,
        key = t.key,
        from = t.from,
        category = t.category.0,
    )
}

/// The id expression `id` (text of a uuid) with its version digit replaced by `slot`.
fn slotted(id: &str, slot: Option<u8>) -> String {
    match slot {
        Some(slot) => format!(
            "SUBSTR({id}, 1, 14) || '{}' || SUBSTR({id}, 16)",
            char::from(slot)
        ),
        None => id.to_owned(),
    }
}

/// The id of the Provenance of `target_type/target_id`: the target's id, or for a type
/// whose ids are another type's ([`Target::slot`]) the id with its version digit
/// replaced by the type's slot.
pub fn provenance_id(target_type: &str, target_id: &str) -> String {
    let slot = TARGETS
        .iter()
        .find(|t| t.resource_type == target_type)
        .and_then(|t| t.slot);
    match slot {
        Some(slot)
            if target_id.len() == 36
                && target_id.is_char_boundary(14)
                && target_id.is_char_boundary(15) =>
        {
            format!(
                "{}{}{}",
                &target_id[..14],
                char::from(slot),
                &target_id[15..]
            )
        }
        _ => target_id.to_owned(),
    }
}

/// Every Provenance as one derived table (alias `pv`): `pid` (the id, see
/// [`provenance_id`]), `tid` (the target's id), `target_type`, `updated`,
/// `patient_uuid`, `pkey`, and the author organization's `org_uuid` and `org_name`.
pub fn table() -> String {
    let branches: Vec<String> = TARGETS
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{} WHERE {}", target_select(t, i), t.only))
        .collect();
    format!(
        "({}) pv LEFT JOIN ({ORGANIZATION}) org ON 1=1",
        branches.join(" UNION ALL ")
    )
}

/// The text of a SQL text literal (`'LAB'`), `None` for anything else.
fn literal(sql: &'static str) -> Option<&'static str> {
    sql.strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .filter(|s| !s.contains('\''))
}

/// The name of a derived table's column (`o.oid` → `oid`).
fn column_name(expr: &str) -> &str {
    expr.split_once('.').map_or(expr, |(_, name)| name)
}

/// The `updated` column of target `t`'s branch: a last change over several tables is
/// narrowed to the rows each table's time finds (the others are one expression of the
/// target's table, which an index holds: migrations 0481, 0560 and 0580).
fn updated(t: &Target) -> crate::branches::Column {
    use crate::branches::{Column, Narrow};
    let column = Column::expr("updated", t.last_updated);
    if t.resource_type == "DiagnosticReport" {
        column.narrow(Narrow::Sources {
            key: "pr.procedure_report_id",
            sources: REPORT_UPDATED,
        })
    } else {
        column
    }
}

/// [`table`] as its branches (see [`crate::branches`]): one per target, and one per
/// branch of a target that is itself a derived table (Observation, Condition,
/// MedicationRequest), so a search's conditions reach each source table's indexes. The
/// rows are [`table`]'s: the same ids, times, patients, keys and categories.
pub fn branches() -> Branches {
    use crate::branches::{Branch, Column, Narrow, from_part};
    use crate::tables;
    let mut out = Vec::new();
    let mut fused = Vec::new();
    for (i, t) in TARGETS.iter().enumerate() {
        let i64_i = i as i64;
        let stride = KEY_STRIDE as i64;
        let inner = if t.from == tables::OBSERVATIONS {
            Some(tables::observation_branches())
        } else if t.from == tables::CONDITIONS {
            Some(tables::condition_branches())
        } else if t.from == tables::MEDICATION_REQUESTS {
            Some(tables::medication_request_branches())
        } else {
            None
        };
        let ty = Column::constant("target_type", Some(t.resource_type));
        let Some(inner) = inner else {
            let (id, tid) = match t
                .id
                .strip_prefix("CAST(")
                .and_then(|rest| rest.strip_suffix(" AS TEXT)"))
            {
                Some(uuid) => (
                    Column::expr("pid", slotted(t.id, t.slot)).narrow(Narrow::Uuid {
                        column: uuid,
                        slot: t.slot,
                    }),
                    Column::expr("tid", t.id).narrow(Narrow::Uuid {
                        column: uuid,
                        slot: None,
                    }),
                ),
                None => (
                    Column::expr("pid", slotted(t.id, t.slot)),
                    Column::expr("tid", t.id),
                ),
            };
            let patient = match t.patient {
                "NULL" | "CAST(NULL AS UUID)" => Column::constant("patient_uuid", None),
                expr => Column::expr("patient_uuid", expr),
            };
            let category = match (t.category.0, literal(t.category.0)) {
                ("NULL", _) => Column::constant("category", None),
                (_, Some(text)) => Column::constant("category", Some(text)),
                (expr, None) => Column::expr("category", expr),
            };
            out.push(Branch {
                select: target_select(t, i),
                when: t.only.to_owned(),
                columns: vec![id, tid, ty, updated(t), patient, category],
                key: t.key.to_owned(),
                stride,
                offset: i64_i,
            });
            continue;
        };
        // Observation's vital signs (its only group read together, see `Fused`) read
        // together as Provenance's rows too: the members' keys scaled as each branch's.
        if let Some(vitals) = inner
            .fused
            .first()
            .filter(|_| t.from == tables::OBSERVATIONS)
        {
            let first = out.len();
            let member_stride = inner.branches[vitals.members.start].stride;
            fused.push(tables::vital_signs_together(
                first + vitals.members.start..first + vitals.members.end,
                |n| n * stride + i64_i,
                ", p.uuid AS hearth_patient",
                &format!(
                    "{id} AS pid, {id} AS tid, '{ty}' AS target_type, \
                     COALESCE(v.last_updated, v.date) AS updated, \
                     v.hearth_patient AS patient_uuid, v.id * {key_stride} + s.n AS pkey, \
                     'vital-signs' AS category",
                    id = tables::TOGETHER_ID,
                    ty = t.resource_type,
                    key_stride = member_stride * stride,
                ),
            ));
        }
        for branch in inner.branches {
            let named = |expr: &str| {
                branch
                    .column(column_name(expr))
                    .cloned()
                    .expect("the target's column is one of its branches'")
            };
            let sql = |column: &Column| match column.constant {
                Some(Some(text)) => format!("'{text}'"),
                Some(None) => "NULL".to_owned(),
                None => column.expr.clone(),
            };
            // Observations, Conditions and MedicationRequests have ids of their own.
            debug_assert!(t.slot.is_none(), "a derived target's ids are its own");
            let mut id = named(t.id);
            id.name = "pid";
            let mut tid = named(t.id);
            tid.name = "tid";
            let mut updated = named(t.last_updated);
            updated.name = "updated";
            let mut patient = named(t.patient);
            patient.name = "patient_uuid";
            let category = match t.category.0 {
                "NULL" => Column::constant("category", None),
                expr => {
                    let mut c = named(expr);
                    c.name = "category";
                    c
                }
            };
            out.push(Branch {
                select: format!(
                    "SELECT {id} AS pid, {id} AS tid, '{ty}' AS target_type, \
                     {updated} AS updated, {patient} AS patient_uuid, \
                     {key} * {stride} + {offset} AS pkey, {category} AS category {from}",
                    id = sql(&id),
                    ty = t.resource_type,
                    updated = sql(&updated),
                    patient = sql(&patient),
                    key = branch.key,
                    stride = branch.stride * stride,
                    offset = branch.offset * stride + i64_i,
                    category = sql(&category),
                    from = from_part(&branch.select),
                ),
                when: branch.when.clone(),
                columns: vec![id, tid, ty.clone(), updated, patient, category],
                key: branch.key.clone(),
                stride: branch.stride * stride,
                offset: branch.offset * stride + i64_i,
            });
        }
    }
    Branches {
        alias: "pv",
        branches: out,
        rest: format!(" LEFT JOIN ({ORGANIZATION}) org ON 1=1"),
        fused,
    }
}

/// The Provenance a caller with granular scopes on a target type may see: only that of
/// the targets its scopes admit (a Provenance tells that its target exists and when it
/// changed). `letter` is the permission asked (`r` read, `s` search).
pub fn restrict(req: &hearth_sdk::Request, letter: char, sql: &mut Sql) {
    for target in TARGETS {
        let (_, Some(columns)) = target.category else {
            continue;
        };
        let Some(constraints) = granular::constraints(req, target.resource_type, letter) else {
            continue;
        };
        let param = Param::new("category", "", SearchTarget::Token(columns));
        let mut any = Vec::new();
        for constraint in &constraints {
            let all: Vec<String> = crate::form_pairs(constraint)
                .into_iter()
                .map(|(key, value)| {
                    (key == "category")
                        .then(|| crate::search::condition(&param, None, &value, 0, sql).ok())
                        .flatten()
                        .unwrap_or_else(|| "1=0".to_owned())
                })
                .collect();
            any.push(if all.is_empty() {
                "1=0".to_owned()
            } else {
                format!("({})", all.join(" AND "))
            });
        }
        let admitted = if any.is_empty() {
            "1=0".to_owned()
        } else {
            any.join(" OR ")
        };
        sql.conditions.push(format!(
            "(pv.target_type <> '{}' OR {admitted})",
            target.resource_type
        ));
    }
}

/// The organization that authors the EHR's data.
const ORGANIZATION: &str = "SELECT CAST(f.uuid AS TEXT) AS org_uuid, f.name AS org_name \
    FROM facility f ORDER BY f.primary_business_entity DESC, f.id LIMIT 1";

/// The author organization: its uuid and name, when the site has a facility.
pub fn organization() -> Result<Option<(String, Option<String>)>> {
    let row = store::query_one(ORGANIZATION, &[])?;
    Ok(row.and_then(|r| {
        let uuid = r.text("org_uuid")?.to_owned();
        Some((uuid, r.text("org_name").map(str::to_owned)))
    }))
}

/// The Provenance's own fields (after `resourceType`, `id` and `meta`): target, recorded
/// and the author agent.
pub fn fields(
    out: &mut Fields,
    target_type: &str,
    target_id: &str,
    recorded: Option<&str>,
    organization: Option<(&str, Option<&str>)>,
) {
    out.list("target", vec![reference(target_type, target_id, None)]);
    // `recorded` is required; a row without a change time (none Hearth writes) counts
    // from the epoch rather than being left out.
    let recorded = recorded
        .and_then(date::instant)
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned());
    out.set("recorded", recorded.as_str());
    let who = match organization {
        Some((uuid, name)) => reference("Organization", uuid, name),
        None => Json::raw(
            r#"{"extension":[{"url":"http://hl7.org/fhir/StructureDefinition/data-absent-reason","valueCode":"unknown"}]}"#,
        ),
    };
    let mut agent = Fields::new();
    agent.set("type", &*AUTHOR).set("who", who);
    out.list("agent", vec![agent.end()]);
}

/// An agent's `type`: the author. The same for every Provenance, so written once (a
/// Bulk Data export writes millions).
static AUTHOR: std::sync::LazyLock<Json> = std::sync::LazyLock::new(|| {
    crate::concept(
        coding(
            "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
            "author",
            Some("Author"),
        ),
        None,
    )
});

/// A whole Provenance of the resource `target_type/target_id` last changed at `updated`.
pub fn resource(
    target_type: &str,
    target_id: &str,
    updated: Option<&str>,
    organization: Option<(&str, Option<&str>)>,
) -> Json {
    let mut meta = Fields::new();
    meta.set("versionId", version_id(updated).as_str());
    if let Some(instant) = updated.and_then(date::instant) {
        meta.set("lastUpdated", instant.as_str());
    }
    meta.list(
        "profile",
        PROFILES
            .iter()
            .map(|p| Json::from_value(&(*p).into()))
            .collect(),
    );
    let mut out = Fields::new();
    out.set("resourceType", "Provenance")
        .set("id", provenance_id(target_type, target_id).as_str())
        .object("meta", meta.end());
    fields(&mut out, target_type, target_id, updated, organization);
    out.end()
}

/// True when resources of this type have a Provenance.
pub fn has_provenance(resource_type: &str) -> bool {
    TARGETS.iter().any(|t| t.resource_type == resource_type)
}

/// The Provenance entries (`search.mode: "include"`) for the rows of a search of
/// `resource_type`.
pub fn included(
    base: &str,
    resource_type: &str,
    rows: &[(String, Option<String>)],
) -> Result<Vec<Json>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let organization = organization()?;
    let organization = organization
        .as_ref()
        .map(|(uuid, name)| (uuid.as_str(), name.as_deref()));
    Ok(rows
        .iter()
        .map(|(id, updated)| {
            let mut entry = Json::object();
            entry
                .field(
                    "fullUrl",
                    format!("{base}/Provenance/{}", provenance_id(resource_type, id)),
                )
                .field(
                    "resource",
                    resource(resource_type, id, updated.as_deref(), organization),
                )
                .field("search", Json::raw(r#"{"mode":"include"}"#));
            entry.end()
        })
        .collect())
}

/// A Provenance row of [`table`] mapped (for the Provenance plugin's `Mapper`).
pub fn map_row(row: &Row<'_>, out: &mut Fields) {
    let organization = row
        .text("org_uuid")
        .map(|uuid| (uuid, row.text("org_name")));
    fields(
        out,
        row.text("target_type").unwrap_or_default(),
        row.text("tid").unwrap_or_default(),
        row.text("updated"),
        organization,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_provenance_names_its_target_and_author() {
        let p = resource(
            "Condition",
            "90cde167-0000-4000-8000-000000000001",
            Some("2024-05-06 07:08:09"),
            Some(("90cde167-0000-4000-8000-0000000000ff", Some("Clinic"))),
        );
        let v: serde_json::Value = serde_json::from_str(p.as_str()).unwrap();
        assert_eq!(
            v["target"][0]["reference"],
            "Condition/90cde167-0000-4000-8000-000000000001"
        );
        assert_eq!(v["recorded"], "2024-05-06T07:08:09Z");
        assert_eq!(v["agent"][0]["type"]["coding"][0]["code"], "author");
        assert_eq!(
            v["agent"][0]["who"]["reference"],
            "Organization/90cde167-0000-4000-8000-0000000000ff"
        );
        let none = resource("Patient", "x", None, None);
        assert!(none.as_str().contains("data-absent-reason"));
    }

    #[test]
    fn types_sharing_ids_have_provenances_of_their_own() {
        let id = "90cde167-0000-4000-8000-000000000001";
        assert_eq!(provenance_id("Organization", id), id);
        assert_eq!(provenance_id("Practitioner", id), id);
        let location = provenance_id("Location", id);
        assert_eq!(location, "90cde167-0000-a000-8000-000000000001");
        assert_eq!(
            provenance_id("PractitionerRole", id),
            "90cde167-0000-b000-8000-000000000001"
        );
        let p = resource("Location", id, None, None);
        let v: serde_json::Value = serde_json::from_str(p.as_str()).unwrap();
        assert_eq!(v["id"], location.as_str());
        assert_eq!(v["target"][0]["reference"], format!("Location/{id}"));
        // Every target that shares its rows with another type carries a slot no other
        // target of those rows does.
        for t in TARGETS.iter().filter(|t| t.slot.is_some()) {
            let others: Vec<_> = TARGETS
                .iter()
                .filter(|o| o.id == t.id && o.resource_type != t.resource_type)
                .collect();
            assert!(!others.is_empty(), "{}", t.resource_type);
            assert!(
                others.iter().all(|o| o.slot != t.slot),
                "{}",
                t.resource_type
            );
        }
    }

    #[test]
    fn the_branches_cover_every_target_and_its_branches() {
        let all = branches();
        assert_eq!(all.branches.len(), TARGETS.len() - 3 + 14 + 2 + 2);
        for branch in &all.branches {
            assert!(branch.select.contains(" AS pkey"), "{}", branch.select);
            assert!(branch.select.contains(" FROM "), "{}", branch.select);
            assert!(
                branch.select.contains(&format!(
                    "{} * {} + {} AS pkey",
                    branch.key, branch.stride, branch.offset
                )),
                "{}",
                branch.select
            );
            for name in [
                "pid",
                "tid",
                "target_type",
                "updated",
                "patient_uuid",
                "category",
            ] {
                assert!(branch.column(name).is_some(), "{name}");
            }
        }
        // A report's last change spans its order: narrowed through each table's time.
        let report = all
            .branches
            .iter()
            .find(|b| b.select.contains("'DiagnosticReport' AS target_type"))
            .unwrap();
        assert!(matches!(
            report.column("updated").unwrap().narrow,
            crate::branches::Narrow::Sources {
                key: "pr.procedure_report_id",
                ..
            }
        ));
        // A vital sign's Provenance key is its Observation's key times the stride plus
        // the target's place: (v.id * 16 + 1) * 64 + 6.
        let observation = TARGETS
            .iter()
            .position(|t| t.resource_type == "Observation")
            .unwrap() as i64;
        let heart_rate = all
            .branches
            .iter()
            .find(|b| b.select.contains("'8867-4'") || b.offset == 64 + observation)
            .unwrap();
        assert_eq!(
            (heart_rate.stride, heart_rate.offset),
            (1024, 64 + observation)
        );
        // Read together, the vital signs' branches are the members, each member's slot
        // its offset.
        assert_eq!(all.fused.len(), 1);
        let together = &all.fused[0];
        assert_eq!(together.members.len(), 12);
        for branch in &all.branches[together.members.clone()] {
            assert!(
                branch.select.contains("FROM form_vitals v"),
                "{}",
                branch.select
            );
            assert_eq!(branch.stride, 1024);
            assert!(
                together
                    .select
                    .contains(&format!(" WHEN {} THEN ", branch.offset)),
                "{}",
                branch.offset
            );
        }
        assert!(together.select.contains("v.id * 1024 + s.n AS pkey"));
    }

    #[test]
    fn the_table_has_a_branch_per_target() {
        let sql = table();
        assert_eq!(
            sql.matches(" AS target_type").count(),
            TARGETS.len(),
            "{sql}"
        );
        assert!(
            TARGETS.len() < 64,
            "pkey numbers a row of each target apart"
        );
    }
}
