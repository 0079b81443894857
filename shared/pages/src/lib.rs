//! Decode uploaded scans (TIFF, PNG, JPEG, scanned PDF) into 8-bit page images, one page
//! at a time, within bounded time and memory.
//!
//! [`open`] detects the format from the magic bytes, checks the object against
//! [`Limits`] and returns [`Pages`], an iterator that decodes one page per call to
//! `next`. Each item is either a [`Page`] or a [`PageError`] naming the object, the page
//! and the reason, so a file whose pages are partly readable still yields its good pages.
//!
//! - Bilevel and gray pages come out as `ImageLuma8` (0 black, 255 white), colour pages
//!   as `ImageRgb8`.
//! - Pages with non-square pixels (fax at 204x98 dpi) are stretched along the
//!   lower-resolution axis; TIFF `Orientation`, JPEG EXIF orientation and PDF `/Rotate`
//!   are applied. [`Options`] turns both off.
//! - A PDF page is composed from every image it draws (XObjects, inline images, strips
//!   or tiles of one scan) on a white canvas of its crop box, through each image's
//!   matrix. A page that draws no image is a [`PageErrorKind::NoImage`] error.
//! - Each page decodes on a worker thread. A page still decoding after
//!   `Limits::max_page_decode` is a [`PageErrorKind::TimedOut`] error, and the thread
//!   is left to finish on its own.
//! - A panic inside a decoder becomes a [`PageErrorKind::Panicked`] error for that page.
//!
//! # Example
//!
//! ```no_run
//! let bytes = std::fs::read("scan.tif").unwrap();
//! let pages = folio_pages::open("scans/scan.tif", bytes, &folio_pages::Limits::default())?;
//! println!("{:?}, {:?} pages", pages.format(), pages.page_count());
//! for page in pages {
//!     match page {
//!         Ok(page) => println!("page {}: {}x{}", page.number, page.image.width(), page.image.height()),
//!         Err(error) => eprintln!("{error}"),
//!     }
//! }
//! # Ok::<(), folio_pages::PageError>(())
//! ```

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

mod ccitt;
mod compose;
mod convert;
mod error;
mod object_bytes;
mod old_jpeg;
mod pdf;
mod pdf_image;
mod raster;
mod tiff_pages;
mod tiff_plain;

pub use object_bytes::ObjectBytes;
pub use error::{PageError, PageErrorKind};

/// Bounds on the work and memory spent on one object.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Maximum declared pixels (width x height) of one page image, checked before any
    /// pixel buffer is allocated.
    pub max_page_pixels: u64,
    /// Maximum number of pages read from one object; later pages are reported once as
    /// a [`PageErrorKind::LimitExceeded`] error.
    pub max_pages: u32,
    /// Maximum size of the object in bytes.
    pub max_object_bytes: u64,
    /// Maximum wall time to decode one page. Each page is decoded on a worker thread,
    /// and a page still decoding at this limit is reported as
    /// [`PageErrorKind::TimedOut`] while the thread is left to finish on its own.
    /// `Duration::MAX` decodes on the calling thread with no limit.
    pub max_page_decode: Duration,
}

impl Default for Limits {
    /// Limits sized for scanned business documents:
    ///
    /// - `max_page_pixels` 100 million: an A3 page at 600 dpi is 7016x9921 (70 Mpx) and a
    ///   9000x9000 photo scan is 81 Mpx, while 300 dpi A0 (9933x14043, 139 Mpx) or a
    ///   20000x20000 bomb is rejected. An RGB page at the limit needs 300 MB, which leaves
    ///   room for the embedding model in a 2 GB Lambda.
    /// - `max_pages` 5000: far above any real document; stops IFD and page-tree bombs.
    /// - `max_object_bytes` 512 MiB: the object is held in memory whole.
    /// - `max_page_decode` 30 s: a 300 dpi CCITT page decodes in milliseconds, so only a
    ///   pathological input comes near it.
    fn default() -> Self {
        Self {
            max_page_pixels: 100_000_000,
            max_pages: 5_000,
            max_object_bytes: 512 * 1024 * 1024,
            max_page_decode: Duration::from_secs(30),
        }
    }
}

/// Post-processing applied to every decoded page.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Stretch pages with non-square pixels along the lower-resolution axis.
    pub square_pixels: bool,
    /// Apply TIFF `Orientation`, JPEG EXIF orientation and PDF `/Rotate`.
    pub apply_orientation: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            square_pixels: true,
            apply_orientation: true,
        }
    }
}

/// Container format of an object, detected from its magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Tiff,
    Png,
    Jpeg,
    Pdf,
}

