//! Conversions shared by the format decoders: pixel formats to Luma8/Rgb8, square
//! pixels and orientation.

use image::imageops::FilterType;
use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, RgbImage};

use crate::{Context, Page, PageErrorKind};

/// Builds the returned [`Page`]: applies orientation and square-pixel resampling as
/// the options ask, and records the stored size and resolution.
pub fn finish_page(
    context: &Context,
    number: u32,
    image: DynamicImage,
    dpi: Option<(f32, f32)>,
    orientation: Orientation,
) -> Page {
    let source_width = image.width();
    let source_height = image.height();
    let mut image = to_page_pixels(image);

    if context.options.square_pixels
        && let Some((x_dpi, y_dpi)) = dpi
    {
        image = square_pixels(image, x_dpi, y_dpi, context.limits.max_page_pixels);
    }
    if context.options.apply_orientation {
        image.apply_orientation(orientation);
    }

    Page {
        number,
        image,
        source_width,
        source_height,
        dpi,
    }
}

/// Stretches the axis with the lower resolution so one pixel covers the same distance
/// both ways (a 204x98 dpi fax page becomes 204x204 dpi). When the stretched page would
/// exceed `max_pixels`, shrinks the higher-resolution axis instead.
pub fn square_pixels(image: DynamicImage, x_dpi: f32, y_dpi: f32, max_pixels: u64) -> DynamicImage {
    // Resolutions within 1% of each other are treated as square, so rounding in the
    // stored rationals (e.g. 299.99 against 300) does not trigger a resample.
    const SQUARE_TOLERANCE: f32 = 0.01;

    let valid = x_dpi.is_finite() && y_dpi.is_finite() && x_dpi > 0.0 && y_dpi > 0.0;
    if !valid || ((x_dpi - y_dpi).abs() / x_dpi.max(y_dpi)) < SQUARE_TOLERANCE {
        return image;
    }

    let (width, height) = (f64::from(image.width()), f64::from(image.height()));
    let ratio = f64::from(x_dpi.max(y_dpi)) / f64::from(x_dpi.min(y_dpi));
    let stretched = if x_dpi > y_dpi {
        (width, height * ratio)
    } else {
        (width * ratio, height)
    };
    let (new_width, new_height) = if stretched.0 * stretched.1 <= max_pixels as f64 {
        stretched
    } else if x_dpi > y_dpi {
        (width / ratio, height)
    } else {
        (width, height / ratio)
    };
    let to_pixels = |value: f64| value.round().clamp(1.0, f64::from(u32::MAX)) as u32;
    image.resize_exact(to_pixels(new_width), to_pixels(new_height), FilterType::Triangle)
}

/// Converts any decoded image to `ImageLuma8` (gray) or `ImageRgb8` (colour),
/// composing transparent pixels over white paper.
pub fn to_page_pixels(image: DynamicImage) -> DynamicImage {
    match image {
        DynamicImage::ImageLuma8(_) | DynamicImage::ImageRgb8(_) => image,
        DynamicImage::ImageLuma16(_) => DynamicImage::ImageLuma8(image.to_luma8()),
        DynamicImage::ImageLumaA8(_) | DynamicImage::ImageLumaA16(_) => {
            let gray_alpha = image.to_luma_alpha8();
            let gray = GrayImage::from_fn(gray_alpha.width(), gray_alpha.height(), |x, y| {
                let [value, alpha] = gray_alpha.get_pixel(x, y).0;
                image::Luma([over_white(value, alpha)])
            });
            DynamicImage::ImageLuma8(gray)
        }
        other if other.color().has_alpha() => {
            let rgba = other.to_rgba8();
            let rgb = RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
                let [r, g, b, alpha] = rgba.get_pixel(x, y).0;
                image::Rgb([
                    over_white(r, alpha),
                    over_white(g, alpha),
                    over_white(b, alpha),
                ])
            });
            DynamicImage::ImageRgb8(rgb)
        }
        other => DynamicImage::ImageRgb8(other.to_rgb8()),
    }
}

