use thiserror::Error;

/// What can go wrong below the use cases. Backends map their driver errors into this.
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("запись не найдена: {0}")]
    NotFound(String),
    /// A uniqueness or foreign-key rule refused the write; the constraint name says which.
    #[error("конфликт данных ({constraint})")]
    Conflict { constraint: String },
    /// The batch refers to something that does not exist (an import mistake, not a bug).
    #[error("{kind} «{external_id}» не найден(а)")]
    UnknownReference { kind: &'static str, external_id: String },
    #[error("база данных недоступна: {0}")]
    Unavailable(String),
    #[error("данные в базе повреждены: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;
