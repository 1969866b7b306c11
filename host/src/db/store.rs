//! Running plugin SQL: one transaction per request, parameters bound (and converted to
//! the column types PostgreSQL insists on), rows encoded in the contract's row format.

use std::sync::Arc;
use std::time::Instant;

use sqlx::postgres::{PgArguments, PgRow, PgTypeInfo};
use sqlx::{
    Arguments, AssertSqlSafe, Column, Either, Executor, Postgres, Row, SqlSafeStr, Statement,
    Transaction, TypeInfo, ValueRef,
};

use super::Db;
use super::sqlite::SqliteTx;
pub(crate) use super::values::RowWriter;
pub use super::values::{EncodedRows, MAX_RESULT_BYTES, RowForm, SqlValue, StoreError};

/// A request's transaction.
pub enum Tx {
    /// On SQLite (the fast path).
    Sqlite(SqliteTx),
    /// On PostgreSQL.
    Postgres(Transaction<'static, Postgres>),
}

impl Db {
    /// Begins a request's transaction. Writers take SQLite's write lock at once
    /// (`BEGIN IMMEDIATE`) so two writers never deadlock upgrading a read lock.
    pub async fn begin(&self, write: bool, deadline: Instant) -> Result<Tx, StoreError> {
        let tx = match self {
            Db::Sqlite(_, fast) => Tx::Sqlite(fast.begin(write, deadline).await?),
            Db::Postgres(pool) => {
                // The server stops any statement that outlives the request, so a runaway
                // query never holds a connection (or a reply) past the deadline.
                // Rounded up: a timeout cut to whole milliseconds could stop the statement
                // just before the deadline, when the host does not yet see it as passed.
                let remaining = deadline
                    .saturating_duration_since(Instant::now())
                    .as_micros()
                    .div_ceil(1000)
                    .max(1);
                let begin = format!("BEGIN; SET LOCAL statement_timeout = {remaining}");
                // The pool keeps trying to connect while the server refuses; stop at the
                // request's deadline with the cause rather than letting the request time out.
                let wait = deadline.saturating_duration_since(Instant::now());
                match tokio::time::timeout(wait, pool.begin_with(AssertSqlSafe(begin))).await {
                    Ok(begun) => Tx::Postgres(begun.map_err(failed)?),
                    Err(_) => {
                        return Err(StoreError::Unavailable(
                            "no connection could be had before the request's deadline".into(),
                        ));
                    }
                }
            }
        };
        Ok(tx)
    }
}

impl Db {
    /// Runs one statement outside any transaction (a read of the host's own tables) and
    /// answers its rows as values. On SQLite it runs inline on the fast path.
    pub async fn read(
        &self,
        sql: &str,
        params: Vec<SqlValue>,
    ) -> Result<Vec<Vec<SqlValue>>, StoreError> {
        match self {
            Db::Sqlite(_, fast) => fast.read(sql, &params),
            Db::Postgres(pool) => {
                let mut connection = pool.acquire().await.map_err(failed)?;
                let statement = (&mut *connection)
                    .prepare(AssertSqlSafe(sql).into_sql_str())
                    .await
                    .map_err(classify)?;
                let args = pg_args(params, statement.parameters())?;
                let rows = sqlx::query_with(AssertSqlSafe(sql), args)
                    .fetch_all(&mut *connection)
                    .await
                    .map_err(classify)?;
                Ok(encode_pg(&rows, RowForm::Values)?.values())
            }
        }
    }
}

impl Tx {
    /// Runs a statement and returns its rows' values.
    pub async fn query(
        &mut self,
        sql: &str,
        params: Vec<SqlValue>,
    ) -> Result<EncodedRows, StoreError> {
        self.query_as(sql, params, RowForm::Values).await
    }

