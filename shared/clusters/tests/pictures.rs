//! Contact sheets, maps and the HTML report, decoded and checked on disk.

mod common;

use std::collections::BTreeMap;

use common::{blobs, four_blobs, fresh_folder};
use folio_clusters::{
    ClusterError, ClusterParams, DotStyle, KChoice, MapLayout, ReportPictures, SheetLayout, SummaryIds,
    cluster_colour, contact_sheet, contact_sheet_size, contact_sheet_with, dot_style, map_plot_origin, map_png,
    map_png_with, map_size, report_html, summarise,
};
use image::{GrayImage, Luma};

fn run() -> folio_clusters::ClusterRun {
    let (pages, vectors, _) = blobs(&four_blobs(), 64, 0.05, 21);
    let params = ClusterParams { k: KChoice::Given { k: 4 }, ..ClusterParams::default() };
    let ids = SummaryIds { model_id: "bit".into(), snapshot_id: "snap <1> & \"quoted\"".into() };
    summarise(&pages, vectors.view(), &params, &ids).unwrap()
}

/// Returns a fake scan: a page whose grey level encodes the page number, with a black frame.
fn thumbnail(_document: &str, page: u32) -> Option<GrayImage> {
    let mut image = GrayImage::from_pixel(170, 220, Luma([255 - page as u8 * 40]));
    for x in 0..170 {
        image.put_pixel(x, 0, Luma([0]));
        image.put_pixel(x, 219, Luma([0]));
    }
    Some(image)
}

#[test]
fn contact_sheet_decodes_with_layout_size() {
    let run = run();
    let cluster = &run.summary.clusters[0];
    let png = contact_sheet(cluster, &thumbnail).unwrap();

    let decoded = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap();
    let (width, height) = contact_sheet_size(&SheetLayout::default());
    assert_eq!((decoded.width(), decoded.height()), (width, height));
    assert_eq!((width, height), (840, 874));

    // The first cell shows the scan of the nearest page: its grey level must appear there.
    let gray = decoded.to_luma8();
    let expected = Luma([255 - cluster.members[0].page as u8 * 40]);
    let layout = SheetLayout::default();
    let centre = gray.get_pixel(8 + layout.cell_width / 2, 28 + layout.cell_height / 2);
    assert_eq!(*centre, expected);
}

#[test]
fn contact_sheet_marks_missing_thumbnails() {
    let run = run();
    let cluster = &run.summary.clusters[3];
    let layout = SheetLayout { columns: 2, rows: 1, cell_width: 64, cell_height: 80 };
    let png = contact_sheet_with(cluster, &|_, _| None, &layout).unwrap();

    let gray = image::load_from_memory(&png).unwrap().to_luma8();
    assert_eq!((gray.width(), gray.height()), contact_sheet_size(&layout));
    // Missing pages are crossed boxes: the diagonal of the first cell is grey, not white.
    assert_eq!(*gray.get_pixel(8 + 32, 28 + 40), Luma([160]));
}

#[test]
fn map_png_decodes_with_cluster_colours() {
    let run = run();
    let png = map_png(&run.summary, &run.map_points).unwrap();

    let rgb = image::load_from_memory_with_format(&png, image::ImageFormat::Png).unwrap().to_rgb8();
    assert_eq!((rgb.width(), rgb.height()), map_size(&MapLayout::default()));
    // Look only inside the plot, left of the legend, which shows every colour anyway.
    let layout = MapLayout::default();
    let (plot_left, plot_top) = map_plot_origin();
    let plot_right = plot_left + layout.plot_size;
    let inside_plot = |x: u32, y: u32| x > plot_left && x < plot_right && y > plot_top && y < plot_top + layout.plot_size;
    for cluster in &run.summary.clusters {
        let colour = cluster_colour(cluster.id);
        let plotted = rgb.enumerate_pixels().filter(|(x, y, pixel)| inside_plot(*x, *y) && **pixel == colour).count();
        // 180 pages in a 700-pixel plot get opaque dots of radius 5, about 90 pixels each.
        assert!(plotted >= 49, "only {plotted} pixels of cluster {} in the plot", cluster.id);
    }

    let black = image::Rgb([0, 0, 0]);
    let legend_has_text = rgb.enumerate_pixels().any(|(x, _, pixel)| x > plot_right + 32 && *pixel == black);
    assert!(legend_has_text, "legend has no text");
    let y_axis_has_text = rgb.enumerate_pixels().any(|(x, y, pixel)| x < plot_left && y > plot_top && *pixel == black);
    assert!(y_axis_has_text, "the PC2 axis has no label");
    let below_plot = plot_top + layout.plot_size + 4;
    let x_axis_has_text = rgb.enumerate_pixels().any(|(x, y, pixel)| x < plot_right && y > below_plot && *pixel == black);
    assert!(x_axis_has_text, "the PC1 axis has no label");
}

