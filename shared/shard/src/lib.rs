//! Page-vector shards: the Parquet files that carry Folio's page embeddings.
//!
//! A shard contains one row per page of one version of one document. Each row names the document key, its
//! version (S3 version id or ETag), the event sequencer that orders writes to
//! the same key, the 1-based page number, the page's pixel size and
//! resolution, the model that embedded it, the embedding as a fixed-size
//! list of `float32`, and the error text when the page failed. Rows with page
//! number 0 describe the whole document: a tombstone for a deleted key, or
//! the reason an object could not be read at all.
//!
//! The file's key-value metadata repeats the model id, the dimensions and the
//! preprocessing, so that a reader can reject a shard from another model
//! without scanning it. Standard tools read shards as they are:
//!
//! ```text
//! duckdb -c "SELECT document, page, embedding[1:4] FROM 'vectors/**/*.parquet'"
//! ```
//!
//! # Example
//!
//! ```
//! use folio_shard::{PageRow, PageStatus, ShardMeta};
//!
//! let meta = ShardMeta::new("bit-m-r50x1", 2, "bit-128");
//! let rows = vec![PageRow::embedded("memo.tif", "v1", "0001", 1, (850, 1100), None, vec![0.6, 0.8])];
//! let bytes = folio_shard::encode(&meta, &rows).unwrap();
//! let (read_meta, read_rows) = folio_shard::decode(bytes.into()).unwrap();
//! assert_eq!(read_meta, meta);
//! assert_eq!(read_rows, rows);
//! ```

use std::sync::Arc;

use arrow_array::builder::{
    FixedSizeListBuilder, Float32Builder, StringBuilder, UInt32Builder,
};
use arrow_array::{
    Array, FixedSizeListArray, Float32Array, RecordBatch, StringArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;

/// Version of the column layout; readers reject files with another.
pub const SHARD_FORMAT: &str = "1";

const KEY_FORMAT: &str = "folio.shard_format";
const KEY_MODEL_ID: &str = "folio.model_id";
const KEY_DIMS: &str = "folio.dims";
const KEY_PREPROCESSING: &str = "folio.preprocessing";

/// Errors from encoding or decoding a shard.
#[derive(Debug, thiserror::Error)]
pub enum ShardError {
    #[error("invalid shard: {0}")]
    Invalid(String),
    #[error("page {page} of {document}: embedding has {actual} values, the shard's model gives {expected}")]
    WrongDimensions {
        document: String,
        page: u32,
        expected: usize,
        actual: usize,
    },
    #[error("Parquet error: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("Arrow error: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// Model identity and preprocessing shared by every row of a shard.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardMeta {
    /// Model identity, as `folio-model` reports it; names an untrained model as such.
    pub model_id: String,
    /// Length of every embedding in the shard.
    pub dims: usize,
    /// Preprocessing applied before the model, for example `rgb,resize=128,bilinear-aa,scale=-1..1`.
    pub preprocessing: String,
}

impl ShardMeta {
    pub fn new(model_id: impl Into<String>, dims: usize, preprocessing: impl Into<String>) -> Self {
        ShardMeta {
            model_id: model_id.into(),
            dims,
            preprocessing: preprocessing.into(),
        }
    }
}

/// Kind of a shard row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PageStatus {
    /// The page was decoded and embedded; the row has an embedding.
    Embedded,
    /// The page (or, at page 0, the whole object) failed; the row has an error.
    Failed,
    /// Tombstone (page 0): the document key was deleted at this sequencer.
    Deleted,
}

impl PageStatus {
    fn as_str(self) -> &'static str {
        match self {
            PageStatus::Embedded => "embedded",
            PageStatus::Failed => "failed",
            PageStatus::Deleted => "deleted",
        }
    }

    fn parse(text: &str) -> Result<Self, ShardError> {
        match text {
            "embedded" => Ok(PageStatus::Embedded),
            "failed" => Ok(PageStatus::Failed),
            "deleted" => Ok(PageStatus::Deleted),
            other => Err(ShardError::Invalid(format!(
                "unknown status {other:?}; expected embedded, failed or deleted"
            ))),
        }
    }
}

