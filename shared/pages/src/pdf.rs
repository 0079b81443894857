//! Scanned PDF: for each page, finds the images its content stream draws (XObjects,
//! also inside form XObjects, and inline images). `hayro-syntax` decodes them (Flate,
//! LZW, RunLength, DCT, CCITT, JBIG2, JPX), and the page is composed from them on a
//! white canvas of its crop box, through their transformation matrices.

use std::sync::Arc;

use hayro_syntax::content::TypedIter;
use hayro_syntax::content::ops::TypedInstruction;
use hayro_syntax::object::{Array, Dict, Name, Stream};
use hayro_syntax::page::{Resources, Rotation};
use hayro_syntax::{Filter, LoadPdfError, Pdf, PdfData};
use image::DynamicImage;
use image::metadata::Orientation;

use crate::compose::{self, Canvas, Matrix, PageBox};
use crate::convert::{cmyk_to_rgb, finish_page};
use crate::pdf_image::{self, ImageHeader};
use crate::{ObjectBytes, Context, Page, PageError, PageErrorKind, Step};

/// Form XObjects nested deeper than this are not searched for images.
const MAX_FORM_DEPTH: usize = 8;
/// Content stream operators read per page before the search for images stops; a
/// scanned page has a few dozen.
const MAX_OPERATORS: usize = 1_000_000;

struct SharedBytes(ObjectBytes);

impl AsRef<[u8]> for SharedBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

pub struct PdfPages {
    pdf: Pdf,
    page_count: u32,
}

impl PdfPages {
    pub fn open(context: &Context, bytes: ObjectBytes) -> Result<Self, PageError> {
        let data = PdfData::from(Arc::new(SharedBytes(bytes)));
        let pdf = Pdf::new(data).map_err(|error| {
            context.object_error(match error {
                LoadPdfError::Decryption(reason) => PageErrorKind::Unsupported {
                    feature: format!("encrypted PDF ({reason:?})"),
                },
                LoadPdfError::Invalid => PageErrorKind::Corrupt {
                    reason: "invalid PDF: no readable cross-reference table or page tree".into(),
                },
            })
        })?;
        let page_count = u32::try_from(pdf.pages().len()).unwrap_or(u32::MAX);
        Ok(Self { pdf, page_count })
    }

    pub fn page_count(&self) -> u32 {
        self.page_count
    }

    pub fn after_panic(&mut self) {}

    pub fn next_page(&mut self, context: &Context, number: u32) -> Step {
        if number > self.page_count {
            return Step::Done;
        }
        let page = &self.pdf.pages()[(number - 1) as usize];
        Step::Page(decode_page(context, number, page))
    }
}

/// An image the page draws, with the graphics state in force when it was drawn.
struct DrawnImage<'a> {
    source: ImageSource<'a>,
    header: ImageHeader,
    ctm: Matrix,
    /// Non-stroking colour, which paints a stencil mask (`ImageMask true`).
    fill: [u8; 3],
}

enum ImageSource<'a> {
    /// An image XObject, decoded when the page is composed.
    XObject {
        stream: Stream<'a>,
        resources: Resources<'a>,
    },
    /// An inline image (BI ... ID ... EI), decoded while the content stream is read
    /// because its bytes live in that stream.
    Inline(DynamicImage),
}

/// Images and problems found by reading a page's content stream.
#[derive(Default)]
struct ContentScan<'a> {
    images: Vec<DrawnImage<'a>>,
    operators: usize,
    /// Declared pixels of every image found so far, bounded by `max_page_pixels`.
    declared_pixels: u64,
    /// Names of XObjects the content draws that its resources do not contain.
    missing: Vec<String>,
    /// The first failure that makes the page unreadable (an inline image that does not
    /// decode, a form whose content does not decode, a size over a limit).
    failure: Option<PageErrorKind>,
    /// Set when the scan stopped at `MAX_OPERATORS`.
    truncated: bool,
}

#[derive(Clone, Copy)]
struct GraphicsState {
    ctm: Matrix,
    fill: [u8; 3],
}

