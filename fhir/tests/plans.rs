//! The plans SQLite makes of a page over branches (the Bulk Data export's pages and every
//! unfiltered FHIR page of Observation, Condition, MedicationRequest and Provenance): on
//! the schema of the host's migrations, each branch reads one range of its own key, in
//! key order, and sorts nothing. A branch that sorts reads every row of its kind on every
//! page, and an export of it grows with the square of its rows (migration 0600). Branches
//! read together (Observation's vital signs, and Provenance's of them) read one range of
//! their rows' key the same way. A count reads the branches' rows without computing
//! their columns.

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
    let children_of = |id: i64| -> Vec<&str> {
        steps
            .values()
            .filter(|s| s.parent == id)
            .map(|s| s.detail.as_str())
            .collect()
    };
    let find = |detail: &str, parent: Option<i64>| {
        steps
            .iter()
            .find(|(_, s)| s.detail == detail && parent.is_none_or(|p| s.parent == p))
            .map(|(&id, _)| id)
    };
    let mut seen = 0;
    for (i, branch) in branches.branches.iter().enumerate() {
        let table = branch
            .key
            .split('.')
            .next()
            .expect("a key names its table's alias");
        // Members read together (an unfiltered page keeps them alike): their rows, a
        // subquery under the key's alias inside `f{first member}`, are the range of the
        // key, unsorted; the slots of those rows (a page's rows and two, each row's
        // slots) are what the group's co-routine sorts.
        let group = branches.fused.iter().find(|f| f.members.contains(&i));
        let id = match group {
            Some(f) => {
                let Some(outer) = find(&format!("CO-ROUTINE f{}", f.members.start), None) else {
                    continue;
                };
                [
                    format!("CO-ROUTINE {table}"),
                    format!("MATERIALIZE {table}"),
                ]
                .iter()
                .find_map(|d| find(d, Some(outer)))
                .unwrap_or_else(|| {
                    panic!(
                        "{name}: the rows of group f{} are a subquery",
                        f.members.start
                    )
                })
            }
            None => match find(&format!("CO-ROUTINE b{i}"), None) {
                Some(id) => id,
                None => continue,
            },
        };
        seen += 1;
        let children = children_of(id);
        let first = children.first().copied().unwrap_or_default();
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
        "{name}: a co-routine per branch (or group read together)"
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
