//! Object storage for Folio: an S3 bucket, or a local folder laid out the same way.
//!
//! Every Folio component reads and writes through [`Store`], so the Lambda
//! functions and the `folio` command run the same code on S3 and on a local
//! folder. Keys are relative to the store's root (`s3://bucket/root/` or a
//! directory) and use `/` as separator on every platform.
//!
//! Writes are atomic: a local write goes to a temporary file that is renamed
//! into place, and S3 writes are atomic by nature. [`PutMode::Create`] and
//! [`PutMode::Replace`] give the conditional writes that keep two writers
//! from overwriting each other (S3's `If-None-Match: *` and `If-Match`).
//!
//! [`Store::get_object`] reads scans of any size: above a threshold it
//! streams the object into an unnamed temporary file and memory-maps it, so
//! memory does not grow with the object (see [`Spill`]).
//!
//! A store can carry an [`Access`] policy that rejects any operation outside
//! the prefixes a function is granted, so that tests prove the IAM policy in
//! the deployment template is sufficient.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use folio_store::{PutMode, Store};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path().to_str().unwrap()).await.unwrap();
//! store.put("vectors/a.parquet", b"data".to_vec().into(), PutMode::Overwrite).await.unwrap();
//! let listed = store.list("vectors/").await.unwrap();
//! assert_eq!(listed[0].key, "vectors/a.parquet");
//! assert_eq!(&store.get("vectors/a.parquet").await.unwrap()[..], b"data");
//! # });
//! ```

mod access;
mod local;
mod s3;
mod spill;

use std::time::SystemTime;

use bytes::Bytes;

pub use access::{Access, Operation};
pub use spill::{DEFAULT_MAX_OBJECT_BYTES, DEFAULT_SPILL_BYTES, ObjectBody, Spill, SpilledObject};

/// Condition of a write on the object already at the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutMode {
    /// Write unconditionally.
    Overwrite,
    /// Write only if no object exists at the key; otherwise fail with [`StoreError::AlreadyExists`].
    Create,
    /// Write only if the current object's ETag equals this one; otherwise fail with [`StoreError::Conflict`].
    Replace(String),
}

/// One listed or inspected object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// Opaque tag that changes whenever the content changes; used by [`PutMode::Replace`].
    pub etag: String,
    pub modified: Option<SystemTime>,
}