#[test]
fn dot_style_shrinks_with_page_count() {
    let few = dot_style(200, 700);
    let many = dot_style(100_000, 700);
    assert_eq!(few, DotStyle { radius: 5, opacity: 1.0 });
    assert_eq!(many.radius, 1);
    assert!(many.opacity < 0.5, "opacity {} at 100 000 pages", many.opacity);
    assert!(many.opacity >= 0.25);
    for pages in [1, 10, 1_000, 10_000, 1_000_000] {
        let style = dot_style(pages, 700);
        assert!((1..=5).contains(&style.radius), "radius {} at {pages} pages", style.radius);
        assert!(style.opacity > 0.0, "opacity {} at {pages} pages", style.opacity);
        assert!(style.opacity <= 1.0, "opacity {} at {pages} pages", style.opacity);
    }
}

#[test]
fn map_png_rejects_points_of_another_run() {
    let run = run();
    let error = map_png_with(&run.summary, &run.map_points[1..], &MapLayout::default()).unwrap_err();
    assert!(matches!(error, ClusterError::MapPointCountMismatch { .. }), "{error}");

    let mut points = run.map_points.clone();
    points[7].cluster = 9;
    let error = map_png(&run.summary, &points).unwrap_err();
    assert!(matches!(error, ClusterError::UnknownCluster { index: 7, cluster: 9 }), "{error}");
}

#[test]
fn report_html_references_only_existing_files() {
    let run = run();
    let folder = fresh_folder("report");
    let mut pictures = ReportPictures { map: Some("map.png".into()), contact_sheets: BTreeMap::new() };
    std::fs::write(folder.join("map.png"), map_png(&run.summary, &run.map_points).unwrap()).unwrap();
    std::fs::create_dir_all(folder.join("sheets")).unwrap();
    for cluster in &run.summary.clusters {
        let name = format!("sheets/cluster {}.png", cluster.id);
        std::fs::write(folder.join(&name), contact_sheet(cluster, &thumbnail).unwrap()).unwrap();
        pictures.contact_sheets.insert(cluster.id, name);
    }
    let html = report_html(&run.summary, &pictures);
    std::fs::write(folder.join("index.html"), &html).unwrap();

    let references = attribute_values(&html, "src=\"")
        .into_iter()
        .chain(attribute_values(&html, "href=\""))
        .collect::<Vec<_>>();
    assert_eq!(references.iter().filter(|r| r.ends_with(".png")).count(), 5);
    for reference in references {
        if let Some(anchor) = reference.strip_prefix('#') {
            assert!(html.contains(&format!("id=\"{anchor}\"")), "anchor {anchor} has no target");
            continue;
        }
        assert!(!reference.contains("://"), "not a relative path: {reference}");
        assert!(!reference.starts_with('/'), "not a relative path: {reference}");
        let path = folder.join(reference.replace("%20", " "));
        assert!(path.is_file(), "referenced file missing: {}", path.display());
    }

    // The snapshot id is escaped, and the page has no external assets: its only script is
    // the inline image check.
    assert!(html.contains("snap &lt;1&gt; &amp; &quot;quoted&quot;"));
    assert_eq!(html.matches("<script").count(), 1);
    assert!(html.contains("<script>\n"), "the image check must be inline");
    assert!(html.contains("id=\"image-status\""));
    assert!(!html.contains("http"));
    for cluster in &run.summary.clusters {
        assert!(html.contains(&format!("id=\"cluster-{}\"", cluster.id)));
    }
}

#[test]
fn report_html_states_sampled_fit() {
    let (pages, vectors, _) = blobs(&four_blobs(), 64, 0.05, 22);
    let params = ClusterParams { k: KChoice::Given { k: 4 }, sample_size_limit: 60, ..ClusterParams::default() };
    let ids = SummaryIds { model_id: "bit".into(), snapshot_id: "sampled".into() };
    let run = summarise(&pages, vectors.view(), &params, &ids).unwrap();
    let html = report_html(&run.summary, &ReportPictures::default());

    assert!(run.summary.sampled);
    assert!(
        html.contains("a seeded sample of 60 of 180 pages; every page was then assigned to its nearest centroid"),
        "the report does not state the sampled fit"
    );
}

fn attribute_values(html: &str, prefix: &str) -> Vec<String> {
    html.match_indices(prefix)
        .map(|(start, _)| {
            let rest = &html[start + prefix.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}
