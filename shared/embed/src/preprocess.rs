//! BiT input preprocessing, matching the reference Python pipeline:
//! Pillow `convert("RGB")`, `resize((128, 128), BILINEAR)` to 8-bit, then
//! `(x / 255 - 0.5) / 0.5` into CHW float32.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::DynamicImage;

use crate::EmbedError;

/// Height and width of the model input in pixels.
pub const IMAGE_SIZE: u32 = 128;
/// Colour channels of the model input.
pub const CHANNELS: usize = 3;
/// Values in one preprocessed image: 3 x 128 x 128.
pub const PREPROCESSED_LEN: usize = CHANNELS * (IMAGE_SIZE as usize) * (IMAGE_SIZE as usize);

/// Converts a page image into the model input, CHW float32 in [-1, 1].
///
/// The resize is fast_image_resize's convolution with the bilinear filter,
/// which follows Pillow's algorithm: the filter support grows with the
/// downscale factor, so large pages are antialiased rather than sampled.
/// Grayscale images (`Luma8`) are resized once and the plane is copied to
/// the three channels, which equals resizing the RGB conversion because
/// Pillow's `L` to `RGB` conversion repeats the value.
///
/// NOTE: images with more than 8 bits per channel are reduced to 8 bits by
/// the `image` crate's conversion, which scales where Pillow would clip
/// 16-bit grayscale, so such inputs are close to but not exactly the
/// reference.
pub fn preprocess(image: &DynamicImage) -> Result<Vec<f32>, EmbedError> {
    if image.width() == 0 || image.height() == 0 {
        return Err(EmbedError::EmptyImage {
            width: image.width(),
            height: image.height(),
        });
    }

    let plane_len = (IMAGE_SIZE * IMAGE_SIZE) as usize;
    let mut output = vec![0.0f32; PREPROCESSED_LEN];
    match image {
        DynamicImage::ImageLuma8(gray) => {
            let resized = resize(gray.as_raw(), image.width(), image.height(), PixelType::U8)?;
            for (target, value) in output[..plane_len].iter_mut().zip(&resized) {
                *target = normalize(*value);
            }
            let (gray_plane, rest) = output.split_at_mut(plane_len);
            rest[..plane_len].copy_from_slice(gray_plane);
            rest[plane_len..].copy_from_slice(gray_plane);
        }
        _ => {
            let rgb = image.to_rgb8();
            let resized = resize(rgb.as_raw(), image.width(), image.height(), PixelType::U8x3)?;
            // HWC interleaved to CHW planes.
            for (pixel, values) in resized.chunks_exact(CHANNELS).enumerate() {
                for (channel, value) in values.iter().enumerate() {
                    output[channel * plane_len + pixel] = normalize(*value);
                }
            }
        }
    }
    Ok(output)
}

/// Maps an 8-bit value to [-1, 1] as `(x / 255 - 0.5) / 0.5`.
fn normalize(value: u8) -> f32 {
    (value as f32 / 255.0 - 0.5) / 0.5
}

fn resize(
    pixels: &[u8],
    width: u32,
    height: u32,
    pixel_type: PixelType,
) -> Result<Vec<u8>, EmbedError> {
    let source =
        ImageRef::new(width, height, pixels, pixel_type).map_err(|error| EmbedError::Resize {
            width,
            height,
            reason: error.to_string(),
        })?;
    let mut target = Image::new(IMAGE_SIZE, IMAGE_SIZE, pixel_type);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new()
        .resize(&source, &mut target, &options)
        .map_err(|error| EmbedError::Resize {
            width,
            height,
            reason: error.to_string(),
        })?;
    Ok(target.into_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, Luma, Rgb, RgbImage};

    #[test]
    fn preprocess_gray_matches_rgb_conversion() {
        let gray = GrayImage::from_fn(300, 410, |x, y| Luma([((x * 7 + y * 13) % 256) as u8]));
        let rgb = DynamicImage::ImageLuma8(gray.clone()).to_rgb8();
        let from_gray = preprocess(&DynamicImage::ImageLuma8(gray)).unwrap();
        let from_rgb = preprocess(&DynamicImage::ImageRgb8(rgb)).unwrap();
        assert_eq!(from_gray, from_rgb);
    }

    #[test]
    fn preprocess_keeps_channel_order() {
        let red = RgbImage::from_pixel(64, 64, Rgb([255, 0, 128]));
        let tensor = preprocess(&DynamicImage::ImageRgb8(red)).unwrap();
        let plane = (IMAGE_SIZE * IMAGE_SIZE) as usize;
        assert_eq!(tensor.len(), PREPROCESSED_LEN);
        assert_eq!(tensor[0], 1.0);
        assert_eq!(tensor[plane], -1.0);
        assert!((tensor[2 * plane] - normalize(128)).abs() < 1e-6);
    }

    #[test]
    fn preprocess_rejects_empty_image() {
        let empty = DynamicImage::ImageLuma8(GrayImage::new(0, 10));
        let error = preprocess(&empty).unwrap_err().to_string();
        assert!(error.contains("0x10"), "{error}");
    }
}
