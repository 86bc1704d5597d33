//! A small SQL builder that renders one statement for either backend: placeholders (`?` or
//! `$n`), JSON access for custom fields, case-insensitive LIKE. Values are always bound, never
//! spliced into the text; identifiers come only from metadata declared in code or checked keys.

use sqlx::any::{AnyArguments, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, Row};

use crate::db::Backend;

/// A bound parameter. Nulls carry a type because PostgreSQL types every parameter.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    NullText,
    NullInt,
    NullFloat,
    NullBool,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

impl From<&str> for Bind {
    fn from(s: &str) -> Self {
        Bind::Text(s.to_owned())
    }
}

impl From<String> for Bind {
    fn from(s: String) -> Self {
        Bind::Text(s)
    }
}

impl From<i64> for Bind {
    fn from(i: i64) -> Self {
        Bind::Int(i)
    }
}

impl From<Option<String>> for Bind {
    fn from(s: Option<String>) -> Self {
        s.map_or(Bind::NullText, Bind::Text)
    }
}

impl From<Option<&str>> for Bind {
    fn from(s: Option<&str>) -> Self {
        s.map_or(Bind::NullText, |s| Bind::Text(s.to_owned()))
    }
}

/// SQL text plus its parameters.
#[derive(Debug, Clone)]
pub struct Sql {
    backend: Backend,
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    pub fn new(backend: Backend) -> Self {
        Sql {
            backend,
            text: String::with_capacity(256),
            binds: Vec::new(),
        }
    }

    /// Starts a statement with fixed text.
    pub fn of(backend: Backend, text: &str) -> Self {
        let mut s = Sql::new(backend);
        s.push(text);
        s
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Appends fixed SQL text. Never pass user input here.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Puts fixed SQL text before and after the statement (a subquery in an outer one). The
    /// text added must bind nothing: placeholders keep their numbers.
    pub fn wrap(&mut self, before: &str, after: &str) -> &mut Self {
        self.text.insert_str(0, before);
        self.text.push_str(after);
        self
    }

    /// Appends a quoted identifier. Only metadata-declared names reach this.
    pub fn ident(&mut self, name: &str) -> &mut Self {
        self.text.push('"');
        self.text.push_str(&name.replace('"', "\"\""));
        self.text.push('"');
        self
    }

    /// Appends a placeholder and binds a value to it.
    pub fn bind(&mut self, value: impl Into<Bind>) -> &mut Self {
        self.binds.push(value.into());
        match self.backend {
            Backend::Sqlite => self.text.push('?'),
            Backend::Postgres => {
                self.text.push('$');
                self.text.push_str(&self.binds.len().to_string());
            }
        }
        self
    }

    /// Appends a comma-separated list of placeholders.
    pub fn bind_list(&mut self, values: impl IntoIterator<Item = Bind>) -> &mut Self {
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(v);
        }
        self
    }

    /// The keyword for a case-insensitive pattern match.
    pub fn like_keyword(&self) -> &'static str {
        match self.backend {
            // SQLite's LIKE is already case-insensitive for ASCII.
            Backend::Sqlite => " LIKE ",
            Backend::Postgres => " ILIKE ",
        }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn binds(&self) -> &[Bind] {
        &self.binds
    }

    /// Builds the sqlx query with every parameter bound.
    pub fn query(&self) -> Query<'_, Any, AnyArguments<'_>> {
        let mut q = sqlx::query(&self.text);
        for b in &self.binds {
            q = match b {
                Bind::NullText => q.bind(Option::<String>::None),
                Bind::NullInt => q.bind(Option::<i64>::None),
                Bind::NullFloat => q.bind(Option::<f64>::None),
                Bind::NullBool => q.bind(Option::<bool>::None),
                Bind::Text(s) => q.bind(s.clone()),
                Bind::Int(i) => q.bind(*i),
                Bind::Float(f) => q.bind(*f),
                Bind::Bool(v) => q.bind(*v),
            };
        }
        q
    }
}

