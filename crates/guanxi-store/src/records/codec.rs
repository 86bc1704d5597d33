//! Between records and rows: which columns a field uses, how a value is bound, how a column is
//! read back, and the SQL expression that filters and sorts a field (a column for standard
//! fields, a JSON path into `custom` for custom ones). Reads of records for the API select each
//! record as one JSON value, and a page as one row (`aggregate_rows`), decoded by position
//! (decision 0011); single writes read their rows back column by column (`decode_row`), and
//! multi-row creates make them from the values they bound (`inserted_record`, decision 0017).

use guanxi_core::meta::FieldType;
use guanxi_core::{FieldDef, ObjectDef, Value};
use serde_json::{Map, Value as Json};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::db::Backend;
use crate::error::StoreResult;
use crate::sql::{Bind, Sql, get_bool, get_f64};

/// A record as the API shows it: field key → JSON value.
pub type Record = Map<String, Json>;

/// System columns that are never NULL (their sort needs no NULLS LAST, which keeps index use).
pub fn never_null(field: &FieldDef) -> bool {
    field.system
        && matches!(
            field.key.as_str(),
            "id" | "version" | "created_at" | "updated_at" | "created_by" | "updated_by"
        )
}

/// The currency column that accompanies a standard money field.
pub fn currency_column(key: &str) -> String {
    format!("{key}_currency")
}

/// The columns of an object's table that make a record, in the order [`push_select_list`]
/// writes them and [`decode_json_rows`] reads them.
fn select_columns(object: &ObjectDef) -> Vec<String> {
    let mut columns = Vec::with_capacity(object.fields.len() + 3);
    for f in object.column_fields() {
        columns.push(f.key.clone());
        if matches!(f.field_type, FieldType::Money) {
            columns.push(currency_column(&f.key));
        }
    }
    columns.extend(["custom", "deleted_at", "deleted_by"].map(String::from));
    columns
}

/// Appends the select list of an object's table.
pub fn push_select_list(sql: &mut Sql, object: &ObjectDef) {
    for (i, column) in select_columns(object).iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.ident(column);
    }
}

/// Columns per JSON array call: PostgreSQL takes at most 100 arguments per function, SQLite 127.
const JSON_CHUNK: usize = 50;

/// The SQL expression of one row of an object's table as JSON: an array of arrays of at most
/// [`JSON_CHUNK`] columns each, in select-list order. Binds nothing.
fn json_row_expr(backend: Backend, object: &ObjectDef) -> String {
    let array = match backend {
        Backend::Sqlite => "json_array(",
        Backend::Postgres => "json_build_array(",
    };
    let mut sql = Sql::of(backend, array);
    for (i, chunk) in select_columns(object).chunks(JSON_CHUNK).enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push(array);
        for (j, column) in chunk.iter().enumerate() {
            if j > 0 {
                sql.push(", ");
            }
            sql.ident(column);
        }
        sql.push(")");
    }
    sql.push(")");
    sql.text().to_owned()
}

/// Appends one row of an object's table as a single JSON text column `gx_row` (see
/// [`decode_json_row`]): one value to hand over and convert instead of one per column.
pub fn push_json_row(sql: &mut Sql, object: &ObjectDef) {
    push_json_row_as(sql, object, "gx_row");
}

/// [`push_json_row`] under another column name (a statement returning two views of a row).
pub fn push_json_row_as(sql: &mut Sql, object: &ObjectDef, alias: &str) {
    let expr = json_row_expr(sql.backend(), object);
    match sql.backend() {
        Backend::Sqlite => sql.push(&expr),
        Backend::Postgres => sql.push("CAST(").push(&expr).push(" AS TEXT)"),
    };
    sql.push(" AS ").push(alias);
}

/// Turns a query that selects an object's columns (see [`push_select_list`]) into one that
/// returns all its rows as one JSON text column `gx_rows`, ordered by `order` (SQL over the
/// inner query's column names; empty for no order). Each row of a result costs a message from
/// SQLite's thread and a conversion of every value to a database-neutral row: for a page of
/// twenty records of forty columns that was several times the database's own work.
pub fn aggregate_rows(sql: &mut Sql, object: &ObjectDef, order: &str) {
    let row = json_row_expr(sql.backend(), object);
    aggregate(sql, &row, order);
}