/// One row of a shard.
#[derive(Clone, Debug, PartialEq)]
pub struct PageRow {
    /// Document key: the object key under the scans prefix, or the path relative to the scanned folder.
    pub document: String,
    /// S3 version id, ETag or content hash of the version that was read.
    pub version: String,
    /// Order of writes to the same key: S3's event sequencer, compared after left-padding with zeros.
    pub sequencer: String,
    /// 1-based page number; 0 for a row about the whole document.
    pub page: u32,
    pub status: PageStatus,
    /// Page size in pixels as stored in the file.
    pub size: Option<(u32, u32)>,
    /// Resolution in dots per inch (x, y) as stored in the file.
    pub dpi: Option<(f32, f32)>,
    /// L2-normalised page embedding, present when `status` is `Embedded`.
    pub embedding: Option<Vec<f32>>,
    /// Reason the page or object failed, present when `status` is `Failed`.
    pub error: Option<String>,
}

impl PageRow {
    /// Builds the row of a page that was embedded.
    pub fn embedded(
        document: &str,
        version: &str,
        sequencer: &str,
        page: u32,
        size: (u32, u32),
        dpi: Option<(f32, f32)>,
        embedding: Vec<f32>,
    ) -> Self {
        PageRow {
            document: document.to_owned(),
            version: version.to_owned(),
            sequencer: sequencer.to_owned(),
            page,
            status: PageStatus::Embedded,
            size: Some(size),
            dpi,
            embedding: Some(embedding),
            error: None,
        }
    }

    /// Builds the row of a page (or, with `page` 0, an object) that failed.
    pub fn failed(document: &str, version: &str, sequencer: &str, page: u32, error: String) -> Self {
        PageRow {
            document: document.to_owned(),
            version: version.to_owned(),
            sequencer: sequencer.to_owned(),
            page,
            status: PageStatus::Failed,
            size: None,
            dpi: None,
            embedding: None,
            error: Some(error),
        }
    }

    /// Builds the tombstone of a deleted document key.
    pub fn tombstone(document: &str, version: &str, sequencer: &str) -> Self {
        PageRow {
            document: document.to_owned(),
            version: version.to_owned(),
            sequencer: sequencer.to_owned(),
            page: 0,
            status: PageStatus::Deleted,
            size: None,
            dpi: None,
            embedding: None,
            error: None,
        }
    }
}

fn schema(dims: usize) -> Result<Schema, ShardError> {
    let dims = i32::try_from(dims)
        .map_err(|_| ShardError::Invalid(format!("{dims} dimensions do not fit a Parquet list")))?;
    let item = Field::new("item", DataType::Float32, false);
    Ok(Schema::new(vec![
        Field::new("document", DataType::Utf8, false),
        Field::new("version", DataType::Utf8, false),
        Field::new("sequencer", DataType::Utf8, false),
        Field::new("page", DataType::UInt32, false),
        Field::new("status", DataType::Utf8, false),
        Field::new("width", DataType::UInt32, true),
        Field::new("height", DataType::UInt32, true),
        Field::new("dpi_x", DataType::Float32, true),
        Field::new("dpi_y", DataType::Float32, true),
        Field::new("model_id", DataType::Utf8, false),
        Field::new("embedding", DataType::FixedSizeList(Arc::new(item), dims), true),
        Field::new("error", DataType::Utf8, true),
    ]))
}

