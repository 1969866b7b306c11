//! OAuth scopes as OpenEMR and SMART on FHIR write them, and how one contains another.
//!
//! Grammar: `context/resource.permissions[?constraints]`, where the context is `user`,
//! `patient` or `system`, the resource a name or `*`, and the permissions either SMART v1
//! `read` (= `rs`), `write` (= `cud`), `*` (= `cruds`), a SMART v2 in-order subset of
//! `cruds`, or an operation `$name`. Scopes without a resource part (`openid`,
//! `offline_access`, `launch/patient`, `api:oemr`, …) are plain names.

use std::fmt;

/// Permission bits, SMART v2 style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Perms(u8);

impl Perms {
    /// Create.
    pub const C: Perms = Perms(1);
    /// Read (one resource).
    pub const R: Perms = Perms(2);
    /// Update.
    pub const U: Perms = Perms(4);
    /// Delete.
    pub const D: Perms = Perms(8);
    /// Search.
    pub const S: Perms = Perms(16);

    /// True when every bit of `other` is set here.
    pub fn contains(self, other: Perms) -> bool {
        self.0 & other.0 == other.0
    }

    /// Parses `cruds`-style letters; they must keep that order without repeats.
    pub fn parse_letters(text: &str) -> Option<Perms> {
        let mut bits = 0u8;
        let mut last = None;
        for c in text.chars() {
            let index = "cruds".find(c)?;
            if last.is_some_and(|l| index <= l) {
                return None;
            }
            last = Some(index);
            bits |= 1 << index;
        }
        (bits != 0).then_some(Perms(bits))
    }

    fn letters(self) -> String {
        "cruds"
            .chars()
            .enumerate()
            .filter(|(i, _)| self.0 & (1 << i) != 0)
            .map(|(_, c)| c)
            .collect()
    }
}

/// What a resource scope grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// Permissions (v1 `read`/`write` already mapped to bits).
    Perms(Perms),
    /// An operation such as `$export`.
    Operation(String),
}

/// One scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// `context/resource.access[?constraint]`.
    Resource {
        /// `user`, `patient` or `system`.
        context: String,
        /// The resource name or `*`.
        resource: String,
        /// What is granted.
        access: Access,
        /// A granular constraint such as `category=…|vital-signs`.
        constraint: Option<String>,
    },
    /// A scope without a resource part.
    Name(String),
}

/// The contexts a resource scope may have.
pub const CONTEXTS: &[&str] = &["user", "patient", "system"];