/// One decoded page.
#[derive(Debug, Clone)]
pub struct Page {
    /// 1-based page number within the object.
    pub number: u32,
    /// `ImageLuma8` for gray and bilevel pages, `ImageRgb8` for colour pages.
    pub image: image::DynamicImage,
    /// Width in pixels as stored, before resampling and rotation.
    pub source_width: u32,
    /// Height in pixels as stored, before resampling and rotation.
    pub source_height: u32,
    /// Resolution (x, y) in dots per inch as stored. For PDF pages this is the image's
    /// pixel size divided by the page's crop box in inches, which is the scan resolution
    /// only when the image covers the page.
    pub dpi: Option<(f32, f32)>,
}

/// Returns the format whose signature starts `bytes`, or `None`.
///
/// A PDF header may follow up to 1024 bytes of junk, as PDF readers accept.
pub fn detect_format(bytes: &[u8]) -> Option<Format> {
    const PDF_HEADER_WINDOW: usize = 1024;

    if bytes.starts_with(b"II*\0")
        || bytes.starts_with(b"MM\0*")
        || bytes.starts_with(b"II+\0")
        || bytes.starts_with(b"MM\0+")
    {
        return Some(Format::Tiff);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(Format::Png);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(Format::Jpeg);
    }
    let window = &bytes[..bytes.len().min(PDF_HEADER_WINDOW)];
    if window.windows(5).any(|w| w == b"%PDF-") {
        return Some(Format::Pdf);
    }
    None
}

/// Opens an object for page-by-page decoding with default [`Options`].
///
/// `object` is the document key used in error messages. Fails when the object as a
/// whole is unreadable: unknown format, over `max_object_bytes`, or a container whose
/// header or first directory cannot be parsed.
pub fn open(
    object: &str,
    bytes: impl Into<ObjectBytes>,
    limits: &Limits,
) -> Result<Pages, PageError> {
    open_with(object, bytes, limits, &Options::default())
}

/// Opens an object for page-by-page decoding with explicit [`Options`].
pub fn open_with(
    object: &str,
    bytes: impl Into<ObjectBytes>,
    limits: &Limits,
    options: &Options,
) -> Result<Pages, PageError> {
    let bytes: ObjectBytes = bytes.into();
    let context = Context {
        object: object.to_owned(),
        limits: limits.clone(),
        options: options.clone(),
    };

    let size = bytes.len() as u64;
    if size > limits.max_object_bytes {
        return Err(context.object_error(PageErrorKind::LimitExceeded {
            quantity: "object size in bytes".into(),
            value: size,
            limit: limits.max_object_bytes,
            field: "max_object_bytes",
        }));
    }

    let Some(format) = detect_format(&bytes) else {
        let first_bytes = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
        return Err(context.object_error(PageErrorKind::UnknownFormat { first_bytes }));
    };

    // Parsing a container header runs third-party code on untrusted bytes, so it is
    // guarded like a page decode.
    let opened = catch_unwind(AssertUnwindSafe(|| -> Result<Source, PageError> {
        Ok(match format {
            Format::Tiff => Source::Tiff(tiff_pages::TiffPages::open(&context, bytes.clone())?),
            Format::Png | Format::Jpeg => {
                Source::Raster(Some(raster::RasterPage::new(format, bytes.clone())))
            }
            Format::Pdf => Source::Pdf(pdf::PdfPages::open(&context, bytes.clone())?),
        })
    }));
    let source = match opened {
        Ok(result) => result?,
        Err(payload) => {
            return Err(context.object_error(PageErrorKind::Panicked {
                message: panic_message(payload.as_ref()),
            }));
        }
    };

    Ok(Pages {
        context: Arc::new(context),
        format,
        bytes,
        source: Arc::new(Mutex::new(source)),
        next_number: 1,
        finished: false,
        timed_out_pages: 0,
    })
}

/// Lazy iterator over the pages of one object. Holds at most one decoded page at a time.
pub struct Pages {
    context: Arc<Context>,
    format: Format,
    /// Kept to parse the container again when a decode thread is abandoned with the
    /// parser state.
    bytes: ObjectBytes,
    /// Shared with the decode thread of the current page.
    source: Arc<Mutex<Source>>,
    next_number: u32,
    finished: bool,
    timed_out_pages: u32,
}

/// Stack of a page decode thread: the 8 MiB a Linux main thread gets, because
/// decoders recurse on nested PDF objects and JBIG2 or JPEG 2000 structures.
const DECODE_STACK_BYTES: usize = 8 << 20;

/// Pages of one object allowed to time out before the object is given up. Each leaves
/// a thread running, with a core and the page's memory, until its decoder returns.
const MAX_TIMED_OUT_PAGES: u32 = 2;

