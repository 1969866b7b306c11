//! FHIR R4 `Provenance` (US Core 3.1.1 and 7.0.0): one per US Core resource Hearth
//! serves, read at `/fhir/Provenance/{id}` (the target's id, see
//! `hearth_fhir::provenance::provenance_id`) and searched by `_id`, `_lastUpdated` and
//! `target`. What each says and why is `hearth_fhir::provenance`; the other FHIR
//! plugins add the same Provenance to a search with `_revinclude=Provenance:target`.

use std::sync::LazyLock;

use hearth_fhir::{Fields, Param, Target, TypeDef, provenance};
use hearth_sdk::FhirType;
use hearth_sdk::prelude::*;

/// The FHIR Provenance resource.
pub struct FhirProvenance;

impl Resource for FhirProvenance {
    const NAME: &'static str = "fhir-provenance";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTION: &'static str = "FHIR Provenance (US Core) of every US Core resource";
    const READS: &'static [&'static str] = &[
        "patient_data",
        "users",
        "lists",
        "issue_encounter",
        "form_encounter",
        "form_vitals",
        "forms",
        "history_data",
        "facility",
        "immunizations",
        "form_care_plan",
        "care_teams",
        "insurance_data",
        "contact_relation",
        "prescriptions",
        "list_options",
        "procedure_order",
        "procedure_report",
        "procedure_result",
        "procedure_specimen",
        "drug_sales",
        "documents",
    ];
    const ROUTES: &'static [Route] = &[
        Route::get("/fhir/Provenance", "Provenance.s", search)
            .acl("patients/med")
            .summary("Search provenance")
            .answers(Schema::Bundle(&PROVENANCE_SCHEMA)),
        Route::post("/fhir/Provenance/_search", "Provenance.s", search)
            .acl("patients/med")
            .summary("Search provenance (form body)")
            .answers(Schema::Bundle(&PROVENANCE_SCHEMA)),
        Route::get("/fhir/Provenance/:id", "Provenance.r", read)
            .acl("patients/med")
            .summary("Read a provenance")
            .answers(PROVENANCE_SCHEMA),
    ];

    const WORDS: &'static [Words] = &[Words::new(
        "Provenance",
        "Provenance (FHIR)",
        "who recorded each record (FHIR Provenance)",
    )];

    fn fhir_types() -> Vec<FhirType> {
        vec![PROVENANCE.declaration()]
    }
}

/// A US Core Provenance as the routes answer it.
const PROVENANCE_SCHEMA: Schema = {
    use hearth_fhir::schemas::*;
    Schema::Object(&[
        Prop::new("resourceType", Schema::Enum(&["Provenance"])).required(),
        Prop::new("id", Schema::String).required(),
        Prop::new("meta", META),
        Prop::new("target", Schema::Array(&REFERENCE)).required(),
        Prop::new("recorded", Schema::String).required(),
        Prop::new(
            "agent",
            Schema::Array(&Schema::Object(&[
                Prop::new("type", CODEABLE_CONCEPT),
                Prop::new("who", REFERENCE),
                Prop::new("onBehalfOf", REFERENCE),
            ])),
        )
        .required(),
    ])
};

hearth_sdk::export!(FhirProvenance);

/// Every Provenance: the derived table of all targets, made once per instance.
static PROVENANCE: LazyLock<TypeDef> = LazyLock::new(|| TypeDef {
    resource_type: "Provenance",
    profiles: provenance::PROFILES,
    columns: "pv.*, org.org_uuid, org.org_name",
    from: Box::leak(provenance::table().into_boxed_str()),
    id: "pv.pid",
    key: "pv.pkey",
    last_updated: "pv.updated",
    patient: Some("pv.patient_uuid"),
    only: None,
    params: PARAMS,
});

/// `target`: the resource a Provenance is about (`Location/{id}`, a bare id, or this
/// server's full URL).
const PARAMS: &[Param] = &[Param::new(
    "target",
    "Provenance.target",
    Target::AnyReference {
        kind: "pv.target_type",
        column: "pv.tid",
    },
)];

/// [`PROVENANCE`]'s derived table branch by branch: a search pushes its conditions into
/// each target's rows (see [`hearth_fhir::branches`]).
static BRANCHES: LazyLock<hearth_fhir::branches::Branches> = LazyLock::new(provenance::branches);

fn search(req: &Request) -> Result<Response> {
    hearth_fhir::search_branches(req, &PROVENANCE, &BRANCHES, map)
}

fn read(req: &Request) -> Result<Response> {
    hearth_fhir::read_branches(req, &PROVENANCE, &BRANCHES, req.param("id")?, map)
}

