//! Places the decoded images of a PDF page on a white canvas of the page's size,
//! through the transformation matrix each image was drawn with.

use image::metadata::Orientation;
use image::{DynamicImage, GrayImage, RgbImage};

/// A PDF transformation matrix `[a b c d e f]`, mapping the image's unit square to
/// user space as `x = a*u + c*v + e`, `y = b*u + d*v + f`.
pub type Matrix = [f64; 6];

/// The visible page area in user space (points), from the crop box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PageBox {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl PageBox {
    pub fn width(&self) -> f64 {
        self.x1 - self.x0
    }

    pub fn height(&self) -> f64 {
        self.y1 - self.y0
    }
}

/// Returns the orientation that turns an image drawn with `ctm` into the page as seen,
/// when the image fills `page` with its axes along the page's axes (upright, mirrored
/// or turned by a multiple of 90 degrees). Returns `None` for any other placement,
/// which needs [`Canvas`].
pub fn full_page_orientation(ctm: &Matrix, page: &PageBox) -> Option<Orientation> {
    // The drawn area may miss the page box by a point (1/72 inch), as writers round
    // the matrix (Ghostscript writes -0.0000053 for 0).
    const EDGE_TOLERANCE_POINTS: f64 = 1.0;
    // Shear terms this small relative to the scale terms count as zero.
    const AXIS_TOLERANCE: f64 = 1e-4;

    let [a, b, c, d, _, _] = *ctm;
    let scale = a.abs() + b.abs() + c.abs() + d.abs();
    if !(scale.is_finite() && scale > 0.0) {
        return None;
    }
    let near_zero = |value: f64| value.abs() <= AXIS_TOLERANCE * scale;

    // Image x runs along page x when b and c are 0, along page y when a and d are 0.
    // Image rows run downwards, so d > 0 (unit-square v upwards) keeps rows upright.
    let orientation = if near_zero(b) && near_zero(c) {
        match (a > 0.0, d > 0.0) {
            (true, true) => Orientation::NoTransforms,
            (false, true) => Orientation::FlipHorizontal,
            (true, false) => Orientation::FlipVertical,
            (false, false) => Orientation::Rotate180,
        }
    } else if near_zero(a) && near_zero(d) {
        match (b > 0.0, c > 0.0) {
            (true, false) => Orientation::Rotate270,
            (false, true) => Orientation::Rotate90,
            (false, false) => Orientation::Rotate90FlipH,
            (true, true) => Orientation::Rotate270FlipH,
        }
    } else {
        return None;
    };

    let drawn = drawn_bounds(ctm);
    let fits = (drawn.x0 - page.x0).abs() <= EDGE_TOLERANCE_POINTS
        && (drawn.y0 - page.y0).abs() <= EDGE_TOLERANCE_POINTS
        && (drawn.x1 - page.x1).abs() <= EDGE_TOLERANCE_POINTS
        && (drawn.y1 - page.y1).abs() <= EDGE_TOLERANCE_POINTS;
    fits.then_some(orientation)
}

