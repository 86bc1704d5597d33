//! The list query language: filters (conditions with per-type operators, nested AND/OR groups)
//! and sort keys. Input is parsed from JSON and checked against the object's metadata here, so
//! the SQL layer only ever sees known fields, allowed operators and typed values.
//!
//! Grammar (JSON):
//! ```text
//! node  := {"and": [node, …]} | {"or": [node, …]} | cond
//! cond  := {"field": "<key>", "op": "<op>", "value": <json>}
//! op    := eq | ne | lt | lte | gt | gte | between | in | contains | starts_with | is_empty
//! ```

use serde::Deserialize;
use serde_json::Value as Json;

use crate::error::DomainError;
use crate::meta::{FieldDef, FieldType, ObjectDef};
use crate::time_fmt;
use crate::value::Value;

/// Limits that keep one request from building an enormous query.
pub const MAX_DEPTH: usize = 6;
pub const MAX_CONDITIONS: usize = 50;
pub const MAX_IN_VALUES: usize = 500;
pub const MAX_SORT_KEYS: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Lte,
    Gt,
    Gte,
    Between,
    In,
    Contains,
    StartsWith,
    IsEmpty,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Between => "between",
            Op::In => "in",
            Op::Contains => "contains",
            Op::StartsWith => "starts_with",
            Op::IsEmpty => "is_empty",
        }
    }
}

/// Operators allowed for a field type.
pub fn operators_for(t: &FieldType) -> &'static [Op] {
    use Op::*;
    match t {
        FieldType::Text { .. } | FieldType::LongText { .. } | FieldType::Email | FieldType::Phone | FieldType::Url => {
            &[Eq, Ne, In, Contains, StartsWith, IsEmpty]
        }
        FieldType::Integer { .. } | FieldType::Decimal | FieldType::Money | FieldType::Date | FieldType::DateTime => {
            &[Eq, Ne, Lt, Lte, Gt, Gte, Between, In, IsEmpty]
        }
        FieldType::Boolean => &[Eq, Ne, IsEmpty],
        FieldType::Select { .. } | FieldType::State | FieldType::Relation { .. } => &[Eq, Ne, In, IsEmpty],
        FieldType::MultiSelect { .. } | FieldType::MultiRelation { .. } => &[Contains, IsEmpty],
        FieldType::Attachments { .. } | FieldType::Json => &[IsEmpty],
    }
}

/// The raw filter as sent by a client.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawFilter {
    And {
        and: Vec<RawFilter>,
    },
    Or {
        or: Vec<RawFilter>,
    },
    Cond {
        field: String,
        op: String,
        #[serde(default)]
        value: Json,
    },
}

/// A checked filter: every field exists, every operator suits its field, every value is typed.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Cond {
        field: Box<FieldDef>,
        op: Op,
        operand: Operand,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `is_empty`: true for empty, false for present.
    Flag(bool),
    One(Value),
    Two(Value, Value),
    Many(Vec<Value>),
}

fn bad(zh: String, en: String) -> DomainError {
    DomainError::invalid_query(zh, en)
}

/// Parses a filter from its JSON text (as given in `?filter=`).
pub fn parse_filter_text(object: &ObjectDef, text: &str) -> Result<Filter, DomainError> {
    let json: Json = serde_json::from_str(text).map_err(|e| {
        bad(
            format!("筛选条件不是有效的 JSON：{e}"),
            format!("filter is not valid JSON: {e}"),
        )
    })?;
    parse_filter(object, &json)
}

/// Parses and checks a filter given as JSON.
pub fn parse_filter(object: &ObjectDef, json: &Json) -> Result<Filter, DomainError> {
    let raw: RawFilter = serde_json::from_value(json.clone()).map_err(|_| {
        bad(
            "筛选条件格式不正确：应为 {\"field\",\"op\",\"value\"} 或 {\"and\"|\"or\": […]}".into(),
            "malformed filter: expected {\"field\",\"op\",\"value\"} or {\"and\"|\"or\": […]}".into(),
        )
    })?;
    let mut count = 0;
    check(object, raw, 1, &mut count)
}

