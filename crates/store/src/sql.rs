//! One way to speak SQL to either backend's main tables (issue 25).
//!
//! Accounts, sessions, passkeys, devices, hot lists, alerts, holds,
//! sharing, corrections, reports, settings and the audit log are small,
//! relational and written with their log entry in one transaction. Their
//! modules are written once, against [`Sql`], and run unchanged on the
//! embedded store's SQLite connection and on a PostgreSQL transaction:
//! the two backends cannot drift in what a rule checks or what a change
//! logs.
//!
//! The SQL they use is the common part of both dialects: `?N` parameters
//! (rewritten to `$N` for PostgreSQL), `RETURNING`, `ON CONFLICT`,
//! `COALESCE`, `CAST`. Where the dialects differ (JSON fields, string
//! aggregation, the two-argument `max`), a statement asks
//! [`Sql::dialect`] and names both forms side by side. Values travel as
//! SQLite's five storage classes (rusqlite's `ToSql` and `FromSql`, which
//! the modules already use); PostgreSQL columns are `BIGINT`, `TEXT`,
//! `BYTEA` and `DOUBLE PRECISION` accordingly, and a value bound to a
//! column of another type is refused with the column's type named.

use std::cell::RefCell;

use rusqlite::types::{FromSql, ToSqlOutput, Value, ValueRef};
use rusqlite::ToSql;

use crate::StoreError;

/// Which SQL a statement is written in, where the two differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// One row of a result, its values owned.
pub(crate) struct Row(Vec<Value>);

impl Row {
    /// Column `i`, converted as rusqlite converts a column (called as
    /// rusqlite's `get` is: `r.get::<_, T>(i)`).
    pub(crate) fn get<I: Column, T: FromSql>(&self, i: I) -> rusqlite::Result<T> {
        let i = i.index();
        let value = self
            .0
            .get(i)
            .ok_or(rusqlite::Error::InvalidColumnIndex(i))?;
        T::column_result(ValueRef::from(value)).map_err(|e| match e {
            rusqlite::types::FromSqlError::InvalidType => {
                rusqlite::Error::InvalidColumnType(i, format!("column {i}"), value.data_type())
            }
            other => {
                rusqlite::Error::FromSqlConversionFailure(i, value.data_type(), Box::new(other))
            }
        })
    }
}

/// A column's position (only `usize`, so a literal needs no suffix).
pub(crate) trait Column {
    fn index(self) -> usize;
}

impl Column for usize {
    fn index(self) -> usize {
        self
    }
}

/// A row of either kind, for the few row readers shared by the shared
/// calls and the embedded store's own (the log's entries).
pub(crate) trait Get {
    fn col<T: FromSql>(&self, i: usize) -> rusqlite::Result<T>;
}

impl Get for Row {
    fn col<T: FromSql>(&self, i: usize) -> rusqlite::Result<T> {
        self.get(i)
    }
}

impl Get for rusqlite::Row<'_> {
    fn col<T: FromSql>(&self, i: usize) -> rusqlite::Result<T> {
        self.get(i)
    }
}

/// A connection or transaction on either backend.
pub(crate) trait Sql {
    fn dialect(&self) -> Dialect;
    /// Runs one statement; the number of rows it changed.
    fn run(&self, sql: &str, params: &[&dyn ToSql]) -> Result<usize, StoreError>;
    /// Runs one statement; every row it returned.
    fn fetch(&self, sql: &str, params: &[&dyn ToSql]) -> Result<Vec<Row>, StoreError>;
    /// The id the last `INSERT` on this connection gave its row
    /// (PostgreSQL: the last value of the identity that insert drew).
    fn last_insert_rowid(&self) -> Result<i64, StoreError>;
    /// Told the kind of each log entry appended through it
    /// (`crate::log::append`): a PostgreSQL transaction keeps them, to
    /// tell other nodes which of their caches the change makes stale.
    fn appended(&self, _kind: &str) {}
}

