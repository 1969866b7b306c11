//! A plugin's own tables: versioned migrations the host applies to each site's database.
//!
//! A plugin owns the tables whose names start with its namespace, `x_` then its name with
//! `-` written `_`, then `__` (plugin `visit-note` owns `x_visit_note__*`). It lists its
//! migrations in [`crate::Resource::MIGRATIONS`], each with an SQLite and a PostgreSQL
//! text; [`crate::export!`] writes them into the component (a custom section named
//! [`SECTION`]), so they travel and reload with it. Its own tables need no entry in
//! `READS`/`WRITES`.
//!
//! ```
//! use hearth_sdk::Migration;
//!
//! const MIGRATIONS: &[Migration] = &[Migration::new(
//!     1,
//!     "notes",
//!     "CREATE TABLE x_visit_note__notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
//!     "CREATE TABLE x_visit_note__notes (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL)",
//! )];
//! ```
//!
//! Authors usually keep the texts in files: `include_str!("../migrations/0001_notes.sqlite.sql")`.

/// The name of the component's custom section that carries the migrations.
pub const SECTION: &str = "hearth:migrations";

/// The encoding's version, the section's first byte.
pub const FORMAT: u8 = 1;

/// One migration: applied once per site, in version order, in its own transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    /// Its number: 1, 2, 3, … in order. A released migration never changes (the host
    /// refuses a plugin whose applied migration's text changed).
    pub version: u32,
    /// A short name, e.g. `notes`.
    pub name: &'static str,
    /// The SQL run on SQLite sites (one or more statements).
    pub sqlite: &'static str,
    /// The SQL run on PostgreSQL sites.
    pub postgres: &'static str,
}

impl Migration {
    /// A migration.
    pub const fn new(
        version: u32,
        name: &'static str,
        sqlite: &'static str,
        postgres: &'static str,
    ) -> Migration {
        Migration {
            version,
            name,
            sqlite,
            postgres,
        }
    }
}

/// The length of [`encode`]'s output for `migrations`.
pub const fn encoded_len(migrations: &[Migration]) -> usize {
    let mut len = 1 + 4;
    let mut i = 0;
    while i < migrations.len() {
        let m = &migrations[i];
        len += 4 + 4 + m.name.len() + 4 + m.sqlite.len() + 4 + m.postgres.len();
        i += 1;
    }
    len
}

const fn put_u32(out: &mut [u8], at: usize, value: u32) -> usize {
    let bytes = value.to_le_bytes();
    let mut i = 0;
    while i < 4 {
        out[at + i] = bytes[i];
        i += 1;
    }
    at + 4
}

const fn put_str(out: &mut [u8], at: usize, text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut at = put_u32(out, at, bytes.len() as u32);
    let mut i = 0;
    while i < bytes.len() {
        out[at] = bytes[i];
        at += 1;
        i += 1;
    }
    at
}

/// The section's bytes: [`FORMAT`], the count (u32), then per migration its version
/// (u32) and name, SQLite text and PostgreSQL text (each a u32 length and UTF-8 bytes);
/// numbers little endian. `N` must be [`encoded_len`]`(migrations)`.
pub const fn encode<const N: usize>(migrations: &[Migration]) -> [u8; N] {
    let mut out = [0u8; N];
    out[0] = FORMAT;
    let mut at = put_u32(&mut out, 1, migrations.len() as u32);
    let mut i = 0;
    while i < migrations.len() {
        let m = &migrations[i];
        at = put_u32(&mut out, at, m.version);
        at = put_str(&mut out, at, m.name);
        at = put_str(&mut out, at, m.sqlite);
        at = put_str(&mut out, at, m.postgres);
        i += 1;
    }
    assert!(at == N, "encoded length mismatch");
    out
}

/// The namespace of plugin `name`: the prefix its tables' names start with.
pub fn namespace(name: &str) -> String {
    format!("x_{}__", name.replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: &[Migration] = &[
        Migration::new(
            1,
            "a",
            "CREATE TABLE x_p__a (id INTEGER)",
            "CREATE TABLE x_p__a (id INT)",
        ),
        Migration::new(2, "b", "", "é"),
    ];

    #[test]
    fn encodes_in_the_documented_layout() {
        const LEN: usize = encoded_len(M);
        const BYTES: [u8; LEN] = encode::<LEN>(M);
        assert_eq!(BYTES[0], FORMAT);
        assert_eq!(u32::from_le_bytes(BYTES[1..5].try_into().unwrap()), 2);
        assert_eq!(u32::from_le_bytes(BYTES[5..9].try_into().unwrap()), 1);
        assert_eq!(u32::from_le_bytes(BYTES[9..13].try_into().unwrap()), 1);
        assert_eq!(BYTES[13], b'a');
        assert!(BYTES.ends_with("é".as_bytes()));
        assert_eq!(namespace("visit-note"), "x_visit_note__");
    }
}
