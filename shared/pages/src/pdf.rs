//! Scanned PDF: for each page, finds the image XObjects its content stream draws and
//! decodes the largest one with `hayro-syntax` (Flate, LZW, RunLength, DCT, CCITT,
//! JBIG2, JPX).

use std::sync::Arc;

use hayro_syntax::content::TypedIter;
use hayro_syntax::content::ops::TypedInstruction;
use hayro_syntax::object::stream::{ImageColorSpace, ImageDecodeParams};
use hayro_syntax::object::{Array, Dict, Name, Object, Stream};
use hayro_syntax::page::{Resources, Rotation};
use hayro_syntax::{Filter, LoadPdfError, Pdf, PdfData};
use image::DynamicImage;
use image::metadata::Orientation;

use crate::convert::{cmyk_to_rgb, finish_page, gray_from_vec, rgb_from_vec, unpack_samples};
use crate::{Context, Page, PageError, PageErrorKind, Step};

/// Form XObjects nested deeper than this are not searched for images.
const MAX_FORM_DEPTH: usize = 8;
/// Content stream operators read per page before the search for images stops; a
/// scanned page has a few dozen.
const MAX_OPERATORS: usize = 1_000_000;

struct SharedBytes(Arc<[u8]>);

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
    pub fn open(context: &Context, bytes: Arc<[u8]>) -> Result<Self, PageError> {
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

/// An image XObject drawn by the page, with the resources it was found in and the
/// transformation matrix in force when it was drawn.
struct DrawnImage<'a> {
    stream: Stream<'a>,
    resources: Resources<'a>,
    ctm: [f64; 6],
    declared_pixels: u64,
}

