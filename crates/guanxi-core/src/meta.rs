//! The metadata model: object definitions and their fields. One `ObjectDef` drives the API,
//! validation, filtering, sorting, the OpenAPI document, and the generic UI.
//!
//! Standard fields are declared in code and are real columns; custom fields are added by an
//! administrator at run time, stored in the record's JSON `custom` column and prefixed `cf_` so
//! they can never collide with a standard field added later.

use serde::{Deserialize, Serialize};

use crate::i18n::Label;
use crate::state::StateMachine;

/// The type of a field, with its type-specific settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FieldType {
    Text {
        max_len: u32,
    },
    LongText {
        max_len: u32,
    },
    Integer {
        #[serde(default)]
        min: Option<i64>,
        #[serde(default)]
        max: Option<i64>,
    },
    Decimal,
    /// Integer minor units (分) plus an ISO currency code.
    Money,
    Boolean,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339, stored in UTC.
    DateTime,
    Email,
    /// Chinese mobile (`13812345678`, `+86 138…`), landline (`010-12345678`), or 400/800 numbers.
    Phone,
    Url,
    /// One value from a data dictionary.
    Select {
        dict: String,
    },
    /// Several values from a data dictionary.
    MultiSelect {
        dict: String,
    },
    /// The id of a record of another object.
    Relation {
        object: String,
    },
    /// Ids of several records of another object (e.g. a user's roles).
    MultiRelation {
        object: String,
    },
    /// Uploaded files (`[{id, name, size}]`, ids from `POST /api/v1/files`) with limits on
    /// their number, size and type.
    Attachments {
        max_files: u32,
        max_size_bytes: u64,
        #[serde(default)]
        allowed_extensions: Vec<String>,
    },
    Json,
    /// The state field of a declared state machine; changed only by transitions.
    State,
}

impl FieldType {
    /// Whether lists may be ordered by this type.
    pub fn sortable(&self) -> bool {
        !matches!(
            self,
            FieldType::LongText { .. }
                | FieldType::MultiSelect { .. }
                | FieldType::MultiRelation { .. }
                | FieldType::Attachments { .. }
                | FieldType::Json
        )
    }

    /// A short stable name, used in messages and in the OpenAPI document.
    pub fn name(&self) -> &'static str {
        match self {
            FieldType::Text { .. } => "text",
            FieldType::LongText { .. } => "long_text",
            FieldType::Integer { .. } => "integer",
            FieldType::Decimal => "decimal",
            FieldType::Money => "money",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::DateTime => "date_time",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Select { .. } => "select",
            FieldType::MultiSelect { .. } => "multi_select",
            FieldType::Relation { .. } => "relation",
            FieldType::MultiRelation { .. } => "multi_relation",
            FieldType::Attachments { .. } => "attachments",
            FieldType::Json => "json",
            FieldType::State => "state",
        }
    }
}

/// A numbering rule: prefix, optional date part and a zero-padded sequence, e.g. `CM000001`
/// or `HT20261122-0001`. Sequences are per rule and per date period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NumberingRule {
    pub prefix: String,
    #[serde(default)]
    pub date_part: DatePart,
    #[serde(default)]
    pub separator: String,
    pub width: u8,
}

/// Which part of the date goes into a number; the sequence restarts with each period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatePart {
    #[default]
    None,
    Year,
    YearMonth,
    YearMonthDay,
}

impl NumberingRule {
    /// The period key for a date (`""` when the rule has no date part).
    pub fn period(&self, date: time::Date) -> String {
        let (y, m, d) = (date.year(), u8::from(date.month()), date.day());
        match self.date_part {
            DatePart::None => String::new(),
            DatePart::Year => format!("{y:04}"),
            DatePart::YearMonth => format!("{y:04}{m:02}"),
            DatePart::YearMonthDay => format!("{y:04}{m:02}{d:02}"),
        }
    }

    /// Renders a number from its period and sequence value.
    pub fn format(&self, period: &str, seq: i64) -> String {
        let width = usize::from(self.width);
        format!("{}{}{}{seq:0width$}", self.prefix, period, self.separator)
    }
}

