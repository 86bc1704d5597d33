//! Uploaded files and the attachment fields that refer to them (issue 5 §1: business licence,
//! tax certificate). A file row is written when the bytes are stored (`POST /api/v1/files`);
//! the record engine then resolves every attachment value against these rows inside the
//! record's transaction: unknown ids are refused, name and size come from the row (not from
//! the client), the field's limits are checked again, and a file is linked to the one record
//! that first keeps it. A file may be attached by the user who uploaded it, or kept by a record
//! that already had it, so nobody can attach (and then download) another user's file by id.

use guanxi_core::meta::FieldType;
use guanxi_core::value::{check_file, too_many_files};
use guanxi_core::{Actor, DomainError, FieldError, FieldErrors, ObjectDef, Value};
use serde_json::{Value as Json, json};
use sqlx::{AnyConnection, Row};

use crate::db::{Backend, Db};
use crate::error::StoreResult;
use crate::hooks::Values;
use crate::records::Record;
use crate::sql::{Bind, Sql};

/// One stored file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub id: String,
    /// The object and attachment field the file was uploaded for.
    pub object: String,
    pub field: String,
    /// The original file name, as shown and as sent back on download.
    pub name: String,
    pub size_bytes: i64,
    pub content_type: String,
    /// Hex SHA-256 of the bytes.
    pub sha256: String,
    /// Where the bytes are, relative to nothing: an absolute or data-dir path.
    pub storage_path: String,
    /// The record that keeps the file, once one does.
    pub record_id: Option<String>,
    pub uploaded_by: String,
    pub created_at: String,
}

const COLUMNS: &str =
    "id, object, field, name, size_bytes, content_type, sha256, storage_path, record_id, uploaded_by, created_at";