    /// Runs a statement and returns its rows in `form`.
    pub async fn query_as(
        &mut self,
        sql: &str,
        params: Vec<SqlValue>,
        form: RowForm,
    ) -> Result<EncodedRows, StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.query_as(sql, &params, form),
            Tx::Postgres(tx) => {
                let statement = (&mut **tx)
                    .prepare(AssertSqlSafe(sql).into_sql_str())
                    .await
                    .map_err(classify)?;
                let args = pg_args(params, statement.parameters())?;
                // Rows are encoded as they arrive and the result stops at its size limit,
                // so a huge result never sits in the host's memory whole.
                let mut rows = sqlx::query_with(AssertSqlSafe(sql), args).fetch(&mut **tx);
                let mut encoder: Option<PgEncoder> = None;
                while let Some(row) =
                    std::future::poll_fn(|cx| futures_core::Stream::poll_next(rows.as_mut(), cx))
                        .await
                {
                    let row = row.map_err(classify)?;
                    encoder
                        .get_or_insert_with(|| PgEncoder::new(&row, form))
                        .push(&row)?;
                }
                Ok(encoder.map_or_else(
                    || RowWriter::new(std::iter::empty(), form).finish(),
                    |encoder| encoder.out.finish(),
                ))
            }
        }
    }

    /// Runs a statement and returns the number of rows it changed.
    pub async fn execute(&mut self, sql: &str, params: Vec<SqlValue>) -> Result<u64, StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.execute(sql, &params),
            Tx::Postgres(tx) => {
                let statement = (&mut **tx)
                    .prepare(AssertSqlSafe(sql).into_sql_str())
                    .await
                    .map_err(classify)?;
                let args = pg_args(params, statement.parameters())?;
                sqlx::query_with(AssertSqlSafe(sql), args)
                    .execute(&mut **tx)
                    .await
                    .map(|done| done.rows_affected())
                    .map_err(classify)
            }
        }
    }

    /// Commits.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.commit(),
            Tx::Postgres(tx) => tx.commit().await.map_err(failed),
        }
    }

    /// Rolls back.
    pub async fn rollback(self) -> Result<(), StoreError> {
        match self {
            Tx::Sqlite(tx) => tx.rollback(),
            Tx::Postgres(tx) => tx.rollback().await.map_err(failed),
        }
    }
}

impl StoreError {
    /// A sqlx error sorted as the plugin and the HTTP layer need it (a lost connection is
    /// [`StoreError::Unavailable`]).
    pub fn from_sqlx(error: sqlx::Error) -> StoreError {
        classify(error)
    }
}

fn failed(error: sqlx::Error) -> StoreError {
    match unreachable(&error) {
        Some(cause) => StoreError::Unavailable(cause),
        None => StoreError::Failed(error.to_string()),
    }
}

/// Why the database cannot be reached, when `error` says it cannot: the connection was
/// refused, broke, or the server is shutting down or starting up (SQLSTATE class 08 and
/// 57P01–57P03); or the pool had no connection to give in time.
pub fn unreachable(error: &sqlx::Error) -> Option<String> {
    Some(match error {
        sqlx::Error::Io(io) => format!("the connection failed ({})", io.kind()),
        sqlx::Error::Tls(_) => "the connection's TLS failed".to_owned(),
        sqlx::Error::PoolTimedOut => "no connection came free in time".to_owned(),
        sqlx::Error::PoolClosed => "the connection pool is closed".to_owned(),
        sqlx::Error::WorkerCrashed => "the connection's worker stopped".to_owned(),
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            match code.as_ref() {
                "57P01" | "57P02" => "the database server is shutting down".to_owned(),
                "57P03" => "the database server is starting up".to_owned(),
                code if code.starts_with("08") => {
                    format!("the connection failed (SQLSTATE {code})")
                }
                _ => return None,
            }
        }
        _ => return None,
    })
}

/// Sorts a database error into what the plugin can act on.
fn classify(error: sqlx::Error) -> StoreError {
    if let Some(cause) = unreachable(&error) {
        return StoreError::Unavailable(cause);
    }
    match &error {
        sqlx::Error::Database(db) => {
            use sqlx::error::ErrorKind;
            match db.kind() {
                ErrorKind::UniqueViolation
                | ErrorKind::ForeignKeyViolation
                | ErrorKind::NotNullViolation
                | ErrorKind::CheckViolation => StoreError::Constraint(db.message().to_owned()),
                _ => {
                    let code = db.code().unwrap_or_default();
                    // PostgreSQL classes 22 (data) and 42 (syntax, undefined objects);
                    // SQLite's generic SQLITE_ERROR (1) is a bad statement. 57014 is a
                    // cancelled query: the only timeout Hearth sets is the request's.
                    if code == "57014" && db.message().contains("statement timeout") {
                        StoreError::deadline()
                    } else if code.starts_with("42") || code.starts_with("22") || code == "1" {
                        StoreError::Invalid(db.message().to_owned())
                    } else {
                        StoreError::Failed(db.message().to_owned())
                    }
                }
            }
        }
        _ => StoreError::Failed(error.to_string()),
    }
}

/// Binds each value as the type PostgreSQL inferred for its parameter.
fn pg_args(
    params: Vec<SqlValue>,
    types: Option<Either<&[PgTypeInfo], usize>>,
) -> Result<PgArguments, StoreError> {
    let types: &[PgTypeInfo] = match types {
        Some(Either::Left(types)) => types,
        _ => &[],
    };
    if params.len() != types.len() {
        return Err(StoreError::Invalid(format!(
            "the statement has {} parameters but {} values were given",
            types.len(),
            params.len()
        )));
    }
    let mut args = PgArguments::default();
    for (i, (value, ty)) in params.into_iter().zip(types).enumerate() {
        bind_pg(&mut args, value, ty.name())
            .map_err(|why| StoreError::Invalid(format!("parameter ${}: {why}", i + 1)))?;
    }
    Ok(args)
}