fn check(object: &ObjectDef, raw: RawFilter, depth: usize, count: &mut usize) -> Result<Filter, DomainError> {
    if depth > MAX_DEPTH {
        return Err(bad(
            format!("筛选条件嵌套超过{MAX_DEPTH}层"),
            format!("filter nests deeper than {MAX_DEPTH} levels"),
        ));
    }
    match raw {
        RawFilter::And { and } => Ok(Filter::And(
            and.into_iter()
                .map(|n| check(object, n, depth + 1, count))
                .collect::<Result<_, _>>()?,
        )),
        RawFilter::Or { or } => Ok(Filter::Or(
            or.into_iter()
                .map(|n| check(object, n, depth + 1, count))
                .collect::<Result<_, _>>()?,
        )),
        RawFilter::Cond { field, op, value } => {
            *count += 1;
            if *count > MAX_CONDITIONS {
                return Err(bad(
                    format!("筛选条件超过{MAX_CONDITIONS}个"),
                    format!("more than {MAX_CONDITIONS} filter conditions"),
                ));
            }
            check_cond(object, &field, &op, value)
        }
    }
}

fn check_cond(object: &ObjectDef, key: &str, op: &str, value: Json) -> Result<Filter, DomainError> {
    let Some(field) = object.field(key) else {
        return Err(bad(
            format!("不能按未知字段“{key}”筛选"),
            format!("cannot filter on unknown field '{key}'"),
        ));
    };
    if !field.filterable {
        return Err(bad(
            format!("字段“{}”不可筛选", field.label.zh),
            format!("field '{key}' is not filterable"),
        ));
    }
    let parsed: Option<Op> = serde_json::from_value(Json::String(op.to_owned())).ok();
    let Some(op) = parsed.filter(|o| operators_for(&field.field_type).contains(o)) else {
        let allowed: Vec<&str> = operators_for(&field.field_type).iter().map(|o| o.name()).collect();
        return Err(bad(
            format!(
                "字段“{}”不支持运算符“{op}”，可用：{}",
                field.label.zh,
                allowed.join(", ")
            ),
            format!(
                "operator '{op}' is not allowed on '{key}'; allowed: {}",
                allowed.join(", ")
            ),
        ));
    };
    let operand = match op {
        Op::IsEmpty => match value {
            Json::Null => Operand::Flag(true),
            Json::Bool(b) => Operand::Flag(b),
            _ => return Err(value_error(field, "true/false")),
        },
        Op::Between => match value {
            Json::Array(items) if items.len() == 2 => {
                Operand::Two(filter_value(field, op, &items[0])?, filter_value(field, op, &items[1])?)
            }
            _ => return Err(value_error(field, "[from, to]")),
        },
        Op::In => match value {
            Json::Array(items) if !items.is_empty() && items.len() <= MAX_IN_VALUES => Operand::Many(
                items
                    .iter()
                    .map(|v| filter_value(field, op, v))
                    .collect::<Result<_, _>>()?,
            ),
            _ => {
                return Err(value_error(field, &format!("a list of 1–{MAX_IN_VALUES} values")));
            }
        },
        _ => Operand::One(filter_value(field, op, &value)?),
    };
    Ok(Filter::Cond {
        field: Box::new(field.clone()),
        op,
        operand,
    })
}

fn value_error(field: &FieldDef, expect: &str) -> DomainError {
    bad(
        format!("字段“{}”的筛选值格式不正确（应为 {expect}）", field.label.zh),
        format!("filter value for '{}' must be {expect}", field.key),
    )
}

/// Types a filter value by the field's storage, without the strict input rules (a partial
/// phone number is a fine `contains` value even though it is not a valid phone).
fn filter_value(field: &FieldDef, op: Op, v: &Json) -> Result<Value, DomainError> {
    let text = || {
        v.as_str()
            .map(|s| Value::Text(s.to_owned()))
            .ok_or_else(|| value_error(field, "text"))
    };
    match &field.field_type {
        FieldType::Integer { .. } => v
            .as_i64()
            .map(Value::Int)
            .ok_or_else(|| value_error(field, "an integer")),
        FieldType::Money => v
            .as_i64()
            .map(Value::Int)
            .ok_or_else(|| value_error(field, "an integer amount in fen")),
        FieldType::Decimal => v
            .as_f64()
            .filter(|f| f.is_finite())
            .map(Value::Float)
            .ok_or_else(|| value_error(field, "a number")),
        FieldType::Boolean => v
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| value_error(field, "true/false")),
        FieldType::Date => v
            .as_str()
            .and_then(time_fmt::parse_date)
            .map(|d| Value::Text(time_fmt::format_date(d)))
            .ok_or_else(|| value_error(field, "a date YYYY-MM-DD")),
        FieldType::DateTime => v
            .as_str()
            .and_then(|s| {
                // A bare date is accepted as midnight UTC, which is what date pickers send.
                time_fmt::parse_datetime(s).or_else(|| {
                    time_fmt::parse_date(s).map(|d| format!("{}T00:00:00.000000Z", time_fmt::format_date(d)))
                })
            })
            .map(Value::Text)
            .ok_or_else(|| value_error(field, "an RFC 3339 timestamp")),
        _ => {
            let t = text()?;
            if matches!(op, Op::Contains | Op::StartsWith) && matches!(&t, Value::Text(s) if s.is_empty()) {
                return Err(value_error(field, "non-empty text"));
            }
            Ok(t)
        }
    }
}