/// One field of an object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    /// Stable id, also the JSON key and (for standard fields) the column name.
    pub key: String,
    pub label: Label,
    #[serde(flatten)]
    pub field_type: FieldType,
    #[serde(default)]
    pub required: bool,
    /// Set by the system (ids, timestamps, numbers, states): never accepted from input.
    #[serde(default)]
    pub read_only: bool,
    /// Unique among live records of the object (checked by the engine).
    #[serde(default)]
    pub unique: bool,
    #[serde(default = "yes")]
    pub filterable: bool,
    #[serde(default)]
    pub sortable: bool,
    /// Added by an administrator; stored in the JSON `custom` column.
    #[serde(default)]
    pub custom: bool,
    /// Built-in system field present on every object (id, version, timestamps, owner…).
    #[serde(default)]
    pub system: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numbering: Option<NumberingRule>,
    /// Shown in the form as help text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<Label>,
}

fn yes() -> bool {
    true
}

impl FieldDef {
    /// A standard (non-custom) field; sortable when its type allows it.
    pub fn new(key: &str, zh: &str, en: &str, field_type: FieldType) -> Self {
        let sortable = field_type.sortable();
        FieldDef {
            key: key.to_owned(),
            label: Label::new(zh, en),
            field_type,
            required: false,
            read_only: false,
            unique: false,
            filterable: true,
            sortable,
            custom: false,
            system: false,
            numbering: None,
            help: None,
        }
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }

    pub fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    pub fn not_sortable(mut self) -> Self {
        self.sortable = false;
        self
    }

    pub fn numbered(mut self, rule: NumberingRule) -> Self {
        self.numbering = Some(rule);
        self.read_only = true;
        self.unique = true;
        self
    }

    fn system(mut self) -> Self {
        self.system = true;
        self
    }
}

/// Keys of the system fields every object has, in display order.
pub const SYSTEM_FIELDS: [&str; 8] = [
    "id",
    "version",
    "owner_id",
    "department_id",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
];

/// Prefix that every custom field key carries.
pub const CUSTOM_PREFIX: &str = "cf_";

fn system_fields() -> Vec<FieldDef> {
    let text = || FieldType::Text { max_len: 64 };
    vec![
        FieldDef::new("id", "ID", "ID", text()).read_only().system(),
        FieldDef::new(
            "version",
            "版本",
            "Version",
            FieldType::Integer { min: None, max: None },
        )
        .read_only()
        .system(),
        FieldDef::new("owner_id", "负责人", "Owner", text()).system(),
        FieldDef::new(
            "department_id",
            "所属部门",
            "Department",
            FieldType::Relation {
                object: "department".into(),
            },
        )
        .system(),
        FieldDef::new("created_at", "创建时间", "Created at", FieldType::DateTime)
            .read_only()
            .system(),
        FieldDef::new("created_by", "创建人", "Created by", text())
            .read_only()
            .system(),
        FieldDef::new("updated_at", "修改时间", "Updated at", FieldType::DateTime)
            .read_only()
            .system(),
        FieldDef::new("updated_by", "修改人", "Updated by", text())
            .read_only()
            .system(),
    ]
}

/// A business object: customers, contacts, departments, orders…
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectDef {
    /// Stable id used in URLs (`/api/v1/records/{key}`).
    pub key: String,
    /// The SQL table that holds its records.
    pub table: String,
    pub label: Label,
    /// System fields first, then standard fields, then custom fields.
    pub fields: Vec<FieldDef>,
    /// The field that names a record in lists, lookups and audit entries.
    pub title_field: String,
    /// Text fields searched by the quick search box.
    pub search_fields: Vec<String>,
    /// Search fields holding free text rather than names: found by Chinese substrings and
    /// words, not by pinyin (see [`crate::search::TermKind`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search_without_pinyin: Vec<String>,
    /// Default order of lists, e.g. `-created_at`; `id` is always the final tie-break.
    pub default_sort: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state_machine: Option<StateMachine>,
    /// A parent whose quick search also finds this object's search fields (a customer is found
    /// by its contacts' phones and emails).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_parent: Option<SearchParent>,
    /// Records without an owner form a public pool (公海): whoever holds `<object>.claim` sees
    /// them whatever their read scope, and may claim them (PRODUCT.md module 2).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub public_pool: bool,
    /// The menu group the object belongs to (`customers`, `sales`, `system`, …), so the UI
    /// builds its navigation from metadata; `None` lands under "other".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub module: Option<String>,
}

/// The parent object and the relation field that points at it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchParent {
    pub object: String,
    pub field: String,
}

