//! Query plans of FHIR search (issue 15: "searches over 100k patients use indexes"), on
//! SQLite and PostgreSQL, through the real server.
//!
//! Every search parameter every patient-data type declares in the CapabilityStatement is
//! searched once with a value of its kind; the SQL the plugins ran for it (read from the
//! site's SQL gate, which has checked each statement) is then `EXPLAIN`ed: SQLite's
//! `EXPLAIN QUERY PLAN`, PostgreSQL's `EXPLAIN` of the generic plan with
//! `enable_seqscan = off` (the test's tables are small, and on a small table the planner
//! rightly prefers a sequential scan; switched off, it still scans when no index serves
//! the condition, and that is what the test catches). A full scan of a table that grows
//! with the patients (a `SCAN`, a `Seq Scan`, an index walked without a condition, or only
//! the paging bound on the row key) fails the test, except for the parameters listed in
//! [`KNOWN_SCANS`], each with its reason. The table of plans is printed (`--nocapture`)
//! for docs/benchmarks.md. A plan counts as indexed when an index condition bounds the
//! rows read; a condition on a value most rows share (`lists.type`, a category) is one,
//! and still reads those rows.

use std::collections::{BTreeMap, HashSet};

use hearth::db::Db;
use hearth::db::store::SqlValue;
use hearth_tests::fhir::fhir;
use hearth_tests::{Backend, TestApp, both};

const SCOPES: &str = "openid api:fhir api:oemr user/Patient.rs user/Encounter.rs \
    user/Observation.rs user/Condition.rs user/AllergyIntolerance.rs \
    user/MedicationRequest.rs user/Procedure.rs user/Provenance.rs";

/// The types whose rows grow with the patients.
const TYPES: &[&str] = &[
    "Patient",
    "Encounter",
    "Observation",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "Procedure",
    "Provenance",
];

/// The tables that grow with the patients, and the aliases the FHIR plugins give them.
const LARGE: &[(&str, &[&str])] = &[
    ("patient_data", &["p"]),
    ("form_encounter", &["fe"]),
    ("form_vitals", &["v"]),
    ("forms", &["fo"]),
    ("lists", &["l"]),
    ("issue_encounter", &["ie"]),
    ("history_data", &["h"]),
    ("folded_text", &["ft"]),
    // The versions a vital sign and an encounter diagnosis read (migration 0462).
    ("form_vitals_history", &["vv", "fv"]),
    ("issue_encounter_history", &["iv"]),
];

/// Parameters whose SQL may scan a large table, and why (docs/benchmarks.md lists them).
const KNOWN_SCANS: &[(&str, &str, &str)] = &[
    // Observation is a UNION ALL of one branch per vital sign, smoking status and
    // laboratory results (`hearth_fhir::tables::OBSERVATIONS`), searched with each
    // condition pushed into each branch (`hearth_fhir::branches`): a category, a code or a
    // status is a constant per branch, so the branches it excludes are left out of the
    // SQL, and in those kept it matches every row. The count reads all of them (there is
    // no condition left for an index to hold) and a page reads each kept branch in key
    // order from the paging bound, at most a page of rows per branch. A count of every
    // row of a branch is a walk of all of them, whatever it walks: an index-only count
    // over a narrow (partial) index reads fewer pages but is still bounded only by the
    // paging bound, which is what this test calls a scan, so it stays here.
    (
        "Observation",
        "category",
        "vital-signs is every row of the twelve vital-sign branches",
    ),
    (
        "Observation",
        "code",
        "only the code's branch is read, and every row of it matches",
    ),
    (
        "Observation",
        "status",
        "final is every vital sign and smoking status",
    ),
];

/// A value of the parameter's kind that makes a real condition (a token's code the
/// column knows, a reference's id).
fn value(name: &str, kind: &str, patient: &str) -> String {
    match (name, kind) {
        ("_id", _) => patient.to_owned(),
        ("gender", _) => "female".to_owned(),
        ("clinical-status", _) => "active".to_owned(),
        ("verification-status", _) => "confirmed".to_owned(),
        ("category", _) => "vital-signs".to_owned(),
        ("status", _) => "final".to_owned(),
        ("intent", _) => "plan".to_owned(),
        ("code", _) => "8867-4".to_owned(),
        (_, "string") => "smi".to_owned(),
        (_, "token") => "x".to_owned(),
        (_, "date") => "2020-01-01".to_owned(),
        (_, "reference") => patient.to_owned(),
        _ => "x".to_owned(),
    }
}

