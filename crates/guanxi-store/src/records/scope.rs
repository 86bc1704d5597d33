//! Permissions inside the engine: which records an actor reaches for an action (a SQL condition
//! added to every read and write), and which fields it sees (a view of the object with hidden
//! fields removed and read-only ones locked). Every engine entry point goes through here, so no
//! handler can forget a check.

use std::sync::Arc;

use guanxi_core::access::{FieldRule, Scope};
use guanxi_core::filter::{Filter, SortKey};
use guanxi_core::{Actor, DomainError, Label, ObjectDef};

use crate::sql::{Bind, Sql};

/// The object as the actor may see it: hidden fields removed, read-only fields locked. Without
/// field rules on the object (the common case) it is the object itself: every request asks for
/// a view, and copying forty field definitions was ~5% of a get by id's samples.
pub fn view_of(object: &Arc<ObjectDef>, actor: &Actor) -> Arc<ObjectDef> {
    if !actor.restricts_fields(&object.key) {
        return object.clone();
    }
    let mut view = (**object).clone();
    view.fields
        .retain(|f| f.key == "id" || actor.field_rule(&object.key, &f.key) != Some(FieldRule::Hidden));
    for f in &mut view.fields {
        if actor.field_rule(&object.key, &f.key) == Some(FieldRule::ReadOnly) {
            f.read_only = true;
        }
    }
    view.search_fields.retain(|k| view.fields.iter().any(|f| &f.key == k));
    Arc::new(view)
}

/// The scope of an action, or 403.
pub fn require(actor: &Actor, object: &ObjectDef, action: &str) -> Result<Scope, DomainError> {
    actor
        .scope(&object.key, action)
        .ok_or_else(|| forbidden(object, action))
}

pub fn forbidden(object: &ObjectDef, action: &str) -> DomainError {
    let (zh, en) = match action {
        "read" => ("查看", "read"),
        "create" => ("新建", "create"),
        "update" => ("修改", "change"),
        "delete" => ("删除", "delete"),
        "export" => ("导出", "export"),
        "import" => ("导入", "import"),
        other => (other, other),
    };
    DomainError::Forbidden(Label {
        zh: format!("没有{zh}{}的权限", object.label.zh),
        en: format!("you may not {en} {} records", object.label.en.to_lowercase()),
    })
}

/// Appends ` AND <condition>` limiting rows to the scope.
pub fn push_scope(sql: &mut Sql, actor: &Actor, scope: Scope) {
    if scope != Scope::All {
        sql.push(" AND ");
        push_condition(sql, actor, scope);
    }
}

/// Whether the actor sees the object's public pool (its unowned records) whatever its read
/// scope: whoever may claim from the pool must be able to browse it (公海, issue 5 §6).
pub fn sees_pool(actor: &Actor, object: &ObjectDef) -> bool {
    object.public_pool && actor.scope(&object.key, "claim").is_some()
}

/// Appends the condition of the actor's read scope on `object`: [`push_scope`], widened by the
/// public pool for actors who may claim from it. Every read path (get, list, count, history,
/// the audit log, relation checks and the rows an action may touch) uses this, so pool
/// records are visible everywhere a readable record is, and nowhere else.
pub fn push_read_scope(sql: &mut Sql, actor: &Actor, object: &ObjectDef, scope: Scope) {
    if scope == Scope::All {
        return;
    }
    if sees_pool(actor, object) {
        sql.push(" AND (");
        push_condition(sql, actor, scope);
        sql.push(" OR \"owner_id\" IS NULL)");
    } else {
        push_scope(sql, actor, scope);
    }
}

/// The bare condition of a scope other than `All`.
fn push_condition(sql: &mut Sql, actor: &Actor, scope: Scope) {
    match scope {
        Scope::All => {
            sql.push("1 = 1");
        }
        Scope::Own => {
            sql.push("\"owner_id\" = ").bind(actor.id.as_str());
        }
        Scope::Subordinates => {
            let mut ids = vec![Bind::Text(actor.id.clone())];
            if let Some(a) = &actor.access {
                ids.extend(a.subordinate_ids.iter().map(|s| Bind::Text(s.clone())));
            }
            sql.push("\"owner_id\" IN (").bind_list(ids).push(")");
        }
        Scope::Department => match &actor.department_id {
            Some(d) => {
                sql.push("\"department_id\" = ").bind(d.as_str());
            }
            None => {
                sql.push("1 = 0");
            }
        },
        Scope::DepartmentTree => {
            let tree: Vec<Bind> = actor
                .access
                .as_ref()
                .map(|a| a.department_tree_ids.iter().map(|s| Bind::Text(s.clone())).collect())
                .unwrap_or_default();
            if tree.is_empty() {
                sql.push("1 = 0");
            } else {
                sql.push("\"department_id\" IN (").bind_list(tree).push(")");
            }
        }
    }
}

/// Whether a record with this owner and department lies inside a scope (for creates and
/// ownership changes, where there is no row to filter yet).
pub fn covers(actor: &Actor, scope: Scope, owner_id: Option<&str>, department_id: Option<&str>) -> bool {
    match scope {
        Scope::All => true,
        Scope::Own => owner_id == Some(actor.id.as_str()),
        Scope::Subordinates => owner_id.is_some_and(|o| {
            o == actor.id
                || actor
                    .access
                    .as_ref()
                    .is_some_and(|a| a.subordinate_ids.iter().any(|s| s == o))
        }),
        Scope::Department => department_id.is_some() && department_id == actor.department_id.as_deref(),
        Scope::DepartmentTree => department_id.is_some_and(|d| {
            actor
                .access
                .as_ref()
                .is_some_and(|a| a.department_tree_ids.iter().any(|t| t == d))
        }),
    }
}

/// Refuses filters and sorts that name a field outside the view (a hidden field must not be
/// probed through a filter either).
pub fn check_query_fields(view: &ObjectDef, filter: Option<&Filter>, sort: &[SortKey]) -> Result<(), DomainError> {
    fn walk(view: &ObjectDef, f: &Filter) -> Result<(), DomainError> {
        match f {
            Filter::And(items) | Filter::Or(items) => items.iter().try_for_each(|i| walk(view, i)),
            Filter::Cond { field, .. } => match view.field(&field.key) {
                Some(_) => Ok(()),
                None => Err(unknown(&field.key)),
            },
        }
    }
    if let Some(f) = filter {
        walk(view, f)?;
    }
    for k in sort {
        if view.field(&k.field.key).is_none() {
            return Err(unknown(&k.field.key));
        }
    }
    Ok(())
}

fn unknown(key: &str) -> DomainError {
    DomainError::invalid_query(format!("未知字段“{key}”"), format!("unknown field '{key}'"))
}
