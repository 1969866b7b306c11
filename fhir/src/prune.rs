//! Branches a search can leave out before it runs.
//!
//! A type whose rows come from several sources is a `UNION ALL` of one branch per source
//! (see [`crate::tables`]), and a token parameter may hold one constant per branch
//! (MedicationRequest's `intent`: `plan` for every row of the medication list, `order`
//! for every prescription). A condition on such a parameter compares that constant with
//! a bound value, which the database knows only when the statement runs: PostgreSQL's
//! generic plan and SQLite's plan still read the tables of a branch no row of which can
//! match. [`admits`] decides it from the query instead, with the search's own reading of
//! a token, so the plugin builds its SQL from the branches that can match only.

use crate::search::{Param, Target, split_token, split_values};

/// Whether a row whose `name` parameter holds the code `constant` can meet every
/// condition `query` puts on `name` (each occurrence must hold; the values of one are
/// alternatives), read as [`crate::search`] reads a token: `code`, `system|code`,
/// `|code`, `system|`, `:not` and `:missing`. What it cannot tell from the query alone
/// (`:text`, a code list column, several columns, a modifier the search refuses, a
/// parameter that is no token) admits the row, and the SQL decides as before.
pub fn admits(params: &[Param], query: &[(String, String)], name: &str, constant: &str) -> bool {
    let Some(param) = params.iter().find(|p| p.name == name) else {
        return true;
    };
    let Target::Token(&[column]) = param.target else {
        return true;
    };
    if column.prefix.is_some() {
        return true;
    }
    query.iter().all(|(key, value)| {
        let (key_name, modifier) = match key.split_once(':') {
            Some((n, m)) => (n, Some(m)),
            None => (key.as_str(), None),
        };
        if key_name != name || value.is_empty() {
            return true;
        }
        let negate = match modifier {
            None => false,
            Some("not") => true,
            // The column always holds the constant, never nothing.
            Some("missing") => return value != "true",
            Some(_) => return true,
        };
        let any = split_values(value).iter().any(|v| {
            let (system, code) = split_token(v);
            let system_fits = match system.as_deref() {
                None => true,
                Some("") => column.system.is_none(),
                Some(s) => column.system == Some(s),
            };
            if !system_fits {
                return false;
            }
            if code.is_empty() {
                return true;
            }
            let stored = if column.codes.is_empty() {
                Some(code.as_str())
            } else {
                column
                    .codes
                    .iter()
                    .find(|(fhir, _)| *fhir == code)
                    .map(|(_, stored)| *stored)
            };
            stored == Some(constant)
        });
        any != negate
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::TokenColumn;

    const SYSTEM: &str = "http://hl7.org/fhir/CodeSystem/medicationrequest-intent";
    const PARAMS: &[Param] = &[
        Param::new(
            "intent",
            "MedicationRequest.intent",
            Target::Token(&[TokenColumn::new("m.intent", Some(SYSTEM))]),
        ),
        Param::new(
            "code",
            "MedicationRequest.medication",
            Target::Token(&[TokenColumn::listed("m.codes", "urn:x", "X:")]),
        ),
    ];

    fn q(text: &str) -> Vec<(String, String)> {
        text.split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    fn both(text: &str) -> (bool, bool) {
        let query = q(text);
        (
            admits(PARAMS, &query, "intent", "plan"),
            admits(PARAMS, &query, "intent", "order"),
        )
    }

    #[test]
    fn a_constant_branch_is_kept_only_when_the_intent_can_match_it() {
        assert_eq!(both(""), (true, true));
        assert_eq!(both("status=active&intent="), (true, true));
        assert_eq!(both("intent=plan"), (true, false));
        assert_eq!(both("intent=order"), (false, true));
        assert_eq!(both("intent=plan,order"), (true, true));
        assert_eq!(both("intent=plan&intent=order"), (false, false));
        assert_eq!(both("intent=proposal"), (false, false));
        assert_eq!(
            both("intent=Plan"),
            (false, false),
            "codes are case-sensitive"
        );
        assert_eq!(both(&format!("intent={SYSTEM}|order")), (false, true));
        assert_eq!(both("intent=urn:other|order"), (false, false));
        assert_eq!(
            both("intent=|order"),
            (false, false),
            "the codes have a system"
        );
        assert_eq!(both(&format!("intent={SYSTEM}|")), (true, true));
        assert_eq!(both("intent:not=plan"), (false, true));
        assert_eq!(both("intent:not=proposal"), (true, true));
        assert_eq!(both("intent:missing=true"), (false, false));
        assert_eq!(both("intent:missing=false"), (true, true));
        assert_eq!(both("intent:text=pla"), (true, true), "left to the SQL");
        assert_eq!(
            both("intent:below=plan"),
            (true, true),
            "the search refuses it"
        );
        assert!(
            admits(PARAMS, &q("code=X:1"), "code", "plan"),
            "a code list"
        );
        assert!(admits(PARAMS, &q("intent=plan"), "unknown", "x"));
    }
}
