//! Search over a derived table that is a `UNION ALL` of branches (Observation, Condition,
//! MedicationRequest, Provenance), with each condition pushed into each branch so the branch's own indexes serve it.
//!
//! A condition on the derived table's computed column (`o.oid = $1`) cannot use an index:
//! the database computes the column for every row of every branch, then compares. Here
//! each condition is rewritten per branch, the column replaced by the branch's own
//! expression, so an index on that expression (or on the column it reads) bounds the rows
//! the branch reads:
//!
//! - a column that is a constant in a branch (Observation's category, code, status) makes
//!   the condition a constant there: it is evaluated once per search (one statement
//!   without tables), and a branch where it fails is left out of the SQL;
//! - an id derived from a row's uuid ([`Narrow::Uuid`]) is narrowed to the row's uuid
//!   (its unique index): a branch whose slot digit the id does not carry is left out;
//! - a column found through other tables (a vital sign's encounter) is narrowed with an
//!   indexed condition ([`Narrow::In`]) before the exact comparison;
//! - the paging bounds on the derived key (`okey <= bound`, `okey > last`) become bounds
//!   on the branch's own integer key, and a page reads at most a page of rows per branch
//!   in key order before the rows are merged.
//!
//! The result is the same rows as the condition over the whole derived table: every
//! condition is still applied, exactly, to every branch that is kept.

use hearth_sdk::request::is_uuid;
use hearth_sdk::{Result, Value, store};

use crate::search::{Seek, Sql};

/// How an equality on a column may be narrowed to an indexed condition of the branch.
#[derive(Debug, Clone, Copy)]
pub enum Narrow {
    /// No narrowing: the substituted condition is all (an expression index may serve it).
    None,
    /// The column is the text of the uuid column `column`, with its 15th character (the
    /// version digit) replaced by `slot` when there is one: an id matches only when it
    /// carries the slot, and then only the row whose uuid is the id with any digit there.
    Uuid {
        /// The uuid column, e.g. `v.uuid`.
        column: &'static str,
        /// The slot digit the id carries (`b'1'`), or `None` for the uuid itself.
        slot: Option<u8>,
    },
    /// `template` with `{}` replaced by the compared values' placeholders: an indexed
    /// condition every row whose column equals one of the values meets (the exact
    /// comparison follows it).
    In(&'static str),
    /// The column is `COALESCE` of columns of several tables: a row meets a condition on
    /// it only if one of those columns does (the value is one of them, or `NULL` as they
    /// all are). `key IN (…)` over the rows each source finds with the condition on its
    /// column (an index of that column), before the exact condition.
    Sources {
        /// The branch's row key, e.g. `r.procedure_result_id`.
        key: &'static str,
        /// Each source: a `SELECT` of row keys whose `{}` takes the condition, and the
        /// column standing for the derived one in it.
        sources: &'static [(&'static str, &'static str)],
    },
    /// A function of one compared id: the indexed condition of the row that may carry it
    /// (its values bound into the `Sql`), or `None` when no row of the branch can.
    Parse(fn(&str, &mut Sql) -> Option<String>),
}

/// One output column of a branch.
#[derive(Debug, Clone)]
pub struct Column {
    /// The derived table's column name, e.g. `oid`.
    pub name: &'static str,
    /// The branch's expression for it (ignored when `constant`).
    pub expr: String,
    /// The branch's constant value for it: `Some(Some(text))`, `Some(None)` for `NULL`.
    pub constant: Option<Option<&'static str>>,
    /// How an equality on it narrows.
    pub narrow: Narrow,
}

impl Column {
    /// A column computed by `expr`.
    pub fn expr(name: &'static str, expr: impl Into<String>) -> Column {
        Column {
            name,
            expr: expr.into(),
            constant: None,
            narrow: Narrow::None,
        }
    }

    /// A column holding the same text on every row of the branch (`None`: `NULL`).
    pub fn constant(name: &'static str, value: Option<&'static str>) -> Column {
        Column {
            name,
            expr: String::new(),
            constant: Some(value),
            narrow: Narrow::None,
        }
    }

    /// The column with its narrowing.
    pub fn narrow(mut self, narrow: Narrow) -> Column {
        self.narrow = narrow;
        self
    }

    fn sql(&self) -> String {
        match self.constant {
            Some(Some(text)) => format!("CAST('{}' AS TEXT)", text.replace('\'', "''")),
            Some(None) => "CAST(NULL AS TEXT)".to_owned(),
            None => format!("({})", self.expr),
        }
    }
}

/// One branch of the derived table.
#[derive(Debug, Clone)]
pub struct Branch {
    /// The branch's `SELECT … FROM …` (every output column), without `WHERE`.
    pub select: String,
    /// The condition a row meets to be in the branch.
    pub when: String,
    /// The columns conditions may name, with the branch's expressions.
    pub columns: Vec<Column>,
    /// The branch's integer row key (`v.id`): the derived key is `key * stride + offset`.
    pub key: String,
    /// See `key`.
    pub stride: i64,
    /// See `key`.
    pub offset: i64,
}

impl Branch {
    /// The column named `name`, if the branch lists it.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name == name)
    }
}

/// A derived table as its branches: `(b1 UNION ALL b2 …) alias` followed by `rest`
/// (joins after the derived table, e.g. Provenance's author organization).
#[derive(Debug, Clone)]
pub struct Branches {
    /// The derived table's alias, e.g. `o`.
    pub alias: &'static str,
    /// The branches, in order.
    pub branches: Vec<Branch>,
    /// What follows the derived table in the `FROM` clause (empty, or ` LEFT JOIN …`).
    pub rest: String,
    /// Branches that are slots of one row, read together where they can be.
    pub fused: Vec<Fused>,
}

