//! PDF page composition on small synthetic PDFs written with `pdf-writer`, and on the
//! committed cardinal.pdf, whose landscape pages draw the scan turned by a matrix.

mod common;

use std::io::Write;

use folio_pages::{Limits, Options, PageErrorKind};
use image::{DynamicImage, GrayImage};
use pdf_writer::{Content, Filter, Finish, Name, Pdf, Rect, Ref};

/// An image XObject for a synthetic page: 8-bit gray samples, row 0 at the top.
struct TestImage {
    width: u32,
    height: u32,
    samples: Vec<u8>,
    /// FlateDecode the samples, as scanners writing lossless gray do.
    deflate: bool,
}

impl TestImage {
    fn gray(image: &GrayImage) -> Self {
        Self {
            width: image.width(),
            height: image.height(),
            samples: image.as_raw().clone(),
            deflate: false,
        }
    }
}

fn deflate(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).expect("deflate into memory");
    encoder.finish().expect("deflate into memory")
}

/// Writes a one-page PDF of `width x height` points with the given `/Rotate`, whose
/// resources name the images `/Im0`, `/Im1`, ... and whose content stream is `content`.
fn one_page_pdf(width: f32, height: f32, rotate: i32, images: &[TestImage], content: &[u8]) -> Vec<u8> {
    let (catalog_id, tree_id, page_id, content_id) = (Ref::new(1), Ref::new(2), Ref::new(3), Ref::new(4));
    let image_ids: Vec<Ref> = (0..images.len() as i32).map(|index| Ref::new(10 + index)).collect();
    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id).pages(tree_id);
    pdf.pages(tree_id).kids([page_id]).count(1);

    let mut page = pdf.page(page_id);
    page.parent(tree_id)
        .media_box(Rect::new(0.0, 0.0, width, height))
        .rotate(rotate)
        .contents(content_id);
    let mut resources = page.resources();
    let mut x_objects = resources.x_objects();
    for (index, id) in image_ids.iter().enumerate() {
        x_objects.pair(Name(format!("Im{index}").as_bytes()), *id);
    }
    x_objects.finish();
    resources.finish();
    page.finish();

    for (image, id) in images.iter().zip(&image_ids) {
        let data = if image.deflate { deflate(&image.samples) } else { image.samples.clone() };
        let mut xobject = pdf.image_xobject(*id, &data);
        if image.deflate {
            xobject.filter(Filter::FlateDecode);
        }
        xobject.width(image.width as i32).height(image.height as i32).bits_per_component(8);
        xobject.color_space().device_gray();
        xobject.finish();
    }
    pdf.stream(content_id, content);
    pdf.finish()
}

fn draw_content(draws: &[([f32; 6], &str)]) -> Vec<u8> {
    let mut content = Content::new();
    for (matrix, name) in draws {
        content.save_state().transform(*matrix).x_object(Name(name.as_bytes())).restore_state();
    }
    content.finish().to_vec()
}

fn decode_pages(bytes: Vec<u8>, limits: &Limits) -> Vec<Result<folio_pages::Page, folio_pages::PageError>> {
    folio_pages::open("test.pdf", bytes, limits).expect("open synthetic PDF").collect()
}

fn only_page(bytes: Vec<u8>) -> folio_pages::Page {
    let mut pages = decode_pages(bytes, &Limits::default());
    assert_eq!(pages.len(), 1);
    pages.remove(0).unwrap_or_else(|error| panic!("page failed: {error}"))
}

/// Returns a gray test card whose every pixel differs from its neighbours, so any
/// shift, mirror or turn changes the comparison.
fn test_card(width: u32, height: u32) -> GrayImage {
    GrayImage::from_fn(width, height, |x, y| image::Luma([((x * 7 + y * 13) % 251) as u8]))
}

#[test]
fn pdf_strips_compose_into_one_page() {
    // A 40x60 scan stored as three 40x20 strips, drawn top to bottom on a 40x60 point
    // page at one pixel per point.
    let card = test_card(40, 60);
    let strips: Vec<TestImage> = (0..3)
        .map(|index| TestImage::gray(&image::imageops::crop_imm(&card, 0, index * 20, 40, 20).to_image()))
        .collect();
    let content = draw_content(&[
        ([40.0, 0.0, 0.0, 20.0, 0.0, 40.0], "Im0"),
        ([40.0, 0.0, 0.0, 20.0, 0.0, 20.0], "Im1"),
        ([40.0, 0.0, 0.0, 20.0, 0.0, 0.0], "Im2"),
    ]);
    let page = only_page(one_page_pdf(40.0, 60.0, 0, &strips, &content));
    assert_eq!((page.image.width(), page.image.height()), (40, 60));
    assert_same_pixels(&page.image.to_luma8(), &card, "composed strips");
    assert_eq!(page.dpi, Some((72.0, 72.0)));
}