/// Wraps a query into one row `gx_rows` holding a JSON array of `expr` over its rows.
pub fn aggregate(sql: &mut Sql, expr: &str, order: &str) {
    let order = if order.is_empty() {
        String::new()
    } else {
        format!(" ORDER BY {order}")
    };
    let head = match sql.backend() {
        Backend::Sqlite => format!("SELECT json_group_array({expr}{order}) AS gx_rows FROM ("),
        Backend::Postgres => format!("SELECT CAST(json_agg({expr}{order}) AS TEXT) AS gx_rows FROM ("),
    };
    sql.wrap(&head, ") AS gx_rows_of");
}

/// The JSON array of an aggregated query (see [`aggregate`]) from its one value; none gives an
/// empty list (PostgreSQL's `json_agg` of nothing is NULL, SQLite's `json_group_array` an empty
/// array).
pub fn aggregated<T: serde::de::DeserializeOwned>(value: Option<String>) -> StoreResult<Vec<T>> {
    match value {
        Some(text) => Ok(serde_json::from_str(&text).map_err(|e| anyhow::Error::new(e).context("aggregated rows"))?),
        None => Ok(Vec::new()),
    }
}

/// Reads the value of a query wrapped by [`aggregate_rows`] into records, in its order.
pub fn decode_json_rows(object: &ObjectDef, value: Option<String>, with_deleted: bool) -> StoreResult<Vec<Record>> {
    aggregated::<Vec<Vec<Json>>>(value)?
        .into_iter()
        .map(|chunks| decode_values(object, chunks.into_iter().flatten(), with_deleted))
        .collect()
}

/// Reads the `gx_row` value of [`push_json_row`] into a record.
pub fn decode_json_row(object: &ObjectDef, text: &str, with_deleted: bool) -> StoreResult<Record> {
    let chunks: Vec<Vec<Json>> =
        serde_json::from_str(text).map_err(|e| anyhow::Error::new(e).context("record row as JSON"))?;
    decode_values(object, chunks.into_iter().flatten(), with_deleted)
}

/// The record a row just inserted holds, from the values bound for its columns (`column`
/// gives a column's bound value, `None` for a column left to its default, which is NULL for
/// every record column but `custom`): what [`decode_json_row`] would make of the row read back,
/// without reading it back. Multi-row creates use it (decision 0017): with `RETURNING`, SQLite
/// built, held and handed over each row's JSON to be parsed again — at M the INSERTs took 8.7 s
/// of a 27.5 s records phase that way, 5.6 s without.
pub fn inserted_record<'a>(
    object: &ObjectDef,
    column: impl Fn(&str) -> Option<&'a Bind>,
    custom: &str,
) -> StoreResult<Record> {
    let values = select_columns(object).into_iter().map(|c| match c.as_str() {
        "custom" => Json::String(custom.to_owned()),
        other => column(other).map_or(Json::Null, bound_json),
    });
    decode_values(object, values, false)
}

/// A bound value as the database's JSON of the stored column would give it.
fn bound_json(bind: &Bind) -> Json {
    match bind {
        Bind::NullText | Bind::NullInt | Bind::NullFloat | Bind::NullBool => Json::Null,
        Bind::Text(s) => Json::String(s.clone()),
        Bind::Int(i) => Json::from(*i),
        Bind::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Bind::Bool(b) => Json::Bool(*b),
    }
}

