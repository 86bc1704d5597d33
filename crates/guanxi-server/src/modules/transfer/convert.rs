//! From spreadsheet cells to API values and back, driven by field metadata: header labels are
//! matched to fields, each cell becomes the JSON the record API accepts (so the same validation
//! applies), and each stored value becomes a cell a person can read (labels instead of codes,
//! yuan instead of fen, local time instead of UTC).

use std::collections::BTreeMap;

use guanxi_core::meta::FieldType;
use guanxi_core::{FieldDef, FieldError, Lang, ObjectDef};
use guanxi_store::catalog::Snapshot;
use serde_json::Value as Json;
use time::UtcOffset;

use super::formats::{Cell, format_float};

/// Columns that Guanxi's own error report adds; a corrected error report imports as it is.
pub const REPORT_ROW_COLUMN: &str = "行号 Row";
pub const REPORT_ERROR_COLUMN: &str = "错误原因 Errors";

fn shanghai() -> UtcOffset {
    UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC)
}

/// The time now in China Standard Time, as `2026-11-22 09:30:00 (UTC+8)`.
pub fn local_now() -> String {
    let t = time::OffsetDateTime::now_utc().to_offset(shanghai());
    format!(
        "{} {:02}:{:02}:{:02} (UTC+8)",
        guanxi_core::time_fmt::format_date(t.date()),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Fields a column can be mapped to: everything a user may set, plus read-only unique keys
/// (`id`, numbers) which serve only to find existing records.
pub fn importable(field: &FieldDef) -> bool {
    if matches!(
        field.field_type,
        FieldType::Attachments { .. } | FieldType::Json | FieldType::State
    ) {
        return false;
    }
    if field.read_only {
        return matchable(field);
    }
    true
}

/// Fields an import may match existing records on.
pub fn matchable(field: &FieldDef) -> bool {
    field.key == "id"
        || (field.unique
            && matches!(
                field.field_type,
                FieldType::Text { .. } | FieldType::Email | FieldType::Phone
            ))
        || (!field.read_only
            && matches!(
                field.field_type,
                FieldType::Text { .. } | FieldType::Email | FieldType::Phone
            ))
}

/// Whether a column only identifies records and is never written.
pub fn match_only(field: &FieldDef) -> bool {
    field.read_only
}

fn normalise(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '*' | '＊' | ':' | '：' | '_' | '-'))
        .flat_map(char::to_lowercase)
        .collect()
}

