"""spex's Python package against shapiq, in one Python process, on the same cheap games.

Usage (Python >= 3.12, shapiq 1.8.0, LightGBM, sparse-transform, and a release wheel of spex):

    maturin build --release --strip -o /tmp/w && pip install /tmp/w/spex-*.whl
    python benches/python/spex_vs_shapiq.py [--proxy-budget 1000] [--proxy-n 128,512,1000]
                                            [--spex-budget 3000] [--spex-n 64,256,1000]

ProxySPEX: a hierarchical sparse Moebius game (40 main effects, 25 pairs, 8 triples; every triple's
pairs are terms too). shapiq.ProxySPEX(index="k-SII", max_order=2, random_state=0).approximate draws
its masks and calls the game once; the same masks and values are then decoded by
spex.ProxySPEX(...).fit (the same samples), and spex.ProxySPEX(...).approximate runs end to end on its
own masks. SPEX: a sparse Fourier game (K terms of degree <= 2), index FBII at max_order 2 for
both (faithful Banzhaf at order 2 of a degree-2 game is its Moebius transform, so it evaluates), each on its own structured design with the same budget. Times exclude the game's own time
(measured inside the game and subtracted; reported apart). R^2 is measured on 1000 unseen i.i.d.
uniform masks: for shapiq's ProxySPEX on the Fourier spectrum it refines (its `_refine` output), for
SPEX on the Moebius values both return (the whole spectrum, as the game has degree <= 2).
One JSON line per case on stdout, then a Markdown table.
"""

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "reference"))
from synthetic_games import fourier_eval, hierarchical_game, moebius_eval, r2  # noqa: E402

warnings.filterwarnings("ignore")


class Timed:
    """A game that records its own time and its last masks and values."""

    def __init__(self, f):
        self.f, self.seconds, self.masks, self.values = f, 0.0, None, None

    def __call__(self, masks):
        t0 = time.perf_counter()
        self.masks = np.asarray(masks, dtype=bool).copy()
        self.values = self.f(self.masks)
        self.seconds += time.perf_counter() - t0
        return self.values


def top_sets(pairs, k=10):
    """The k non-empty sets with the largest |value|."""
    ranked = sorted(((s, v) for s, v in pairs if len(s) >= 1), key=lambda sv: -abs(sv[1]))
    return {s for s, _ in ranked[:k]}


def proxyspex_case(n, budget, spex, shapiq_proxy):
    rng = np.random.default_rng(1000 * n + budget)
    terms = hierarchical_game(n, rng)
    test = rng.integers(0, 2, size=(1000, n)).astype(bool)
    test_y = moebius_eval(terms, test)

    game = Timed(lambda x: moebius_eval(terms, x))
    approx = shapiq_proxy(n=n, index="k-SII", max_order=2, random_state=0)
    refine, seen = approx._refine, {}
    approx._refine = lambda *a, **k: seen.setdefault("f", refine(*a, **k))
    t0 = time.perf_counter()
    iv = approx.approximate(budget, game)
    shapiq_s = time.perf_counter() - t0 - game.seconds
    shapiq_r2 = r2(test_y, fourier_eval(seen["f"], test))
    shapiq_top = top_sets([(k, iv.values[i]) for k, i in iv.interaction_lookup.items()])
    masks, values = game.masks, game.values

    t0 = time.perf_counter()
    same = spex.ProxySPEX(n, max_order=2, index="k-SII", random_state=0).fit(masks, values)
    fit_s = time.perf_counter() - t0
    same_r2 = r2(test_y, same.spectrum.evaluate(test))

    own_game = Timed(lambda x: moebius_eval(terms, x))
    t0 = time.perf_counter()
    own = spex.ProxySPEX(n, max_order=2, index="k-SII", random_state=0).approximate(budget, own_game)
    own_s = time.perf_counter() - t0 - own_game.seconds
    return {
        "case": "ProxySPEX",
        "n": n,
        "budget": budget,
        "shapiq_s": shapiq_s,
        "spex_same_samples_s": fit_s,
        "spex_approximate_s": own_s,
        "game_s": {"shapiq": game.seconds, "spex": own_game.seconds},
        "speedup_same_samples": shapiq_s / fit_s,
        "speedup_approximate": shapiq_s / own_s,
        "r2_shapiq": shapiq_r2,
        "r2_spex_same_samples": same_r2,
        "r2_spex_approximate": r2(test_y, own.spectrum.evaluate(test)),
        "top10_overlap": len(shapiq_top & {s for s, _ in same.top(10)}),
    }


