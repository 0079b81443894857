//! Reading large objects without holding them in memory: above a threshold an
//! object is streamed into an unnamed temporary file and memory-mapped.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::path::PathBuf;

use bytes::Bytes;

use crate::StoreError;

/// Default [`Spill::threshold_bytes`]: 64 MiB. Smaller objects are read into
/// memory, which is faster than a round trip through the disk and small next
/// to the model (about 300 MB while it loads).
pub const DEFAULT_SPILL_BYTES: u64 = 64 * 1024 * 1024;
/// Default [`Spill::max_object_bytes`]: 2 GiB. The deployment gives the
/// ingest function more ephemeral storage than this, so a spilled object fits.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// Size limits and directory for reading large objects in [`crate::Store::get_object`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spill {
    /// Objects larger than this many bytes (or of unknown size) go to a
    /// temporary file instead of memory.
    pub threshold_bytes: u64,
    /// Objects larger than this many bytes are rejected with
    /// [`StoreError::TooLarge`] before their body is read.
    pub max_object_bytes: u64,
    /// Directory of the temporary files: by default the system temporary
    /// directory (`TMPDIR`, else `/tmp`, which is Lambda's ephemeral storage).
    /// NOTE: on a tmpfs directory a spilled object still occupies RAM.
    pub dir: PathBuf,
}

impl Default for Spill {
    fn default() -> Self {
        Spill {
            threshold_bytes: DEFAULT_SPILL_BYTES,
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
            dir: std::env::temp_dir(),
        }
    }
}

impl Spill {
    /// Returns whether an object of `size` bytes (`None`: unknown) goes to a temporary file.
    pub fn spills(&self, size: Option<u64>) -> bool {
        size.is_none_or(|size| size > self.threshold_bytes)
    }

    /// Rejects an object larger than [`Spill::max_object_bytes`].
    pub(crate) fn check_size(&self, key: &str, size: u64) -> Result<(), StoreError> {
        if size > self.max_object_bytes {
            return Err(StoreError::TooLarge {
                key: key.to_owned(),
                size,
                limit: self.max_object_bytes,
            });
        }
        Ok(())
    }

    /// Creates the temporary file that an object is streamed into. The file
    /// has no name (Linux `O_TMPFILE`, or unlinked at once elsewhere), so the
    /// operating system frees it when the last handle or mapping goes away,
    /// even if the process is killed.
    pub(crate) fn create_file(&self, key: &str) -> Result<File, StoreError> {
        tempfile::tempfile_in(&self.dir).map_err(|source| spill_error(key, &self.dir, source))
    }
}

/// The bytes of an object read by [`crate::Store::get_object`].
#[derive(Debug)]
pub enum ObjectBody {
    /// Read into memory.
    Memory(Bytes),
    /// Streamed into a temporary file that is memory-mapped.
    Spilled(SpilledObject),
}

impl ObjectBody {
    /// Returns whether the object went through a temporary file.
    pub fn is_spilled(&self) -> bool {
        matches!(self, ObjectBody::Spilled(_))
    }
}

impl AsRef<[u8]> for ObjectBody {
    fn as_ref(&self) -> &[u8] {
        match self {
            ObjectBody::Memory(bytes) => bytes,
            ObjectBody::Spilled(spilled) => spilled.as_ref(),
        }
    }
}

impl std::ops::Deref for ObjectBody {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        self.as_ref()
    }
}

/// A read-only memory map of an unnamed temporary file. Its pages are backed
/// by the file, so the kernel can drop them under memory pressure and read
/// them again: the object does not count against anonymous memory.
pub struct SpilledObject {
    map: memmap2::Mmap,
    // Kept open with the map so the file's lifetime is plain to see, although
    // the mapping alone would keep the unnamed file alive.
    _file: File,
}

impl SpilledObject {
    /// Maps a file that the caller finished writing, read-only.
    ///
    /// # Safety
    ///
    /// Nothing may modify or truncate `file` while the returned object lives,
    /// because the bytes behind the slice would change under safe code (or
    /// vanish, which raises SIGBUS). A file from [`Spill::create_file`] meets
    /// this once written: it has no name, so no other process can open it,
    /// and this crate never writes to it after mapping.
    pub(crate) unsafe fn map(key: &str, dir: &std::path::Path, mut file: File) -> Result<SpilledObject, StoreError> {
        file.seek(SeekFrom::Start(0)).map_err(|source| spill_error(key, dir, source))?;
        // SAFETY: the caller guarantees that the file is not modified while mapped.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| spill_error(key, dir, source))?;
        Ok(SpilledObject { map, _file: file })
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl AsRef<[u8]> for SpilledObject {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

impl std::fmt::Debug for SpilledObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SpilledObject({} bytes)", self.map.len())
    }
}

fn spill_error(key: &str, dir: &std::path::Path, source: std::io::Error) -> StoreError {
    StoreError::Spill {
        key: key.to_owned(),
        dir: dir.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use crate::{PutMode, Spill, Store, StoreError};

    async fn local_store_with(key: &str, body: &[u8]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().to_str().unwrap()).await.unwrap();
        store.put(key, body.to_vec().into(), PutMode::Overwrite).await.unwrap();
        (dir, store)
    }

    fn spill_above(threshold_bytes: u64) -> Spill {
        Spill {
            threshold_bytes,
            ..Spill::default()
        }
    }

    #[tokio::test]
    async fn local_object_above_threshold_spills() {
        let body: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (_dir, store) = local_store_with("scans/a.tif", &body).await;
        let store = store.with_spill(spill_above(4096));
        let object = store.get_object("scans/a.tif").await.unwrap();
        assert!(object.is_spilled());
        assert_eq!(&object[..], &body[..]);
    }

    #[tokio::test]
    async fn local_object_at_threshold_stays_in_memory() {
        let body = vec![7u8; 4096];
        let (_dir, store) = local_store_with("scans/a.tif", &body).await;
        let object = store.with_spill(spill_above(4096)).get_object("scans/a.tif").await.unwrap();
        assert!(!object.is_spilled());
        assert_eq!(&object[..], &body[..]);
    }

    #[tokio::test]
    async fn local_object_above_max_is_rejected() {
        let (_dir, store) = local_store_with("scans/a.tif", &[1u8; 5000]).await;
        let spill = Spill {
            threshold_bytes: 100,
            max_object_bytes: 4999,
            ..Spill::default()
        };
        let error = store.with_spill(spill).get_object("scans/a.tif").await.unwrap_err();
        assert!(
            matches!(error, StoreError::TooLarge { size: 5000, limit: 4999, .. }),
            "{error:?}"
        );
        assert!(!error.is_retryable());
    }

    #[tokio::test]
    async fn spill_into_missing_dir_names_it() {
        let (dir, store) = local_store_with("scans/a.tif", &[1u8; 5000]).await;
        let missing = dir.path().join("no-such-dir");
        let spill = Spill {
            threshold_bytes: 100,
            dir: missing.clone(),
            ..Spill::default()
        };
        let error = store.with_spill(spill).get_object("scans/a.tif").await.unwrap_err();
        assert!(matches!(error, StoreError::Spill { .. }), "{error:?}");
        assert!(error.to_string().contains(&missing.display().to_string()), "{error}");
    }

    #[test]
    fn spill_decision_by_size() {
        let spill = spill_above(100);
        assert!(!spill.spills(Some(100)));
        assert!(spill.spills(Some(101)));
        assert!(spill.spills(None), "an object of unknown size is not read into memory");
    }
}
