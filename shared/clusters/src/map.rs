//! The 2-D map: every page at its first two principal components, coloured by cluster, with
//! labelled axes and a legend of cluster ids and sizes.

use image::{Rgb, RgbImage};

use crate::cluster::MapPoint;
use crate::draw::{GLYPH_SIZE, HEADER_HEIGHT, MARGIN, draw_rectangle_outline, draw_text, draw_text_up, encode_png_rgb};
use crate::error::ClusterError;
use crate::summary::ClusterSummary;

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
        Self { plot_size: 700, legend_width: 240 }
    }
}

/// Width left of the plot for the PC2 label and the tick labels (up to 7 characters).
const AXIS_LEFT: u32 = MARGIN + GLYPH_SIZE + 6 + 7 * GLYPH_SIZE + 6;
/// Height below the plot for the tick labels and the PC1 label.
const AXIS_BOTTOM: u32 = 6 + GLYPH_SIZE + 6 + GLYPH_SIZE + 4;
const TICK_LENGTH: u32 = 4;
/// Empty pixels kept inside the frame, so that the largest dots at the extremes stay inside.
const PLOT_PADDING: u32 = 8;
const LEGEND_ROW_HEIGHT: u32 = GLYPH_SIZE + 6;
const AXIS_COLOUR: Rgb<u8> = Rgb([90, 90, 90]);
const TEXT_COLOUR: Rgb<u8> = Rgb([0, 0, 0]);

/// Returns the pixel size of the map that [`map_png_with`] draws with `layout`.
pub fn map_size(layout: &MapLayout) -> (u32, u32) {
    let width = AXIS_LEFT + layout.plot_size + 2 * MARGIN + layout.legend_width + MARGIN;
    let height = HEADER_HEIGHT + MARGIN + layout.plot_size + AXIS_BOTTOM + MARGIN;
    (width, height)
}

/// Returns the left and top pixel of the plot frame in a map drawn with any [`MapLayout`].
pub fn map_plot_origin() -> (u32, u32) {
    (AXIS_LEFT, HEADER_HEIGHT + MARGIN)
}

/// Draws every page at its first two principal components, coloured by cluster, with a
/// legend, using the default [`MapLayout`]. Returns PNG bytes.
pub fn map_png(summary: &ClusterSummary, points: &[MapPoint]) -> Result<Vec<u8>, ClusterError> {
    map_png_with(summary, points, &MapLayout::default())
}

/// Draws the map with `layout`; `points` are the ones returned with `summary`.
///
/// Dots shrink and turn translucent as pages get denser (see [`dot_style`]), so a map of a
/// few hundred pages shows each page while one of 100 000 pages still shows where pages
/// crowd. Larger clusters are drawn first, so the dots of small clusters stay on top.
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
    let title = format!(
        "{} pages in {} clusters at their first two principal components",
        summary.page_count,
        summary.clusters.len()
    );
    draw_text(&mut map, MARGIN, 6, &title, TEXT_COLOUR);

    let (plot_left, plot_top) = map_plot_origin();
    let plot = layout.plot_size;
    draw_rectangle_outline(&mut map, plot_left, plot_top, plot, plot, AXIS_COLOUR);

    let x_axis = Axis::fit(points.iter().map(|point| point.x), plot);
    let y_axis = Axis::fit(points.iter().map(|point| point.y), plot);
    draw_axes(&mut map, &x_axis, &y_axis, plot);

    let style = dot_style(points.len(), plot);
    let mut drawing_order: Vec<&MapPoint> = points.iter().collect();
    drawing_order.sort_by_key(|point| point.cluster);
    for point in drawing_order {
        let x = plot_left + x_axis.pixel(point.x);
        let y = plot_top + plot - 1 - y_axis.pixel(point.y);
        draw_dot(&mut map, x, y, &style, cluster_colour(point.cluster));
    }

    draw_legend(&mut map, summary, plot_left + plot + 2 * MARGIN, plot_top, plot, &style);
    encode_png_rgb(&map)
}

