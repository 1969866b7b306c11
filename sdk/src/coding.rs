//! OpenEMR's coded values: `lists.diagnosis`, `list_options.codes` and similar columns
//! hold `TYPE:CODE` pairs separated by `;` (e.g. `ICD10:H02.839;SNOMED-CT:95817006`).
//! The API answers them as a map keyed by code, each entry with the code, its code type,
//! the code system's URI and a description.

use crate::json::Json;
use crate::store::ValueRef;

/// The FHIR system URI of an OpenEMR code type, or `""` for a type without one.
pub fn system(code_type: &str) -> &'static str {
    match code_type.to_ascii_uppercase().as_str() {
        "ICD10" | "ICD10-CM" => "http://hl7.org/fhir/sid/icd-10-cm",
        "ICD10-PCS" => "http://www.cms.gov/Medicare/Coding/ICD10",
        "ICD9" | "ICD9-CM" => "http://hl7.org/fhir/sid/icd-9-cm",
        "SNOMED" | "SNOMED-CT" | "SNOMED-PR" => "http://snomed.info/sct",
        "CPT4" => "http://www.ama-assn.org/go/cpt",
        "HCPCS" => "urn:oid:2.16.840.1.113883.6.285",
        "LOINC" => "http://loinc.org",
        "RXNORM" | "RXCUI" => "http://www.nlm.nih.gov/research/umls/rxnorm",
        "CVX" => "http://hl7.org/fhir/sid/cvx",
        "NDC" => "http://hl7.org/fhir/sid/ndc",
        _ => "",
    }
}

/// The coding map of `codes`: `{"H02.839": {"code": "H02.839", "description": "",
/// "code_type": "ICD10", "system": "http://hl7.org/fhir/sid/icd-10-cm"}, …}`.
///
/// Descriptions come from OpenEMR's code tables, which Hearth does not hold; they are
/// empty. A code without a `TYPE:` prefix has an empty code type and system.
pub fn map(codes: &str) -> Json {
    let mut out = Json::object();
    for entry in codes.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let (code_type, code) = entry.split_once(':').unwrap_or(("", entry));
        let mut coding = Json::object();
        coding
            .field("code", code)
            .field("description", "")
            .field("code_type", code_type)
            .field("system", system(code_type));
        out.field(code, coding.end());
    }
    out.end()
}

/// The JSON Schema of what [`field`] answers, for route documentation.
pub const FIELD_SCHEMA: crate::apidocs::Schema = crate::apidocs::Schema::Json(
    r#"{"description":"A coding map (code to code, description, code_type and system) when the column holds codes, else its text","type":["object","string","null"]}"#,
);

/// A coded column as OpenEMR answers it: the coding map when it holds codes, the value
/// itself (`""` or `null`) when it does not.
pub fn field(value: ValueRef<'_>) -> Json {
    match value {
        ValueRef::Text(codes) if !codes.trim().is_empty() => map(codes),
        other => {
            let mut out = String::new();
            crate::json::ToJson::write_json(&other, &mut out);
            Json::raw(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diagnosis_codes_become_a_map_keyed_by_code() {
        let value = map("ICD10:H02.839; SNOMED-CT:95817006").to_value();
        assert_eq!(
            value,
            json!({
                "H02.839": {"code": "H02.839", "description": "", "code_type": "ICD10", "system": "http://hl7.org/fhir/sid/icd-10-cm"},
                "95817006": {"code": "95817006", "description": "", "code_type": "SNOMED-CT", "system": "http://snomed.info/sct"}
            })
        );
    }

    #[test]
    fn empty_codes_stay_as_they_are() {
        assert_eq!(field(ValueRef::Text("")).as_str(), r#""""#);
        assert_eq!(field(ValueRef::Null).as_str(), "null");
        assert_eq!(
            field(ValueRef::Text("X1")).to_value()["X1"]["code_type"],
            ""
        );
    }
}
