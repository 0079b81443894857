//! Feeds arbitrary bytes to `folio_pages::open` and decodes every page. A crash,
//! abort, hang or out-of-memory here is a bug: every input must end in pages or errors.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Small limits keep each run fast and make size-limit paths reachable.
    let limits = folio_pages::Limits {
        max_page_pixels: 4_000_000,
        max_pages: 16,
        max_object_bytes: 8 * 1024 * 1024,
        max_page_decode: Duration::from_secs(5),
    };
    let bytes: Arc<[u8]> = data.into();
    if let Ok(pages) = folio_pages::open("fuzz-input", bytes, &limits) {
        for page in pages {
            let _ = page;
        }
    }
});
