"""R^2 of a spex spectrum.json's predictions on masks.npy against values.npy (numpy only).

Fourier basis: f(x) = sum_S F(S) (-1)^{|S & x|}, x = kept players (mask bit 1).
Usage: python spectrum_r2.py spectrum.json masks.npy values.npy
"""
import json
import sys

import numpy as np


def predict(spectrum, masks):
    if spectrum["basis"] != "fourier":
        raise SystemExit("spectrum_r2.py reads Fourier spectra (spex writes them)")
    x = masks.astype(np.int64)
    out = np.zeros(len(x))
    for term in spectrum["terms"]:
        parity = x[:, term["players"]].sum(axis=1) % 2 if term["players"] else 0
        out += term["value"] * (1 - 2 * parity)
    return out


def main():
    spectrum = json.load(open(sys.argv[1]))
    masks = np.load(sys.argv[2])
    values = np.load(sys.argv[3])
    pred = predict(spectrum, masks)
    r2 = 1 - ((values - pred) ** 2).sum() / ((values - values.mean()) ** 2).sum()
    print(f"held-out masks: {len(values)}, terms: {len(spectrum['terms'])}, R^2 = {r2:.4f}")


main()
