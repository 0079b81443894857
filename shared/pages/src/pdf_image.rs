//! PDF image streams (XObjects and inline images) decoded to 8-bit gray or RGB with
//! `hayro-syntax`, after their declared and embedded sizes are checked against the
//! limits.

use std::io::Read;

use hayro_syntax::object::stream::{ImageColorSpace, ImageDecodeParams};
use hayro_syntax::object::{Array, Dict, Object, Stream};
use hayro_syntax::page::Resources;
use hayro_syntax::Filter;
use image::DynamicImage;

use crate::convert::{cmyk_to_rgb, gray_from_vec, rgb_from_vec, unpack_samples};
use crate::{Context, PageErrorKind};

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

/// Reads `key` as type `T`, or its inline-image abbreviation. A macro because
/// hayro-syntax keeps the bound of `Dict::get` private.
macro_rules! get_key {
    ($dict:expr, $t:ty, $key:expr, $abbreviation:expr) => {
        $dict.get::<$t>($key).or_else(|| $dict.get::<$t>($abbreviation))
    };
}

/// Declared properties of an image stream, read before anything is decoded. Inline
/// images use the abbreviated keys (`W`, `H`, `BPC`, `IM`, `CS`, `D`).
pub struct ImageHeader {
    pub width: u32,
    pub height: u32,
    pub is_mask: bool,
    pub bits_per_component: u8,
}

impl ImageHeader {
    pub fn read(dict: &Dict<'_>) -> Self {
        let is_mask = get_key!(dict, bool, b"ImageMask", b"IM").unwrap_or(false);
        Self {
            width: get_key!(dict, u32, b"Width", b"W").unwrap_or(0),
            height: get_key!(dict, u32, b"Height", b"H").unwrap_or(0),
            is_mask,
            bits_per_component: if is_mask {
                1
            } else {
                get_key!(dict, u8, b"BitsPerComponent", b"BPC").unwrap_or(8)
            },
        }
    }

    pub fn declared_pixels(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }
}


/// Decodes one image stream drawn by a page. `resources` resolves named colour spaces.
pub fn decode_image(
    context: &Context,
    stream: &Stream<'_>,
    resources: &Resources<'_>,
) -> Result<DynamicImage, PageErrorKind> {
    let dict = stream.dict();
    let header = ImageHeader::read(dict);
    let (width, height) = (header.width, header.height);
    context.check_pixels(width, height)?;

    let filters = stream.filters();
    check_embedded_size(context, stream, &filters)?;

    let is_mask = header.is_mask;
    let color_space = if is_mask {
        ColorSpace::Gray
    } else {
        parse_color_space(get_key!(dict, Object<'_>, b"ColorSpace", b"CS"), resources, 0)?
    };
    let declared_bits = header.bits_per_component;
    check_flate_size(stream, &filters, &header, color_space.components())?;

    let is_indexed = matches!(color_space, ColorSpace::Indexed { .. });

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
    let inverted = get_key!(dict, Array<'_>, b"Decode", b"D")
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

/// Rejects an image whose first filter is FlateDecode when inflating it yields more
/// bytes than the declared size can need, before `hayro-syntax` inflates it into one
/// buffer without a bound. The stream is inflated into a counter, not into memory.
fn check_flate_size(
    stream: &Stream<'_>,
    filters: &[Filter],
    header: &ImageHeader,
    components: usize,
) -> Result<(), PageErrorKind> {
    if filters.first() != Some(&Filter::FlateDecode) {
        return Ok(());
    }
    // A PNG predictor adds one byte per row. When another filter follows, the inflated
    // bytes are that codec's input (JPEG, CCITT, JBIG2), which real writers keep
    // smaller than the samples. Twice the samples plus 1 MiB leaves room for odd ones.
    const SLACK_BYTES: u64 = 1 << 20;
    let row_bytes = (u64::from(header.width) * components as u64 * u64::from(header.bits_per_component))
        .div_ceil(8)
        + 1;
    let sample_bytes = row_bytes * u64::from(header.height);
    let bound = sample_bytes.saturating_mul(2).saturating_add(SLACK_BYTES);
    let inflated = inflated_size(&stream.raw_data(), bound);
    if inflated > bound {
        return Err(PageErrorKind::Corrupt {
            reason: format!(
                "FlateDecode image stream inflates to over {bound} bytes, while its declared {}x{} pixels need at most {sample_bytes} (a decompression bomb)",
                header.width, header.height
            ),
        });
    }
    Ok(())
}

/// Returns how many bytes zlib or raw deflate `data` inflates to, counting at most
/// `bound + 1`. Corrupt data counts the bytes inflated before the error.
// NOTE: hayro-syntax 0.9 falls back to a lenient inflater (a port of pdf.js) when its
// first attempt fails, which may read further into a corrupt stream than this count.
pub fn inflated_size(data: &[u8], bound: u64) -> u64 {
    let count = |reader: &mut dyn Read| -> (u64, bool) {
        let mut limited = reader.take(bound.saturating_add(1));
        match std::io::copy(&mut limited, &mut std::io::sink()) {
            Ok(count) => (count, true),
            Err(_) => (bound.saturating_add(1) - limited.limit(), false),
        }
    };
    let (zlib_count, zlib_ok) = count(&mut flate2::read::ZlibDecoder::new(data));
    if zlib_ok || zlib_count > 0 {
        return zlib_count;
    }
    count(&mut flate2::read::DeflateDecoder::new(data)).0
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