fn map(row: &Row<'_>, _: &Request, out: &mut Fields) {
    provenance::map_row(row, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::{MockHost, TestRequest};

    const ID: &str = "90cde167-0000-4000-8000-000000000001";

    /// The columns of a Provenance search's rows.
    const COLUMNS: &[&str] = &[
        "fhir_id",
        "fhir_last_updated",
        "fhir_key",
        "pid",
        "tid",
        "target_type",
        "updated",
        "org_uuid",
        "org_name",
    ];

    /// The row of AllergyIntolerance `i`'s Provenance, at paging key `key`.
    fn allergy_row(i: i64, key: i64) -> Vec<Value> {
        let id = format!("90cde167-0000-4000-8000-{i:012}");
        vec![
            id.clone().into(),
            "2024-05-06 07:08:09".into(),
            key.into(),
            id.clone().into(),
            id.into(),
            "AllergyIntolerance".into(),
            "2024-05-06 07:08:09".into(),
            "90cde167-0000-4000-8000-0000000000ff".into(),
            "Clinic".into(),
        ]
    }

    /// A system export's token: nothing confines the search.
    fn export_caller() -> hearth_sdk::request::Caller {
        hearth_sdk::request::Caller {
            role: hearth_sdk::request::Role::System,
            subject: "00000000-0000-4000-8000-0000000000aa".into(),
            username: String::new(),
            client_id: "bulk-client".into(),
            scopes: "system/*.rs".into(),
            patient: None,
        }
    }

    /// A page after a cursor reads one window when the keys so far say how sparse they
    /// are: its first window is as wide as `offset` rows over `last` keys make a page
    /// (and a quarter more), not a page's width in keys.
    #[test]
    fn a_page_after_a_cursor_sizes_its_window_from_the_rows_per_key_so_far() {
        let rows = (0..101).map(|i| allergy_row(i, 50_001 + i * 100)).collect();
        let mut host =
            MockHost::new().on_query("pv.pid AS fhir_id", Rows::from_values(COLUMNS, rows));
        // 1,000 rows at or below key 50,000: 0.02 rows a key, so 101 rows (a page of
        // 100 and the one past it) take 101 / 0.02 * 1.25 keys.
        // A system export's token: nothing confines the search.
        let request = TestRequest::get(
            "/fhir/Provenance?_count=100&_total=none&_cursor=v2.900000000.1000.a50000",
        )
        .caller(export_caller());
        let response = host.call::<FhirProvenance>(request);
        assert_eq!(response.status, 200, "{}", response.text());
        let windows: Vec<Vec<Value>> = host
            .queries()
            .into_iter()
            .filter(|(sql, _)| sql.contains("pv.pkey <= "))
            .map(|(_, params)| params)
            .collect();
        assert_eq!(windows.len(), 1, "one window holds the page");
        let params = &windows[0];
        let [hi, lo, most] = &params[params.len() - 3..] else {
            unreachable!()
        };
        assert_eq!((lo, most), (&Value::from(50_000), &Value::from(101)));
        assert_eq!(hi, &Value::from(50_000 + 6_312));
    }

    /// A page the host asks as lines (a Bulk Data export's) holds the Bundle's resources,
    /// byte for byte, one per line, and names its next page in a header.
    #[test]
    fn a_page_asked_as_lines_holds_the_bundles_resources() {
        let rows: Vec<Vec<Value>> = (0..4).map(|i| allergy_row(i, 64 * (i + 1) + 4)).collect();
        let page = |lines: bool| {
            let mut host = MockHost::new().on_query(
                "pv.pid AS fhir_id",
                Rows::from_values(COLUMNS, rows.clone()),
            );
            let mut request = TestRequest::get(
                "/fhir/Provenance?_count=3&_total=none&_cursor=v2.900000000.10.a64",
            )
            .caller(export_caller());
            if lines {
                request = request.header(hearth_sdk::request::LINES_HEADER, "1");
            }
            let response = host.call::<FhirProvenance>(request);
            assert_eq!(response.status, 200, "{}", response.text());
            response
        };
        let bundle = page(false);
        let lines = page(true);
        let header = |name: &str| {
            lines
                .headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(header(hearth_sdk::request::LINES_HEADER), Some("3"));
        let value = bundle.body_json();
        let next = value["link"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["relation"] == "next")
            .expect("a next link")["url"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            header(hearth_sdk::request::NEXT_HEADER),
            Some(next.as_str())
        );
        let text = lines.text();
        assert!(text.ends_with('\n'), "{text}");
        let got: Vec<&str> = text.lines().collect();
        assert_eq!(got.len(), 3, "{text}");
        for (line, entry) in got.iter().zip(value["entry"].as_array().unwrap()) {
            // The same bytes as the Bundle holds, and the same resource.
            assert!(bundle.text().contains(line), "{line}");
            assert_eq!(
                &serde_json::from_str::<serde_json::Value>(line).unwrap(),
                &entry["resource"]
            );
        }
    }

    #[test]
    fn a_provenance_reads_its_target() {
        let rows = Rows::from_values(
            COLUMNS,
            vec![vec![
                ID.into(),
                "2024-05-06 07:08:09".into(),
                3.into(),
                ID.into(),
                ID.into(),
                "AllergyIntolerance".into(),
                "2024-05-06 07:08:09".into(),
                "90cde167-0000-4000-8000-0000000000ff".into(),
                "Clinic".into(),
            ]],
        );
        let mut host = MockHost::new().on_query("pv.pid AS fhir_id", rows);
        let response =
            host.call::<FhirProvenance>(TestRequest::get(&format!("/fhir/Provenance/{ID}")));
        assert_eq!(response.status, 200, "{}", response.text());
        let p = response.body_json();
        assert_eq!(p["resourceType"], "Provenance");
        assert_eq!(
            p["target"][0]["reference"],
            format!("AllergyIntolerance/{ID}")
        );
        assert_eq!(p["agent"][0]["who"]["display"], "Clinic");
        assert_eq!(
            p["meta"]["profile"][0],
            "http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance"
        );
    }
}
