"""Likeness guard at scale: 1,000,000 random unit 128-d face templates in the guard's faiss index
(avatar.domain.guard.build_index). Queries are enrolled templates seen again with the noise of a
new capture (distance ≈ 0.35, as a real same-person pair) and fresh random templates. Prints JSON:
build seconds, p50/p95 query ms, resident memory, recall@1 and recall@5 against brute force."""
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from avatar.domain.guard import build_index  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
DIM, QUERIES, K = 128, 300, 5


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def main():
    import faiss

    rng = np.random.default_rng(1)
    gallery = unit(rng.standard_normal((N, DIM)))
    rss0 = rss_mb()
    t0 = time.perf_counter()
    index = build_index(gallery, "face")
    build = time.perf_counter() - t0
    rss1 = rss_mb()
    owners = rng.choice(N, QUERIES, replace=False)
    same = unit(gallery[owners] + rng.standard_normal((QUERIES, DIM)).astype(np.float32) * 0.35 / np.sqrt(DIM))
    fresh = unit(rng.standard_normal((QUERIES, DIM)))
    exact = faiss.IndexFlatL2(DIM)
    exact.add(gallery)
    out = {"templates": N, "dim": DIM, "index": type(index).__name__, "nlist": getattr(index, "nlist", None),
           "nprobe": getattr(index, "nprobe", None), "build_seconds": round(build, 1),
           "gallery_mb": round(gallery.nbytes / 2**20, 1), "index_memory_mb": round(rss1 - rss0, 1), "threads": faiss.omp_get_max_threads()}
    for name, queries in (("same_person", same), ("random", fresh)):
        times = []
        found = []
        for q in queries:
            t = time.perf_counter()
            _, idx = index.search(q[None, :], K)
            times.append((time.perf_counter() - t) * 1000)
            found.append(idx[0])
        _, truth = exact.search(queries, K)
        found = np.array(found)
        out[name] = {"p50_ms": round(float(np.percentile(times, 50)), 2), "p95_ms": round(float(np.percentile(times, 95)), 2),
                     "recall_at_1": round(float(np.mean(found[:, 0] == truth[:, 0])), 4),
                     "recall_at_5": round(float(np.mean([len(set(f) & set(t)) / K for f, t in zip(found, truth)])), 4)}
    t = time.perf_counter()
    exact.search(fresh[:20], K)
    out["brute_force_ms_per_query"] = round((time.perf_counter() - t) * 1000 / 20, 1)
    out["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