/// Connections that are SQLite connections underneath speak as one.
macro_rules! sqlite_underneath {
    ($($t:ty),*) => {$(
        impl Sql for $t {
            fn dialect(&self) -> Dialect {
                Dialect::Sqlite
            }
            fn run(&self, sql: &str, params: &[&dyn ToSql]) -> Result<usize, StoreError> {
                Sql::run(&**self as &rusqlite::Connection, sql, params)
            }
            fn fetch(&self, sql: &str, params: &[&dyn ToSql]) -> Result<Vec<Row>, StoreError> {
                Sql::fetch(&**self as &rusqlite::Connection, sql, params)
            }
            fn last_insert_rowid(&self) -> Result<i64, StoreError> {
                Sql::last_insert_rowid(&**self as &rusqlite::Connection)
            }
        }
    )*};
}

sqlite_underneath!(
    rusqlite::Transaction<'_>,
    crate::pool::PooledConnection<'_>,
    crate::group_commit::Exclusive<'_>
);

/// A statement's parameters, written as the modules write them for
/// rusqlite: `params![…]`, `[a, b]`, `&[a]`, or `()` for none.
pub(crate) trait Args {
    fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R;
}

impl Args for &[&dyn ToSql] {
    fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(self)
    }
}

impl Args for () {
    fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        f(&[])
    }
}

impl<T: ToSql, const N: usize> Args for [T; N] {
    fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        let refs: Vec<&dyn ToSql> = self.iter().map(|p| p as &dyn ToSql).collect();
        f(&refs)
    }
}

impl<T: ToSql, const N: usize> Args for &[T; N] {
    fn with<R>(self, f: impl FnOnce(&[&dyn ToSql]) -> R) -> R {
        let refs: Vec<&dyn ToSql> = self.iter().map(|p| p as &dyn ToSql).collect();
        f(&refs)
    }
}

impl dyn Sql + '_ {
    /// Runs one statement; the number of rows it changed.
    pub(crate) fn execute(&self, sql: &str, params: impl Args) -> Result<usize, StoreError> {
        params.with(|p| self.run(sql, p))
    }

    /// Every row a statement returned.
    pub(crate) fn rows(&self, sql: &str, params: impl Args) -> Result<Vec<Row>, StoreError> {
        params.with(|p| self.fetch(sql, p))
    }

    /// The first row, turned into a value by `f`; an error if there is
    /// none (rusqlite's `QueryReturnedNoRows`, on both backends).
    pub(crate) fn query_row<T>(
        &self,
        sql: &str,
        params: impl Args,
        f: impl FnOnce(&Row) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        self.query_opt(sql, params, f)?
            .ok_or(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
    }

    /// The first row, if any, turned into a value by `f`.
    pub(crate) fn query_opt<T>(
        &self,
        sql: &str,
        params: impl Args,
        f: impl FnOnce(&Row) -> rusqlite::Result<T>,
    ) -> Result<Option<T>, StoreError> {
        match self.rows(sql, params)?.first() {
            Some(r) => Ok(Some(f(r)?)),
            None => Ok(None),
        }
    }

    /// `sql`, to run with rusqlite-like calls.
    pub(crate) fn prepare(&self, sql: &str) -> Result<Stmt<'_>, StoreError> {
        Ok(Stmt {
            conn: self,
            sql: sql.to_string(),
        })
    }

    /// As [`prepare`](Self::prepare) (kept for the calls written for
    /// rusqlite's statement cache).
    pub(crate) fn prepare_cached(&self, sql: &str) -> Result<Stmt<'_>, StoreError> {
        self.prepare(sql)
    }

    /// Every row, each turned into a value by `f`.
    pub(crate) fn query_map<T>(
        &self,
        sql: &str,
        params: impl Args,
        mut f: impl FnMut(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.rows(sql, params)?.iter().map(&mut f).collect()
    }
}