fn decode_page(
    context: &Context,
    number: u32,
    page: &hayro_syntax::page::Page<'_>,
) -> Result<Page, PageErrorKind> {
    let mut found = Vec::new();
    let mut operators = 0;
    let mut ops = page.typed_operations();
    collect_images(&mut ops, page.resources(), IDENTITY, 0, &mut found, &mut operators);

    // NOTE: a page made of several images (strips or tiles) yields only the largest one.
    let Some(chosen) = found.into_iter().max_by_key(|image| image.declared_pixels) else {
        return Err(PageErrorKind::NoImage { operators });
    };
    let image = decode_image(context, &chosen)?;

    // Points drawn per image pixel follow from the matrix that maps the unit square onto
    // the page: its column lengths are the drawn width and height in points.
    let [a, b, c, d, _, _] = chosen.ctm;
    let drawn_width = (a * a + b * b).sqrt();
    let drawn_height = (c * c + d * d).sqrt();
    let dpi = (drawn_width > 0.0 && drawn_height > 0.0).then(|| {
        (
            (f64::from(image.width()) * 72.0 / drawn_width) as f32,
            (f64::from(image.height()) * 72.0 / drawn_height) as f32,
        )
    });

    // NOTE: rotation or mirroring in the drawing matrix itself is not applied; scanners
    // write upright images and use /Rotate.
    let orientation = match page.rotation() {
        Rotation::None => Orientation::NoTransforms,
        Rotation::Horizontal => Orientation::Rotate90,
        Rotation::Flipped => Orientation::Rotate180,
        Rotation::FlippedHorizontal => Orientation::Rotate270,
    };
    Ok(finish_page(context, number, image, dpi, orientation))
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

fn collect_images<'a>(
    ops: &mut TypedIter<'_>,
    resources: &Resources<'a>,
    base_ctm: [f64; 6],
    depth: usize,
    found: &mut Vec<DrawnImage<'a>>,
    operators: &mut usize,
) {
    let mut ctm = base_ctm;
    let mut saved = Vec::new();
    while let Some(op) = ops.next() {
        *operators += 1;
        if *operators > MAX_OPERATORS {
            return;
        }
        match op {
            TypedInstruction::SaveState(_) => saved.push(ctm),
            TypedInstruction::RestoreState(_) => ctm = saved.pop().unwrap_or(base_ctm),
            TypedInstruction::Transform(m) => {
                let matrix = [m.0, m.1, m.2, m.3, m.4, m.5].map(|n| n.as_f64());
                ctm = concat(matrix, ctm);
            }
            TypedInstruction::XObject(name) => {
                let Some(stream) = resources.get_x_object(name.0) else {
                    continue;
                };
                let subtype = stream.dict().get::<Name<'_>>(b"Subtype");
                match subtype.as_deref() {
                    Some(b"Image") => {
                        let width = stream.dict().get::<u32>(b"Width").unwrap_or(0);
                        let height = stream.dict().get::<u32>(b"Height").unwrap_or(0);
                        found.push(DrawnImage {
                            declared_pixels: u64::from(width) * u64::from(height),
                            stream,
                            resources: resources.clone(),
                            ctm,
                        });
                    }
                    Some(b"Form") if depth < MAX_FORM_DEPTH => {
                        let Ok(content) = stream.decoded_data() else {
                            continue;
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
                        let mut form_ops = TypedIter::new(&content);
                        collect_images(
                            &mut form_ops,
                            &form_resources,
                            concat(matrix, ctm),
                            depth + 1,
                            found,
                            operators,
                        );
                    }
                    _ => {}
                }
            }
            // NOTE: inline images (BI ... EI) are skipped; scanners store page images
            // as XObjects.
            _ => {}
        }
    }
}

fn read_matrix(array: &Array<'_>) -> Option<[f64; 6]> {
    let values: Vec<f64> = array.iter::<f64>().collect();
    values.try_into().ok()
}

/// Colour space of a PDF image, reduced to what the page conversion needs.
#[derive(Debug, Clone)]
enum ColorSpace {
    Gray,
    Rgb,
    Cmyk,
    /// Separation or DeviceN with one colorant: a sample is an amount of ink.
    Ink,
    Indexed {
        base: Box<ColorSpace>,
        palette: Vec<u8>,
    },
}

impl ColorSpace {
    fn components(&self) -> usize {
        match self {
            ColorSpace::Gray | ColorSpace::Ink | ColorSpace::Indexed { .. } => 1,
            ColorSpace::Rgb => 3,
            ColorSpace::Cmyk => 4,
        }
    }
}

fn parse_color_space(
    object: Option<Object<'_>>,
    resources: &Resources<'_>,
    depth: usize,
) -> Result<ColorSpace, PageErrorKind> {
    const MAX_COLOR_SPACE_DEPTH: usize = 4;
    let unsupported = |detail: String| PageErrorKind::Unsupported {
        feature: format!("PDF image colour space {detail}"),
    };
    if depth > MAX_COLOR_SPACE_DEPTH {
        return Err(unsupported("nested too deeply".into()));
    }
    match object {
        None => Ok(ColorSpace::Gray),
        Some(Object::Name(name)) => match &*name {
            b"DeviceGray" | b"G" | b"CalGray" => Ok(ColorSpace::Gray),
            b"DeviceRGB" | b"RGB" | b"CalRGB" => Ok(ColorSpace::Rgb),
            b"DeviceCMYK" | b"CMYK" => Ok(ColorSpace::Cmyk),
            other => match resources.get_color_space(&name) {
                Some(resolved) => parse_color_space(Some(resolved), resources, depth + 1),
                None => Err(unsupported(String::from_utf8_lossy(other).into_owned())),
            },
        },
        Some(Object::Array(array)) => {
            let mut items = array.iter::<Object<'_>>();
            let Some(Object::Name(family)) = items.next() else {
                return Err(unsupported("array without a family name".into()));
            };
            match &*family {
                b"ICCBased" => {
                    let components = match items.next() {
                        Some(Object::Stream(profile)) => profile.dict().get::<u8>(b"N"),
                        _ => None,
                    };
                    match components {
                        Some(1) => Ok(ColorSpace::Gray),
                        Some(3) => Ok(ColorSpace::Rgb),
                        Some(4) => Ok(ColorSpace::Cmyk),
                        other => Err(unsupported(format!("ICCBased with N={other:?}"))),
                    }
                }
                b"CalGray" => Ok(ColorSpace::Gray),
                b"CalRGB" => Ok(ColorSpace::Rgb),
                b"Indexed" | b"I" => {
                    let base = parse_color_space(items.next(), resources, depth + 1)?;
                    let _high_value = items.next();
                    let palette = match items.next() {
                        Some(Object::String(lookup)) => lookup.as_bytes().to_vec(),
                        Some(Object::Stream(lookup)) => lookup
                            .decoded_data()
                            .map_err(|_| unsupported("Indexed with an undecodable lookup".into()))?
                            .into_owned(),
                        _ => return Err(unsupported("Indexed without a lookup table".into())),
                    };
                    Ok(ColorSpace::Indexed {
                        base: Box::new(base),
                        palette,
                    })
                }
                b"Separation" => Ok(ColorSpace::Ink),
                b"DeviceN" => match items.next() {
                    Some(Object::Array(names)) if names.iter::<Object<'_>>().count() == 1 => {
                        Ok(ColorSpace::Ink)
                    }
                    _ => Err(unsupported("DeviceN with several colorants".into())),
                },
                b"DeviceGray" => Ok(ColorSpace::Gray),
                b"DeviceRGB" => Ok(ColorSpace::Rgb),
                b"DeviceCMYK" => Ok(ColorSpace::Cmyk),
                other => Err(unsupported(String::from_utf8_lossy(other).into_owned())),
            }
        }
        Some(other) => Err(unsupported(format!("{other}"))),
    }
}

