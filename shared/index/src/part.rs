//! One usearch HNSW index, and building a set of them under a size limit.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use crate::vector::{check_dims, check_vector};
use crate::{Hit, IndexError, IndexOptions, Quantisation};

/// One usearch HNSW index over a subset of the page vectors.
///
/// A part is built in memory, loaded from bytes (copied into memory), or
/// viewed from a file. A view memory-maps the file, so it opens without
/// reading it whole: `examples/bench_index.rs` opened a 100k x 2048 f16 part
/// and ran one query in 21 ms by view against 771 ms by load.
pub struct IndexPart {
    index: usearch::Index,
}

impl fmt::Debug for IndexPart {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("IndexPart")
            .field("len", &self.len())
            .field("dims", &self.dims())
            .field("quantisation", &self.quantisation())
            .finish()
    }
}

impl IndexPart {
    /// Returns the number of vectors in the part.
    pub fn len(&self) -> usize {
        self.index.size()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn dims(&self) -> usize {
        self.index.dimensions()
    }

    /// Returns the stored scalar type.
    pub fn quantisation(&self) -> Quantisation {
        Quantisation::from_scalar_kind(self.index.scalar_kind())
            .expect("build_parts, load and view accept only f16, f32 and i8 parts")
    }

    /// Returns the exact length of [`IndexPart::to_bytes`] and of the file
    /// that [`IndexPart::save`] writes.
    pub fn serialized_len(&self) -> usize {
        self.index.serialized_length()
    }

    pub fn contains(&self, key: u64) -> bool {
        self.index.contains(key)
    }

    /// Returns the stored vector of `key` as f32, or `None` when the part
    /// does not contain the key.
    ///
    /// The values are the stored (quantised) ones converted back: exact for
    /// f32, within f16 rounding for f16. An i8 part stores unit-norm vectors
    /// scaled to [-127, 127], so only their direction comes back.
    pub fn vector(&self, key: u64) -> Result<Option<Vec<f32>>, IndexError> {
        if !self.index.contains(key) {
            return Ok(None);
        }
        let mut vector = Vec::new();
        let found = self
            .index
            .export(key, &mut vector)
            .map_err(|error| IndexError::usearch("read a stored vector", error))?;
        Ok((found > 0).then_some(vector))
    }

    /// Serialises the part into the usearch file format.
    pub fn to_bytes(&self) -> Result<Vec<u8>, IndexError> {
        let mut bytes = vec![0_u8; self.serialized_len()];
        self.index
            .save_to_buffer(&mut bytes)
            .map_err(|error| IndexError::usearch("serialise an index part", error))?;
        Ok(bytes)
    }

    /// Writes the part to `path` in the usearch file format.
    pub fn save(&self, path: &Path) -> Result<(), IndexError> {
        let path_str = utf8_path(path)?;
        self.index
            .save(path_str)
            .map_err(|error| IndexError::UsearchFile {
                operation: "save",
                path: path.to_owned(),
                message: error.to_string(),
            })
    }

    /// Loads a part from bytes that [`IndexPart::to_bytes`] or
    /// [`IndexPart::save`] produced, copying them into memory.
    pub fn load(bytes: &[u8]) -> Result<Self, IndexError> {
        let metadata = usearch::Index::metadata_from_buffer(bytes)
            .map_err(|error| IndexError::usearch("read the index header from bytes", error))?;
        check_metadata(&metadata)?;
        let index = usearch::Index::restore_from_buffer(bytes)
            .map_err(|error| IndexError::usearch("load an index part from bytes", error))?;
        Ok(Self { index })
    }

    /// Opens a part file by memory-mapping it.
    ///
    /// The file must stay unchanged while the part is in use, because
    /// searches read vectors and graph edges straight from the mapping.
    pub fn view(path: &Path) -> Result<Self, IndexError> {
        let path_str = utf8_path(path)?;
        let metadata = usearch::Index::metadata(path_str).map_err(|error| IndexError::UsearchFile {
            operation: "read the header of",
            path: path.to_owned(),
            message: error.to_string(),
        })?;
        check_metadata(&metadata)?;
        let index = usearch::Index::restore_view(path_str).map_err(|error| IndexError::UsearchFile {
            operation: "view",
            path: path.to_owned(),
            message: error.to_string(),
        })?;
        Ok(Self { index })
    }

    pub(crate) fn set_expansion_search(&self, expansion_search: usize) {
        self.index.change_expansion_search(expansion_search);
    }

    /// Searches this part for the `k` nearest vectors to `query`, which the
    /// caller has already checked. `keep` drops keys from the results inside
    /// the graph walk, so up to `k` kept hits still come back.
    pub(crate) fn search(
        &self,
        query: &[f32],
        k: usize,
        keep: Option<&dyn Fn(u64) -> bool>,
    ) -> Result<Vec<Hit>, IndexError> {
        let matches = match keep {
            None => self.index.search(query, k),
            Some(keep) => self.index.filtered_search(query, k, keep),
        }
        .map_err(|error| IndexError::usearch("search an index part", error))?;

        // usearch's cosine distance is 1 - cosine similarity.
        let hits = matches
            .keys
            .iter()
            .zip(&matches.distances)
            .map(|(&key, &distance)| Hit {
                key,
                score: 1.0 - distance,
            })
            .collect();
        Ok(hits)
    }
}

fn utf8_path(path: &Path) -> Result<&str, IndexError> {
    path.to_str().ok_or_else(|| IndexError::NonUtf8Path {
        path: path.to_owned(),
    })
}

/// Rejects index data that this crate did not build: another metric would
/// make `1 - distance` a wrong score, and multi-key indexes break key lookups.
fn check_metadata(metadata: &usearch::IndexMetadata) -> Result<(), IndexError> {
    if metadata.metric != usearch::MetricKind::Cos {
        return Err(IndexError::UnsupportedMetric {
            metric: format!("{:?}", metadata.metric),
        });
    }
    Quantisation::from_scalar_kind(metadata.quantization)?;
    if metadata.multi {
        return Err(IndexError::UnsupportedMultiKey);
    }
    Ok(())
}

/// Builds one or more HNSW parts from `(key, vector)` pairs.
///
/// Vectors go into parts in input order. A new part starts when the current
/// one reaches `options.max_part_vectors` or would serialise to more than
/// `options.max_part_bytes`. Every vector must have `dims` finite components
/// and a non-zero norm, and every key must be unique and below `u64::MAX`.
/// The first violation aborts the build with an error naming the key.
///
/// Memory: the f32 vectors of one part are buffered (all of them when no
/// limit is set) next to the part being built, because usearch needs the
/// count up front to reserve capacity before adding.
pub fn build_parts<'a>(
    dims: usize,
    options: &IndexOptions,
    vectors: impl IntoIterator<Item = (u64, &'a [f32])>,
) -> Result<Vec<IndexPart>, IndexError> {
    check_dims(dims)?;
    options.validate()?;

    let vectors_per_part = planned_vectors_per_part(dims, options)?;
    let mut parts = Vec::new();
    let mut seen_keys = HashSet::new();
    let mut chunk = Chunk::default();

    for (key, vector) in vectors {
        check_vector(key, dims, vector)?;
        if !seen_keys.insert(key) {
            return Err(IndexError::DuplicateKey { key });
        }
        chunk.keys.push(key);
        chunk.vectors.extend_from_slice(vector);

        if chunk.keys.len() == vectors_per_part {
            parts.extend(build_chunk_within_limit(dims, options, &chunk)?);
            chunk.keys.clear();
            chunk.vectors.clear();
        }
    }
    if !chunk.keys.is_empty() {
        parts.extend(build_chunk_within_limit(dims, options, &chunk)?);
    }
    Ok(parts)
}

/// Keys and their vectors stored row after row.
#[derive(Default)]
struct Chunk {
    keys: Vec<u64>,
    vectors: Vec<f32>,
}

/// Estimates the serialised size of a part with `count` vectors.
///
/// Per vector, usearch 2.26.6 writes the quantised vector, an 8-byte key and
/// its 2-byte level twice (node head and level list). The graph adds a
/// base-level edge list (4-byte count plus 2 M 4-byte slots) and one edge
/// list of 4 + 4 M bytes per upper level. A node reaches level l with probability M^-l, so it has
/// 1 / (M - 1) upper levels on average. The estimate doubles that for
/// headroom, and its 4096-byte header allowance is several times the real one.
fn estimated_part_bytes(dims: usize, options: &IndexOptions, count: usize) -> u64 {
    const HEADER_BYTES: f64 = 4096.0;
    let connectivity = options.connectivity as f64;
    let vector_bytes = (dims * options.quantisation.bytes_per_component()) as f64;
    let base_level_bytes = 4.0 + 8.0 * connectivity;
    let upper_level_bytes = (4.0 + 4.0 * connectivity) * 2.0 / (connectivity - 1.0);
    let per_vector = vector_bytes + 8.0 + 2.0 + 2.0 + base_level_bytes + upper_level_bytes;
    (HEADER_BYTES + per_vector * count as f64).ceil() as u64
}

/// Returns how many vectors to collect before building a part: the vector
/// limit, or the largest count whose size estimate fits the byte limit.
fn planned_vectors_per_part(dims: usize, options: &IndexOptions) -> Result<usize, IndexError> {
    let mut count = options.max_part_vectors.unwrap_or(usize::MAX);
    if let Some(limit) = options.max_part_bytes {
        let single_vector_bytes = estimated_part_bytes(dims, options, 1);
        let header = estimated_part_bytes(dims, options, 0);
        if single_vector_bytes > limit {
            return Err(IndexError::PartLimitTooSmall {
                limit,
                required: single_vector_bytes,
            });
        }
        let per_vector = single_vector_bytes - header;
        let fitting = ((limit - header) / per_vector).max(1);
        count = count.min(usize::try_from(fitting).unwrap_or(usize::MAX));
    }
    Ok(count)
}

/// Builds `chunk` as one part, or as several when the built part turns out
/// larger than `max_part_bytes` (the size is only estimated beforehand).
fn build_chunk_within_limit(
    dims: usize,
    options: &IndexOptions,
    chunk: &Chunk,
) -> Result<Vec<IndexPart>, IndexError> {
    let part = build_part(dims, options, &chunk.keys, &chunk.vectors)?;
    let Some(limit) = options.max_part_bytes else {
        return Ok(vec![part]);
    };
    let actual = part.serialized_len() as u64;
    if actual <= limit {
        return Ok(vec![part]);
    }

    let count = chunk.keys.len();
    if count == 1 {
        return Err(IndexError::PartLimitTooSmall {
            limit,
            required: actual,
        });
    }
    drop(part);

    // Shrink in proportion to the overshoot, with 5% headroom, and rebuild.
    let scaled = (count as f64 * limit as f64 / actual as f64 * 0.95) as usize;
    let smaller = scaled.clamp(1, count - 1);
    let mut parts = Vec::new();
    for (keys, vectors) in chunk.keys.chunks(smaller).zip(chunk.vectors.chunks(smaller * dims)) {
        let sub_chunk = Chunk {
            keys: keys.to_vec(),
            vectors: vectors.to_vec(),
        };
        parts.extend(build_chunk_within_limit(dims, options, &sub_chunk)?);
    }
    Ok(parts)
}

/// Builds one HNSW index from checked vectors, adding from one thread per
/// available core.
fn build_part(
    dims: usize,
    options: &IndexOptions,
    keys: &[u64],
    vectors: &[f32],
) -> Result<IndexPart, IndexError> {
    let index = usearch::Index::new(&options.to_usearch(dims))
        .map_err(|error| IndexError::usearch("create an index", error))?;

    // usearch needs capacity and thread slots reserved before the first add.
    let threads = std::thread::available_parallelism().map_or(1, |count| count.get());
    index
        .reserve_capacity_and_threads(keys.len(), threads)
        .map_err(|error| IndexError::usearch("reserve index capacity", error))?;

    let workers = threads.min(keys.len()).max(1);
    let index_ref = &index;
    let results: Vec<Result<(), IndexError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                scope.spawn(move || {
                    for row in (worker..keys.len()).step_by(workers) {
                        let vector = &vectors[row * dims..(row + 1) * dims];
                        index_ref.add(keys[row], vector).map_err(|error| IndexError::UsearchAdd {
                            key: keys[row],
                            message: error.to_string(),
                        })?;
                    }
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            .collect()
    });
    for result in results {
        result?;
    }

    Ok(IndexPart { index })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIMS: usize = 32;

    /// Deterministic test vectors. They are not normalised, which the
    /// cosine metric does not need.
    fn chunk(count: usize) -> Chunk {
        let keys = (0..count as u64).collect();
        let vectors = (0..count * DIMS)
            .map(|position| ((position as f32) * 0.618).sin() + 0.1)
            .collect();
        Chunk { keys, vectors }
    }

    #[test]
    fn estimate_covers_actual_size() {
        let options = IndexOptions::default();
        let chunk = chunk(2000);
        let part = build_part(DIMS, &options, &chunk.keys, &chunk.vectors).unwrap();
        let actual = part.serialized_len() as u64;
        let estimate = estimated_part_bytes(DIMS, &options, 2000);
        assert!(estimate >= actual, "estimate {estimate} below actual {actual}");
        assert!(
            estimate <= actual + actual / 10 + 4096,
            "estimate {estimate} far above actual {actual}"
        );
    }

    #[test]
    fn oversized_chunk_is_rebuilt_smaller() {
        let chunk = chunk(300);
        let whole = build_part(DIMS, &IndexOptions::default(), &chunk.keys, &chunk.vectors)
            .unwrap()
            .serialized_len() as u64;
        let limit = whole / 2;
        let options = IndexOptions {
            max_part_bytes: Some(limit),
            ..IndexOptions::default()
        };

        let parts = build_chunk_within_limit(DIMS, &options, &chunk).unwrap();
        assert!(parts.len() >= 2, "{} parts", parts.len());
        for part in &parts {
            assert!(part.serialized_len() as u64 <= limit, "{part:?} over {limit} bytes");
        }
        let total: usize = parts.iter().map(IndexPart::len).sum();
        assert_eq!(total, 300);
        assert!(parts.last().unwrap().contains(299));
    }
}
