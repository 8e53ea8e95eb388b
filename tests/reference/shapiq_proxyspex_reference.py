"""shapiq 1.8.0's ProxySPEX on a sparse game, stored for the Python package's CI comparison.

Runs on Python >= 3.12 (shapiq 1.8.0 needs it; CI's python3 is 3.11):

    python3.12 -m venv /tmp/ref && /tmp/ref/bin/pip install shapiq==1.8.0 lightgbm==4.6.0
    /tmp/ref/bin/python tests/reference/shapiq_proxyspex_reference.py tests/data/shapiq_proxyspex_reference.json

The game is a hierarchical sparse Moebius function (main effects, pairs, triples whose pairs are
terms too) over N players. shapiq.ProxySPEX(index="k-SII", max_order=2, random_state=0)
.approximate(BUDGET, game) draws its own masks; the script records them and the values, captures
the refined Fourier spectrum shapiq decodes (its `_refine` output), and measures its R^2 on TEST
i.i.d. uniform unseen masks. tests/python/test_reference.py decodes the same masks and values with
spex.ProxySPEX and compares R^2 and the top-10 k-SII terms.
"""

import json
import sys
import time

import numpy as np

from synthetic_games import fourier_eval, hierarchical_game, moebius_eval, r2

N, BUDGET, TEST, SEED = 64, 1000, 500, 7


def hex_rows(x):
    """Each 0/1 row as a hex string of its bits, player 0 first (np.packbits, big-endian)."""
    return [bytes(np.packbits(row.astype(np.uint8))).hex() for row in x]


def main():
    import shapiq
    from shapiq.approximator.proxy.proxyspex import ProxySPEX

    out = sys.argv[1]
    rng = np.random.default_rng(SEED)
    terms = hierarchical_game(N, rng, mains=20, triples=4, pairs=12)
    test = rng.integers(0, 2, size=(TEST, N), dtype=np.uint8)
    test_values = moebius_eval(terms, test)
    seen = {}

    def game(masks):
        seen["masks"] = np.asarray(masks, dtype=np.uint8).copy()
        seen["values"] = moebius_eval(terms, seen["masks"])
        return seen["values"]

    approx = ProxySPEX(n=N, index="k-SII", max_order=2, random_state=0)
    refine = approx._refine

    def capture(*args, **kwargs):
        seen["fourier"] = refine(*args, **kwargs)
        return seen["fourier"]

    approx._refine = capture
    t0 = time.perf_counter()
    iv = approx.approximate(BUDGET, game)
    seconds = time.perf_counter() - t0
    fourier = {tuple(int(i) for i in k): float(v) for k, v in seen["fourier"].items()}
    top = sorted(
        ((k, float(iv.values[i])) for k, i in iv.interaction_lookup.items() if len(k) >= 1),
        key=lambda kv: (-abs(kv[1]), len(kv[0]), kv[0]),
    )[:10]
    record = {
        "about": "tests/reference/shapiq_proxyspex_reference.py: shapiq.ProxySPEX on a hierarchical sparse Moebius game",
        "shapiq": shapiq.__version__,
        "python": sys.version.split()[0],
        "n": N,
        "budget": BUDGET,
        "seed": SEED,
        "game_moebius": [[list(k), v] for k, v in sorted(terms.items(), key=lambda kv: (len(kv[0]), kv[0]))],
        "masks_hex": hex_rows(seen["masks"]),
        "values": [float(v) for v in seen["values"]],
        "test_masks_hex": hex_rows(test),
        "test_values": [float(v) for v in test_values],
        "r2_held_out": r2(test_values, fourier_eval(fourier, test)),
        "r2_queried": r2(seen["values"], fourier_eval(fourier, seen["masks"])),
        "fourier_terms": len(fourier),
        "top10_ksii": [[list(k), v] for k, v in top],
        "seconds": seconds,
    }
    with open(out, "w") as fh:
        json.dump(record, fh, indent=1)
        fh.write("\n")
    print(json.dumps({k: record[k] for k in ("shapiq", "r2_held_out", "r2_queried", "fourier_terms", "seconds")}))


if __name__ == "__main__":
    main()