def spex_case(n, budget, spex, shapiq_spex):
    rng = np.random.default_rng(n)
    k = 20
    terms = {}
    while len(terms) < k:
        size = int(rng.integers(1, 3))
        terms[tuple(sorted(rng.choice(n, size=size, replace=False).tolist()))] = float(
            rng.uniform(0.5, 1.5) * rng.choice([-1, 1])
        )
    test = rng.integers(0, 2, size=(1000, n)).astype(bool)
    test_y = fourier_eval(terms, test)

    def moebius_r2(pairs, baseline):
        values = dict(pairs)
        values[()] = baseline
        return r2(test_y, moebius_eval(values, test))

    game = Timed(lambda x: fourier_eval(terms, x))
    approx = shapiq_spex(n=n, index="FBII", max_order=2, random_state=0)
    np.random.seed(0)  # sparse-transform draws its subsampling matrices from NumPy's global RNG
    t0 = time.perf_counter()
    iv = approx.approximate(budget, game)
    shapiq_s = time.perf_counter() - t0 - game.seconds
    shapiq_pairs = [(k, float(iv.values[i])) for k, i in iv.interaction_lookup.items() if k]
    shapiq_r2 = moebius_r2(shapiq_pairs, float(iv.values[iv.interaction_lookup[()]]) if () in iv.interaction_lookup else 0.0)

    own_game = Timed(lambda x: fourier_eval(terms, x))
    t0 = time.perf_counter()
    own = spex.SPEX(n, max_order=2, index="Moebius", random_state=0).approximate(budget, own_game)
    own_s = time.perf_counter() - t0 - own_game.seconds
    own_pairs = [(k, v) for k, v in own.interactions.items() if k]
    return {
        "case": "SPEX",
        "n": n,
        "budget": budget,
        "used": {"shapiq": int(game.masks.shape[0]), "spex": int(own.estimation_budget)},
        "shapiq_s": shapiq_s,
        "spex_approximate_s": own_s,
        "game_s": {"shapiq": game.seconds, "spex": own_game.seconds},
        "speedup_approximate": shapiq_s / own_s,
        "r2_shapiq": shapiq_r2,
        "r2_spex_approximate": moebius_r2(own_pairs, own.interactions.get((), own.baseline_value)),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proxy-budget", type=int, default=1000)
    ap.add_argument("--proxy-n", default="128,512,1000")
    ap.add_argument("--spex-budget", type=int, default=3000)
    ap.add_argument("--spex-n", default="64,256,1000")
    args = ap.parse_args()

    import shapiq
    import spex
    from shapiq.approximator.proxy.proxyspex import ProxySPEX as ShapiqProxySPEX
    from shapiq.approximator.sparse import SPEX as ShapiqSPEX

    print(
        json.dumps(
            {
                "python": sys.version.split()[0],
                "shapiq": shapiq.__version__,
                "spex": spex.__version__,
                "machine": platform.processor() or platform.machine(),
                "cpus": os.cpu_count(),
            }
        ),
        flush=True,
    )
    # Warm-up: imports, numba/galois JIT and LightGBM's first fit are paid here, once.
    spex_case(16, 500, spex, ShapiqSPEX)
    rows = []
    for n in [int(v) for v in args.spex_n.split(",") if v]:
        rows.append(spex_case(n, args.spex_budget, spex, ShapiqSPEX))
        print(json.dumps(rows[-1]), flush=True)
    for n in [int(v) for v in args.proxy_n.split(",") if v]:
        rows.append(proxyspex_case(n, args.proxy_budget, spex, ShapiqProxySPEX))
        print(json.dumps(rows[-1]), flush=True)

    print("\n| case | n | budget | shapiq s | spex s (same samples) | spex s (approximate) | speed-up | R^2 shapiq | R^2 spex | top-10 overlap |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        same = r.get("spex_same_samples_s")
        speed = r.get("speedup_same_samples", r["speedup_approximate"])
        r2_ours = r.get("r2_spex_same_samples", r["r2_spex_approximate"])
        print(
            f"| {r['case']} | {r['n']} | {r['budget']} | {r['shapiq_s']:.3f} | "
            f"{'' if same is None else f'{same:.3f}'} | {r['spex_approximate_s']:.3f} | {speed:.1f}x | "
            f"{r['r2_shapiq']:.4f} | {r2_ours:.4f} | {r.get('top10_overlap', '')} |"
        )


if __name__ == "__main__":
    main()
