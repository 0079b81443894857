//! Contact sheets of a cluster's most typical pages, and the text and PNG helpers that the
//! map in `map.rs` shares.
//!
//! Text is drawn with the public-domain 8x8 bitmap font of `font8x8`, so no system font is
//! needed and the output does not depend on the machine.

use std::io::Cursor;

use image::imageops::{FilterType, resize};
use image::{GrayImage, ImageFormat, Luma, RgbImage};

use crate::error::ClusterError;
use crate::summary::ClusterInfo;

pub(crate) const GLYPH_SIZE: u32 = 8;

/// Grid of a contact sheet, in pixels per cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SheetLayout {
    pub columns: u32,
    pub rows: u32,
    /// Width of each thumbnail cell.
    pub cell_width: u32,
    /// Height of the thumbnail area of each cell, not counting its caption line.
    pub cell_height: u32,
}

impl Default for SheetLayout {
    fn default() -> Self {
        Self { columns: 4, rows: 3, cell_width: 200, cell_height: 260 }
    }
}

pub(crate) const MARGIN: u32 = 8;
const CAPTION_HEIGHT: u32 = GLYPH_SIZE + 6;
pub(crate) const HEADER_HEIGHT: u32 = GLYPH_SIZE + 12;

/// Returns the pixel size of the contact sheet that [`contact_sheet_with`] draws with
/// `layout`. The size does not depend on how many pages the cluster has.
pub fn contact_sheet_size(layout: &SheetLayout) -> (u32, u32) {
    let width = MARGIN + layout.columns * (layout.cell_width + MARGIN);
    let height = HEADER_HEIGHT + MARGIN + layout.rows * (layout.cell_height + CAPTION_HEIGHT + MARGIN);
    (width, height)
}

/// Draws the cluster's most typical pages (nearest the centroid first) with the default
/// [`SheetLayout`] and returns PNG bytes.
pub fn contact_sheet(
    cluster: &ClusterInfo,
    thumbnails: &dyn Fn(&str, u32) -> Option<GrayImage>,
) -> Result<Vec<u8>, ClusterError> {
    contact_sheet_with(cluster, thumbnails, &SheetLayout::default())
}

/// Draws the first `columns * rows` members of the cluster, in member order (nearest the
/// centroid first), each captioned with its rank, document and page. A page whose thumbnail
/// is `None` is drawn as a crossed box. Returns PNG bytes.
pub fn contact_sheet_with(
    cluster: &ClusterInfo,
    thumbnails: &dyn Fn(&str, u32) -> Option<GrayImage>,
    layout: &SheetLayout,
) -> Result<Vec<u8>, ClusterError> {
    let (width, height) = contact_sheet_size(layout);
    let mut sheet = GrayImage::from_pixel(width, height, Luma([255]));
    let header = format!(
        "cluster {}: {} pages, {} documents",
        cluster.id, cluster.page_count, cluster.document_count
    );
    draw_text(&mut sheet, MARGIN, 6, &header, Luma([0]));

    let cells = (layout.columns * layout.rows) as usize;
    for (rank, page) in cluster.members.iter().take(cells).enumerate() {
        let column = rank as u32 % layout.columns;
        let row = rank as u32 / layout.columns;
        let left = MARGIN + column * (layout.cell_width + MARGIN);
        let top = HEADER_HEIGHT + MARGIN + row * (layout.cell_height + CAPTION_HEIGHT + MARGIN);

        match thumbnails(&page.document, page.page) {
            Some(thumbnail) if thumbnail.width() > 0 && thumbnail.height() > 0 => {
                let fitted = fit_inside(&thumbnail, layout.cell_width, layout.cell_height);
                let x = left + (layout.cell_width - fitted.width()) / 2;
                let y = top + (layout.cell_height - fitted.height()) / 2;
                image::imageops::overlay(&mut sheet, &fitted, i64::from(x), i64::from(y));
            }
            _ => draw_missing(&mut sheet, left, top, layout.cell_width, layout.cell_height),
        }
        draw_rectangle_outline(&mut sheet, left, top, layout.cell_width, layout.cell_height, Luma([160]));

        let caption = format!("{} p{} {}", rank + 1, page.page, page.document);
        let max_chars = (layout.cell_width / GLYPH_SIZE) as usize;
        draw_text(&mut sheet, left, top + layout.cell_height + 3, &keep_tail(&caption, max_chars, rank + 1, page.page), Luma([0]));
    }
    encode_png_gray(&sheet)
}

