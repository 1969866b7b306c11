//! A plugin's own tables: reading the migrations a component carries, and the checks
//! made before any of them runs.
//!
//! The SDK writes a plugin's migrations into a custom section of its core module named
//! `hearth:migrations` (layout in `sdk/src/migrations.rs`), so they travel, hash and
//! reload with the component itself. A component without the section (contracts 0.1.0
//! and 0.2.0 plugins built before it existed) has none.
//!
//! A plugin owns the tables whose names start with its namespace, `x_<name>__` (`-`
//! written `_`). Neither OpenEMR nor the host names a table `x_…`, and because a plugin
//! name has no `--` and does not end in `-`, no two plugins' namespaces overlap. Before a
//! migration runs, its SQL is parsed and every name it creates, alters, drops, indexes or
//! reads must be in the plugin's namespace; the database then enforces the same (see
//! `crate::db::plugin_schema`).

use std::ops::ControlFlow;

use anyhow::{Result, bail};
use sha2::{Digest, Sha256};
use sqlparser::ast::{
    AlterTableOperation, ColumnDef, ColumnOption, ObjectName, RenameTableNameKind, Statement,
    TableConstraint,
};
use sqlparser::dialect::{Dialect, PostgreSqlDialect, SQLiteDialect};

use crate::db::Kind;
use crate::db::grants::{FUNCTIONS, HOST_TABLES};

/// Functions a migration may call besides those plugin SQL may (defaults and backfills).
const MIGRATION_FUNCTIONS: &[&str] = &[
    "now",
    "current_timestamp",
    "datetime",
    "date",
    "strftime",
    "julianday",
    "gen_random_uuid",
    "nextval",
];

/// The custom section's name.
pub const SECTION: &str = "hearth:migrations";

/// One migration as the host keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// 1, 2, 3, … in order.
    pub version: u32,
    /// A short name.
    pub name: String,
    /// The SQLite text.
    pub sqlite: String,
    /// The PostgreSQL text.
    pub postgres: String,
}

impl Migration {
    /// The text for a database kind.
    pub fn sql(&self, kind: Kind) -> &str {
        match kind {
            Kind::Sqlite => &self.sqlite,
            Kind::Postgres => &self.postgres,
        }
    }

    /// SHA-256 over the name and both texts: an applied migration whose checksum changed
    /// was edited after release.
    pub fn checksum(&self) -> String {
        let mut hash = Sha256::new();
        for part in [&self.name, &self.sqlite, &self.postgres] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
        hex::encode(hash.finalize())
    }
}

/// The namespace of plugin `name` (`x_<name>__`), or why the name cannot own tables.
pub fn namespace(name: &str) -> Result<String> {
    if name.contains("--") || name.starts_with('-') || name.ends_with('-') {
        bail!("plugin name {name:?} cannot own tables: it has a leading, trailing or doubled -");
    }
    Ok(format!("x_{}__", name.replace('-', "_")))
}

/// The migrations in the component `bytes` (none when it has no section), checked for
/// order: versions 1, 2, 3, … without gaps, each with a name.
pub fn read(bytes: &[u8]) -> Result<Vec<Migration>> {
    let sections = custom_sections(bytes, SECTION)?;
    let migrations = match sections.as_slice() {
        [] => return Ok(Vec::new()),
        [one] => decode(one)?,
        _ => bail!("the component has more than one {SECTION} section"),
    };
    for (index, migration) in migrations.iter().enumerate() {
        if migration.version as usize != index + 1 {
            bail!(
                "migration {} ({}) is out of order: migrations are numbered 1, 2, 3, … without gaps",
                migration.version,
                migration.name
            );
        }
        if migration.name.trim().is_empty() {
            bail!("migration {} has no name", migration.version);
        }
    }
    Ok(migrations)
}

fn leb(bytes: &[u8], at: &mut usize) -> Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let Some(&byte) = bytes.get(*at) else {
            bail!("truncated component");
        };
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    bail!("bad LEB128 number in the component")
}