fn bind_pg(args: &mut PgArguments, value: SqlValue, ty: &str) -> Result<(), String> {
    use SqlValue::*;
    let mismatch = |value: &SqlValue| format!("a {} value does not fit a {ty} column", kind(value));
    let out = match (ty, value) {
        ("INT2", Null) => args.add(None::<i16>),
        ("INT4", Null) => args.add(None::<i32>),
        ("INT8", Null) => args.add(None::<i64>),
        ("FLOAT4", Null) => args.add(None::<f32>),
        ("FLOAT8", Null) => args.add(None::<f64>),
        ("BOOL", Null) => args.add(None::<bool>),
        ("BYTEA", Null) => args.add(None::<Vec<u8>>),
        ("DATE", Null) => args.add(None::<time::Date>),
        ("TIMESTAMP", Null) => args.add(None::<time::PrimitiveDateTime>),
        ("TIMESTAMPTZ", Null) => args.add(None::<time::OffsetDateTime>),
        ("UUID", Null) => args.add(None::<uuid::Uuid>),
        (_, Null) => args.add(None::<String>),
        ("INT2", Integer(i)) => {
            args.add(i16::try_from(i).map_err(|_| format!("{i} is out of range for {ty}"))?)
        }
        ("INT4", Integer(i)) => {
            args.add(i32::try_from(i).map_err(|_| format!("{i} is out of range for {ty}"))?)
        }
        ("INT8", Integer(i)) => args.add(i),
        ("FLOAT4", Integer(i)) => args.add(i as f32),
        ("FLOAT8", Integer(i)) => args.add(i as f64),
        ("BOOL", Integer(i)) => args.add(i != 0),
        ("TEXT" | "VARCHAR" | "BPCHAR" | "NAME", Integer(i)) => args.add(i.to_string()),
        ("FLOAT4", Real(r)) => args.add(r as f32),
        ("FLOAT8", Real(r)) => args.add(r),
        ("TEXT" | "VARCHAR" | "BPCHAR" | "NAME", Real(r)) => args.add(r.to_string()),
        ("TEXT" | "VARCHAR" | "BPCHAR" | "NAME", Text(s)) => args.add(s),
        ("INT2" | "INT4" | "INT8", Text(s)) => {
            let i: i64 = s
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not an integer"))?;
            return bind_pg(args, Integer(i), ty);
        }
        ("FLOAT4" | "FLOAT8", Text(s)) => {
            let r: f64 = s
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not a number"))?;
            return bind_pg(args, Real(r), ty);
        }
        ("DATE", Text(s)) => {
            args.add(parse_date(&s).ok_or_else(|| format!("{s:?} is not a date (YYYY-MM-DD)"))?)
        }
        ("TIMESTAMP", Text(s)) => args.add(
            parse_datetime(&s)
                .ok_or_else(|| format!("{s:?} is not a datetime (YYYY-MM-DD HH:MM:SS)"))?,
        ),
        ("TIMESTAMPTZ", Text(s)) => args.add(
            parse_datetime(&s)
                .ok_or_else(|| format!("{s:?} is not a datetime (YYYY-MM-DD HH:MM:SS)"))?
                .assume_utc(),
        ),
        ("UUID", Text(s)) => {
            args.add(uuid::Uuid::parse_str(&s).map_err(|_| format!("{s:?} is not a UUID"))?)
        }
        ("BOOL", Text(s)) => args.add(matches!(s.as_str(), "1" | "true" | "t" | "yes")),
        ("BYTEA", Blob(b)) => args.add(b),
        ("BYTEA", Text(s)) => args.add(s.into_bytes()),
        (_, value) => return Err(mismatch(&value)),
    };
    out.map_err(|e| e.to_string())
}

fn kind(value: &SqlValue) -> &'static str {
    match value {
        SqlValue::Null => "null",
        SqlValue::Integer(_) => "integer",
        SqlValue::Real(_) => "real",
        SqlValue::Text(_) => "text",
        SqlValue::Blob(_) => "blob",
    }
}

const DATE: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");
const DATETIME: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");

fn parse_date(s: &str) -> Option<time::Date> {
    time::Date::parse(s.get(..10)?, DATE).ok().filter(|_| {
        s.len() == 10
            || s[10..]
                .trim_start_matches(['T', ' '])
                .chars()
                .all(|c| c == '0' || c == ':')
    })
}