fn decode_page(
    context: &Context,
    number: u32,
    page: &hayro_syntax::page::Page<'_>,
) -> Result<Page, PageErrorKind> {
    check_content_size(context, page)?;
    if page.raw().contains_key(b"Contents") && page.page_stream().is_none() {
        return Err(PageErrorKind::Corrupt {
            reason: "the page's content stream is missing or does not decode".into(),
        });
    }

    let mut scan = ContentScan::default();
    let mut ops = page.typed_operations();
    let state = GraphicsState { ctm: IDENTITY, fill: [0, 0, 0] };
    collect_images(context, &mut ops, page.resources(), state, 0, &mut scan);
    if let Some(failure) = scan.failure {
        return Err(failure);
    }
    if scan.images.is_empty() {
        return Err(no_image_error(&scan));
    }

    let rotation = match page.rotation() {
        Rotation::None => Orientation::NoTransforms,
        Rotation::Horizontal => Orientation::Rotate90,
        Rotation::Flipped => Orientation::Rotate180,
        Rotation::FlippedHorizontal => Orientation::Rotate270,
    };
    let page_box = visible_box(page, &scan.images);

    if let [only] = scan.images.as_slice()
        && (!only.header.is_mask || only.fill == [0, 0, 0])
        && let Some(placement) = compose::full_page_orientation(&only.ctm, &page_box)
    {
        return full_page_image(context, number, only, placement, rotation);
    }
    compose_page(context, number, &scan.images, &page_box, rotation)
}

/// Decodes the usual scanned page, one image that fills the page. Its pixels are kept
/// as stored, only turned or mirrored as its matrix draws it, without resampling.
fn full_page_image(
    context: &Context,
    number: u32,
    drawn: &DrawnImage<'_>,
    placement: Orientation,
    rotation: Orientation,
) -> Result<Page, PageErrorKind> {
    let mut image = decode_drawn(context, drawn)?;
    let (source_width, source_height) = (image.width(), image.height());

    // Points drawn per image pixel follow from the matrix that maps the unit square onto
    // the page: its column lengths are the drawn width and height in points.
    let [a, b, c, d, _, _] = drawn.ctm;
    let drawn_width = a.hypot(b);
    let drawn_height = c.hypot(d);
    let mut dpi = (drawn_width > 0.0 && drawn_height > 0.0).then(|| {
        (
            (f64::from(source_width) * 72.0 / drawn_width) as f32,
            (f64::from(source_height) * 72.0 / drawn_height) as f32,
        )
    });
    if context.options.apply_orientation {
        image.apply_orientation(placement);
        if compose::swaps_axes(placement) {
            dpi = dpi.map(|(x, y)| (y, x));
        }
    }
    let mut page = finish_page(context, number, image, dpi, rotation);
    page.source_width = source_width;
    page.source_height = source_height;
    Ok(page)
}

/// Draws every image of the page on a white canvas of the page box, at the resolution
/// of the largest image, lowered to fit `max_page_pixels`.
fn compose_page(
    context: &Context,
    number: u32,
    images: &[DrawnImage<'_>],
    page_box: &PageBox,
    rotation: Orientation,
) -> Result<Page, PageErrorKind> {
    // Fallback when no image has a usable matrix: 300 dpi.
    const DEFAULT_SCALE: f64 = 300.0 / 72.0;
    let scale = images
        .iter()
        .max_by_key(|drawn| drawn.header.declared_pixels())
        .and_then(|largest| compose::image_scale(largest.header.width, largest.header.height, &largest.ctm))
        .unwrap_or(DEFAULT_SCALE);
    let (width, height, scale) = compose::canvas_size(page_box, scale, context.limits.max_page_pixels);
    context.check_pixels(width, height)?;

    let mut canvas = Canvas::new(*page_box, width, height, scale);

    // Drawing visits every canvas pixel an image covers, so many small images each
    // stretched over the page would take hours. Real pages cover the canvas a few times.
    const MAX_CANVAS_COVERAGE: u64 = 16;
    let canvas_pixels = u64::from(width) * u64::from(height);
    let visited: u64 = images
        .iter()
        .map(|drawn| canvas.span_pixels(drawn.header.width, drawn.header.height, &drawn.ctm))
        .fold(0, u64::saturating_add);
    if visited > canvas_pixels.saturating_mul(MAX_CANVAS_COVERAGE) {
        return Err(PageErrorKind::Unsupported {
            feature: format!(
                "PDF page whose {} images cover its {width}x{height} canvas {} times over (at most {MAX_CANVAS_COVERAGE} is drawn)",
                images.len(),
                visited / canvas_pixels.max(1)
            ),
        });
    }

    for drawn in images {
        let image = decode_drawn(context, drawn)?;
        let stencil = drawn.header.is_mask.then_some(drawn.fill);
        canvas.draw(&image, &drawn.ctm, stencil);
    }
    let dpi = (scale * 72.0) as f32;
    Ok(finish_page(context, number, canvas.into_image(), Some((dpi, dpi)), rotation))
}

fn decode_drawn(context: &Context, drawn: &DrawnImage<'_>) -> Result<DynamicImage, PageErrorKind> {
    match &drawn.source {
        ImageSource::XObject { stream, resources } => pdf_image::decode_image(context, stream, resources),
        ImageSource::Inline(image) => Ok(image.clone()),
    }
}

/// Returns the crop box clipped to the media box, or, when that has no area, the
/// bounds of everything drawn.
fn visible_box(page: &hayro_syntax::page::Page<'_>, images: &[DrawnImage<'_>]) -> PageBox {
    // A box narrower than a point is a writer's error, not a page.
    const MIN_SIDE_POINTS: f64 = 1.0;
    let crop = page.intersected_crop_box();
    let crop = PageBox { x0: crop.x0, y0: crop.y0, x1: crop.x1, y1: crop.y1 };
    let usable = |b: &PageBox| {
        b.width().is_finite() && b.height().is_finite() && b.width() >= MIN_SIDE_POINTS && b.height() >= MIN_SIDE_POINTS
    };
    if usable(&crop) {
        return crop;
    }
    let drawn = images.iter().map(|image| compose::drawn_bounds(&image.ctm)).fold(
        PageBox { x0: f64::INFINITY, y0: f64::INFINITY, x1: f64::NEG_INFINITY, y1: f64::NEG_INFINITY },
        |all, one| PageBox { x0: all.x0.min(one.x0), y0: all.y0.min(one.y0), x1: all.x1.max(one.x1), y1: all.y1.max(one.y1) },
    );
    if usable(&drawn) { drawn } else { PageBox { x0: 0.0, y0: 0.0, x1: 612.0, y1: 792.0 } }
}

