//! Record values and their validation. Input arrives as JSON; each field type has one coercion
//! that either yields a typed [`Value`] or a bilingual [`FieldError`]. Validation of a whole
//! record collects every error before giving up, so a form can show them all at once.

use std::sync::LazyLock;

use regex::Regex;
use serde::Serialize;
use serde::ser::SerializeStruct;
use serde_json::{Map, Value as Json};

use crate::error::{FieldError, FieldErrors};
use crate::meta::{FieldDef, FieldType, ObjectDef};
use crate::time_fmt;

/// A validated field value, ready to be stored.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Amount in minor units (分) and an ISO 4217 currency code.
    Money {
        amount: i64,
        currency: String,
    },
    /// Multi-select lists, attachment lists and free JSON.
    Json(Json),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The API representation of the value (its [`Serialize`] form as JSON).
    pub fn to_json(&self) -> Json {
        serde_json::to_value(self).unwrap_or(Json::Null)
    }
}

/// The API representation, written by any serde serialiser: a text can then go straight to its
/// JSON text (an audit entry of a create) without a JSON tree built first. Money is
/// `{"amount", "currency"}`; a non-finite number is written as null by `serde_json`.
impl Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Text(s) => serializer.serialize_str(s),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::Float(f) => serializer.serialize_f64(*f),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Money { amount, currency } => {
                let mut money = serializer.serialize_struct("Money", 2)?;
                money.serialize_field("amount", amount)?;
                money.serialize_field("currency", currency)?;
                money.end()
            }
            Value::Json(j) => j.serialize(serializer),
        }
    }
}

/// Answers whether a value belongs to a data dictionary (e.g. `customer_type`).
pub trait DictionaryLookup {
    fn is_allowed(&self, dict: &str, value: &str) -> bool;
}

/// Whether a record is being created (required fields must be present) or patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Create,
    Update,
}

/// Validates a create or patch body against an object's metadata and returns the typed values
/// in input order. Unknown and read-only keys are errors, not silently dropped: a client that
/// misspells a field must find out.
pub fn validate_input(
    object: &ObjectDef,
    input: &Map<String, Json>,
    mode: Mode,
    dicts: &dyn DictionaryLookup,
) -> Result<Vec<(String, Value)>, FieldErrors> {
    let mut errors = FieldErrors::default();
    let mut values = Vec::with_capacity(input.len());
    for (key, raw) in input {
        let Some(field) = object.field(key) else {
            errors.add(
                key,
                FieldError::new(
                    "unknown_field",
                    format!("“{}”没有字段“{key}”", object.label.zh),
                    format!("{} has no field '{key}'", object.label.en),
                ),
            );
            continue;
        };
        if field.read_only || matches!(field.field_type, FieldType::State) {
            errors.add(
                key,
                FieldError::new(
                    "read_only",
                    format!("“{}”由系统维护，不能修改", field.label.zh),
                    format!("{} is set by the system and cannot be changed", field.label.en),
                ),
            );
            continue;
        }
        match coerce(field, raw, dicts) {
            Ok(v) => {
                if field.required && v.is_null() {
                    errors.add(key, required_error(field));
                } else {
                    values.push((key.clone(), v));
                }
            }
            Err(e) => errors.add(key, e),
        }
    }
    if mode == Mode::Create {
        for field in &object.fields {
            let system_filled = field.read_only || field.numbering.is_some();
            if field.required && !system_filled && !input.contains_key(&field.key) {
                errors.add(&field.key, required_error(field));
            }
        }
    }
    if errors.is_empty() { Ok(values) } else { Err(errors) }
}

fn required_error(field: &FieldDef) -> FieldError {
    FieldError::new(
        "required",
        format!("请填写“{}”", field.label.zh),
        format!("{} is required", field.label.en),
    )
}

fn type_error(field: &FieldDef, zh_expect: &str, en_expect: &str) -> FieldError {
    FieldError::new(
        "invalid_type",
        format!("“{}”应为{zh_expect}", field.label.zh),
        format!("{} must be {en_expect}", field.label.en),
    )
}

static MOBILE: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^1[3-9]\d{9}$").ok());
static LANDLINE: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^0\d{2,3}-?\d{7,8}(-\d{1,6})?$").ok());
static SERVICE_NUMBER: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"^[48]00-?\d{3}-?\d{4}$").ok());
static EMAIL: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$").ok());