/// Statements that return no rows, sent as one call where the backend allows it. On SQLite
/// every call is a round trip to the connection's worker thread, and the writer is held for all
/// of them: one text of several statements (sqlx binds each statement's `?`s in turn) is one
/// round trip. PostgreSQL's extended protocol takes one statement per call, so there they run
/// one after the other. A failure stops at the failing statement; the caller's transaction
/// decides what becomes of the rest.
#[derive(Debug)]
pub struct Batch {
    backend: Backend,
    statements: Vec<Sql>,
}

impl Batch {
    pub fn new(backend: Backend) -> Self {
        Batch {
            backend,
            statements: Vec::new(),
        }
    }

    pub fn push(&mut self, sql: Sql) {
        self.statements.push(sql);
    }

    pub fn extend(&mut self, statements: impl IntoIterator<Item = Sql>) {
        self.statements.extend(statements);
    }

    /// Runs every statement, in order.
    pub async fn execute(self, conn: &mut sqlx::AnyConnection) -> Result<(), sqlx::Error> {
        match self.backend {
            Backend::Sqlite if self.statements.len() > 1 => {
                let mut all = Sql::new(self.backend);
                for sql in self.statements {
                    all.text.push_str(&sql.text);
                    all.text.push_str(";\n");
                    all.binds.extend(sql.binds);
                }
                all.query().execute(conn).await?;
            }
            _ => {
                for sql in &self.statements {
                    sql.query().execute(&mut *conn).await?;
                }
            }
        }
        Ok(())
    }
}

/// Escapes `%`, `_` and `\` so user text matches literally inside a LIKE pattern (used with
/// `ESCAPE '\'`).
pub fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Reads a boolean column: PostgreSQL has real booleans, SQLite stores 0/1.
pub fn get_bool(row: &AnyRow, col: &str) -> Result<Option<bool>, sqlx::Error> {
    match row.try_get::<Option<bool>, _>(col) {
        Ok(v) => Ok(v),
        Err(_) => Ok(row.try_get::<Option<i64>, _>(col)?.map(|i| i != 0)),
    }
}

/// Reads a floating-point column, tolerating SQLite's habit of returning integers.
pub fn get_f64(row: &AnyRow, col: &str) -> Result<Option<f64>, sqlx::Error> {
    match row.try_get::<Option<f64>, _>(col) {
        Ok(v) => Ok(v),
        #[expect(clippy::cast_precision_loss, reason = "integral REAL values read back from SQLite")]
        Err(_) => Ok(row.try_get::<Option<i64>, _>(col)?.map(|i| i as f64)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_backend() {
        let mut a = Sql::of(Backend::Sqlite, "SELECT * FROM t WHERE a = ");
        a.bind(1).push(" AND b = ").bind("x");
        assert_eq!(a.text(), "SELECT * FROM t WHERE a = ? AND b = ?");
        let mut b = Sql::of(Backend::Postgres, "SELECT * FROM t WHERE a = ");
        b.bind(1)
            .push(" AND b IN (")
            .bind_list([Bind::Int(1), Bind::Int(2)])
            .push(")");
        assert_eq!(b.text(), "SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)");
        assert_eq!(b.binds().len(), 3);
        b.wrap("SELECT count(*) FROM (", ") AS s");
        assert_eq!(
            b.text(),
            "SELECT count(*) FROM (SELECT * FROM t WHERE a = $1 AND b IN ($2, $3)) AS s"
        );
        assert_eq!(b.binds().len(), 3, "wrapping binds nothing");
    }

    #[test]
    fn like_wildcards_in_user_text_are_escaped() {
        assert_eq!(escape_like("100%_a\\b"), "100\\%\\_a\\\\b");
    }

    #[test]
    fn identifiers_are_quoted() {
        let mut s = Sql::new(Backend::Sqlite);
        s.ident("name");
        assert_eq!(s.text(), "\"name\"");
    }
}
