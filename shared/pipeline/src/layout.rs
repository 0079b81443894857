//! Where each kind of object lives in the bucket or folder, and how shard
//! names are derived from a document version.

use sha2::{Digest, Sha256};

/// Width to which sequencers are left-padded in object names, so that names
/// sort in sequencer order. S3 sequencers are hex strings of up to about 20
/// characters today.
pub const SEQUENCER_WIDTH: usize = 32;

/// Key prefixes, each empty or ending in `/`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Layout {
    /// Uploaded scans; a document's key is its object key below this prefix.
    pub scans: String,
    /// Page-vector shards and tombstones.
    pub vectors: String,
    /// Records of objects that could not be read at all.
    pub errors: String,
    /// Index snapshots and the pointer to the current one.
    pub index: String,
    /// Cluster summaries, their pictures and HTML reports.
    pub clusters: String,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            scans: "scans/".into(),
            vectors: "vectors/".into(),
            errors: "errors/".into(),
            index: "index/".into(),
            clusters: "clusters/".into(),
        }
    }
}

/// Names of the environment variables that override each prefix; the
/// deployment template sets the same names.
pub const ENV_SCANS_PREFIX: &str = "FOLIO_SCANS_PREFIX";
pub const ENV_VECTORS_PREFIX: &str = "FOLIO_VECTORS_PREFIX";
pub const ENV_ERRORS_PREFIX: &str = "FOLIO_ERRORS_PREFIX";
pub const ENV_INDEX_PREFIX: &str = "FOLIO_INDEX_PREFIX";
pub const ENV_CLUSTERS_PREFIX: &str = "FOLIO_CLUSTERS_PREFIX";

fn normalise_prefix(prefix: String) -> String {
    let trimmed = prefix.trim_start_matches('/');
    if trimmed.is_empty() || trimmed.ends_with('/') {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/")
    }
}

impl Layout {
    /// Reads the prefixes from the environment, keeping the default for each unset variable.
    pub fn from_env() -> Layout {
        let default = Layout::default();
        let read = |name: &str, fallback: String| {
            normalise_prefix(std::env::var(name).unwrap_or(fallback))
        };
        Layout {
            scans: read(ENV_SCANS_PREFIX, default.scans),
            vectors: read(ENV_VECTORS_PREFIX, default.vectors),
            errors: read(ENV_ERRORS_PREFIX, default.errors),
            index: read(ENV_INDEX_PREFIX, default.index),
            clusters: read(ENV_CLUSTERS_PREFIX, default.clusters),
        }
    }

    /// Maps an environment variable name from an `access.json` to its prefix.
    pub fn prefix_for_variable(&self, name: &str) -> String {
        match name {
            ENV_SCANS_PREFIX => self.scans.clone(),
            ENV_VECTORS_PREFIX => self.vectors.clone(),
            ENV_ERRORS_PREFIX => self.errors.clone(),
            ENV_INDEX_PREFIX => self.index.clone(),
            ENV_CLUSTERS_PREFIX => self.clusters.clone(),
            // An unknown name grants nothing: no key starts with a NUL.
            _ => "\0".into(),
        }
    }

    /// Folder of one document's shards: `vectors/docs/<hash>/`.
    pub fn document_shards(&self, document: &str) -> String {
        format!("{}docs/{}/", self.vectors, document_hash(document))
    }

    /// Key of the shard for one version of a document. The name depends only
    /// on the document, its version and the sequencer, so a repeated event
    /// or a retried invocation writes the same name and never duplicates
    /// vectors.
    pub fn shard_key(&self, document: &DocumentVersion) -> String {
        format!(
            "{}{}-{}.parquet",
            self.document_shards(&document.document),
            pad_sequencer(&document.sequencer),
            short_hash(&document.version)
        )
    }

    /// Key of the tombstone written when a document key is deleted.
    pub fn tombstone_key(&self, document: &DocumentVersion) -> String {
        format!(
            "{}{}-{TOMBSTONE_SUFFIX}",
            self.document_shards(&document.document),
            pad_sequencer(&document.sequencer)
        )
    }

    /// Key of the record for an object that could not be read at all.
    pub fn error_key(&self, document: &DocumentVersion) -> String {
        format!(
            "{}{}/{}-{}.json",
            self.errors,
            document_hash(&document.document),
            pad_sequencer(&document.sequencer),
            short_hash(&document.version)
        )
    }

    /// Document key of an object key under the scans prefix, or `None` for keys outside it.
    pub fn document_of_scan<'a>(&self, object_key: &'a str) -> Option<&'a str> {
        object_key.strip_prefix(self.scans.as_str()).filter(|rest| !rest.is_empty())
    }
}

/// File name ending that marks a tombstone shard.
pub const TOMBSTONE_SUFFIX: &str = "deleted.parquet";

/// One version of a document, as S3 events or the local scanner see it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DocumentVersion {
    /// Document key (object key below the scans prefix, or path relative to the scanned folder).
    pub document: String,
    /// S3 version id, ETag or content hash.
    pub version: String,
    /// Hex string ordering events for the same key; later is greater after padding.
    pub sequencer: String,
}

/// First 16 hex digits of the SHA-256 of a document key: a fixed-length,
/// filesystem-safe folder name for any key (spaces, unicode, deep folders).
pub fn document_hash(document: &str) -> String {
    short_hash(document)
}

fn short_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    hex::encode(&digest[..8])
}

/// Left-pads a hex sequencer with zeros to [`SEQUENCER_WIDTH`] and upper-cases it.
pub fn pad_sequencer(sequencer: &str) -> String {
    let cleaned: String = sequencer
        .chars()
        .filter(char::is_ascii_hexdigit)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    format!("{cleaned:0>SEQUENCER_WIDTH$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(sequencer: &str) -> DocumentVersion {
        DocumentVersion {
            document: "deep/folder/a memo+ü.tif".into(),
            version: "etag-1".into(),
            sequencer: sequencer.into(),
        }
    }

    #[test]
    fn shard_key_is_stable_and_ordered() {
        let layout = Layout::default();
        assert_eq!(layout.shard_key(&version("A1")), layout.shard_key(&version("A1")));
        assert!(layout.shard_key(&version("FF")) < layout.shard_key(&version("0100")));
        assert!(layout.shard_key(&version("A1")).starts_with("vectors/docs/"));
    }

    #[test]
    fn tombstone_sorts_with_shards_by_sequencer() {
        let layout = Layout::default();
        assert!(layout.shard_key(&version("10")) < layout.tombstone_key(&version("11")));
        assert!(layout.tombstone_key(&version("11")) < layout.shard_key(&version("12")));
    }

    #[test]
    fn document_of_scan_strips_prefix() {
        let layout = Layout::default();
        assert_eq!(layout.document_of_scan("scans/a/b.tif"), Some("a/b.tif"));
        assert_eq!(layout.document_of_scan("vectors/x"), None);
        assert_eq!(layout.document_of_scan("scans/"), None);
    }

    #[test]
    fn normalise_prefix_adds_slash() {
        assert_eq!(normalise_prefix("scans".into()), "scans/");
        assert_eq!(normalise_prefix("/a/b/".into()), "a/b/");
        assert_eq!(normalise_prefix(String::new()), "");
    }
}
