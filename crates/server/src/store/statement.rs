//! A statement's text and its parameters, built once and runnable through either driver:
//! sqlx inside a writer's transactions, tokio-postgres on its pipelined connection (see
//! `ledger/writer.rs`), which sqlx does not offer.

use sqlx::postgres::PgArguments;
use sqlx::query::QueryScalar;
use sqlx::{PgConnection, Postgres};
use std::fmt::{Display, Write};
use tokio_postgres::types::ToSql;

/// A value bound to a statement, encodable by both drivers.
pub trait Param: ToSql + Sync + Send {
    /// Binds the value to a sqlx query.
    fn bind<'q>(
        self: Box<Self>,
        query: QueryScalar<'q, Postgres, i64, PgArguments>,
    ) -> QueryScalar<'q, Postgres, i64, PgArguments>;

    /// The value as tokio-postgres takes it.
    fn as_sql(&self) -> &(dyn ToSql + Sync);
}

impl<T> Param for T
where
    T: ToSql + Sync + Send + 'static + for<'q> sqlx::Encode<'q, Postgres> + sqlx::Type<Postgres>,
{
    fn bind<'q>(
        self: Box<Self>,
        query: QueryScalar<'q, Postgres, i64, PgArguments>,
    ) -> QueryScalar<'q, Postgres, i64, PgArguments> {
        query.bind(*self)
    }

    fn as_sql(&self) -> &(dyn ToSql + Sync) {
        self
    }
}

/// A statement that returns one `int8`, being written: text with `$n` placeholders, and the
/// values bound to them in order.
pub struct Sql {
    text: String,
    params: Vec<Box<dyn Param>>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            params: Vec::new(),
        }
    }

    pub fn push(&mut self, text: impl Display) -> &mut Self {
        // Writing into a String cannot fail.
        let _ = write!(self.text, "{text}");
        self
    }

    /// Appends the placeholder of `value`, bound as the next parameter.
    pub fn push_bind(&mut self, value: impl Param + 'static) -> &mut Self {
        self.params.push(Box::new(value));
        let n = self.params.len();
        self.push(format_args!("${n}"))
    }

    /// Ends a list whose every item was followed by `", "`: drops the last separator and
    /// closes the parenthesis.
    pub fn close_list(&mut self) -> &mut Self {
        if self.text.ends_with(", ") {
            self.text.truncate(self.text.len() - 2);
        }
        self.push(")")
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The parameters, in order, as tokio-postgres takes them.
    pub fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|param| param.as_sql()).collect()
    }

    /// Runs the statement through sqlx (prepared once per connection, as every statement of
    /// the service) and returns its one value.
    pub async fn fetch_one(self, conn: &mut PgConnection) -> sqlx::Result<i64> {
        let Self { text, params } = self;
        let query = params
            .into_iter()
            .fold(sqlx::query_scalar(&text), |query, param| param.bind(query));
        query.fetch_one(conn).await
    }
}