/// A statement to run with [`Stmt`]'s calls, which read as rusqlite's
/// (the SQL is sent again each time; PostgreSQL and SQLite cache their
/// plans on their side).
pub(crate) struct Stmt<'s> {
    conn: &'s dyn Sql,
    sql: String,
}

/// Rows to step through as rusqlite's `Rows` are stepped.
pub(crate) struct Rows {
    rows: std::vec::IntoIter<Row>,
    current: Option<Row>,
}

impl Rows {
    #[allow(clippy::should_implement_trait)]
    pub(crate) fn next(&mut self) -> Result<Option<&Row>, StoreError> {
        self.current = self.rows.next();
        Ok(self.current.as_ref())
    }
}

impl Stmt<'_> {
    pub(crate) fn query(&mut self, params: impl Args) -> Result<Rows, StoreError> {
        Ok(Rows {
            rows: self.conn.rows(&self.sql, params)?.into_iter(),
            current: None,
        })
    }

    pub(crate) fn query_row<T>(
        &mut self,
        params: impl Args,
        f: impl FnOnce(&Row) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        self.conn.query_row(&self.sql, params, f)
    }

    pub(crate) fn execute(&mut self, params: impl Args) -> Result<usize, StoreError> {
        self.conn.execute(&self.sql, params)
    }

    /// Each row through `f`, as rusqlite's `query_map` (collect it into a
    /// `Result`).
    pub(crate) fn query_map<T>(
        &mut self,
        params: impl Args,
        f: impl FnMut(&Row) -> rusqlite::Result<T>,
    ) -> Result<std::vec::IntoIter<rusqlite::Result<T>>, StoreError> {
        let rows = self.conn.rows(&self.sql, params)?;
        Ok(rows.iter().map(f).collect::<Vec<_>>().into_iter())
    }
}

/// Every row of a statement, each turned into a value by `f` (as
/// `crate::collect_rows` does for the embedded store's own statements).
pub(crate) fn collect_rows<T>(
    stmt: &mut Stmt<'_>,
    params: impl Args,
    f: impl FnMut(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    stmt.conn.query_map(&stmt.sql, params, f)
}

/// Whether text `needle` occurs in `haystack` (two SQL expressions).
pub(crate) fn contains(dialect: Dialect, haystack: &str, needle: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("instr({haystack}, {needle}) > 0"),
        Dialect::Postgres => format!("strpos({haystack}, {needle}) > 0"),
    }
}

/// A text field of a JSON column, `NULL` where absent (or, in SQLite,
/// where the column is not JSON).
pub(crate) fn json_field(dialect: Dialect, column: &str, field: &str) -> String {
    match dialect {
        Dialect::Sqlite => {
            format!("(CASE WHEN json_valid({column}) THEN json_extract({column}, '$.{field}') END)")
        }
        Dialect::Postgres => format!("(CAST({column} AS JSONB) ->> '{field}')"),
    }
}

/// `.optional()` for the shared calls, as rusqlite's `OptionalExtension`
/// gives for its own.
pub(crate) trait Optional<T> {
    fn optional(self) -> Result<Option<T>, StoreError>;
}

impl<T> Optional<T> for Result<T, StoreError> {
    fn optional(self) -> Result<Option<T>, StoreError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl Sql for rusqlite::Connection {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn run(&self, sql: &str, params: &[&dyn ToSql]) -> Result<usize, StoreError> {
        Ok(self.prepare_cached(sql)?.execute(params)?)
    }

    fn fetch(&self, sql: &str, params: &[&dyn ToSql]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.prepare_cached(sql)?;
        let width = stmt.column_count();
        let mut rows = stmt.query(params)?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                values.push(Value::from(r.get_ref(i)?));
            }
            out.push(Row(values));
        }
        Ok(out)
    }

    fn last_insert_rowid(&self) -> Result<i64, StoreError> {
        Ok(rusqlite::Connection::last_insert_rowid(self))
    }
}

