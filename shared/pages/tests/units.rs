//! Format detection, limits and partial-file behaviour.

mod common;

use std::sync::Arc;

use folio_pages::{Format, Limits, PageErrorKind, detect_format, open};

use common::fixtures_dir;

fn fixture(name: &str) -> Arc<[u8]> {
    std::fs::read(fixtures_dir().join(name)).expect("read fixture").into()
}

#[test]
fn detect_format_signatures() {
    assert_eq!(detect_format(b"II*\0\x08\0\0\0"), Some(Format::Tiff));
    assert_eq!(detect_format(b"MM\0*\0\0\0\x08"), Some(Format::Tiff));
    assert_eq!(detect_format(b"II+\0\x08\0\0\0"), Some(Format::Tiff));
    assert_eq!(detect_format(b"\x89PNG\r\n\x1a\n...."), Some(Format::Png));
    assert_eq!(detect_format(&[0xFF, 0xD8, 0xFF, 0xE0]), Some(Format::Jpeg));
    assert_eq!(detect_format(b"%PDF-1.7\n"), Some(Format::Pdf));
    assert_eq!(detect_format(b"junk before the header %PDF-1.4\n"), Some(Format::Pdf));
    assert_eq!(detect_format(b"GIF89a"), None);
    assert_eq!(detect_format(b""), None);
}

#[test]
fn detect_format_ignores_extension() {
    // A TIFF named .pdf is still a TIFF: detection reads bytes only.
    let pages = open("scans/misnamed.pdf", fixture("fax-tiff/pillow/g4-multi.tiff"), &Limits::default()).unwrap();
    assert_eq!(pages.format(), Format::Tiff);
}

#[test]
fn open_unknown_format_is_object_error() {
    let error = open("scans/a.gif", Arc::from(&b"GIF89a\x01\x00"[..]), &Limits::default()).err().unwrap();
    assert_eq!(error.page, None);
    assert!(matches!(error.kind, PageErrorKind::UnknownFormat { .. }));
    assert!(error.to_string().starts_with("scans/a.gif: unknown format"), "{error}");
}

