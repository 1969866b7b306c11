//! A site's scope catalogue: what clients may register and request. It holds OpenEMR's
//! scopes (the fixed part below) and every scope the routes of the site's loaded plugins
//! declare, so a plugin a site adds brings scopes that clients can obtain over OAuth, and
//! a reload changes what registration, the authorization pages, the token endpoint and
//! discovery accept at once. A requested scope is valid when some catalogue scope
//! contains it, so subsets (`user/patient.r`) and granular constraints
//! (`patient/Observation.rs?category=…`) work, as in OpenEMR.

use std::sync::OnceLock;

use crate::auth::scopes::Scope;

/// Scopes without a resource part.
pub const NAMES: &[&str] = &[
    "openid",
    "fhirUser",
    "profile",
    "name",
    "address",
    "given_name",
    "family_name",
    "nickname",
    "phone",
    "phone_verified",
    "email",
    "email_verified",
    "online_access",
    "offline_access",
    "launch",
    "launch/patient",
    "api:oemr",
    "api:fhir",
    "api:port",
];

/// FHIR resources readable with SMART v1 `.read`.
const FHIR_V1_READ: &[&str] = &[
    "AllergyIntolerance",
    "Appointment",
    "CarePlan",
    "CareTeam",
    "Condition",
    "Coverage",
    "Device",
    "DiagnosticReport",
    "DocumentReference",
    "Binary",
    "Encounter",
    "Goal",
    "Group",
    "Immunization",
    "Location",
    "Medication",
    "MedicationRequest",
    "Observation",
    "Organization",
    "Patient",
    "Person",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "ValueSet",
    "OperationDefinition",
];

/// FHIR resources readable with SMART v2 `.rs`.
const FHIR_V2: &[&str] = &[
    "AllergyIntolerance",
    "CarePlan",
    "CareTeam",
    "Condition",
    "Coverage",
    "Device",
    "DiagnosticReport",
    "DocumentReference",
    "Encounter",
    "Goal",
    "Immunization",
    "Media",
    "MedicationDispense",
    "MedicationRequest",
    "Observation",
    "Organization",
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
    "RelatedPerson",
    "ServiceRequest",
    "Specimen",
];

/// SMART v2 granular scopes OpenEMR offers (`{context}/{Type}.rs?category={system}|{code}`).
/// OpenEMR spells the social-history system `http://terminology.hl7.org//CodeSystem-
/// observation-category`, which no Observation carries; Hearth offers the real one.
/// Any other `?category=` (or other search parameter) constraint is accepted too, being
/// contained in the unconstrained scope.
const FHIR_GRANULAR: &[(&str, &str, &str)] = &[
    (
        "Condition",
        "http://hl7.org/fhir/us/core/CodeSystem/condition-category",
        "health-concern",
    ),
    (
        "Condition",
        "http://terminology.hl7.org/CodeSystem/condition-category",
        "encounter-diagnosis",
    ),
    (
        "Condition",
        "http://terminology.hl7.org/CodeSystem/condition-category",
        "problem-list-item",
    ),
    (
        "Observation",
        "http://hl7.org/fhir/us/core/CodeSystem/us-core-category",
        "sdoh",
    ),
    (
        "Observation",
        "http://terminology.hl7.org/CodeSystem/observation-category",
        "social-history",
    ),
    (
        "Observation",
        "http://terminology.hl7.org/CodeSystem/observation-category",
        "laboratory",
    ),
    (
        "Observation",
        "http://terminology.hl7.org/CodeSystem/observation-category",
        "survey",
    ),
    (
        "Observation",
        "http://terminology.hl7.org/CodeSystem/observation-category",
        "vital-signs",
    ),
    (
        "DocumentReference",
        "http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category",
        "clinical-note",
    ),
];