/// Radius and opacity of the map's dots.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DotStyle {
    /// Radius in pixels; 0 is a single pixel.
    pub radius: u32,
    /// Opacity in (0, 1], blended over what is already drawn.
    pub opacity: f32,
}

/// Chooses the dot size from the plot area per page: about a sixth of the spacing that pages
/// would have if spread evenly, between 1 and 5 pixels of radius. Opacity falls once a dot
/// covers more than about half of that area, down to 0.25, so crowded regions darken
/// instead of turning into one flat colour.
pub fn dot_style(page_count: usize, plot_size: u32) -> DotStyle {
    let area_per_page = f64::from(plot_size).powi(2) / page_count.max(1) as f64;
    let radius = (area_per_page.sqrt() / 6.0).round().clamp(1.0, 5.0) as u32;
    let dot_area = disc_offsets(radius).len() as f64;
    let opacity = (area_per_page / (2.0 * dot_area)).clamp(0.25, 1.0) as f32;
    DotStyle { radius, opacity }
}

/// Pixel offsets of a filled disc; `r² + r` keeps small discs round rather than square or
/// diamond-shaped.
fn disc_offsets(radius: u32) -> Vec<(i64, i64)> {
    let radius = i64::from(radius);
    let mut offsets = Vec::new();
    for dy in -radius..=radius {
        for dx in -radius..=radius {
            if dx * dx + dy * dy <= radius * radius + radius {
                offsets.push((dx, dy));
            }
        }
    }
    offsets
}

fn draw_dot(map: &mut RgbImage, x: u32, y: u32, style: &DotStyle, colour: Rgb<u8>) {
    for (dx, dy) in disc_offsets(style.radius) {
        let (px, py) = (i64::from(x) + dx, i64::from(y) + dy);
        if px < 0 || py < 0 || px >= i64::from(map.width()) || py >= i64::from(map.height()) {
            continue;
        }
        let pixel = map.get_pixel_mut(px as u32, py as u32);
        for channel in 0..3 {
            let blended = f32::from(pixel[channel]) * (1.0 - style.opacity) + f32::from(colour[channel]) * style.opacity;
            pixel[channel] = blended.round() as u8;
        }
    }
}

/// Linear map from data values to pixels inside the plot frame, and its tick marks.
struct Axis {
    min: f64,
    scale: f64,
    ticks: Vec<f64>,
    /// Digits after the decimal point in tick labels.
    decimals: usize,
}

impl Axis {
    fn fit(values: impl Iterator<Item = f32>, plot: u32) -> Self {
        let (mut min, mut max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(low, high), value| {
            (low.min(f64::from(value)), high.max(f64::from(value)))
        });
        if !min.is_finite() || !max.is_finite() {
            (min, max) = (0.0, 1.0);
        }
        if max - min < 1e-9 {
            // All pages share one coordinate: centre them in a unit-wide range.
            (min, max) = (min - 0.5, max + 0.5);
        }
        let usable = f64::from(plot.saturating_sub(2 * PLOT_PADDING).max(1));
        let step = nice_step((max - min) / 6.0);
        let first = (min / step).ceil() as i64;
        let last = (max / step).floor() as i64;
        let ticks = (first..=last).map(|index| index as f64 * step).collect();
        let decimals = (-step.log10().floor()).max(0.0) as usize;
        Axis { min, scale: usable / (max - min), ticks, decimals }
    }

    /// Returns the pixel offset of `value` from the frame's low edge.
    fn pixel(&self, value: f32) -> u32 {
        PLOT_PADDING + ((f64::from(value) - self.min) * self.scale).round().max(0.0) as u32
    }

    fn label(&self, value: f64) -> String {
        // Avoid printing "-0.0" for a tick at zero.
        let value = if value.abs() < 1e-12 { 0.0 } else { value };
        format!("{value:.prec$}", prec = self.decimals)
    }
}