/// Builds a little-endian TIFF with one Group 4 strip of `data` and the given size.
fn ccitt_tiff(width: u32, height: u32, data: &[u8]) -> Vec<u8> {
    let entries: [(u16, u16, u32); 8] = [
        (256, 4, width),
        (257, 4, height),
        (258, 3, 1),
        (259, 3, 4),
        (262, 3, 0),
        (273, 4, 0), // strip offset, patched below
        (278, 4, height),
        (279, 4, data.len() as u32),
    ];
    let ifd_offset = 8u32;
    let data_offset = ifd_offset + 2 + 12 * entries.len() as u32 + 4;
    let mut out = b"II*\0".to_vec();
    out.extend_from_slice(&ifd_offset.to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    for (tag, kind, value) in entries {
        let value = if tag == 273 { data_offset } else { value };
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        if kind == 3 {
            out.extend_from_slice(&(value as u16).to_le_bytes());
            out.extend_from_slice(&[0, 0]);
        } else {
            out.extend_from_slice(&value.to_le_bytes());
        }
    }
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(data);
    out
}

#[test]
fn limits_reject_huge_ccitt_page_before_decoding() {
    // 35000x35000 declared in a few bytes: 1.2 Gpx, which would need 1.2 GB to decode.
    let bytes = ccitt_tiff(35_000, 35_000, &[0u8; 64]);
    let mut pages = open("bomb.tif", bytes, &Limits::default()).unwrap();
    let error = pages.next().unwrap().unwrap_err();
    assert_eq!(error.page, Some(1));
    match &error.kind {
        PageErrorKind::LimitExceeded { value, field, .. } => {
            assert_eq!(*value, 35_000u64 * 35_000);
            assert_eq!(*field, "max_page_pixels");
        }
        other => panic!("expected LimitExceeded, got {other:?}"),
    }
    assert!(pages.next().is_none());
}

#[test]
fn limits_reject_large_object_and_extra_pages() {
    let small = Limits { max_object_bytes: 100, ..Limits::default() };
    let error = open("g4-multi.tiff", fixture("fax-tiff/pillow/g4-multi.tiff"), &small).err().unwrap();
    assert!(matches!(error.kind, PageErrorKind::LimitExceeded { field: "max_object_bytes", .. }), "{error}");

    let two_pages = Limits { max_pages: 2, ..Limits::default() };
    let results: Vec<_> = open("g4-multi.tiff", fixture("fax-tiff/pillow/g4-multi.tiff"), &two_pages).unwrap().collect();
    assert_eq!(results.len(), 3);
    assert!(results[0].is_ok());
    assert!(results[1].is_ok());
    let error = results[2].as_ref().unwrap_err();
    assert!(matches!(error.kind, PageErrorKind::LimitExceeded { field: "max_pages", .. }), "{error}");
}

#[test]
fn limits_reject_pdf_page_over_pixel_limit() {
    let tight = Limits { max_page_pixels: 1_000_000, ..Limits::default() };
    let results: Vec<_> = open("jbig2.pdf", fixture("scanned-pdf/ocrmypdf/jbig2.pdf"), &tight).unwrap().collect();
    assert_eq!(results.len(), 1);
    let error = results[0].as_ref().unwrap_err();
    assert!(matches!(error.kind, PageErrorKind::LimitExceeded { value: 8_415_000, .. }), "{error}");
}

/// Returns the file offsets of the IFDs of a little-endian classic TIFF.
fn ifd_offsets(bytes: &[u8]) -> Vec<usize> {
    assert_eq!(&bytes[..4], b"II*\0", "fixture must be little-endian classic TIFF");
    let read_u32 = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    let mut offsets = Vec::new();
    let mut next = read_u32(4);
    while next != 0 {
        offsets.push(next);
        let count = u16::from_le_bytes(bytes[next..next + 2].try_into().unwrap()) as usize;
        next = read_u32(next + 2 + 12 * count);
    }
    offsets
}

#[test]
fn truncated_multi_page_tiff_keeps_good_pages() {
    let bytes = fixture("fax-tiff/pillow/g4-multi.tiff");
    let offsets = ifd_offsets(&bytes);
    assert_eq!(offsets.len(), 3);

    // Cut the file inside IFD 3's entry table. The later IFDs must not hold the
    // strips of earlier pages for this to keep pages 1 and 2 intact.
    let cut = offsets[2] + 10;
    assert!(offsets[..2].iter().all(|&offset| offset < cut));
    let truncated: Arc<[u8]> = bytes[..cut].into();

    let results: Vec<_> = open("g4-multi-truncated.tiff", truncated, &Limits::default()).unwrap().collect();
    assert_eq!(results.len(), 3, "two good pages and one error");
    assert!(results[0].is_ok(), "{:?}", results[0].as_ref().err());
    assert!(results[1].is_ok(), "{:?}", results[1].as_ref().err());
    let error = results[2].as_ref().unwrap_err();
    assert_eq!(error.page, Some(3));
    assert!(error.to_string().starts_with("g4-multi-truncated.tiff page 3: "), "{error}");
}

#[test]
fn page_error_display_names_object_and_page() {
    let error = folio_pages::PageError {
        object: "scans/a.tif".into(),
        page: Some(3),
        kind: PageErrorKind::Corrupt { reason: "CCITT data ends early at row 812 of 1100".into() },
    };
    assert_eq!(error.to_string(), "scans/a.tif page 3: CCITT data ends early at row 812 of 1100");
}

#[test]
fn limit_error_display_names_flag_and_field() {
    let bytes = ccitt_tiff(35_000, 35_000, &[0u8; 64]);
    let error = open("bomb.tif", bytes, &Limits::default()).unwrap().next().unwrap().unwrap_err();
    let message = error.to_string();
    assert_eq!(
        message,
        "bomb.tif page 1: page size 35000x35000 pixels is 1225000000, over the page pixel limit of 100000000; \
         raise it with --max-page-pixels (Limits::max_page_pixels) to accept the page"
    );
}

#[test]
fn time_limit_gives_up_stuck_pages() {
    // No page of g4-multi.tiff decodes in a nanosecond, so each is abandoned on its
    // decode thread; the object is given up after the second.
    let limits = Limits { max_page_decode: std::time::Duration::from_nanos(1), ..Limits::default() };
    let results: Vec<_> = open("g4-multi.tiff", fixture("fax-tiff/pillow/g4-multi.tiff"), &limits).unwrap().collect();
    assert_eq!(results.len(), 2);
    for (index, result) in results.iter().enumerate() {
        let error = result.as_ref().unwrap_err();
        assert_eq!(error.page, Some(index as u32 + 1));
        assert!(matches!(error.kind, PageErrorKind::TimedOut { .. }), "{error}");
        assert!(error.to_string().contains("Limits::max_page_decode"), "{error}");
    }
}

#[test]
fn time_limit_max_decodes_on_calling_thread() {
    let limits = Limits { max_page_decode: std::time::Duration::MAX, ..Limits::default() };
    let results: Vec<_> = open("g4-multi.tiff", fixture("fax-tiff/pillow/g4-multi.tiff"), &limits).unwrap().collect();
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(Result::is_ok));
}

