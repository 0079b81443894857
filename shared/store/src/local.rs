//! A local directory laid out exactly like the bucket.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use bytes::Bytes;

use crate::spill::{ObjectBody, Spill, SpilledObject};
use crate::{ObjectInfo, Operation, PutMode, StoreError};

const TEMP_PREFIX: &str = ".folio-tmp-";
const LOCK_FILE: &str = ".folio-store.lock";

pub(crate) struct LocalStore {
    root: PathBuf,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn io_error(key: &str, operation: Operation) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            StoreError::NotFound { key: key.to_owned() }
        } else {
            StoreError::Io {
                key: key.to_owned(),
                operation,
                source,
            }
        }
    }
}

/// ETag of a local file: its modification time and size. Every write
/// renames a new file into place, so the tag changes with each write.
fn etag_of(metadata: &fs::Metadata) -> String {
    let nanos = metadata
        .modified()
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |duration| duration.as_nanos());
    format!("{nanos:x}-{:x}", metadata.len())
}

impl LocalStore {
    pub(crate) fn open(location: &str) -> Result<LocalStore, StoreError> {
        let root = PathBuf::from(location);
        fs::create_dir_all(&root).map_err(|error| StoreError::InvalidLocation {
            location: location.to_owned(),
            reason: format!("cannot create the directory: {error}"),
        })?;
        Ok(LocalStore { root })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Bytes, StoreError> {
        let data = fs::read(self.path(key)).map_err(io_error(key, Operation::Get))?;
        Ok(Bytes::from(data))
    }

    /// Reads an object into memory, or copies it into a temporary file and
    /// maps that. The stored file itself is not mapped, because another
    /// writer may replace or truncate it while the map lives.
    pub(crate) async fn get_object(&self, key: &str, spill: &Spill) -> Result<ObjectBody, StoreError> {
        let path = self.path(key);
        let mut source = fs::File::open(&path).map_err(io_error(key, Operation::Get))?;
        let size = source.metadata().map_err(io_error(key, Operation::Get))?.len();
        spill.check_size(key, size)?;
        if !spill.spills(Some(size)) {
            let mut data = Vec::with_capacity(size as usize);
            std::io::Read::read_to_end(&mut source, &mut data).map_err(io_error(key, Operation::Get))?;
            return Ok(ObjectBody::Memory(Bytes::from(data)));
        }
        let mut file = spill.create_file(key)?;
        std::io::copy(&mut source, &mut file).map_err(|source| StoreError::Spill {
            key: key.to_owned(),
            dir: spill.dir.clone(),
            source,
        })?;
        // SAFETY: the file comes from `Spill::create_file` (unnamed, private
        // to this process) and the copy above is its last write.
        let spilled = unsafe { SpilledObject::map(key, &spill.dir, file) }?;
        Ok(ObjectBody::Spilled(spilled))
    }

    pub(crate) async fn head(&self, key: &str) -> Result<ObjectInfo, StoreError> {
        let metadata = fs::metadata(self.path(key)).map_err(io_error(key, Operation::Get))?;
        Ok(info(key, &metadata))
    }

    pub(crate) async fn put(&self, key: &str, body: Bytes, mode: PutMode) -> Result<(), StoreError> {
        let target = self.path(key);
        let parent = target.parent().unwrap_or(&self.root);
        fs::create_dir_all(parent).map_err(io_error(key, Operation::Put))?;

        let temp = parent.join(format!(
            "{TEMP_PREFIX}{}-{}",
            std::process::id(),
            TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let write = || -> std::io::Result<()> {
            let mut file = fs::File::create(&temp)?;
            file.write_all(&body)?;
            file.sync_all()
        };
        write().map_err(io_error(key, Operation::Put))?;

        let result = match mode {
            PutMode::Overwrite => fs::rename(&temp, &target).map_err(io_error(key, Operation::Put)),
            PutMode::Create => {
                // A hard link fails when the target exists, which makes the check and the write one step.
                let linked = fs::hard_link(&temp, &target);
                let _ = fs::remove_file(&temp);
                match linked {
                    Ok(()) => Ok(()),
                    Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                        Err(StoreError::AlreadyExists { key: key.to_owned() })
                    }
                    Err(error) => Err(io_error(key, Operation::Put)(error)),
                }
            }
            PutMode::Replace(expected) => self.replace(key, &temp, &target, &expected),
        };
        if result.is_err() {
            let _ = fs::remove_file(&temp);
        }
        result
    }

    /// Renames `temp` over `target` if the target's ETag is still `expected`,
    /// holding an exclusive lock on the store so two local writers cannot
    /// both pass the check.
    fn replace(&self, key: &str, temp: &Path, target: &Path, expected: &str) -> Result<(), StoreError> {
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(LOCK_FILE))
            .map_err(io_error(key, Operation::Put))?;
        lock.lock().map_err(io_error(key, Operation::Put))?;
        let current = fs::metadata(target).map(|metadata| etag_of(&metadata));
        let result = match current {
            Ok(etag) if etag == expected => fs::rename(temp, target).map_err(io_error(key, Operation::Put)),
            Ok(_) | Err(_) => Err(StoreError::Conflict {
                key: key.to_owned(),
                expected: expected.to_owned(),
            }),
        };
        let _ = lock.unlock();
        result
    }

    pub(crate) async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>, StoreError> {
        let mut objects = Vec::new();
        // Start from the deepest directory named by the prefix, so listing one
        // document's shards does not walk the whole store.
        let directory = match prefix.rfind('/') {
            Some(end) => &prefix[..=end],
            None => "",
        };
        let start = self.root.join(directory);
        let mut pending = vec![start];
        while let Some(dir) = pending.pop() {
            let entries = match fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => continue,
                Err(error) => return Err(io_error(prefix, Operation::List)(error)),
            };
            for entry in entries {
                let entry = entry.map_err(io_error(prefix, Operation::List))?;
                let name = entry.file_name();
                let name = name.to_string_lossy();
                if name.starts_with(TEMP_PREFIX) || name == LOCK_FILE {
                    continue;
                }
                let path = entry.path();
                let metadata = entry.metadata().map_err(io_error(prefix, Operation::List))?;
                if metadata.is_dir() {
                    pending.push(path);
                    continue;
                }
                let Ok(relative) = path.strip_prefix(&self.root) else { continue };
                let key = relative
                    .components()
                    .map(|part| part.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if key.starts_with(prefix) {
                    objects.push(info(&key, &metadata));
                }
            }
        }
        Ok(objects)
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<(), StoreError> {
        match fs::remove_file(self.path(key)) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(io_error(key, Operation::Delete)(error)),
        }
    }
}

fn info(key: &str, metadata: &fs::Metadata) -> ObjectInfo {
    ObjectInfo {
        key: key.to_owned(),
        size: metadata.len(),
        etag: etag_of(metadata),
        modified: metadata.modified().ok(),
    }
}
