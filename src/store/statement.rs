//! The values that travel in a message: a [`Statement`] with its bound
//! parameters, the [`IntoValue`] conversions, and the [`ResultSet`] a query
//! returns.

use rusqlite::types::Value;

/// One SQL statement and its bound parameters, owned so it can travel in a
/// message.
///
/// ```
/// use walguard::Statement;
///
/// let stmt = Statement::new("INSERT INTO kv (k, v) VALUES (?1, ?2)")
///     .bind("answer")
///     .bind(42);
/// assert_eq!(stmt.params().len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    sql: String,
    params: Vec<Value>,
}

impl Statement {
    /// A statement without parameters (yet).
    #[must_use]
    pub fn new(sql: impl Into<String>) -> Self {
        Self {
            sql: sql.into(),
            params: Vec::new(),
        }
    }

    /// Binds the next positional parameter.
    #[must_use]
    pub fn bind(mut self, value: impl IntoValue) -> Self {
        self.params.push(value.into_value());
        self
    }

    /// The SQL text.
    #[must_use]
    pub fn sql(&self) -> &str {
        &self.sql
    }

    /// The bound parameters, in order.
    #[must_use]
    pub fn params(&self) -> &[Value] {
        &self.params
    }
}

impl From<&str> for Statement {
    fn from(sql: &str) -> Self {
        Self::new(sql)
    }
}

impl From<String> for Statement {
    fn from(sql: String) -> Self {
        Self::new(sql)
    }
}

/// A Rust value that can be bound to a statement parameter.
///
/// Implemented for integers, floats, `bool`, strings, byte buffers,
/// `Option` of those (`None` binds NULL) and rusqlite's own
/// [`Value`].
pub trait IntoValue {
    /// The owned SQLite value.
    fn into_value(self) -> Value;
}

impl IntoValue for Value {
    fn into_value(self) -> Value {
        self
    }
}

macro_rules! into_value_via_from {
    ($($t:ty),*) => {$(
        impl IntoValue for $t {
            fn into_value(self) -> Value {
                Value::from(self)
            }
        }
    )*};
}
into_value_via_from!(
    i8,
    i16,
    i32,
    i64,
    u8,
    u16,
    u32,
    f32,
    f64,
    bool,
    String,
    Vec<u8>
);

impl IntoValue for &str {
    fn into_value(self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl IntoValue for &String {
    fn into_value(self) -> Value {
        Value::Text(self.clone())
    }
}

impl IntoValue for &[u8] {
    fn into_value(self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl<T: IntoValue> IntoValue for Option<T> {
    fn into_value(self) -> Value {
        self.map_or(Value::Null, IntoValue::into_value)
    }
}

/// The rows a query returned, with their column names.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResultSet {
    pub(super) columns: Vec<String>,
    pub(super) rows: Vec<Vec<Value>>,
}

impl ResultSet {
    /// Steps `prepared` with `params` to its end and collects the rows.
    /// The width of each row and the column names come from the statement
    /// as stepped, not as cached: a schema change makes SQLite prepare it
    /// again at the first step (FACTS.md, rusqlite#1371). The read side's
    /// `query` collects its rows here.
    pub(crate) fn collect(
        prepared: &mut rusqlite::Statement<'_>,
        params: &[Value],
    ) -> rusqlite::Result<Self> {
        let mut rows = Vec::new();
        {
            let mut cursor = prepared.query(rusqlite::params_from_iter(params))?;
            while let Some(row) = cursor.next()? {
                let width = row.as_ref().column_count();
                rows.push(
                    (0..width)
                        .map(|i| row.get::<_, Value>(i))
                        .collect::<rusqlite::Result<Vec<Value>>>()?,
                );
            }
        }
        let columns = prepared.column_names().map(str::to_owned).collect();
        Ok(Self { columns, rows })
    }

    /// Column names, in order.
    #[must_use]
    pub fn columns(&self) -> &[String] {
        &self.columns
    }
    /// The rows; each has one value per column.
    #[must_use]
    pub fn rows(&self) -> &[Vec<Value>] {
        &self.rows
    }
    /// Number of rows.
    #[must_use]
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    /// Whether no row came back.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    /// Takes the rows out.
    #[must_use]
    pub fn into_rows(self) -> Vec<Vec<Value>> {
        self.rows
    }
}