/// The number of `$n` placeholders in `sql`.
fn placeholders(sql: &str) -> usize {
    let bytes = sql.as_bytes();
    let mut most = 0;
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let digits: String = sql[i + 1..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = digits.parse::<usize>() {
                most = most.max(n);
            }
        }
        i += 1;
    }
    most
}

/// The plan of `sql` on the site's database, one line per row.
async fn explain(app: &TestApp, sql: &str) -> Vec<String> {
    let site = app.state.sites.get("default").await.expect("the site");
    let n = placeholders(sql);
    match &site.db {
        Db::Sqlite(..) => {
            let nodes: Vec<(i64, i64, String)> = site
                .db
                .read(
                    &format!("EXPLAIN QUERY PLAN {sql}"),
                    vec![SqlValue::Null; n],
                )
                .await
                .expect("EXPLAIN QUERY PLAN")
                .into_iter()
                .map(|row| match (row.first(), row.get(1), row.get(3)) {
                    (
                        Some(SqlValue::Integer(id)),
                        Some(SqlValue::Integer(parent)),
                        Some(SqlValue::Text(detail)),
                    ) => (*id, *parent, detail.clone()),
                    other => panic!("a plan row: {other:?}"),
                })
                .collect();
            sqlite_lines(&nodes)
        }
        Db::Postgres(pool) => {
            use sqlx::Row;
            let mut tx = pool.begin().await.expect("begin");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
                "SET LOCAL enable_seqscan = off; SET LOCAL plan_cache_mode = force_generic_plan; \
                 PREPARE fhir_plan AS {sql}"
            )))
            .execute(&mut *tx)
            .await
            .expect("PREPARE");
            let nulls = vec!["NULL"; n].join(", ");
            let call = if n == 0 {
                "EXPLAIN EXECUTE fhir_plan".to_owned()
            } else {
                format!("EXPLAIN EXECUTE fhir_plan({nulls})")
            };
            let rows = sqlx::raw_sql(sqlx::AssertSqlSafe(call))
                .fetch_all(&mut *tx)
                .await
                .expect("EXPLAIN");
            sqlx::raw_sql("DEALLOCATE fhir_plan")
                .execute(&mut *tx)
                .await
                .expect("DEALLOCATE");
            tx.rollback().await.expect("rollback");
            rows.iter()
                .map(|row| row.try_get::<String, _>(0).expect("a plan line"))
                .collect()
        }
    }
}

/// SQLite's plan nodes (id, parent, detail) as lines, a scan of a subquery's rows told
/// from a scan of a table: `SCAN v` after `CO-ROUTINE v` or `MATERIALIZE v` (a subquery
/// under the alias a table has inside it, as Observation's vital signs read together
/// name their rows) reads the subquery's rows, whose own plan is listed under it, unless
/// the scan lies inside that subquery. Such a scan becomes `SCAN SUBQUERY v`.
fn sqlite_lines(nodes: &[(i64, i64, String)]) -> Vec<String> {
    let parent = |id: i64| nodes.iter().find(|(i, _, _)| *i == id).map(|(_, p, _)| *p);
    let inside = |mut id: i64, ancestor: i64| {
        while let Some(up) = parent(id) {
            if up == ancestor {
                return true;
            }
            id = up;
        }
        false
    };
    nodes
        .iter()
        .map(|(id, _, detail)| {
            let Some(name) = detail.strip_prefix("SCAN ") else {
                return detail.clone();
            };
            let subquery = nodes.iter().any(|(sub, _, d)| {
                (d.strip_prefix("CO-ROUTINE ") == Some(name)
                    || d.strip_prefix("MATERIALIZE ") == Some(name))
                    && !inside(*id, *sub)
            });
            if subquery {
                format!("SCAN SUBQUERY {name}")
            } else {
                detail.clone()
            }
        })
        .collect()
}