/// What [`Pg`] sends statements through: a connection or a transaction.
pub(crate) trait PgHandle {
    fn pg_query(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<Vec<postgres::Row>, postgres::Error>;
    fn pg_execute(
        &mut self,
        sql: &str,
        params: &[&(dyn postgres::types::ToSql + Sync)],
    ) -> Result<u64, postgres::Error>;
}

/// Implements [`PgHandle`] for `$t` by sending each call to `$to`
/// (the client itself, or what a wrapper holds).
macro_rules! pg_handle {
    ($t:ty, |$s:ident| $to:expr) => {
        impl PgHandle for $t {
            fn pg_query(
                &mut self,
                sql: &str,
                params: &[&(dyn postgres::types::ToSql + Sync)],
            ) -> Result<Vec<postgres::Row>, postgres::Error> {
                let $s = self;
                postgres::GenericClient::query($to, sql, params)
            }
            fn pg_execute(
                &mut self,
                sql: &str,
                params: &[&(dyn postgres::types::ToSql + Sync)],
            ) -> Result<u64, postgres::Error> {
                let $s = self;
                postgres::GenericClient::execute($to, sql, params)
            }
        }
    };
}

pg_handle!(postgres::Client, |c| c);
pg_handle!(postgres::Transaction<'_>, |t| t);
pg_handle!(crate::postgres::connect::PgConn<'_>, |c| &mut **c);
pg_handle!(&mut postgres::Client, |c| &mut **c);
pg_handle!(&mut postgres::Transaction<'_>, |t| &mut **t);
pg_handle!(&mut crate::postgres::connect::PgConn<'_>, |c| &mut ***c);

/// A PostgreSQL connection or transaction seen as [`Sql`], with the
/// kinds of the log entries appended through it.
pub(crate) struct Pg<C: PgHandle + Send>(RefCell<C>, RefCell<Vec<String>>);

impl<C: PgHandle + Send> Pg<C> {
    pub(crate) fn new(handle: C) -> Pg<C> {
        Pg(RefCell::new(handle), RefCell::new(Vec::new()))
    }

    /// The kinds of the log entries appended through it so far.
    pub(crate) fn appended_kinds(&self) -> Vec<String> {
        self.1.borrow().clone()
    }
}

use crate::postgres::connect::off_runtime;

fn pg_error(e: postgres::Error) -> StoreError {
    StoreError::Postgres(crate::postgres::connect::statement_error(e))
}

impl<C: PgHandle + Send> Sql for Pg<C> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn run(&self, sql: &str, params: &[&dyn ToSql]) -> Result<usize, StoreError> {
        let values = bind(params)?;
        let refs = as_pg(&values);
        let sql = to_postgres(sql);
        let mut handle = self.0.borrow_mut();
        let handle = &mut *handle;
        let n = off_runtime(|| handle.pg_execute(&sql, &refs)).map_err(pg_error)?;
        Ok(n as usize)
    }

    fn fetch(&self, sql: &str, params: &[&dyn ToSql]) -> Result<Vec<Row>, StoreError> {
        let values = bind(params)?;
        let refs = as_pg(&values);
        let sql = to_postgres(sql);
        let mut handle = self.0.borrow_mut();
        let handle = &mut *handle;
        let rows = off_runtime(|| handle.pg_query(&sql, &refs)).map_err(pg_error)?;
        rows.iter().map(from_pg).collect()
    }

    fn appended(&self, kind: &str) {
        self.1.borrow_mut().push(kind.to_string());
    }

    fn last_insert_rowid(&self) -> Result<i64, StoreError> {
        let mut handle = self.0.borrow_mut();
        let handle = &mut *handle;
        let rows = off_runtime(|| handle.pg_query("SELECT lastval()", &[])).map_err(pg_error)?;
        rows.first()
            .ok_or(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))?
            .try_get(0)
            .map_err(pg_error)
    }
}

/// `?N` and `?` parameters as PostgreSQL's `$N` (outside quoted text).
pub(crate) fn to_postgres(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains('?') {
        return sql.into();
    }
    let mut out = String::with_capacity(sql.len() + 8);
    let mut next = 0usize;
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                out.push(c);
            }
            '?' if !quoted => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = match digits.parse::<usize>() {
                    Ok(n) => n,
                    // A bare `?` takes the number after the largest so far.
                    Err(_) => next + 1,
                };
                next = next.max(n);
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out.into()
}

/// A parameter's value, bound to whatever type PostgreSQL inferred for
/// its place (an integer to `BIGINT`, `INTEGER`, `SMALLINT` or
/// `BOOLEAN`; text to any text type; bytes to `BYTEA`).
#[derive(Debug)]
struct Bound(Value);

fn bind(params: &[&dyn ToSql]) -> Result<Vec<Bound>, StoreError> {
    params
        .iter()
        .map(|p| {
            let value = match p.to_sql()? {
                ToSqlOutput::Borrowed(v) => v.into(),
                ToSqlOutput::Owned(v) => v,
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "a parameter PostgreSQL cannot take: {other:?}"
                    )))
                }
            };
            // PostgreSQL text cannot hold NUL (SQLite's can): refused as
            // input, the same on both backends' callers' side of the API.
            if matches!(&value, Value::Text(t) if t.contains('\0')) {
                return Err(StoreError::Invalid {
                    code: "invalid_text",
                    message: "text may not contain the NUL character (U+0000)".into(),
                });
            }
            Ok(Bound(value))
        })
        .collect()
}