/// Branches that read the same rows of one table, each row giving at most one row per
/// branch (its slot): Observation's vital signs, twelve measurements of a `form_vitals`
/// row. Read as branches, a page reads each row once per branch, and computes once per
/// branch what the branches share (the patient, the version, the encounter). A page
/// that keeps every member alike (the same conditions in each, none at all in an
/// unfiltered page or a bulk export's) reads each row once instead: the rows in key
/// order with the shared columns, then each row joined to the slots it holds.
///
/// The result is the members' rows: the same columns, computed by the same expressions,
/// in the same key order.
#[derive(Debug, Clone)]
pub struct Fused {
    /// The members: branches `members` of [`Branches::branches`], each with the same
    /// `key` and `stride`, their offsets the slots (`0 ≤ offset < stride`).
    pub members: std::ops::Range<usize>,
    /// The rows with what the members share: `SELECT …, shared AS name FROM …` over the
    /// members' `FROM` (their aliases), without `WHERE`; the members' conditions apply.
    pub rows: String,
    /// The members' columns over `{rows}` (the rows, under the members' key's alias)
    /// joined to the slots they hold: `SELECT … FROM {rows} JOIN (…) s ON …`.
    pub select: String,
    /// A row's slot in `select`: the member's offset, e.g. `s.n`.
    pub slot: String,
}

/// The conditions of a search placed: per kept branch, its own conditions, and those
/// left on the derived table.
#[derive(Debug, Clone)]
pub struct Pushed<'a> {
    branches: &'a Branches,
    kept: Vec<(usize, Vec<String>)>,
    /// The conditions applied to the derived table as a whole (those naming a column
    /// some branch does not list).
    pub outer: Vec<String>,
}

/// Where a branch's page lies: the derived key's bounds and how many rows to read.
#[derive(Debug, Clone, Copy, Default)]
pub struct Page {
    /// The largest derived key.
    pub bound: Option<i64>,
    /// The derived key the rows come after or before.
    pub seek: Option<Seek>,
    /// Read at most this many rows of each branch, in key order (descending when seeking
    /// before a key).
    pub limit: Option<u64>,
    /// Bind `limit` as a parameter instead of writing it: for the windows of a page,
    /// whose limits change from one window to the next (see [`Pushed::from_clause`]).
    pub bind_limit: bool,
}