/// Explains a page without images: a text or vector page, or content that could not
/// be read far enough to tell.
fn no_image_error(scan: &ContentScan<'_>) -> PageErrorKind {
    if let Some(name) = scan.missing.first() {
        return PageErrorKind::Corrupt {
            reason: format!(
                "the page draws XObject /{name}, which is missing from its resources ({} missing in all)",
                scan.missing.len()
            ),
        };
    }
    if scan.truncated {
        return PageErrorKind::Unsupported {
            feature: format!(
                "page content with over {MAX_OPERATORS} operators and no image among them"
            ),
        };
    }
    PageErrorKind::NoImage { operators: scan.operators }
}

/// Rejects a page whose FlateDecode content streams inflate past `max_page_pixels`
/// bytes, before `hayro-syntax` inflates them into memory without a bound.
fn check_content_size(context: &Context, page: &hayro_syntax::page::Page<'_>) -> Result<(), PageErrorKind> {
    let dict = page.raw();
    let streams: Vec<Stream<'_>> = match dict.get::<Stream<'_>>(b"Contents") {
        Some(stream) => vec![stream],
        None => dict
            .get::<Array<'_>>(b"Contents")
            .map(|array| array.iter::<Stream<'_>>().collect())
            .unwrap_or_default(),
    };
    let bound = context.limits.max_page_pixels;
    let mut total = 0u64;
    for stream in streams {
        total = total.saturating_add(flate_output_size(&stream, bound.saturating_sub(total)));
        if total > bound {
            return Err(content_limit_error(total, bound));
        }
    }
    Ok(())
}

/// Returns the inflated size of a stream whose first filter is FlateDecode, counted
/// up to `bound + 1`, or its raw size for other filters.
fn flate_output_size(stream: &Stream<'_>, bound: u64) -> u64 {
    let raw = stream.raw_data();
    if stream.filters().first() == Some(&Filter::FlateDecode) {
        pdf_image::inflated_size(&raw, bound)
    } else {
        raw.len() as u64
    }
}

fn content_limit_error(size: u64, bound: u64) -> PageErrorKind {
    PageErrorKind::LimitExceeded {
        quantity: "the size in bytes of the decoded content streams, which the page pixel limit also bounds,".into(),
        value: size,
        limit: bound,
        field: "max_page_pixels",
    }
}

const IDENTITY: [f64; 6] = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];

/// Returns `first` applied after `second` (PDF's `first x second` row-vector product).
fn concat(first: [f64; 6], second: [f64; 6]) -> [f64; 6] {
    let [a, b, c, d, e, f] = first;
    let [sa, sb, sc, sd, se, sf] = second;
    [
        a * sa + b * sc,
        a * sb + b * sd,
        c * sa + d * sc,
        c * sb + d * sd,
        e * sa + f * sc + se,
        e * sb + f * sd + sf,
    ]
}

fn to_byte(value: f64) -> u8 {
    (value.clamp(0.0, 1.0) * 255.0).round() as u8
}