fn matches(re: &LazyLock<Option<Regex>>, s: &str) -> bool {
    re.as_ref().is_some_and(|r| r.is_match(s))
}

/// Normalises a Chinese phone number: drops spaces and a `+86`/`0086` country prefix on
/// mobiles. Returns `None` when it is not a mobile, landline or 400/800 number.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect();
    let national = compact
        .strip_prefix("+86")
        .or_else(|| compact.strip_prefix("0086"))
        .map(|s| s.trim_start_matches('-'))
        .unwrap_or(&compact);
    if matches(&MOBILE, national) {
        return Some(national.to_owned());
    }
    if matches(&LANDLINE, &compact) || matches(&SERVICE_NUMBER, &compact) {
        return Some(compact);
    }
    None
}

/// Checks an email address (practical rules, not full RFC 5322).
pub fn is_valid_email(s: &str) -> bool {
    s.len() <= 254 && matches(&EMAIL, s)
}

/// Coerces one JSON value to a field's type. `null` (and empty strings/lists) become
/// [`Value::Null`]; the caller decides whether that is allowed.
pub fn coerce(field: &FieldDef, raw: &Json, dicts: &dyn DictionaryLookup) -> Result<Value, FieldError> {
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let text = |raw: &Json| -> Result<Option<String>, FieldError> {
        match raw {
            Json::String(s) => {
                let t = s.trim();
                Ok(if t.is_empty() { None } else { Some(t.to_owned()) })
            }
            _ => Err(type_error(field, "文本", "a string")),
        }
    };
    match &field.field_type {
        FieldType::Text { max_len } | FieldType::LongText { max_len } => {
            let Some(s) = text(raw)? else {
                return Ok(Value::Null);
            };
            let len = s.chars().count();
            if len > *max_len as usize {
                return Err(FieldError::new(
                    "too_long",
                    format!("“{}”最多{max_len}个字符（现为{len}个）", field.label.zh),
                    format!("{} may have at most {max_len} characters (has {len})", field.label.en),
                ));
            }
            if s.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
                return Err(FieldError::new(
                    "invalid_characters",
                    format!("“{}”含有不可见的控制字符", field.label.zh),
                    format!("{} contains control characters", field.label.en),
                ));
            }
            Ok(Value::Text(s))
        }
        FieldType::Integer { min, max } => {
            let Some(i) = raw.as_i64() else {
                return Err(type_error(field, "整数", "an integer"));
            };
            if min.is_some_and(|m| i < m) || max.is_some_and(|m| i > m) {
                return Err(FieldError::new(
                    "out_of_range",
                    format!("“{}”超出允许范围", field.label.zh),
                    format!("{} is out of range", field.label.en),
                ));
            }
            Ok(Value::Int(i))
        }
        FieldType::Decimal => match raw.as_f64() {
            Some(f) if f.is_finite() => Ok(Value::Float(f)),
            _ => Err(type_error(field, "数字", "a number")),
        },
        FieldType::Money => coerce_money(field, raw),
        FieldType::Boolean => raw
            .as_bool()
            .map(Value::Bool)
            .ok_or_else(|| type_error(field, "是或否", "true or false")),
        FieldType::Date => {
            let Some(s) = text(raw)? else {
                return Ok(Value::Null);
            };
            time_fmt::parse_date(&s)
                .map(|d| Value::Text(time_fmt::format_date(d)))
                .ok_or_else(|| {
                    FieldError::new(
                        "invalid_date",
                        format!("“{}”应为日期，格式 YYYY-MM-DD", field.label.zh),
                        format!("{} must be a date as YYYY-MM-DD", field.label.en),
                    )
                })
        }
        FieldType::DateTime => {
            let Some(s) = text(raw)? else {
                return Ok(Value::Null);
            };
            time_fmt::parse_datetime(&s).map(Value::Text).ok_or_else(|| {
                FieldError::new(
                    "invalid_datetime",
                    format!("“{}”应为带时区的时间（RFC 3339）", field.label.zh),
                    format!("{} must be an RFC 3339 timestamp", field.label.en),
                )
            })
        }
        FieldType::Email => {
            let Some(s) = text(raw)? else {
                return Ok(Value::Null);
            };
            if is_valid_email(&s) {
                Ok(Value::Text(s))
            } else {
                Err(FieldError::new(
                    "invalid_email",
                    format!("“{}”不是有效的邮箱地址", field.label.zh),
                    format!("{} is not a valid email address", field.label.en),
                ))
            }
        }
        FieldType::Phone => {
            let Some(s) = text(raw)? else {
                return Ok(Value::Null);
            };
            normalize_phone(&s).map(Value::Text).ok_or_else(|| {
                FieldError::new(
                    "invalid_phone",
                    format!(
                        "“{}”不是有效的手机号或固定电话（如 13812345678、010-12345678）",
                        field.label.zh
                    ),
                    format!(
                        "{} is not a valid Chinese mobile or landline number (e.g. 13812345678, 010-12345678)",
                        field.label.en
                    ),
                )
            })
        }
        FieldType::Url => {
            let Some(s) = text(raw)? else {
                return Ok(Value::Null);
            };
            match url::Url::parse(&s) {
                Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => Ok(Value::Text(s)),
                _ => Err(FieldError::new(
                    "invalid_url",
                    format!("“{}”应为 http:// 或 https:// 开头的网址", field.label.zh),
                    format!("{} must be an http:// or https:// address", field.label.en),
                )),
            }
        }
        FieldType::Select { dict } => {
            let Some(s) = text(raw)? else {
                return Ok(Value::Null);
            };
            if dicts.is_allowed(dict, &s) {
                Ok(Value::Text(s))
            } else {
                Err(not_an_option(field, &s))
            }
        }
        FieldType::MultiSelect { dict } => {
            let Json::Array(items) = raw else {
                return Err(type_error(field, "选项列表", "a list of options"));
            };
            let mut out: Vec<String> = Vec::with_capacity(items.len());
            for item in items {
                let Some(s) = item.as_str() else {
                    return Err(type_error(field, "选项列表", "a list of options"));
                };
                if !dicts.is_allowed(dict, s) {
                    return Err(not_an_option(field, s));
                }
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_owned());
                }
            }
            if out.is_empty() {
                return Ok(Value::Null);
            }
            Ok(Value::Json(Json::from(out)))
        }
        FieldType::Relation { .. } => {
            let Some(s) = text(raw)? else {
                return Ok(Value::Null);
            };
            uuid::Uuid::parse_str(&s)
                .map(|u| Value::Text(u.to_string()))
                .map_err(|_| {
                    FieldError::new(
                        "invalid_reference",
                        format!("“{}”应为记录编号（UUID）", field.label.zh),
                        format!("{} must be a record id (UUID)", field.label.en),
                    )
                })
        }
        FieldType::MultiRelation { .. } => {
            let Json::Array(items) = raw else {
                return Err(type_error(field, "记录编号列表", "a list of record ids"));
            };
            let mut out: Vec<String> = Vec::with_capacity(items.len());
            for item in items {
                let id = item
                    .as_str()
                    .and_then(|s| uuid::Uuid::parse_str(s).ok())
                    .ok_or_else(|| {
                        FieldError::new(
                            "invalid_reference",
                            format!("“{}”应为记录编号（UUID）列表", field.label.zh),
                            format!("{} must be a list of record ids (UUID)", field.label.en),
                        )
                    })?;
                let id = id.to_string();
                if !out.contains(&id) {
                    out.push(id);
                }
            }
            if out.is_empty() {
                return Ok(Value::Null);
            }
            Ok(Value::Json(Json::from(out)))
        }
        FieldType::Attachments {
            max_files,
            max_size_bytes,
            allowed_extensions,
        } => coerce_attachments(field, raw, *max_files, *max_size_bytes, allowed_extensions),
        FieldType::Json => Ok(Value::Json(raw.clone())),
        FieldType::State => Err(type_error(field, "状态操作", "changed through a transition")),
    }
}

