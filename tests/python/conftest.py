"""Shared helpers of the Python package's tests (run by .ci/run after the wheel is installed)."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def moebius_game(terms):
    """A game from Moebius terms ``{players: coefficient}``: f(x) = sum_S a(S) prod_{i in S} x_i."""

    def game(masks):
        x = np.asarray(masks, dtype=bool)
        y = np.zeros(x.shape[0])
        for s, v in terms.items():
            y += v * np.all(x[:, list(s)], axis=1) if s else v
        return y

    return game


def fourier_game(terms):
    """A game from Fourier terms: f(x) = sum_S F(S) (-1)^{|S ∩ x|}."""

    def game(masks):
        x = np.asarray(masks, dtype=np.int64)
        y = np.zeros(x.shape[0])
        for s, v in terms.items():
            y += v * (1 - 2 * (x[:, list(s)].sum(axis=1) % 2)) if s else v
        return y

    return game


@pytest.fixture(scope="session")
def spex_cli():
    """The `spex` binary: $SPEX_CLI, else the cargo target folders' debug or release build."""
    candidates = [os.environ.get("SPEX_CLI")]
    target = os.environ.get("CARGO_TARGET_DIR")
    for t in ([target] if target else []) + [str(ROOT / "target")]:
        candidates += [f"{t}/debug/spex", f"{t}/release/spex"]
    for c in candidates:
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    found = shutil.which("spex")
    if found:
        return found
    pytest.skip("no spex CLI binary (set SPEX_CLI or build it with cargo build --bin spex)")
