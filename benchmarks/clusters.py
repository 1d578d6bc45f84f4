"""Usage: python benchmarks/clusters.py [--against REV] [--data ../shared/data] [--seeds 0,1,2,3,4] [--ks 2,4]

How far the dev-set clusters (generators/training/clusters.py, scikit-learn's
TfidfVectorizer + KMeans) agree with those of another revision of that module
(default: 8af0cf0, the last hand-written TF-IDF and torch k-means), read with
`git show REV:generators/training/clusters.py`, side by side in one run:

- TF-IDF: the largest difference between the two matrices' entries, columns
  matched by word (the maths is the same; the two keep the same words unless a
  corpus has more than 1024 that appear twice: the old kept the 1024 in most
  texts, scikit-learn the 1024 most frequent);
- partitions: the adjusted Rand index (1: the same partition; 0: chance) of
  the two k-means with the same seed (k-means++ draws its starting centers
  from different generators, and the old fitted on at most 2000 sampled
  rows, scikit-learn on all of them); for scale, each one's agreement with
  itself from one seed to the next, and each against the paper's own GSM8K
  clusters (gsm8k_cluster_{0..3}.json); k-means' objective (inertia, on the
  new TF-IDF rows: lower is tighter) and seconds;
- the arith task's form clusters (200 and 400 dev items of four forms): one
  form each, and the very same clusters as the old.

Data sets: gsm8k.json and truthfulqa.json dev (7473 and 729 inputs), and the
40-item dev slice that the mini experiments (conf/experiment/mini_*.yaml) cluster
with k=2, whose SmolLM2 experts are cached under a key that covers the clusters.
The last line is the median adjusted Rand index over every data set, k and seed.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import adjusted_rand_score

from generators.training import clusters as new
from objectives.tasks.arith import ArithTask
from objectives.tasks.json_task import load_json_task

REPO = Path(__file__).resolve().parents[1]


def old_module(rev: str, tmp: Path):
    """The clusters module as it was at ``rev``."""
    source = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:generators/training/clusters.py"],
                            capture_output=True, text=True)
    if source.returncode != 0:
        sys.exit(f"--against: {source.stderr.strip()}")
    path = tmp / "old_clusters.py"
    path.write_text(source.stdout)
    spec = importlib.util.spec_from_file_location("old_clusters", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def arith_form(problem: str) -> str:
    return "chain" if "*" in problem and "+" in problem else next(op for op in "+-*" if op in problem)


def labels_of(groups: list[list[int]], n: int) -> np.ndarray:
    labels = np.empty(n, dtype=np.int64)
    for c, g in enumerate(groups):
        labels[g] = c
    return labels


def inertia(x: np.ndarray, labels: np.ndarray) -> float:
    """k-means' objective of a partition: squared distances of the rows to their cluster's mean."""
    return float(sum(((x[labels == c] - x[labels == c].mean(0)) ** 2).sum() for c in np.unique(labels)))


def tfidf_gap(old, texts: list[str]) -> tuple[float, int, int]:
    """Largest |old - new| TF-IDF entry over the words both keep; how many words the old kept, how many of them
    the new kept too. The old
    module returned no words: its columns are its words by decreasing document frequency, then by word."""
    ours, words = new.tfidf_words(texts)
    ours, theirs = ours.toarray(), old.tfidf(texts)
    docs = [set(old._tokens(t)) for t in texts]
    df = {w: sum(w in d for d in docs) for w in set().union(*docs)}
    old_words = [w for w, c in sorted(df.items(), key=lambda x: (-x[1], x[0])) if c >= 2][:1024] or sorted(df)
    column = {w: j for j, w in enumerate(words)}
    gaps = [abs(ours[:, column[w]] - theirs[:, j]).max() for j, w in enumerate(old_words) if w in column]
    return float(max(gaps, default=0.0)), len(old_words), len(gaps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="8af0cf0", help="the revision whose clusters module to compare with")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--ks", default="2,4")
    args = parser.parse_args()
    seeds, ks = [int(s) for s in args.seeds.split(",")], [int(k) for k in args.ks.split(",")]
    sets: dict[str, list[str]] = {}
    for name in ("gsm8k", "truthfulqa"):
        path = args.data / f"{name}.json"
        if not path.is_file():
            sys.exit(f"--data: {path} not found")
        sets[name] = [it.input for it in load_json_task(path).dev]
        sets[f"{name} (max_dev=40)"] = [it.input for it in load_json_task(path, max_dev=40, seed=0).dev]
    paper = [json.loads((args.data / f"gsm8k_cluster_{i}.json").read_text())["dev"] for i in range(4)]
    index = {text: i for i, text in enumerate(sets["gsm8k"])}
    paper_labels = labels_of([[index[d["input"]] for d in c if d["input"] in index] for c in paper], len(index))

    with tempfile.TemporaryDirectory() as tmp:
        old = old_module(args.against, Path(tmp))
        aris = []
        print(f"{'data set':<24}{'k':>3}  {'ARI old-new':>11}  {'ARI seed-seed old / new':>23}  {'inertia old / new':>19}  "
              f"{'s old / new':>13}  (medians over seeds {args.seeds})")
        for name, texts in sets.items():
            gap, n_old, n_shared = tfidf_gap(old, texts)
            x = new.tfidf(texts).toarray()
            for k in ks:
                runs = {"old": [], "new": []}
                for seed in seeds:
                    for label, module in (("old", old), ("new", new)):
                        t = time.perf_counter()
                        labels = labels_of(module.cluster_texts(texts, k, seed), len(texts))
                        runs[label].append((labels, time.perf_counter() - t, inertia(x, labels)))
                pairs = [adjusted_rand_score(a[0], b[0]) for a, b in zip(runs["old"], runs["new"])]
                aris += pairs
                across = {m: statistics.median(adjusted_rand_score(r[i][0], r[i + 1][0]) for i in range(len(r) - 1))
                          for m, r in runs.items()} if len(seeds) > 1 else {"old": float("nan"), "new": float("nan")}
                med = {m: (statistics.median(t for _, t, _ in r), statistics.median(w for _, _, w in r)) for m, r in runs.items()}
                print(f"{name:<24}{k:>3}  {statistics.median(pairs):>11.3f}  {across['old']:>11.3f} / {across['new']:<9.3f}  "
                      f"{med['old'][1]:>8.1f} / {med['new'][1]:<8.1f}  {med['old'][0]:>5.2f} / {med['new'][0]:<5.2f}", flush=True)
                if name == "gsm8k" and k == 4:
                    print(f"{'':<27}vs the paper's clusters, median ARI: old "
                          f"{statistics.median(adjusted_rand_score(paper_labels, r[0]) for r in runs['old']):.3f}, new "
                          f"{statistics.median(adjusted_rand_score(paper_labels, r[0]) for r in runs['new']):.3f}")
            print(f"{'':<27}{len(texts)} inputs; TF-IDF words: old {n_old}, {n_shared} of them kept by the new; largest entry gap {gap:.1e}")
    for n_dev in (200, 400):  # the zoo's task default (conf/task/arith.yaml), and more
        texts = [it.input for it in ArithTask(n_dev=n_dev, n_test=4, seed=0).dev]
        for seed in seeds:
            groups = new.cluster_texts(texts, 4, seed)
            forms = [len({arith_form(texts[i]) for i in g}) for g in groups]
            same = groups == old.cluster_texts(texts, 4, seed)
            print(f"arith ({n_dev} dev) k=4 seed={seed}: forms per cluster {forms}; the same clusters as the old: {same}")
    print(f"adjusted Rand index, median over {len(aris)}: {statistics.median(aris):.3f} (min {min(aris):.3f})")


if __name__ == "__main__":
    main()
