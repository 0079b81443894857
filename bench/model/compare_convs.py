"""Joins the per-node profiles of tract and onnxruntime convolution by
convolution and prints each one's time in both runtimes and their ratio.

Input: the `--nodes` outputs of shared/embed/examples/profile_ops.rs and of
profile_ort.py. A convolution's tract time is the sum over the nodes whose
names start with the ONNX node's name: padding, downsampling, packing and
the matrix product. tract fuses a unit's residual addition into its last
convolution (`unit/residual`), which is counted as `unit/c/conv`.
onnxruntime's `_nchwc` suffix is removed. onnxruntime keeps that
residual addition as a separate Add node, so those rows give tract a
little extra work. Element-wise and normalisation nodes are left out.

Usage: python3 compare_convs.py TRACT_PROFILE ORT_PROFILE [--top N]
"""

import argparse
import collections
import re

TRACT_CONV_KINDS = {"OptMatMul", "OptMatMulPack", "Pad", "Downsample", "LazyIm2col", "Im2col"}


def read_nodes(path):
    with open(path) as lines:
        for line in lines:
            if line.startswith("node "):
                _, ms, kind, name = line.rstrip("\n").split(" ", 3)
                yield float(ms), kind, name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tract_profile")
    parser.add_argument("ort_profile")
    parser.add_argument("--top", type=int, default=12, help="rows to print, slowest in tract first")
    args = parser.parse_args()

    ort_ms = collections.defaultdict(float)
    for ms, kind, name in read_nodes(args.ort_profile):
        if kind == "Conv":
            ort_ms[re.sub(r"_nchwc$", "", name)] += ms

    tract_ms = collections.defaultdict(float)
    for ms, kind, name in read_nodes(args.tract_profile):
        conv = name.split(".")[0].replace("/residual", "/c/conv")
        if kind in TRACT_CONV_KINDS and conv in ort_ms:
            tract_ms[conv] += ms

    missing = sorted(set(ort_ms) - set(tract_ms))
    if missing:
        raise SystemExit(f"no tract nodes found for convolutions {missing}; profile the same ONNX file")
    tract_total = sum(tract_ms.values())
    ort_total = sum(ort_ms.values())
    print(
        f"{len(ort_ms)} convolutions: tract {tract_total:.2f} ms/image, onnxruntime "
        f"{ort_total:.2f} ms/image, ratio {tract_total / ort_total:.2f}"
    )
    rows = sorted(ort_ms, key=lambda conv: -tract_ms[conv])
    for conv in rows[: args.top]:
        print(
            f"  {conv:<26} tract {tract_ms[conv]:6.3f} onnxruntime {ort_ms[conv]:6.3f} "
            f"ratio {tract_ms[conv] / ort_ms[conv]:5.2f}"
        )


if __name__ == "__main__":
    main()
