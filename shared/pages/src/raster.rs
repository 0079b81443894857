//! PNG and JPEG through the `image` crate, with its limits set from ours.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader};

use crate::convert::finish_page;
use crate::{ObjectBytes, Context, Format, Page, PageErrorKind};

/// A single-image object, decoded when the iterator reaches it.
pub struct RasterPage {
    format: Format,
    bytes: ObjectBytes,
}

impl RasterPage {
    pub fn new(format: Format, bytes: ObjectBytes) -> Self {
        Self { format, bytes }
    }

    pub fn decode(self, context: &Context) -> Result<Page, PageErrorKind> {
        let image_format = match self.format {
            Format::Png => ImageFormat::Png,
            _ => ImageFormat::Jpeg,
        };
        let (image, orientation) = decode_limited(context, &self.bytes, image_format)?;
        let dpi = match self.format {
            Format::Png => png_dpi(&self.bytes),
            _ => jfif_dpi(&self.bytes),
        };
        Ok(finish_page(context, 1, image, dpi, orientation))
    }
}

/// Decodes a JPEG stream embedded in another container (old-style JPEG in TIFF).
pub fn decode_jpeg_stream(context: &Context, stream: &[u8]) -> Result<DynamicImage, PageErrorKind> {
    decode_limited(context, stream, ImageFormat::Jpeg).map(|(image, _)| image)
}

fn decode_limited(
    context: &Context,
    bytes: &[u8],
    format: ImageFormat,
) -> Result<(DynamicImage, Orientation), PageErrorKind> {
    // RGBA at 16 bits per sample is the largest buffer the decoders allocate per pixel.
    const MAX_BYTES_PER_PIXEL: u64 = 8;

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(
        context
            .limits
            .max_page_pixels
            .saturating_mul(MAX_BYTES_PER_PIXEL),
    );
    reader.limits(limits);

    let mut decoder = reader.into_decoder().map_err(image_error_kind)?;
    let (width, height) = decoder.dimensions();
    context.check_pixels(width, height)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let image = DynamicImage::from_decoder(decoder).map_err(image_error_kind)?;
    Ok((image, orientation))
}

fn image_error_kind(error: ImageError) -> PageErrorKind {
    match error {
        ImageError::Unsupported(unsupported) => PageErrorKind::Unsupported {
            feature: unsupported.to_string(),
        },
        ImageError::Limits(limit) => PageErrorKind::Corrupt {
            reason: format!("image needs more memory than the page pixel limit allows: {limit}"),
        },
        other => PageErrorKind::Corrupt {
            reason: other.to_string(),
        },
    }
}

/// Reads the PNG pHYs chunk (pixels per metre) as dots per inch.
fn png_dpi(bytes: &[u8]) -> Option<(f32, f32)> {
    const METERS_PER_INCH: f32 = 0.0254;
    let mut pos = 8;
    while pos + 8 <= bytes.len() {
        let length = u32::from_be_bytes(bytes[pos..pos + 4].try_into().ok()?) as usize;
        let kind = &bytes[pos + 4..pos + 8];
        let data = bytes.get(pos + 8..pos + 8 + length)?;
        match kind {
            b"pHYs" if length == 9 && data[8] == 1 => {
                let x = u32::from_be_bytes(data[0..4].try_into().ok()?) as f32;
                let y = u32::from_be_bytes(data[4..8].try_into().ok()?) as f32;
                return (x > 0.0 && y > 0.0).then_some((x * METERS_PER_INCH, y * METERS_PER_INCH));
            }
            b"IDAT" | b"IEND" => return None,
            _ => pos += 12 + length,
        }
    }
    None
}

/// Reads the JFIF APP0 density, when its unit is dots per inch (1) or per cm (2).
// NOTE: resolution stored only in EXIF (no JFIF segment) is not read.
fn jfif_dpi(bytes: &[u8]) -> Option<(f32, f32)> {
    let segment = bytes.get(2..20)?;
    if segment[0] != 0xFF || segment[1] != 0xE0 || &segment[4..9] != b"JFIF\0" {
        return None;
    }
    let unit = segment[11];
    let x = f32::from(u16::from_be_bytes([segment[12], segment[13]]));
    let y = f32::from(u16::from_be_bytes([segment[14], segment[15]]));
    let scale = match unit {
        1 => 1.0,
        2 => 2.54,
        _ => return None,
    };
    (x > 0.0 && y > 0.0).then_some((x * scale, y * scale))
}