fn not_an_option(field: &FieldDef, value: &str) -> FieldError {
    FieldError::new(
        "invalid_option",
        format!("“{value}”不是“{}”的可选值", field.label.zh),
        format!("'{value}' is not an option of {}", field.label.en),
    )
}

fn coerce_money(field: &FieldDef, raw: &Json) -> Result<Value, FieldError> {
    let bad = || {
        FieldError::new(
            "invalid_money",
            format!("“{}”应为以分为单位的整数金额，或 {{amount, currency}}", field.label.zh),
            format!(
                "{} must be an integer amount in minor units (fen) or {{amount, currency}}",
                field.label.en
            ),
        )
    };
    let (amount, currency) = match raw {
        Json::Number(n) => (n.as_i64().ok_or_else(bad)?, "CNY".to_owned()),
        Json::Object(o) => {
            let amount = o.get("amount").and_then(Json::as_i64).ok_or_else(bad)?;
            let currency = match o.get("currency") {
                None | Some(Json::Null) => "CNY".to_owned(),
                Some(Json::String(c)) if c.len() == 3 && c.chars().all(|ch| ch.is_ascii_uppercase()) => c.clone(),
                Some(_) => return Err(bad()),
            };
            if o.keys().any(|k| k != "amount" && k != "currency") {
                return Err(bad());
            }
            (amount, currency)
        }
        _ => return Err(bad()),
    };
    Ok(Value::Money { amount, currency })
}