/// Returns the caption cut to `max_chars`, keeping rank, page and the end of the document
/// key, because the file name at the end distinguishes documents better than the folders.
fn keep_tail(caption: &str, max_chars: usize, rank: usize, page: u32) -> String {
    if caption.chars().count() <= max_chars {
        return caption.to_string();
    }
    let prefix = format!("{rank} p{page} ..");
    let document_chars = max_chars.saturating_sub(prefix.len());
    let tail: String = {
        let chars: Vec<char> = caption.chars().collect();
        chars[chars.len() - document_chars.min(chars.len())..].iter().collect()
    };
    format!("{prefix}{tail}")
}

fn fit_inside(thumbnail: &GrayImage, width: u32, height: u32) -> GrayImage {
    let scale = (f64::from(width) / f64::from(thumbnail.width())).min(f64::from(height) / f64::from(thumbnail.height()));
    let new_width = ((f64::from(thumbnail.width()) * scale).round() as u32).clamp(1, width);
    let new_height = ((f64::from(thumbnail.height()) * scale).round() as u32).clamp(1, height);
    resize(thumbnail, new_width, new_height, FilterType::Triangle)
}

fn draw_missing(sheet: &mut GrayImage, left: u32, top: u32, width: u32, height: u32) {
    let steps = width.max(height);
    for step in 0..steps {
        let x = left + step * (width - 1) / steps.max(1);
        let y_down = top + step * (height - 1) / steps.max(1);
        let y_up = top + (height - 1) - step * (height - 1) / steps.max(1);
        sheet.put_pixel(x, y_down, Luma([160]));
        sheet.put_pixel(x, y_up, Luma([160]));
    }
}

pub(crate) fn draw_rectangle_outline<P: image::Pixel>(
    sheet: &mut image::ImageBuffer<P, Vec<P::Subpixel>>,
    left: u32,
    top: u32,
    width: u32,
    height: u32,
    colour: P,
) {
    for x in left..left + width {
        sheet.put_pixel(x, top, colour);
        sheet.put_pixel(x, top + height - 1, colour);
    }
    for y in top..top + height {
        sheet.put_pixel(left, y, colour);
        sheet.put_pixel(left + width - 1, y, colour);
    }
}

/// Draws ASCII text with its top-left corner at (`left`, `top`); other characters are drawn
/// as `?`, and text past the right edge is clipped.
pub(crate) fn draw_text<P: image::Pixel>(image: &mut image::ImageBuffer<P, Vec<P::Subpixel>>, left: u32, top: u32, text: &str, colour: P) {
    for (index, character) in text.chars().enumerate() {
        let code = if character.is_ascii() && !character.is_ascii_control() { character as usize } else { '?' as usize };
        let glyph = font8x8::legacy::BASIC_LEGACY[code];
        let glyph_left = left + index as u32 * GLYPH_SIZE;
        for (row, bits) in glyph.iter().enumerate() {
            for column in 0..GLYPH_SIZE {
                if bits & (1 << column) == 0 {
                    continue;
                }
                let (x, y) = (glyph_left + column, top + row as u32);
                if x < image.width() && y < image.height() {
                    image.put_pixel(x, y, colour);
                }
            }
        }
    }
}

/// Draws ASCII text turned 90 degrees counter-clockwise, so it reads from bottom to top, with
/// the bottom-left corner of its first glyph at (`left`, `bottom`). Text past the top edge
/// is clipped.
pub(crate) fn draw_text_up<P: image::Pixel>(
    image: &mut image::ImageBuffer<P, Vec<P::Subpixel>>,
    left: u32,
    bottom: u32,
    text: &str,
    colour: P,
) {
    for (index, character) in text.chars().enumerate() {
        let code = if character.is_ascii() && !character.is_ascii_control() { character as usize } else { '?' as usize };
        let glyph = font8x8::legacy::BASIC_LEGACY[code];
        let glyph_bottom = i64::from(bottom) - i64::from(index as u32 * GLYPH_SIZE);
        for (row, bits) in glyph.iter().enumerate() {
            for column in 0..GLYPH_SIZE {
                if bits & (1 << column) == 0 {
                    continue;
                }
                // Turning counter-clockwise maps glyph column to height and glyph row to x.
                let x = i64::from(left) + row as i64;
                let y = glyph_bottom - i64::from(column);
                if x >= 0 && y >= 0 && (x as u32) < image.width() && (y as u32) < image.height() {
                    image.put_pixel(x as u32, y as u32, colour);
                }
            }
        }
    }
}

fn encode_png_gray(image: &GrayImage) -> Result<Vec<u8>, ClusterError> {
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)?;
    Ok(bytes)
}

pub(crate) fn encode_png_rgb(image: &RgbImage) -> Result<Vec<u8>, ClusterError> {
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)?;
    Ok(bytes)
}
