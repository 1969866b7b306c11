//! Search parameters: parsing a FHIR search query and turning it into SQL.
//!
//! A [`TypeDef`](crate::TypeDef) lists its parameters, each with the SQL it searches
//! ([`Target`]). [`Plan::parse`] reads the query the way the FHIR specification defines
//! it: parameters of kind string (case-insensitive starts-with, `:exact`, `:contains`),
//! token (`system|code`, `|code`, `code`, `system|`, `:not`), date (prefixes `eq ne gt lt ge
//! le sa eb ap`, at the value's precision) and reference (`Type/id`, `id`, an absolute
//! URL, `:Type`); `:missing` on each; commas are OR, a repeated parameter is AND. The
//! result parameters `_count` (default 20, at most 200), `_sort` and the paging cursor
//! are read too. An unknown parameter is ignored and left out of the `self` link, or
//! named in a 400 when the client asked for `Prefer: handling=strict`.

use hearth_sdk::Value;
use hearth_sdk::request::is_uuid;

use crate::date::{self, Range};

/// `_count` when the client names none.
pub const DEFAULT_COUNT: u32 = 20;
/// The most entries one page holds; a larger `_count` is lowered to it.
pub const MAX_COUNT: u32 = 200;
/// The query parameter carrying the paging cursor in `next` / `previous` links.
pub const CURSOR: &str = "_cursor";

/// A FHIR search parameter type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `string`.
    String,
    /// `token`.
    Token,
    /// `date`.
    Date,
    /// `reference`.
    Reference,
}

impl Kind {
    /// The FHIR name of the type.
    pub const fn name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Token => "token",
            Kind::Date => "date",
            Kind::Reference => "reference",
        }
    }
}

/// One column a token parameter compares codes with.
#[derive(Debug, Clone, Copy)]
pub struct TokenColumn {
    /// The SQL expression, e.g. `p.sex`.
    pub column: &'static str,
    /// The code system the column's codes belong to (`None`: codes without a system).
    pub system: Option<&'static str>,
    /// FHIR code → stored value, when they differ (`("female", "Female")`). When not
    /// empty, a code missing from the list matches nothing in this column.
    pub codes: &'static [(&'static str, &'static str)],
    /// When set, the column holds OpenEMR's code list (`ICD10:I10;SNOMED-CT:38341003`):
    /// a code of this column's system is stored as this prefix and the code, as one item
    /// of the `;`-separated list.
    pub prefix: Option<&'static str>,
    /// The column holding the code's text (a `display` or `CodeableConcept.text`), which
    /// `:text` searches; `None`: `:text` searches the stored value itself.
    pub text: Option<&'static str>,
}

impl TokenColumn {
    /// A column holding codes of `system` as they are.
    pub const fn new(column: &'static str, system: Option<&'static str>) -> TokenColumn {
        TokenColumn {
            column,
            system,
            codes: &[],
            prefix: None,
            text: None,
        }
    }

    /// A column holding an OpenEMR code list (`ICD10:I10;SNOMED-CT:38341003`), whose
    /// items of `system` start with `prefix` (`ICD10:`).
    pub const fn listed(
        column: &'static str,
        system: &'static str,
        prefix: &'static str,
    ) -> TokenColumn {
        TokenColumn {
            column,
            system: Some(system),
            codes: &[],
            prefix: Some(prefix),
            text: None,
        }
    }

    /// The column holding the text of this column's codes, for `:text`.
    pub const fn text(mut self, column: &'static str) -> TokenColumn {
        self.text = Some(column);
        self
    }

    /// The FHIR codes of this column and the values stored for them.
    pub const fn codes(mut self, codes: &'static [(&'static str, &'static str)]) -> TokenColumn {
        self.codes = codes;
        self
    }
}

/// What a search parameter searches in SQL.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    /// Text columns; a value matches when any of them does.
    Text(&'static [&'static str]),
    /// Coded columns; a value matches when any of them does.
    Token(&'static [TokenColumn]),
    /// A date column (`YYYY-MM-DD`): a day at a time.
    Date(&'static str),
    /// A date-and-time column (`YYYY-MM-DD HH:MM:SS`, UTC).
    DateTime(&'static str),
    /// A `Period`: the columns of its start and end (date-and-time). A period without
    /// an end is the instant of its start (an encounter whose end OpenEMR did not
    /// record). Prefixes compare ranges as FHIR defines: `eq` the search range holds the
    /// whole period, `gt`/`lt` the period reaches past the range's end/start, `ge`/`le`
    /// the period reaches into or past it, `sa`/`eb` the period starts after / ends
    /// before it, `ap` the period overlaps the widened range.
    Period {
        /// The start's column, e.g. `fe.date`.
        start: &'static str,
        /// The end's column, e.g. `fe.date_end`.
        end: &'static str,
    },
    /// The resource's own id column (`_id`): a token without a system.
    Id(&'static str),
    /// The ids a row references, listed in another table (a Group's members), and the
    /// type they reference. A value matches a row that lists it; `:missing=true` a row
    /// that lists none.
    ReferenceList {
        /// The table of the lists with its alias, e.g. `fhir_group_members m`.
        table: &'static str,
        /// What ties a list row to the searched row, e.g. `m.group_id = g.id`.
        row: &'static str,
        /// The list table's column of referenced ids, e.g. `m.patient_uuid`.
        column: &'static str,
        /// The referenced resource type, e.g. `Patient`.
        target: &'static str,
    },
    /// A reference to a resource of any type: the columns holding the referenced
    /// resource's type and its id (a Provenance's `target`). `Type/id` (or `:Type` with
    /// an id) matches that type's resource, a bare id any type's.
    AnyReference {
        /// The SQL expression of the referenced type, e.g. `pv.target_type`.
        kind: &'static str,
        /// The SQL expression of the referenced id, e.g. `pv.tid`.
        column: &'static str,
    },
    /// A column holding the referenced resource's id, and the type it references.
    Reference {
        /// The SQL expression, e.g. `p.provider_uuid`.
        column: &'static str,
        /// The referenced resource type, e.g. `Practitioner`.
        target: &'static str,
    },
}

impl Target {
    /// The FHIR search type.
    pub const fn kind(&self) -> Kind {
        match self {
            Target::Text(_) => Kind::String,
            Target::Token(_) | Target::Id(_) => Kind::Token,
            Target::Date(_) | Target::DateTime(_) | Target::Period { .. } => Kind::Date,
            Target::Reference { .. }
            | Target::ReferenceList { .. }
            | Target::AnyReference { .. } => Kind::Reference,
        }
    }

    /// The column `_sort` orders by.
    fn sort_column(&self) -> Option<&'static str> {
        match self {
            Target::Text(columns) => columns.first().copied(),
            Target::Token(columns) => columns.first().map(|c| c.column),
            Target::Date(column) | Target::DateTime(column) | Target::Id(column) => Some(column),
            Target::Period { start, .. } => Some(start),
            Target::Reference { column, .. } => Some(column),
            Target::ReferenceList { .. } | Target::AnyReference { .. } => None,
        }
    }
}

/// A search parameter: its name, FHIRPath expression and SQL target.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    /// The name, e.g. `birthdate`.
    pub name: &'static str,
    /// The FHIRPath expression, for the CapabilityStatement.
    pub expression: &'static str,
    /// What it searches.
    pub target: Target,
}

impl Param {
    /// A parameter.
    pub const fn new(name: &'static str, expression: &'static str, target: Target) -> Param {
        Param {
            name,
            expression,
            target,
        }
    }
}

/// Why a search cannot run: a 400 naming the parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchError(pub String);

/// SQL with `$n` placeholders and the values bound to them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Sql {
    /// Conditions, all of which must hold.
    pub conditions: Vec<String>,
    /// The values, `$1` first.
    pub params: Vec<Value>,
}

impl Sql {
    /// Binds `value` and answers its placeholder.
    pub fn bind(&mut self, value: impl Into<Value>) -> String {
        self.params.push(value.into());
        format!("${}", self.params.len())
    }

    /// The conditions joined with `AND` (`1=1` when there are none).
    pub fn where_clause(&self) -> String {
        if self.conditions.is_empty() {
            "1=1".to_owned()
        } else {
            self.conditions.join(" AND ")
        }
    }
}

