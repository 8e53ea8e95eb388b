"""The synthetic games with known spectra that the shapiq comparisons and reference runs share.

A hierarchical game is a sum of Moebius terms: main effects, triples (with all their pairs) and
more pairs, each coefficient uniform in +-[0.5, 1.5]. `moebius_eval` and `fourier_eval` evaluate
terms {players tuple: coefficient} on 0/1 masks [m, n]; `r2` scores predictions.
"""

import numpy as np


def hierarchical_game(n, rng, mains=40, triples=8, pairs=25):
    """Moebius terms {tuple: coef}: min(mains, n) main effects, `triples` triples (with all their
    pairs) and pairs among the main effects up to `pairs`, drawn from the generator `rng`."""
    players = sorted(rng.choice(n, size=min(mains, n), replace=False).tolist())
    terms = {(i,): float(rng.uniform(0.5, 1.5) * rng.choice([-1, 1])) for i in players}
    chosen = set()
    while len(chosen) < triples:
        chosen.add(tuple(sorted(rng.choice(players, size=3, replace=False).tolist())))
    duos = set()
    for t in sorted(chosen):
        duos.update({(t[0], t[1]), (t[0], t[2]), (t[1], t[2])})
    while len(duos) < pairs:
        duos.add(tuple(sorted(rng.choice(players, size=2, replace=False).tolist())))
    for p in sorted(duos):
        terms[p] = float(rng.uniform(0.5, 1.5) * rng.choice([-1, 1]))
    for t in sorted(chosen):
        terms[t] = float(rng.uniform(0.5, 1.5) * rng.choice([-1, 1]))
    return terms


def moebius_eval(terms, x):
    """The game of Moebius `terms` on masks `x` [m, n] (1 = player kept): [m] values."""
    x = np.asarray(x, dtype=bool)
    y = np.zeros(x.shape[0])
    for s, v in terms.items():
        y += v * np.all(x[:, list(s)], axis=1) if s else v
    return y


def fourier_eval(terms, x):
    """The function of Fourier `terms` on masks `x` [m, n]: each term times (-1)^(ones in it)."""
    x = np.asarray(x, dtype=np.int64)
    y = np.zeros(x.shape[0])
    for s, v in terms.items():
        y += v * (1 - 2 * (x[:, list(s)].sum(axis=1) % 2)) if s else v
    return y


def r2(y, p):
    """The coefficient of determination of predictions `p` for values `y`."""
    return float(1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2))
