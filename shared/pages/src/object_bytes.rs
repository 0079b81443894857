//! The bytes of one uploaded object, shared without copying between the container
//! parser and the page decoders.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// An object's bytes: a heap buffer, or anything else that derefs to bytes, such as a
/// memory-mapped file that a large object was spilled to.
///
/// Cloning shares the bytes. `From` covers `Arc<[u8]>`, `Vec<u8>` and `Box<[u8]>`, and
/// [`ObjectBytes::from_owner`] wraps a memory map.
#[derive(Clone)]
pub struct ObjectBytes(Arc<dyn AsRef<[u8]> + Send + Sync>);

impl ObjectBytes {
    /// Wraps any owner of bytes, for example a `memmap2::Mmap`.
    pub fn from_owner(owner: impl AsRef<[u8]> + Send + Sync + 'static) -> Self {
        Self(Arc::new(owner))
    }
}

impl Deref for ObjectBytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        (*self.0).as_ref()
    }
}

impl AsRef<[u8]> for ObjectBytes {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl fmt::Debug for ObjectBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectBytes({} bytes)", self.len())
    }
}

impl From<Arc<[u8]>> for ObjectBytes {
    fn from(bytes: Arc<[u8]>) -> Self {
        Self(Arc::new(bytes))
    }
}

impl From<Vec<u8>> for ObjectBytes {
    fn from(bytes: Vec<u8>) -> Self {
        Self(Arc::new(bytes))
    }
}

impl From<Box<[u8]>> for ObjectBytes {
    fn from(bytes: Box<[u8]>) -> Self {
        Self(Arc::new(bytes))
    }
}