/// The columns of `alias` that `condition` names (`o.oid` → `oid`), each once.
fn named_columns<'c>(alias: &str, condition: &'c str) -> Vec<&'c str> {
    let mut out = Vec::new();
    for (at, _) in condition.match_indices(&format!("{alias}.")) {
        let before = condition[..at].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            continue;
        }
        let rest = &condition[at + alias.len() + 1..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// `condition` with every column of `alias` replaced by the branch's expression.
fn substitute(alias: &str, condition: &str, branch: &Branch) -> String {
    let prefix = format!("{alias}.");
    let mut out = String::with_capacity(condition.len() * 2);
    let mut rest = condition;
    while let Some(at) = rest.find(&prefix) {
        let before = if at == 0 {
            out.chars().next_back()
        } else {
            rest[..at].chars().next_back()
        };
        out.push_str(&rest[..at]);
        let after = &rest[at + prefix.len()..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..end];
        let column = branch.column(name);
        match column {
            Some(column)
                if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') =>
            {
                out.push_str(&column.sql());
                rest = &after[end..];
            }
            _ => {
                out.push_str(&prefix);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The placeholder numbers of `condition` when it is one equality of `alias.column` with
/// a placeholder, or several joined with `OR` (as a token or reference parameter makes
/// them): `(column, [n…])`.
fn equalities<'c>(alias: &str, condition: &'c str) -> Option<(&'c str, Vec<usize>)> {
    let inner = strip_parentheses(condition);
    let mut column = None;
    let mut numbers = Vec::new();
    for part in inner.split(" OR ") {
        let (left, right) = part.split_once(" = $")?;
        let n: usize = right.parse().ok().filter(|n| *n > 0)?;
        let left = left
            .strip_prefix("CAST(")
            .and_then(|l| l.strip_suffix(" AS TEXT)"))
            .unwrap_or(left);
        let name = left.strip_prefix(alias)?.strip_prefix('.')?;
        if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return None;
        }
        match column {
            None => column = Some(name),
            Some(c) if c == name => {}
            Some(_) => return None,
        }
        numbers.push(n);
    }
    Some((column?, numbers))
}

/// `text` without the parentheses around all of it, if there are.
fn strip_parentheses(text: &str) -> &str {
    let Some(inner) = text.strip_prefix('(').and_then(|t| t.strip_suffix(')')) else {
        return text;
    };
    let mut depth = 0i32;
    for c in inner.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            _ => {}
        }
        if depth < 0 {
            // The first parenthesis closes before the end: `(a) OR (b)`.
            return text;
        }
    }
    inner
}

/// `condition` with the whole column reference `column` (`o.updated`) replaced by `by`.
fn replace_column(condition: &str, column: &str, by: &str) -> String {
    let mut out = String::with_capacity(condition.len());
    let mut rest = condition;
    while let Some(at) = rest.find(column) {
        let before = if at == 0 {
            out.chars().next_back()
        } else {
            rest[..at].chars().next_back()
        };
        let after = rest[at + column.len()..].chars().next();
        let word =
            |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        out.push_str(&rest[..at]);
        out.push_str(if word(before) || word(after) {
            column
        } else {
            by
        });
        rest = &rest[at + column.len()..];
    }
    out.push_str(rest);
    out
}

/// What narrowing an equality does in a branch.
enum Narrowed {
    /// Nothing to add.
    Nothing,
    /// No row of the branch can match.
    NoMatch,
    /// An indexed condition to add before the exact one.
    Extra(String),
}

fn narrow(alias: &str, condition: &str, branch: &Branch, sql: &mut Sql) -> Narrowed {
    // A condition naming one column of several sources, whatever its shape.
    if let [name] = named_columns(alias, condition)[..]
        && let Some(Column {
            narrow: Narrow::Sources { key, sources },
            ..
        }) = branch.column(name)
    {
        let prefix = format!("{alias}.{name}");
        let selects: Vec<String> = sources
            .iter()
            .map(|(select, column)| {
                select.replace("{}", &replace_column(condition, &prefix, column))
            })
            .collect();
        return Narrowed::Extra(format!("{key} IN ({})", selects.join(" UNION ")));
    }
    let Some((name, numbers)) = equalities(alias, condition) else {
        return Narrowed::Nothing;
    };
    let Some(column) = branch.column(name) else {
        return Narrowed::Nothing;
    };
    match column.narrow {
        Narrow::None | Narrow::Sources { .. } => Narrowed::Nothing,
        Narrow::In(template) => {
            let list: Vec<String> = numbers.iter().map(|n| format!("${n}")).collect();
            Narrowed::Extra(template.replace("{}", &list.join(", ")))
        }
        Narrow::Parse(parse) => {
            let mut alternatives = Vec::new();
            for n in numbers {
                if let Some(Value::Text(id)) = sql.params.get(n - 1).cloned()
                    && let Some(condition) = parse(&id.to_ascii_lowercase(), sql)
                {
                    alternatives.push(condition);
                }
            }
            if alternatives.is_empty() {
                Narrowed::NoMatch
            } else {
                Narrowed::Extra(format!("({})", alternatives.join(" OR ")))
            }
        }
        Narrow::Uuid { column, slot } => {
            let mut uuids = Vec::new();
            for n in numbers {
                let Some(Value::Text(id)) = sql.params.get(n - 1) else {
                    continue;
                };
                let id = id.to_ascii_lowercase();
                if !is_uuid(&id) {
                    continue;
                }
                match slot {
                    None => uuids.push(id),
                    Some(slot) if id.as_bytes()[14] == slot => {
                        // The row's own version digit is not in the id: any of the 16.
                        for digit in "0123456789abcdef".chars() {
                            let mut uuid = id.clone();
                            uuid.replace_range(14..15, &digit.to_string());
                            uuids.push(uuid);
                        }
                    }
                    Some(_) => {}
                }
            }
            if uuids.is_empty() {
                return Narrowed::NoMatch;
            }
            let list: Vec<String> = uuids.into_iter().map(|u| sql.bind(u)).collect();
            Narrowed::Extra(format!("{column} IN ({})", list.join(", ")))
        }
    }
}

/// `condition`'s placeholders renumbered into `to`, binding the values they name in
/// `from` (single-quoted literals are left alone).
fn renumber(condition: &str, from: &[Value], to: &mut Sql) -> String {
    // Byte by byte: the quote and `$` are ASCII, so the text between them is copied as
    // whole slices (a statement over many branches is tens of kilobytes, renumbered on
    // every search).
    let bytes = condition.as_bytes();
    let mut out = String::with_capacity(condition.len());
    let mut quoted = false;
    let mut mapped: Vec<(usize, String)> = Vec::new();
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => quoted = !quoted,
            b'$' if !quoted => {
                let digits = bytes[i + 1..]
                    .iter()
                    .take_while(|b| b.is_ascii_digit())
                    .count();
                if let Ok(n) = condition[i + 1..i + 1 + digits].parse::<usize>() {
                    out.push_str(&condition[copied..i]);
                    match mapped.iter().find(|(m, _)| *m == n) {
                        Some((_, p)) => out.push_str(p),
                        None => {
                            let value = n
                                .checked_sub(1)
                                .and_then(|i| from.get(i))
                                .cloned()
                                .unwrap_or(Value::Null);
                            let p = to.bind(value);
                            out.push_str(&p);
                            mapped.push((n, p));
                        }
                    }
                    i += 1 + digits;
                    copied = i;
                    continue;
                }
            }
            _ => {}
        }
        i += 1;
    }
    out.push_str(&condition[copied..]);
    out
}

/// A statement with its placeholders numbered from `$1` in order of appearance, and the
/// values they take from `params`: only the values the statement uses (a branch left out
/// takes its conditions' values with it).
pub fn compact(statement: &str, params: &[Value]) -> (String, Vec<Value>) {
    let mut to = Sql::default();
    let text = renumber(statement, params, &mut to);
    (text, to.params)
}

/// Where `word` starts in `text` outside parentheses and quotes.
fn top_level(text: &str, word: &str) -> Vec<usize> {
    // Byte by byte (quotes, parentheses and the words looked for are ASCII), comparing
    // the word only where its first byte is: the derived tables are tens of kilobytes,
    // split in every plugin instance.
    let bytes = text.as_bytes();
    let Some(&first) = word.as_bytes().first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut quoted = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'\'' => quoted = !quoted,
            b'(' if !quoted => depth += 1,
            b')' if !quoted => depth -= 1,
            _ => {}
        }
        if b == first && depth == 0 && !quoted && bytes[i..].starts_with(word.as_bytes()) {
            out.push(i);
        }
    }
    out
}

