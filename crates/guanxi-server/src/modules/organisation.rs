//! The organisation tree. Departments are ordinary records; these hooks keep the tree a tree:
//! a department cannot become its own ancestor, and one with live sub-departments cannot be
//! deleted (seed 000 §2.2 organisation management).

use async_trait::async_trait;
use guanxi_core::{DomainError, FieldError, FieldErrors, Value};
use guanxi_store::hooks::{HookCtx, RecordHooks, Values};
use guanxi_store::sql::Sql;
use guanxi_store::{Record, StoreResult};
use sqlx::Row;

/// Department hooks; they clear the cached permissions when the tree changes, because scopes
/// like `department_tree` are computed from it.
pub struct DepartmentHooks {
    pub identity: std::sync::Arc<crate::modules::identity::IdentityState>,
}

/// How deep a department tree may be walked before it is treated as broken.
const MAX_DEPTH: usize = 64;

#[async_trait]
impl RecordHooks for DepartmentHooks {
    async fn before_update(&self, ctx: &mut HookCtx<'_>, old: &Record, changes: &mut Values) -> StoreResult<()> {
        let Some(id) = old.get("id").and_then(|v| v.as_str()) else {
            return Ok(());
        };
        let Some((_, Value::Text(new_parent))) = changes.iter().find(|(k, _)| k == "parent_id") else {
            return Ok(());
        };
        let mut cursor = Some(new_parent.clone());
        for _ in 0..MAX_DEPTH {
            let Some(current) = cursor else { return Ok(()) };
            if current == id {
                return Err(DomainError::Validation(FieldErrors::single(
                    "parent_id",
                    FieldError::new(
                        "cycle",
                        "上级部门不能是本部门或其下级部门",
                        "a department cannot sit under itself or one of its sub-departments",
                    ),
                ))
                .into());
            }
            let mut sql = Sql::of(ctx.backend, "SELECT parent_id FROM departments WHERE id = ");
            sql.bind(current.as_str());
            cursor = match sql.query().fetch_optional(&mut **ctx.tx).await? {
                Some(row) => row.try_get::<Option<String>, _>("parent_id")?,
                None => None,
            };
        }
        Ok(())
    }

    async fn after_create(&self, _ctx: &mut HookCtx<'_>, _record: &Record) -> StoreResult<()> {
        self.identity.cache.clear();
        Ok(())
    }

    async fn after_update(&self, _ctx: &mut HookCtx<'_>, _old: &Record, _new: &Record) -> StoreResult<()> {
        self.identity.cache.clear();
        Ok(())
    }

    async fn after_delete(&self, _ctx: &mut HookCtx<'_>, _record: &Record) -> StoreResult<()> {
        self.identity.cache.clear();
        Ok(())
    }

    async fn before_delete(&self, ctx: &mut HookCtx<'_>, record: &Record) -> StoreResult<()> {
        let Some(id) = record.get("id").and_then(|v| v.as_str()) else {
            return Ok(());
        };
        let mut sql = Sql::of(
            ctx.backend,
            "SELECT 1 AS one FROM departments WHERE deleted_at IS NULL AND parent_id = ",
        );
        sql.bind(id).push(" LIMIT 1");
        if sql.query().fetch_optional(&mut **ctx.tx).await?.is_some() {
            return Err(DomainError::conflict(
                "该部门下还有下级部门，请先删除或移走下级部门",
                "this department still has sub-departments; delete or move them first",
            )
            .into());
        }
        Ok(())
    }
}
