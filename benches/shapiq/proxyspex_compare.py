"""Reference side of the ProxySPEX comparison: shapiq 1.4.1's ProxySPEX pipeline on fixed samples.

For each (n, budget) point this script
1. draws a hierarchical sparse Moebius game (40 main effects, 25 pairs, 8 triples; every pair's
   and triple's subsets are also terms), `budget` distinct uniform training masks (the empty and the
   full mask included) and 1000 i.i.d. uniform test masks, and writes them to
   DATA/n{n}_b{budget}/{masks,values,test_masks,test_values}.npy (uint8 [m, n] / float64 [m]);
2. runs shapiq's own ProxySPEX fitting path on exactly those samples: the LGBMRegressor +
   GridSearchCV(cv=5, scoring="r2") set up as in `Sparse.approximate` (same grid, n_jobs=1), then
   the instance's `_lgboost_to_fourier` and `_refine` (energy cut + RidgeCV);
3. appends {n, budget, r2_test, fit_s, n_coefs} to DATA/reference.jsonl.

Timed: grid search + tree->Fourier + refine (the decode; the game itself costs ~0 s).
Usage: python proxyspex_compare.py DATA [n:budget ...]   (default: all 9 points)
"""

import json
import sys
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV
from shapiq.approximator.sparse import ProxySPEX

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "reference"))
from synthetic_games import fourier_eval, hierarchical_game, moebius_eval, r2  # noqa: E402


def distinct_uniform_masks(n, m, rng):
    rows = {bytes(n), bytes([1] * n)}
    out = [np.zeros(n, np.uint8), np.ones(n, np.uint8)]
    while len(out) < m:
        x = rng.integers(0, 2, size=n, dtype=np.uint8)
        k = x.tobytes()
        if k not in rows:
            rows.add(k)
            out.append(x)
    return np.stack(out)


def main():
    data = Path(sys.argv[1])
    points = [tuple(map(int, a.split(":"))) for a in sys.argv[2:]] or [
        (n, b) for b in (1000, 2000, 5000) for n in (128, 512, 1000)
    ]
    for n, budget in points:
        rng = np.random.default_rng(1000 * n + budget)
        terms = hierarchical_game(n, rng)
        X = distinct_uniform_masks(n, budget, rng)
        y = moebius_eval(terms, X)
        Xt = rng.integers(0, 2, size=(1000, n), dtype=np.uint8)
        yt = moebius_eval(terms, Xt)
        d = data / f"n{n}_b{budget}"
        d.mkdir(parents=True, exist_ok=True)
        np.save(d / "masks.npy", X)
        np.save(d / "values.npy", y)
        np.save(d / "test_masks.npy", Xt)
        np.save(d / "test_values.npy", yt)

        approx = ProxySPEX(n=n, index="FBII", max_order=2, random_state=0)
        t0 = time.perf_counter()
        train_X = pd.DataFrame(X.astype(bool), columns=[f"f{i}" for i in range(n)])
        base = lgb.LGBMRegressor(verbose=-1, n_jobs=1, random_state=0)
        gs = GridSearchCV(base, approx.decoder_args, scoring="r2", cv=5, verbose=0, n_jobs=1)
        gs.fit(train_X, y)
        four = approx._lgboost_to_fourier(gs.best_estimator_.booster_.dump_model())
        refined = approx._refine(four, X.astype(bool), y)
        fit_s = time.perf_counter() - t0
        rec = {
            "n": n,
            "budget": budget,
            "r2_test": float(r2(yt, fourier_eval(refined, Xt))),
            "r2_trees_test": float(r2(yt, gs.best_estimator_.predict(pd.DataFrame(Xt.astype(bool), columns=train_X.columns)))),
            "fit_s": fit_s,
            "n_coefs": len(refined),
            "best_params": gs.best_params_,
        }
        print(json.dumps(rec), flush=True)
        with open(d / "reference_fourier.json", "w") as f:
            json.dump([[list(map(int, k)), float(v)] for k, v in sorted(refined.items())], f)
        with open(data / "reference.jsonl", "a") as f:
            f.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