/// One sort key.
#[derive(Debug, Clone, PartialEq)]
pub struct SortKey {
    pub field: FieldDef,
    pub descending: bool,
}

/// Parses `-created_at,name`. `id` is appended by the engine as the final tie-break, so
/// equal values never make pages overlap or skip.
pub fn parse_sort(object: &ObjectDef, spec: &str) -> Result<Vec<SortKey>, DomainError> {
    let mut keys = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (descending, key) = match part.strip_prefix('-') {
            Some(k) => (true, k),
            None => (false, part.strip_prefix('+').unwrap_or(part)),
        };
        let Some(field) = object.field(key) else {
            return Err(bad(
                format!("不能按未知字段“{key}”排序"),
                format!("cannot sort on unknown field '{key}'"),
            ));
        };
        if !field.sortable {
            return Err(bad(
                format!("字段“{}”不可排序", field.label.zh),
                format!("field '{key}' is not sortable"),
            ));
        }
        if keys.iter().any(|k: &SortKey| k.field.key == key) {
            continue;
        }
        keys.push(SortKey {
            field: field.clone(),
            descending,
        });
    }
    if keys.len() > MAX_SORT_KEYS {
        return Err(bad(
            format!("排序字段最多{MAX_SORT_KEYS}个"),
            format!("at most {MAX_SORT_KEYS} sort keys"),
        ));
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::FieldDef;
    use serde_json::json;

    fn object() -> ObjectDef {
        ObjectDef::new(
            "t",
            "t",
            "测试",
            "Test",
            vec![
                FieldDef::new("name", "名称", "Name", FieldType::Text { max_len: 50 }),
                FieldDef::new("note", "备注", "Note", FieldType::LongText { max_len: 500 }),
                FieldDef::new("score", "分数", "Score", FieldType::Integer { min: None, max: None }),
            ],
        )
    }

    #[test]
    fn nested_groups_parse_into_typed_conditions() {
        let f = parse_filter(
            &object(),
            &json!({"and": [
                {"field": "name", "op": "contains", "value": "能源"},
                {"or": [
                    {"field": "score", "op": "between", "value": [1, 5]},
                    {"field": "score", "op": "is_empty", "value": true}
                ]}
            ]}),
        );
        assert!(matches!(f, Ok(Filter::And(ref v)) if v.len() == 2));
    }

    #[test]
    fn unknown_fields_wrong_operators_and_wrong_values_are_refused() {
        let o = object();
        for bad in [
            json!({"field": "nope", "op": "eq", "value": 1}),
            json!({"field": "score", "op": "contains", "value": "1"}),
            json!({"field": "score", "op": "eq", "value": "' or 1=1 --"}),
            json!({"field": "score", "op": "between", "value": [1]}),
            json!({"field": "name", "op": "drop", "value": "x"}),
            json!({"and": "x"}),
            json!([1, 2]),
        ] {
            assert!(
                matches!(parse_filter(&o, &bad), Err(DomainError::InvalidQuery(_))),
                "{bad} should be refused"
            );
        }
    }

    #[test]
    fn sql_looking_text_is_just_a_value() {
        let f = parse_filter(
            &object(),
            &json!({"field": "name", "op": "eq", "value": "x'; drop table t; --"}),
        );
        assert!(f.is_ok());
    }

    #[test]
    fn sort_keys_must_exist_and_be_sortable() {
        let o = object();
        let keys = parse_sort(&o, "-score,name").unwrap_or_default();
        assert_eq!(keys.len(), 2);
        assert!(keys[0].descending);
        assert!(parse_sort(&o, "note").is_err());
        assert!(parse_sort(&o, "missing").is_err());
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut node = json!({"field": "name", "op": "eq", "value": "a"});
        for _ in 0..10 {
            node = json!({"and": [node]});
        }
        assert!(parse_filter(&object(), &node).is_err());
    }
}
