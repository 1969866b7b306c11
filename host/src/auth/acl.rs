//! Access control lists: which OpenEMR ACL sections a staff role holds.
//!
//! OpenEMR checks a gacl section (`patients/demo`, `encounters/notes`, `admin/users`, …)
//! inside each route after the scope check. Hearth keeps the sections on the route (the
//! plugin declares them) and gives each staff user one role modelled on OpenEMR's default
//! groups. A route's ACL is `section/value`, optionally `:write`.

/// The roles a staff user can have.
pub const ROLES: &[&str] = &[
    "admin",
    "physician",
    "clinician",
    "front_office",
    "accounting",
];

/// (section, value or `*`, write allowed) entries per role.
fn entries(role: &str) -> &'static [(&'static str, &'static str, bool)] {
    match role {
        "admin" => &[("*", "*", true)],
        "physician" => &[
            ("patients", "*", true),
            ("encounters", "*", true),
            ("lists", "*", true),
            ("admin", "drugs", false),
            ("acct", "bill", false),
        ],
        "clinician" => &[
            ("patients", "appt", true),
            ("patients", "demo", true),
            ("patients", "med", true),
            ("patients", "notes", true),
            ("patients", "trans", true),
            ("patients", "docs", true),
            ("encounters", "notes", true),
            ("encounters", "coding", true),
            ("encounters", "auth_a", true),
            ("lists", "default", false),
        ],
        "front_office" => &[
            ("patients", "appt", true),
            ("patients", "demo", true),
            ("patients", "trans", false),
            ("lists", "default", false),
        ],
        "accounting" => &[
            ("acct", "*", true),
            ("patients", "demo", false),
            ("patients", "appt", false),
            ("encounters", "coding", true),
            ("lists", "default", false),
        ],
        _ => &[],
    }
}

/// True when a route's ACL (`section/value[:write]`) is well formed.
pub fn is_valid(acl: &str) -> bool {
    acl.is_empty() || parse(acl).is_some()
}

fn parse(acl: &str) -> Option<(&str, &str, bool)> {
    let (path, write) = match acl.strip_suffix(":write") {
        Some(path) => (path, true),
        None => (acl, false),
    };
    let (section, value) = path.split_once('/')?;
    let ok = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    (ok(section) && ok(value)).then_some((section, value, write))
}

/// True when `role` passes `acl`.
pub fn allows(role: &str, acl: &str) -> bool {
    if acl.is_empty() {
        return true;
    }
    let Some((section, value, write)) = parse(acl) else {
        return false;
    };
    entries(role).iter().any(|(s, v, w)| {
        (*s == "*" || *s == section) && (*v == "*" || *v == value) && (*w || !write)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_hold_their_sections() {
        assert!(allows("admin", "admin/super:write"));
        assert!(allows("physician", "patients/med:write"));
        assert!(!allows("physician", "admin/users"));
        assert!(allows("front_office", "patients/demo:write"));
        assert!(!allows("front_office", "patients/med"));
        assert!(!allows("accounting", "patients/demo:write"));
        assert!(allows("accounting", "patients/demo"));
        assert!(!allows("nobody", "patients/demo"));
        assert!(allows("nobody", ""));
    }

    #[test]
    fn acl_strings_are_validated() {
        assert!(is_valid("patients/demo"));
        assert!(is_valid("patients/demo:write"));
        assert!(!is_valid("patients"));
        assert!(!is_valid("patients/demo:read"));
    }
}
