//! The live metadata catalogue: the built-in objects declared in code plus the custom fields and
//! data dictionaries stored in the database. Readers take a cheap snapshot (`Arc`); changes
//! rebuild the snapshot. Several app servers refresh from the database periodically (the job
//! worker calls [`Catalog::reload`]), so a field added on one server appears on the others.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use guanxi_core::meta::{CUSTOM_PREFIX, FieldType, is_valid_custom_key};
use guanxi_core::value::DictionaryLookup;
use guanxi_core::{Actor, DomainError, FieldDef, FieldError, FieldErrors, Label, ObjectDef};
use serde::Serialize;
use sqlx::Row;

use crate::db::Db;
use crate::error::{StoreError, StoreResult};
use crate::sql::{Sql, get_bool};

/// One option of a data dictionary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DictItem {
    pub value: String,
    pub label: Label,
    pub sort_order: i64,
    pub enabled: bool,
}

/// An immutable view of all metadata at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    objects: HashMap<String, Arc<ObjectDef>>,
    order: Vec<String>,
    dicts: HashMap<String, Vec<DictItem>>,
}

impl Snapshot {
    pub fn object(&self, key: &str) -> Result<Arc<ObjectDef>, DomainError> {
        self.objects
            .get(key)
            .cloned()
            .ok_or_else(|| DomainError::UnknownObject(key.to_owned()))
    }

    /// Objects in menu order.
    pub fn objects(&self) -> impl Iterator<Item = &Arc<ObjectDef>> {
        self.order.iter().filter_map(|k| self.objects.get(k))
    }

    pub fn dictionary(&self, dict: &str) -> Option<&[DictItem]> {
        self.dicts.get(dict).map(Vec::as_slice)
    }

    pub fn dictionaries(&self) -> &HashMap<String, Vec<DictItem>> {
        &self.dicts
    }
}

impl DictionaryLookup for Snapshot {
    fn is_allowed(&self, dict: &str, value: &str) -> bool {
        self.dicts
            .get(dict)
            .is_some_and(|items| items.iter().any(|i| i.enabled && i.value == value))
    }
}

/// The catalogue shared by the engine and the API.
#[derive(Debug)]
pub struct Catalog {
    builtin: Vec<ObjectDef>,
    current: RwLock<Arc<Snapshot>>,
}

impl Catalog {
    /// Creates the catalogue and loads custom fields and dictionaries.
    pub async fn load(db: &Db, builtin: Vec<ObjectDef>) -> StoreResult<Catalog> {
        let catalog = Catalog {
            builtin,
            current: RwLock::new(Arc::new(Snapshot::default())),
        };
        catalog.reload(db).await?;
        Ok(catalog)
    }

    /// The current metadata.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        match self.current.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Re-reads custom fields and dictionaries from the database.
    pub async fn reload(&self, db: &Db) -> StoreResult<()> {
        let rows = sqlx::query("SELECT object, definition FROM custom_fields ORDER BY object, position")
            .fetch_all(db.reader())
            .await?;
        let mut custom: HashMap<String, Vec<FieldDef>> = HashMap::new();
        for row in rows {
            let object: String = row.try_get("object")?;
            let text: String = row.try_get("definition")?;
            match serde_json::from_str::<FieldDef>(&text) {
                Ok(def) => custom.entry(object).or_default().push(def),
                Err(e) => {
                    tracing::error!(%object, error = %e, "skipping unreadable custom field definition")
                }
            }
        }
        let rows = sqlx::query(
            "SELECT dict, value, label_zh, label_en, sort_order, enabled FROM dictionary_items ORDER BY dict, sort_order, value",
        )
        .fetch_all(db.reader())
        .await?;
        let mut dicts: HashMap<String, Vec<DictItem>> = HashMap::new();
        for row in rows {
            dicts.entry(row.try_get("dict")?).or_default().push(DictItem {
                value: row.try_get("value")?,
                label: Label {
                    zh: row.try_get("label_zh")?,
                    en: row.try_get("label_en")?,
                },
                sort_order: row.try_get("sort_order")?,
                enabled: get_bool(&row, "enabled")?.unwrap_or(true),
            });
        }
        let mut objects = HashMap::new();
        let mut order = Vec::new();
        for o in &self.builtin {
            let fields = custom.remove(&o.key).unwrap_or_default();
            objects.insert(o.key.clone(), Arc::new(o.with_custom_fields(&fields)));
            order.push(o.key.clone());
        }
        let snapshot = Arc::new(Snapshot { objects, order, dicts });
        match self.current.write() {
            Ok(mut g) => *g = snapshot,
            Err(poisoned) => *poisoned.into_inner() = snapshot,
        }
        Ok(())
    }