/// The branches of a derived table's SQL (`(b1 UNION ALL b2 …) alias`), each as its
/// `SELECT … FROM …` and its `WHERE` condition (`1=1` when it has none).
pub fn split(derived: &str) -> Vec<(String, String)> {
    let inner = derived
        .strip_prefix('(')
        .and_then(|d| d.rfind(')').map(|end| &d[..end]))
        .unwrap_or(derived);
    let mut parts = Vec::new();
    let mut start = 0;
    let mut cuts = top_level(inner, " UNION ALL ");
    cuts.push(inner.len());
    for cut in cuts {
        let branch = &inner[start..cut];
        start = cut + " UNION ALL ".len();
        match top_level(branch, " WHERE ").last() {
            Some(&at) => parts.push((
                branch[..at].to_owned(),
                branch[at + " WHERE ".len()..].to_owned(),
            )),
            None => parts.push((branch.to_owned(), "1=1".to_owned())),
        }
    }
    parts
}

/// A branch's `FROM …` (from its `SELECT … FROM …`), without the columns.
pub fn from_part(select: &str) -> &str {
    match top_level(select, " FROM ").last() {
        Some(&at) => &select[at + 1..],
        None => select,
    }
}

impl Branches {
    /// Places `sql`'s conditions: each naming only columns every branch lists goes into
    /// every branch (rewritten, narrowed, or decided once when the branch's columns are
    /// constants); the rest stay on the derived table. Values the narrowing binds are
    /// added to `sql`.
    pub fn push(&self, sql: &mut Sql) -> Result<Pushed<'_>> {
        let alias = self.alias;
        let mut outer = Vec::new();
        let mut kept: Vec<Option<Vec<String>>> = vec![Some(Vec::new()); self.branches.len()];
        // (branch, constant condition) pairs decided below.
        let mut constants: Vec<(usize, String)> = Vec::new();
        for condition in sql.conditions.clone() {
            let names = named_columns(alias, &condition);
            let everywhere = names
                .iter()
                .all(|n| self.branches.iter().all(|b| b.column(n).is_some()));
            if names.is_empty() || !everywhere {
                outer.push(condition);
                continue;
            }
            for (i, branch) in self.branches.iter().enumerate() {
                let Some(conditions) = kept[i].as_mut() else {
                    continue;
                };
                let substituted = substitute(alias, &condition, branch);
                if names
                    .iter()
                    .all(|n| branch.column(n).is_some_and(|c| c.constant.is_some()))
                {
                    constants.push((i, substituted));
                    continue;
                }
                match narrow(alias, &condition, branch, sql) {
                    Narrowed::NoMatch => {
                        kept[i] = None;
                        continue;
                    }
                    Narrowed::Extra(extra) => conditions.push(extra),
                    Narrowed::Nothing => {}
                }
                conditions.push(substituted);
            }
        }
        constants.retain(|(i, _)| kept[*i].is_some());
        if !constants.is_empty() {
            // One statement without tables decides every constant condition.
            let mut eval = Sql::default();
            let columns: Vec<String> = constants
                .iter()
                .enumerate()
                .map(|(k, (_, c))| {
                    let c = renumber(c, &sql.params, &mut eval);
                    format!("CASE WHEN {c} THEN 1 ELSE 0 END AS k{k}")
                })
                .collect();
            let row = store::query_one(&format!("SELECT {}", columns.join(", ")), &eval.params)?;
            for (k, (i, _)) in constants.iter().enumerate() {
                let holds = row.as_ref().and_then(|r| r.int(&format!("k{k}"))) == Some(1);
                if !holds {
                    kept[*i] = None;
                }
            }
        }
        Ok(Pushed {
            branches: self,
            kept: kept
                .into_iter()
                .enumerate()
                .filter_map(|(i, k)| k.map(|k| (i, k)))
                .collect(),
            outer,
        })
    }
}

/// A branch's conditions: its own, those placed in it, and its key up to the derived key
/// `bound` (bound into `sql`) when given.
///
/// `likely(…)` in a branch's own condition is a hint for reading the branch whole, in key
/// order (the encounter diagnoses: from `issue_encounter`'s key, not from every problem
/// in `lists`). A search that places conditions in the branch drops it (`likely(x)` is
/// `x`), so the planner weighs the branch's condition with them: `code=…` reads the
/// problems by their code's index.
fn bounded(
    branch: &Branch,
    conditions: &[String],
    bound: Option<i64>,
    sql: &mut Sql,
) -> Vec<String> {
    let mut wheres = vec![own_condition(branch, conditions)];
    wheres.extend(conditions.iter().cloned());
    if let Some(bound) = bound {
        let most = (bound - branch.offset).div_euclid(branch.stride);
        wheres.push(format!("{} <= {}", branch.key, sql.bind(most)));
    }
    wheres
}

/// The branch's own condition, in parentheses, with `conditions` placed in it (see
/// [`bounded`] for `likely(…)`).
fn own_condition(branch: &Branch, conditions: &[String]) -> String {
    if conditions.is_empty() {
        format!("({})", branch.when)
    } else {
        format!("({})", branch.when.replace("likely(", "("))
    }
}

