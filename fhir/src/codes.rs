//! OpenEMR's code lists: a `lists.diagnosis` (or a `list_options.codes`) such as
//! `ICD10:I10;SNOMED-CT:38341003`, each item a code type and a code. FHIR answers each
//! item as a `Coding` of the code type's system.

use hearth_sdk::Json;

use crate::coding;

/// OpenEMR code types (the prefix before `:`) and their FHIR code systems.
pub const SYSTEMS: &[(&str, &str)] = &[
    ("ICD10", "http://hl7.org/fhir/sid/icd-10-cm"),
    ("ICD9", "http://hl7.org/fhir/sid/icd-9-cm"),
    ("SNOMED-CT", "http://snomed.info/sct"),
    ("SNOMED", "http://snomed.info/sct"),
    ("RXNORM", "http://www.nlm.nih.gov/research/umls/rxnorm"),
    ("RXCUI", "http://www.nlm.nih.gov/research/umls/rxnorm"),
    ("CPT4", "http://www.ama-assn.org/go/cpt"),
    ("LOINC", "http://loinc.org"),
    ("CVX", "http://hl7.org/fhir/sid/cvx"),
];

/// The FHIR system of an OpenEMR code type.
pub fn system(code_type: &str) -> Option<&'static str> {
    SYSTEMS
        .iter()
        .find(|(t, _)| t.eq_ignore_ascii_case(code_type.trim()))
        .map(|(_, s)| *s)
}

/// The codings of a code list, the known code types only (an item of another type, or
/// without one, has no system FHIR could name and is left out).
pub fn codings(list: Option<&str>, display: Option<&str>) -> Vec<Json> {
    let Some(list) = list else {
        return Vec::new();
    };
    list.split(';')
        .filter_map(|item| {
            let (code_type, code) = item.split_once(':')?;
            let code = code.trim();
            let system = system(code_type)?;
            (!code.is_empty()).then(|| coding(system, code, display))
        })
        .collect()
}

/// A `CodeableConcept` of a code list with `text`; the text alone when the list holds
/// no known code (US Core lets a concept be text only).
pub fn concept(list: Option<&str>, text: Option<&str>) -> Json {
    let mut out = crate::Fields::new();
    out.list("coding", codings(list, None)).text("text", text);
    out.end()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_lists_become_codings() {
        let list = Some("ICD10:I10; SNOMED-CT:38341003;XYZ:1;nocolon");
        let all = codings(list, None);
        assert_eq!(all.len(), 2);
        assert_eq!(
            all[0].as_str(),
            r#"{"system":"http://hl7.org/fhir/sid/icd-10-cm","code":"I10"}"#
        );
        assert_eq!(
            concept(Some(""), Some("Hypertension")).as_str(),
            r#"{"text":"Hypertension"}"#
        );
    }
}
