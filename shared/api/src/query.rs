//! Query inputs of `POST /search`: an uploaded scan, a stored document or a
//! raw vector, each turned into query vectors.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use folio_pipeline::PageEmbedder;

use crate::error::ApiError;

/// Maximum pages embedded for one uploaded query scan. BiT-R50x1 in tract
/// took 46-75 ms per page on a 2-core AMD EPYC (December 2026), so 50
/// pages take an estimated 4 s, well inside API Gateway's 30 s
/// integration timeout.
pub const MAX_QUERY_PAGES: u32 = 50;

/// Maximum time spent decoding one query page. The ingest default (30 s)
/// would outlast API Gateway's 30 s timeout on its own.
pub const QUERY_PAGE_DECODE_LIMIT: Duration = Duration::from_secs(10);

/// Query vectors embedded from an uploaded scan.
#[derive(Clone, Debug, Default)]
pub struct ScanQuery {
    /// One L2-normalised vector per embedded page, in page order.
    pub vectors: Vec<Vec<f32>>,
    /// Page number of each vector.
    pub pages: Vec<u32>,
    /// "upload page N: reason" for each page that could not be decoded.
    pub skipped: Vec<String>,
}

/// Decodes a scan (TIFF, PNG, JPEG or PDF) and embeds every page, or only
/// `page` (1-based), as query vectors. Pages that fail to decode are listed
/// in [`ScanQuery::skipped`]; the scan is rejected only when no page can be
/// embedded. CPU-bound: call it from a blocking thread.
pub fn embed_scan(embedder: &dyn PageEmbedder, bytes: Bytes, page: Option<u32>) -> Result<ScanQuery, ApiError> {
    let limits = folio_pages::Limits {
        max_page_decode: QUERY_PAGE_DECODE_LIMIT,
        ..folio_pages::Limits::default()
    };
    let data: Arc<[u8]> = Arc::from(bytes.as_ref());
    let pages = folio_pages::open("upload", data, &limits).map_err(|error| ApiError::InvalidImage {
        reason: error.to_string(),
    })?;
    let page_count = pages.page_count();
    match (page, page_count) {
        (None, Some(count)) if count > MAX_QUERY_PAGES => {
            return Err(ApiError::TooManyPages {
                pages: count,
                limit: MAX_QUERY_PAGES,
            });
        }
        (Some(wanted), Some(count)) if wanted > count => {
            return Err(ApiError::UnknownQueryPage { page: wanted, pages: count });
        }
        _ => {}
    }

    let mut query = ScanQuery::default();
    let mut seen = 0;
    for decoded in pages {
        seen += 1;
        // Formats that do not declare a page count up front are capped here.
        if page.is_none() && seen > MAX_QUERY_PAGES {
            return Err(ApiError::TooManyPages {
                pages: seen,
                limit: MAX_QUERY_PAGES,
            });
        }
        match decoded {
            Ok(decoded) if page.is_none_or(|wanted| wanted == decoded.number) => {
                // One page at a time: tract is fastest per image at batch 1, and only one decoded page is held.
                let mut vectors = embedder
                    .embed_pages(&[&decoded.image])
                    .map_err(|error| ApiError::Internal(format!("upload page {}: embedding failed: {error}", decoded.number)))?;
                let Some(vector) = vectors.pop() else {
                    return Err(ApiError::Internal(format!("upload page {}: the embedder returned no vector", decoded.number)));
                };
                query.vectors.push(vector);
                query.pages.push(decoded.number);
            }
            Ok(_) => {}
            Err(error) if page.is_none() || error.page.is_none() || error.page == page => query.skipped.push(error.to_string()),
            Err(_) => {}
        }
        if page.is_some_and(|wanted| seen >= wanted) {
            break;
        }
    }

    if query.vectors.is_empty() {
        let reason = match (page, query.skipped.is_empty()) {
            (_, false) => query.skipped.join("; "),
            (Some(wanted), true) => return Err(ApiError::UnknownQueryPage { page: wanted, pages: seen }),
            (None, true) => "the scan contains no pages".to_owned(),
        };
        return Err(ApiError::InvalidImage { reason });
    }
    Ok(query)
}

/// The JSON form of `POST /search`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    document: Option<String>,
    page: Option<u32>,
    vector: Option<Vec<f64>>,
}

/// Query of a JSON search body.
#[derive(Debug, PartialEq)]
pub(crate) enum JsonQuery {
    Document { document: String, page: Option<u32> },
    /// An L2-normalised vector.
    Vector(Vec<f32>),
}

