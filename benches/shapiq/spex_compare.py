"""Run shapiq 1.4.1's SPEX (sparse-transform decoder) on a sparse Fourier game from a JSON spec.

Usage: python spex_compare.py SPEC.json [SPEC.json ...] -> one JSON object per spec on stdout.

SPEC: {"n": int, "t": int, "budget": int, "decoder": "soft"|"hard", "seed": int,
       "terms": [[[players...], coefficient], ...]}
The game is f(x) = sum_S F(S) (-1)^{|S & x|}. The script runs exactly what
shapiq.SPEX.approximate runs up to the Fourier transform (budget rule, subsampled signal,
sparse_fourier_transform) and skips the Moebius/index conversion, so the Fourier spectra of both
implementations can be compared directly. The first spec is run twice: the first call pays
numba/galois JIT and is reported separately as `first_s` (0 for later specs, already compiled).
"""

import json
import sys
import time

import numpy as np
from shapiq.approximator.sparse import SPEX
from sparse_transform.qsft.qsft import transform as sparse_fourier_transform
from sparse_transform.qsft.signals.input_signal_subsampled import (
    SubsampledSignal as SubsampledSignalFourier,
)


def make_game(n, terms):
    keys = np.zeros((len(terms), n), dtype=np.int64)
    coefs = np.array([c for _, c in terms], dtype=float)
    for row, (players, _) in enumerate(terms):
        keys[row, players] = 1

    def game(x):
        parity = (x.astype(np.int64) @ keys.T) % 2
        return (1 - 2 * parity) @ coefs

    return game


def run_once(spec, game):
    np.random.seed(spec["seed"])  # ST draws M_c from NumPy's global RNG
    approx = SPEX(
        n=spec["n"],
        index="FBII",
        max_order=2,
        decoder_type=spec["decoder"],
        degree_parameter=spec["t"],
    )
    start = time.perf_counter()
    used = approx._set_transform_budget(spec["budget"])
    signal = SubsampledSignalFourier(
        func=lambda inputs: game(inputs.astype(bool)),
        n=spec["n"],
        q=2,
        query_args=approx.query_args,
    )
    sampled = time.perf_counter()
    spectrum = sparse_fourier_transform(signal, **approx.decoder_args)
    done = time.perf_counter()
    fourier = {tuple(np.nonzero(k)[0]): float(np.real(v)) for k, v in spectrum.items()}
    return used, fourier, sampled - start, done - sampled


def r2(n, truth, fourier, seed=0, m=2000):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, size=(m, n))
    y = make_game(n, truth)(x)
    pred = make_game(n, [(list(k), v) for k, v in fourier.items()])(x) if fourier else np.zeros(m)
    return 1.0 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)


def main():
    for i, path in enumerate(sys.argv[1:]):
        with open(path) as fh:
            spec = json.load(fh)
        game = make_game(spec["n"], spec["terms"])
        first = 0.0
        if i == 0:
            t0 = time.perf_counter()
            run_once(spec, game)
            first = time.perf_counter() - t0
        used, fourier, sample_s, decode_s = run_once(spec, game)
        result = {
            "used": int(used),
            "r2": float(r2(spec["n"], spec["terms"], fourier)),
            "terms": len(fourier),
            "first_s": first,
            "sample_s": sample_s,
            "decode_s": decode_s,
        }
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