/// Returns whether `orientation` swaps the image's width and height.
pub fn swaps_axes(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// Returns the user-space bounding box of the unit square drawn with `ctm`.
pub fn drawn_bounds(ctm: &Matrix) -> PageBox {
    let [a, b, c, d, e, f] = *ctm;
    let corners = [(e, f), (a + e, b + f), (c + e, d + f), (a + c + e, b + d + f)];
    let mut bounds = PageBox {
        x0: f64::INFINITY,
        y0: f64::INFINITY,
        x1: f64::NEG_INFINITY,
        y1: f64::NEG_INFINITY,
    };
    for (x, y) in corners {
        bounds.x0 = bounds.x0.min(x);
        bounds.y0 = bounds.y0.min(y);
        bounds.x1 = bounds.x1.max(x);
        bounds.y1 = bounds.y1.max(y);
    }
    bounds
}

/// Returns the resolution in pixels per point at which an image of `width x height`
/// pixels drawn with `ctm` keeps its detail: the finer of its two axes.
pub fn image_scale(width: u32, height: u32, ctm: &Matrix) -> Option<f64> {
    let [a, b, c, d, _, _] = *ctm;
    let drawn_width = a.hypot(b);
    let drawn_height = c.hypot(d);
    let x_scale = f64::from(width) / drawn_width;
    let y_scale = f64::from(height) / drawn_height;
    let scale = x_scale.max(y_scale);
    (scale.is_finite() && scale > 0.0).then_some(scale)
}

/// Returns the canvas size in pixels for `page` at `scale` pixels per point, and the
/// scale actually used: lowered so the canvas has at most `max_pixels` pixels.
pub fn canvas_size(page: &PageBox, scale: f64, max_pixels: u64) -> (u32, u32, f64) {
    let area = page.width() * page.height();
    let mut scale = scale;
    if area * scale * scale > max_pixels as f64 {
        scale = (max_pixels as f64 / area).sqrt();
    }
    // Rounding down keeps the canvas within the limit after the scale was lowered.
    let to_pixels = |points: f64| (points * scale).floor().clamp(1.0, f64::from(u32::MAX)) as u32;
    (to_pixels(page.width()), to_pixels(page.height()), scale)
}

/// A white page canvas in device pixels: row 0 is the top of the page box.
pub struct Canvas {
    pixels: CanvasPixels,
    page: PageBox,
    scale: f64,
}

enum CanvasPixels {
    Gray(GrayImage),
    Rgb(RgbImage),
}

impl Canvas {
    /// Creates a white gray canvas; it turns RGB when a colour image is drawn on it.
    pub fn new(page: PageBox, width: u32, height: u32, scale: f64) -> Self {
        Self {
            pixels: CanvasPixels::Gray(GrayImage::from_pixel(width, height, image::Luma([255]))),
            page,
            scale,
        }
    }

    /// Draws `image` through `ctm` with nearest-neighbour sampling. With `stencil`, the
    /// image is a stencil mask: its dark pixels are painted in that colour and its light
    /// pixels leave the canvas unchanged.
    // NOTE: clipping paths, soft masks (SMask), colour-key masks and blend modes are
    // not applied, so an image is drawn whole and opaque.
    pub fn draw(&mut self, image: &DynamicImage, ctm: &Matrix, stencil: Option<[u8; 3]>) {
        let colour_image = matches!(image, DynamicImage::ImageRgb8(_))
            || stencil.is_some_and(|[r, g, b]| r != g || g != b);
        if colour_image && let CanvasPixels::Gray(gray) = &self.pixels {
            self.pixels = CanvasPixels::Rgb(DynamicImage::ImageLuma8(gray.clone()).to_rgb8());
        }

        let (canvas_width, canvas_height) = match &self.pixels {
            CanvasPixels::Gray(gray) => gray.dimensions(),
            CanvasPixels::Rgb(rgb) => rgb.dimensions(),
        };
        let Some(mapping) = PixelMapping::new(image.width(), image.height(), ctm, &self.page, self.scale)
        else {
            return;
        };
        let Some((columns, rows)) = mapping.canvas_span(canvas_width, canvas_height) else {
            return;
        };

        let source = ImagePixels::new(image);
        for y in rows {
            for x in columns.clone() {
                let Some((sx, sy)) = mapping.source_pixel(f64::from(x) + 0.5, f64::from(y) + 0.5)
                else {
                    continue;
                };
                let colour = match stencil {
                    Some(fill) if source.luma(sx, sy) < 128 => fill,
                    Some(_) => continue,
                    None => source.rgb(sx, sy),
                };
                match &mut self.pixels {
                    CanvasPixels::Gray(gray) => gray.put_pixel(x, y, image::Luma([luma(colour)])),
                    CanvasPixels::Rgb(rgb) => rgb.put_pixel(x, y, image::Rgb(colour)),
                }
            }
        }
    }

    /// Returns how many canvas pixels drawing a `width x height` image through `ctm`
    /// visits, without drawing it.
    pub fn span_pixels(&self, width: u32, height: u32, ctm: &Matrix) -> u64 {
        let (canvas_width, canvas_height) = match &self.pixels {
            CanvasPixels::Gray(gray) => gray.dimensions(),
            CanvasPixels::Rgb(rgb) => rgb.dimensions(),
        };
        PixelMapping::new(width, height, ctm, &self.page, self.scale)
            .and_then(|mapping| mapping.canvas_span(canvas_width, canvas_height))
            .map_or(0, |(columns, rows)| u64::from(columns.len() as u32) * u64::from(rows.len() as u32))
    }

    pub fn into_image(self) -> DynamicImage {
        match self.pixels {
            CanvasPixels::Gray(gray) => DynamicImage::ImageLuma8(gray),
            CanvasPixels::Rgb(rgb) => DynamicImage::ImageRgb8(rgb),
        }
    }
}

/// The affine map from image pixel coordinates (origin at the top-left corner) to
/// canvas pixel coordinates, and its inverse.
struct PixelMapping {
    forward: [f64; 6],
    inverse: [f64; 6],
    width: f64,
    height: f64,
}

impl PixelMapping {
    fn new(width: u32, height: u32, ctm: &Matrix, page: &PageBox, scale: f64) -> Option<Self> {
        let [a, b, c, d, e, f] = *ctm;
        let (w, h, s) = (f64::from(width), f64::from(height), scale);
        // Image pixel (px, py) is unit-square point (px/w, 1 - py/h). The canvas flips
        // user-space y so row 0 is the top of the page box.
        let (m00, m01, m10, m11) = (s * a / w, -s * c / h, -s * b / w, s * d / h);
        let (tx, ty) = (s * (c + e - page.x0), s * (page.y1 - d - f));
        let determinant = m00 * m11 - m01 * m10;
        if !(determinant.is_finite() && determinant.abs() > f64::EPSILON) {
            return None;
        }
        let (i00, i01, i10, i11) = (
            m11 / determinant,
            -m01 / determinant,
            -m10 / determinant,
            m00 / determinant,
        );
        Some(Self {
            forward: [m00, m01, m10, m11, tx, ty],
            inverse: [i00, i01, i10, i11, -(i00 * tx + i01 * ty), -(i10 * tx + i11 * ty)],
            width: w,
            height: h,
        })
    }

    /// Returns the canvas columns and rows the image covers, clipped to the canvas.
    fn canvas_span(
        &self,
        canvas_width: u32,
        canvas_height: u32,
    ) -> Option<(std::ops::Range<u32>, std::ops::Range<u32>)> {
        let [m00, m01, m10, m11, tx, ty] = self.forward;
        let corners = [(0.0, 0.0), (self.width, 0.0), (0.0, self.height), (self.width, self.height)];
        let (mut x0, mut y0, mut x1, mut y1) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
        for (px, py) in corners {
            let x = m00 * px + m01 * py + tx;
            let y = m10 * px + m11 * py + ty;
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        let clip = |value: f64, max: u32| value.clamp(0.0, f64::from(max)) as u32;
        let columns = clip(x0.floor(), canvas_width)..clip(x1.ceil(), canvas_width);
        let rows = clip(y0.floor(), canvas_height)..clip(y1.ceil(), canvas_height);
        (!columns.is_empty() && !rows.is_empty()).then_some((columns, rows))
    }

    /// Returns the image pixel under canvas point (x, y), or `None` outside the image.
    fn source_pixel(&self, x: f64, y: f64) -> Option<(u32, u32)> {
        let [i00, i01, i10, i11, tx, ty] = self.inverse;
        let px = i00 * x + i01 * y + tx;
        let py = i10 * x + i11 * y + ty;
        let inside = px >= 0.0 && py >= 0.0 && px < self.width && py < self.height;
        inside.then(|| (px as u32, py as u32))
    }
}

/// Read access to a decoded `ImageLuma8` or `ImageRgb8` page image.
enum ImagePixels<'a> {
    Gray(&'a GrayImage),
    Rgb(&'a RgbImage),
    Other(&'a DynamicImage),
}

impl<'a> ImagePixels<'a> {
    fn new(image: &'a DynamicImage) -> Self {
        match image {
            DynamicImage::ImageLuma8(gray) => Self::Gray(gray),
            DynamicImage::ImageRgb8(rgb) => Self::Rgb(rgb),
            other => Self::Other(other),
        }
    }

    fn rgb(&self, x: u32, y: u32) -> [u8; 3] {
        match self {
            Self::Gray(gray) => [gray.get_pixel(x, y).0[0]; 3],
            Self::Rgb(rgb) => rgb.get_pixel(x, y).0,
            Self::Other(image) => {
                let [r, g, b, _] = image::GenericImageView::get_pixel(*image, x, y).0;
                [r, g, b]
            }
        }
    }

    fn luma(&self, x: u32, y: u32) -> u8 {
        match self {
            Self::Gray(gray) => gray.get_pixel(x, y).0[0],
            _ => luma(self.rgb(x, y)),
        }
    }
}

/// Converts RGB to gray with the ITU-R BT.601 weights, as `image`'s `to_luma8` does.
fn luma([r, g, b]: [u8; 3]) -> u8 {
    ((299 * u32::from(r) + 587 * u32::from(g) + 114 * u32::from(b) + 500) / 1000) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    const LETTER: PageBox = PageBox { x0: 0.0, y0: 0.0, x1: 612.0, y1: 792.0 };

    #[test]
    fn full_page_orientation_cardinal_matrices() {
        let landscape = PageBox { x0: 0.0, y0: 0.0, x1: 792.0, y1: 612.0 };
        let cases: [(Matrix, PageBox, Option<Orientation>); 6] = [
            ([612.0, 0.0, 0.0, 792.0, 0.0, -0.000_005_3], LETTER, Some(Orientation::NoTransforms)),
            ([-612.0, 0.0, 0.0, -792.0, 612.0, 792.0], LETTER, Some(Orientation::Rotate180)),
            ([0.0, 612.0, -792.0, 0.0, 792.0, 0.0], landscape, Some(Orientation::Rotate270)),
            ([0.0, -612.0, 792.0, 0.0, -0.000_005_3, 612.0], landscape, Some(Orientation::Rotate90)),
            ([300.0, 0.0, 0.0, 400.0, 0.0, 0.0], LETTER, None),
            ([500.0, 100.0, -100.0, 500.0, 50.0, 50.0], LETTER, None),
        ];
        for (matrix, page, expected) in cases {
            assert_eq!(full_page_orientation(&matrix, &page), expected, "{matrix:?}");
        }
    }

    #[test]
    fn canvas_size_respects_pixel_limit() {
        let (width, height, scale) = canvas_size(&LETTER, 300.0 / 72.0, 100_000_000);
        assert_eq!((width, height), (2550, 3300));
        assert!((scale - 300.0 / 72.0).abs() < 1e-9);

        let (width, height, _) = canvas_size(&LETTER, 300.0 / 72.0, 1_000_000);
        assert!(u64::from(width) * u64::from(height) <= 1_000_000, "{width}x{height}");
        assert!(width > 800, "{width}x{height}");
        assert!(height > 1000, "{width}x{height}");
    }

    #[test]
    fn canvas_draw_places_strips_and_rotation() {
        // Two 10x5 strips, black over white, stacked to fill a 10x10 point page at one
        // pixel per point. The lower strip is drawn turned by 180 degrees.
        let page = PageBox { x0: 0.0, y0: 0.0, x1: 10.0, y1: 10.0 };
        let mut strip = GrayImage::from_pixel(10, 5, image::Luma([255]));
        strip.put_pixel(0, 0, image::Luma([0]));
        let strip = DynamicImage::ImageLuma8(strip);

        let mut canvas = Canvas::new(page, 10, 10, 1.0);
        canvas.draw(&strip, &[10.0, 0.0, 0.0, 5.0, 0.0, 5.0], None);
        canvas.draw(&strip, &[-10.0, 0.0, 0.0, -5.0, 10.0, 5.0], None);
        let gray = canvas.into_image().to_luma8();

        let black: Vec<(u32, u32)> = gray
            .enumerate_pixels()
            .filter(|(_, _, pixel)| pixel.0[0] == 0)
            .map(|(x, y, _)| (x, y))
            .collect();
        assert_eq!(black, vec![(0, 0), (9, 9)]);
    }

    #[test]
    fn canvas_stencil_paints_only_dark_pixels() {
        let page = PageBox { x0: 0.0, y0: 0.0, x1: 4.0, y1: 4.0 };
        let mut mask = GrayImage::from_pixel(4, 4, image::Luma([255]));
        mask.put_pixel(1, 1, image::Luma([0]));
        let mut canvas = Canvas::new(page, 4, 4, 1.0);
        canvas.draw(&DynamicImage::ImageLuma8(GrayImage::from_pixel(4, 4, image::Luma([100]))), &[4.0, 0.0, 0.0, 4.0, 0.0, 0.0], None);
        canvas.draw(&DynamicImage::ImageLuma8(mask), &[4.0, 0.0, 0.0, 4.0, 0.0, 0.0], Some([255, 0, 0]));
        let rgb = canvas.into_image().to_rgb8();
        assert_eq!(rgb.get_pixel(1, 1).0, [255, 0, 0]);
        assert_eq!(rgb.get_pixel(2, 2).0, [100, 100, 100]);
    }
}
