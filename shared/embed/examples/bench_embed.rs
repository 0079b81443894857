//! Model benchmark, tract side: runs an ONNX feature extractor through
//! [`folio_embed::Embedder`] (the production path) on fixed pseudo-random
//! inputs and prints milliseconds per image. `bench/model/run.sh` runs it
//! next to onnxruntime on the same file.
//!
//! It reports wall time and the calling thread's CPU time. On a machine
//! shared with other jobs the CPU time of a one-thread run moves much less
//! than its wall time, because time spent waiting for a core is excluded.
//!
//! Usage: bench_embed MODEL.onnx [--batch N] [--iterations N] [--warmup N]
//! [--dimensions F] [--threads T]
//! (F: features per image, 2048 for R50x1; T > 1 needs the `multithread-mm`
//! feature, and such runs report wall time only)

use std::time::Instant;

use folio_embed::{Embedder, ModelIdentity, PREPROCESSED_LEN};

struct Args {
    model: String,
    batch: usize,
    iterations: usize,
    warmup: usize,
    dimensions: usize,
    threads: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        model: String::new(),
        batch: 1,
        iterations: 20,
        warmup: 2,
        dimensions: 2048,
        threads: 1,
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
            "--threads" => parsed.threads = number("--threads")?,
            _ if parsed.model.is_empty() => parsed.model = arg,
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    if parsed.model.is_empty() {
        return Err("usage: bench_embed MODEL.onnx [--batch N] [--iterations N] [--warmup N] [--dimensions F] [--threads T]".into());
    }
    Ok(parsed)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    set_threads(args.threads)?;
    let onnx = std::fs::read(&args.model)?;

    let load_start = Instant::now();
    let identity = ModelIdentity::for_onnx(&args.model, false, args.dimensions, &onnx);
    let embedder = Embedder::from_onnx_with_batch_size(&onnx, identity, args.batch)?;
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
    let mut cpu_per_image_ms = Vec::with_capacity(args.iterations);
    for _ in 0..args.iterations {
        let cpu_start = thread_cpu_ns();
        let start = Instant::now();
        let features = embedder.features_preprocessed(&input)?;
        per_image_ms.push(start.elapsed().as_secs_f64() * 1e3 / args.batch as f64);
        let cpu_ns = thread_cpu_ns() - cpu_start;
        cpu_per_image_ms.push(cpu_ns as f64 / 1e6 / args.batch as f64);
        assert_eq!(features.len(), args.batch);
    }
    per_image_ms.sort_by(f64::total_cmp);
    cpu_per_image_ms.sort_by(f64::total_cmp);
    let median = per_image_ms[per_image_ms.len() / 2];
    let mean = per_image_ms.iter().sum::<f64>() / per_image_ms.len() as f64;
    let cpu_median = cpu_per_image_ms[cpu_per_image_ms.len() / 2];
    // The calling thread's CPU time misses the pool's work with several threads.
    let cpu_field = if args.threads == 1 {
        format!(" median_cpu_ms_per_image={cpu_median:.2}")
    } else {
        String::new()
    };
    println!(
        "tract batch={} threads={} load_ms={load_ms:.0} median_ms_per_image={median:.2} mean_ms_per_image={mean:.2} min_ms_per_image={:.2}{cpu_field}",
        args.batch, args.threads, per_image_ms[0]
    );
    Ok(())
}

#[cfg(feature = "multithread-mm")]
fn set_threads(threads: usize) -> Result<(), Box<dyn std::error::Error>> {
    Ok(folio_embed::set_matmul_threads(threads)?)
}

#[cfg(not(feature = "multithread-mm"))]
fn set_threads(threads: usize) -> Result<(), Box<dyn std::error::Error>> {
    if threads != 1 {
        return Err(format!(
            "--threads {threads} needs the multithread-mm feature of folio-embed; rebuild with --features folio-embed/multithread-mm"
        )
        .into());
    }
    Ok(())
}

/// Returns the CPU time of the calling thread in nanoseconds, from
/// `clock_gettime(CLOCK_THREAD_CPUTIME_ID)`. Unlike `/proc/thread-self/schedstat`,
/// which the kernel updates only at scheduler ticks, it is exact to the call.
fn thread_cpu_ns() -> u64 {
    let mut time = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `time` is a valid, writable timespec and the clock id is a
    // constant every Linux kernel supports.
    let result = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut time) };
    assert_eq!(result, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    time.tv_sec as u64 * 1_000_000_000 + time.tv_nsec as u64
}