/// Where a page starts: the key bound fixed by the first page (rows added since have
/// larger keys and stay out of the result), the number of rows before the page, and —
/// when the rows are in key order (no `_sort`) — the key the page starts after (or ends
/// before, for a `previous` link), so the page is read as an index range instead of
/// skipping `offset` rows. A search with `_sort` pages by offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The largest row key the search covers.
    pub bound: i64,
    /// Rows before the page.
    pub offset: u64,
    /// The key the page starts after or ends before, when the rows are in key order.
    pub seek: Option<Seek>,
}

/// A keyset cursor's side: where the page lies relative to a row key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seek {
    /// The page holds the rows with larger keys (a `next` link: after the last row shown).
    After(i64),
    /// The page holds the rows with smaller keys (a `previous` link: before the first row shown).
    Before(i64),
}

impl Cursor {
    /// The cursor's text in links: `v1.{bound}.{offset}` for an offset cursor,
    /// `v2.{bound}.{offset}.a{key}` / `.b{key}` for a keyset one.
    pub fn encode(self) -> String {
        match self.seek {
            None => format!("v1.{}.{}", self.bound, self.offset),
            Some(Seek::After(key)) => format!("v2.{}.{}.a{key}", self.bound, self.offset),
            Some(Seek::Before(key)) => format!("v2.{}.{}.b{key}", self.bound, self.offset),
        }
    }

    /// Reads a cursor made by [`Cursor::encode`].
    pub fn decode(text: &str) -> Option<Cursor> {
        let (keyset, rest) = match (text.strip_prefix("v1."), text.strip_prefix("v2.")) {
            (Some(rest), _) => (false, rest),
            (_, Some(rest)) => (true, rest),
            _ => return None,
        };
        let mut parts = rest.split('.');
        let bound: i64 = parts.next()?.parse().ok()?;
        let offset = parts.next()?.parse().ok()?;
        let seek = if keyset {
            let key = parts.next()?;
            let number = |digits: &str| -> Option<i64> {
                digits
                    .bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| digits.parse().ok())
                    .flatten()
            };
            Some(match key.split_at_checked(1)? {
                ("a", digits) => Seek::After(number(digits)?),
                ("b", digits) => Seek::Before(number(digits)?),
                _ => return None,
            })
        } else {
            None
        };
        if parts.next().is_some() || bound < 0 {
            return None;
        }
        Some(Cursor {
            bound,
            offset,
            seek,
        })
    }
}

/// A parsed search: the SQL conditions, the paging and what the `self` link shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The conditions and their values.
    pub sql: Sql,
    /// `ORDER BY` terms (without the final key tie-break).
    pub order: Vec<String>,
    /// Entries per page.
    pub count: u32,
    /// Only the total is wanted (`_summary=count`, or `_count=0`).
    pub count_only: bool,
    /// Where the page starts, when a link named it.
    pub cursor: Option<Cursor>,
    /// The parameters applied, as given, in order: the `self` link's query.
    pub applied: Vec<(String, String)>,
    /// The names of parameters ignored because they are unknown or unsupported.
    pub ignored: Vec<String>,
    /// The `_include` values, as given (`Encounter:patient`); the type resolves them.
    pub includes: Vec<String>,
    /// Whether the Bundle states the number of matches (`_total`).
    pub total: Total,
}

/// `_total`: how the Bundle's `total` is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Total {
    /// `accurate` (and the default): every match is counted.
    #[default]
    Accurate,
    /// `estimate`: answered as `accurate` (the count is exact and no dearer).
    Estimate,
    /// `none`: no count is made and the Bundle has no `total`.
    None,
}

/// The parameters every type has: `_id` on the resource's id and `_lastUpdated`.
pub fn common(id: &'static str, last_updated: &'static str) -> [Param; 2] {
    [
        Param::new("_id", "Resource.id", Target::Id(id)),
        Param::new(
            "_lastUpdated",
            "Resource.meta.lastUpdated",
            Target::DateTime(last_updated),
        ),
    ]
}

impl Plan {
    /// Parses `query` against `params` (the type's own and the common ones). `now` (Unix
    /// seconds) anchors `ap`. With `strict`, an unknown parameter is an error.
    pub fn parse(
        params: &[Param],
        query: &[(String, String)],
        strict: bool,
        now: i64,
    ) -> Result<Plan, SearchError> {
        Plan::parse_in("", params, query, strict, now)
    }

    /// [`Plan::parse`] for a query over `from` (the type's `FROM` clause), whose aliases
    /// tell which string columns are kept folded (see [`FOLDED`]). No base is known: a
    /// reference given as a full URL matches nothing (see [`Plan::parse_at`]).
    pub fn parse_in(
        from: &str,
        params: &[Param],
        query: &[(String, String)],
        strict: bool,
        now: i64,
    ) -> Result<Plan, SearchError> {
        Plan::parse_at(None, from, params, query, strict, now)
    }

    /// [`Plan::parse_in`] on the server whose FHIR base (for this site) is `base`, the base
    /// of every `fullUrl` it writes: a reference value given as a full URL names a
    /// resource here only when it starts with `base`; any other URL (another server's)
    /// matches nothing.
    pub fn parse_at(
        base: Option<&str>,
        from: &str,
        params: &[Param],
        query: &[(String, String)],
        strict: bool,
        now: i64,
    ) -> Result<Plan, SearchError> {
        let mut plan = Plan {
            sql: Sql::default(),
            order: Vec::new(),
            count: DEFAULT_COUNT,
            count_only: false,
            cursor: None,
            applied: Vec::new(),
            ignored: Vec::new(),
            includes: Vec::new(),
            total: Total::Accurate,
        };
        for (key, value) in query {
            let (name, modifier) = match key.split_once(':') {
                Some((name, modifier)) => (name, Some(modifier)),
                None => (key.as_str(), None),
            };
            // No database stores a NUL in text (PostgreSQL refuses it): no value of a
            // parameter this search reads may hold one.
            if value.contains('\0')
                && (name.starts_with('_') || params.iter().any(|p| p.name == name))
            {
                return Err(SearchError(format!(
                    "{key}: a value cannot hold a NUL character"
                )));
            }
            match name {
                "_count" => {
                    let n: u32 = value.trim().parse().map_err(|_| {
                        SearchError(format!("_count must be a whole number, not {value:?}"))
                    })?;
                    plan.count = n.min(MAX_COUNT);
                    plan.count_only = n == 0;
                    plan.applied.push((key.clone(), plan.count.to_string()));
                    continue;
                }
                "_summary" if value == "count" => {
                    plan.count_only = true;
                    plan.applied.push((key.clone(), value.clone()));
                    continue;
                }
                "_sort" => {
                    let mut kept = Vec::new();
                    for item in value.split(',').filter(|s| !s.is_empty()) {
                        let (desc, sort_name) = match item.strip_prefix('-') {
                            Some(rest) => (true, rest),
                            None => (false, item),
                        };
                        match params
                            .iter()
                            .find(|p| p.name == sort_name)
                            .and_then(|p| p.target.sort_column())
                        {
                            Some(column) => {
                                plan.order.push(format!(
                                    "{column} {}",
                                    if desc { "DESC" } else { "ASC" }
                                ));
                                kept.push(item);
                            }
                            None => plan.ignored.push(format!("_sort={item}")),
                        }
                    }
                    if !kept.is_empty() {
                        plan.applied.push((key.clone(), kept.join(",")));
                    }
                    continue;
                }
                CURSOR => {
                    plan.cursor = Some(Cursor::decode(value).ok_or_else(|| {
                        SearchError(format!(
                            "{CURSOR} {value:?} is not a cursor this server made"
                        ))
                    })?);
                    continue;
                }
                // JSON is the only format; the parameter needs no other handling.
                "_format" => continue,
                "_total" => {
                    plan.total = match value.as_str() {
                        "accurate" => Total::Accurate,
                        "estimate" => Total::Estimate,
                        "none" => Total::None,
                        _ => {
                            return Err(SearchError(format!(
                                "_total must be none, estimate or accurate, not {value:?}"
                            )));
                        }
                    };
                    plan.applied.push((key.clone(), value.clone()));
                    continue;
                }
                "_include" if modifier.is_none() => {
                    for one in value.split(',').filter(|v| !v.is_empty()) {
                        plan.includes.push(one.to_owned());
                        plan.applied.push((key.clone(), one.to_owned()));
                    }
                    continue;
                }
                _ => {}
            }
            let Some(param) = params.iter().find(|p| p.name == name) else {
                plan.ignored.push(key.clone());
                continue;
            };
            if value.is_empty() {
                continue;
            }
            let condition = condition_at(base, from, param, modifier, value, now, &mut plan.sql)?;
            plan.sql.conditions.push(condition);
            plan.applied.push((key.clone(), value.clone()));
        }
        if strict && !plan.ignored.is_empty() {
            return Err(SearchError(format!(
                "Unknown or unsupported search parameters: {}",
                plan.ignored.join(", ")
            )));
        }
        Ok(plan)
    }
}