/// A record from its column values in select-list order, as JSON: the same record
/// [`decode_row`] makes from the columns themselves (SQLite gives booleans as 0/1 and may give
/// an integral REAL as an integer; JSON-valued columns hold JSON text).
fn decode_values(object: &ObjectDef, values: impl Iterator<Item = Json>, with_deleted: bool) -> StoreResult<Record> {
    let mut values = values;
    let mut next = || {
        values
            .next()
            .ok_or_else(|| anyhow::anyhow!("a JSON row of {} has too few columns", object.key))
    };
    let text = |v: Json| match v {
        Json::Null | Json::String(_) => v,
        other => Json::String(other.to_string()),
    };
    // Sized up front: growing the map re-hashes every key several times for a forty-field record.
    let mut out = Record::with_capacity(object.fields.len() + 2);
    for f in object.column_fields() {
        let v = next()?;
        let v = match &f.field_type {
            FieldType::Integer { .. } => match v {
                Json::Number(_) => v,
                _ => Json::Null,
            },
            FieldType::Decimal => v
                .as_f64()
                .and_then(serde_json::Number::from_f64)
                .map_or(Json::Null, Json::Number),
            FieldType::Money => {
                let currency = next()?;
                match v {
                    Json::Number(amount) => serde_json::json!({
                        "amount": amount,
                        "currency": currency.as_str().unwrap_or("CNY"),
                    }),
                    _ => Json::Null,
                }
            }
            FieldType::Boolean => match v {
                Json::Bool(_) => v,
                Json::Number(n) => Json::Bool(n.as_i64() != Some(0)),
                _ => Json::Null,
            },
            FieldType::MultiSelect { .. }
            | FieldType::MultiRelation { .. }
            | FieldType::Attachments { .. }
            | FieldType::Json => v
                .as_str()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or(Json::Null),
            _ => text(v),
        };
        out.insert(f.key.clone(), v);
    }
    let custom: Map<String, Json> = next()?
        .as_str()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    for f in object.fields.iter().filter(|f| f.custom) {
        out.insert(f.key.clone(), custom.get(&f.key).cloned().unwrap_or(Json::Null));
    }
    let (deleted_at, deleted_by) = (next()?, next()?);
    if with_deleted {
        out.insert("deleted_at".into(), text(deleted_at));
        out.insert("deleted_by".into(), text(deleted_by));
    }
    Ok(out)
}

fn null_of(field: &FieldDef) -> Bind {
    match field.field_type {
        FieldType::Integer { .. } | FieldType::Money => Bind::NullInt,
        FieldType::Decimal => Bind::NullFloat,
        FieldType::Boolean => Bind::NullBool,
        _ => Bind::NullText,
    }
}

/// The columns and binds that store a standard field's value.
pub fn column_binds(field: &FieldDef, value: &Value) -> Vec<(String, Bind)> {
    if matches!(field.field_type, FieldType::Money) {
        let (amount, currency) = match value {
            Value::Money { amount, currency } => (Bind::Int(*amount), Bind::Text(currency.clone())),
            _ => (Bind::NullInt, Bind::NullText),
        };
        return vec![(field.key.clone(), amount), (currency_column(&field.key), currency)];
    }
    vec![(field.key.clone(), value_bind(field, value))]
}

/// Binds a typed value for a field's column.
pub fn value_bind(field: &FieldDef, value: &Value) -> Bind {
    match value {
        Value::Null => null_of(field),
        Value::Text(s) => Bind::Text(s.clone()),
        Value::Int(i) => Bind::Int(*i),
        Value::Float(f) => Bind::Float(*f),
        Value::Bool(b) => Bind::Bool(*b),
        Value::Money { amount, .. } => Bind::Int(*amount),
        Value::Json(j) => Bind::Text(j.to_string()),
    }
}

/// Binds a JSON value (from a cursor) as the field's stored kind.
pub fn json_bind(field: &FieldDef, value: &Json) -> Option<Bind> {
    if value.is_null() {
        return Some(null_of(field));
    }
    Some(match field.field_type {
        FieldType::Integer { .. } | FieldType::Money => Bind::Int(value.as_i64()?),
        FieldType::Decimal => Bind::Float(value.as_f64()?),
        FieldType::Boolean => Bind::Bool(value.as_bool()?),
        _ => Bind::Text(value.as_str()?.to_owned()),
    })
}

