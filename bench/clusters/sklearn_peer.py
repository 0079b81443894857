"""scikit-learn peer of the folio-clusters benchmark: PCA(0.98) then KMeans on a .npy file.

Usage: python3 sklearn_peer.py VECTORS.npy K N_INIT
Prints one JSON line with the same fields as `bench_clusters fit`.
"""

import json
import resource
import sys
import time

import numpy as np
import sklearn
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from threadpoolctl import threadpool_info


def peak_memory_mib() -> float:
    """Return VmHWM of this process in MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    path, k, n_init = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

    start = time.perf_counter()
    vectors = np.load(path)
    load_seconds = time.perf_counter() - start

    start = time.perf_counter()
    pca = PCA(n_components=0.98, random_state=0)
    projected = pca.fit_transform(vectors)
    pca_seconds = time.perf_counter() - start

    start = time.perf_counter()
    kmeans = KMeans(n_clusters=k, n_init=n_init, init="k-means++", random_state=0).fit(projected)
    kmeans_seconds = time.perf_counter() - start

    blas = [f"{info['internal_api']} {info.get('architecture', '')}" for info in threadpool_info()]
    print(json.dumps({
        "impl": f"scikit-learn {sklearn.__version__}",
        "rows": int(vectors.shape[0]),
        "load_s": round(load_seconds, 3),
        "pca_s": round(pca_seconds, 3),
        "kmeans_s": round(kmeans_seconds, 3),
        "pca_dims": int(pca.n_components_),
        "pca_solver": pca._fit_svd_solver,
        "variance_kept": round(float(pca.explained_variance_ratio_.sum()), 5),
        "inertia": float(kmeans.inertia_),
        "peak_mib": round(peak_memory_mib()),
        "blas": blas,
    }))


if __name__ == "__main__":
    main()