impl Plan {
    /// Lets the page hold up to `cap` entries when `query`'s `_count` asks for more than
    /// [`MAX_COUNT`]: the host allows its own in-process callers (a Bulk Data export)
    /// larger pages. The `self` and paging links keep the count used.
    pub fn allow_count_up_to(&mut self, query: &[(String, String)], cap: u32) {
        let asked = query
            .iter()
            .rev()
            .find(|(k, _)| k == "_count")
            .and_then(|(_, v)| v.trim().parse::<u32>().ok());
        let Some(asked) = asked.filter(|n| *n > self.count) else {
            return;
        };
        self.count = asked.min(cap.max(MAX_COUNT));
        let count = self.count.to_string();
        for (key, value) in &mut self.applied {
            if key == "_count" {
                value.clone_from(&count);
            }
        }
    }
}

/// Splits on commas not escaped with `\`, unescaping `\,` `\|` `\$` and `\\`.
pub(crate) fn split_values(value: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next @ (',' | '$' | '\\')) => out.last_mut().expect("one").push(next),
                // `\|` stays escaped so the token split below can tell it apart.
                Some('|') => out.last_mut().expect("one").push_str("\\|"),
                Some(other) => {
                    let last = out.last_mut().expect("one");
                    last.push('\\');
                    last.push(other);
                }
                None => out.last_mut().expect("one").push('\\'),
            },
            ',' => out.push(String::new()),
            c => out.last_mut().expect("one").push(c),
        }
    }
    out
}

/// Splits a token at its first unescaped `|`: `(system, code)`; `None` system when there
/// is no bar, empty texts where a side is empty.
pub(crate) fn split_token(value: &str) -> (Option<String>, String) {
    let at = value
        .char_indices()
        .find(|&(i, c)| c == '|' && !value[..i].ends_with('\\'))
        .map(|(i, _)| i);
    let unescape = |s: &str| s.replace("\\|", "|");
    match at {
        Some(i) => (Some(unescape(&value[..i])), unescape(&value[i + 1..])),
        None => (None, unescape(value)),
    }
}

/// `%`, `_` and `\` escaped for `LIKE … ESCAPE '\'`.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Accented Latin letters and the letter each folds to, capitals too (SQLite's `LOWER`
/// folds only ASCII). Migration `0480_folded_text` folds the stored columns with the
/// same list (a test checks it); a change to it needs a migration that folds again.
const ACCENTS: &[(char, char)] = &[
    ('à', 'a'),
    ('á', 'a'),
    ('â', 'a'),
    ('ã', 'a'),
    ('ä', 'a'),
    ('å', 'a'),
    ('ā', 'a'),
    ('ç', 'c'),
    ('č', 'c'),
    ('è', 'e'),
    ('é', 'e'),
    ('ê', 'e'),
    ('ë', 'e'),
    ('ē', 'e'),
    ('ì', 'i'),
    ('í', 'i'),
    ('î', 'i'),
    ('ï', 'i'),
    ('ñ', 'n'),
    ('ò', 'o'),
    ('ó', 'o'),
    ('ô', 'o'),
    ('õ', 'o'),
    ('ö', 'o'),
    ('ø', 'o'),
    ('ù', 'u'),
    ('ú', 'u'),
    ('û', 'u'),
    ('ü', 'u'),
    ('ý', 'y'),
    ('ÿ', 'y'),
    ('š', 's'),
    ('ž', 'z'),
    ('ł', 'l'),
    ('À', 'a'),
    ('Á', 'a'),
    ('Â', 'a'),
    ('Ã', 'a'),
    ('Ä', 'a'),
    ('Å', 'a'),
    ('Ā', 'a'),
    ('Ç', 'c'),
    ('Č', 'c'),
    ('È', 'e'),
    ('É', 'e'),
    ('Ê', 'e'),
    ('Ë', 'e'),
    ('Ē', 'e'),
    ('Ì', 'i'),
    ('Í', 'i'),
    ('Î', 'i'),
    ('Ï', 'i'),
    ('Ñ', 'n'),
    ('Ò', 'o'),
    ('Ó', 'o'),
    ('Ô', 'o'),
    ('Õ', 'o'),
    ('Ö', 'o'),
    ('Ø', 'o'),
    ('Ù', 'u'),
    ('Ú', 'u'),
    ('Û', 'u'),
    ('Ü', 'u'),
    ('Ý', 'y'),
    ('Š', 's'),
    ('Ž', 'z'),
    ('Ł', 'l'),
];

/// `text` lower-cased with its accents dropped, as migration `0480_folded_text` folds the
/// columns it keeps in `folded_text`: string search ignores case and accents (`jose`
/// finds `José`).
pub fn fold(text: &str) -> String {
    text.chars()
        .map(|c| {
            ACCENTS
                .iter()
                .find(|(accented, _)| *accented == c)
                .map_or(c, |(_, plain)| *plain)
        })
        .collect::<String>()
        .to_lowercase()
}

/// The text columns kept folded in the table `folded_text` (migration
/// `0480_folded_text`, both databases): each source table, its integer key and its
/// columns. The table's triggers store every non-blank value of these columns as
/// [`fold`] folds it, one row per (table, row, column), indexed by (table, column,
/// folded value). A string parameter over such a column is an index range (starts-with)
/// or an index lookup (`:exact`) instead of a scan that folds every row.
pub const FOLDED: &[(&str, &str, &[&str])] = &[
    (
        "patient_data",
        "id",
        &[
            "lname",
            "fname",
            "mname",
            "title",
            "suffix",
            "street",
            "street_line_2",
            "city",
            "county",
            "state",
            "postal_code",
            "country_code",
        ],
    ),
    (
        "users",
        "id",
        &[
            "lname",
            "fname",
            "mname",
            "title",
            "suffix",
            "street",
            "streetb",
            "city",
            "state",
            "zip",
            "specialty",
        ],
    ),
    (
        "facility",
        "id",
        &[
            "name",
            "street",
            "city",
            "state",
            "postal_code",
            "country_code",
        ],
    ),
    ("form_encounter", "id", &["encounter_type_description"]),
];

/// The table each alias of a `FROM` clause's top level names
/// (`patient_data p LEFT JOIN users u ON …` gives `p` → `patient_data`, `u` → `users`);
/// derived tables (`(SELECT …) o`) name none.
pub fn aliases(from: &str) -> Vec<(&str, &str)> {
    let words: Vec<&str> = from.split_whitespace().collect();
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut expect_table = true;
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        if depth == 0 && expect_table {
            expect_table = false;
            if !word.starts_with('(') {
                let alias = words
                    .get(i + 1)
                    .copied()
                    .filter(|a| !a.eq_ignore_ascii_case("ON") && !a.contains('('));
                let alias = match alias {
                    Some(a) if a.eq_ignore_ascii_case("AS") => words.get(i + 2).copied(),
                    other => other,
                };
                out.push((alias.unwrap_or(word), word));
            }
        } else if depth == 0 && word.eq_ignore_ascii_case("JOIN") {
            expect_table = true;
        }
        depth += word.matches('(').count() as i32 - word.matches(')').count() as i32;
        i += 1;
    }
    out
}

/// Where `column` (`p.lname`) is kept folded: the key expression (`p.id`), the table
/// and the column's name, when the alias names a table of [`FOLDED`] in `from` and the
/// column is one it folds.
fn folded_column(from: &str, column: &str) -> Option<(String, &'static str, &'static str)> {
    let (alias, field) = column.split_once('.')?;
    let field = field.trim_matches('"');
    let (_, table) = aliases(from).into_iter().find(|(a, _)| *a == alias)?;
    let (table, key, fields) = FOLDED.iter().find(|(t, _, _)| *t == table)?;
    let field = fields.iter().find(|f| **f == field)?;
    Some((format!("{alias}.{key}"), table, field))
}