/// Errors from a store operation. [`StoreError::is_retryable`] separates
/// transient failures (worth a retry) from final ones.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{key}: object not found")]
    NotFound { key: String },
    #[error("{key}: object already exists")]
    AlreadyExists { key: String },
    #[error("{key}: object changed since it was read (ETag {expected} no longer current)")]
    Conflict { key: String, expected: String },
    #[error("{key}: {operation} is outside this function's granted prefixes ({granted})")]
    Denied {
        key: String,
        operation: Operation,
        granted: String,
    },
    #[error("{key}: invalid key: {reason}")]
    InvalidKey { key: String, reason: &'static str },
    #[error("invalid store location {location:?}: {reason}")]
    InvalidLocation { location: String, reason: String },
    #[error("{key}: {operation} failed: {source}")]
    Io {
        key: String,
        operation: Operation,
        #[source]
        source: std::io::Error,
    },
    #[error("{key}: the object is {size} bytes, above the limit of {limit} bytes; raise FOLIO_MAX_OBJECT_BYTES (and the ephemeral storage) or split the document")]
    TooLarge { key: String, size: u64, limit: u64 },
    #[error("{key}: writing the object to a temporary file in {dir} failed: {source}; check the free space there (TMPDIR)")]
    Spill {
        key: String,
        dir: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{key}: S3 {operation} failed: {message}")]
    S3 {
        key: String,
        operation: Operation,
        message: String,
        retryable: bool,
    },
}

impl StoreError {
    /// Returns whether retrying the same operation later may succeed (throttling,
    /// timeouts, 5xx); not-found, conflicts and denials are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::S3 { retryable, .. } => *retryable,
            StoreError::Io { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::Interrupted | std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }
}

enum Backend {
    Local(local::LocalStore),
    S3(s3::S3Store),
}

/// A bucket or folder that contains scans, shards, index snapshots and cluster summaries.
pub struct Store {
    backend: Backend,
    access: Option<Access>,
    spill: Spill,
    location: String,
}

impl Store {
    /// Opens `s3://bucket[/root]` (with the standard AWS configuration, and
    /// `AWS_ENDPOINT_URL` for S3-compatible servers) or a local directory,
    /// which is created when missing.
    pub async fn open(location: &str) -> Result<Store, StoreError> {
        let backend = if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, root) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(StoreError::InvalidLocation {
                    location: location.to_owned(),
                    reason: "the bucket name is empty; expected s3://bucket or s3://bucket/prefix".into(),
                });
            }
            Backend::S3(s3::S3Store::connect(bucket, root).await)
        } else {
            Backend::Local(local::LocalStore::open(location)?)
        };
        Ok(Store {
            backend,
            access: None,
            spill: Spill::default(),
            location: location.to_owned(),
        })
    }

    /// Wraps an S3 client that the caller configured (a Lambda function builds one per container).
    pub fn from_s3_client(client: aws_sdk_s3::Client, bucket: &str, root: &str) -> Store {
        Store {
            backend: Backend::S3(s3::S3Store::new(client, bucket, root)),
            access: None,
            spill: Spill::default(),
            location: format!("s3://{bucket}/{root}"),
        }
    }

    /// Restricts this store to the operations and prefixes in `access`.
    pub fn with_access(mut self, access: Access) -> Store {
        self.access = Some(access);
        self
    }

    /// Sets how [`Store::get_object`] reads large objects (default: [`Spill::default`]).
    pub fn with_spill(mut self, spill: Spill) -> Store {
        self.spill = spill;
        self
    }

    /// Returns how [`Store::get_object`] reads large objects.
    pub fn spill(&self) -> &Spill {
        &self.spill
    }

    /// Location as given to [`Store::open`], for messages.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Local directory behind this store, when it is one.
    pub fn local_root(&self) -> Option<&std::path::Path> {
        match &self.backend {
            Backend::Local(local) => Some(local.root()),
            Backend::S3(_) => None,
        }
    }

    fn check(&self, operation: Operation, key: &str) -> Result<(), StoreError> {
        validate_key(key)?;
        match &self.access {
            Some(access) => access.check(operation, key),
            None => Ok(()),
        }
    }

    /// Reads a whole object into memory, whatever its size; scans go through [`Store::get_object`].
    pub async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        self.check(Operation::Get, key)?;
        match &self.backend {
            Backend::Local(local) => local.get(key).await,
            Backend::S3(s3) => s3.get(key).await,
        }
    }

    /// Reads a whole object, streaming it into a memory-mapped temporary file
    /// when it is larger than [`Spill::threshold_bytes`] or of unknown size,
    /// so memory use does not grow with the object. Fails with
    /// [`StoreError::TooLarge`] above [`Spill::max_object_bytes`], before
    /// the body is read.
    pub async fn get_object(&self, key: &str) -> Result<ObjectBody, StoreError> {
        self.check(Operation::Get, key)?;
        match &self.backend {
            Backend::Local(local) => local.get_object(key, &self.spill).await,
            Backend::S3(s3) => s3.get_object(key, &self.spill).await,
        }
    }

    /// Reads an object's size and ETag.
    pub async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        self.check(Operation::Get, key)?;
        match &self.backend {
            Backend::Local(local) => local.head(key).await,
            Backend::S3(s3) => s3.head(key).await,
        }
    }

    /// Writes a whole object; see [`PutMode`] for conditional writes.
    pub async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> Result<(), StoreError> {
        self.check(Operation::Put, key)?;
        match &self.backend {
            Backend::Local(local) => local.put(key, body, mode).await,
            Backend::S3(s3) => s3.put(key, body, mode).await,
        }
    }

    /// Lists every object whose key starts with `prefix`, sorted by key.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        if let Some(access) = &self.access {
            access.check(Operation::List, prefix)?;
        }
        let mut objects = match &self.backend {
            Backend::Local(local) => local.list(prefix).await?,
            Backend::S3(s3) => s3.list(prefix).await?,
        };
        objects.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(objects)
    }

    /// Deletes an object; deleting a missing object succeeds, as on S3.
    pub async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.check(Operation::Delete, key)?;
        match &self.backend {
            Backend::Local(local) => local.delete(key).await,
            Backend::S3(s3) => s3.delete(key).await,
        }
    }
}

/// Rejects keys that would escape a local root or that S3 treats oddly.
fn validate_key(key: &str) -> Result<(), StoreError> {
    let reason = if key.is_empty() {
        Some("the key is empty")
    } else if key.starts_with('/') {
        Some("the key starts with '/'")
    } else if key.split('/').any(|part| part == ".." || part == ".") {
        Some("the key contains a '.' or '..' segment")
    } else if key.contains('\0') {
        Some("the key contains a NUL byte")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(StoreError::InvalidKey {
            key: key.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}