/// Standard API scopes (`user/…`), SMART v2 letters (v1 `read`/`write` are contained).
const API_USER: &[&str] = &[
    "allergy.cruds",
    "appointment.cruds",
    "dental_issue.cruds",
    "document.crs",
    "drug.rs",
    "employer.s",
    "encounter.crus",
    "facility.crus",
    "immunization.rs",
    "insurance.crus",
    "insurance_company.crus",
    "insurance_type.s",
    "list.r",
    "medical_problem.cruds",
    "medication.cruds",
    "message.cud",
    "patient.crus",
    "practitioner.crus",
    "prescription.crds",
    "procedure.rs",
    "product.s",
    "soap_note.crus",
    "surgery.cruds",
    "transaction.cuds",
    "user.rs",
    "version.s",
    "vital.crus",
    "insurance.$swap-insurance",
];

/// The background-service routes' scopes (`user/…`; the host serves those routes),
/// v2 and v1 forms. OpenEMR's scope list lacks them, so there no token can carry them.
const BACKGROUND_SERVICE: &[&str] = &[
    "background_service.rs",
    "background_service.read",
    "background_service.$run",
    "run.c",
    "run.write",
];

/// Every catalogue scope as text.
pub fn all() -> &'static [String] {
    static ALL: OnceLock<Vec<String>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut out: Vec<String> = NAMES.iter().map(|s| (*s).to_owned()).collect();
        for context in ["patient", "user", "system"] {
            for resource in FHIR_V1_READ {
                out.push(format!("{context}/{resource}.read"));
            }
            for resource in FHIR_V2 {
                out.push(format!("{context}/{resource}.rs"));
            }
            out.push(format!("{context}/DocumentReference.$docref"));
            for (resource, system, code) in FHIR_GRANULAR {
                out.push(format!("{context}/{resource}.rs?category={system}|{code}"));
            }
        }
        for resource in ["Patient", "Practitioner", "Organization"] {
            out.push(format!("user/{resource}.write"));
        }
        for scope in API_USER {
            out.push(format!("user/{scope}"));
        }
        // The standard API's legacy v1 names whose letters are not all in the v2 list.
        for scope in [
            "allergy",
            "appointment",
            "dental_issue",
            "document",
            "encounter",
            "facility",
            "insurance",
            "insurance_company",
            "medical_problem",
            "medication",
            "patient",
            "practitioner",
            "prescription",
            "soap_note",
            "surgery",
            "transaction",
            "vital",
        ] {
            out.push(format!("user/{scope}.read"));
            out.push(format!("user/{scope}.write"));
        }
        for scope in [
            "drug",
            "employer",
            "immunization",
            "insurance_type",
            "list",
            "procedure",
            "product",
            "user",
            "version",
        ] {
            out.push(format!("user/{scope}.read"));
        }
        out.push("user/message.write".to_owned());
        for scope in BACKGROUND_SERVICE {
            out.push(format!("user/{scope}"));
        }
        for scope in [
            "patient.s",
            "patient.read",
            "encounter.rs",
            "encounter.read",
            "appointment.rs",
            "appointment.read",
        ] {
            out.push(format!("patient/{scope}"));
        }
        for scope in [
            "Patient.$export",
            "Group.$export",
            "*.$bulkdata-status",
            "*.$export",
        ] {
            out.push(format!("system/{scope}"));
        }
        out
    })
}

fn parsed() -> &'static [Scope] {
    static PARSED: OnceLock<Vec<Scope>> = OnceLock::new();
    PARSED.get_or_init(|| all().iter().filter_map(|s| Scope::parse(s)).collect())
}

/// The catalogue of one site: the fixed scopes and those its loaded plugins declare.
#[derive(Clone, Copy)]
pub struct Catalog<'a> {
    plugins: &'a [Scope],
}

