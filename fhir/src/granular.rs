//! SMART v2 granular scopes: `patient/Observation.rs?category=…|vital-signs`.
//!
//! The host lets a constrained scope through to the route (it grants the type, within its
//! constraint); the plugin then keeps only the resources the constraint admits. A
//! constraint is a query string of the type's own search parameters (OpenEMR's catalogue
//! offers `category`), read exactly as a search would read it, so
//! `category=http://terminology.hl7.org/CodeSystem/observation-category|vital-signs`
//! admits what `GET /Observation?category=…|vital-signs` finds. Pairs within one scope
//! must all hold; the caller sees what any one of its scopes admits. A scope without a
//! constraint (in the context that applies) admits everything.
//!
//! A resource outside the granted constraints is treated as absent: a read answers 404,
//! a search leaves it out of the entries and the `total`, as SMART App Launch 2 asks
//! ("servers SHALL NOT return resources outside the granted scope"); a 403 would tell
//! the client that the resource exists.

use hearth_sdk::Request;
use hearth_sdk::request::Role;

use crate::TypeDef;
use crate::search::{self, Sql};

/// What the caller's scopes grant on `resource_type` for the permission `letter` (`r` for
/// a read, `s` for a search): `None` when some scope grants it unconstrained, else the
/// constraints (query strings) of the scopes that grant it, one per scope.
pub fn constraints(req: &Request, resource_type: &str, letter: char) -> Option<Vec<String>> {
    let caller = req.caller();
    granted(caller.role, &caller.scopes, resource_type, letter)
}

/// [`constraints`] for a caller of `role` holding `scopes` (space separated).
pub fn granted(role: Role, scopes: &str, resource_type: &str, letter: char) -> Option<Vec<String>> {
    let scopes: Vec<Parsed<'_>> = scopes
        .split_whitespace()
        .filter_map(parse)
        .filter(|s| (s.resource == resource_type || s.resource == "*") && s.grants(letter))
        .collect();
    // The context the host authorized the call in: a patient acts as itself, a system as
    // a system, a user in `user/` when it holds such a scope for the type, else for its
    // launch patient.
    let context = match role {
        Role::Patient => "patient",
        Role::System => "system",
        Role::User | Role::Anonymous => {
            if scopes.iter().any(|s| s.context == "user") {
                "user"
            } else {
                "patient"
            }
        }
    };
    let mut out = Vec::new();
    for scope in scopes.iter().filter(|s| s.context == context) {
        match scope.constraint {
            None => return None,
            Some(constraint) => out.push(constraint.to_owned()),
        }
    }
    // No scope for the type in that context: the host authorized the call on other
    // grounds (a caller without SMART scopes), and no constraint applies.
    (!out.is_empty()).then_some(out)
}

/// Adds the condition the caller's granular scopes put on `def`'s rows, if any.
pub fn restrict(req: &Request, def: &TypeDef, letter: char, sql: &mut Sql) {
    let Some(constraints) = constraints(req, def.resource_type, letter) else {
        return;
    };
    let params = def.all_params();
    let mut any = Vec::new();
    for constraint in &constraints {
        let mut all = Vec::new();
        for (key, value) in crate::form_pairs(constraint) {
            let condition = params
                .iter()
                .find(|p| p.name == key)
                .and_then(|param| search::condition(param, None, &value, 0, sql).ok());
            // A constraint the type cannot evaluate admits nothing.
            all.push(condition.unwrap_or_else(|| "1=0".to_owned()));
        }
        if all.is_empty() {
            all.push("1=0".to_owned());
        }
        any.push(format!("({})", all.join(" AND ")));
    }
    sql.conditions.push(if any.is_empty() {
        "1=0".to_owned()
    } else {
        format!("({})", any.join(" OR "))
    });
}

/// A resource scope's parts.
struct Parsed<'a> {
    context: &'a str,
    resource: &'a str,
    permissions: &'a str,
    constraint: Option<&'a str>,
}

impl Parsed<'_> {
    fn grants(&self, letter: char) -> bool {
        match self.permissions {
            "read" => matches!(letter, 'r' | 's'),
            "write" => matches!(letter, 'c' | 'u' | 'd'),
            "*" => true,
            letters => letters.contains(letter),
        }
    }
}

fn parse(scope: &str) -> Option<Parsed<'_>> {
    let (context, rest) = scope.split_once('/')?;
    if !matches!(context, "patient" | "user" | "system") {
        return None;
    }
    let (rest, constraint) = match rest.split_once('?') {
        Some((rest, constraint)) => (rest, Some(constraint)),
        None => (rest, None),
    };
    let (resource, permissions) = rest.rsplit_once('.')?;
    Some(Parsed {
        context,
        resource,
        permissions,
        constraint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const VITALS: &str = "http://terminology.hl7.org/CodeSystem/observation-category|vital-signs";

    #[test]
    fn constrained_scopes_list_their_constraints() {
        let scopes =
            format!("openid patient/Observation.rs?category={VITALS} patient/Condition.rs");
        assert_eq!(
            granted(Role::Patient, &scopes, "Observation", 's'),
            Some(vec![format!("category={VITALS}")])
        );
        assert_eq!(granted(Role::Patient, &scopes, "Condition", 's'), None);
        assert_eq!(
            granted(Role::Patient, &scopes, "Observation", 'c'),
            None,
            "no scope grants it: nothing to constrain"
        );
        let both = format!("patient/Observation.rs?category={VITALS} patient/Observation.read");
        assert_eq!(
            granted(Role::Patient, &both, "Observation", 'r'),
            None,
            "v1 read wins"
        );
        assert_eq!(
            granted(Role::System, "system/*.rs", "Observation", 'r'),
            None
        );
    }

    #[test]
    fn a_user_scope_decides_for_a_user() {
        let scopes = "user/Observation.rs?category=vital-signs patient/Observation.rs";
        assert_eq!(
            granted(Role::User, scopes, "Observation", 'r'),
            Some(vec!["category=vital-signs".to_owned()])
        );
        assert_eq!(
            granted(
                Role::User,
                "patient/Observation.rs?category=laboratory",
                "Observation",
                's'
            ),
            Some(vec!["category=laboratory".to_owned()])
        );
    }
}