fn as_pg(values: &[Bound]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    values
        .iter()
        .map(|v| v as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

impl postgres::types::ToSql for Bound {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::{ToSql as PgToSql, Type};
        fn put<T: PgToSql>(
            v: T,
            ty: &Type,
            out: &mut bytes::BytesMut,
        ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
            v.to_sql(ty, out)
        }
        match (&self.0, ty) {
            (Value::Null, _) => Ok(postgres::types::IsNull::Yes),
            (Value::Integer(i), &Type::INT8) => put(*i, ty, out),
            (Value::Integer(i), &Type::INT4) => put(i32::try_from(*i)?, ty, out),
            (Value::Integer(i), &Type::INT2) => put(i16::try_from(*i)?, ty, out),
            (Value::Integer(i), &Type::BOOL) => put(*i != 0, ty, out),
            (Value::Integer(i), &Type::FLOAT8) => put(*i as f64, ty, out),
            (Value::Real(f), &Type::FLOAT8) => put(*f, ty, out),
            (Value::Real(f), &Type::FLOAT4) => put(*f as f32, ty, out),
            (Value::Text(s), t) if <&str as PgToSql>::accepts(t) => put(s.as_str(), ty, out),
            // SQLite's column affinity, which the shared statements were
            // written against: a number stored in a text column is kept
            // as its decimal text, and text of a number in an integer
            // column as the number.
            (Value::Integer(i), t) if <&str as PgToSql>::accepts(t) => {
                put(i.to_string().as_str(), ty, out)
            }
            (Value::Text(s), &Type::INT8) => put(s.trim().parse::<i64>()?, ty, out),
            (Value::Blob(b), &Type::BYTEA) => put(b.as_slice(), ty, out),
            (Value::Blob(b), &Type::UUID) => put(uuid::Uuid::from_slice(b)?, ty, out),
            (v, t) => Err(format!("a {:?} value cannot go in a {t} column", v.data_type()).into()),
        }
    }

    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }

    postgres::types::to_sql_checked!();
}