/// The payloads of the custom sections named `name` in a component or core module
/// binary, nested ones included.
pub fn custom_sections<'a>(bytes: &'a [u8], name: &str) -> Result<Vec<&'a [u8]>> {
    let mut out = Vec::new();
    find_sections(bytes, name, &mut out, 0)?;
    Ok(out)
}

fn find_sections<'a>(
    bytes: &'a [u8],
    name: &str,
    out: &mut Vec<&'a [u8]>,
    depth: u32,
) -> Result<()> {
    if depth > 8 {
        bail!("components nested too deep");
    }
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        bail!("not a WebAssembly binary");
    }
    // Layer 1 (bytes 6..8) marks a component, 0 a core module.
    let component = bytes[6] == 1;
    let mut at = 8;
    while at < bytes.len() {
        let id = bytes[at];
        at += 1;
        let size = leb(bytes, &mut at)? as usize;
        let Some(body) = bytes.get(at..at.saturating_add(size)) else {
            bail!("truncated section in the component");
        };
        at += size;
        match id {
            0 => {
                let mut name_at = 0;
                let len = leb(body, &mut name_at)? as usize;
                if body.get(name_at..name_at + len) == Some(name.as_bytes()) {
                    out.push(&body[name_at + len..]);
                }
            }
            // Core module (1) and component (4) sections of a component.
            1 | 4 if component => find_sections(body, name, out, depth + 1)?,
            _ => {}
        }
    }
    Ok(())
}

fn decode(bytes: &[u8]) -> Result<Vec<Migration>> {
    struct Reader<'a>(&'a [u8]);
    impl Reader<'_> {
        fn u32(&mut self) -> Result<u32> {
            let Some((head, rest)) = self.0.split_first_chunk::<4>() else {
                bail!("the {SECTION} section is truncated");
            };
            self.0 = rest;
            Ok(u32::from_le_bytes(*head))
        }
        fn string(&mut self) -> Result<String> {
            let len = self.u32()? as usize;
            if self.0.len() < len {
                bail!("the {SECTION} section is truncated");
            }
            let (text, rest) = self.0.split_at(len);
            self.0 = rest;
            Ok(std::str::from_utf8(text)
                .map_err(|_| anyhow::anyhow!("the {SECTION} section holds text that is not UTF-8"))?
                .to_owned())
        }
    }
    let Some((&format, rest)) = bytes.split_first() else {
        bail!("the {SECTION} section is empty");
    };
    if format != 1 {
        bail!("the {SECTION} section has format {format}; this host reads format 1");
    }
    let mut reader = Reader(rest);
    let count = reader.u32()?;
    let mut migrations = Vec::new();
    for _ in 0..count {
        migrations.push(Migration {
            version: reader.u32()?,
            name: reader.string()?,
            sqlite: reader.string()?,
            postgres: reader.string()?,
        });
    }
    if !reader.0.is_empty() {
        bail!("the {SECTION} section has bytes after its last migration");
    }
    Ok(migrations)
}

/// Whose table `name` (lower case, unqualified) is, for messages.
fn owner_of(name: &str) -> &'static str {
    if HOST_TABLES.contains(&name) || name.starts_with("sqlite_") || name.starts_with("pg_") {
        "the host's"
    } else if name.starts_with("x_") {
        "another plugin's"
    } else {
        "an OpenEMR"
    }
}