impl Scope {
    /// Parses one scope; `None` when it is not well formed.
    pub fn parse(text: &str) -> Option<Scope> {
        if text.is_empty() || text.chars().any(|c| c.is_whitespace()) {
            return None;
        }
        let Some((context, rest)) = text.split_once('/') else {
            return Some(Scope::Name(text.to_owned()));
        };
        if !CONTEXTS.contains(&context) {
            // `launch/patient`, `launch/encounter` and similar are plain names.
            return Some(Scope::Name(text.to_owned()));
        }
        let (rest, constraint) = match rest.split_once('?') {
            Some((rest, constraint)) if !constraint.is_empty() => {
                (rest, Some(constraint.to_owned()))
            }
            Some(_) => return None,
            None => (rest, None),
        };
        let (resource, access) = match rest.split_once(".$") {
            Some((resource, operation)) if !operation.is_empty() => {
                (resource, Access::Operation(format!("${operation}")))
            }
            Some(_) => return None,
            None => {
                let (resource, perms) = rest.rsplit_once('.')?;
                let perms = match perms {
                    "read" => Perms(Perms::R.0 | Perms::S.0),
                    "write" => Perms(Perms::C.0 | Perms::U.0 | Perms::D.0),
                    "*" => Perms(31),
                    letters => Perms::parse_letters(letters)?,
                };
                (resource, Access::Perms(perms))
            }
        };
        let resource_ok = resource == "*"
            || (!resource.is_empty()
                && resource
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'));
        resource_ok.then(|| Scope::Resource {
            context: context.to_owned(),
            resource: resource.to_owned(),
            access,
            constraint,
        })
    }

    /// True when holding `self` grants `required`.
    pub fn contains(&self, required: &Scope) -> bool {
        match (self, required) {
            (Scope::Name(a), Scope::Name(b)) => a == b,
            (
                Scope::Resource {
                    context,
                    resource,
                    access,
                    constraint,
                },
                Scope::Resource {
                    context: rc,
                    resource: rr,
                    access: ra,
                    constraint: rcon,
                },
            ) => {
                context == rc
                    && (resource == "*" || resource == rr)
                    && (constraint.is_none() || constraint == rcon)
                    && match (access, ra) {
                        (Access::Perms(have), Access::Perms(need)) => have.contains(*need),
                        (Access::Operation(a), Access::Operation(b)) => a == b,
                        _ => false,
                    }
            }
            _ => false,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scope::Name(name) => f.write_str(name),
            Scope::Resource {
                context,
                resource,
                access,
                constraint,
            } => {
                write!(f, "{context}/{resource}.")?;
                match access {
                    Access::Perms(p) => f.write_str(&p.letters())?,
                    Access::Operation(op) => f.write_str(op)?,
                }
                if let Some(c) = constraint {
                    write!(f, "?{c}")?;
                }
                Ok(())
            }
        }
    }
}

/// A token's granted scopes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScopeSet {
    scopes: Vec<Scope>,
}

impl ScopeSet {
    /// Parses a space-separated list; malformed entries are an error naming them.
    pub fn parse(text: &str) -> Result<ScopeSet, String> {
        let mut scopes = Vec::new();
        for item in text.split_whitespace() {
            scopes.push(Scope::parse(item).ok_or_else(|| format!("malformed scope {item:?}"))?);
        }
        Ok(ScopeSet { scopes })
    }

    /// True when some granted scope contains `required`.
    pub fn allows(&self, required: &Scope) -> bool {
        self.scopes.iter().any(|s| s.contains(required))
    }

    /// True when some granted scope contains `required` once its granular constraint
    /// (`?category=…`) is set aside: the FHIR routes let such a scope through and the
    /// plugin keeps only the resources the constraint admits (hearth_fhir::granular).
    pub fn allows_constrained(&self, required: &Scope) -> bool {
        self.scopes.iter().any(|s| match s {
            Scope::Resource {
                context,
                resource,
                access,
                constraint: Some(_),
            } => Scope::Resource {
                context: context.clone(),
                resource: resource.clone(),
                access: access.clone(),
                constraint: None,
            }
            .contains(required),
            _ => false,
        })
    }

    /// True when the plain scope `name` (e.g. `api:oemr`) was granted.
    pub fn has(&self, name: &str) -> bool {
        self.scopes
            .iter()
            .any(|s| matches!(s, Scope::Name(n) if n == name))
    }

    /// The scopes.
    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.scopes.iter()
    }

    /// The strongest context granted for `resource`: system beats user beats patient.
    pub fn strongest_context(&self, resource: &str) -> Option<&str> {
        let mut best: Option<&str> = None;
        for scope in &self.scopes {
            if let Scope::Resource {
                context,
                resource: r,
                ..
            } = scope
                && (r == resource || r == "*")
            {
                let rank = |c: &str| CONTEXTS.iter().position(|x| *x == c).map(|i| [1, 0, 2][i]);
                if best.is_none_or(|b| rank(context) > rank(b)) {
                    best = Some(context);
                }
            }
        }
        best
    }
}

/// A route's declared requirement: `resource.perms` or `resource.$operation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The resource.
    pub resource: String,
    /// What it needs.
    pub access: Access,
}