/// Returns 1, 2 or 5 times a power of ten, the smallest at or above `rough`.
fn nice_step(rough: f64) -> f64 {
    let power = 10_f64.powf(rough.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|factor| factor * power).find(|step| *step >= rough).unwrap_or(10.0 * power)
}

fn draw_axes(map: &mut RgbImage, x_axis: &Axis, y_axis: &Axis, plot: u32) {
    let (plot_left, plot_top) = map_plot_origin();
    let plot_bottom = plot_top + plot - 1;

    for &tick in &x_axis.ticks {
        let x = plot_left + x_axis.pixel(tick as f32);
        for y in plot_bottom + 1..=plot_bottom + TICK_LENGTH {
            map.put_pixel(x, y, AXIS_COLOUR);
        }
        let label = x_axis.label(tick);
        let label_left = x.saturating_sub(label.len() as u32 * GLYPH_SIZE / 2);
        draw_text(map, label_left, plot_bottom + TICK_LENGTH + 3, &label, TEXT_COLOUR);
    }
    let x_title = "PC1 (first principal component)";
    let x_title_left = plot_left + plot / 2 - x_title.len() as u32 * GLYPH_SIZE / 2;
    draw_text(map, x_title_left, plot_bottom + TICK_LENGTH + 3 + GLYPH_SIZE + 6, x_title, TEXT_COLOUR);

    for &tick in &y_axis.ticks {
        let y = plot_bottom - y_axis.pixel(tick as f32);
        for x in plot_left - TICK_LENGTH..plot_left {
            map.put_pixel(x, y, AXIS_COLOUR);
        }
        let label = y_axis.label(tick);
        let label_left = plot_left.saturating_sub(TICK_LENGTH + 3 + label.len() as u32 * GLYPH_SIZE);
        draw_text(map, label_left, y.saturating_sub(GLYPH_SIZE / 2), &label, TEXT_COLOUR);
    }
    let y_title = "PC2 (second principal component)";
    let y_title_bottom = plot_top + plot / 2 + y_title.len() as u32 * GLYPH_SIZE / 2;
    draw_text_up(map, MARGIN, y_title_bottom, y_title, TEXT_COLOUR);
}

/// Lists each cluster's colour, id, page count and share of pages, largest first, as many
/// as fit beside the plot.
fn draw_legend(map: &mut RgbImage, summary: &ClusterSummary, left: u32, top: u32, plot: u32, style: &DotStyle) {
    draw_text(map, left, top, "cluster: pages (share)", TEXT_COLOUR);
    let first_row_top = top + 2 * LEGEND_ROW_HEIGHT;
    let rows = (plot.saturating_sub(3 * LEGEND_ROW_HEIGHT) / LEGEND_ROW_HEIGHT).max(1) as usize;
    let total = summary.page_count.max(1) as f64;

    for (row, cluster) in summary.clusters.iter().enumerate() {
        let row_top = first_row_top + row as u32 * LEGEND_ROW_HEIGHT;
        if row + 1 == rows && summary.clusters.len() > rows {
            let more = format!("+{} smaller clusters", summary.clusters.len() - row);
            draw_text(map, left, row_top, &more, TEXT_COLOUR);
            break;
        }
        let swatch = DotStyle { radius: 4, opacity: 1.0 };
        draw_dot(map, left + 4, row_top + GLYPH_SIZE / 2, &swatch, cluster_colour(cluster.id));
        let share = 100.0 * cluster.page_count as f64 / total;
        let label = format!("{:>3}: {} pages ({share:.1}%)", cluster.id, cluster.page_count);
        draw_text(map, left + GLYPH_SIZE + 8, row_top, &label, TEXT_COLOUR);
    }

    let note = if style.opacity < 1.0 {
        format!("1 dot = 1 page, {:.0}% opaque", style.opacity * 100.0)
    } else {
        "1 dot = 1 page".to_string()
    };
    draw_text(map, left, top + plot - GLYPH_SIZE, &note, AXIS_COLOUR);
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