impl ObjectDef {
    /// Declares an object with the system fields added before `fields`.
    pub fn new(key: &str, table: &str, zh: &str, en: &str, fields: Vec<FieldDef>) -> Self {
        let mut all = system_fields();
        all.extend(fields);
        ObjectDef {
            key: key.to_owned(),
            table: table.to_owned(),
            label: Label::new(zh, en),
            fields: all,
            title_field: "id".into(),
            search_fields: Vec::new(),
            search_without_pinyin: Vec::new(),
            default_sort: vec!["-id".into()],
            state_machine: None,
            search_parent: None,
            public_pool: false,
            module: None,
        }
    }

    /// Declares that unowned records form a public pool (see [`ObjectDef::public_pool`]).
    pub fn with_public_pool(mut self) -> Self {
        self.public_pool = true;
        self
    }

    /// Puts the object in a menu group.
    pub fn in_module(mut self, module: &str) -> Self {
        self.module = Some(module.to_owned());
        self
    }

    /// Makes this object's search fields findable from its parent's quick search.
    pub fn searched_with(mut self, object: &str, field: &str) -> Self {
        self.search_parent = Some(SearchParent {
            object: object.to_owned(),
            field: field.to_owned(),
        });
        self
    }

    pub fn title(mut self, field: &str) -> Self {
        self.title_field = field.to_owned();
        self
    }

    pub fn search(mut self, fields: &[&str]) -> Self {
        self.search_fields = fields.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// Marks search fields as free text, indexed without pinyin.
    pub fn without_pinyin(mut self, fields: &[&str]) -> Self {
        self.search_without_pinyin = fields.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// How the quick search indexes one of this object's search fields, found on the record
    /// itself (`as_child` false) or under its search parent (a contact's values under its
    /// customer: words only, since the contacts list has their pinyin).
    pub fn term_kind(&self, field: &FieldDef, as_child: bool) -> crate::search::TermKind {
        use crate::search::TermKind;
        if matches!(field.field_type, FieldType::Phone) {
            TermKind::Phone
        } else if as_child || self.search_without_pinyin.contains(&field.key) {
            TermKind::Words
        } else {
            TermKind::Name
        }
    }

    pub fn sorted_by(mut self, keys: &[&str]) -> Self {
        self.default_sort = keys.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    pub fn with_state_machine(mut self, machine: StateMachine) -> Self {
        self.state_machine = Some(machine);
        self
    }

    pub fn field(&self, key: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.key == key)
    }

    /// Fields that are real columns (system and standard, not custom).
    pub fn column_fields(&self) -> impl Iterator<Item = &FieldDef> {
        self.fields.iter().filter(|f| !f.custom)
    }

    /// Adds or replaces a custom field; used when metadata is loaded from the database.
    pub fn with_custom_fields(&self, custom: &[FieldDef]) -> ObjectDef {
        let mut out = self.clone();
        out.fields.retain(|f| !f.custom);
        out.fields.extend(custom.iter().cloned());
        out
    }
}

/// Checks that a custom field key is acceptable before it is stored. The key must carry the
/// `cf_` prefix and be a lowercase identifier, which also keeps it safe to name inside SQL JSON
/// paths.
pub fn is_valid_custom_key(key: &str) -> bool {
    let Some(rest) = key.strip_prefix(CUSTOM_PREFIX) else {
        return false;
    };
    let mut chars = rest.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && rest.len() <= 40
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_rule_pads_and_adds_the_period() {
        let rule = NumberingRule {
            prefix: "CM".into(),
            date_part: DatePart::None,
            separator: String::new(),
            width: 6,
        };
        let date = time::macros::date!(2026 - 11 - 22);
        assert_eq!(rule.format(&rule.period(date), 1), "CM000001");
        let dated = NumberingRule {
            prefix: "HT".into(),
            date_part: DatePart::YearMonthDay,
            separator: "-".into(),
            width: 4,
        };
        assert_eq!(dated.format(&dated.period(date), 12), "HT20261122-0012");
    }

    #[test]
    fn custom_keys_need_the_prefix_and_a_plain_identifier() {
        assert!(is_valid_custom_key("cf_wechat_id"));
        assert!(!is_valid_custom_key("wechat_id"));
        assert!(!is_valid_custom_key("cf_"));
        assert!(!is_valid_custom_key("cf_Name"));
        assert!(!is_valid_custom_key("cf_a'); drop table x; --"));
    }

    #[test]
    fn every_object_starts_with_the_system_fields() {
        let o = ObjectDef::new("t", "t", "测试", "Test", vec![]);
        let keys: Vec<&str> = o.fields.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, SYSTEM_FIELDS);
    }
}
