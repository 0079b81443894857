"""Model profile, onnxruntime side: runs an ONNX feature extractor with
onnxruntime's profiler and prints the median time of every node over the
runs, summed per operator kind, in the format of the tract profiler
(shared/embed/examples/profile_ops.rs).

Medians keep the profile usable on a machine shared with other jobs: a run
in which the scheduler took the core away drops out. With --nodes it also
prints one line per node (`node MS KIND NAME`), the names being those of
onnxruntime's optimised graph (a `_nchwc` suffix marks convolutions moved
to its blocked NCHWc layout).

Usage: python3 profile_ort.py MODEL.onnx [--batch N] [--threads N]
       [--iterations N] [--nodes]
Needs: pip install onnxruntime numpy
"""

import argparse
import collections
import json
import os
import statistics
import tempfile

import numpy as np
import onnxruntime as ort


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--batch", type=int, default=1, help="images per run")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--nodes", action="store_true", help="also print every node")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(folder, "profile")
        session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])

        rng = np.random.default_rng(12345)
        batch = rng.uniform(-1.0, 1.0, size=(args.batch, 3, 128, 128)).astype(np.float32)
        # The first run allocates memory and is dropped with the medians.
        for _ in range(args.iterations + 1):
            session.run(["features"], {"input": batch})
        with open(session.end_profiling()) as trace:
            events = json.load(trace)

    durations = collections.defaultdict(list)
    kinds = {}
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            node = event["name"][: -len("_kernel_time")]
            durations[node].append(event["dur"] / 1e3 / args.batch)
            kinds[node] = event["args"]["op_name"]

    medians = {node: statistics.median(values) for node, values in durations.items()}
    by_kind = collections.defaultdict(lambda: [0.0, 0])
    for node, ms in medians.items():
        by_kind[kinds[node]][0] += ms
        by_kind[kinds[node]][1] += 1
    total = sum(medians.values())

    print(
        f"onnxruntime-{ort.__version__} batch={args.batch} threads={args.threads} "
        f"sum_of_node_medians_ms_per_image={total:.2f}"
    )
    for kind, (ms, count) in sorted(by_kind.items(), key=lambda item: -item[1][0]):
        print(f"kind {kind:<24} {count:>4} nodes {ms:8.2f} ms/image {100 * ms / total:5.1f}%")
    if args.nodes:
        for node, ms in medians.items():
            print(f"node {ms:.4f} {kinds[node]} {node}")


if __name__ == "__main__":
    main()
