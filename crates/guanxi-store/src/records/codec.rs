//! Between records and rows: which columns a field uses, how a value is bound, how a column is
//! read back, and the SQL expression that filters and sorts a field (a column for standard
//! fields, a JSON path into `custom` for custom ones).

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

/// Appends the select list of an object's table.
pub fn push_select_list(sql: &mut Sql, object: &ObjectDef) {
    let mut first = true;
    for f in object.column_fields() {
        if !first {
            sql.push(", ");
        }
        first = false;
        sql.ident(&f.key);
        if matches!(f.field_type, FieldType::Money) {
            sql.push(", ").ident(&currency_column(&f.key));
        }
    }
    sql.push(", \"custom\", \"deleted_at\", \"deleted_by\"");
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