#[test]
fn pdf_full_page_image_turned_by_matrix() {
    // A landscape page drawing a portrait scan turned 90 degrees counter-clockwise, as
    // Ghostscript writes it: the page shows the scan turned, without resampling.
    let card = test_card(30, 50);
    let content = draw_content(&[([0.0, 30.0, -50.0, 0.0, 50.0, 0.0], "Im0")]);
    let page = only_page(one_page_pdf(50.0, 30.0, 0, &[TestImage::gray(&card)], &content));
    assert_same_pixels(&page.image.to_luma8(), &image::imageops::rotate270(&card), "turned page");
    assert_eq!((page.source_width, page.source_height), (30, 50));
}

#[test]
fn pdf_rotate_applies_after_matrix() {
    let card = test_card(30, 50);
    let content = draw_content(&[([30.0, 0.0, 0.0, 50.0, 0.0, 0.0], "Im0")]);
    let page = only_page(one_page_pdf(30.0, 50.0, 90, &[TestImage::gray(&card)], &content));
    assert_same_pixels(&page.image.to_luma8(), &image::imageops::rotate90(&card), "page with /Rotate 90");
}

#[test]
fn pdf_scaled_image_keeps_white_margin() {
    // A 20x20 pixel image drawn over the 10x10 point square at (5, 5) of a 20x20 point
    // page: the canvas takes the image's 2 pixels per point, so the page is 40x40 with
    // the image in its middle and white paper around it.
    let card = test_card(20, 20);
    let content = draw_content(&[([10.0, 0.0, 0.0, 10.0, 5.0, 5.0], "Im0")]);
    let page = only_page(one_page_pdf(20.0, 20.0, 0, &[TestImage::gray(&card)], &content));
    let gray = page.image.to_luma8();
    assert_eq!(gray.dimensions(), (40, 40));
    assert_same_pixels(&image::imageops::crop_imm(&gray, 10, 10, 20, 20).to_image(), &card, "image inside the margin");
    assert_eq!(gray.get_pixel(0, 0).0, [255]);
    assert_eq!(gray.get_pixel(39, 39).0, [255]);
    assert_eq!(page.dpi, Some((144.0, 144.0)));
}

#[test]
fn pdf_inline_image_is_drawn() {
    // BI /W 4 /H 2 /BPC 8 /CS /G ID <8 bytes> EI, drawn over the whole 4x2 point page.
    let samples = [0u8, 50, 100, 150, 200, 250, 30, 60];
    let mut content = b"q 4 0 0 2 0 0 cm BI /W 4 /H 2 /BPC 8 /CS /G ID ".to_vec();
    content.extend_from_slice(&samples);
    content.extend_from_slice(b"\nEI Q\n");
    let page = only_page(one_page_pdf(4.0, 2.0, 0, &[], &content));
    assert_eq!(page.image.to_luma8().as_raw().as_slice(), &samples);
}

#[test]
fn pdf_text_page_reports_no_image() {
    let content = b"BT /F1 12 Tf 10 10 Td (Hello) Tj ET\n";
    let pages = decode_pages(one_page_pdf(100.0, 100.0, 0, &[], content), &Limits::default());
    let error = pages[0].as_ref().unwrap_err();
    assert!(matches!(error.kind, PageErrorKind::NoImage { operators: 5 }), "{error}");
}

