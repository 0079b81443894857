//! Core format tests on the committed fixtures (see samples/NOTICE.md at the repository root), so
//! they run on a fresh checkout without the shared data folder.

mod common;

use image::DynamicImage;

use common::{decode_ok, fixtures_dir};

fn black_fraction(image: &DynamicImage) -> f64 {
    let gray = image.to_luma8();
    let black = gray.as_raw().iter().filter(|&&v| v < 128).count();
    black as f64 / gray.as_raw().len() as f64
}

/// Asserts that a page has some ink but is mostly paper, which an inverted or blank
/// decode is not.
fn assert_looks_like_text_page(image: &DynamicImage, name: &str) {
    let fraction = black_fraction(image);
    assert!(fraction > 0.001, "{name}: only {fraction:.4} of pixels are black");
    assert!(fraction < 0.5, "{name}: {fraction:.4} of pixels are black, decode looks inverted");
}

#[test]
fn group3_one_dimensional_without_eol() {
    let pages = decode_ok(&fixtures_dir().join("fax-tiff/libtiff/testfax3_bug54_1dnoEOL.tif"));
    assert_eq!(pages.len(), 1);
    assert_eq!((pages[0].source_width, pages[0].source_height), (1728, 2320));
    assert!(matches!(pages[0].image, DynamicImage::ImageLuma8(_)));
    assert_looks_like_text_page(&pages[0].image, "testfax3_bug54_1dnoEOL.tif");
}

#[test]
fn group3_two_dimensional_fill_order_2_fax_resolution() {
    for name in ["fax-tiff/libtiffpic/fax2d.tif", "fax-tiff/libtiffpic/g3test.tif"] {
        let pages = decode_ok(&fixtures_dir().join(name));
        assert_eq!(pages.len(), 1, "{name}");
        let page = &pages[0];
        assert_eq!(page.dpi, Some((204.0, 98.0)), "{name}");
        // 98 dpi rows are stretched to 204 dpi.
        let expected_height = (f64::from(page.source_height) * 204.0 / 98.0).round() as u32;
        assert_eq!(page.image.width(), page.source_width, "{name}");
        assert_eq!(page.image.height(), expected_height, "{name}");
        assert_looks_like_text_page(&page.image, name);
    }
}

#[test]
fn group3_multi_page() {
    let pages = decode_ok(&fixtures_dir().join("fax-tiff/pillow/total-pages-zero.tif"));
    assert_eq!(pages.len(), 3);
    for (index, page) in pages.iter().enumerate() {
        assert_eq!(page.number, index as u32 + 1);
        assert_looks_like_text_page(&page.image, "total-pages-zero.tif");
    }
}

#[test]
fn group4_multi_page_numbers_pages() {
    let bytes: std::sync::Arc<[u8]> = std::fs::read(fixtures_dir().join("fax-tiff/pillow/g4-multi.tiff")).unwrap().into();
    let pages = folio_pages::open("g4-multi.tiff", bytes, &folio_pages::Limits::default()).unwrap();
    assert_eq!(pages.format(), folio_pages::Format::Tiff);
    let pages: Vec<_> = pages.map(|page| page.unwrap()).collect();
    assert_eq!(pages.iter().map(|page| page.number).collect::<Vec<_>>(), vec![1, 2, 3]);
    assert_eq!((pages[0].source_width, pages[0].source_height), (3307, 4677));
}

#[test]
fn group4_single_pages() {
    for name in [
        "fax-tiff/libtiff/testfax4.tiff",
        "fax-tiff/pillow/pport_g4.tif",
        "misc-scans/tesseract-test/8071_093.3B.tif",
        "misc-scans/tesseract-test/8087_054.3B.tif",
    ] {
        let pages = decode_ok(&fixtures_dir().join(name));
        assert_eq!(pages.len(), 1, "{name}");
        assert!(matches!(pages[0].image, DynamicImage::ImageLuma8(_)), "{name}");
        assert_looks_like_text_page(&pages[0].image, name);
    }
}

#[test]
fn uncompressed_bilevel_pages() {
    for (name, size) in [("misc-scans/tesseract-test/eurotext.tif", (1024, 800)), ("misc-scans/tesseract-test/phototest.tif", (640, 480))] {
        let pages = decode_ok(&fixtures_dir().join(name));
        assert_eq!(pages.len(), 1, "{name}");
        assert_eq!((pages[0].image.width(), pages[0].image.height()), size, "{name}");
        assert_looks_like_text_page(&pages[0].image, name);
    }
}

#[test]
fn pdf_ccitt_jbig2_pages_agree() {
    let ccitt = decode_ok(&fixtures_dir().join("scanned-pdf/ocrmypdf/ccitt.pdf"));
    let jbig2 = decode_ok(&fixtures_dir().join("scanned-pdf/ocrmypdf/jbig2.pdf"));
    let linn = decode_ok(&fixtures_dir().join("scanned-pdf/ocrmypdf/linn.pdf"));
    for (name, pages) in [("ccitt.pdf", &ccitt), ("jbig2.pdf", &jbig2), ("linn.pdf", &linn)] {
        assert_eq!(pages.len(), 1, "{name}");
        assert_eq!((pages[0].image.width(), pages[0].image.height()), (2550, 3300), "{name}");
        assert!(matches!(pages[0].image, DynamicImage::ImageLuma8(_)), "{name}");
        let (x_dpi, y_dpi) = pages[0].dpi.expect("PDF page dpi");
        assert!((x_dpi - 300.0).abs() < 1.0, "{name}: x dpi {x_dpi}");
        assert!((y_dpi - 300.0).abs() < 1.0, "{name}: y dpi {y_dpi}");
        assert_looks_like_text_page(&pages[0].image, name);
    }
    // The same scanned page stored as CCITT (lossless) and JBIG2, whose symbol coding
    // may replace similar glyphs, so a small share of pixels may differ.
    let differing = ccitt[0].image.to_luma8().as_raw().iter().zip(jbig2[0].image.to_luma8().as_raw()).filter(|(a, b)| a != b).count();
    println!("ccitt.pdf against jbig2.pdf: {differing} pixels differ");
    let total = 2550 * 3300;
    assert!(differing * 100 < total, "{differing} of {total} pixels differ");
}

#[test]
fn pdf_jpeg_and_multi_page() {
    let book = decode_ok(&fixtures_dir().join("scanned-pdf/ocrmypdf/c02-22.pdf"));
    assert_eq!(book.len(), 1);
    assert_eq!((book[0].image.width(), book[0].image.height()), (800, 981));

    let cardinal = decode_ok(&fixtures_dir().join("scanned-pdf/ocrmypdf/cardinal.pdf"));
    assert_eq!(cardinal.len(), 4);
    for page in &cardinal {
        assert_looks_like_text_page(&page.image, "cardinal.pdf");
    }
}