impl Pushed<'_> {
    /// Whether no branch can hold a match.
    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// Whether every kept branch is read whole: no condition went into a branch or stayed
    /// outside (an unfiltered search, a system-level export's pages). Then the rows of a
    /// window of the derived key are about as many as the window is wide, whichever
    /// branches hold them.
    pub fn unfiltered(&self) -> bool {
        self.outer.is_empty()
            && self
                .kept
                .iter()
                .all(|(_, conditions)| conditions.is_empty())
    }

    /// The matches counted branch by branch, for `SELECT CAST(SUM(n) AS BIGINT) AS n,
    /// MAX(hi) AS hi FROM …`: each kept branch's `COUNT(*)` and largest derived key over
    /// its own `FROM` and conditions (up to the derived key `bound` when given), never
    /// its output columns, which a count over the derived table computes for every row
    /// (a correlated subquery in a branch's columns ran once per row counted: an
    /// Observation count at 100,000 patients took 6.6 s instead of 0.9 s). `None` when a
    /// condition stays outside the branches ([`Pushed::outer`]): it needs the columns.
    /// The derived table's `rest` is left out: it joins at most one row to each (the
    /// Provenance author organization), so the count is the same.
    pub fn count_clause(&self, bound: Option<i64>, sql: &mut Sql) -> Option<String> {
        if !self.outer.is_empty() {
            return None;
        }
        let all = self.branches;
        let parts: Vec<String> = self
            .kept
            .iter()
            .map(|(i, conditions)| {
                let branch = &all.branches[*i];
                let wheres = bounded(branch, conditions, bound, sql);
                let (key, s, o) = (&branch.key, branch.stride, branch.offset);
                format!(
                    "SELECT COUNT(*) AS n, MAX({key} * {s} + {o}) AS hi {} WHERE {}",
                    from_part(&branch.select),
                    wheres.join(" AND ")
                )
            })
            .collect();
        Some(format!("({}) {}", parts.join(" UNION ALL "), all.alias))
    }

    /// The `FROM` clause: the kept branches with their conditions and `page`'s bounds
    /// (bound into `sql`), then the derived table's `rest`. `page.limit` cuts each
    /// branch only when no condition is left outside ([`Pushed::outer`]): one applied to
    /// the merged rows would drop some of a branch's first rows, and the page would
    /// miss rows further on that it keeps. Then the members of a [`Fused`] group kept
    /// alike are read together, in place of their branches.
    pub fn from_clause(&self, page: Page, sql: &mut Sql) -> String {
        let all = self.branches;
        let limit = page.limit.filter(|_| self.outer.is_empty());
        let fused: Vec<&Fused> = match limit {
            Some(_) => all.fused.iter().filter(|f| self.alike(f)).collect(),
            None => Vec::new(),
        };
        let parts: Vec<String> = self
            .kept
            .iter()
            .filter_map(|(i, conditions)| {
                match (fused.iter().find(|f| f.members.contains(i)), limit) {
                    (Some(f), Some(limit)) => (*i == f.members.start)
                        .then(|| self.fused_part(f, conditions, page, limit, sql)),
                    _ => Some(self.branch_part(*i, conditions, page, limit, sql)),
                }
            })
            .collect();
        format!("({}) {}{}", parts.join(" UNION ALL "), all.alias, all.rest)
    }

    /// Whether every member of `f` is kept, each with the same conditions.
    fn alike(&self, f: &Fused) -> bool {
        let conditions: Vec<Option<&Vec<String>>> = f
            .members
            .clone()
            .map(|m| {
                self.kept
                    .iter()
                    .find(|(i, _)| *i == m)
                    .map(|(_, conditions)| conditions)
            })
            .collect();
        conditions.iter().all(Option::is_some) && conditions.windows(2).all(|w| w[0] == w[1])
    }

    /// The members of `f` read together for `page` (see [`Fused`]), with `conditions`
    /// (every member's).
    ///
    /// The rows are read in key order from the first key that may hold a slot in the
    /// page, `limit + 2` of them at most: each holds at least one slot (the members'
    /// conditions, or'ed), and only the first and the last can lose slots to the page's
    /// bounds, so those rows hold at least `limit` of the page's slots when there are
    /// that many. Then the slots, with the page's bounds exact, `limit` of them.
    fn fused_part(
        &self,
        f: &Fused,
        conditions: &[String],
        page: Page,
        limit: u64,
        sql: &mut Sql,
    ) -> String {
        let first = &self.branches.branches[f.members.start];
        let (key, stride) = (&first.key, first.stride);
        let derived = format!("{key} * {stride} + {}", f.slot);
        let any: Vec<String> = self.branches.branches[f.members.clone()]
            .iter()
            .map(|b| own_condition(b, conditions))
            .collect();
        let mut inner = vec![format!("({})", any.join(" OR "))];
        inner.extend(conditions.iter().cloned());
        let mut outer = Vec::new();
        if let Some(bound) = page.bound {
            inner.push(format!("{key} <= {}", sql.bind(bound.div_euclid(stride))));
            outer.push(format!("{derived} <= {}", sql.bind(bound)));
        }
        let direction = match page.seek {
            Some(Seek::After(last)) => {
                let least = last.saturating_add(1).div_euclid(stride);
                inner.push(format!("{key} >= {}", sql.bind(least)));
                outer.push(format!("{derived} > {}", sql.bind(last)));
                "ASC"
            }
            Some(Seek::Before(first)) => {
                let most = first.saturating_sub(1).div_euclid(stride);
                inner.push(format!("{key} <= {}", sql.bind(most)));
                outer.push(format!("{derived} < {}", sql.bind(first)));
                "DESC"
            }
            None => "ASC",
        };
        let most = i64::try_from(limit).unwrap_or(i64::MAX);
        let (rows_limit, limit) = if page.bind_limit {
            (sql.bind(most.saturating_add(2)), sql.bind(most))
        } else {
            (most.saturating_add(2).to_string(), most.to_string())
        };
        let rows = format!(
            "({} WHERE {} ORDER BY {key} {direction} LIMIT {rows_limit})",
            f.rows,
            inner.join(" AND ")
        );
        let select = f.select.replace("{rows}", &rows);
        let wheres = if outer.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", outer.join(" AND "))
        };
        format!(
            "SELECT * FROM ({select}{wheres} ORDER BY {key} {direction}, {slot} {direction} \
             LIMIT {limit}) f{start}",
            slot = f.slot,
            start = f.members.start
        )
    }

    /// Branch `i` with `conditions` for `page`, at most `limit` rows of it.
    fn branch_part(
        &self,
        i: usize,
        conditions: &[String],
        page: Page,
        limit: Option<u64>,
        sql: &mut Sql,
    ) -> String {
        let branch = &self.branches.branches[i];
        let mut wheres = bounded(branch, conditions, page.bound, sql);
        let (key, s, o) = (&branch.key, branch.stride, branch.offset);
        match page.seek {
            Some(Seek::After(last)) => {
                let least = (last - o).div_euclid(s);
                wheres.push(format!("{key} > {}", sql.bind(least)));
            }
            Some(Seek::Before(first)) => {
                let most = (first - o - 1).div_euclid(s);
                wheres.push(format!("{key} <= {}", sql.bind(most)));
            }
            None => {}
        }
        let select = format!("{} WHERE {}", branch.select, wheres.join(" AND "));
        let Some(limit) = limit else {
            return select;
        };
        let direction = if matches!(page.seek, Some(Seek::Before(_))) {
            "DESC"
        } else {
            "ASC"
        };
        // A page's limit is written: a plan made once for every value (PostgreSQL's
        // generic plan) then knows how few rows a branch gives and reads its key's index
        // in order (an unfiltered first page of Observation sorted every branch when the
        // limit was a parameter: 5 s). A window's is bound: it changes from one window to
        // the next and the text stays the same (one prepared statement), and there the
        // key range is narrow whatever the plan believes of the limit.
        let limit = if page.bind_limit {
            sql.bind(i64::try_from(limit).unwrap_or(i64::MAX))
        } else {
            limit.to_string()
        };
        format!("SELECT * FROM ({select} ORDER BY {key} {direction} LIMIT {limit}) b{i}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn branches() -> Branches {
        let vital = |slot: &'static str, n: i64, code: &'static str, when: &str| Branch {
            select: format!("SELECT '{slot}' AS oid, v.id * 16 + {n} AS okey FROM form_vitals v"),
            when: when.to_owned(),
            columns: vec![
                Column::expr("oid", format!("'{slot}' || v.uuid")).narrow(Narrow::Uuid {
                    column: "v.uuid",
                    slot: Some(slot.as_bytes()[0]),
                }),
                Column::expr("updated", "COALESCE(v.last_updated, v.date)"),
                Column::constant("code", Some(code)),
                Column::constant("code2", None),
            ],
            key: "v.id".to_owned(),
            stride: 16,
            offset: n,
        };
        Branches {
            alias: "o",
            branches: vec![
                vital("0", 0, "85354-9", "v.bps <> ''"),
                vital("1", 1, "8867-4", "v.pulse > 0"),
            ],
            rest: String::new(),
            fused: Vec::new(),
        }
    }

    #[test]
    fn columns_are_found_and_replaced_whole() {
        assert_eq!(
            named_columns("o", "(o.code = $1 OR o.code2 = $2) AND po.x = 1"),
            ["code", "code2"]
        );
        let b = &branches().branches[1];
        assert_eq!(
            substitute("o", "(o.code = $1 OR o.code2 = $2 OR po.code = 3)", b),
            "(CAST('8867-4' AS TEXT) = $1 OR CAST(NULL AS TEXT) = $2 OR po.code = 3)"
        );
        assert_eq!(
            substitute("o", "o.updated >= $1", b),
            "(COALESCE(v.last_updated, v.date)) >= $1"
        );
    }

    #[test]
    fn equalities_are_read_from_id_and_reference_conditions() {
        assert_eq!(equalities("o", "o.oid = $3"), Some(("oid", vec![3])));
        assert_eq!(
            equalities("o", "(o.oid = $1 OR CAST(o.oid AS TEXT) = $2)"),
            Some(("oid", vec![1, 2]))
        );
        assert_eq!(equalities("o", "(o.oid = $1 OR o.code = $2)"), None);
        assert_eq!(equalities("o", "o.updated >= $1"), None);
    }

    #[test]
    fn an_id_keeps_only_the_branch_of_its_slot() {
        let all = branches();
        let id = "90cde167-0000-1000-8000-000000000001";
        let mut sql = Sql::default();
        let n = sql.bind(id);
        let condition = format!("o.oid = {n}");
        let b0 = &all.branches[0];
        assert!(matches!(
            narrow("o", &condition, b0, &mut sql),
            Narrowed::NoMatch
        ));
        let Narrowed::Extra(extra) = narrow("o", &condition, &all.branches[1], &mut sql) else {
            panic!("slot 1 narrows");
        };
        assert!(extra.starts_with("v.uuid IN ($2, $3,"), "{extra}");
        assert_eq!(sql.params.len(), 17);
        assert_eq!(
            sql.params[5],
            Value::from("90cde167-0000-4000-8000-000000000001")
        );
    }

    #[test]
    fn keys_bound_each_branch_by_its_own_key() {
        let all = branches();
        let pushed = Pushed {
            branches: &all,
            kept: vec![(0, Vec::new()), (1, vec!["x = 1".to_owned()])],
            outer: Vec::new(),
        };
        let mut sql = Sql::default();
        let from = pushed.from_clause(
            Page {
                bound: Some(16 * 10 + 1),
                seek: Some(Seek::After(16 * 4)),
                limit: Some(21),
                bind_limit: true,
            },
            &mut sql,
        );
        assert!(
            from.contains(
                "WHERE (v.bps <> '') AND v.id <= $1 AND v.id > $2 ORDER BY v.id ASC LIMIT $3) b0"
            ),
            "{from}"
        );
        assert!(
            from.contains("AND x = 1 AND v.id <= $4 AND v.id > $5 ORDER BY v.id ASC LIMIT $6"),
            "{from}"
        );
        // okey <= 161: slot 0 up to id 10, slot 1 up to id 10 (161 = 10 * 16 + 1);
        // okey > 64: slot 0 from id 5 (64 = 4 * 16 + 0), slot 1 from id 4 (4 * 16 + 1 = 65).
        // A window's limits are bound (the same text for every window's limit).
        assert_eq!(
            sql.params,
            [
                Value::from(10),
                Value::from(4),
                Value::from(21),
                Value::from(10),
                Value::from(3),
                Value::from(21)
            ]
        );
        let mut sql = Sql::default();
        let from = pushed.from_clause(
            Page {
                bound: None,
                seek: Some(Seek::Before(16 * 4 + 1)),
                limit: Some(5),
                bind_limit: false,
            },
            &mut sql,
        );
        // A page's limits are written (a generic plan knows them).
        assert!(from.contains("ORDER BY v.id DESC LIMIT 5"), "{from}");
        // okey < 65: slot 0 up to id 4 (64), slot 1 up to id 3 (49).
        assert_eq!(sql.params, [Value::from(4), Value::from(3)]);
    }

    /// [`branches`] with its two vital signs fused.
    fn fused() -> Branches {
        let mut all = branches();
        all.fused.push(Fused {
            members: 0..2,
            rows: "SELECT v.*, p.uuid AS hearth_patient FROM form_vitals v JOIN patient_data p ON p.pid = v.pid".to_owned(),
            select: "SELECT v.id * 16 + s.n AS okey FROM {rows} v JOIN (SELECT 0 AS n UNION ALL SELECT 1 AS n) s ON 1 = 1".to_owned(),
            slot: "s.n".to_owned(),
        });
        all
    }

    #[test]
    fn members_kept_alike_are_read_once_with_exact_bounds() {
        let all = fused();
        let condition = vec!["p.uuid = $1".to_owned()];
        let pushed = Pushed {
            branches: &all,
            kept: vec![(0, condition.clone()), (1, condition)],
            outer: Vec::new(),
        };
        let mut sql = Sql::default();
        sql.bind("patient");
        let from = pushed.from_clause(
            Page {
                bound: Some(16 * 10 + 1),
                seek: Some(Seek::After(16 * 4 + 15)),
                limit: Some(21),
                bind_limit: true,
            },
            &mut sql,
        );
        assert_eq!(from.matches("form_vitals").count(), 1, "{from}");
        assert!(
            from.contains(
                "WHERE ((v.bps <> '') OR (v.pulse > 0)) AND p.uuid = $1 AND v.id <= $2 \
                 AND v.id >= $4 ORDER BY v.id ASC LIMIT $6) v JOIN"
            ),
            "{from}"
        );
        assert!(
            from.contains(
                "WHERE v.id * 16 + s.n <= $3 AND v.id * 16 + s.n > $5 \
                 ORDER BY v.id ASC, s.n ASC LIMIT $7) f0"
            ),
            "{from}"
        );
        // Rows up to id 10 (161 = 10 * 16 + 1) and from id 5 (79 = 4 * 16 + 15: id 4
        // has no slot after it); two rows more than the slots asked for.
        assert_eq!(
            sql.params[1..],
            [
                Value::from(10),
                Value::from(161),
                Value::from(5),
                Value::from(79),
                Value::from(23),
                Value::from(21)
            ]
        );
        // Backwards: the rows up to the one before the key, read in descending order.
        let mut sql = Sql::default();
        sql.bind("patient");
        let from = pushed.from_clause(
            Page {
                bound: None,
                seek: Some(Seek::Before(16 * 4)),
                limit: Some(5),
                bind_limit: false,
            },
            &mut sql,
        );
        assert!(
            from.contains("AND v.id <= $2 ORDER BY v.id DESC LIMIT 7) v"),
            "{from}"
        );
        assert!(
            from.contains("WHERE v.id * 16 + s.n < $3 ORDER BY v.id DESC, s.n DESC LIMIT 5) f0"),
            "{from}"
        );
        assert_eq!(sql.params[1..], [Value::from(3), Value::from(64)]);
    }

    #[test]
    fn members_kept_apart_are_read_as_branches() {
        let all = fused();
        let page = Page {
            bound: Some(100),
            seek: None,
            limit: Some(10),
            bind_limit: false,
        };
        let read = |kept: Vec<(usize, Vec<String>)>, outer: Vec<String>| {
            let pushed = Pushed {
                branches: &all,
                kept,
                outer,
            };
            pushed.from_clause(page, &mut Sql::default())
        };
        // One member left out (a code), conditions that differ (an id's slot), one left
        // outside (no limit per branch): the branches, each on its own.
        for from in [
            read(vec![(1, Vec::new())], Vec::new()),
            read(
                vec![(0, vec!["a = 1".to_owned()]), (1, vec!["a = 2".to_owned()])],
                Vec::new(),
            ),
            read(
                vec![(0, Vec::new()), (1, Vec::new())],
                vec!["o.note = 'x'".to_owned()],
            ),
        ] {
            assert!(!from.contains("hearth_patient"), "{from}");
        }
        let from = read(vec![(0, Vec::new()), (1, Vec::new())], Vec::new());
        assert!(from.contains("hearth_patient"), "{from}");
        assert!(!from.contains(" b0") && !from.contains(" b1"), "{from}");
    }

    #[test]
    fn a_condition_left_outside_keeps_the_branches_whole() {
        let all = branches();
        let page = Page {
            bound: Some(160),
            seek: None,
            limit: Some(21),
            bind_limit: false,
        };
        let inside = Pushed {
            branches: &all,
            kept: vec![(0, Vec::new()), (1, Vec::new())],
            outer: Vec::new(),
        };
        let mut sql = Sql::default();
        let from = inside.from_clause(page, &mut sql);
        assert_eq!(from.matches(" LIMIT 21)").count(), 2, "{from}");
        // A condition on the merged rows could drop a branch's first rows: each branch is
        // bounded by its key, and read whole.
        let outside = Pushed {
            outer: vec!["o.other = 1".to_owned()],
            ..inside
        };
        let from = outside.from_clause(page, &mut Sql::default());
        assert!(!from.contains("LIMIT"), "{from}");
        assert_eq!(from.matches("v.id <= $").count(), 2, "{from}");
    }

    #[test]
    fn a_coalesce_of_sources_narrows_to_each_sources_rows() {
        const SOURCES: &[(&str, &str)] = &[
            ("SELECT a.id FROM a WHERE {}", "a.t"),
            ("SELECT a.id FROM a JOIN b ON b.id = a.b WHERE {}", "b.t"),
        ];
        let branch = Branch {
            select: String::new(),
            when: "1=1".to_owned(),
            columns: vec![
                Column::expr("updated", "COALESCE(a.t, b.t)").narrow(Narrow::Sources {
                    key: "a.id",
                    sources: SOURCES,
                }),
            ],
            key: "a.id".to_owned(),
            stride: 1,
            offset: 0,
        };
        let Narrowed::Extra(extra) = narrow(
            "o",
            "(o.updated >= $1 AND o.updated < $2)",
            &branch,
            &mut Sql::default(),
        ) else {
            panic!("narrowed");
        };
        assert_eq!(
            extra,
            "a.id IN (SELECT a.id FROM a WHERE (a.t >= $1 AND a.t < $2) UNION \
             SELECT a.id FROM a JOIN b ON b.id = a.b WHERE (b.t >= $1 AND b.t < $2))"
        );
        assert_eq!(
            replace_column("o.updated2 = o.updated", "o.updated", "x"),
            "o.updated2 = x"
        );
    }

    #[test]
    fn derived_tables_split_into_branches() {
        let sql = "(SELECT (SELECT MAX(x) FROM h WHERE h.id = a.id) AS v, 'a WHERE b' AS w FROM a WHERE a.k = 1 \
                   UNION ALL SELECT 1 AS v FROM b LEFT JOIN c ON c.id = b.id) o";
        let parts = split(sql);
        assert_eq!(parts.len(), 2);
        assert_eq!(
            parts[0].0,
            "SELECT (SELECT MAX(x) FROM h WHERE h.id = a.id) AS v, 'a WHERE b' AS w FROM a"
        );
        assert_eq!(parts[0].1, "a.k = 1");
        assert_eq!(parts[1].1, "1=1");
        assert_eq!(from_part(&parts[0].0), "FROM a");
    }

    #[test]
    fn statements_are_renumbered_to_the_values_they_use() {
        let params = [Value::from("a"), Value::from("b"), Value::from("c")];
        let (text, values) = compact("x = $3 AND y = '$1' AND z = $3 OR w = $1", &params);
        assert_eq!(text, "x = $1 AND y = '$1' AND z = $1 OR w = $2");
        assert_eq!(values, [Value::from("c"), Value::from("a")]);
    }

    #[test]
    fn renumbering_keeps_other_text_whole() {
        let params = [Value::from("a"), Value::from("b")];
        // Non-ASCII text, a `$` without digits, one at the end, and one in quotes.
        let (text, values) = compact("é = $2 AND p = 'x$1ü' AND $ AND q = $", &params);
        assert_eq!(text, "é = $1 AND p = 'x$1ü' AND $ AND q = $");
        assert_eq!(values, [Value::from("b")]);
        let (text, values) = compact("$1$1($2)", &params);
        assert_eq!(text, "$1$1($2)");
        assert_eq!(values, [Value::from("a"), Value::from("b")]);
    }

    #[test]
    fn words_are_found_outside_quotes_and_parentheses_only() {
        let text = "a WHERE (b WHERE c) 'é WHERE' WHERE d";
        assert_eq!(top_level(text, " WHERE "), [1, 30]);
    }
}