/// Parses and checks a JSON search body against the model's dimensions.
pub(crate) fn parse_json_query(body: &[u8], dimensions: usize) -> Result<JsonQuery, ApiError> {
    let parsed: SearchBody = serde_json::from_slice(body).map_err(|error| ApiError::InvalidJson {
        reason: format!(
            "{error}; expected {{\"document\": \"KEY\", \"page\": N}} (page optional) or {{\"vector\": [{dimensions} numbers]}}"
        ),
    })?;
    match parsed {
        SearchBody {
            document: Some(document),
            page,
            vector: None,
        } => {
            if document.is_empty() {
                return Err(ApiError::InvalidJson {
                    reason: "\"document\" is empty; give a stored document key".to_owned(),
                });
            }
            if page == Some(0) {
                return Err(ApiError::InvalidJson {
                    reason: "\"page\" is 0; pages are numbered from 1".to_owned(),
                });
            }
            Ok(JsonQuery::Document { document, page })
        }
        SearchBody {
            document: None,
            page: None,
            vector: Some(vector),
        } => Ok(JsonQuery::Vector(check_vector(&vector, dimensions)?)),
        SearchBody {
            document: None,
            page: Some(_),
            vector: Some(_),
        } => Err(ApiError::InvalidJson {
            reason: "\"page\" applies to \"document\" only; remove it from a vector query".to_owned(),
        }),
        SearchBody {
            document: Some(_),
            vector: Some(_),
            ..
        } => Err(ApiError::InvalidJson {
            reason: "give either \"document\" or \"vector\", not both".to_owned(),
        }),
        SearchBody {
            document: None, vector: None, ..
        } => Err(ApiError::InvalidJson {
            reason: format!(
                "give \"document\" (a stored document key) or \"vector\" ({dimensions} numbers) to search with"
            ),
        }),
    }
}

/// Checks length and finiteness, then L2-normalises: the exact search over
/// newer pages ranks by dot product, so only unit vectors give cosine scores.
fn check_vector(values: &[f64], dimensions: usize) -> Result<Vec<f32>, ApiError> {
    if values.len() != dimensions {
        return Err(ApiError::InvalidVector {
            reason: format!("expected {dimensions} values (the model's dimensions), got {}", values.len()),
        });
    }
    let mut vector = Vec::with_capacity(values.len());
    for (index, value) in values.iter().enumerate() {
        let single = *value as f32;
        if !single.is_finite() {
            return Err(ApiError::InvalidVector {
                reason: format!("value {value} at index {index} is not a finite 32-bit float"),
            });
        }
        vector.push(single);
    }
    let norm = vector.iter().map(|value| f64::from(*value).powi(2)).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(ApiError::InvalidVector {
            reason: format!("the vector's L2 norm is {norm}; cosine similarity needs a non-zero, finite vector"),
        });
    }
    Ok(vector.iter().map(|value| (f64::from(*value) / norm) as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_json_query_reads_document_and_page() {
        let parsed = parse_json_query(br#"{"document": "a/b.tif", "page": 2}"#, 4).unwrap();
        assert_eq!(
            parsed,
            JsonQuery::Document {
                document: "a/b.tif".into(),
                page: Some(2)
            }
        );
    }

    #[test]
    fn parse_json_query_normalises_vector() {
        let JsonQuery::Vector(vector) = parse_json_query(br#"{"vector": [3, 0, 4, 0]}"#, 4).unwrap() else {
            panic!("expected a vector query");
        };
        assert_eq!(vector, vec![0.6, 0.0, 0.8, 0.0]);
    }

    #[test]
    fn parse_json_query_rejects_bad_vectors() {
        let cases: [(&[u8], &str); 5] = [
            (br#"{"vector": [1, 2, 3]}"#, "expected 4 values (the model's dimensions), got 3"),
            (br#"{"vector": [1e39, 0, 0, 0]}"#, "not a finite 32-bit float"),
            (br#"{"vector": [0, 0, 0, 0]}"#, "L2 norm is 0"),
            (br#"{"vector": [1, 0, 0, 0], "document": "a"}"#, "not both"),
            (br#"{"vector": [1, 0, 0, 0], "page": 1}"#, "remove it"),
        ];
        for (body, expected) in cases {
            let error = parse_json_query(body, 4).unwrap_err();
            assert_eq!(error.status(), 400, "{}", String::from_utf8_lossy(body));
            assert!(error.to_string().contains(expected), "{error}");
        }
    }

    #[test]
    fn parse_json_query_rejects_malformed_json() {
        for body in [&b"{"[..], b"[]", br#"{"docment": "a"}"#, b"{}", br#"{"vector": [NaN]}"#] {
            let error = parse_json_query(body, 4).unwrap_err();
            assert_eq!(error.code(), "invalid_json", "{}", String::from_utf8_lossy(body));
        }
    }
}