impl Pages {
    /// Returns the detected container format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Returns the number of pages, when it is known without decoding: always for PNG,
    /// JPEG and PDF, and for TIFF once the iterator has walked the whole IFD chain.
    pub fn page_count(&self) -> Option<u32> {
        match &*lock(&self.source) {
            Source::Tiff(tiff) => tiff.page_count(),
            Source::Raster(_) => Some(1),
            Source::Pdf(pdf) => Some(pdf.page_count()),
        }
    }

    /// Decodes page `number` on a worker thread and waits up to `max_page_decode`.
    /// Returns `None` when the page is still decoding at the limit.
    fn decode_with_time_limit(&self, number: u32) -> Option<std::thread::Result<Step>> {
        let limit = self.context.limits.max_page_decode;
        if limit == Duration::MAX {
            return Some(decode_next(&self.source, &self.context, number));
        }
        let (sender, receiver) = mpsc::sync_channel(1);
        let source = Arc::clone(&self.source);
        let context = Arc::clone(&self.context);
        let spawned = std::thread::Builder::new()
            .name("folio-page-decode".into())
            .stack_size(DECODE_STACK_BYTES)
            .spawn(move || {
                let _ = sender.send(decode_next(&source, &context, number));
            });
        if spawned.is_err() {
            // NOTE: without a thread (the process is at its thread limit) the page is
            // decoded on the calling thread, where a stuck decoder is not interrupted.
            return Some(decode_next(&self.source, &self.context, number));
        }
        match receiver.recv_timeout(limit) {
            Ok(outcome) => Some(outcome),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                Some(Err(Box::new("page decode thread ended without a result")))
            }
        }
    }

    /// Parses the container again after a decode thread was abandoned holding the
    /// parser, positioned so the next call decodes page `number + 1`. Ends the
    /// iteration when that fails or when too many pages timed out.
    fn replace_abandoned_source(&mut self, number: u32) {
        self.timed_out_pages += 1;
        if self.timed_out_pages >= MAX_TIMED_OUT_PAGES {
            self.finished = true;
            return;
        }
        let reopened = catch_unwind(AssertUnwindSafe(|| {
            Source::reopen(&self.context, self.format, self.bytes.clone(), number)
        }));
        match reopened {
            Ok(Some(source)) => self.source = Arc::new(Mutex::new(source)),
            _ => self.finished = true,
        }
    }
}

/// Decodes the next page with panics caught, leaving `source` usable after a panic.
fn decode_next(source: &Mutex<Source>, context: &Context, number: u32) -> std::thread::Result<Step> {
    let mut source = lock(source);
    let outcome = catch_unwind(AssertUnwindSafe(|| source.next_page(context, number)));
    if outcome.is_err() {
        source.after_panic();
    }
    outcome
}

/// Locks the source. A panic is always caught inside the lock, so a poisoned mutex
/// still holds a consistent source.
fn lock(source: &Mutex<Source>) -> MutexGuard<'_, Source> {
    source.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Iterator for Pages {
    type Item = Result<Page, PageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.finished {
            return None;
        }
        let number = self.next_number;
        if number > self.context.limits.max_pages {
            self.finished = true;
            if !lock(&self.source).has_more(number) {
                return None;
            }
            return Some(Err(self.context.page_error(
                number,
                PageErrorKind::LimitExceeded {
                    quantity: "page count".into(),
                    value: u64::from(number),
                    limit: u64::from(self.context.limits.max_pages),
                    field: "max_pages",
                },
            )));
        }

        let started = Instant::now();
        let outcome = self.decode_with_time_limit(number);
        let elapsed = started.elapsed();

        let result = match outcome {
            Some(Ok(Step::Done)) => {
                self.finished = true;
                return None;
            }
            Some(Ok(Step::Page(result))) => result,
            Some(Ok(Step::LastPage(result))) => {
                self.finished = true;
                result
            }
            Some(Err(payload)) => Err(PageErrorKind::Panicked {
                message: panic_message(payload.as_ref()),
            }),
            None => {
                // NOTE: the decoders in `tiff`, `image` and `hayro-syntax` cannot be
                // interrupted, so the abandoned thread runs until its decoder returns
                // and keeps its memory until then.
                self.replace_abandoned_source(number);
                Err(PageErrorKind::TimedOut {
                    elapsed,
                    limit: self.context.limits.max_page_decode,
                })
            }
        };
        self.next_number += 1;
        Some(result.map_err(|kind| self.context.page_error(number, kind)))
    }
}

/// Object key, limits and options shared by every page decoder.
pub(crate) struct Context {
    pub object: String,
    pub limits: Limits,
    pub options: Options,
}

impl Context {
    pub fn object_error(&self, kind: PageErrorKind) -> PageError {
        PageError {
            object: self.object.clone(),
            page: None,
            kind,
        }
    }