/// Checks the shape of an attachment list: `[{"id": "<file id>", "name"?, "size"?}]`. Name and
/// size are optional here because the store replaces them with the uploaded file's own (a
/// client cannot rename or shrink a file by editing the JSON); when given they are checked
/// against the field's limits so a form gets the error before any database work.
fn coerce_attachments(
    field: &FieldDef,
    raw: &Json,
    max_files: u32,
    max_size: u64,
    allowed: &[String],
) -> Result<Value, FieldError> {
    let shape = || {
        FieldError::new(
            "invalid_attachment",
            format!("“{}”应为附件列表（id、name、size）", field.label.zh),
            format!("{} must be a list of attachments (id, name, size)", field.label.en),
        )
    };
    let Json::Array(items) = raw else {
        return Err(shape());
    };
    if items.len() > max_files as usize {
        return Err(too_many_files(field, max_files));
    }
    let mut out: Vec<Json> = Vec::with_capacity(items.len());
    for item in items {
        let Some(o) = item.as_object() else {
            return Err(shape());
        };
        let id = o
            .get("id")
            .and_then(Json::as_str)
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .ok_or_else(shape)?
            .to_string();
        if o.keys()
            .any(|k| !matches!(k.as_str(), "id" | "name" | "size" | "content_type"))
        {
            return Err(shape());
        }
        let name = match o.get("name") {
            None | Some(Json::Null) => None,
            Some(Json::String(n)) => Some(n.as_str()),
            Some(_) => return Err(shape()),
        };
        let size = match o.get("size") {
            None | Some(Json::Null) => None,
            Some(n) => Some(n.as_u64().ok_or_else(shape)?),
        };
        if let (Some(name), Some(size)) = (name, size) {
            check_file(field, name, size, max_size, allowed)?;
        } else if let Some(name) = name {
            check_file(field, name, 0, max_size, allowed)?;
        }
        if out.iter().any(|x| x["id"] == Json::String(id.clone())) {
            continue;
        }
        let mut entry = serde_json::Map::new();
        entry.insert("id".into(), Json::String(id));
        if let Some(name) = name {
            entry.insert("name".into(), Json::String(name.to_owned()));
        }
        if let Some(size) = size {
            entry.insert("size".into(), Json::from(size));
        }
        out.push(Json::Object(entry));
    }
    if out.is_empty() {
        return Ok(Value::Null);
    }
    Ok(Value::Json(Json::Array(out)))
}

/// The error of an attachment list longer than the field allows.
pub fn too_many_files(field: &FieldDef, max_files: u32) -> FieldError {
    FieldError::new(
        "too_many_files",
        format!("“{}”最多{max_files}个附件", field.label.zh),
        format!("{} allows at most {max_files} files", field.label.en),
    )
}