fn collect_images<'a>(
    context: &Context,
    ops: &mut TypedIter<'_>,
    resources: &Resources<'a>,
    base: GraphicsState,
    depth: usize,
    scan: &mut ContentScan<'a>,
) {
    let mut state = base;
    let mut saved = Vec::new();
    while let Some(op) = ops.next() {
        if scan.failure.is_some() {
            return;
        }
        scan.operators += 1;
        if scan.operators > MAX_OPERATORS {
            scan.truncated = true;
            return;
        }
        match op {
            TypedInstruction::SaveState(_) => saved.push(state),
            TypedInstruction::RestoreState(_) => state = saved.pop().unwrap_or(base),
            TypedInstruction::Transform(m) => {
                let matrix = [m.0, m.1, m.2, m.3, m.4, m.5].map(|n| n.as_f64());
                state.ctm = concat(matrix, state.ctm);
            }
            TypedInstruction::NonStrokeColorDeviceGray(gray) => {
                state.fill = [to_byte(gray.0.as_f64()); 3];
            }
            TypedInstruction::NonStrokeColorDeviceRgb(rgb) => {
                state.fill = [rgb.0, rgb.1, rgb.2].map(|n| to_byte(n.as_f64()));
            }
            TypedInstruction::NonStrokeColorCmyk(cmyk) => {
                let [c, m, y, k] = [cmyk.0, cmyk.1, cmyk.2, cmyk.3].map(|n| to_byte(n.as_f64()));
                state.fill = cmyk_to_rgb(c, m, y, k);
            }
            TypedInstruction::InlineImage(inline) => {
                let header = ImageHeader::read(inline.0.dict());
                if !add_declared_pixels(context, scan, &header) {
                    return;
                }
                match pdf_image::decode_image(context, inline.0, resources) {
                    Ok(image) => scan.images.push(DrawnImage {
                        source: ImageSource::Inline(image),
                        header,
                        ctm: state.ctm,
                        fill: state.fill,
                    }),
                    Err(error) => {
                        scan.failure = Some(error);
                        return;
                    }
                }
            }
            TypedInstruction::XObject(name) => {
                let Some(stream) = resources.get_x_object(name.0) else {
                    scan.missing.push(String::from_utf8_lossy(name.0).into_owned());
                    continue;
                };
                let subtype = stream.dict().get::<Name<'_>>(b"Subtype");
                match subtype.as_deref() {
                    Some(b"Image") => {
                        let header = ImageHeader::read(stream.dict());
                        if !add_declared_pixels(context, scan, &header) {
                            return;
                        }
                        scan.images.push(DrawnImage {
                            source: ImageSource::XObject { stream, resources: resources.clone() },
                            header,
                            ctm: state.ctm,
                            fill: state.fill,
                        });
                    }
                    Some(b"Form") if depth < MAX_FORM_DEPTH => {
                        let bound = context.limits.max_page_pixels;
                        let size = flate_output_size(&stream, bound);
                        if size > bound {
                            scan.failure = Some(content_limit_error(size, bound));
                            return;
                        }
                        let Ok(content) = stream.decoded_data() else {
                            scan.failure = Some(PageErrorKind::Corrupt {
                                reason: format!(
                                    "the content of form XObject /{} does not decode",
                                    String::from_utf8_lossy(name.0)
                                ),
                            });
                            return;
                        };
                        let form_resources = stream
                            .dict()
                            .get::<Dict<'_>>(b"Resources")
                            .map(Resources::new)
                            .unwrap_or_else(|| resources.clone());
                        let matrix = stream
                            .dict()
                            .get::<Array<'_>>(b"Matrix")
                            .and_then(|array| read_matrix(&array))
                            .unwrap_or(IDENTITY);
                        let form_state = GraphicsState { ctm: concat(matrix, state.ctm), ..state };
                        let mut form_ops = TypedIter::new(&content);
                        collect_images(context, &mut form_ops, &form_resources, form_state, depth + 1, scan);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

/// Adds an image's declared pixels to the page total. Records a limit failure and
/// returns false when the total passes `max_page_pixels`, so a page cannot allocate
/// many images that are each under the limit.
fn add_declared_pixels(context: &Context, scan: &mut ContentScan<'_>, header: &ImageHeader) -> bool {
    if let Err(error) = context.check_pixels(header.width, header.height) {
        scan.failure = Some(error);
        return false;
    }
    let limit = context.limits.max_page_pixels;
    scan.declared_pixels = scan.declared_pixels.saturating_add(header.declared_pixels());
    if scan.declared_pixels <= limit {
        return true;
    }
    scan.failure = Some(PageErrorKind::LimitExceeded {
        quantity: format!("pixels of all {} images drawn on the page", scan.images.len() + 1),
        value: scan.declared_pixels,
        limit,
        field: "max_page_pixels",
    });
    false
}

fn read_matrix(array: &Array<'_>) -> Option<[f64; 6]> {
    let values: Vec<f64> = array.iter::<f64>().collect();
    values.try_into().ok()
}
