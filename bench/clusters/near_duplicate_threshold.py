"""Cosine similarity of near-duplicate page pairs against all other pairs, from a store's shards.

Usage: near_duplicate_threshold.py STORE GROUPS_CSV [--json]

STORE is a local Folio store (the folder given to `folio --store`); GROUPS_CSV has columns
path,group[,kind] with paths as document keys. Every page of every member of a group whose
kind starts with "same source page" is one page in several encodings (a PDF may hold the
page several times, for example turned): those pairs are the near-duplicates that the
threshold should link. Pages of one multi-page document
("same-document" groups) are reported separately, because they share a layout but are
different pages and should stay below the threshold. Every other pair is a negative.

Prints the distribution of each kind of pair, and for each candidate threshold the number of
near-duplicate pairs linked and of other pairs wrongly linked. Shards with tombstones are
not resolved: run it on a store that only `folio ingest` has written.
"""

import csv
import glob
import json
import os
import sys

import numpy as np
import pyarrow.parquet as pq

CANDIDATE_THRESHOLDS = [0.90, 0.95, 0.97, 0.98, 0.99, 0.995, 0.998, 0.999]


def load_vectors(store):
    """Returns (document, page) keys and L2-normalised vectors of every embedded page."""
    keys, vectors = [], []
    paths = sorted(glob.glob(os.path.join(store, "vectors", "**", "*.parquet"), recursive=True))
    if not paths:
        sys.exit(f"no shards under {store}/vectors: run `folio --store {store} ingest FOLDER` first")
    model_ids = set()
    for path in paths:
        table = pq.read_table(path, columns=["document", "page", "status", "model_id", "embedding"])
        for row in table.to_pylist():
            if row["embedding"] is None:
                continue
            keys.append((row["document"], row["page"]))
            vectors.append(row["embedding"])
            model_ids.add(row["model_id"])
    matrix = np.asarray(vectors, dtype=np.float64)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    return keys, matrix, sorted(model_ids)


def read_groups(path):
    """Returns {path: (group, kind)}."""
    with open(path, newline="") as handle:
        return {row["path"]: (row["group"], row.get("kind") or "") for row in csv.DictReader(handle)}


def describe(values):
    if len(values) == 0:
        return {"pairs": 0}
    quantiles = np.quantile(values, [0.0, 0.01, 0.5, 0.99, 1.0])
    return {
        "pairs": int(len(values)),
        "min": float(quantiles[0]),
        "p01": float(quantiles[1]),
        "median": float(quantiles[2]),
        "p99": float(quantiles[3]),
        "max": float(quantiles[4]),
    }


def main():
    arguments = [argument for argument in sys.argv[1:] if not argument.startswith("--")]
    if len(arguments) != 2:
        sys.exit(__doc__)
    store, groups_path = arguments
    keys, matrix, model_ids = load_vectors(store)
    groups = read_groups(groups_path)

    cosines = matrix @ matrix.T
    upper = np.triu_indices(len(keys), k=1)
    kinds = []
    for left, right in zip(*upper):
        (left_document, left_page), (right_document, right_page) = keys[left], keys[right]
        left_group = groups.get(left_document)
        right_group = groups.get(right_document)
        same_group = left_group is not None and right_group is not None and left_group[0] == right_group[0]
        if same_group and left_group[1].startswith("same source page"):
            kinds.append("same_page_other_encoding")
        elif same_group or left_document == right_document:
            kinds.append("same_document_other_page")
        else:
            kinds.append("other")
    kinds = np.asarray(kinds)
    values = cosines[upper]

    by_kind = {kind: values[kinds == kind] for kind in ("same_page_other_encoding", "same_document_other_page", "other")}
    report = {
        "pages": len(keys),
        "model_ids": model_ids,
        "distribution": {kind: describe(kind_values) for kind, kind_values in by_kind.items()},
        "thresholds": [],
    }
    positives = by_kind["same_page_other_encoding"]
    negatives = np.concatenate([by_kind["same_document_other_page"], by_kind["other"]])
    for threshold in CANDIDATE_THRESHOLDS:
        report["thresholds"].append(
            {
                "threshold": threshold,
                "duplicates_linked": int((positives >= threshold).sum()),
                "duplicates": int(len(positives)),
                "others_linked": int((negatives >= threshold).sum()),
                "others": int(len(negatives)),
            }
        )

    if "--json" in sys.argv:
        print(json.dumps(report, indent=2))
        return
    print(f"{report['pages']} pages, model {', '.join(model_ids)}")
    print(f"{'pairs':<28} {'count':>7} {'min':>8} {'p01':>8} {'median':>8} {'p99':>8} {'max':>8}")
    for kind, stats in report["distribution"].items():
        if stats["pairs"] == 0:
            print(f"{kind:<28} {0:>7}")
            continue
        print(
            f"{kind:<28} {stats['pairs']:>7} {stats['min']:>8.4f} {stats['p01']:>8.4f} "
            f"{stats['median']:>8.4f} {stats['p99']:>8.4f} {stats['max']:>8.4f}"
        )
    print("other pairs with the highest similarity:")
    negative_rows = np.flatnonzero(kinds != "same_page_other_encoding")
    for row in negative_rows[np.argsort(-values[negative_rows])][:5]:
        left, right = upper[0][row], upper[1][row]
        print(f"  {values[row]:.4f} {keys[left][0]} p{keys[left][1]} / {keys[right][0]} p{keys[right][1]}")
    print("near-duplicate pairs with the lowest similarity:")
    positive_rows = np.flatnonzero(kinds == "same_page_other_encoding")
    for row in positive_rows[np.argsort(values[positive_rows])][:5]:
        left, right = upper[0][row], upper[1][row]
        print(f"  {values[row]:.4f} {keys[left][0]} p{keys[left][1]} / {keys[right][0]} p{keys[right][1]}")
    print(f"{'threshold':>9} {'duplicates linked':>18} {'others linked':>16}")
    for row in report["thresholds"]:
        print(
            f"{row['threshold']:>9} {row['duplicates_linked']:>8} of {row['duplicates']:<7} "
            f"{row['others_linked']:>6} of {row['others']}"
        )


if __name__ == "__main__":
    main()