/// Encodes rows as a Parquet file (zstd-compressed) with the shard metadata.
///
/// Fails when an embedded row has no embedding or one of another length than `meta.dims`.
pub fn encode(meta: &ShardMeta, rows: &[PageRow]) -> Result<Vec<u8>, ShardError> {
    let schema = Arc::new(schema(meta.dims)?);

    let mut document = StringBuilder::new();
    let mut version = StringBuilder::new();
    let mut sequencer = StringBuilder::new();
    let mut page = UInt32Builder::new();
    let mut status = StringBuilder::new();
    let mut width = UInt32Builder::new();
    let mut height = UInt32Builder::new();
    let mut dpi_x = Float32Builder::new();
    let mut dpi_y = Float32Builder::new();
    let mut model_id = StringBuilder::new();
    let item = Field::new("item", DataType::Float32, false);
    let mut embedding = FixedSizeListBuilder::new(Float32Builder::new(), meta.dims as i32)
        .with_field(Arc::new(item));
    let mut error = StringBuilder::new();

    for row in rows {
        document.append_value(&row.document);
        version.append_value(&row.version);
        sequencer.append_value(&row.sequencer);
        page.append_value(row.page);
        status.append_value(row.status.as_str());
        width.append_option(row.size.map(|s| s.0));
        height.append_option(row.size.map(|s| s.1));
        dpi_x.append_option(row.dpi.map(|d| d.0));
        dpi_y.append_option(row.dpi.map(|d| d.1));
        model_id.append_value(&meta.model_id);
        match (&row.embedding, row.status) {
            (Some(values), _) => {
                if values.len() != meta.dims {
                    return Err(ShardError::WrongDimensions {
                        document: row.document.clone(),
                        page: row.page,
                        expected: meta.dims,
                        actual: values.len(),
                    });
                }
                embedding.values().append_slice(values);
                embedding.append(true);
            }
            (None, PageStatus::Embedded) => {
                return Err(ShardError::Invalid(format!(
                    "page {} of {} is marked embedded but has no embedding",
                    row.page, row.document
                )));
            }
            (None, _) => {
                // A null list entry still occupies `dims` child slots.
                for _ in 0..meta.dims {
                    embedding.values().append_value(0.0);
                }
                embedding.append(false);
            }
        }
        error.append_option(row.error.as_deref());
    }

    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(document.finish()),
            Arc::new(version.finish()),
            Arc::new(sequencer.finish()),
            Arc::new(page.finish()),
            Arc::new(status.finish()),
            Arc::new(width.finish()),
            Arc::new(height.finish()),
            Arc::new(dpi_x.finish()),
            Arc::new(dpi_y.finish()),
            Arc::new(model_id.finish()),
            Arc::new(embedding.finish()),
            Arc::new(error.finish()),
        ],
    )?;

    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(KEY_FORMAT.to_owned(), SHARD_FORMAT.to_owned()),
            KeyValue::new(KEY_MODEL_ID.to_owned(), meta.model_id.clone()),
            KeyValue::new(KEY_DIMS.to_owned(), meta.dims.to_string()),
            KeyValue::new(KEY_PREPROCESSING.to_owned(), meta.preprocessing.clone()),
        ]))
        .build();
    let mut buffer = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut buffer, schema, Some(properties))?;
    writer.write(&batch)?;
    writer.close()?;
    Ok(buffer)
}

/// Reads the shard metadata without decoding any row.
pub fn read_meta(bytes: Bytes) -> Result<ShardMeta, ShardError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    meta_from(builder.metadata().file_metadata().key_value_metadata())
}

fn meta_from(pairs: Option<&Vec<KeyValue>>) -> Result<ShardMeta, ShardError> {
    let lookup = |key: &str| -> Result<String, ShardError> {
        pairs
            .and_then(|pairs| pairs.iter().find(|pair| pair.key == key))
            .and_then(|pair| pair.value.clone())
            .ok_or_else(|| ShardError::Invalid(format!("metadata key {key} is missing")))
    };
    let format = lookup(KEY_FORMAT)?;
    if format != SHARD_FORMAT {
        return Err(ShardError::Invalid(format!(
            "shard format {format:?} is not supported; this build reads format {SHARD_FORMAT}"
        )));
    }
    let dims_text = lookup(KEY_DIMS)?;
    let dims = dims_text
        .parse()
        .map_err(|_| ShardError::Invalid(format!("{KEY_DIMS} is {dims_text:?}, not a number")))?;
    Ok(ShardMeta {
        model_id: lookup(KEY_MODEL_ID)?,
        dims,
        preprocessing: lookup(KEY_PREPROCESSING)?,
    })
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, ShardError> {
    batch
        .column_by_name(name)
        .and_then(|column| column.as_any().downcast_ref::<T>())
        .ok_or_else(|| ShardError::Invalid(format!("column {name} is missing or has the wrong type")))
}

/// Decodes a shard into its metadata and rows.
pub fn decode(bytes: Bytes) -> Result<(ShardMeta, Vec<PageRow>), ShardError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes)?;
    let meta = meta_from(builder.metadata().file_metadata().key_value_metadata())?;
    let reader = builder.build()?;

    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch?;
        let document = column::<StringArray>(&batch, "document")?;
        let version = column::<StringArray>(&batch, "version")?;
        let sequencer = column::<StringArray>(&batch, "sequencer")?;
        let page = column::<UInt32Array>(&batch, "page")?;
        let status = column::<StringArray>(&batch, "status")?;
        let width = column::<UInt32Array>(&batch, "width")?;
        let height = column::<UInt32Array>(&batch, "height")?;
        let dpi_x = column::<Float32Array>(&batch, "dpi_x")?;
        let dpi_y = column::<Float32Array>(&batch, "dpi_y")?;
        let embedding = column::<FixedSizeListArray>(&batch, "embedding")?;
        let error = column::<StringArray>(&batch, "error")?;
        if embedding.value_length() as usize != meta.dims {
            return Err(ShardError::Invalid(format!(
                "embedding column has {} values per row, metadata says {}",
                embedding.value_length(),
                meta.dims
            )));
        }
        let values = embedding
            .values()
            .as_any()
            .downcast_ref::<Float32Array>()
            .ok_or_else(|| ShardError::Invalid("embedding values are not float32".into()))?;

        for i in 0..batch.num_rows() {
            let option_u32 = |array: &UInt32Array| (!array.is_null(i)).then(|| array.value(i));
            let option_f32 = |array: &Float32Array| (!array.is_null(i)).then(|| array.value(i));
            let size = option_u32(width).zip(option_u32(height));
            let dpi = option_f32(dpi_x).zip(option_f32(dpi_y));
            let vector = (!embedding.is_null(i)).then(|| {
                let start = embedding.value_offset(i) as usize;
                values.values()[start..start + meta.dims].to_vec()
            });
            rows.push(PageRow {
                document: document.value(i).to_owned(),
                version: version.value(i).to_owned(),
                sequencer: sequencer.value(i).to_owned(),
                page: page.value(i),
                status: PageStatus::parse(status.value(i))?,
                size,
                dpi,
                embedding: vector,
                error: (!error.is_null(i)).then(|| error.value(i).to_owned()),
            });
        }
    }
    Ok((meta, rows))
}