#[test]
fn tiff_variants_outside_tiff_crate_decode() {
    let Some(nasty) = common::shared_dir("nasty") else { return };
    let cases = [
        ("tiff-misc/pillow__hopper.Lab.tif", (128, 128), image::ColorType::Rgb8),
        ("tiff-ycbcr/image-tiff__dscf0013.tif", (640, 480), image::ColorType::Rgb8),
        // Old-style JPEG whose scan is in the strips, not at JPEGInterchangeFormat.
        ("tiff-ojpeg/libtiff__ojpeg_chewey_subsamp21_multi_strip.tiff", (392, 575), image::ColorType::Rgb8),
        // Old-style JPEG with its tables in tags, in one 240x224 tile cropped to the page.
        ("tiff-ojpeg/libtiff__ojpeg_zackthecat_subsamp22_single_strip.tiff", (234, 213), image::ColorType::Rgb8),
    ];
    for (name, size, color) in cases {
        let pages = common::decode_ok(&nasty.join(name));
        let image = &pages[0].image;
        assert_eq!((image.width(), image.height()), size, "{name}");
        assert_eq!(image.color(), color, "{name}");
        // A plausible photograph: neither blank nor saturated on average.
        let bytes = image.as_bytes();
        let mean = bytes.iter().map(|&v| f64::from(v)).sum::<f64>() / bytes.len() as f64;
        assert!((20.0..235.0).contains(&mean), "{name}: mean sample {mean:.1}");
    }

    // The joined old-style JPEG strips decode to the whole picture: its dark lower left
    // corner (fur) comes out dark, where wrongly joined strips give flat gray.
    let pages = common::decode_ok(&nasty.join("tiff-ojpeg/libtiff__ojpeg_chewey_subsamp21_multi_strip.tiff"));
    let corner = image::imageops::crop_imm(&pages[0].image.to_luma8(), 0, 500, 100, 75).to_image();
    let corner_mean = corner.as_raw().iter().map(|&v| f64::from(v)).sum::<f64>() / corner.as_raw().len() as f64;
    assert!(corner_mean < 90.0, "old-style JPEG lower left corner mean {corner_mean:.1}");

    // A dark 12-bit sensor crop: its samples run from 0 to 27 of 4095, so 0 to 2 in
    // 8 bits.
    let pages = common::decode_ok(&nasty.join("tiff-oddbits/image-tiff__12bit.cropped.tiff"));
    let image = &pages[0].image;
    assert_eq!((image.width(), image.height(), image.color()), (64, 64, image::ColorType::L8));
    assert_eq!(image.as_bytes().iter().max(), Some(&2));
}