fn from_pg(row: &postgres::Row) -> Result<Row, StoreError> {
    use postgres::types::Type;
    let mut values = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let conv = |e: postgres::Error| pg_error(e);
        let v = match *col.type_() {
            Type::INT8 => row
                .try_get::<_, Option<i64>>(i)
                .map_err(conv)?
                .map(Value::Integer),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(i)
                .map_err(conv)?
                .map(|v| Value::Integer(v.into())),
            Type::INT2 => row
                .try_get::<_, Option<i16>>(i)
                .map_err(conv)?
                .map(|v| Value::Integer(v.into())),
            Type::BOOL => row
                .try_get::<_, Option<bool>>(i)
                .map_err(conv)?
                .map(|v| Value::Integer(v.into())),
            Type::FLOAT8 => row
                .try_get::<_, Option<f64>>(i)
                .map_err(conv)?
                .map(Value::Real),
            Type::FLOAT4 => row
                .try_get::<_, Option<f32>>(i)
                .map_err(conv)?
                .map(|v| Value::Real(v.into())),
            Type::BYTEA => row
                .try_get::<_, Option<Vec<u8>>>(i)
                .map_err(conv)?
                .map(Value::Blob),
            Type::UUID => row
                .try_get::<_, Option<uuid::Uuid>>(i)
                .map_err(conv)?
                .map(|u| Value::Blob(u.as_bytes().to_vec())),
            ref t if <String as postgres::types::FromSql>::accepts(t) => row
                .try_get::<_, Option<String>>(i)
                .map_err(conv)?
                .map(Value::Text),
            ref t => {
                return Err(StoreError::Corrupt(format!(
                    "column {} has type {t}, which the shared SQL does not read (cast it)",
                    col.name()
                )))
            }
        };
        values.push(v.unwrap_or(Value::Null));
    }
    Ok(Row(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_renumbered_for_postgres() {
        assert_eq!(
            to_postgres("SELECT a FROM t WHERE b = ?2 AND c = ?1 OR d = ?2"),
            "SELECT a FROM t WHERE b = $2 AND c = $1 OR d = $2"
        );
        assert_eq!(to_postgres("VALUES (?, ?, ?)"), "VALUES ($1, $2, $3)");
        assert_eq!(
            to_postgres("SELECT '?' || ?1, 'it''s ?'"),
            "SELECT '?' || $1, 'it''s ?'"
        );
        assert_eq!(to_postgres("SELECT 1"), "SELECT 1");
    }

    #[test]
    fn the_shared_calls_work_on_sqlite() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let sql: &dyn Sql = &conn;
        sql.execute("CREATE TABLE t(a INTEGER, b TEXT, c BLOB)", ())
            .unwrap();
        let n = sql
            .execute(
                "INSERT INTO t VALUES (?1, ?2, ?3), (?1, NULL, NULL)",
                rusqlite::params![7i64, "x", vec![1u8, 2]],
            )
            .unwrap();
        assert_eq!(n, 2);
        let (a, b, c): (i64, Option<String>, Option<Vec<u8>>) = sql
            .query_row("SELECT a, b, c FROM t WHERE b = ?1", ["x"], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!((a, b.as_deref(), c), (7, Some("x"), Some(vec![1, 2])));
        assert!(sql
            .query_opt("SELECT a FROM t WHERE b = 'none'", (), |r| r
                .get::<_, i64>(0))
            .unwrap()
            .is_none());
        assert!(matches!(
            sql.query_row("SELECT a FROM t WHERE b = 'none'", (), |r| r
                .get::<_, i64>(0)),
            Err(StoreError::Sqlite(rusqlite::Error::QueryReturnedNoRows))
        ));
        let all = sql
            .query_map("SELECT b FROM t ORDER BY b", (), |r| {
                Ok(r.get::<_, Option<String>>(0)?)
            })
            .unwrap();
        assert_eq!(all, vec![None, Some("x".to_string())]);
        // A wrong type is an error naming the column, not a panic.
        assert!(sql
            .query_row("SELECT b FROM t WHERE b = 'x'", (), |r| r.get::<_, i64>(0))
            .is_err());
    }
}