/// The lower-case extension of a file name (`营业执照.PDF` → `pdf`), or `""`.
pub fn file_extension(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Checks one file against an attachment field's size and type limits.
pub fn check_file(
    field: &FieldDef,
    name: &str,
    size: u64,
    max_size: u64,
    allowed: &[String],
) -> Result<(), FieldError> {
    if size > max_size {
        return Err(file_too_large(name, max_size));
    }
    let ext = file_extension(name);
    if !allowed.is_empty() && !allowed.iter().any(|a| a.eq_ignore_ascii_case(&ext)) {
        return Err(FieldError::new(
            "file_type_not_allowed",
            format!(
                "“{}”不接受附件“{name}”的类型，允许：{}",
                field.label.zh,
                allowed.join("、")
            ),
            format!(
                "{} does not accept the type of '{name}'; allowed: {}",
                field.label.en,
                allowed.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The error of a file over an attachment field's size limit.
pub fn file_too_large(name: &str, max_size: u64) -> FieldError {
    FieldError::new(
        "file_too_large",
        format!("附件“{name}”超过大小限制（{}）", human_size(max_size)),
        format!("file '{name}' is larger than the limit ({})", human_size(max_size)),
    )
}

/// `10 MB`, `512 KB`, `100 B`: limits as people read them.
pub fn human_size(bytes: u64) -> String {
    const MB: u64 = 1024 * 1024;
    if bytes >= MB && bytes.is_multiple_of(MB) {
        format!("{} MB", bytes / MB)
    } else if bytes >= MB {
        format!("{:.1} MB", bytes as f64 / MB as f64)
    } else if bytes >= 1024 {
        format!("{} KB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::FieldDef;
    use serde_json::json;

    struct Dicts;
    impl DictionaryLookup for Dicts {
        fn is_allowed(&self, dict: &str, value: &str) -> bool {
            dict == "level" && matches!(value, "A" | "B" | "C")
        }
    }

    /// Every kind of value has one JSON form, the same as a tree (`to_json`) and as text.
    #[test]
    fn values_have_one_json_form() {
        let cases = [
            (Value::Null, json!(null)),
            (Value::Text("中平 \"A\"".into()), json!("中平 \"A\"")),
            (Value::Int(-7), json!(-7)),
            (Value::Float(0.5), json!(0.5)),
            (Value::Float(f64::NAN), json!(null)),
            (Value::Float(f64::INFINITY), json!(null)),
            (Value::Bool(true), json!(true)),
            (
                Value::Money {
                    amount: 12_345,
                    currency: "CNY".into(),
                },
                json!({"amount": 12_345, "currency": "CNY"}),
            ),
            (Value::Json(json!(["a", {"b": 1}])), json!(["a", {"b": 1}])),
        ];
        for (value, expected) in cases {
            assert_eq!(value.to_json(), expected, "{value:?} as a tree");
            let text = serde_json::to_string(&value).unwrap_or_default();
            assert_eq!(text, expected.to_string(), "{value:?} as text");
        }
    }

    fn f(t: FieldType) -> FieldDef {
        FieldDef::new("x", "字段", "Field", t)
    }

    #[test]
    fn chinese_phone_numbers_are_recognised_and_normalised() {
        assert_eq!(normalize_phone("138 1234 5678").as_deref(), Some("13812345678"));
        assert_eq!(normalize_phone("+86 13812345678").as_deref(), Some("13812345678"));
        assert_eq!(normalize_phone("010-12345678").as_deref(), Some("010-12345678"));
        assert_eq!(normalize_phone("0755-1234567-801").as_deref(), Some("0755-1234567-801"));
        assert_eq!(normalize_phone("400-810-8888").as_deref(), Some("400-810-8888"));
        assert_eq!(normalize_phone("12812345678"), None);
        assert_eq!(normalize_phone("1381234567"), None);
        assert_eq!(normalize_phone("abc"), None);
    }

    #[test]
    fn emails_need_a_domain_with_a_dot() {
        assert!(is_valid_email("li.lei@example.com.cn"));
        assert!(!is_valid_email("li.lei@localhost"));
        assert!(!is_valid_email("' or 1=1 --"));
    }

    #[test]
    fn each_type_refuses_the_wrong_json_type() {
        let d = Dicts;
        assert!(coerce(&f(FieldType::Integer { min: None, max: None }), &json!("12"), &d).is_err());
        assert!(coerce(&f(FieldType::Integer { min: None, max: None }), &json!(1.5), &d).is_err());
        assert!(coerce(&f(FieldType::Boolean), &json!("true"), &d).is_err());
        assert!(coerce(&f(FieldType::Text { max_len: 5 }), &json!(5), &d).is_err());
        assert_eq!(
            coerce(&f(FieldType::Text { max_len: 5 }), &json!(" 中平能源 "), &d),
            Ok(Value::Text("中平能源".into()))
        );
        assert!(coerce(&f(FieldType::Text { max_len: 3 }), &json!("中平能源"), &d).is_err());
    }

    #[test]
    fn money_is_integer_fen_with_a_currency() {
        let d = Dicts;
        assert_eq!(
            coerce(&f(FieldType::Money), &json!(12345), &d),
            Ok(Value::Money {
                amount: 12345,
                currency: "CNY".into()
            })
        );
        assert_eq!(
            coerce(&f(FieldType::Money), &json!({"amount": 5, "currency": "USD"}), &d),
            Ok(Value::Money {
                amount: 5,
                currency: "USD".into()
            })
        );
        assert!(coerce(&f(FieldType::Money), &json!(12.5), &d).is_err());
        assert!(coerce(&f(FieldType::Money), &json!({"amount": 5, "currency": "usd"}), &d).is_err());
    }

    #[test]
    fn selects_accept_only_dictionary_values() {
        let d = Dicts;
        let sel = f(FieldType::Select { dict: "level".into() });
        assert!(coerce(&sel, &json!("A"), &d).is_ok());
        assert_eq!(coerce(&sel, &json!("Z"), &d).map_err(|e| e.code), Err("invalid_option"));
        let multi = f(FieldType::MultiSelect { dict: "level".into() });
        assert_eq!(
            coerce(&multi, &json!(["A", "B", "A"]), &d),
            Ok(Value::Json(json!(["A", "B"])))
        );
        assert!(coerce(&multi, &json!(["A", "Q"]), &d).is_err());
    }

    #[test]
    fn attachments_are_checked_for_count_size_and_type() {
        let d = Dicts;
        let att = f(FieldType::Attachments {
            max_files: 2,
            max_size_bytes: 1024,
            allowed_extensions: vec!["pdf".into(), "jpg".into()],
        });
        let id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
        let ok = json!([{"id": id, "name": "营业执照.PDF", "size": 100}, {"id": id}]);
        assert_eq!(
            coerce(&att, &ok, &d),
            Ok(Value::Json(json!([{"id": id, "name": "营业执照.PDF", "size": 100}]))),
            "a file listed twice is kept once"
        );
        let big = json!([{"id": id, "name": "a.pdf", "size": 4096}]);
        assert_eq!(coerce(&att, &big, &d).map_err(|e| e.code), Err("file_too_large"));
        let exe = json!([{"id": id, "name": "a.exe", "size": 10}]);
        assert_eq!(coerce(&att, &exe, &d).map_err(|e| e.code), Err("file_type_not_allowed"));
        let three = json!([{"id": id}, {"id": id}, {"id": id}]);
        assert_eq!(coerce(&att, &three, &d).map_err(|e| e.code), Err("too_many_files"));
        let no_id = json!([{"name": "a.pdf", "size": 1}]);
        assert_eq!(coerce(&att, &no_id, &d).map_err(|e| e.code), Err("invalid_attachment"));
        assert_eq!(human_size(10 * 1024 * 1024), "10 MB");
    }

    #[test]
    fn a_whole_record_reports_every_error_at_once() {
        let o = ObjectDef::new(
            "t",
            "t",
            "测试",
            "Test",
            vec![
                FieldDef::new("name", "名称", "Name", FieldType::Text { max_len: 10 }).required(),
                FieldDef::new("email", "邮箱", "Email", FieldType::Email),
            ],
        );
        let input = json!({"email": "nope", "bogus": 1, "id": "x"});
        let Some(map) = input.as_object() else { panic!("object") };
        let errors = validate_input(&o, map, Mode::Create, &Dicts).err().unwrap_or_default();
        let codes = errors.codes();
        assert_eq!(codes.get("email"), Some(&vec!["invalid_email"]));
        assert_eq!(codes.get("bogus"), Some(&vec!["unknown_field"]));
        assert_eq!(codes.get("id"), Some(&vec!["read_only"]));
        assert_eq!(codes.get("name"), Some(&vec!["required"]));
    }
}