impl<'a> Catalog<'a> {
    /// The catalogue with the scopes of these plugins' routes (see
    /// [`crate::plugins::SiteTable::scopes`]).
    pub fn new(plugins: &'a [Scope]) -> Catalog<'a> {
        Catalog { plugins }
    }

    /// True when `scope` (one scope's text) is in the catalogue or contained in one of
    /// its scopes. A constrained request is contained in the unconstrained catalogue
    /// scope.
    pub fn allows(&self, scope: &str) -> bool {
        let Some(parsed_scope) = Scope::parse(scope) else {
            return false;
        };
        parsed()
            .iter()
            .chain(self.plugins)
            .any(|s| s.contains(&parsed_scope))
    }

    /// The scopes in `text` the catalogue refuses.
    pub fn refused(&self, text: &str) -> Vec<String> {
        text.split_whitespace()
            .filter(|s| !self.allows(s))
            .map(str::to_owned)
            .collect()
    }

    /// Every scope, as discovery lists them: the fixed ones, then the plugins' scopes that
    /// none of them already holds.
    pub fn supported(&self) -> Vec<String> {
        let mut out = all().to_vec();
        for scope in self.plugins {
            if !parsed().iter().any(|s| s == scope) {
                out.push(scope.to_string());
            }
        }
        out
    }
}

/// True when `requested` is contained in one of `granted` (space-separated).
pub fn contained_in(requested: &str, granted: &str) -> bool {
    let Some(requested) = Scope::parse(requested) else {
        return false;
    };
    granted
        .split_whitespace()
        .filter_map(Scope::parse)
        .any(|g| g.contains(&requested))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allows(scope: &str) -> bool {
        Catalog::new(&[]).allows(scope)
    }

    fn refused(text: &str) -> Vec<String> {
        Catalog::new(&[]).refused(text)
    }

    #[test]
    fn the_catalogue_holds_openemr_scopes_and_their_subsets() {
        assert!(allows("openid"));
        assert!(allows("launch/patient"));
        assert!(allows("user/patient.r"));
        assert!(allows("user/patient.read"));
        assert!(allows("system/Patient.rs"));
        assert!(allows(
            "patient/Observation.rs?category=http://x|vital-signs"
        ));
        assert!(allows("system/*.$export"));
        assert!(
            !allows("patient/patient.c"),
            "patients cannot create themselves"
        );
        assert!(!allows("admin"));
        assert!(!allows("user/Nothing.rs"));
        assert!(!allows("user/patient.zz"));
        assert_eq!(refused("openid bogus user/patient.r"), ["bogus"]);
        assert!(contained_in("user/patient.r", "openid user/patient.read"));
        assert!(!contained_in("user/patient.c", "user/patient.read"));
    }

    #[test]
    fn the_background_service_scopes_are_grantable() {
        for scope in [
            "user/background_service.s",
            "user/background_service.r",
            "user/background_service.rs",
            "user/background_service.read",
            "user/background_service.$run",
            "user/run.c",
            "user/run.write",
        ] {
            assert!(allows(scope), "{scope}");
        }
        assert!(!allows("user/run.rs"), "a run is only created");
        assert!(!allows("patient/background_service.s"));
        assert!(!allows("system/background_service.$run"));
    }

    #[test]
    fn a_plugins_scopes_join_the_catalogue_of_its_site_only() {
        let plugin = [Scope::parse("user/widget.rs").unwrap()];
        let with = Catalog::new(&plugin);
        assert!(with.allows("user/widget.r"));
        assert!(with.allows("user/widget.rs"));
        assert!(!with.allows("user/widget.c"));
        assert!(!with.allows("patient/widget.rs"));
        assert!(
            !allows("user/widget.r"),
            "a site without the plugin refuses it"
        );
        assert_eq!(
            with.refused("openid user/widget.s user/gadget.s"),
            ["user/gadget.s"]
        );
        let supported = with.supported();
        assert_eq!(supported.last().map(String::as_str), Some("user/widget.rs"));
        assert_eq!(supported.len(), all().len() + 1);
        let fixed = [Scope::parse("user/patient.crus").unwrap()];
        assert_eq!(
            Catalog::new(&fixed).supported().len(),
            all().len(),
            "listed once"
        );
    }
}
