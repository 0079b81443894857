//! Model benchmark, tract side: runs an ONNX feature extractor through
//! [`folio_embed::Embedder`] (the production path) on fixed pseudo-random
//! inputs and prints milliseconds per image. `bench/model/run.sh` runs it
//! next to onnxruntime on the same file.
//!
//! Usage: bench_embed MODEL.onnx [--batch N] [--iterations N] [--warmup N]
//! [--dimensions F] (F: features per image, 2048 for R50x1)

use std::time::Instant;

use folio_embed::{Embedder, ModelIdentity, PREPROCESSED_LEN};

struct Args {
    model: String,
    batch: usize,
    iterations: usize,
    warmup: usize,
    dimensions: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        model: String::new(),
        batch: 1,
        iterations: 20,
        warmup: 2,
        dimensions: 2048,
    };
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<usize, String> {
            let value = args.next().ok_or_else(|| format!("{name} needs a value"))?;
            value
                .parse()
                .map_err(|_| format!("invalid {name} {value:?}: expected a positive integer"))
        };
        match arg.as_str() {
            "--batch" => parsed.batch = number("--batch")?,
            "--iterations" => parsed.iterations = number("--iterations")?,
            "--warmup" => parsed.warmup = number("--warmup")?,
            "--dimensions" => parsed.dimensions = number("--dimensions")?,
            _ if parsed.model.is_empty() => parsed.model = arg,
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    if parsed.model.is_empty() {
        return Err("usage: bench_embed MODEL.onnx [--batch N] [--iterations N] [--warmup N] [--dimensions F]".into());
    }
    Ok(parsed)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let onnx = std::fs::read(&args.model)?;

    let load_start = Instant::now();
    let identity = ModelIdentity::for_onnx(&args.model, false, args.dimensions, &onnx);
    let embedder = Embedder::from_onnx(&onnx, identity)?.with_batch_size(args.batch)?;
    let load_ms = load_start.elapsed().as_secs_f64() * 1e3;

    // Values in [-1, 1] from a fixed linear congruential sequence, so every
    // run uses the same input.
    let mut state = 12345u32;
    let input: Vec<f32> = (0..args.batch * PREPROCESSED_LEN)
        .map(|_| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0
        })
        .collect();

    for _ in 0..args.warmup {
        embedder.features_preprocessed(&input)?;
    }
    let mut per_image_ms = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations {
        let start = Instant::now();
        let features = embedder.features_preprocessed(&input)?;
        per_image_ms.push(start.elapsed().as_secs_f64() * 1e3 / args.batch as f64);
        assert_eq!(features.len(), args.batch);
    }
    per_image_ms.sort_by(f64::total_cmp);
    let median = per_image_ms[per_image_ms.len() / 2];
    let mean = per_image_ms.iter().sum::<f64>() / per_image_ms.len() as f64;
    println!(
        "tract batch={} threads=1 load_ms={load_ms:.0} median_ms_per_image={median:.2} mean_ms_per_image={mean:.2} min_ms_per_image={:.2}",
        args.batch, per_image_ms[0]
    );
    Ok(())
}