#[test]
fn pdf_missing_xobject_is_corrupt_not_no_image() {
    let content = draw_content(&[([10.0, 0.0, 0.0, 10.0, 0.0, 0.0], "Scan7")]);
    let pages = decode_pages(one_page_pdf(10.0, 10.0, 0, &[], &content), &Limits::default());
    let error = pages[0].as_ref().unwrap_err();
    assert!(matches!(error.kind, PageErrorKind::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("/Scan7"), "{error}");
}

#[test]
fn pdf_flate_bomb_rejected_before_inflating() {
    // Declares 100x100 gray pixels (10 kB) but inflates to 64 MiB.
    let bomb = TestImage { width: 100, height: 100, samples: vec![0; 64 << 20], deflate: true };
    let content = draw_content(&[([10.0, 0.0, 0.0, 10.0, 0.0, 0.0], "Im0")]);
    let pages = decode_pages(one_page_pdf(10.0, 10.0, 0, &[bomb], &content), &Limits::default());
    let error = pages[0].as_ref().unwrap_err();
    assert!(matches!(error.kind, PageErrorKind::Corrupt { .. }), "{error}");
    assert!(error.to_string().contains("decompression bomb"), "{error}");
}

#[test]
fn pdf_flate_image_within_declared_size_decodes() {
    let card = test_card(64, 48);
    let image = TestImage { deflate: true, ..TestImage::gray(&card) };
    let content = draw_content(&[([64.0, 0.0, 0.0, 48.0, 0.0, 0.0], "Im0")]);
    let page = only_page(one_page_pdf(64.0, 48.0, 0, &[image], &content));
    assert_same_pixels(&page.image.to_luma8(), &card, "FlateDecode image");
}

#[test]
fn pdf_content_stream_bomb_rejected() {
    // 32 MiB of spaces in a FlateDecode content stream, against a 1 Mpx page budget.
    let (catalog_id, tree_id, page_id, content_id) = (Ref::new(1), Ref::new(2), Ref::new(3), Ref::new(4));
    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id).pages(tree_id);
    pdf.pages(tree_id).kids([page_id]).count(1);
    pdf.page(page_id).parent(tree_id).media_box(Rect::new(0.0, 0.0, 10.0, 10.0)).contents(content_id);
    pdf.stream(content_id, &deflate(&vec![b' '; 32 << 20])).filter(Filter::FlateDecode);
    let limits = Limits { max_page_pixels: 1_000_000, ..Limits::default() };
    let pages = decode_pages(pdf.finish(), &limits);
    let error = pages[0].as_ref().unwrap_err();
    assert!(
        matches!(error.kind, PageErrorKind::LimitExceeded { limit: 1_000_000, field: "max_page_pixels", .. }),
        "{error}"
    );
}

#[test]
fn pdf_images_over_page_pixel_budget_rejected() {
    // Each image is within the limit, the two together are not.
    let images: Vec<TestImage> = (0..2).map(|_| TestImage::gray(&test_card(100, 60))).collect();
    let content = draw_content(&[
        ([10.0, 0.0, 0.0, 10.0, 0.0, 0.0], "Im0"),
        ([10.0, 0.0, 0.0, 10.0, 0.0, 0.0], "Im1"),
    ]);
    let limits = Limits { max_page_pixels: 10_000, ..Limits::default() };
    let pages = decode_pages(one_page_pdf(10.0, 10.0, 0, &images, &content), &limits);
    let error = pages[0].as_ref().unwrap_err();
    assert!(matches!(error.kind, PageErrorKind::LimitExceeded { value: 12_000, .. }), "{error}");
}

#[test]
fn pdf_cardinal_landscape_pages_turn_the_scan() {
    // cardinal.pdf draws one 2550x3300 JBIG2 scan on four pages through its matrix:
    // upright, turned clockwise onto a landscape page (0 -612 792 0 0 612 cm), upside
    // down, and turned counter-clockwise (0 612 -792 0 792 0 cm).
    let path = common::fixtures_dir().join("scanned-pdf/ocrmypdf/cardinal.pdf");
    let raw = Options { square_pixels: false, apply_orientation: true };
    let pages: Vec<DynamicImage> = common::decode_file(&path, &raw)
        .expect("open cardinal.pdf")
        .into_iter()
        .map(|page| page.expect("cardinal.pdf page").image)
        .collect();
    assert_eq!(pages.len(), 4);
    let upright = pages[0].to_luma8();
    assert_eq!(upright.dimensions(), (2550, 3300));
    assert_same_pixels(&pages[1].to_luma8(), &image::imageops::rotate90(&upright), "page 2");
    assert_same_pixels(&pages[2].to_luma8(), &image::imageops::rotate180(&upright), "page 3");
    assert_same_pixels(&pages[3].to_luma8(), &image::imageops::rotate270(&upright), "page 4");
}

/// Compares two gray images and reports the size or the count of differing pixels,
/// instead of printing both buffers.
fn assert_same_pixels(actual: &GrayImage, expected: &GrayImage, label: &str) {
    assert_eq!(actual.dimensions(), expected.dimensions(), "{label}: size");
    let differing = actual.as_raw().iter().zip(expected.as_raw()).filter(|(a, b)| a != b).count();
    assert_eq!(differing, 0, "{label}: {differing} pixels differ");
}

#[test]
fn pdf_images_covering_page_many_times_rejected() {
    // One 2x2 image drawn over the whole page 40 times: cheap to declare, while each
    // draw visits every canvas pixel.
    let card = test_card(2, 2);
    let draws: Vec<([f32; 6], &str)> = (0..40).map(|_| ([100.0, 0.0, 0.0, 100.0, 0.0, 0.0], "Im0")).collect();
    let pages = decode_pages(one_page_pdf(100.0, 100.0, 0, &[TestImage::gray(&card)], &draw_content(&draws)), &Limits::default());
    let error = pages[0].as_ref().unwrap_err();
    assert!(matches!(error.kind, PageErrorKind::Unsupported { .. }), "{error}");
    assert!(error.to_string().contains("40 times over"), "{error}");
}
