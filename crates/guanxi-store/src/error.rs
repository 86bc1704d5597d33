//! Errors of the store. Domain errors pass through untouched; database errors that a user can
//! cause (a duplicate value, a record still referenced) become domain conflicts so they reach
//! the client as 409 with a clear message, and everything else stays an internal error.

use guanxi_core::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("database error")]
    Db(#[source] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            use sqlx::error::ErrorKind;
            match db.kind() {
                ErrorKind::UniqueViolation => {
                    return StoreError::Domain(DomainError::conflict(
                        "该值已被其他记录使用",
                        "this value is already used by another record",
                    ));
                }
                ErrorKind::ForeignKeyViolation => {
                    return StoreError::Domain(DomainError::conflict(
                        "该记录仍被其他记录引用，或引用的记录不存在",
                        "the record is still referenced by other records, or refers to a record that does not exist",
                    ));
                }
                _ => {}
            }
        }
        StoreError::Db(e)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