/// The value a sort key compares on, as found in an output record (for cursors).
pub fn sort_value(field: &FieldDef, record: &Record) -> Json {
    let v = record.get(&field.key).cloned().unwrap_or(Json::Null);
    match field.field_type {
        FieldType::Money => v.get("amount").cloned().unwrap_or(Json::Null),
        _ => v,
    }
}

/// Appends the SQL expression of a field for WHERE and ORDER BY.
pub fn push_field_expr(sql: &mut Sql, field: &FieldDef) {
    if !field.custom {
        sql.ident(&field.key);
        return;
    }
    // Custom keys are checked to be `cf_[a-z0-9_]+` before they are stored, so naming them in a
    // JSON path is safe.
    let key = field.key.as_str();
    match sql.backend() {
        Backend::Sqlite => {
            let path = if matches!(field.field_type, FieldType::Money) {
                format!("json_extract(\"custom\", '$.{key}.amount')")
            } else {
                format!("json_extract(\"custom\", '$.{key}')")
            };
            sql.push(&path);
        }
        Backend::Postgres => {
            let expr = match field.field_type {
                FieldType::Integer { .. } | FieldType::Decimal => {
                    format!("((\"custom\"::jsonb ->> '{key}')::numeric)")
                }
                FieldType::Money => {
                    format!("((\"custom\"::jsonb -> '{key}' ->> 'amount')::numeric)")
                }
                FieldType::Boolean => format!("((\"custom\"::jsonb ->> '{key}')::boolean)"),
                _ => format!("(\"custom\"::jsonb ->> '{key}')"),
            };
            sql.push(&expr);
        }
    }
}

/// Reads one row into a record.
pub fn decode_row(object: &ObjectDef, row: &AnyRow, with_deleted: bool) -> StoreResult<Record> {
    let mut out = Record::new();
    for f in object.column_fields() {
        let key = f.key.as_str();
        let v = match &f.field_type {
            FieldType::Integer { .. } => row.try_get::<Option<i64>, _>(key)?.map_or(Json::Null, Json::from),
            FieldType::Decimal => get_f64(row, key)?
                .and_then(serde_json::Number::from_f64)
                .map_or(Json::Null, Json::Number),
            FieldType::Money => match row.try_get::<Option<i64>, _>(key)? {
                Some(amount) => {
                    let currency: Option<String> = row.try_get(currency_column(key).as_str())?;
                    serde_json::json!({"amount": amount, "currency": currency.unwrap_or_else(|| "CNY".into())})
                }
                None => Json::Null,
            },
            FieldType::Boolean => get_bool(row, key)?.map_or(Json::Null, Json::Bool),
            FieldType::MultiSelect { .. }
            | FieldType::MultiRelation { .. }
            | FieldType::Attachments { .. }
            | FieldType::Json => row
                .try_get::<Option<String>, _>(key)?
                .and_then(|s| serde_json::from_str(&s).ok())
                .unwrap_or(Json::Null),
            _ => row.try_get::<Option<String>, _>(key)?.map_or(Json::Null, Json::String),
        };
        out.insert(f.key.clone(), v);
    }
    let custom_text: String = row.try_get("custom")?;
    let custom: Map<String, Json> = serde_json::from_str(&custom_text).unwrap_or_default();
    for f in object.fields.iter().filter(|f| f.custom) {
        out.insert(f.key.clone(), custom.get(&f.key).cloned().unwrap_or(Json::Null));
    }
    if with_deleted {
        out.insert(
            "deleted_at".into(),
            row.try_get::<Option<String>, _>("deleted_at")?
                .map_or(Json::Null, Json::String),
        );
        out.insert(
            "deleted_by".into(),
            row.try_get::<Option<String>, _>("deleted_by")?
                .map_or(Json::Null, Json::String),
        );
    }
    Ok(out)
}

/// Reads the raw custom JSON of a row (for updates that change some custom fields).
pub fn custom_map(row: &AnyRow) -> StoreResult<Map<String, Json>> {
    let text: String = row.try_get("custom")?;
    Ok(serde_json::from_str(&text).unwrap_or_default())
}
