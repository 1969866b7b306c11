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
use super::values::SizeHints;
pub use super::values::{EncodedRows, MAX_RESULT_BYTES, RowForm, SqlValue, StoreError};

/// The last result sizes of the statements run on PostgreSQL, where no row header is kept
/// per statement (SQLite keeps its sizes in its headers): a Bulk Data export's page
/// statements start with room for their few MiB instead of growing to them.
static PG_SIZES: SizeHints = SizeHints::new();

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
                let key = SizeHints::key(sql);
                let mut encoder: Option<PgEncoder> = None;
                while let Some(row) =
                    std::future::poll_fn(|cx| futures_core::Stream::poll_next(rows.as_mut(), cx))
                        .await
                {
                    let row = row.map_err(classify)?;
                    encoder
                        .get_or_insert_with(|| PgEncoder::new(&row, form, PG_SIZES.get(key)))
                        .push(&row)?;
                }
                let encoded = encoder.map_or_else(
                    || RowWriter::new(std::iter::empty(), form).finish(),
                    |encoder| encoder.out.finish(),
                );
                PG_SIZES.put(key, &encoded);
                Ok(encoded)
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
    let mut encoder = PgEncoder::new(first, form, [0, 0]);
    for row in rows {
        encoder.push(row)?;
    }
    Ok(encoder.out.finish())
}

/// Encodes PostgreSQL rows one at a time. Text is read borrowed from the row (`&str`)
/// and uuids and times are formatted on the stack: nothing is allocated per value.
/// Each column's type is looked at once, on the first row; each value is then decoded
/// from its bytes by that type's decoder, without sqlx checking the type again for
/// every value (a Bulk Data export encodes millions).
struct PgEncoder {
    columns: Vec<String>,
    kinds: Vec<PgKind>,
    out: RowWriter,
}

/// How a PostgreSQL column is read.
#[derive(Clone, Copy)]
enum PgKind {
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Bool,
    Bytea,
    Uuid,
    Date,
    Timestamp,
    TimestampTz,
    Text,
    /// A type plugins cannot read (named in the error).
    Other,
}

impl PgKind {
    fn of(type_name: &str) -> PgKind {
        match type_name {
            "INT2" => PgKind::Int2,
            "INT4" => PgKind::Int4,
            "INT8" => PgKind::Int8,
            "FLOAT4" => PgKind::Float4,
            "FLOAT8" => PgKind::Float8,
            "BOOL" => PgKind::Bool,
            "BYTEA" => PgKind::Bytea,
            "UUID" => PgKind::Uuid,
            "DATE" => PgKind::Date,
            "TIMESTAMP" => PgKind::Timestamp,
            "TIMESTAMPTZ" => PgKind::TimestampTz,
            "TEXT" | "VARCHAR" | "BPCHAR" | "NAME" | "CHAR" => PgKind::Text,
            _ => PgKind::Other,
        }
    }
}

/// `YYYY-MM-DD`, or `YYYY-MM-DD HH:MM:SS` with `time`, as [`DATE`] and [`DATETIME`]
/// write them, in a buffer on the stack.
struct TimeText {
    bytes: [u8; 19],
    len: usize,
}

impl TimeText {
    /// `None` for a year outside 0–9999 (written by the `time` formatter instead).
    fn new(date: time::Date, time: Option<time::Time>) -> Option<TimeText> {
        let year = u16::try_from(date.year()).ok().filter(|y| *y <= 9999)?;
        let mut text = TimeText {
            bytes: *b"0000-00-00 00:00:00",
            len: 10,
        };
        let two = |bytes: &mut [u8; 19], at: usize, n: u8| {
            bytes[at] = b'0' + n / 10;
            bytes[at + 1] = b'0' + n % 10;
        };
        two(&mut text.bytes, 0, (year / 100) as u8);
        two(&mut text.bytes, 2, (year % 100) as u8);
        two(&mut text.bytes, 5, u8::from(date.month()));
        two(&mut text.bytes, 8, date.day());
        if let Some(time) = time {
            two(&mut text.bytes, 11, time.hour());
            two(&mut text.bytes, 14, time.minute());
            two(&mut text.bytes, 17, time.second());
            text.len = 19;
        }
        Some(text)
    }

