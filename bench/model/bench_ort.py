"""Model benchmark, onnxruntime side: runs an ONNX feature extractor on
fixed pseudo-random inputs and prints milliseconds per image in the same
format as the tract harness (shared/embed/examples/bench_embed.rs).
With one intra-op thread onnxruntime runs on the calling thread, so the
thread's CPU time, reported next to wall time for one-thread runs, excludes
time spent waiting for a core on a shared machine.

Usage: python3 bench_ort.py MODEL.onnx [--batch N] [--threads N]
       [--iterations N] [--warmup N]
Needs: pip install onnxruntime numpy
"""

import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--batch", type=int, default=1, help="images per run")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL

    load_start = time.perf_counter()
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    load_ms = (time.perf_counter() - load_start) * 1e3

    rng = np.random.default_rng(12345)
    batch = rng.uniform(-1.0, 1.0, size=(args.batch, 3, 128, 128)).astype(np.float32)

    for _ in range(args.warmup):
        session.run(["features"], {"input": batch})
    per_image_ms = []
    cpu_per_image_ms = []
    for _ in range(args.iterations):
        cpu_start = time.thread_time_ns()
        start = time.perf_counter()
        (features,) = session.run(["features"], {"input": batch})
        per_image_ms.append((time.perf_counter() - start) * 1e3 / args.batch)
        cpu_per_image_ms.append((time.thread_time_ns() - cpu_start) / 1e6 / args.batch)
        assert features.shape[0] == args.batch

    print(
        f"onnxruntime-{ort.__version__} batch={args.batch} threads={args.threads} load_ms={load_ms:.0f} "
        f"median_ms_per_image={statistics.median(per_image_ms):.2f} "
        f"mean_ms_per_image={statistics.fmean(per_image_ms):.2f} min_ms_per_image={min(per_image_ms):.2f}"
        # The calling thread's CPU time misses the pool's work with several threads.
        + (f" median_cpu_ms_per_image={statistics.median(cpu_per_image_ms):.2f}" if args.threads == 1 else "")
    )


if __name__ == "__main__":
    main()