    /// Adds a custom field to an object. The definition is checked like any input: the key must
    /// carry the `cf_` prefix, a select must name an existing dictionary, a relation an existing
    /// object.
    pub async fn add_custom_field(
        &self,
        db: &Db,
        actor: &Actor,
        object: &str,
        mut def: FieldDef,
    ) -> StoreResult<FieldDef> {
        let snapshot = self.snapshot();
        let target = snapshot.object(object)?;
        let mut errors = FieldErrors::default();
        if !def.key.starts_with(CUSTOM_PREFIX) {
            def.key = format!("{CUSTOM_PREFIX}{}", def.key);
        }
        if !is_valid_custom_key(&def.key) {
            errors.add(
                "key",
                FieldError::new(
                    "invalid_key",
                    "字段标识只能包含小写字母、数字和下划线，以字母开头，最长40个字符",
                    "the key may hold lowercase letters, digits and underscores, start with a letter, at most 40 characters",
                ),
            );
        }
        if target.field(&def.key).is_some() {
            errors.add(
                "key",
                FieldError::new("duplicate", "该字段标识已存在", "a field with this key already exists"),
            );
        }
        if def.label.zh.trim().is_empty() || def.label.en.trim().is_empty() {
            errors.add(
                "label",
                FieldError::new("required", "请填写中英文名称", "both labels (zh, en) are required"),
            );
        }
        match &def.field_type {
            FieldType::State => errors.add(
                "type",
                FieldError::new(
                    "invalid_type",
                    "状态字段只能由系统声明",
                    "state fields are declared by modules only",
                ),
            ),
            FieldType::Select { dict } | FieldType::MultiSelect { dict } if snapshot.dictionary(dict).is_none() => {
                errors.add(
                    "dict",
                    FieldError::new(
                        "not_found",
                        format!("数据字典“{dict}”不存在"),
                        format!("dictionary '{dict}' does not exist"),
                    ),
                );
            }
            FieldType::Relation { object } if snapshot.object(object).is_err() => {
                errors.add(
                    "object",
                    FieldError::new(
                        "not_found",
                        format!("对象“{object}”不存在"),
                        format!("object '{object}' does not exist"),
                    ),
                );
            }
            FieldType::Text { max_len } | FieldType::LongText { max_len } if *max_len == 0 || *max_len > 100_000 => {
                errors.add(
                    "max_len",
                    FieldError::new("out_of_range", "长度应在1到100000之间", "max_len must be 1–100000"),
                );
            }
            _ => {}
        }
        errors.into_result()?;
        def.custom = true;
        def.system = false;
        def.read_only = false;
        def.unique = false;
        def.numbering = None;
        def.filterable = true;
        def.sortable = def.field_type.sortable();
        let definition = serde_json::to_string(&def).map_err(anyhow::Error::from)?;
        let position = i64::try_from(target.fields.len()).unwrap_or(i64::MAX);
        let mut sql = Sql::of(
            db.backend(),
            "INSERT INTO custom_fields (object, key, definition, position, created_at, created_by) VALUES (",
        );
        sql.bind(object)
            .push(", ")
            .bind(def.key.as_str())
            .push(", ")
            .bind(definition)
            .push(", ")
            .bind(position)
            .push(", ")
            .bind(guanxi_core::time_fmt::now_utc())
            .push(", ")
            .bind(actor.id.as_str())
            .push(")");
        sql.query().execute(db.writer()).await.map_err(StoreError::from)?;
        self.reload(db).await?;
        Ok(def)
    }

    /// Removes a custom field definition. Stored values stay in the records' JSON, so adding
    /// the field back brings them back.
    pub async fn remove_custom_field(&self, db: &Db, object: &str, key: &str) -> StoreResult<()> {
        self.snapshot().object(object)?;
        let mut sql = Sql::of(db.backend(), "DELETE FROM custom_fields WHERE object = ");
        sql.bind(object).push(" AND key = ").bind(key);
        let done = sql.query().execute(db.writer()).await?;
        if done.rows_affected() == 0 {
            return Err(DomainError::NotFound {
                object: "custom_field".into(),
                id: key.to_owned(),
            }
            .into());
        }
        self.reload(db).await
    }
}
