//! The plans SQLite makes of a page over branches (the Bulk Data export's pages and every
//! unfiltered FHIR page of Observation, Condition, MedicationRequest and Provenance): on
//! the schema of the host's migrations, each branch reads one range of its own key, in
//! key order, and sorts nothing. A branch that sorts reads every row of its kind on every
//! page, and an export of it grows with the square of its rows (migration 0600). A count
//! reads the branches' rows without computing their columns.

use std::collections::BTreeMap;

use hearth_fhir::branches::{Branches, Page};
use hearth_fhir::search::{Seek, Sql};
use hearth_fhir::{provenance, tables};

/// An empty database with the host's SQLite migrations applied, in order.
fn schema() -> rusqlite::Connection {
    let db = rusqlite::Connection::open_in_memory().expect("an in-memory database");
    // As the host opens a site's connections: plans never depend on bound values.
    db.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .expect("the query planner stability guarantee");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations/sqlite");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the migrations folder")
        .map(|entry| entry.expect("a migration").path())
        .filter(|path| path.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    for file in files {
        let sql = std::fs::read_to_string(&file).expect("a migration's text");
        db.execute_batch(&sql)
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    }
    db
}

/// One line of `EXPLAIN QUERY PLAN`: its parent's id and its text.
struct Step {
    parent: i64,
    detail: String,
}

fn plan(db: &rusqlite::Connection, statement: &str, params: usize) -> BTreeMap<i64, Step> {
    let mut stmt = db
        .prepare(&format!("EXPLAIN QUERY PLAN {statement}"))
        .unwrap_or_else(|e| panic!("{e}: {statement}"));
    let nulls = vec![rusqlite::types::Null; params];
    let rows = stmt
        .query_map(rusqlite::params_from_iter(nulls), |row| {
            Ok((
                row.get::<_, i64>(0)?,
                Step {
                    parent: row.get(1)?,
                    detail: row.get(3)?,
                },
            ))
        })
        .expect("the plan");
    rows.map(|row| row.expect("a plan line")).collect()
}

/// Checks every branch of `branches` in a page after a key: each branch's co-routine
/// (`b{i}`) first searches its key's range and never sorts.
fn check(db: &rusqlite::Connection, name: &str, branches: &Branches) {
    let mut sql = Sql::default();
    let pushed = branches.push(&mut sql).expect("no conditions to place");
    let page = Page {
        bound: Some(1 << 40),
        seek: Some(Seek::After(1 << 20)),
        limit: Some(1000),
        bind_limit: true,
    };
    let from = pushed.from_clause(page, &mut sql);
    let (statement, params) =
        hearth_fhir::branches::compact(&format!("SELECT 1 FROM {from}"), &sql.params);
    let steps = plan(db, &statement, params.len());
    let mut seen = 0;
    for (i, branch) in branches.branches.iter().enumerate() {
        let name_of = format!("CO-ROUTINE b{i}");
        let Some((&id, _)) = steps.iter().find(|(_, s)| s.detail == name_of) else {
            continue;
        };
        seen += 1;
        let children: Vec<&str> = steps
            .values()
            .filter(|s| s.parent == id)
            .map(|s| s.detail.as_str())
            .collect();
        let first = children.first().copied().unwrap_or_default();
        let table = branch
            .key
            .split('.')
            .next()
            .expect("a key names its table's alias");
        assert!(
            first.starts_with(&format!("SEARCH {table} ")) && first.contains(">?"),
            "{name} branch {i} (key {}) does not start from a range of its key: {children:?}",
            branch.key
        );
        assert!(
            !children.contains(&"USE TEMP B-TREE FOR ORDER BY"),
            "{name} branch {i} (key {}) sorts its rows: {children:?}",
            branch.key
        );
    }
    assert_eq!(
        seen,
        branches.branches.len(),
        "{name}: a co-routine per branch"
    );

    // A count reads each branch's rows, never its output columns: no correlated
    // subquery (a row's version, a vital sign's encounter) runs per row counted.
    let mut sql = Sql::default();
    let pushed = branches.push(&mut sql).expect("no conditions to place");
    let counts = pushed
        .count_clause(Some(1 << 40), &mut sql)
        .expect("no condition stays outside");
    let (statement, params) = hearth_fhir::branches::compact(
        &format!("SELECT CAST(SUM(n) AS BIGINT) AS n, MAX(hi) AS hi FROM {counts}"),
        &sql.params,
    );
    let steps = plan(db, &statement, params.len());
    let correlated: Vec<&str> = steps
        .values()
        .map(|s| s.detail.as_str())
        .filter(|d| d.contains("CORRELATED"))
        .collect();
    assert!(
        correlated.is_empty(),
        "{name}: the count runs subqueries per row: {correlated:?}"
    );
}

#[test]
fn every_branch_of_a_page_reads_one_range_of_its_key() {
    let db = schema();
    check(&db, "Observation", &tables::observation_branches());
    check(&db, "Condition", &tables::condition_branches());
    check(
        &db,
        "MedicationRequest",
        &tables::medication_request_branches(),
    );
    check(&db, "Provenance", &provenance::branches());
}
