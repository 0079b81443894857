//! Per-operator profile of an ONNX feature extractor in tract: loads the
//! model the way [`folio_embed::Embedder`] does, runs it repeatedly and
//! prints the median CPU time of every node and the sum of those medians
//! per operator kind. `bench/model/profile.sh` puts it next to
//! onnxruntime's profile of the same file.
//!
//! CPU time of the running thread and medians over runs keep a node's time
//! honest on a machine shared with other jobs: time spent waiting for a
//! core is not counted, and a run disturbed in other ways drops out.
//!
//! Usage: profile_ops MODEL.onnx [--batch N] [--iterations N]
//! [--symbolic-batch] [--nodes]
//! (`--symbolic-batch` leaves the batch dimension symbolic at load time
//! instead of fixing it as the embedder does; `--nodes` also prints one
//! line per node)

use std::collections::BTreeMap;

use folio_embed::{CHANNELS, IMAGE_SIZE, PREPROCESSED_LEN};
use tract_onnx::prelude::*;

struct Args {
    model: String,
    batch: usize,
    iterations: usize,
    symbolic_batch: bool,
    nodes: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        model: String::new(),
        batch: 1,
        iterations: 20,
        symbolic_batch: false,
        nodes: false,
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
            "--symbolic-batch" => parsed.symbolic_batch = true,
            "--nodes" => parsed.nodes = true,
            _ if parsed.model.is_empty() => parsed.model = arg,
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    if parsed.model.is_empty() || parsed.batch == 0 || parsed.iterations == 0 {
        return Err("usage: profile_ops MODEL.onnx [--batch N>0] [--iterations N>0] [--symbolic-batch] [--nodes]".into());
    }
    Ok(parsed)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = parse_args()?;
    let size = IMAGE_SIZE as usize;

    let mut model = tract_onnx::onnx().model_for_path(&args.model)?;
    let batch = if args.symbolic_batch {
        model.symbols.sym("batch").to_dim()
    } else {
        args.batch.to_dim()
    };
    let input_fact = f32::fact([batch, CHANNELS.to_dim(), size.to_dim(), size.to_dim()]);
    model.set_input_fact(0, input_fact.into())?;
    if !args.symbolic_batch {
        // The file declares a symbolic batch on its output, which would not
        // unify with a concrete input batch.
        model.set_output_fact(0, InferenceFact::default())?;
    }
    let plan = model.into_optimized()?.into_runnable()?;

    let input = Tensor::from_shape(
        &[args.batch, CHANNELS, size, size],
        &vec![0.5f32; args.batch * PREPROCESSED_LEN],
    )?;
    let mut state = plan.spawn()?;
    state.run(tvec!(input.clone().into_tvalue()))?;

    // Node id -> one CPU time per run, in milliseconds per image.
    let mut times: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    let mut totals = Vec::with_capacity(args.iterations);
    let per_image_ms = |ns: u64| ns as f64 / 1e6 / args.batch as f64;
    for _ in 0..args.iterations {
        let run_start = thread_cpu_ns();
        state.run_plan_with_eval(
            tvec!(input.clone().into_tvalue()),
            |context, op_state, node, inputs| -> TractResult<TVec<TValue>> {
                let start = thread_cpu_ns();
                let outputs = tract_onnx::tract_core::plan::eval(context, op_state, node, inputs);
                let elapsed = thread_cpu_ns().saturating_sub(start);
                times.entry(node.id).or_default().push(per_image_ms(elapsed));
                outputs
            },
        )?;
        totals.push(per_image_ms(thread_cpu_ns() - run_start));
    }

    let graph = plan.model();
    let mut by_kind: BTreeMap<String, (f64, usize)> = BTreeMap::new();
    let mut rows = Vec::new();
    for (id, mut samples) in times {
        let node = graph.node(id);
        let median = median(&mut samples);
        let kind = by_kind.entry(node.op().name().to_string()).or_default();
        kind.0 += median;
        kind.1 += 1;
        rows.push((median, node.op().name().to_string(), node.name.clone()));
    }
    let sum: f64 = rows.iter().map(|row| row.0).sum();
    println!(
        "tract batch={} symbolic_batch={} median_run_cpu_ms_per_image={:.2} sum_of_node_medians_ms_per_image={sum:.2}",
        args.batch,
        args.symbolic_batch,
        median(&mut totals)
    );
    let mut kinds: Vec<_> = by_kind.into_iter().collect();
    kinds.sort_by(|a, b| b.1.0.total_cmp(&a.1.0));
    for (kind, (ms, count)) in kinds {
        println!("kind {kind:<24} {count:>4} nodes {ms:8.2} ms/image {:5.1}%", 100.0 * ms / sum);
    }
    if args.nodes {
        for (ms, kind, name) in rows {
            println!("node {ms:.4} {kind} {name}");
        }
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

fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
