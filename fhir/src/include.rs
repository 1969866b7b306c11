//! `_include`: which referenced resources a search adds to its Bundle.
//!
//! The work is split between the plugin and the host. The type's plugin knows which SQL
//! column holds each reference (its reference search parameters), so [`resolve`] turns
//! `_include=Encounter:practitioner` into the column and the type it references, the
//! search selects that column beside each row, and [`encode`] names the referenced ids
//! in the [`HEADER`] of its answer. The host, which alone can reach other plugins, reads
//! the header (no client ever sees it: `hearth-*` headers are the host's), asks the
//! referenced type's own search for those ids with the same caller, and appends what it
//! answers as `search.mode: include` entries. So an included resource passes the same
//! scope, ACL and patient-compartment checks as a direct search for it, and any plugin
//! whose type declares reference parameters gets `_include` without code of its own.

use crate::search::{Param, SearchError, Target};

/// The response header naming the ids to include: `Type=id,id;Type=id` (the host reads
/// it in `host/src/api/include.rs`).
pub const HEADER: &str = "hearth-fhir-include";

/// One `_include` to resolve: the SQL column holding the referenced resource's id, and
/// the type referenced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Include {
    /// The SQL expression, e.g. `u.uuid`.
    pub column: &'static str,
    /// The referenced type, e.g. `Practitioner`. For a reference to any type (`kind`
    /// set), the one type asked for (`Provenance:target:Location`), or empty for all.
    pub target: String,
    /// For a reference to any type: the SQL expression of each row's referenced type,
    /// e.g. `pv.target_type`.
    pub kind: Option<&'static str>,
}

impl Include {
    /// The type a row references (its `kind` column's value, for a reference to any
    /// type), when the include wants it.
    pub fn type_of(&self, row_kind: Option<&str>) -> Option<String> {
        match self.kind {
            None => Some(self.target.clone()),
            Some(_) => row_kind
                .filter(|k| !k.is_empty() && (self.target.is_empty() || *k == self.target))
                .map(str::to_owned),
        }
    }
}

/// The includes `values` (`Source:param`, `Source:param:Target`, `Source:*`) ask of the
/// type `resource_type` with search parameters `params`. A value naming another source
/// type, an unknown parameter or a parameter that is no reference is ignored (the
/// specification lets a server ignore what it cannot include), or a 400 with `strict`;
/// a value without a `:` is always a 400.
pub fn resolve(
    resource_type: &str,
    params: &[Param],
    values: &[String],
    strict: bool,
) -> Result<Vec<Include>, SearchError> {
    let mut out: Vec<Include> = Vec::new();
    for value in values {
        let mut parts = value.split(':');
        let (Some(source), Some(name)) = (parts.next(), parts.next()) else {
            return Err(SearchError(format!(
                "_include {value:?} is not of the form Type:parameter[:TargetType]"
            )));
        };
        let wanted = parts.next();
        let found: Vec<Include> = params
            .iter()
            .filter(|p| source == resource_type && (name == "*" || p.name == name))
            .filter_map(|p| match p.target {
                Target::Reference { column, target } => {
                    wanted.is_none_or(|w| w == target).then(|| Include {
                        column,
                        target: target.to_owned(),
                        kind: None,
                    })
                }
                Target::AnyReference { kind, column } => Some(Include {
                    column,
                    target: wanted.unwrap_or_default().to_owned(),
                    kind: Some(kind),
                }),
                _ => None,
            })
            .collect();
        if found.is_empty() && strict {
            return Err(SearchError(format!(
                "_include {value:?} names no reference parameter of {resource_type}"
            )));
        }
        for include in found {
            if !out.contains(&include) {
                out.push(include);
            }
        }
    }
    Ok(out)
}

/// The header value for the referenced ids, grouped by type in first-seen order.
pub fn encode(found: &[(&str, String)]) -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for (target, id) in found {
        match groups.iter_mut().find(|(t, _)| t == target) {
            Some((_, ids)) => {
                if !ids.contains(&id.as_str()) {
                    ids.push(id.as_str());
                }
            }
            None => groups.push((*target, vec![id.as_str()])),
        }
    }
    groups
        .iter()
        .map(|(target, ids)| format!("{target}={}", ids.join(",")))
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARAMS: &[Param] = &[
        Param::new(
            "patient",
            "Encounter.subject",
            Target::Reference {
                column: "p.uuid",
                target: "Patient",
            },
        ),
        Param::new(
            "practitioner",
            "Encounter.participant.individual",
            Target::Reference {
                column: "u.uuid",
                target: "Practitioner",
            },
        ),
        Param::new(
            "participant",
            "Encounter.participant.individual",
            Target::Reference {
                column: "u.uuid",
                target: "Practitioner",
            },
        ),
        Param::new("class", "Encounter.class", Target::Text(&["c"])),
    ];

    fn values(text: &[&str]) -> Vec<String> {
        text.iter().map(|v| (*v).to_owned()).collect()
    }

    #[test]
    fn includes_resolve_to_reference_columns() {
        let found = resolve("Encounter", PARAMS, &values(&["Encounter:patient"]), true).unwrap();
        assert_eq!(
            found,
            [Include {
                column: "p.uuid",
                target: "Patient".to_owned(),
                kind: None,
            }]
        );
        let all = resolve("Encounter", PARAMS, &values(&["Encounter:*"]), false).unwrap();
        assert_eq!(all.len(), 2, "one column per reference: {all:?}");
        let typed = resolve(
            "Encounter",
            PARAMS,
            &values(&["Encounter:participant:Patient"]),
            false,
        )
        .unwrap();
        assert!(typed.is_empty(), "a participant is no Patient here");
        for ignored in [
            "Patient:general-practitioner",
            "Encounter:class",
            "Encounter:x",
        ] {
            assert!(
                resolve("Encounter", PARAMS, &values(&[ignored]), false)
                    .unwrap()
                    .is_empty()
            );
            assert!(resolve("Encounter", PARAMS, &values(&[ignored]), true).is_err());
        }
        assert!(resolve("Encounter", PARAMS, &values(&["patient"]), false).is_err());
    }

    #[test]
    fn the_header_groups_ids_by_type_once_each() {
        let text = encode(&[
            ("Patient", "a".to_owned()),
            ("Practitioner", "b".to_owned()),
            ("Patient", "c".to_owned()),
            ("Patient", "a".to_owned()),
        ]);
        assert_eq!(text, "Patient=a,c;Practitioner=b");
    }
}