/// Compares two S3 event sequencers: the longer one is left-padded with
/// zeros first, as S3's documentation prescribes, then the hex strings are
/// compared as text.
pub fn compare_sequencers(a: &str, b: &str) -> std::cmp::Ordering {
    let width = a.len().max(b.len());
    let pad = |s: &str| format!("{s:0>width$}").to_ascii_uppercase();
    pad(a).cmp(&pad(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> ShardMeta {
        ShardMeta::new("test-model (untrained)", 3, "rgb,resize=128")
    }

    #[test]
    fn round_trip_keeps_every_kind_of_row() {
        let rows = vec![
            PageRow::embedded("a b/ü+.tif", "etag1", "00A1", 1, (1728, 2200), Some((204.0, 196.0)), vec![1.0, 0.0, 0.0]),
            PageRow::failed("a b/ü+.tif", "etag1", "00A1", 2, "CCITT data ends early".into()),
            PageRow::embedded("a b/ü+.tif", "etag1", "00A1", 3, (10, 20), None, vec![0.0, 0.6, 0.8]),
            PageRow::tombstone("gone.pdf", "v9", "00B0"),
        ];
        let bytes = encode(&meta(), &rows).unwrap();
        let (read_meta, read_rows) = decode(bytes.into()).unwrap();
        assert_eq!(read_meta, meta());
        assert_eq!(read_rows, rows);
    }

    #[test]
    fn encode_rejects_wrong_dimensions() {
        let rows = vec![PageRow::embedded("x.png", "v", "1", 1, (1, 1), None, vec![1.0, 0.0])];
        let error = encode(&meta(), &rows).unwrap_err().to_string();
        assert!(error.contains("page 1 of x.png"), "{error}");
        assert!(error.contains("2 values"), "{error}");
    }

    #[test]
    fn decode_rejects_non_parquet_bytes() {
        assert!(decode(Bytes::from_static(b"not a parquet file")).is_err());
    }

    #[test]
    fn read_meta_matches_decode() {
        let bytes = encode(&meta(), &[]).unwrap();
        assert_eq!(read_meta(bytes.into()).unwrap(), meta());
    }

    #[test]
    fn sequencers_compare_after_padding() {
        use std::cmp::Ordering::*;
        assert_eq!(compare_sequencers("0055AED6DCD90281E5", "0055AED6DCD90281E6"), Less);
        assert_eq!(compare_sequencers("FF", "0100"), Less);
        assert_eq!(compare_sequencers("00ff", "FF"), Equal);
    }
}