/// The large tables `plan` reads whole.
fn scans(backend: Backend, plan: &[String]) -> Vec<String> {
    let large = |name: &str| {
        LARGE
            .iter()
            .find(|(table, aliases)| *table == name || aliases.contains(&name))
            .map(|(table, _)| (*table).to_owned())
    };
    let mut out = Vec::new();
    match backend {
        Backend::Sqlite => {
            for line in plan {
                let mut words = line.split_whitespace();
                let (Some(verb), Some(name)) = (words.next(), words.next()) else {
                    continue;
                };
                let Some(table) = large(name) else { continue };
                // A whole scan, or a walk of the row key bounded only by the paging bound.
                let whole = verb == "SCAN"
                    || (verb == "SEARCH"
                        && (line.ends_with("(rowid<?)") || line.ends_with("(rowid>?)")));
                if whole {
                    out.push(table);
                }
            }
        }
        Backend::Postgres => {
            for (i, line) in plan.iter().enumerate() {
                let node = line.trim_start().trim_start_matches("->").trim_start();
                let on = node.split(" on ").nth(1).and_then(|rest| {
                    let mut words = rest.split_whitespace();
                    let table = words.next()?;
                    Some((table.to_owned(), words.next().unwrap_or("").to_owned()))
                });
                let Some((table, alias)) = on else { continue };
                let Some(table) = large(&table).or_else(|| large(&alias)) else {
                    continue;
                };
                if node.starts_with("Seq Scan") {
                    out.push(table);
                } else if node.starts_with("Index Scan") || node.starts_with("Index Only Scan") {
                    // The node's own properties follow it, more indented, up to the next node.
                    let cond = plan[i + 1..]
                        .iter()
                        .take_while(|l| !l.trim_start().starts_with("->"))
                        .find_map(|l| l.trim_start().strip_prefix("Index Cond: "));
                    let bound_only = cond.is_some_and(|c| {
                        let c = c.trim_matches(|ch| ch == '(' || ch == ')');
                        !c.contains(" AND ") && c.contains(" <= $")
                    });
                    if cond.is_none() || bound_only {
                        out.push(table);
                    }
                }
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

both! {
    async fn every_search_parameter_of_the_patient_data_types_uses_an_index(app) {
        let site = app.state.sites.get("default").await.expect("the site");
        let options = hearth_demo::SeedOptions { patients: 12, seed: 3, batch: 12 };
        hearth::cli::seed_demo(&site, &options, |_, _| {}).await.expect("seeding");
        let token = app.user_token("default", "admin", SCOPES).await;
        let patient = app
            .rows("default", "SELECT CAST(uuid AS TEXT) AS uuid FROM patient_data ORDER BY id LIMIT 1")
            .await[0]["uuid"]
            .as_str()
            .expect("a patient")
            .to_owned();
        let statement = app
            .send(reqwest::Method::GET, &fhir(app, "default", "/metadata"), None, None)
            .await
            .json;
        let backend = app.backend;
        let mut table: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        let mut seen: HashSet<String> = site.gate.allowed_statements().into_iter().collect();
        for resource in statement["rest"][0]["resource"].as_array().expect("resources") {
            let kind = resource["type"].as_str().expect("type");
            if !TYPES.contains(&kind) {
                continue;
            }
            for param in resource["searchParam"].as_array().into_iter().flatten() {
                let name = param["name"].as_str().expect("name");
                let v = value(name, param["type"].as_str().expect("type"), &patient);
                // The values need no percent-encoding.
                let url = fhir(app, "default", &format!("/{kind}?{name}={v}"));
                let reply = app.get(&url, &token).await;
                assert_eq!(reply.status, 200, "{kind}?{name}={v}: {}", reply.text);
                let ran: Vec<String> = site
                    .gate
                    .allowed_statements()
                    .into_iter()
                    .filter(|sql| !seen.contains(sql))
                    .collect();
                let mut found = Vec::new();
                for sql in &ran {
                    let plan = explain(app, sql).await;
                    found.extend(scans(backend, &plan));
                    if std::env::var_os("FHIR_PLANS_VERBOSE").is_some() {
                        println!("{kind}?{name}={v}\n{sql}\n  {}", plan.join("\n  "));
                    }
                }
                found.sort();
                found.dedup();
                seen.extend(ran);
                table.insert((kind.to_owned(), name.to_owned()), found);
            }
        }
        assert!(table.len() > 50, "every parameter was searched: {}", table.len());
        // OpenEMR's own name for the general practitioner (§8.2) is planned like FHIR's.
        assert!(
            table.contains_key(&("Patient".to_owned(), "generalPractitioner".to_owned())),
            "Patient?generalPractitioner is declared and searched"
        );
        let mut failures = Vec::new();
        println!("| type | parameter | {backend:?} |\n|---|---|---|");
        for ((kind, name), found) in &table {
            let known = KNOWN_SCANS.iter().find(|(t, p, _)| t == kind && p == name);
            let cell = if found.is_empty() {
                "index".to_owned()
            } else {
                format!("scans {}", found.join(", "))
            };
            println!("| {kind} | `{name}` | {cell} |");
            if !found.is_empty() && known.is_none() {
                failures.push(format!("{kind}?{name} scans {}", found.join(", ")));
            }
        }
        assert!(failures.is_empty(), "full scans of large tables:\n{}", failures.join("\n"));
    }
}

#[test]
fn placeholders_are_counted() {
    assert_eq!(placeholders("a = $1 AND b < $12 AND c = '$x'"), 12);
    assert_eq!(placeholders("SELECT 1"), 0);
}

#[test]
fn a_scan_of_a_subquerys_rows_is_not_a_scan_of_its_table() {
    let node = |id: i64, parent: i64, detail: &str| (id, parent, detail.to_owned());
    // Observation's vital signs read together: the rows (`v`) found by the patient's
    // index, then scanned as the subquery's rows.
    let lines = sqlite_lines(&[
        node(2, 0, "CO-ROUTINE f0"),
        node(3, 2, "CO-ROUTINE v"),
        node(
            4,
            3,
            "SEARCH p USING INDEX sqlite_autoindex_patient_data_1 (uuid=?)",
        ),
        node(
            5,
            3,
            "SEARCH v USING INDEX form_vitals_pid (pid=? AND rowid<?)",
        ),
        node(6, 2, "MATERIALIZE s"),
        node(7, 2, "SCAN v"),
        node(8, 2, "SCAN s"),
    ]);
    assert_eq!(lines[5], "SCAN SUBQUERY v");
    assert!(scans(Backend::Sqlite, &lines).is_empty(), "{lines:?}");
    // The table scanned inside the subquery is a scan.
    let lines = sqlite_lines(&[
        node(2, 0, "CO-ROUTINE v"),
        node(3, 2, "SCAN v"),
        node(4, 0, "SCAN v"),
    ]);
    assert_eq!(scans(Backend::Sqlite, &lines), ["form_vitals"]);
    assert_eq!(lines[1], "SCAN v");
}

#[test]
fn scans_are_told_from_index_searches() {
    let lines = |text: &str| text.lines().map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        scans(
            Backend::Sqlite,
            &lines("SCAN p\nSEARCH u USING INTEGER PRIMARY KEY (rowid=?)")
        ),
        ["patient_data"]
    );
    assert_eq!(
        scans(
            Backend::Sqlite,
            &lines("SEARCH p USING INTEGER PRIMARY KEY (rowid<?)\nSCAN u")
        ),
        ["patient_data"],
        "the paging bound alone, and users is small"
    );
    assert!(
        scans(
            Backend::Sqlite,
            &lines("SEARCH p USING INDEX patient_data_sex (sex=? AND rowid<?)")
        )
        .is_empty()
    );
    let pg = lines(
        "Limit\n  ->  Index Scan using patient_data_pkey on patient_data p\n        Index Cond: (id <= $2)\n        Filter: (sex = $1)\n  ->  Seq Scan on users u",
    );
    assert_eq!(scans(Backend::Postgres, &pg), ["patient_data"]);
    let pg = lines(
        "Limit\n  ->  Index Scan using patient_data_sex on patient_data p\n        Index Cond: (sex = $1)\n        Filter: (id <= $2)",
    );
    assert!(scans(Backend::Postgres, &pg).is_empty());
    assert_eq!(
        scans(Backend::Postgres, &lines("Seq Scan on form_vitals v")),
        ["form_vitals"]
    );
}
