//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use folio_pages::{Limits, Options, Page, PageError};

/// Committed fixtures that every checkout has.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples")
}

/// Returns a folder of the shared data beside the repository, or prints why it is
/// skipped and returns `None` when this checkout does not have it.
pub fn shared_dir(sub: &str) -> Option<PathBuf> {
    // The crate sits at <workspace>/shared/pages and the data folder at
    // <workspace>/../shared.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared").join(sub);
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("SKIP: {} not found; this test needs the shared data folder", dir.display());
        None
    }
}

/// Decodes every page of a file with the given options.
pub fn decode_file(path: &Path, options: &Options) -> Result<Vec<Result<Page, PageError>>, PageError> {
    let bytes: Arc<[u8]> = std::fs::read(path).expect("read test file").into();
    let name = path.display().to_string();
    let pages = folio_pages::open_with(&name, bytes, &Limits::default(), options)?;
    Ok(pages.collect())
}

/// Decodes every page and panics on the first error.
pub fn decode_ok(path: &Path) -> Vec<Page> {
    decode_file(path, &Options::default())
        .unwrap_or_else(|error| panic!("open failed: {error}"))
        .into_iter()
        .map(|page| page.unwrap_or_else(|error| panic!("page failed: {error}")))
        .collect()
}

/// Reads one 8-bit gray page of an uncompressed TIFF written by `tiffcp -c none`,
/// through the `tiff` crate's reader (no CCITT involved).
pub fn read_reference_pages(path: &Path) -> Vec<(u32, u32, Vec<u8>)> {
    let file = std::fs::File::open(path).expect("open reference");
    let mut decoder = tiff::decoder::Decoder::new(std::io::BufReader::new(file)).expect("reference TIFF");
    let mut pages = Vec::new();
    loop {
        let (width, height) = decoder.dimensions().expect("reference size");
        let tiff::decoder::DecodingResult::U8(data) = decoder.read_image().expect("reference pixels") else {
            panic!("reference TIFF is not 8-bit");
        };
        let color = decoder.colortype().expect("reference colour type");
        let row_bytes = (width as usize).div_ceil(8);
        let pixels: Vec<u8> = match color {
            tiff::ColorType::Gray(1) => (0..height as usize)
                .flat_map(|y| {
                    let row = &data[y * row_bytes..(y + 1) * row_bytes];
                    (0..width as usize).map(move |x| if row[x / 8] & (0x80 >> (x % 8)) != 0 { 255 } else { 0 })
                })
                .collect(),
            tiff::ColorType::Gray(8) => data,
            other => panic!("reference TIFF has colour type {other:?}"),
        };
        pages.push((width, height, pixels));
        if !decoder.more_images() {
            break;
        }
        decoder.next_image().expect("reference next page");
    }
    pages
}
