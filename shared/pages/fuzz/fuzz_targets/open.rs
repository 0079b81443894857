//! Feeds arbitrary bytes to `folio_pages::open` and decodes every page. A crash,
//! abort, hang or out-of-memory here is a bug: every input must end in pages or errors.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // A 16 Mpx page limit admits the 300 dpi letter pages of the seed corpus (8.4 Mpx),
    // so their decoders are exercised, while keeping each run under a few seconds.
    // The decode time limit is above libFuzzer's -timeout=30, so a stuck decoder is
    // reported by libFuzzer as a hang instead of being abandoned by our watchdog.
    let limits = folio_pages::Limits {
        max_page_pixels: 16_000_000,
        max_pages: 16,
        max_object_bytes: 8 * 1024 * 1024,
        max_page_decode: Duration::from_secs(120),
    };
    let bytes: Arc<[u8]> = data.into();
    if let Ok(pages) = folio_pages::open("fuzz-input", bytes, &limits) {
        for page in pages.flatten() {
            // Touch the pixels so a decoder cannot hand back a buffer of the wrong size.
            std::hint::black_box(page.image.as_bytes().len());
        }
    }
});