fn decode_image(context: &Context, drawn: &DrawnImage<'_>) -> Result<DynamicImage, PageErrorKind> {
    let stream = &drawn.stream;
    let dict = stream.dict();
    let width = dict.get::<u32>(b"Width").unwrap_or(0);
    let height = dict.get::<u32>(b"Height").unwrap_or(0);
    context.check_pixels(width, height)?;

    let filters = stream.filters();
    check_embedded_size(context, stream, &filters)?;

    let is_mask = dict.get::<bool>(b"ImageMask").unwrap_or(false);
    let color_space = if is_mask {
        ColorSpace::Gray
    } else {
        parse_color_space(dict.get::<Object<'_>>(b"ColorSpace"), &drawn.resources, 0)?
    };
    let is_indexed = matches!(color_space, ColorSpace::Indexed { .. });
    let declared_bits = if is_mask {
        1
    } else {
        dict.get::<u8>(b"BitsPerComponent").unwrap_or(8)
    };

    let params = ImageDecodeParams {
        is_indexed,
        bpc: Some(declared_bits),
        num_components: u8::try_from(color_space.components()).ok(),
        target_dimension: None,
        width,
        height,
    };
    let decoded = stream
        .decoded_image(&params)
        .map_err(|failure| PageErrorKind::Corrupt {
            reason: format!("PDF image stream with filters {filters:?} failed to decode ({failure:?})"),
        })?;

    // JPEG and JPEG 2000 decoders convert colour themselves, so their reported colour
    // space wins; CCITT and JBIG2 report samples of the declared colour space.
    let colour_converted = filters
        .iter()
        .any(|filter| matches!(filter, Filter::DctDecode | Filter::JpxDecode));
    let (width, height, bits, color_space) = match &decoded.image_data {
        Some(info) => {
            let space = match (colour_converted, info.color_space) {
                (true, Some(ImageColorSpace::Gray)) => ColorSpace::Gray,
                (true, Some(ImageColorSpace::Rgb)) => ColorSpace::Rgb,
                (true, Some(ImageColorSpace::Cmyk)) => ColorSpace::Cmyk,
                _ => color_space,
            };
            (info.width, info.height, info.bits_per_component, space)
        }
        None => (width, height, declared_bits, color_space),
    };
    context.check_pixels(width, height)?;

    let components = color_space.components();
    let mut samples = unpack_samples(
        &decoded.data,
        width as usize * components,
        height as usize,
        bits,
        is_indexed,
    )?;

    // A Decode array of [1 0], on an image or a stencil mask, swaps dark and light.
    let inverted = dict
        .get::<Array<'_>>(b"Decode")
        .and_then(|array| {
            let values: Vec<f64> = array.iter::<f64>().take(2).collect();
            (values.len() == 2).then(|| values[0] > values[1])
        })
        .unwrap_or(false);
    if inverted && !is_indexed {
        samples.iter_mut().for_each(|v| *v = 255 - *v);
    }

    to_image(width, height, samples, &color_space)
}

/// Rejects JBIG2, JPEG and JPEG 2000 streams whose embedded size is over the pixel
/// limit, before `hayro-syntax` allocates their pixel buffer. The image dictionary's
/// Width and Height are checked separately; the embedded size can be larger.
fn check_embedded_size(
    context: &Context,
    stream: &Stream<'_>,
    filters: &[Filter],
) -> Result<(), PageErrorKind> {
    // The raw stream bytes are the image codec's input only when it is the sole filter.
    let [filter] = filters else {
        return Ok(());
    };
    let raw = stream.raw_data();
    let size = match filter {
        Filter::Jbig2Decode => {
            let settings = hayro_jbig2::DecodeSettings { strict: false };
            hayro_jbig2::Page::new_embedded(&raw, None, &settings)
                .ok()
                .map(|page| (page.width(), page.height()))
        }
        Filter::JpxDecode => {
            let settings = hayro_jpeg2000::DecodeSettings::default();
            hayro_jpeg2000::Image::new(&raw, &settings)
                .ok()
                .map(|image| (image.width(), image.height()))
        }
        Filter::DctDecode => jpeg_frame_size(&raw),
        _ => None,
    };
    match size {
        Some((width, height)) => context.check_pixels(width, height),
        None => Ok(()),
    }
}

/// Returns (width, height) from the first JPEG start-of-frame marker.
fn jpeg_frame_size(data: &[u8]) -> Option<(u32, u32)> {
    let mut pos = 2;
    while pos + 4 <= data.len() {
        if data[pos] != 0xFF {
            pos += 1;
            continue;
        }
        let marker = data[pos + 1];
        match marker {
            0xFF => pos += 1,
            0xD8 | 0x01 | 0xD0..=0xD7 => pos += 2,
            0xC0..=0xCF if !matches!(marker, 0xC4 | 0xC8 | 0xCC) => {
                let frame = data.get(pos + 5..pos + 9)?;
                let height = u32::from(u16::from_be_bytes([frame[0], frame[1]]));
                let width = u32::from(u16::from_be_bytes([frame[2], frame[3]]));
                return Some((width, height));
            }
            _ => {
                let length = u16::from_be_bytes([data[pos + 2], data[pos + 3]]) as usize;
                pos += 2 + length;
            }
        }
    }
    None
}

fn to_image(
    width: u32,
    height: u32,
    samples: Vec<u8>,
    color_space: &ColorSpace,
) -> Result<DynamicImage, PageErrorKind> {
    match color_space {
        ColorSpace::Gray => gray_from_vec(width, height, samples),
        ColorSpace::Ink => gray_from_vec(width, height, samples.into_iter().map(|v| 255 - v).collect()),
        ColorSpace::Rgb => rgb_from_vec(width, height, samples),
        ColorSpace::Cmyk => {
            let rgb = samples
                .chunks_exact(4)
                .flat_map(|p| cmyk_to_rgb(p[0], p[1], p[2], p[3]))
                .collect();
            rgb_from_vec(width, height, rgb)
        }
        ColorSpace::Indexed { base, palette } => {
            let components = base.components();
            let mut expanded = Vec::with_capacity(samples.len() * components);
            for index in samples {
                let start = usize::from(index) * components;
                match palette.get(start..start + components) {
                    Some(entry) => expanded.extend_from_slice(entry),
                    // Indices past the table (allowed by sloppy writers) read as 0.
                    None => expanded.extend(std::iter::repeat_n(0, components)),
                }
            }
            to_image(width, height, expanded, base)
        }
    }
}