/// Checks migration `migration` of `plugin` (namespace `namespace`) for `kind` before it
/// runs: it parses, holds only table and index statements and data changes, and names
/// nothing outside the namespace. The error names the first table it may not touch.
pub fn check(plugin: &str, namespace: &str, migration: &Migration, kind: Kind) -> Result<()> {
    let sql = migration.sql(kind);
    let where_ = format!(
        "plugin {plugin}, migration {} ({})",
        migration.version, migration.name
    );
    if sql.trim().is_empty() {
        bail!("{where_}: it has no {} text", kind_name(kind));
    }
    let dialect: Box<dyn Dialect> = match kind {
        Kind::Sqlite => Box::new(SQLiteDialect {}),
        Kind::Postgres => Box::new(PostgreSqlDialect {}),
    };
    let statements = sqlparser::parser::Parser::parse_sql(dialect.as_ref(), sql).map_err(|e| {
        anyhow::anyhow!("{where_}: the {} text does not parse: {e}", kind_name(kind))
    })?;
    let mut names: Vec<ObjectName> = Vec::new();
    for statement in &statements {
        match statement {
            Statement::CreateTable(create) => {
                for column in &create.columns {
                    references_of_column(column, &mut names);
                }
                for constraint in &create.constraints {
                    references_of_constraint(constraint, &mut names);
                }
            }
            Statement::Insert(_)
            | Statement::Update(_)
            | Statement::Delete(_)
            | Statement::Query(_) => {}
            Statement::CreateIndex(index) => names.extend(index.name.clone()),
            Statement::AlterTable(alter) => {
                for operation in &alter.operations {
                    match operation {
                        AlterTableOperation::RenameTable {
                            table_name:
                                RenameTableNameKind::As(name) | RenameTableNameKind::To(name),
                        } => names.push(name.clone()),
                        AlterTableOperation::AddColumn { column_def, .. } => {
                            references_of_column(column_def, &mut names)
                        }
                        AlterTableOperation::AddConstraint { constraint, .. } => {
                            references_of_constraint(constraint, &mut names)
                        }
                        _ => {}
                    }
                }
            }
            Statement::Drop {
                object_type: sqlparser::ast::ObjectType::Table | sqlparser::ast::ObjectType::Index,
                names: dropped,
                ..
            } => names.extend(dropped.iter().cloned()),
            other => {
                let text = other.to_string();
                let head: String = text
                    .split_whitespace()
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ");
                bail!(
                    "{where_}: {head} is not allowed in a migration (CREATE/ALTER/DROP TABLE, CREATE/DROP INDEX, INSERT, UPDATE, DELETE and SELECT are)"
                );
            }
        }
    }
    let mut function = None;
    let _ = sqlparser::ast::visit_expressions(&statements, |expr: &sqlparser::ast::Expr| {
        if let sqlparser::ast::Expr::Function(call) = expr {
            let name = call.name.to_string().to_ascii_lowercase();
            if !FUNCTIONS.contains(&name.as_str()) && !MIGRATION_FUNCTIONS.contains(&name.as_str())
            {
                function = Some(name);
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    });
    if let Some(name) = function {
        bail!("{where_}: it calls the function {name}, which migrations may not call");
    }
    let _ = sqlparser::ast::visit_relations(&statements, |name: &ObjectName| {
        names.push(name.clone());
        ControlFlow::<()>::Continue(())
    });
    for name in &names {
        let parts: Vec<String> = name
            .0
            .iter()
            .map(|part| part.to_string().trim_matches('"').to_ascii_lowercase())
            .collect();
        let full = parts.join(".");
        if parts.len() != 1 {
            bail!(
                "{where_}: it names {full}, a schema-qualified name; a plugin's tables are named {namespace}… without a schema"
            );
        }
        let table = &parts[0];
        if !table.starts_with(namespace) {
            bail!(
                "{where_}: it touches {table}, {} table; a plugin's migrations may only touch tables named {namespace}…",
                owner_of(table)
            );
        }
    }
    Ok(())
}

/// The tables a column's `REFERENCES` names (a foreign key to another table would let
/// the plugin hold that table's rows in place).
fn references_of_column(column: &ColumnDef, names: &mut Vec<ObjectName>) {
    for option in &column.options {
        if let ColumnOption::ForeignKey(key) = &option.option {
            names.push(key.foreign_table.clone());
        }
    }
}

fn references_of_constraint(constraint: &TableConstraint, names: &mut Vec<ObjectName>) {
    if let TableConstraint::ForeignKey(key) = constraint {
        names.push(key.foreign_table.clone());
    }
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Sqlite => "SQLite",
        Kind::Postgres => "PostgreSQL",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(sql: &str) -> Migration {
        Migration {
            version: 1,
            name: "t".into(),
            sqlite: sql.into(),
            postgres: sql.into(),
        }
    }

    #[test]
    fn namespaces_do_not_overlap() {
        assert_eq!(namespace("visit-note").unwrap(), "x_visit_note__");
        assert!(namespace("a-").is_err());
        assert!(namespace("a--b").is_err());
        let a = namespace("a").unwrap();
        let ab = namespace("a-b").unwrap();
        assert!(!format!("{ab}t").starts_with(&a));
    }

    #[test]
    fn the_gate_names_the_table_it_refuses() {
        for kind in [Kind::Sqlite, Kind::Postgres] {
            let ns = "x_notes__";
            assert!(check("notes", ns, &m("CREATE TABLE x_notes__n (id INTEGER); CREATE INDEX x_notes__n_id ON x_notes__n (id)"), kind).is_ok());
            let cases = [
                ("CREATE TABLE users (id INTEGER)", "users, an OpenEMR table"),
                (
                    "DROP TABLE oauth_clients",
                    "oauth_clients, the host's table",
                ),
                (
                    "ALTER TABLE patient_data ADD COLUMN x TEXT",
                    "patient_data, an OpenEMR table",
                ),
                (
                    "INSERT INTO x_other__t SELECT * FROM x_notes__n",
                    "x_other__t, another plugin's",
                ),
                (
                    "CREATE TABLE x_notes__a AS SELECT * FROM patient_data",
                    "patient_data",
                ),
                (
                    "ALTER TABLE x_notes__n RENAME TO lists",
                    "lists, an OpenEMR table",
                ),
                ("CREATE INDEX lists_idx ON x_notes__n (id)", "lists_idx"),
                (
                    "CREATE TABLE x_notes__p (pid INTEGER REFERENCES patient_data (pid))",
                    "patient_data, an OpenEMR table",
                ),
                (
                    "CREATE TABLE x_notes__p (pid INTEGER, FOREIGN KEY (pid) REFERENCES lists (id))",
                    "lists, an OpenEMR table",
                ),
                (
                    "CREATE TABLE hearth.x_notes__n (id INTEGER)",
                    "schema-qualified",
                ),
            ];
            for (sql, expected) in cases {
                let error = check("notes", ns, &m(sql), kind).unwrap_err().to_string();
                assert!(error.contains(expected), "{sql}: {error}");
            }
            let error = check(
                "notes",
                ns,
                &m("SELECT set_config('role', 'none', true)"),
                kind,
            )
            .unwrap_err()
            .to_string();
            assert!(error.contains("calls the function set_config"), "{error}");
            assert!(
                check(
                    "notes",
                    ns,
                    &m("CREATE TABLE x_notes__t (at TEXT DEFAULT (datetime('now')))"),
                    kind
                )
                .is_ok()
            );
            let error = check("notes", ns, &m("CREATE VIEW x_notes__v AS SELECT 1"), kind)
                .unwrap_err()
                .to_string();
            assert!(error.contains("not allowed"), "{error}");
        }
    }

    #[test]
    fn sections_are_found_and_checked() {
        assert!(read(b"\0asm\x01\0\0\0").unwrap().is_empty());
        // A core module with one hearth:migrations custom section.
        let mut payload = vec![1u8];
        payload.extend(1u32.to_le_bytes());
        payload.extend(1u32.to_le_bytes());
        for text in [
            "n",
            "CREATE TABLE x_p__n (id INTEGER)",
            "CREATE TABLE x_p__n (id INT)",
        ] {
            payload.extend((text.len() as u32).to_le_bytes());
            payload.extend(text.as_bytes());
        }
        let mut section = vec![SECTION.len() as u8];
        section.extend(SECTION.as_bytes());
        section.extend(&payload);
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.push(0);
        module.push(section.len() as u8);
        module.extend(&section);
        let found = read(&module).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "n");
        // Numbered 2 first: refused.
        let mut bad = module.clone();
        let at = bad.len() - payload.len() + 5;
        bad[at] = 2;
        assert!(read(&bad).unwrap_err().to_string().contains("out of order"));
    }
}