    pub fn page_error(&self, number: u32, kind: PageErrorKind) -> PageError {
        PageError {
            object: self.object.clone(),
            page: Some(number),
            kind,
        }
    }

    /// Rejects a declared page size over `max_page_pixels`, before any allocation.
    pub fn check_pixels(&self, width: u32, height: u32) -> Result<(), PageErrorKind> {
        let pixels = u64::from(width) * u64::from(height);
        if pixels > self.limits.max_page_pixels {
            return Err(PageErrorKind::LimitExceeded {
                quantity: format!("page size {width}x{height} pixels"),
                value: pixels,
                limit: self.limits.max_page_pixels,
                field: "max_page_pixels",
            });
        }
        if width == 0 || height == 0 {
            return Err(PageErrorKind::Corrupt {
                reason: format!("invalid page size {width}x{height} pixels"),
            });
        }
        Ok(())
    }
}

/// Result of asking a format decoder for its next page.
pub(crate) enum Step {
    /// A page, and more may follow.
    Page(Result<Page, PageErrorKind>),
    /// A page (or an error) after which the object cannot be read further.
    LastPage(Result<Page, PageErrorKind>),
    /// No more pages.
    Done,
}

enum Source {
    Tiff(tiff_pages::TiffPages),
    Raster(Option<raster::RasterPage>),
    Pdf(pdf::PdfPages),
}

impl Source {
    fn next_page(&mut self, context: &Context, number: u32) -> Step {
        match self {
            Source::Tiff(tiff) => tiff.next_page(context, number),
            Source::Raster(raster) => match raster.take() {
                Some(page) => Step::LastPage(page.decode(context)),
                None => Step::Done,
            },
            Source::Pdf(pdf) => pdf.next_page(context, number),
        }
    }

    /// Returns whether page `number` exists, after pages before it were read.
    fn has_more(&mut self, number: u32) -> bool {
        match self {
            Source::Tiff(tiff) => tiff.has_more(),
            Source::Raster(raster) => raster.is_some(),
            Source::Pdf(pdf) => number <= pdf.page_count(),
        }
    }

    /// Opens the object again for the pages after `number`, which timed out.
    fn reopen(context: &Context, format: Format, bytes: ObjectBytes, number: u32) -> Option<Self> {
        match format {
            Format::Tiff => {
                let mut tiff = tiff_pages::TiffPages::open(context, bytes).ok()?;
                tiff.skip_to(number);
                Some(Source::Tiff(tiff))
            }
            Format::Png | Format::Jpeg => None,
            Format::Pdf => pdf::PdfPages::open(context, bytes).ok().map(Source::Pdf),
        }
    }

    fn after_panic(&mut self) {
        match self {
            Source::Tiff(tiff) => tiff.after_panic(),
            Source::Raster(raster) => *raster = None,
            Source::Pdf(pdf) => pdf.after_panic(),
        }
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> ObjectBytes {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples").join(name);
        std::fs::read(path).expect("read committed sample").into()
    }

    fn context() -> Context {
        Context {
            object: "test".into(),
            limits: Limits::default(),
            options: Options::default(),
        }
    }

    /// Returns the pixels of page `number` decoded from a reopened source, as after
    /// page `number - 1` timed out.
    fn page_after_reopen(format: Format, bytes: ObjectBytes, number: u32) -> Vec<u8> {
        let context = context();
        let mut source = Source::reopen(&context, format, bytes, number - 1).expect("reopen");
        match source.next_page(&context, number) {
            Step::Page(Ok(page)) | Step::LastPage(Ok(page)) => page.image.into_bytes(),
            Step::Page(Err(error)) | Step::LastPage(Err(error)) => panic!("page {number}: {error}"),
            Step::Done => panic!("page {number} missing after reopen"),
        }
    }

    #[test]
    fn reopen_continues_after_timed_out_page() {
        let tiff = sample("fax-tiff/pillow/g4-multi.tiff");
        let pages: Vec<Page> = open("g4-multi.tiff", tiff.clone(), &Limits::default())
            .expect("open")
            .map(|page| page.expect("page"))
            .collect();
        for number in [2, 3] {
            let reopened = page_after_reopen(Format::Tiff, tiff.clone(), number);
            assert!(reopened == pages[number as usize - 1].image.as_bytes(), "TIFF page {number}");
        }

        let pdf = sample("scanned-pdf/ocrmypdf/cardinal.pdf");
        let pages: Vec<Page> = open("cardinal.pdf", pdf.clone(), &Limits::default())
            .expect("open")
            .map(|page| page.expect("page"))
            .collect();
        let reopened = page_after_reopen(Format::Pdf, pdf, 3);
        assert!(reopened == pages[2].image.as_bytes(), "PDF page 3");
    }
}