impl Requirement {
    /// Parses a route's scope declaration (`patient.s`, `Patient.$export`).
    pub fn parse(text: &str) -> Option<Requirement> {
        match Scope::parse(&format!("user/{text}"))? {
            Scope::Resource {
                resource,
                access,
                constraint: None,
                ..
            } => Some(Requirement { resource, access }),
            _ => None,
        }
    }

    /// The full scope in `context`.
    pub fn in_context(&self, context: &str) -> Scope {
        Scope::Resource {
            context: context.to_owned(),
            resource: self.resource.clone(),
            access: self.access.clone(),
            constraint: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(s: &str) -> Scope {
        Scope::parse(s).unwrap_or_else(|| panic!("{s} parses"))
    }

    #[test]
    fn v1_and_v2_permissions_match_as_smart_says() {
        assert!(scope("user/patient.read").contains(&scope("user/patient.r")));
        assert!(scope("user/patient.read").contains(&scope("user/patient.s")));
        assert!(!scope("user/patient.read").contains(&scope("user/patient.c")));
        assert!(scope("user/patient.write").contains(&scope("user/patient.cud")));
        assert!(scope("user/patient.cruds").contains(&scope("user/patient.rs")));
        assert!(!scope("user/patient.rs").contains(&scope("user/patient.u")));
        assert!(scope("patient/*.read").contains(&scope("patient/Observation.rs")));
        assert!(!scope("patient/patient.rs").contains(&scope("user/patient.rs")));
        assert!(scope("system/*.$export").contains(&scope("system/*.$export")));
        assert!(!scope("system/Patient.$export").contains(&scope("system/Patient.rs")));
    }

    #[test]
    fn malformed_scopes_are_refused() {
        assert_eq!(
            Scope::parse("user/patient.sr"),
            None,
            "letters must keep cruds order"
        );
        assert_eq!(Scope::parse("user/patient.rr"), None);
        assert_eq!(Scope::parse("user/patient.x"), None);
        assert_eq!(Scope::parse("user/.rs"), None);
        assert!(ScopeSet::parse("openid user/patient.zz").is_err());
        assert_eq!(
            scope("launch/patient"),
            Scope::Name("launch/patient".into())
        );
        assert_eq!(scope("api:oemr"), Scope::Name("api:oemr".into()));
    }

    #[test]
    fn constrained_scopes_parse_and_print() {
        let s = scope("patient/Observation.rs?category=http://x|vital-signs");
        assert_eq!(
            s.to_string(),
            "patient/Observation.rs?category=http://x|vital-signs"
        );
        assert_eq!(scope("system/*.$export").to_string(), "system/*.$export");
    }

    #[test]
    fn a_constrained_scope_lets_the_fhir_route_through() {
        let set = ScopeSet::parse("patient/Observation.rs?category=http://x|vital-signs").unwrap();
        let search = scope("patient/Observation.s");
        assert!(!set.allows(&search));
        assert!(set.allows_constrained(&search));
        assert!(!set.allows_constrained(&scope("patient/Condition.s")));
        assert!(!set.allows_constrained(&scope("user/Observation.s")));
        assert!(
            !ScopeSet::parse("patient/Observation.rs")
                .unwrap()
                .allows_constrained(&search)
        );
    }

    #[test]
    fn the_strongest_context_wins() {
        let set = ScopeSet::parse("patient/Patient.rs user/Patient.read openid").unwrap();
        assert_eq!(set.strongest_context("Patient"), Some("user"));
        let set = ScopeSet::parse("patient/Patient.rs").unwrap();
        assert_eq!(set.strongest_context("Patient"), Some("patient"));
    }

    #[test]
    fn requirements_take_a_context() {
        let req = Requirement::parse("patient.s").unwrap();
        assert_eq!(req.in_context("user").to_string(), "user/patient.s");
        assert!(Requirement::parse("patient.bogus").is_none());
        assert!(Requirement::parse("Patient.$export").is_some());
    }
}
