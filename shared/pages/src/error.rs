//! Per-page and per-object decode errors.

use std::fmt;
use std::time::Duration;

/// A failure to decode one page of an object, or the object as a whole.
///
/// `Display` reads like `scans/a.tif page 3: CCITT data ends early at row 812 of 1100`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct PageError {
    /// Key of the object (document) the page belongs to, as passed to [`crate::open`].
    pub object: String,
    /// 1-based page number, or `None` when the object as a whole is unreadable.
    pub page: Option<u32>,
    /// The cause.
    pub kind: PageErrorKind,
}

impl fmt::Display for PageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.page {
            Some(page) => write!(f, "{} page {}: {}", self.object, page, self.kind),
            None => write!(f, "{}: {}", self.object, self.kind),
        }
    }
}

/// The reason a page or object could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum PageErrorKind {
    /// The bytes do not start with a TIFF, PNG, JPEG or PDF signature.
    #[error(
        "unknown format: the first bytes {first_bytes} match no TIFF, PNG, JPEG or PDF signature"
    )]
    UnknownFormat {
        /// Up to 8 leading bytes in hex.
        first_bytes: String,
    },
    /// A valid file that uses a feature this crate does not decode.
    #[error("unsupported {feature}; convert the file (for example with tiffcp or qpdf) and retry")]
    Unsupported {
        /// The feature, e.g. `TIFF compression 6 (old-style JPEG) without JPEGInterchangeFormat`.
        feature: String,
    },
    /// The data is malformed or truncated.
    #[error("{reason}")]
    Corrupt {
        /// Description of the defect, with the offending value.
        reason: String,
    },
    /// A declared size is over one of the [`crate::Limits`].
    #[error("{quantity} is {value}, over the {} of {limit}; {}", limit_name(field), raise_advice(field))]
    LimitExceeded {
        /// The measured quantity, e.g. `page size 35000x35000 pixels`.
        quantity: String,
        /// The declared value.
        value: u64,
        /// The configured limit.
        limit: u64,
        /// The `Limits` field that sets the limit.
        field: &'static str,
    },
    /// Decoding the page took longer than `Limits::max_page_decode`.
    #[error(
        "decoding timed out after {elapsed:.1?}, over the page decode time limit of {limit:?}; raise Limits::max_page_decode to allow more"
    )]
    TimedOut {
        /// Time spent before the decoder gave up.
        elapsed: Duration,
        /// The configured limit.
        limit: Duration,
    },
    /// A PDF page that draws no image XObject or inline image (a text or vector page).
    #[error("page draws no image (it may be text or vector graphics only)")]
    NoImage {
        /// Number of content stream operators that were read.
        operators: usize,
    },
    /// A decoder panicked; the panic was caught and the page skipped.
    #[error("decoder panicked: {message}")]
    Panicked {
        /// The panic payload, when it was a string.
        message: String,
    },
}

/// Names the limit set by a `Limits` field in words.
fn limit_name(field: &str) -> &'static str {
    match field {
        "max_page_pixels" => "page pixel limit",
        "max_pages" => "page count limit",
        "max_object_bytes" => "object size limit in bytes",
        _ => "limit",
    }
}

/// Says how to raise the limit set by a `Limits` field: the `folio` command-line flag
/// where there is one, and the field for programs.
fn raise_advice(field: &str) -> String {
    match field {
        "max_page_pixels" => "raise it with --max-page-pixels (Limits::max_page_pixels) to accept the page".into(),
        "max_pages" => "raise it with --max-pages (Limits::max_pages) to read more pages".into(),
        other => format!("raise Limits::{other} to accept it"),
    }
}
