//! Shards must open in the tools data scientists use: pyarrow and DuckDB
//! read a shard written here and return the same vectors.

use std::process::Command;

use folio_shard::{PageRow, ShardMeta};

fn sample_rows() -> (ShardMeta, Vec<PageRow>) {
    let meta = ShardMeta::new("bit-test (untrained)", 4, "rgb,resize=128");
    let rows = vec![
        PageRow::embedded("letters/a memo.tif", "v1", "0A", 1, (1728, 2200), Some((204.0, 98.0)), vec![0.5, 0.5, 0.5, 0.5]),
        PageRow::failed("letters/a memo.tif", "v1", "0A", 2, "page 2: CCITT data ends early".into()),
        PageRow::embedded("letters/a memo.tif", "v1", "0A", 3, (850, 1100), None, vec![0.0, 0.6, 0.0, 0.8]),
    ];
    (meta, rows)
}

/// Runs a Python snippet with the shard path as its argument; `None` when
/// Python or the module is missing (the test then skips with a message).
fn python(module: &str, script: &str, path: &std::path::Path) -> Option<String> {
    let probe = Command::new("python3").args(["-c", &format!("import {module}")]).output().ok()?;
    if !probe.status.success() {
        eprintln!("SKIP: python3 cannot import {module}; install it with `pip install {module}`");
        return None;
    }
    let output = Command::new("python3").args(["-c", script]).arg(path).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    Some(String::from_utf8(output.stdout).unwrap())
}

fn write_shard() -> tempfile::NamedTempFile {
    let (meta, rows) = sample_rows();
    let file = tempfile::Builder::new().suffix(".parquet").tempfile().unwrap();
    std::fs::write(file.path(), folio_shard::encode(&meta, &rows).unwrap()).unwrap();
    file
}

#[test]
fn pyarrow_reads_same_vectors() {
    let file = write_shard();
    let script = r#"
import json, sys
import pyarrow.parquet as pq
table = pq.read_table(sys.argv[1])
file_meta = pq.ParquetFile(sys.argv[1]).metadata.metadata
meta = {k.decode(): v.decode() for k, v in file_meta.items() if k.startswith(b"folio.")}
print(json.dumps({"rows": table.to_pylist(), "meta": meta, "type": str(table.schema.field("embedding").type)}))
"#;
    let Some(output) = python("pyarrow", script, file.path()) else { return };
    let parsed: serde_json::Value = serde_json::from_str(&output).unwrap();
    assert_eq!(parsed["type"], "fixed_size_list<item: float not null>[4]");
    assert_eq!(parsed["meta"]["folio.model_id"], "bit-test (untrained)");
    assert_eq!(parsed["meta"]["folio.dims"], "4");
    let (_, rows) = sample_rows();
    let read = parsed["rows"].as_array().unwrap();
    assert_eq!(read.len(), rows.len());
    for (row, expected) in read.iter().zip(&rows) {
        assert_eq!(row["document"], expected.document.as_str());
        assert_eq!(row["page"], expected.page);
        assert_eq!(row["model_id"], "bit-test (untrained)");
        match &expected.embedding {
            Some(vector) => {
                let values: Vec<f32> = row["embedding"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
                assert_eq!(&values, vector);
            }
            None => {
                assert!(row["embedding"].is_null());
                assert_eq!(row["error"], expected.error.as_deref().unwrap());
            }
        }
    }
}

#[test]
fn duckdb_reads_same_vectors() {
    let file = write_shard();
    let script = r#"
import json, sys
import duckdb
rows = duckdb.sql(f"SELECT page, embedding, error FROM read_parquet('{sys.argv[1]}') ORDER BY page").fetchall()
print(json.dumps([[page, None if e is None else list(e), error] for page, e, error in rows]))
"#;
    let Some(output) = python("duckdb", script, file.path()) else { return };
    let parsed: Vec<(u32, Option<Vec<f32>>, Option<String>)> = serde_json::from_str(&output).unwrap();
    let (_, rows) = sample_rows();
    for ((page, embedding, error), expected) in parsed.into_iter().zip(&rows) {
        assert_eq!(page, expected.page);
        assert_eq!(embedding, expected.embedding);
        assert_eq!(error, expected.error);
    }
}
