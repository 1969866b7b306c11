//! Rows linked to each row of a search page (a report's results, a care team's members),
//! read for many page rows at once. A query per resource made a Bulk Data export page of
//! 2,500 DiagnosticReports 5,000 round trips to the database (docs/benchmarks.md); now the
//! first row of a page asks for the links of up to [`AHEAD`] rows from it on, in
//! statements of [`CHUNK`] keys each, and the rows after it find theirs already read.
//!
//! What was read is kept for one result only ([`Rows::serial`]), so a later request never
//! sees links read for an earlier one.

use std::cell::RefCell;
use std::collections::HashMap;

use hearth_sdk::store::{self, Row, Rows, Value, ValueRef};

/// How many page rows' links one read asks for.
const AHEAD: usize = 2_500;

/// How many keys one statement binds; the last statement of a read repeats its last key
/// up to this many, so every read runs the same statement text (prepared once).
const CHUNK: usize = 250;

/// A statement reading the rows linked to page rows, by a key of the page row.
pub struct Linked {
    /// The statement: its first column, `fhir_parent`, is the key of the page row a
    /// linked row belongs to, and `{keys}` stands for the list of keys asked for
    /// (`WHERE m.care_team_id IN ({keys})`); it binds nothing else. Its order is kept
    /// among each page row's linked rows.
    sql: &'static str,
    /// The page row's column holding the key.
    column: &'static str,
}

/// What one [`Linked`] read last.
struct Read {
    /// The page's [`Rows::serial`].
    serial: u64,
    /// The page rows the read asked for (their indexes).
    asked: std::ops::Range<usize>,
    /// The linked rows of every statement of the read.
    rows: Vec<Rows>,
    /// Each key's linked rows: (statement, row) positions in `rows`, in order.
    by_key: HashMap<String, Vec<(usize, usize)>>,
}

thread_local! {
    /// Each [`Linked`]'s last read, by the addresses of its statement and column texts
    /// (hashed as two words, not the statement's few hundred bytes, on every call; a plugin
    /// instance runs one request at a time).
    static READS: RefCell<HashMap<(usize, usize), Read>> = RefCell::new(HashMap::new());
}

/// A key as the map holds it: integers and text alike as text; `None` for `NULL`.
fn key_text(value: ValueRef<'_>) -> Option<String> {
    match value {
        ValueRef::Integer(i) => Some(itoa::Buffer::new().format(i).to_owned()),
        ValueRef::Text(s) => Some(s.to_owned()),
        ValueRef::Real(r) => Some(r.to_string()),
        ValueRef::Null | ValueRef::Blob(_) => None,
    }
}

/// A key as a bound value.
fn key_value(value: ValueRef<'_>) -> Option<Value> {
    match value {
        ValueRef::Integer(i) => Some(Value::Integer(i)),
        ValueRef::Text(s) => Some(Value::Text(s.to_owned())),
        ValueRef::Real(r) => Some(Value::Real(r)),
        ValueRef::Null | ValueRef::Blob(_) => None,
    }
}

impl Linked {
    /// `sql` (see the field) over the page rows' `column`.
    pub const fn new(sql: &'static str, column: &'static str) -> Linked {
        Linked { sql, column }
    }

    /// Calls `each` with every row linked to `row`, in the statement's order. A failed
    /// statement gives no linked rows (as a failed query per row did).
    pub fn each(&self, row: &Row<'_>, mut each: impl FnMut(Row<'_>)) {
        let Some(key) = key_text(row.get(self.column)) else {
            return;
        };
        READS.with(|reads| {
            let mut reads = reads.borrow_mut();
            let read = reads
                .entry((self.sql.as_ptr() as usize, self.column.as_ptr() as usize))
                .and_modify(|read| {
                    if read.serial != row.rows().serial() || !read.asked.contains(&row.index()) {
                        *read = self.read(row);
                    }
                })
                .or_insert_with(|| self.read(row));
            for &(statement, i) in read.by_key.get(&key).into_iter().flatten() {
                if let Some(linked) = read.rows[statement].get(i) {
                    each(linked);
                }
            }
        });
    }

    /// Reads the links of `row` and of the page rows after it, up to [`AHEAD`].
    fn read(&self, row: &Row<'_>) -> Read {
        let page = row.rows();
        let asked = row.index()..page.len().min(row.index() + AHEAD);
        let mut keys: Vec<Value> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for i in asked.clone() {
            let Some(value) = page.get(i).map(|r| r.get(self.column)) else {
                continue;
            };
            if let (Some(text), Some(bound)) = (key_text(value), key_value(value))
                && seen.insert(text)
            {
                keys.push(bound);
            }
        }
        let marks: Vec<String> = (1..=CHUNK).map(|i| format!("${i}")).collect();
        let sql = self.sql.replace("{keys}", &marks.join(", "));
        let mut read = Read {
            serial: page.serial(),
            asked,
            rows: Vec::new(),
            by_key: HashMap::new(),
        };
        for chunk in keys.chunks(CHUNK) {
            let mut params = chunk.to_vec();
            let last = chunk[chunk.len() - 1].clone();
            params.resize(CHUNK, last);
            let Ok(rows) = store::query(&sql, &params) else {
                continue;
            };
            let statement = read.rows.len();
            for (i, linked) in rows.iter().enumerate() {
                if let Some(parent) = key_text(linked.get("fhir_parent")) {
                    read.by_key.entry(parent).or_default().push((statement, i));
                }
            }
            read.rows.push(rows);
        }
        read
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_sdk::testing::MockHost;

    const MEMBERS: Linked = Linked::new(
        "SELECT team AS fhir_parent, name FROM members WHERE team IN ({keys}) ORDER BY id",
        "team_id",
    );

    #[test]
    fn a_pages_linked_rows_are_read_once_and_given_to_each_row_in_order() {
        let page = Rows::from_values(
            &["team_id"],
            vec![
                vec![Value::Integer(1)],
                vec![Value::Integer(2)],
                vec![Value::Null],
                vec![Value::Integer(1)],
                vec![Value::Integer(3)],
            ],
        );
        let linked = Rows::from_values(
            &["fhir_parent", "name"],
            [(1, "a"), (3, "b"), (1, "c")]
                .iter()
                .map(|(team, name)| vec![Value::Integer(*team), Value::from(*name)])
                .collect(),
        );
        let mut host = MockHost::new().on_query("FROM members", linked);
        let names: Vec<Vec<String>> = host.run(|| {
            page.iter()
                .map(|row| {
                    let mut names = Vec::new();
                    MEMBERS.each(&row, |m| names.push(m.text("name").unwrap().to_owned()));
                    names
                })
                .collect()
        });
        assert_eq!(
            names,
            [vec!["a", "c"], vec![], vec![], vec!["a", "c"], vec!["b"]]
        );
        let queries = host.queries();
        assert_eq!(queries.len(), 1, "one statement for the page");
        let (sql, params) = &queries[0];
        assert!(
            sql.contains("IN ($1, $2, $3, ") && sql.contains(&format!("${CHUNK})")),
            "{sql}"
        );
        assert_eq!(params.len(), CHUNK, "the keys, the last repeated");
        assert_eq!(
            &params[..3],
            [Value::Integer(1), Value::Integer(2), Value::Integer(3)]
        );
        assert!(params[3..].iter().all(|p| *p == Value::Integer(3)));

        // Another result (a later request) reads again, even for the same keys.
        let again = Rows::from_values(&["team_id"], vec![vec![Value::Integer(1)]]);
        host.run(|| MEMBERS.each(&again.get(0).unwrap(), |_| {}));
        assert_eq!(host.queries().len(), 2);
    }
}