fn parse_datetime(s: &str) -> Option<time::PrimitiveDateTime> {
    if s.len() == 10 {
        return parse_date(s).map(|d| d.midnight());
    }
    let normalized = s.replacen('T', " ", 1);
    time::PrimitiveDateTime::parse(normalized.get(..19)?, DATETIME).ok()
}

fn encode_pg(rows: &[PgRow], form: RowForm) -> Result<EncodedRows, StoreError> {
    let Some(first) = rows.first() else {
        return Ok(RowWriter::new(std::iter::empty(), form).finish());
    };
    let mut encoder = PgEncoder::new(first, form);
    for row in rows {
        encoder.push(row)?;
    }
    Ok(encoder.out.finish())
}

/// Encodes PostgreSQL rows one at a time. Text is read borrowed from the row (`&str`)
/// and uuids are formatted on the stack: nothing is allocated per value but dates.
struct PgEncoder {
    columns: Vec<String>,
    types: Vec<String>,
    out: RowWriter,
}

impl PgEncoder {
    /// An encoder for rows shaped like `first`, in `form`.
    fn new(first: &PgRow, form: RowForm) -> PgEncoder {
        let columns: Vec<String> = first
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        let types = first
            .columns()
            .iter()
            .map(|c| c.type_info().name().to_owned())
            .collect();
        let out = RowWriter::new(columns.iter().map(String::as_str), form);
        PgEncoder {
            columns,
            types,
            out,
        }
    }

    /// Appends a row; refuses it past the result's size limit.
    fn push(&mut self, row: &PgRow) -> Result<(), StoreError> {
        let PgEncoder {
            columns,
            types,
            out,
        } = self;
        out.begin_row();
        for (i, ty) in types.iter().enumerate() {
            let raw = row.try_get_raw(i).map_err(failed)?;
            if raw.is_null() {
                out.null();
                continue;
            }
            let get_err =
                |e: sqlx::Error| StoreError::Failed(format!("column {}: {e}", columns[i]));
            match ty.as_str() {
                "INT2" => out.integer(row.try_get::<i16, _>(i).map_err(get_err)?.into()),
                "INT4" => out.integer(row.try_get::<i32, _>(i).map_err(get_err)?.into()),
                "INT8" => out.integer(row.try_get::<i64, _>(i).map_err(get_err)?),
                "FLOAT4" => out.real(row.try_get::<f32, _>(i).map_err(get_err)?.into()),
                "FLOAT8" => out.real(row.try_get::<f64, _>(i).map_err(get_err)?),
                "BOOL" => out.integer(row.try_get::<bool, _>(i).map_err(get_err)?.into()),
                "BYTEA" => out.blob(&row.try_get::<Vec<u8>, _>(i).map_err(get_err)?),
                "UUID" => out.text(
                    row.try_get::<uuid::Uuid, _>(i)
                        .map_err(get_err)?
                        .hyphenated()
                        .encode_lower(&mut uuid::Uuid::encode_buffer()),
                ),
                "DATE" => out.text(
                    &row.try_get::<time::Date, _>(i)
                        .map_err(get_err)?
                        .format(DATE)
                        .unwrap_or_default(),
                ),
                "TIMESTAMP" => out.text(
                    &row.try_get::<time::PrimitiveDateTime, _>(i)
                        .map_err(get_err)?
                        .format(DATETIME)
                        .unwrap_or_default(),
                ),
                "TIMESTAMPTZ" => {
                    let at = row
                        .try_get::<time::OffsetDateTime, _>(i)
                        .map_err(get_err)?
                        .to_offset(time::UtcOffset::UTC);
                    out.text(
                        &time::PrimitiveDateTime::new(at.date(), at.time())
                            .format(DATETIME)
                            .unwrap_or_default(),
                    )
                }
                "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" => {
                    out.text(row.try_get::<&str, _>(i).map_err(get_err)?)
                }
                other => {
                    return Err(StoreError::Failed(format!(
                        "column {} has type {other}, which plugins cannot read; use text, integer, double precision, boolean, date, timestamp, uuid or bytea",
                        columns[i]
                    )));
                }
            }
        }
        out.end_row()
    }
}

/// Shared handle type for statement text handed around without copying.
pub type SqlText = Arc<str>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_in_both_forms() {
        assert!(parse_date("2024-02-29").is_some());
        assert!(parse_date("2024-02-30").is_none());
        assert_eq!(
            parse_datetime("2024-02-29").unwrap().to_string(),
            "2024-02-29 0:00:00.0"
        );
        assert!(parse_datetime("2024-02-29T10:11:12").is_some());
        assert!(parse_datetime("2024-02-29 25:00:00").is_none());
    }
}