fn decode(row: &sqlx::any::AnyRow) -> StoreResult<FileRow> {
    Ok(FileRow {
        id: row.try_get("id")?,
        object: row.try_get("object")?,
        field: row.try_get("field")?,
        name: row.try_get("name")?,
        size_bytes: row.try_get("size_bytes")?,
        content_type: row.try_get("content_type")?,
        sha256: row.try_get("sha256")?,
        storage_path: row.try_get("storage_path")?,
        record_id: row.try_get("record_id")?,
        uploaded_by: row.try_get("uploaded_by")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Records a stored file.
pub async fn insert(db: &Db, f: &FileRow) -> StoreResult<()> {
    let mut sql = Sql::of(db.backend(), "INSERT INTO files (");
    sql.push(COLUMNS).push(") VALUES (").bind_list([
        Bind::from(f.id.as_str()),
        Bind::from(f.object.as_str()),
        Bind::from(f.field.as_str()),
        Bind::from(f.name.as_str()),
        Bind::Int(f.size_bytes),
        Bind::from(f.content_type.as_str()),
        Bind::from(f.sha256.as_str()),
        Bind::from(f.storage_path.as_str()),
        Bind::from(f.record_id.clone()),
        Bind::from(f.uploaded_by.as_str()),
        Bind::from(f.created_at.as_str()),
    ]);
    sql.push(")");
    sql.query().execute(db.writer()).await?;
    Ok(())
}

/// Reads one file row.
pub async fn get(db: &Db, id: &str) -> StoreResult<Option<FileRow>> {
    fetch(db.backend(), &mut *db.reader().acquire().await?, id).await
}

async fn fetch(backend: Backend, conn: &mut AnyConnection, id: &str) -> StoreResult<Option<FileRow>> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Ok(None);
    }
    let mut sql = Sql::of(backend, "SELECT ");
    sql.push(COLUMNS).push(" FROM files WHERE id = ").bind(id);
    sql.query().fetch_optional(conn).await?.as_ref().map(decode).transpose()
}

/// Whether a record value lists the file.
pub fn lists_file(value: Option<&Json>, file_id: &str) -> bool {
    value.and_then(Json::as_array).is_some_and(|items| {
        items
            .iter()
            .any(|i| i.get("id").and_then(Json::as_str) == Some(file_id))
    })
}

fn unusable(object: &ObjectDef, key: &str) -> FieldError {
    let label = object.field(key).map_or_else(|| key.to_owned(), |f| f.label.zh.clone());
    let label_en = object.field(key).map_or_else(|| key.to_owned(), |f| f.label.en.clone());
    FieldError::new(
        "not_found",
        format!("“{label}”中的附件不存在，或不是您为此字段上传的文件"),
        format!("an attachment of {label_en} does not exist or was not uploaded by you for this field"),
    )
}

/// Resolves the attachment values of a create or update: each listed id must be a file uploaded
/// for this object and field, by the actor (and not yet kept by another record) or already kept
/// by this record. The values are rewritten to the files' own `{id, name, size}`. Returns the ids
/// to link to the record once it is written.
pub(crate) async fn resolve_attachments(
    conn: &mut AnyConnection,
    backend: Backend,
    object: &ObjectDef,
    actor: &Actor,
    values: &mut Values,
    old: Option<&Record>,
) -> StoreResult<Vec<String>> {
    let mut errors = FieldErrors::default();
    let mut to_link = Vec::new();
    let own_id = old.and_then(|r| r.get("id")).and_then(Json::as_str);
    for (key, value) in values.iter_mut() {
        let Some(field) = object.field(key) else { continue };
        let FieldType::Attachments {
            max_files,
            max_size_bytes,
            allowed_extensions,
        } = &field.field_type
        else {
            continue;
        };
        let Value::Json(Json::Array(items)) = value else {
            continue;
        };
        if items.len() > *max_files as usize {
            errors.add(key, too_many_files(field, *max_files));
            continue;
        }
        let kept_before = old.and_then(|r| r.get(key));
        let mut resolved: Vec<Json> = Vec::with_capacity(items.len());
        let mut failed = false;
        for item in items.iter() {
            let Some(id) = item.get("id").and_then(Json::as_str) else {
                failed = true;
                errors.add(key, unusable(object, key));
                break;
            };
            let row = fetch(backend, &mut *conn, id).await?;
            let usable = row.as_ref().filter(|f| {
                let for_this_field = f.object == object.key && f.field == *key;
                let already_kept =
                    lists_file(kept_before, id) || (own_id.is_some() && f.record_id.as_deref() == own_id);
                let fresh = f.uploaded_by == actor.id && f.record_id.is_none();
                for_this_field && (already_kept || fresh)
            });
            let Some(file) = usable else {
                failed = true;
                errors.add(key, unusable(object, key));
                break;
            };
            let size = u64::try_from(file.size_bytes).unwrap_or(u64::MAX);
            // Limits may have tightened since the upload; a file already kept stays.
            if !lists_file(kept_before, id)
                && let Err(e) = check_file(field, &file.name, size, *max_size_bytes, allowed_extensions)
            {
                failed = true;
                errors.add(key, e);
                break;
            }
            // The same file named twice is kept once.
            if resolved.iter().any(|r| r["id"].as_str() == Some(file.id.as_str())) {
                continue;
            }
            if file.record_id.is_none() {
                to_link.push(file.id.clone());
            }
            resolved.push(json!({"id": file.id, "name": file.name, "size": file.size_bytes}));
        }
        if !failed {
            *value = Value::Json(Json::Array(resolved));
        }
    }
    errors.into_result()?;
    Ok(to_link)
}

/// Marks files as kept by a record. A file that another record took meanwhile (two saves racing
/// with the same upload) fails the whole change, so no record lists a file it does not keep.
pub(crate) async fn link(
    conn: &mut AnyConnection,
    backend: Backend,
    ids: &[String],
    record_id: &str,
) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::of(backend, "UPDATE files SET record_id = ");
    sql.bind(record_id)
        .push(" WHERE record_id IS NULL AND id IN (")
        .bind_list(ids.iter().map(|i| Bind::from(i.as_str())))
        .push(")");
    let linked = sql.query().execute(conn).await?.rows_affected();
    if usize::try_from(linked).unwrap_or(0) < ids.len() {
        return Err(DomainError::conflict(
            "附件已被另一条记录使用，请重新上传",
            "an attachment is already kept by another record; upload it again",
        )
        .into());
    }
    Ok(())
}
