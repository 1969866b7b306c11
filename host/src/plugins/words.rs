//! Scopes in words, for the people who grant them: the consent page, and the admin
//! console's client pages.
//!
//! [`scope_words`] turns one scope string into a sentence for a site: resource scopes
//! take the display name and words of the plugin that declares the resource (its
//! `hearth:api-docs` section, see [`super::apidocs`]); the fixed OpenID Connect, SMART
//! and OpenEMR scopes (`openid`, `fhirUser`, `offline_access`, `launch/patient`,
//! `api:oemr`, …) take the host's words below. [`group_scopes`] puts a request's scopes
//! under their resources' headings, in the order they were asked for.

use super::SiteTable;
use super::apidocs::Words;
use crate::auth::scopes::{Access, Perms, Scope};

/// One scope in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeWords {
    /// The scope as written, e.g. `user/patient.rs`.
    pub raw: String,
    /// The heading it belongs under: the resource's display name (`Patients`), or
    /// `Your account` / `Access` for scopes without a resource.
    pub group: String,
    /// The sentence, e.g. `Read and search patients' demographics`.
    pub text: String,
}

/// The scopes of one heading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopeGroup {
    /// The heading.
    pub heading: String,
    /// Its scopes, in request order.
    pub scopes: Vec<ScopeWords>,
}

/// Headings of the fixed scopes.
const ACCOUNT: &str = "Your account";
const ACCESS: &str = "Access";

/// The host's words for scopes without a resource part: (scope, heading, words).
const FIXED: &[(&str, &str, &str)] = &[
    ("openid", ACCOUNT, "Confirm who you are (sign you in)"),
    (
        "fhirUser",
        ACCOUNT,
        "Know which user or patient record you are",
    ),
    ("profile", ACCOUNT, "Read your name and profile"),
    ("name", ACCOUNT, "Read your name"),
    ("given_name", ACCOUNT, "Read your given name"),
    ("family_name", ACCOUNT, "Read your family name"),
    ("nickname", ACCOUNT, "Read your nickname"),
    ("address", ACCOUNT, "Read your address"),
    ("phone", ACCOUNT, "Read your phone number"),
    (
        "phone_verified",
        ACCOUNT,
        "Know whether your phone number is verified",
    ),
    ("email", ACCOUNT, "Read your e-mail address"),
    (
        "email_verified",
        ACCOUNT,
        "Know whether your e-mail address is verified",
    ),
    (
        "online_access",
        ACCESS,
        "Stay signed in while you use the app",
    ),
    (
        "offline_access",
        ACCESS,
        "Keep access when you are not using the app (a refresh token)",
    ),
    (
        "launch",
        ACCESS,
        "Open in the context of the record you are working on",
    ),
    (
        "launch/patient",
        ACCESS,
        "Choose which patient the app works with",
    ),
    (
        "launch/encounter",
        ACCESS,
        "Know which encounter you are working on",
    ),
    ("api:oemr", ACCESS, "Use the standard API"),
    ("api:fhir", ACCESS, "Use the FHIR API"),
    ("api:port", ACCESS, "Use the patient portal API"),
];

/// Words for bulk-data operations.
const OPERATIONS: &[(&str, &str)] = &[
    ("$export", "Export in bulk"),
    ("$bulkdata-status", "Check and download bulk exports of"),
    ("$docref", "Generate documents (C-CDA) of"),
    ("$swap-insurance", "Swap the insurance order of"),
];

/// The verbs of a set of permissions: `Read and search`, `Create, update and delete`.
fn verbs(perms: Perms) -> String {
    let mut words: Vec<&str> = Vec::new();
    for (bit, word) in [
        (Perms::R, "read"),
        (Perms::S, "search"),
        (Perms::C, "create"),
        (Perms::U, "update"),
        (Perms::D, "delete"),
    ] {
        if perms.contains(bit) {
            words.push(word);
        }
    }
    let text = match words.as_slice() {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => text,
    }
}

/// The declared words for `resource` on the site, if a plugin declares them.
fn declared<'a>(table: &'a SiteTable, resource: &str) -> Option<&'a Words> {
    table
        .plugins
        .iter()
        .flat_map(|p| p.loaded.docs.words.iter())
        .find(|w| w.resource == resource)
}