fn over_white(value: u8, alpha: u8) -> u8 {
    let blended = u32::from(value) * u32::from(alpha) + 255 * (255 - u32::from(alpha));
    (blended / 255) as u8
}

/// Converts naive (uncalibrated) CMYK to RGB, as PDF viewers do without a colour profile.
pub fn cmyk_to_rgb(c: u8, m: u8, y: u8, k: u8) -> [u8; 3] {
    let white = 255 - u32::from(k);
    let channel = |ink: u8| ((255 - u32::from(ink)) * white / 255) as u8;
    [channel(c), channel(m), channel(y)]
}

/// Converts full-range YCbCr (JFIF, ITU-R BT.601 coefficients) to RGB.
pub fn ycbcr_to_rgb(y: u8, cb: u8, cr: u8) -> [u8; 3] {
    let y = f32::from(y);
    let cb = f32::from(cb) - 128.0;
    let cr = f32::from(cr) - 128.0;
    let clamp = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    [
        clamp(y + 1.402 * cr),
        clamp(y - 0.344_136 * cb - 0.714_136 * cr),
        clamp(y + 1.772 * cb),
    ]
}

/// Builds a gray image from an 8-bit buffer, checking its length.
pub fn gray_from_vec(width: u32, height: u32, data: Vec<u8>) -> Result<DynamicImage, PageErrorKind> {
    let len = data.len();
    GrayImage::from_raw(width, height, data)
        .map(DynamicImage::ImageLuma8)
        .ok_or_else(|| PageErrorKind::Corrupt {
            reason: format!("decoded {len} bytes, too few for a {width}x{height} gray image"),
        })
}

/// Builds an RGB image from an 8-bit interleaved buffer, checking its length.
pub fn rgb_from_vec(width: u32, height: u32, data: Vec<u8>) -> Result<DynamicImage, PageErrorKind> {
    let len = data.len();
    RgbImage::from_raw(width, height, data)
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(|| PageErrorKind::Corrupt {
            reason: format!("decoded {len} bytes, too few for a {width}x{height} RGB image"),
        })
}

/// Expands samples of `bits` (1, 2, 4, 8 or 16) per sample, rows padded to whole bytes,
/// into one byte per sample, scaled to 0..=255 unless `keep_values` (palette indices).
pub fn unpack_samples(
    data: &[u8],
    samples_per_row: usize,
    rows: usize,
    bits: u8,
    keep_values: bool,
) -> Result<Vec<u8>, PageErrorKind> {
    let row_bytes = (samples_per_row * usize::from(bits)).div_ceil(8);
    let needed = row_bytes * rows;
    if data.len() < needed {
        return Err(PageErrorKind::Corrupt {
            reason: format!(
                "image data is {} bytes, {needed} expected for {rows} rows of {samples_per_row} {bits}-bit samples",
                data.len()
            ),
        });
    }

    let mut out = Vec::with_capacity(samples_per_row * rows);
    match bits {
        8 => {
            for row in data[..needed].chunks_exact(row_bytes) {
                out.extend_from_slice(row);
            }
        }
        16 => {
            for row in data[..needed].chunks_exact(row_bytes) {
                // Big-endian high byte, as PDF stores 16-bit samples.
                out.extend(row.chunks_exact(2).map(|pair| pair[0]));
            }
        }
        1 | 2 | 4 => {
            let max = (1u16 << bits) - 1;
            for row in data[..needed].chunks_exact(row_bytes) {
                for i in 0..samples_per_row {
                    let bit = i * usize::from(bits);
                    let shift = 8 - usize::from(bits) - (bit % 8);
                    let value = (u16::from(row[bit / 8]) >> shift) & max;
                    out.push(if keep_values {
                        value as u8
                    } else {
                        (value * 255 / max) as u8
                    });
                }
            }
        }
        other => {
            return Err(PageErrorKind::Unsupported {
                feature: format!("{other} bits per sample"),
            });
        }
    }
    Ok(out)
}
