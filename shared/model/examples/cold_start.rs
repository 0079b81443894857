//! Measures cold start with the linked model: process start to the first
//! vector. Prints the phases in milliseconds and, for `bench/model/run.sh`,
//! the wall-clock time of the first vector in Unix nanoseconds, so the
//! script can include process launch and binary loading.
//!
//! Usage: cargo run -p folio-model --example cold_start [PAGE.png]

use std::time::{Instant, SystemTime, UNIX_EPOCH};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start = Instant::now();
    let page = match std::env::args().nth(1) {
        Some(path) => image::open(&path)?,
        None => image::DynamicImage::ImageLuma8(image::GrayImage::from_fn(850, 1100, |x, y| {
            image::Luma([if (y / 20) % 2 == 1 && (x / 37) % 5 != 0 {
                20
            } else {
                245
            }])
        })),
    };
    let decoded = start.elapsed();

    let embedder = folio_model::embedder()?;
    let loaded = start.elapsed();

    let vector = embedder.embed(&[&page])?.remove(0);
    let first_vector = start.elapsed();
    let unix_nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();

    println!("model: {}", embedder.identity());
    println!("dimensions: {}", vector.len());
    println!("decode_ms: {:.1}", decoded.as_secs_f64() * 1e3);
    println!("load_ms: {:.1}", (loaded - decoded).as_secs_f64() * 1e3);
    println!(
        "first_inference_ms: {:.1}",
        (first_vector - loaded).as_secs_f64() * 1e3
    );
    println!(
        "main_to_first_vector_ms: {:.1}",
        first_vector.as_secs_f64() * 1e3
    );
    println!("first_vector_unix_ns: {unix_nanos}");
    Ok(())
}