/// `snake_case` or `CamelCase` resource names as words: `soap_note` → `soap note`,
/// `AllergyIntolerance` → `allergy intolerance`.
fn plain(resource: &str) -> String {
    let mut out = String::new();
    for (i, c) in resource.chars().enumerate() {
        if c == '_' || c == '-' {
            out.push(' ');
        } else if c.is_ascii_uppercase() {
            if i > 0 {
                out.push(' ');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The value of a granular constraint's `category` (the code after any `system|`).
fn category(constraint: &str) -> Option<&str> {
    constraint.split('&').find_map(|pair| {
        let value = pair.strip_prefix("category=")?;
        Some(value.rsplit('|').next().unwrap_or(value))
    })
}

/// One scope in words for a site whose plugins are `table`. Unknown names are shown as
/// they are (a scope the catalogue refuses never reaches a page).
pub fn scope_words(table: &SiteTable, scope: &str) -> ScopeWords {
    let raw = scope.to_owned();
    match Scope::parse(scope) {
        Some(Scope::Resource {
            context,
            resource,
            access,
            constraint,
        }) => {
            let words = declared(table, &resource);
            let group = match (words, resource.as_str()) {
                (Some(w), _) => w.name.clone(),
                (None, "*") => "All resources".to_owned(),
                (None, other) => {
                    let text = plain(other);
                    let mut chars = text.chars();
                    match chars.next() {
                        Some(first) => first.to_uppercase().chain(chars).collect(),
                        None => text,
                    }
                }
            };
            let what = match (words, resource.as_str()) {
                (Some(w), _) => w.what.clone(),
                (None, "*") => "every kind of record".to_owned(),
                (None, other) => format!("{} records", plain(other)),
            };
            let mut text = match &access {
                Access::Perms(perms) => format!("{} {what}", verbs(*perms)),
                Access::Operation(operation) => {
                    let verb = OPERATIONS
                        .iter()
                        .find(|(o, _)| o == operation)
                        .map(|(_, v)| (*v).to_owned())
                        .unwrap_or_else(|| format!("Run the {operation} operation on"));
                    format!("{verb} {what}")
                }
            };
            if let Some(constraint) = &constraint {
                let code = category(constraint);
                let named = code.and_then(|code| {
                    words.and_then(|w| {
                        w.categories
                            .iter()
                            .find(|(c, _)| c == code)
                            .map(|(_, t)| t.clone())
                    })
                });
                match (named, code) {
                    (Some(named), _) => text.push_str(&format!(" — only {named}")),
                    (None, Some(code)) => text.push_str(&format!(" — only category {code}")),
                    (None, None) => text.push_str(&format!(" — only where {constraint}")),
                }
            }
            match context.as_str() {
                "patient" => text.push_str(" (one patient's records)"),
                "system" => text.push_str(" (as a backend service, every patient)"),
                _ => {}
            }
            ScopeWords { raw, group, text }
        }
        Some(Scope::Name(name)) => {
            let (group, text) = FIXED
                .iter()
                .find(|(n, _, _)| *n == name)
                .map(|(_, g, t)| ((*g).to_owned(), (*t).to_owned()))
                .unwrap_or_else(|| (ACCESS.to_owned(), name.clone()));
            ScopeWords { raw, group, text }
        }
        None => ScopeWords {
            raw: raw.clone(),
            group: ACCESS.to_owned(),
            text: raw,
        },
    }
}

/// `scopes` in words, under their headings: each heading once, where its first scope
/// was asked for; within a heading the request's order.
pub fn group_scopes<'a>(
    table: &SiteTable,
    scopes: impl IntoIterator<Item = &'a str>,
) -> Vec<ScopeGroup> {
    let mut groups: Vec<ScopeGroup> = Vec::new();
    for scope in scopes {
        let words = scope_words(table, scope);
        match groups.iter_mut().find(|g| g.heading == words.group) {
            Some(group) => group.scopes.push(words),
            None => groups.push(ScopeGroup {
                heading: words.group.clone(),
                scopes: vec![words],
            }),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_read_as_sentences_without_plugin_words() {
        let table = SiteTable::default();
        let words = scope_words(&table, "user/soap_note.rs");
        assert_eq!(words.text, "Read and search soap note records");
        assert_eq!(words.group, "Soap note");
        assert_eq!(words.raw, "user/soap_note.rs");
        assert_eq!(
            scope_words(
                &table,
                "patient/Observation.rs?category=http://x|vital-signs"
            )
            .text,
            "Read and search observation records — only category vital-signs (one patient's records)"
        );
        assert_eq!(
            scope_words(&table, "user/patient.write").text,
            "Create, update and delete patient records"
        );
        assert_eq!(
            scope_words(&table, "system/*.$export").text,
            "Export in bulk every kind of record (as a backend service, every patient)"
        );
        let openid = scope_words(&table, "openid");
        assert_eq!(
            (openid.group.as_str(), openid.text.as_str()),
            (ACCOUNT, "Confirm who you are (sign you in)")
        );
        assert_eq!(scope_words(&table, "api:oemr").text, "Use the standard API");
        let groups = group_scopes(&table, ["openid", "user/vital.r", "api:oemr", "fhirUser"]);
        let headings: Vec<&str> = groups.iter().map(|g| g.heading.as_str()).collect();
        assert_eq!(headings, [ACCOUNT, "Vital", ACCESS]);
        assert_eq!(groups[0].scopes.len(), 2);
    }
}
