"""spex.ProxySPEX against shapiq 1.8.0's ProxySPEX on the same samples.

tests/data/shapiq_proxyspex_reference.json holds what tests/reference/shapiq_proxyspex_reference.py
recorded with shapiq 1.8.0 on Python 3.12: the masks shapiq drew, the game's values, unseen test
masks, shapiq's held-out R^2 and its top-10 k-SII terms. spex decodes the same masks and values.
"""

import json

import numpy as np
import pytest

import spex
from conftest import ROOT

REFERENCE = ROOT / "tests" / "data" / "shapiq_proxyspex_reference.json"


def unhex(rows, n):
    return np.stack([np.unpackbits(np.frombuffer(bytes.fromhex(r), np.uint8))[:n] for r in rows]).astype(bool)


def r2(y, p):
    return 1 - np.sum((y - p) ** 2) / np.sum((y - y.mean()) ** 2)


def test_proxyspex_held_out_r2_is_at_least_shapiqs_on_the_same_samples(capsys):
    ref = json.loads(REFERENCE.read_text())
    n = ref["n"]
    masks, values = unhex(ref["masks_hex"], n), np.array(ref["values"])
    test, test_values = unhex(ref["test_masks_hex"], n), np.array(ref["test_values"])
    result = spex.ProxySPEX(n, max_order=2, index="k-SII", random_state=0).fit(masks, values)
    ours = r2(test_values, result.spectrum.evaluate(test))
    theirs_top = {tuple(p) for p, _ in ref["top10_ksii"]}
    ours_top = {p for p, _ in result.top(10)}
    overlap = len(theirs_top & ours_top)
    cv = spex.ProxySPEXCV(n, random_state=0).fit(masks, values)
    ours_cv = r2(test_values, cv.spectrum.evaluate(test))
    with capsys.disabled():
        print(
            f"\nheld-out R^2 on {len(test_values)} unseen masks (n = {n}, {len(values)} samples): "
            f"spex.ProxySPEX {ours:.4f}, spex.ProxySPEXCV {ours_cv:.4f}, shapiq {ref['shapiq']} "
            f"{ref['r2_held_out']:.4f}; top-10 k-SII overlap {overlap}/10"
        )
    assert ours >= ref["r2_held_out"] - 0.01
    assert overlap >= 7