fn without_brackets(s: &str) -> String {
    let mut out = String::new();
    let mut depth = 0;
    for c in s.chars() {
        match c {
            '(' | '（' => depth += 1,
            ')' | '）' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Suggests a field for each column: the user's saved choice first, then a match on the
/// field's Chinese or English label or its key (ignoring case, spaces, `*` and bracketed
/// notes). Columns without a match are left out (they are "unknown").
pub fn suggest_mapping(
    object: &ObjectDef,
    columns: &[String],
    saved: &BTreeMap<String, Option<String>>,
) -> BTreeMap<String, Option<String>> {
    let mut out = BTreeMap::new();
    let mut taken: Vec<String> = Vec::new();
    for column in columns {
        if column == REPORT_ROW_COLUMN || column == REPORT_ERROR_COLUMN {
            out.insert(column.clone(), None);
            continue;
        }
        if let Some(choice) = saved.get(column) {
            let valid = choice
                .as_ref()
                .is_none_or(|f| object.field(f).is_some_and(importable) && !taken.contains(f));
            if valid {
                if let Some(f) = choice {
                    taken.push(f.clone());
                }
                out.insert(column.clone(), choice.clone());
                continue;
            }
        }
        let wanted = normalise(column);
        let wanted_bare = normalise(&without_brackets(column));
        let found = object.fields.iter().filter(|f| importable(f)).find(|f| {
            if taken.contains(&f.key) {
                return false;
            }
            let candidates = [
                normalise(&f.label.zh),
                normalise(&f.label.en),
                normalise(&f.key),
                normalise(&without_brackets(&f.label.zh)),
                normalise(&without_brackets(&f.label.en)),
            ];
            candidates
                .iter()
                .any(|c| !c.is_empty() && (*c == wanted || *c == wanted_bare))
        });
        if let Some(f) = found {
            taken.push(f.key.clone());
            out.insert(column.clone(), Some(f.key.clone()));
        }
    }
    out
}

fn type_error(field: &FieldDef, zh: &str, en: &str) -> FieldError {
    FieldError::new(
        "invalid_type",
        format!("“{}”应为{zh}", field.label.zh),
        format!("{} must be {en}", field.label.en),
    )
}

fn parse_number(text: &str) -> Option<f64> {
    let cleaned: String = text
        .trim()
        .trim_start_matches(['¥', '￥', '$'])
        .trim_end_matches('元')
        .chars()
        .filter(|c| *c != ',' && *c != '，' && !c.is_whitespace())
        .collect();
    if cleaned.is_empty() {
        return None;
    }
    cleaned.parse::<f64>().ok().filter(|f| f.is_finite())
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.trim().to_lowercase().as_str() {
        "是" | "true" | "yes" | "y" | "1" | "√" | "✓" | "对" | "真" => Some(true),
        "否" | "false" | "no" | "n" | "0" | "×" | "✗" | "不是" | "假" => Some(false),
        _ => None,
    }
}

/// Accepts `2026-11-22`, `2026/11/22`, `2026.11.22`, `2026年11月22日` and `20261122`.
fn parse_date_text(text: &str) -> Option<time::Date> {
    let t = text.trim();
    let unified: String = t.replace(['/', '.', '年', '月'], "-").replace('日', "");
    let parts: Vec<&str> = unified.split('-').filter(|p| !p.is_empty()).collect();
    let (y, m, d) = match parts.as_slice() {
        [y, m, d] => (y.parse::<i32>().ok()?, m.parse::<u8>().ok()?, d.parse::<u8>().ok()?),
        [one] if one.len() == 8 && one.chars().all(|c| c.is_ascii_digit()) => (
            one[0..4].parse().ok()?,
            one[4..6].parse().ok()?,
            one[6..8].parse().ok()?,
        ),
        _ => return None,
    };
    time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()
}

/// A date-time typed without a zone is China Standard Time.
fn parse_datetime_text(text: &str) -> Option<String> {
    let t = text.trim();
    if let Some(s) = guanxi_core::time_fmt::parse_datetime(t) {
        return Some(s);
    }
    let (date_part, time_part) = t.split_once([' ', 'T'])?;
    let date = parse_date_text(date_part)?;
    let mut hms = time_part.trim().split(':');
    let h: u8 = hms.next()?.parse().ok()?;
    let mi: u8 = hms.next().unwrap_or("0").parse().ok()?;
    let s: f64 = hms.next().unwrap_or("0").parse().ok()?;
    #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss, reason = "seconds 0-59")]
    let time = time::Time::from_hms(h, mi, s.clamp(0.0, 59.0) as u8).ok()?;
    Some(local_to_utc(time::PrimitiveDateTime::new(date, time)))
}

fn local_to_utc(dt: time::PrimitiveDateTime) -> String {
    guanxi_core::time_fmt::format_utc(dt.assume_offset(shanghai()))
}

fn option_value(snapshot: &Snapshot, dict: &str, text: &str) -> Option<String> {
    let items = snapshot.dictionary(dict)?;
    let t = text.trim();
    items
        .iter()
        .filter(|i| i.enabled)
        .find(|i| {
            i.value == t || i.label.zh == t || i.label.en.eq_ignore_ascii_case(t) || i.value.eq_ignore_ascii_case(t)
        })
        .map(|i| i.value.clone())
}

/// Splits a multi-value cell on commas, semicolons, the Chinese enumeration comma or `|`.
pub fn split_multi(text: &str) -> Vec<String> {
    text.split([',', '，', ';', '；', '、', '|', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// What a cell becomes before validation.
pub enum Converted {
    Value(Json),
    /// A relation given by name or number: resolved against the target object later.
    Lookup {
        target: String,
        texts: Vec<String>,
        many: bool,
    },
}

/// The object a relation-like field points at (`owner_id` names a user).
pub fn relation_target(field: &FieldDef) -> Option<(&str, bool)> {
    match &field.field_type {
        FieldType::Relation { object } => Some((object.as_str(), false)),
        FieldType::MultiRelation { object } => Some((object.as_str(), true)),
        _ if field.key == "owner_id" => Some(("user", false)),
        _ => None,
    }
}

/// Converts one cell to the JSON the record API takes for the field. Type problems that the
/// API's validation would word less helpfully for a spreadsheet (numbers as text, yes/no,
/// dates typed in Chinese, option labels) are handled here; the rest is left to validation.
pub fn convert_cell(field: &FieldDef, cell: &Cell, snapshot: &Snapshot) -> Result<Converted, FieldError> {
    if cell.is_empty() {
        return Ok(Converted::Value(Json::Null));
    }
    let text = cell.to_text();
    let value = |j: Json| Ok(Converted::Value(j));
    if let Some((target, many)) = relation_target(field) {
        let texts = if many {
            split_multi(&text)
        } else {
            vec![text.trim().to_owned()]
        };
        if texts.iter().all(|t| uuid::Uuid::parse_str(t).is_ok()) {
            return value(if many {
                Json::from(texts)
            } else {
                Json::from(texts[0].clone())
            });
        }
        return Ok(Converted::Lookup {
            target: target.to_owned(),
            texts,
            many,
        });
    }
    match &field.field_type {
        FieldType::Integer { .. } => {
            let n = match cell {
                Cell::Int(i) => Some(*i),
                Cell::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 =>
                {
                    #[expect(clippy::cast_possible_truncation, reason = "checked whole and in range")]
                    Some(*f as i64)
                }
                _ => parse_number(&text)
                    .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                    .map(|f| {
                        #[expect(clippy::cast_possible_truncation, reason = "checked whole and in range")]
                        let i = f as i64;
                        i
                    }),
            };
            n.map(|i| Converted::Value(Json::from(i)))
                .ok_or_else(|| type_error(field, "整数", "a whole number"))
        }
        FieldType::Decimal => {
            let n = match cell {
                Cell::Int(i) => {
                    #[expect(clippy::cast_precision_loss, reason = "a spreadsheet number")]
                    let f = *i as f64;
                    Some(f)
                }
                Cell::Float(f) => Some(*f),
                _ => parse_number(&text),
            };
            n.map(|f| Converted::Value(Json::from(f)))
                .ok_or_else(|| type_error(field, "数字", "a number"))
        }
        FieldType::Money => {
            // Files carry yuan (元) with up to two decimals; the API takes fen.
            let yuan = match cell {
                Cell::Int(i) => {
                    #[expect(clippy::cast_precision_loss, reason = "a spreadsheet number")]
                    let f = *i as f64;
                    Some(f)
                }
                Cell::Float(f) => Some(*f),
                _ => parse_number(&text),
            };
            let fen = yuan
                .map(|y| y * 100.0)
                .filter(|f| (f - f.round()).abs() < 1e-6 && f.abs() < 9.0e15);
            match fen {
                #[expect(clippy::cast_possible_truncation, reason = "checked whole and in range")]
                Some(f) => value(Json::from(f.round() as i64)),
                None => Err(FieldError::new(
                    "invalid_money",
                    format!("“{}”应为金额（元），最多两位小数，如 1234.56", field.label.zh),
                    format!(
                        "{} must be an amount in yuan with at most two decimals, e.g. 1234.56",
                        field.label.en
                    ),
                )),
            }
        }
        FieldType::Boolean => {
            let b = match cell {
                Cell::Bool(b) => Some(*b),
                _ => parse_bool(&text),
            };
            b.map(|b| Converted::Value(Json::Bool(b)))
                .ok_or_else(|| type_error(field, "“是”或“否”", "yes or no (是/否)"))
        }
        FieldType::Date => {
            let d = match cell {
                Cell::Date(d) => Some(*d),
                Cell::DateTime(dt) => Some(dt.date()),
                _ => parse_date_text(&text),
            };
            match d {
                Some(d) => value(Json::from(guanxi_core::time_fmt::format_date(d))),
                None => Err(FieldError::new(
                    "invalid_date",
                    format!("“{}”应为日期，如 2026-11-22", field.label.zh),
                    format!("{} must be a date such as 2026-11-22", field.label.en),
                )),
            }
        }
        FieldType::DateTime => {
            let dt = match cell {
                Cell::DateTime(dt) => Some(local_to_utc(*dt)),
                Cell::Date(d) => Some(local_to_utc(time::PrimitiveDateTime::new(*d, time::Time::MIDNIGHT))),
                _ => parse_datetime_text(&text),
            };
            match dt {
                Some(s) => value(Json::from(s)),
                None => Err(FieldError::new(
                    "invalid_datetime",
                    format!("“{}”应为时间，如 2026-11-22 09:30", field.label.zh),
                    format!("{} must be a time such as 2026-11-22 09:30", field.label.en),
                )),
            }
        }
        FieldType::Select { dict } => Ok(Converted::Value(Json::from(
            option_value(snapshot, dict, &text).unwrap_or_else(|| text.trim().to_owned()),
        ))),
        FieldType::MultiSelect { dict } => Ok(Converted::Value(Json::from(
            split_multi(&text)
                .into_iter()
                .map(|t| option_value(snapshot, dict, &t).unwrap_or(t))
                .collect::<Vec<_>>(),
        ))),
        FieldType::Text { .. }
        | FieldType::LongText { .. }
        | FieldType::Email
        | FieldType::Phone
        | FieldType::Url
        | FieldType::Relation { .. }
        | FieldType::MultiRelation { .. } => value(Json::from(text)),
        FieldType::Json | FieldType::Attachments { .. } | FieldType::State => Err(FieldError::new(
            "read_only",
            format!("“{}”不能通过导入设置", field.label.zh),
            format!("{} cannot be set by an import", field.label.en),
        )),
    }
}

/// Labels of titles of related records, by object and id (filled per page of an export).
pub type Titles = BTreeMap<(String, String), String>;

/// Turns a stored value into a cell for people: option labels, yuan, local time, titles of
/// related records.
pub fn export_cell(
    field: &FieldDef,
    object: &ObjectDef,
    value: &Json,
    snapshot: &Snapshot,
    titles: &Titles,
    lang: Lang,
) -> Cell {
    if value.is_null() {
        return Cell::Empty;
    }
    let label_of = |dict: &str, v: &str| -> String {
        snapshot
            .dictionary(dict)
            .and_then(|items| items.iter().find(|i| i.value == v))
            .map_or_else(|| v.to_owned(), |i| i.label.get(lang).to_owned())
    };
    if let Some((target, _)) = relation_target(field).or(match field.key.as_str() {
        "created_by" | "updated_by" => Some(("user", false)),
        _ => None,
    }) {
        let title = |id: &str| {
            titles
                .get(&(target.to_owned(), id.to_owned()))
                .cloned()
                .unwrap_or_else(|| id.to_owned())
        };
        return match value {
            Json::String(id) => Cell::Text(title(id)),
            Json::Array(ids) => Cell::Text(
                ids.iter()
                    .filter_map(Json::as_str)
                    .map(title)
                    .collect::<Vec<_>>()
                    .join("、"),
            ),
            other => Cell::Text(other.to_string()),
        };
    }
    match (&field.field_type, value) {
        (FieldType::Integer { .. }, Json::Number(n)) => n.as_i64().map_or_else(|| Cell::Text(n.to_string()), Cell::Int),
        (FieldType::Decimal, Json::Number(n)) => n.as_f64().map_or(Cell::Empty, Cell::Float),
        (FieldType::Money, Json::Object(m)) => {
            let amount = m.get("amount").and_then(Json::as_i64).unwrap_or(0);
            let currency = m.get("currency").and_then(Json::as_str).unwrap_or("CNY");
            #[expect(clippy::cast_precision_loss, reason = "money amounts far below 2^53 fen")]
            let yuan = amount as f64 / 100.0;
            if currency == "CNY" {
                Cell::Float(yuan)
            } else {
                Cell::Text(format!("{yuan:.2} {currency}"))
            }
        }
        (FieldType::Money, Json::Number(n)) => {
            #[expect(clippy::cast_precision_loss, reason = "money amounts far below 2^53 fen")]
            let yuan = n.as_i64().unwrap_or(0) as f64 / 100.0;
            Cell::Float(yuan)
        }
        (FieldType::Boolean, Json::Bool(b)) => Cell::Text(
            match (b, lang) {
                (true, Lang::Zh) => "是",
                (false, Lang::Zh) => "否",
                (true, Lang::En) => "yes",
                (false, Lang::En) => "no",
            }
            .into(),
        ),
        (FieldType::DateTime, Json::String(s)) => {
            match time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
                Ok(t) => {
                    let local = t.to_offset(shanghai());
                    Cell::Text(format!(
                        "{} {:02}:{:02}:{:02}",
                        guanxi_core::time_fmt::format_date(local.date()),
                        local.hour(),
                        local.minute(),
                        local.second()
                    ))
                }
                Err(_) => Cell::Text(s.clone()),
            }
        }
        (FieldType::Select { dict }, Json::String(v)) => Cell::Text(label_of(dict, v)),
        (FieldType::MultiSelect { dict }, Json::Array(items)) => Cell::Text(
            items
                .iter()
                .filter_map(Json::as_str)
                .map(|v| label_of(dict, v))
                .collect::<Vec<_>>()
                .join("、"),
        ),
        (FieldType::State, Json::String(v)) => Cell::Text(
            object
                .state_machine
                .as_ref()
                .and_then(|m| m.states.iter().find(|s| &s.key == v))
                .map_or_else(|| v.clone(), |s| s.label.get(lang).to_owned()),
        ),
        (FieldType::Attachments { .. }, Json::Array(items)) => Cell::Text(
            items
                .iter()
                .filter_map(|i| i.get("name").and_then(Json::as_str))
                .collect::<Vec<_>>()
                .join("、"),
        ),
        (_, Json::String(s)) => Cell::Text(s.clone()),
        (_, Json::Number(n)) => n
            .as_i64()
            .map(Cell::Int)
            .unwrap_or_else(|| Cell::Text(n.as_f64().map_or_else(|| n.to_string(), format_float))),
        (_, Json::Bool(b)) => Cell::Bool(*b),
        (_, other) => Cell::Text(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_read_the_ways_people_write_them() {
        let d = time::macros::date!(2026 - 11 - 22);
        for t in ["2026-11-22", "2026/11/22", "2026.11.22", "2026年11月22日", "20261122"] {
            assert_eq!(parse_date_text(t), Some(d), "{t}");
        }
        assert_eq!(parse_date_text("2026-02-30"), None);
        assert_eq!(
            parse_datetime_text("2026-11-22 09:30").as_deref(),
            Some("2026-11-22T01:30:00.000000Z")
        );
    }

    #[test]
    fn numbers_allow_thousands_separators_and_currency_signs() {
        assert_eq!(parse_number("1,234.50"), Some(1234.5));
        assert_eq!(parse_number("¥88"), Some(88.0));
        assert_eq!(parse_number("12元"), Some(12.0));
        assert_eq!(parse_number("abc"), None);
    }

    #[test]
    fn header_labels_match_fields_in_either_language() {
        let object = guanxi_core::objects::customer();
        let columns: Vec<String> = [
            "客户名称*",
            "Phone",
            "Unified social credit code",
            "备注（选填）",
            "微信",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let m = suggest_mapping(&object, &columns, &BTreeMap::new());
        assert_eq!(m.get("客户名称*"), Some(&Some("name".to_owned())));
        assert_eq!(m.get("Phone"), Some(&Some("phone".to_owned())));
        assert_eq!(
            m.get("Unified social credit code"),
            Some(&Some("credit_code".to_owned()))
        );
        assert_eq!(m.get("备注（选填）"), Some(&Some("remark".to_owned())));
        assert_eq!(m.get("微信"), None);
    }
}