/// The smallest text greater than every text starting with `prefix` (byte-wise, as
/// SQLite's `BINARY` and PostgreSQL's `"C"` collations compare), or `None` when there
/// is none.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let mut next = last as u32 + 1;
        if (0xD800..0xE000).contains(&next) {
            next = 0xE000;
        }
        if let Some(c) = char::from_u32(next) {
            chars.push(c);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The rows whose folded `fields` of `table` meet `test` (a condition on `ft.folded`):
/// `SELECT ft.row_id FROM folded_text ft WHERE …`.
fn folded_rows(table: &str, fields: &[&str], test: &str) -> String {
    let fields = match fields {
        [one] => format!("ft.field = '{one}'"),
        many => format!(
            "ft.field IN ({})",
            many.iter()
                .map(|f| format!("'{f}'"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    format!("SELECT ft.row_id FROM folded_text ft WHERE ft.tbl = '{table}' AND {fields} AND {test}")
}

/// The columns of a string parameter grouped by the folded table holding them (key
/// expression, table, columns), and the columns no folded table holds.
type FoldedGroups = (
    Vec<(String, &'static str, Vec<&'static str>)>,
    Vec<&'static str>,
);

fn folded_groups(from: &str, columns: &[&'static str]) -> FoldedGroups {
    let mut groups: Vec<(String, &'static str, Vec<&'static str>)> = Vec::new();
    let mut plain = Vec::new();
    for column in columns {
        match folded_column(from, column) {
            Some((key, table, field)) => match groups.iter_mut().find(|g| g.0 == key) {
                Some(group) => group.2.push(field),
                None => groups.push((key, table, vec![field])),
            },
            None => plain.push(*column),
        }
    }
    (groups, plain)
}

/// How a string value matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Match {
    /// Starts with the value, ignoring case and accents.
    Start,
    /// Holds the value anywhere, ignoring case and accents (`:contains`, `:text`).
    Contains,
    /// Equals the value exactly (`:exact`).
    Exact,
}

/// The condition that any of `values` matches any of `columns`.
///
/// A column kept folded (see [`FOLDED`]) is searched in `folded_text`: starts-with is the
/// index range `[value, next value)`, `:exact` an index lookup of the folded value (then
/// the exact comparison on the row), `:contains` a `LIKE` over the column's folded
/// values. Any other column (a derived table's, or one no migration folds) compares
/// `LOWER(column)` with the lower-cased value: case-insensitive, accents as given.
fn text_condition(
    from: &str,
    columns: &[&'static str],
    mode: Match,
    values: &[String],
    sql: &mut Sql,
) -> String {
    let (groups, plain) = folded_groups(from, columns);
    let mut alternatives = Vec::new();
    if mode == Match::Exact {
        let mut exact = Vec::new();
        for v in values {
            for column in columns {
                exact.push(format!("{column} = {}", sql.bind(v.as_str())));
            }
        }
        let exact = any(exact);
        if !plain.is_empty() || groups.is_empty() {
            return exact;
        }
        // The folded index narrows the rows; the exact comparison decides.
        let mut narrow = Vec::new();
        for (key, table, fields) in &groups {
            let rows: Vec<String> = values
                .iter()
                .map(|v| {
                    let test = format!("ft.folded = {}", sql.bind(fold(v)));
                    folded_rows(table, fields, &test)
                })
                .collect();
            narrow.push(format!("{key} IN ({})", rows.join(" UNION ALL ")));
        }
        return format!("({} AND {exact})", any(narrow));
    }
    for (key, table, fields) in &groups {
        let rows: Vec<String> = values
            .iter()
            .map(|v| {
                let folded = fold(v);
                let test = match mode {
                    Match::Contains => format!(
                        "ft.folded LIKE {} ESCAPE '\\'",
                        sql.bind(format!("%{}%", like_escape(&folded)))
                    ),
                    _ => match prefix_end(&folded) {
                        Some(end) => format!(
                            "ft.folded >= {} AND ft.folded < {}",
                            sql.bind(folded),
                            sql.bind(end)
                        ),
                        None => "ft.folded IS NOT NULL".to_owned(),
                    },
                };
                folded_rows(table, fields, &test)
            })
            .collect();
        alternatives.push(format!("{key} IN ({})", rows.join(" UNION ALL ")));
    }
    for v in values {
        let lower = like_escape(&v.to_lowercase());
        let pattern = if mode == Match::Contains {
            format!("%{lower}%")
        } else {
            format!("{lower}%")
        };
        for column in &plain {
            alternatives.push(format!(
                "LOWER({column}) LIKE {} ESCAPE '\\'",
                sql.bind(pattern.as_str())
            ));
        }
    }
    any(alternatives)
}

fn any(parts: Vec<String>) -> String {
    match parts.len() {
        0 => "1=0".to_owned(),
        1 => parts.into_iter().next().expect("one"),
        _ => format!("({})", parts.join(" OR ")),
    }
}

/// The SQL condition one parameter occurrence adds, for a parameter that searches no
/// string columns (a token, date or reference).
pub(crate) fn condition(
    param: &Param,
    modifier: Option<&str>,
    value: &str,
    now: i64,
    sql: &mut Sql,
) -> Result<String, SearchError> {
    condition_in("", param, modifier, value, now, sql)
}

/// The SQL condition one parameter occurrence adds to a query over `from` (whose
/// aliases tell which string columns are kept folded, see [`FOLDED`]).
pub(crate) fn condition_in(
    from: &str,
    param: &Param,
    modifier: Option<&str>,
    value: &str,
    now: i64,
    sql: &mut Sql,
) -> Result<String, SearchError> {
    condition_at(None, from, param, modifier, value, now, sql)
}

/// The id a reference value names among `target`'s resources on the server whose FHIR
/// base is `base`: `Type/id`, a bare `id`, or a full URL `{base}/Type/id`. A URL with
/// another base (another server's resource, which this server does not hold), or any
/// URL when no base is known, names none; so does an id Hearth never hands out (ids are
/// uuids).
fn local_reference<'v>(value: &'v str, target: &str, base: Option<&str>) -> Option<&'v str> {
    match typed_reference(value, base)? {
        (Some(kind), _) if kind != target => None,
        (_, id) => Some(id),
    }
}

/// The type (when named) and id a reference value names on the server whose FHIR base
/// is `base`; see [`local_reference`].
fn typed_reference<'v>(value: &'v str, base: Option<&str>) -> Option<(Option<&'v str>, &'v str)> {
    let value = value.trim_end_matches('/');
    let relative = if value.contains("://") || value.starts_with("urn:") {
        let base = base?.trim_end_matches('/');
        let head = value.get(..base.len())?;
        if !head.eq_ignore_ascii_case(base) {
            return None;
        }
        value[base.len()..].strip_prefix('/')?
    } else {
        value
    };
    let (kind, id) = match relative.split_once('/') {
        None => (None, relative),
        Some((kind, id)) if !id.contains('/') => (Some(kind), id),
        Some(_) => return None,
    };
    is_uuid(id).then_some((kind, id))
}

/// [`condition_in`] on the server whose FHIR base is `base` (see [`Plan::parse_at`]).
fn condition_at(
    base: Option<&str>,
    from: &str,
    param: &Param,
    modifier: Option<&str>,
    value: &str,
    now: i64,
    sql: &mut Sql,
) -> Result<String, SearchError> {
    let name = param.name;
    let bad_modifier = |m: &str| {
        SearchError(format!(
            "The modifier :{m} is not supported on the {} parameter {name}",
            param.target.kind().name()
        ))
    };
    if modifier == Some("missing") {
        let missing = match value {
            "true" => true,
            "false" => false,
            _ => {
                return Err(SearchError(format!(
                    "{name}:missing must be true or false, not {value:?}"
                )));
            }
        };
        if let Target::ReferenceList { table, row, .. } = &param.target {
            let listed = format!("EXISTS (SELECT 1 FROM {table} WHERE {row})");
            return Ok(if missing {
                format!("NOT {listed}")
            } else {
                listed
            });
        }
        let columns: Vec<&str> = match &param.target {
            Target::Text(columns) => columns.to_vec(),
            Target::Token(columns) => columns.iter().map(|c| c.column).collect(),
            Target::Date(c)
            | Target::DateTime(c)
            | Target::Period { start: c, .. }
            | Target::Id(c)
            | Target::Reference { column: c, .. }
            | Target::AnyReference { column: c, .. } => vec![c],
            Target::ReferenceList { .. } => Vec::new(),
        };
        let blank_is_missing = matches!(param.target, Target::Text(_) | Target::Token(_));
        let present: Vec<String> = columns
            .iter()
            .map(|c| {
                if blank_is_missing {
                    format!("({c} IS NOT NULL AND CAST({c} AS TEXT) <> '')")
                } else {
                    format!("{c} IS NOT NULL")
                }
            })
            .collect();
        let present = any(present);
        return Ok(if missing {
            format!("NOT {present}")
        } else {
            present
        });
    }
    let values = split_values(value);
    let mut alternatives = Vec::new();
    match &param.target {
        Target::Text(columns) => {
            let mode = match modifier {
                None => Match::Start,
                Some("exact") => Match::Exact,
                Some("contains") => Match::Contains,
                Some(m) => return Err(bad_modifier(m)),
            };
            alternatives.push(text_condition(from, columns, mode, &values, sql));
        }
        Target::Id(column) => {
            if let Some(m) = modifier {
                return Err(bad_modifier(m));
            }
            // Hearth's ids are uuids, except for the few types named otherwise (a
            // ValueSet is its list's name): another id is compared as text, which a uuid
            // column never equals; what is no FHIR id at all names no resource.
            for v in values {
                if is_uuid(&v) {
                    alternatives.push(format!("{column} = {}", sql.bind(v.to_ascii_lowercase())));
                } else if crate::is_fhir_id(&v) {
                    alternatives.push(format!("CAST({column} AS TEXT) = {}", sql.bind(v)));
                }
            }
        }
        Target::Token(columns) => {
            let negate = match modifier {
                None => false,
                Some("not") => true,
                Some("text") => {
                    // The code's text, matched like a string parameter's `:contains`.
                    let texts: Vec<&'static str> = columns
                        .iter()
                        .filter(|c| c.text.is_some() || c.codes.is_empty())
                        .map(|c| c.text.unwrap_or(c.column))
                        .collect();
                    let mut parts = Vec::new();
                    if !texts.is_empty() {
                        parts.push(text_condition(from, &texts, Match::Contains, &values, sql));
                    }
                    // A column storing its codes in other words (`0` for `active`) has
                    // no text of its own: the codes' names are its text.
                    for column in columns
                        .iter()
                        .filter(|c| c.text.is_none() && !c.codes.is_empty())
                    {
                        for v in &values {
                            let wanted = v.to_lowercase();
                            for (code, stored) in column.codes {
                                if code.to_lowercase().contains(&wanted) {
                                    parts.push(format!(
                                        "{} = {}",
                                        column.column,
                                        sql.bind(*stored)
                                    ));
                                }
                            }
                        }
                    }
                    return Ok(any(parts));
                }
                Some(m) => return Err(bad_modifier(m)),
            };
            for v in values {
                let (system, code) = split_token(&v);
                for column in *columns {
                    let system_fits = match system.as_deref() {
                        None => true,
                        Some("") => column.system.is_none(),
                        Some(s) => column.system == Some(s),
                    };
                    if !system_fits {
                        continue;
                    }
                    let c = column.column;
                    if let Some(prefix) = column.prefix {
                        // One item of a `;`-separated code list.
                        let item = if code.is_empty() {
                            format!("%;{}%", like_escape(prefix))
                        } else {
                            format!("%;{}{};%", like_escape(prefix), like_escape(&code))
                        };
                        alternatives.push(format!(
                            "(';' || REPLACE({c}, ' ', '') || ';') LIKE {} ESCAPE '\\'",
                            sql.bind(item)
                        ));
                        continue;
                    }
                    if code.is_empty() {
                        alternatives.push(format!("{c} IS NOT NULL"));
                        continue;
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
                    if let Some(stored) = stored {
                        alternatives.push(format!("{c} = {}", sql.bind(stored)));
                    }
                }
            }
            if negate {
                return Ok(format!("NOT COALESCE({}, 1=0)", any(alternatives)));
            }
        }
        Target::Period { start, end } => {
            if let Some(m) = modifier {
                return Err(bad_modifier(m));
            }
            let end = format!("COALESCE({end}, {start})");
            for v in values {
                alternatives.push(period_condition(name, start, &end, &v, now, sql)?);
            }
        }
        Target::Date(column) | Target::DateTime(column) => {
            if let Some(m) = modifier {
                return Err(bad_modifier(m));
            }
            let day = matches!(param.target, Target::Date(_));
            for v in values {
                alternatives.push(date_condition(name, column, day, &v, now, sql)?);
            }
        }
        Target::Reference { column, target } => {
            match modifier {
                None => {}
                Some(m) if m == *target => {}
                Some(m) => return Err(bad_modifier(m)),
            }
            for v in values {
                let Some(id) = local_reference(&v, target, base) else {
                    continue;
                };
                alternatives.push(format!("{column} = {}", sql.bind(id.to_ascii_lowercase())));
            }
        }
        Target::AnyReference { kind, column } => {
            // A type modifier (`target:Location=…`) names a resource type.
            let typed = match modifier {
                None => None,
                Some(m)
                    if m.starts_with(|c: char| c.is_ascii_uppercase())
                        && m.chars().all(|c| c.is_ascii_alphanumeric()) =>
                {
                    Some(m)
                }
                Some(m) => return Err(bad_modifier(m)),
            };
            let mut named = Vec::new();
            for v in &values {
                match typed_reference(v, base) {
                    Some((Some(a), _)) if typed.is_some_and(|t| t != a) => {}
                    Some((given, id)) => named.push((given.or(typed), id.to_ascii_lowercase())),
                    None => {}
                }
            }
            let kinds: Vec<Option<&str>> = named.iter().map(|(k, _)| *k).collect();
            match kinds.first() {
                // Every value names the same type (or none): the type is a condition of
                // its own, and the ids one equality each, so a derived table's branches
                // of other types drop out and the rest narrow to their ids' rows.
                Some(first) if kinds.iter().all(|k| k == first) => {
                    if let Some(ty) = first {
                        let condition = format!("{kind} = {}", sql.bind(ty.to_string()));
                        sql.conditions.push(condition);
                    }
                    for (_, id) in named {
                        alternatives.push(format!("{column} = {}", sql.bind(id)));
                    }
                }
                _ => {
                    for (ty, id) in named {
                        let id = format!("{column} = {}", sql.bind(id));
                        alternatives.push(match ty {
                            Some(ty) => format!("({kind} = {} AND {id})", sql.bind(ty.to_string())),
                            None => id,
                        });
                    }
                }
            }
        }
        Target::ReferenceList {
            table,
            row,
            column,
            target,
        } => {
            match modifier {
                None => {}
                Some(m) if m == *target => {}
                Some(m) => return Err(bad_modifier(m)),
            }
            let mut ids = Vec::new();
            for v in values {
                let Some(id) = local_reference(&v, target, base) else {
                    continue;
                };
                ids.push(sql.bind(id.to_ascii_lowercase()));
            }
            if !ids.is_empty() {
                alternatives.push(format!(
                    "EXISTS (SELECT 1 FROM {table} WHERE {row} AND {column} IN ({}))",
                    ids.join(", ")
                ));
            }
        }
    }
    Ok(any(alternatives))
}

/// A date value's prefix and the range it stands for, widened for `ap` and kept within
/// the years both databases store.
fn date_range(name: &str, value: &str, now: i64) -> Result<(&'static str, Range), SearchError> {
    let (prefix, text) = match value.get(..2) {
        Some(p @ ("eq" | "ne" | "gt" | "lt" | "ge" | "le" | "sa" | "eb" | "ap")) => {
            (p, &value[2..])
        }
        _ => ("eq", value),
    };
    let prefix: &'static str = match prefix {
        "ne" => "ne",
        "gt" => "gt",
        "lt" => "lt",
        "ge" => "ge",
        "le" => "le",
        "sa" => "sa",
        "eb" => "eb",
        "ap" => "ap",
        _ => "eq",
    };
    let Some(mut range) = date::parse(text) else {
        return Err(SearchError(format!(
            "{name}: {text:?} is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD or a dateTime)"
        )));
    };
    if prefix == "ap" {
        // Approximately: widened by a tenth of the distance from now.
        let slack = (now - range.start).abs() / 10;
        range = Range {
            start: range.start - slack,
            end: range.end + slack,
        };
    }
    // Kept within the years both databases store (0001 to 9999).
    let (min, max) = (
        date::days_from_civil(1, 1, 1) * 86_400,
        date::days_from_civil(9999, 12, 31) * 86_400,
    );
    range.start = range.start.clamp(min, max);
    range.end = range.end.clamp(min, max);
    Ok((prefix, range))
}

/// The condition of one date value with its prefix.
fn date_condition(
    name: &str,
    column: &str,
    day: bool,
    value: &str,
    now: i64,
    sql: &mut Sql,
) -> Result<String, SearchError> {
    let (prefix, range) = date_range(name, value, now)?;
    // A date column holds whole days: the range is widened to whole days.
    let fmt = |secs: i64| {
        if day {
            date::sql_date(secs)
        } else {
            date::sql_datetime(secs)
        }
    };
    let start = fmt(if day {
        range.start.div_euclid(86_400) * 86_400
    } else {
        range.start
    });
    let end = fmt(if day {
        (range.end + 86_399).div_euclid(86_400) * 86_400
    } else {
        range.end
    });
    Ok(match prefix {
        "eq" | "ap" => format!(
            "({column} >= {} AND {column} < {})",
            sql.bind(start),
            sql.bind(end)
        ),
        "ne" => format!(
            "({column} < {} OR {column} >= {})",
            sql.bind(start),
            sql.bind(end)
        ),
        "gt" | "sa" => format!("{column} >= {}", sql.bind(end)),
        "lt" | "eb" => format!("{column} < {}", sql.bind(start)),
        "ge" => format!("{column} >= {}", sql.bind(start)),
        _ => format!("{column} < {}", sql.bind(end)),
    })
}

/// The condition of one date value against a period from `start` to `end` (an SQL
/// expression that is never NULL where `start` is not), both date-and-time.
fn period_condition(
    name: &str,
    start: &str,
    end: &str,
    value: &str,
    now: i64,
    sql: &mut Sql,
) -> Result<String, SearchError> {
    let (prefix, range) = date_range(name, value, now)?;
    let (lo, hi) = (
        date::sql_datetime(range.start),
        date::sql_datetime(range.end),
    );
    Ok(match prefix {
        // The search range holds the whole period.
        "eq" => format!("({start} >= {} AND {end} < {})", sql.bind(lo), sql.bind(hi)),
        "ne" => format!("({start} < {} OR {end} >= {})", sql.bind(lo), sql.bind(hi)),
        // The period reaches past the range's end / before its start.
        "gt" => format!("{end} >= {}", sql.bind(hi)),
        "lt" => format!("{start} < {}", sql.bind(lo)),
        // … or into the range.
        "ge" => format!("{end} >= {}", sql.bind(lo)),
        "le" => format!("{start} < {}", sql.bind(hi)),
        // Wholly after / before the range.
        "sa" => format!("{start} >= {}", sql.bind(hi)),
        "eb" => format!("{end} < {}", sql.bind(lo)),
        // Overlaps the widened range.
        _ => format!("({start} < {} AND {end} >= {})", sql.bind(hi), sql.bind(lo)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENDER: &[TokenColumn] =
        &[
            TokenColumn::new("p.sex", Some("http://hl7.org/fhir/administrative-gender"))
                .codes(&[("female", "Female"), ("male", "Male")]),
        ];
    const IDENTIFIER: &[TokenColumn] = &[
        TokenColumn::new("p.pubpid", Some("urn:mrn")),
        TokenColumn::new("p.ss", Some("http://hl7.org/fhir/sid/us-ssn")),
    ];
    const PARAMS: &[Param] = &[
        Param::new("family", "Patient.name.family", Target::Text(&["p.lname"])),
        Param::new(
            "name",
            "Patient.name",
            Target::Text(&["p.lname", "p.fname"]),
        ),
        Param::new("gender", "Patient.gender", Target::Token(GENDER)),
        Param::new(
            "identifier",
            "Patient.identifier",
            Target::Token(IDENTIFIER),
        ),
        Param::new("birthdate", "Patient.birthDate", Target::Date("p.DOB")),
        Param::new("_lastUpdated", "", Target::DateTime("p.last_updated")),
        Param::new(
            "general-practitioner",
            "Patient.generalPractitioner",
            Target::Reference {
                column: "u.uuid",
                target: "Practitioner",
            },
        ),
    ];

    fn q(text: &str) -> Vec<(String, String)> {
        text.split('&')
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap();
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    const FROM: &str = "patient_data p LEFT JOIN users u ON u.id = p.\"providerID\" \
                        LEFT JOIN facility f ON f.id = p.facility_id";

    fn plan(text: &str) -> Plan {
        Plan::parse_in(FROM, PARAMS, &q(text), false, 1_700_000_000).unwrap()
    }

    fn error(text: &str) -> String {
        Plan::parse(PARAMS, &q(text), false, 1_700_000_000)
            .unwrap_err()
            .0
    }

    #[test]
    fn text_on_a_token_of_mapped_codes_searches_the_codes_names() {
        // `gender` stores `Female`/`Male` for the codes `female`/`male`.
        let p = plan("gender:text=FEM");
        assert_eq!(p.sql.conditions, ["p.sex = $1"]);
        assert_eq!(p.sql.params, [Value::from("Female")]);
        let p = plan("gender:text=male");
        assert_eq!(p.sql.conditions, ["(p.sex = $1 OR p.sex = $2)"]);
        assert_eq!(plan("gender:text=x").sql.conditions, ["1=0"]);
    }

    #[test]
    fn a_nul_in_a_value_the_search_reads_is_refused() {
        assert!(error("family=a\0b").contains("NUL"));
        assert!(error("_sort=\0").contains("NUL"));
        // An unknown parameter is still ignored, whatever it holds.
        assert!(plan("bogus=\0").sql.conditions.is_empty());
    }

    #[test]
    fn strings_start_with_ignoring_case_and_accents_unless_exact_or_contains() {
        let rows = |fields: &str, test: &str| {
            format!(
                "p.id IN (SELECT ft.row_id FROM folded_text ft WHERE ft.tbl = 'patient_data' \
                 AND {fields} AND {test})"
            )
        };
        let p = plan("family=SmI%");
        assert_eq!(
            p.sql.conditions,
            [rows(
                "ft.field = 'lname'",
                "ft.folded >= $1 AND ft.folded < $2"
            )]
        );
        assert_eq!(
            p.sql.params,
            [Value::from("smi%"), Value::from("smi&")],
            "a range of folded values, wildcards as data"
        );
        let p = plan("family=JOSÉ");
        assert_eq!(
            p.sql.params,
            [Value::from("jose"), Value::from("josf")],
            "accents are dropped"
        );
        let p = plan("family:exact=Smith");
        assert_eq!(
            p.sql.conditions,
            [format!(
                "({} AND p.lname = $1)",
                rows("ft.field = 'lname'", "ft.folded = $2")
            )]
        );
        assert_eq!(p.sql.params, [Value::from("Smith"), Value::from("smith")]);
        let p = plan("family:contains=mi_t");
        assert_eq!(
            p.sql.conditions,
            [rows("ft.field = 'lname'", "ft.folded LIKE $1 ESCAPE '\\'")]
        );
        assert_eq!(p.sql.params, [Value::from("%mi\\_t%")]);
        let p = plan("name=a");
        assert_eq!(
            p.sql.conditions,
            [rows(
                "ft.field IN ('lname', 'fname')",
                "ft.folded >= $1 AND ft.folded < $2"
            )]
        );
        assert!(error("family:below=x").contains(":below"));
    }

    #[test]
    fn columns_not_kept_folded_compare_lower_cased() {
        // Without the FROM clause no alias names a folded table.
        let p = Plan::parse(PARAMS, &q("family=SmI%"), false, 0).unwrap();
        assert_eq!(p.sql.conditions, ["LOWER(p.lname) LIKE $1 ESCAPE '\\'"]);
        assert_eq!(p.sql.params, [Value::from("smi\\%%")]);
        let p = Plan::parse(PARAMS, &q("family:exact=Smith"), false, 0).unwrap();
        assert_eq!(p.sql.conditions, ["p.lname = $1"]);
    }

    #[test]
    fn aliases_and_folded_columns_come_from_the_from_clause() {
        assert_eq!(
            aliases(FROM),
            [("p", "patient_data"), ("u", "users"), ("f", "facility")]
        );
        assert_eq!(
            aliases("(SELECT x FROM a JOIN b ON b.i = a.i) o JOIN patient_data AS p ON p.id = o.p"),
            [("p", "patient_data")]
        );
        assert_eq!(aliases("facility"), [("facility", "facility")]);
        assert_eq!(
            folded_column(FROM, "f.name"),
            Some(("f.id".to_owned(), "facility", "name"))
        );
        assert_eq!(folded_column(FROM, "p.sex"), None, "not a folded column");
        assert_eq!(folded_column(FROM, "x.lname"), None, "not an alias");
        assert_eq!(prefix_end("ab"), Some("ac".to_owned()));
        assert_eq!(prefix_end("a\u{10FFFF}"), Some("b".to_owned()));
        assert_eq!(prefix_end("\u{D7FF}"), Some("\u{E000}".to_owned()));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        assert_eq!(prefix_end(""), None);
    }

    #[test]
    fn folding_drops_case_and_accents_alike_in_rust_and_the_migrations() {
        assert_eq!(fold("Ærø JOSÉ Ñuñez Łódź"), "æro jose nunez lodź");
        let sqlite = include_str!("../../migrations/sqlite/0480_folded_text.sql");
        let postgres = include_str!("../../migrations/postgres/0480_folded_text.sql");
        for (accented, plain) in ACCENTS {
            assert!(
                sqlite.contains(&format!("'{accented}', '{plain}')")),
                "{accented}"
            );
        }
        let from: String = ACCENTS.iter().map(|(a, _)| a).collect();
        let to: String = ACCENTS.iter().map(|(_, p)| p).collect();
        assert!(postgres.contains(&format!("translate(lower(t), '{from}', '{to}')")));
        for (table, key, fields) in FOLDED {
            assert_eq!(*key, "id");
            for sql in [sqlite, postgres] {
                for field in *fields {
                    assert!(
                        sql.contains(&format!("'{field}'")),
                        "{table}.{field} is folded by the migrations"
                    );
                }
            }
            assert!(sqlite.contains(&format!("CREATE TRIGGER hearth_fold_{table}_update")));
            assert!(postgres.contains(&format!("FUNCTION hearth_fold_{table}()")));
        }
    }

    #[test]
    fn token_text_searches_the_codes_text() {
        const SPECIALTY: &[TokenColumn] =
            &[TokenColumn::new("u.taxonomy", Some("urn:nucc")).text("u.specialty")];
        const PARAMS: &[Param] = &[Param::new(
            "specialty",
            "PractitionerRole.specialty",
            Target::Token(SPECIALTY),
        )];
        let p = Plan::parse_in("users u", PARAMS, &q("specialty:text=Médecine"), false, 0).unwrap();
        assert_eq!(
            p.sql.conditions,
            [
                "u.id IN (SELECT ft.row_id FROM folded_text ft WHERE ft.tbl = 'users' \
              AND ft.field = 'specialty' AND ft.folded LIKE $1 ESCAPE '\\')"
            ]
        );
        assert_eq!(p.sql.params, [Value::from("%medecine%")]);
        // A column of mapped codes (`Female` stored for `female`): the codes' names.
        let p = plan("gender:text=Fem");
        assert_eq!(p.sql.conditions, ["p.sex = $1"]);
        assert_eq!(p.sql.params, [Value::from("Female")]);
    }

    #[test]
    fn include_and_total_are_read_and_shown_in_self() {
        let p = plan("_include=Encounter:patient,Encounter:practitioner&_total=none");
        assert_eq!(p.includes, ["Encounter:patient", "Encounter:practitioner"]);
        assert_eq!(p.total, Total::None);
        assert_eq!(p.applied.len(), 3);
        assert_eq!(plan("_total=estimate").total, Total::Estimate);
        assert_eq!(plan("family=x").total, Total::Accurate);
        assert!(error("_total=some").contains("_total"));
        assert_eq!(plan("_include:iterate=Encounter:patient").ignored.len(), 1);
    }

    #[test]
    fn commas_are_or_and_repeats_are_and() {
        let p = plan("family=a,b&family=c");
        assert_eq!(p.sql.conditions.len(), 2);
        assert!(p.sql.conditions[0].contains(" UNION ALL "));
        assert_eq!(p.sql.params.len(), 6);
        let p = plan("family=a\\,b");
        assert_eq!(
            p.sql.params,
            [Value::from("a,b"), Value::from("a,c")],
            "an escaped comma is data"
        );
    }

    #[test]
    fn tokens_match_system_and_code() {
        let p = plan("gender=female");
        assert_eq!(p.sql.conditions, ["p.sex = $1"]);
        assert_eq!(p.sql.params, [Value::from("Female")]);
        let p = plan("gender=http://hl7.org/fhir/administrative-gender|male");
        assert_eq!(p.sql.params, [Value::from("Male")]);
        assert_eq!(plan("gender=other").sql.conditions, ["1=0"], "unknown code");
        assert_eq!(
            plan("gender=urn:x|male").sql.conditions,
            ["1=0"],
            "other system"
        );
        assert_eq!(
            plan("gender=|male").sql.conditions,
            ["1=0"],
            "no-system form"
        );
        let p = plan("identifier=http://hl7.org/fhir/sid/us-ssn|123");
        assert_eq!(p.sql.conditions, ["p.ss = $1"]);
        let p = plan("identifier=123");
        assert_eq!(p.sql.conditions, ["(p.pubpid = $1 OR p.ss = $2)"]);
        let p = plan("identifier=urn:mrn|");
        assert_eq!(p.sql.conditions, ["p.pubpid IS NOT NULL"]);
        assert_eq!(
            split_token("urn:a\\|b|c\\|d"),
            (Some("urn:a|b".to_owned()), "c|d".to_owned()),
            "an escaped bar is data"
        );
        assert_eq!(split_token("c"), (None, "c".to_owned()));
        let p = plan("gender:not=male");
        assert_eq!(p.sql.conditions, ["NOT COALESCE(p.sex = $1, 1=0)"]);
        assert!(error("gender:below=x").contains(":below"));
    }

    #[test]
    fn listed_codes_match_one_item_of_the_list() {
        const CODES: &[TokenColumn] = &[
            TokenColumn::listed("l.diagnosis", "http://hl7.org/fhir/sid/icd-10-cm", "ICD10:"),
            TokenColumn::listed("l.diagnosis", "http://snomed.info/sct", "SNOMED-CT:"),
        ];
        const LISTED: &[Param] = &[Param::new("code", "Condition.code", Target::Token(CODES))];
        let parse = |text: &str| Plan::parse(LISTED, &q(text), false, 0).unwrap();
        let p = parse("code=http://hl7.org/fhir/sid/icd-10-cm|I10");
        assert_eq!(
            p.sql.conditions,
            ["(';' || REPLACE(l.diagnosis, ' ', '') || ';') LIKE $1 ESCAPE '\\'"]
        );
        assert_eq!(p.sql.params, [Value::from("%;ICD10:I10;%")]);
        let p = parse("code=I10_x");
        assert_eq!(p.sql.params.len(), 2);
        assert_eq!(p.sql.params[1], Value::from("%;SNOMED-CT:I10\\_x;%"));
        let p = parse("code=http://snomed.info/sct|");
        assert_eq!(p.sql.params, [Value::from("%;SNOMED-CT:%")]);
    }

    #[test]
    fn dates_compare_at_the_values_precision() {
        let p = plan("birthdate=1990");
        assert_eq!(p.sql.conditions, ["(p.DOB >= $1 AND p.DOB < $2)"]);
        assert_eq!(
            p.sql.params,
            [Value::from("1990-01-01"), Value::from("1991-01-01")]
        );
        let p = plan("birthdate=ge1990-05&birthdate=lt1990-05-03");
        assert_eq!(p.sql.conditions, ["p.DOB >= $1", "p.DOB < $2"]);
        assert_eq!(
            p.sql.params,
            [Value::from("1990-05-01"), Value::from("1990-05-03")]
        );
        assert_eq!(
            plan("birthdate=gt1990-05-02").sql.params,
            [Value::from("1990-05-03")]
        );
        assert_eq!(
            plan("birthdate=le1990-05-02").sql.conditions,
            ["p.DOB < $1"]
        );
        assert_eq!(
            plan("birthdate=ne1990").sql.conditions,
            ["(p.DOB < $1 OR p.DOB >= $2)"]
        );
        let p = plan("_lastUpdated=sa2024-01-01T10:00:00Z");
        assert_eq!(p.sql.conditions, ["p.last_updated >= $1"]);
        assert_eq!(p.sql.params, [Value::from("2024-01-01 10:00:01")]);
        let p = plan(
            "_lastUpdated=eb2024-01-01T10:00:00%2B01:00"
                .replace("%2B", "+")
                .as_str(),
        );
        assert_eq!(p.sql.params, [Value::from("2024-01-01 09:00:00")]);
        let p = plan("birthdate=ap2013-11-14");
        let (Value::Text(lo), Value::Text(hi)) = (&p.sql.params[0], &p.sql.params[1]) else {
            panic!()
        };
        assert!(
            lo.as_str() < "2013-11-14" && hi.as_str() > "2013-11-15",
            "{lo} {hi}"
        );
        assert!(error("birthdate=1990-02-30").contains("birthdate"));
        assert!(error("birthdate:exact=1990").contains(":exact"));
    }

    #[test]
    fn dates_compare_with_periods_as_ranges() {
        const PERIOD: &[Param] = &[Param::new(
            "date",
            "Encounter.period",
            Target::Period {
                start: "fe.date",
                end: "fe.date_end",
            },
        )];
        let parse = |text: &str| Plan::parse(PERIOD, &q(text), false, 0).unwrap();
        let end = "COALESCE(fe.date_end, fe.date)";
        let p = parse("date=2024-03");
        assert_eq!(
            p.sql.conditions,
            [format!("(fe.date >= $1 AND {end} < $2)")],
            "the month holds the whole period"
        );
        assert_eq!(
            p.sql.params,
            [
                Value::from("2024-03-01 00:00:00"),
                Value::from("2024-04-01 00:00:00")
            ]
        );
        assert_eq!(
            parse("date=ge2024-03").sql.conditions,
            [format!("{end} >= $1")]
        );
        assert_eq!(
            parse("date=gt2024-03").sql.params,
            [Value::from("2024-04-01 00:00:00")]
        );
        assert_eq!(parse("date=le2024-03").sql.conditions, ["fe.date < $1"]);
        assert_eq!(parse("date=sa2024-03").sql.conditions, ["fe.date >= $1"]);
        assert_eq!(
            parse("date=eb2024-03").sql.conditions,
            [format!("{end} < $1")]
        );
        assert_eq!(
            parse("date=ap2024-03").sql.conditions,
            [format!("(fe.date < $1 AND {end} >= $2)")]
        );
        assert_eq!(
            parse("date=ne2024-03").sql.conditions,
            [format!("(fe.date < $1 OR {end} >= $2)")]
        );
        assert!(
            Plan::parse(PERIOD, &q("date:exact=2024"), false, 0)
                .unwrap_err()
                .0
                .contains(":exact")
        );
    }

    #[test]
    fn references_take_type_and_id_id_alone_or_a_url_of_this_server() {
        const ID: &str = "90cde167-0000-4000-8000-000000000001";
        const BASE: &str = "https://ehr.example/apis/default/fhir";
        let at = |text: &str| Plan::parse_at(Some(BASE), FROM, PARAMS, &q(text), false, 0).unwrap();
        for v in [
            format!("Practitioner/{ID}"),
            ID.to_owned(),
            format!("{BASE}/Practitioner/{ID}"),
            format!("HTTPS://EHR.example/apis/default/fhir/Practitioner/{ID}"),
        ] {
            let p = at(&format!("general-practitioner={v}"));
            assert_eq!(p.sql.conditions, ["u.uuid = $1"], "{v}");
            assert_eq!(p.sql.params, [Value::from(ID)]);
        }
        // Another server's URL, another site's, a longer path, or any URL when the base
        // is not known: nothing here.
        for v in [
            format!("https://other.example/fhir/Practitioner/{ID}"),
            format!("https://ehr.example/apis/second/fhir/Practitioner/{ID}"),
            format!("{BASE}/x/Practitioner/{ID}"),
            format!("{BASE}/Practitioner/{ID}/_history/1"),
            format!("urn:uuid:{ID}"),
        ] {
            let p = at(&format!("general-practitioner={v}"));
            assert_eq!(p.sql.conditions, ["1=0"], "{v}");
        }
        assert_eq!(
            plan(&format!("general-practitioner={BASE}/Practitioner/{ID}"))
                .sql
                .conditions,
            ["1=0"]
        );
        assert_eq!(
            plan(&format!("general-practitioner=Patient/{ID}"))
                .sql
                .conditions,
            ["1=0"]
        );
        assert_eq!(
            plan("general-practitioner=Practitioner/abc").sql.conditions,
            ["1=0"],
            "not an id Hearth hands out"
        );
        assert_eq!(
            plan(&format!("general-practitioner:Practitioner={ID}"))
                .sql
                .params,
            [Value::from(ID)]
        );
    }

    #[test]
    fn listed_references_match_a_row_that_lists_the_id() {
        const LISTED: &[Param] = &[Param::new(
            "member",
            "Group.member.entity",
            Target::ReferenceList {
                table: "fhir_group_members m",
                row: "m.group_id = g.id",
                column: "m.patient_uuid",
                target: "Patient",
            },
        )];
        let id = "0b5e7c1e-9a4d-4a0c-8f7e-2d6c1f3b9a10";
        let other = "1b5e7c1e-9a4d-4a0c-8f7e-2d6c1f3b9a10";
        let query = |text: &str| Plan::parse(LISTED, &q(text), false, 0).unwrap();
        let p = query(&format!("member=Patient/{id},{}", other.to_uppercase()));
        assert_eq!(
            p.sql.where_clause(),
            "EXISTS (SELECT 1 FROM fhir_group_members m WHERE m.group_id = g.id AND m.patient_uuid IN ($1, $2))"
        );
        assert_eq!(p.sql.params, vec![Value::from(id), Value::from(other)]);
        // Another type or not an id: nothing matches.
        assert_eq!(
            query(&format!("member=Practitioner/{id}"))
                .sql
                .where_clause(),
            "1=0"
        );
        assert_eq!(query("member=12").sql.where_clause(), "1=0");
        assert_eq!(
            query("member:missing=true").sql.where_clause(),
            "NOT EXISTS (SELECT 1 FROM fhir_group_members m WHERE m.group_id = g.id)"
        );
        assert!(Plan::parse(LISTED, &q("member:Practitioner=x"), false, 0).is_err());
        assert!(query("_sort=member").order.is_empty());
    }

    #[test]
    fn missing_asks_for_absent_or_present_values() {
        assert_eq!(
            plan("family:missing=true").sql.conditions,
            ["NOT (p.lname IS NOT NULL AND CAST(p.lname AS TEXT) <> '')"]
        );
        assert_eq!(
            plan("birthdate:missing=false").sql.conditions,
            ["p.DOB IS NOT NULL"]
        );
        assert!(error("birthdate:missing=maybe").contains("true or false"));
    }

    #[test]
    fn result_parameters_and_unknown_ones() {
        let p = plan("_count=500&_sort=-birthdate,family,bogus&foo=1&family=");
        assert_eq!(p.count, MAX_COUNT);
        assert_eq!(p.order, ["p.DOB DESC", "p.lname ASC"]);
        assert_eq!(
            p.applied,
            [
                ("_count".to_owned(), "200".to_owned()),
                ("_sort".to_owned(), "-birthdate,family".to_owned())
            ]
        );
        assert_eq!(p.ignored, ["_sort=bogus", "foo"]);
        assert_eq!(plan("family=x").count, DEFAULT_COUNT);
        assert!(plan("_count=0").count_only);
        assert!(plan("_summary=count").count_only);
        assert!(error("_count=-1").contains("_count"));
        let strict = Plan::parse(PARAMS, &q("foo=1&family=a"), true, 0).unwrap_err();
        assert!(strict.0.contains("foo"), "{}", strict.0);
    }

    #[test]
    fn cursors_round_trip_and_junk_is_refused() {
        let c = Cursor {
            bound: 42,
            offset: 40,
            seek: None,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(plan("_cursor=v1.42.40").cursor, Some(c));
        for seek in [Seek::After(7), Seek::Before(0)] {
            let k = Cursor {
                seek: Some(seek),
                ..c
            };
            assert_eq!(Cursor::decode(&k.encode()), Some(k));
        }
        assert_eq!(
            plan("_cursor=v2.42.40.a17").cursor,
            Some(Cursor {
                seek: Some(Seek::After(17)),
                ..c
            })
        );
        for junk in [
            "",
            "v1.",
            "v1.a.1",
            "v2.1.1",
            "v1.1.1.1",
            "v1.-1.0",
            "v2.1.1.c3",
            "v2.1.1.a",
            "v2.1.1.a-3",
            "v2.1.1.a+3",
            "v2.1.1.a3.4",
            "v3.1.1",
        ] {
            assert_eq!(Cursor::decode(junk), None, "{junk}");
        }
        assert!(error("_cursor=nope").contains("_cursor"));
    }
}
