//! Pictures: a contact sheet of a cluster's most typical pages and a 2-D map of all pages.
//!
//! Text is drawn with the public-domain 8x8 bitmap font of `font8x8`, so no system font is
//! needed and the output does not depend on the machine.

use std::io::Cursor;

use image::imageops::{FilterType, resize};
use image::{GrayImage, ImageFormat, Luma, Rgb, RgbImage};

use crate::cluster::MapPoint;
use crate::error::ClusterError;
use crate::summary::{ClusterInfo, ClusterSummary};

const GLYPH_SIZE: u32 = 8;

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

/// Size of a map image in pixels.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapLayout {
    /// Side of the square plot area.
    pub plot_size: u32,
    /// Width of the legend column right of the plot.
    pub legend_width: u32,
}

impl Default for MapLayout {
    fn default() -> Self {
        Self { plot_size: 700, legend_width: 220 }
    }
}

const MARGIN: u32 = 8;
const CAPTION_HEIGHT: u32 = GLYPH_SIZE + 6;
const HEADER_HEIGHT: u32 = GLYPH_SIZE + 12;

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

fn draw_rectangle_outline<P: image::Pixel>(
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

/// Returns the pixel size of the map that [`map_png_with`] draws with `layout`.
pub fn map_size(layout: &MapLayout) -> (u32, u32) {
    (layout.plot_size + layout.legend_width + 3 * MARGIN, layout.plot_size + HEADER_HEIGHT + 2 * MARGIN)
}

/// Draws every page at its first two principal components, coloured by cluster, with a
/// legend, using the default [`MapLayout`]. Returns PNG bytes.
pub fn map_png(summary: &ClusterSummary, points: &[MapPoint]) -> Result<Vec<u8>, ClusterError> {
    map_png_with(summary, points, &MapLayout::default())
}

/// Draws the map with `layout`; `points` are the ones returned with `summary`.
pub fn map_png_with(summary: &ClusterSummary, points: &[MapPoint], layout: &MapLayout) -> Result<Vec<u8>, ClusterError> {
    if points.len() != summary.page_count {
        return Err(ClusterError::MapPointCountMismatch { points: points.len(), pages: summary.page_count });
    }
    if let Some((index, point)) =
        points.iter().enumerate().find(|(_, point)| point.cluster as usize >= summary.clusters.len())
    {
        return Err(ClusterError::UnknownCluster { index, cluster: point.cluster });
    }

    let (width, height) = map_size(layout);
    let mut map = RgbImage::from_pixel(width, height, Rgb([255, 255, 255]));
    let title = format!("{} pages, {} clusters, PC1 across, PC2 up", summary.page_count, summary.clusters.len());
    draw_text(&mut map, MARGIN, 6, &title, Rgb([0, 0, 0]));

    let plot_left = MARGIN;
    let plot_top = HEADER_HEIGHT + MARGIN;
    let plot = layout.plot_size;
    draw_rectangle_outline(&mut map, plot_left, plot_top, plot, plot, Rgb([180, 180, 180]));

    let (min_x, max_x) = bounds(points.iter().map(|point| point.x));
    let (min_y, max_y) = bounds(points.iter().map(|point| point.y));
    // Keep a 3-pixel border inside the frame so that points at the extremes stay visible.
    let usable = f64::from(plot.saturating_sub(8).max(1));
    let scale_x = usable / (max_x - min_x).max(f64::EPSILON);
    let scale_y = usable / (max_y - min_y).max(f64::EPSILON);
    for point in points {
        let x = plot_left + 4 + ((f64::from(point.x) - min_x) * scale_x) as u32;
        let y = plot_top + 4 + (usable - (f64::from(point.y) - min_y) * scale_y) as u32;
        let colour = cluster_colour(point.cluster);
        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
            map.put_pixel(x + dx - 1, y + dy - 1, colour);
        }
    }

    let legend_left = plot_left + plot + 2 * MARGIN;
    let row_height = GLYPH_SIZE + 6;
    let legend_rows = (plot / row_height) as usize;
    for (row, cluster) in summary.clusters.iter().enumerate() {
        let top = plot_top + row as u32 * row_height;
        if row + 1 == legend_rows && summary.clusters.len() > legend_rows {
            let more = format!("+{} more clusters", summary.clusters.len() - row);
            draw_text(&mut map, legend_left, top, &more, Rgb([0, 0, 0]));
            break;
        }
        let colour = cluster_colour(cluster.id);
        for y in top..top + GLYPH_SIZE {
            for x in legend_left..legend_left + GLYPH_SIZE {
                map.put_pixel(x, y, colour);
            }
        }
        let label = format!("cluster {}: {} pages", cluster.id, cluster.page_count);
        draw_text(&mut map, legend_left + GLYPH_SIZE + 6, top, &label, Rgb([0, 0, 0]));
    }
    encode_png_rgb(&map)
}

fn bounds(values: impl Iterator<Item = f32>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), value| {
        (low.min(f64::from(value)), high.max(f64::from(value)))
    })
}

/// Colour of a cluster: the 20 colours of matplotlib's `tab20` palette reordered so that
/// neighbouring ids differ strongly, then golden-ratio hues for higher ids.
pub fn cluster_colour(cluster: u32) -> Rgb<u8> {
    const PALETTE: [[u8; 3]; 20] = [
        [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
        [140, 86, 75], [227, 119, 194], [127, 127, 127], [188, 189, 34], [23, 190, 207],
        [174, 199, 232], [255, 187, 120], [152, 223, 138], [255, 152, 150], [197, 176, 213],
        [196, 156, 148], [247, 182, 210], [199, 199, 199], [219, 219, 141], [158, 218, 229],
    ];
    if let Some(colour) = PALETTE.get(cluster as usize) {
        return Rgb(*colour);
    }
    let hue = (f64::from(cluster) * 0.618_033_988_75).fract() * 6.0;
    let sector = hue.floor() as u32;
    let rising = (hue.fract() * 200.0) as u8 + 30;
    let falling = 230 - (hue.fract() * 200.0) as u8;
    let (red, green, blue) = match sector {
        0 => (230, rising, 30),
        1 => (falling, 230, 30),
        2 => (30, 230, rising),
        3 => (30, falling, 230),
        4 => (rising, 30, 230),
        _ => (230, 30, falling),
    };
    Rgb([red, green, blue])
}

/// Draws ASCII text with its top-left corner at (`left`, `top`); other characters are drawn
/// as `?`, and text past the right edge is clipped.
fn draw_text<P: image::Pixel>(image: &mut image::ImageBuffer<P, Vec<P::Subpixel>>, left: u32, top: u32, text: &str, colour: P) {
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

fn encode_png_gray(image: &GrayImage) -> Result<Vec<u8>, ClusterError> {
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)?;
    Ok(bytes)
}

fn encode_png_rgb(image: &RgbImage) -> Result<Vec<u8>, ClusterError> {
    let mut bytes = Vec::new();
    image.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png)?;
    Ok(bytes)
}