    fn as_str(&self) -> &str {
        // ASCII digits and separators only.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// A PostgreSQL value's bytes read as `T`, the type its column was found to have.
fn decode<'r, T: sqlx::Decode<'r, sqlx::Postgres>>(
    raw: sqlx::postgres::PgValueRef<'r>,
) -> Result<T, sqlx::error::BoxDynError> {
    T::decode(raw)
}

/// `date` (and `time`) as text: [`TimeText`], or the `time` formatter for other years.
fn time_text(out: &mut RowWriter, date: time::Date, time: Option<time::Time>) {
    match TimeText::new(date, time) {
        Some(text) => out.text(text.as_str()),
        None => out.text(&match time {
            Some(time) => time::PrimitiveDateTime::new(date, time)
                .format(DATETIME)
                .unwrap_or_default(),
            None => date.format(DATE).unwrap_or_default(),
        }),
    }
}

impl PgEncoder {
    /// An encoder for rows shaped like `first`, in `form`, whose statement's last result
    /// took `sizes` bytes (see [`SizeHints`]).
    fn new(first: &PgRow, form: RowForm, sizes: [u32; 2]) -> PgEncoder {
        let columns: Vec<String> = first
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        let kinds = first
            .columns()
            .iter()
            .map(|c| PgKind::of(c.type_info().name()))
            .collect();
        let out = RowWriter::hinted(columns.iter().map(String::as_str), form, sizes);
        PgEncoder {
            columns,
            kinds,
            out,
        }
    }

    /// Appends a row; refuses it past the result's size limit.
    fn push(&mut self, row: &PgRow) -> Result<(), StoreError> {
        let PgEncoder {
            columns,
            kinds,
            out,
        } = self;
        out.begin_row();
        for (i, kind) in kinds.iter().enumerate() {
            let raw = row.try_get_raw(i).map_err(failed)?;
            if raw.is_null() {
                out.null();
                continue;
            }
            let get_err = |e: sqlx::error::BoxDynError| {
                StoreError::Failed(format!("column {}: {e}", columns[i]))
            };
            match kind {
                PgKind::Int2 => out.integer(decode::<i16>(raw).map_err(get_err)?.into()),
                PgKind::Int4 => out.integer(decode::<i32>(raw).map_err(get_err)?.into()),
                PgKind::Int8 => out.integer(decode::<i64>(raw).map_err(get_err)?),
                PgKind::Float4 => out.real(decode::<f32>(raw).map_err(get_err)?.into()),
                PgKind::Float8 => out.real(decode::<f64>(raw).map_err(get_err)?),
                PgKind::Bool => out.integer(decode::<bool>(raw).map_err(get_err)?.into()),
                PgKind::Bytea => out.blob(decode::<&[u8]>(raw).map_err(get_err)?),
                PgKind::Uuid => out.text(
                    decode::<uuid::Uuid>(raw)
                        .map_err(get_err)?
                        .hyphenated()
                        .encode_lower(&mut uuid::Uuid::encode_buffer()),
                ),
                PgKind::Date => time_text(out, decode::<time::Date>(raw).map_err(get_err)?, None),
                PgKind::Timestamp => {
                    let at = decode::<time::PrimitiveDateTime>(raw).map_err(get_err)?;
                    time_text(out, at.date(), Some(at.time()));
                }
                PgKind::TimestampTz => {
                    let at = decode::<time::OffsetDateTime>(raw)
                        .map_err(get_err)?
                        .to_offset(time::UtcOffset::UTC);
                    time_text(out, at.date(), Some(at.time()));
                }
                PgKind::Text => out.text(decode::<&str>(raw).map_err(get_err)?),
                PgKind::Other => {
                    let other = row.columns()[i].type_info().name();
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
    fn times_are_written_as_the_time_formatter_writes_them() {
        for (year, month, day) in [(2024, 2, 29), (1, 1, 1), (999, 12, 31), (9999, 12, 31)] {
            let date =
                time::Date::from_calendar_date(year, month.try_into().unwrap(), day).unwrap();
            for (h, m, s) in [(0, 0, 0), (9, 5, 7), (23, 59, 59)] {
                let time = time::Time::from_hms(h, m, s).unwrap();
                let text = TimeText::new(date, Some(time)).unwrap();
                let expected = time::PrimitiveDateTime::new(date, time)
                    .format(DATETIME)
                    .unwrap();
                assert_eq!(text.as_str(), expected);
            }
            let text = TimeText::new(date, None).unwrap();
            assert_eq!(text.as_str(), date.format(DATE).unwrap());
        }
        // Years the stack buffer does not hold go to the formatter.
        let before = time::Date::from_calendar_date(-1, time::Month::March, 1).unwrap();
        assert!(TimeText::new(before, None).is_none());
    }

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
