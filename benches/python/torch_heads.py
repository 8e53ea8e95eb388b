"""Head-ablated forward passes per second of SmolLM2 in PyTorch eager (the baseline users write).

Each batch row gets its own head keep-mask: a forward pre-hook on every layer's
`self_attn.o_proj` views the input [B, T, H*hd] as [B, T, H, hd] and multiplies it by that
layer's [B, H] slice of the masks. A "pass" is one ablated sequence (one batch row); full logits
at every position are computed, as a plain `model(input_ids)` call does, unless --last-logits
(transformers' `logits_to_keep=1`: the LM head on the last position only, as spex reads out).
With --autocast-bf16 the passes run under `torch.autocast("cpu", dtype=torch.bfloat16)`: linear
layers in bf16 (oneDNN uses the CPU's bf16 instructions where it has them), softmax and norms in
f32, as PyTorch users run half precision on a CPU.

Masks: --masks FILE.npy ([m, L*H] uint8, 1 = keep, layer-major: column l*H + h) cycled over
the rows, or random keep-masks (each head kept with probability 1/2) drawn with --seed.
The prompt is a fixed English paragraph's token ids repeated to exactly T tokens.

Prints one JSON line per (T, B): {"T", "B", "passes_per_s", "peak_rss_mb", "passes", "seconds",
"threads", "last_logits", "autocast_bf16"}. Usage:
    /work/venv-ref/bin/python benches/python/torch_heads.py --prompt-len 64 --batch-sizes 16 \
        --passes 128 --threads 2 [--masks masks.npy | --seed 0]
"""

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

TEXT = (
    "The old lighthouse stood on a rocky point at the edge of the bay. Every night for ninety "
    "years its keeper climbed the spiral stairs, trimmed the wick and polished the great lens, "
    "so that fishing boats coming home through fog and storm could find the narrow channel "
    "between the reefs. "
)


def default_model() -> Path:
    """The dequantized SmolLM2 folder under SPEX_HOME (default ~/.cache/spex)."""
    home = Path(os.environ.get("SPEX_HOME", Path.home() / ".cache" / "spex"))
    return home / "models" / "smollm2-135m-instruct-hf"


def load_masks(path: Path | None, seed: int, rows: int, n_layers: int, n_heads: int) -> np.ndarray:
    """Keep-masks [m, L*H] as uint8: read from `path` (checked) or `rows` random ones from `seed`."""
    width = n_layers * n_heads
    if path is None:
        rng = np.random.default_rng(seed)
        return rng.integers(0, 2, size=(rows, width), dtype=np.uint8)
    masks = np.load(path)
    if masks.ndim != 2 or masks.shape[1] != width or masks.shape[0] == 0:
        sys.exit(f"--masks {path}: shape {masks.shape}, expected [m>0, {width}] (L*H)")
    if masks.dtype != np.uint8 or masks.max() > 1:
        sys.exit(f"--masks {path}: dtype {masks.dtype}, expected uint8 values 0/1")
    return masks


class HeadMasker:
    """Holds the current [L, B, H] keep-mask and installs the o_proj pre-hooks that apply it."""

    def __init__(self, model, n_heads: int):
        self.n_heads = n_heads
        self.current: torch.Tensor | None = None
        for i, layer in enumerate(model.model.layers):
            layer.self_attn.o_proj.register_forward_pre_hook(self._hook(i))

    def _hook(self, layer: int):
        def hook(_module, args):
            (x,) = args
            b, t, d = x.shape
            m = self.current[layer].to(x.dtype).view(b, 1, self.n_heads, 1)
            return ((x.view(b, t, self.n_heads, d // self.n_heads) * m).view(b, t, d),)

        return hook


def prompt_ids(tok, length: int) -> list[int]:
    """The fixed paragraph's token ids repeated and cut to exactly `length` tokens."""
    base = tok(TEXT, add_special_tokens=False)["input_ids"]
    return (base * (length // len(base) + 1))[:length]


def run(model, masker, ids, masks, batch: int, passes: int, n_layers: int, n_heads: int,
        last_logits: bool, autocast_bf16: bool) -> dict:
    """Time ceil(passes/batch) batches (after one warm-up batch); return the JSON-line record."""
    x = torch.tensor([ids] * batch)
    all_masks = torch.from_numpy(masks.astype(np.float32)).view(-1, n_layers, n_heads)
    n_batches = max(1, -(-passes // batch))

    def step(k: int) -> None:
        rows = torch.arange(k * batch, (k + 1) * batch) % all_masks.shape[0]
        masker.current = all_masks[rows].transpose(0, 1).contiguous()
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast_bf16):
            if last_logits:
                model(x, use_cache=False, logits_to_keep=1)
            else:
                model(x, use_cache=False)

    step(0)
    start = time.perf_counter()
    for k in range(n_batches):
        step(k)
    seconds = time.perf_counter() - start
    done = n_batches * batch
    return {
        "T": len(ids),
        "B": batch,
        "passes_per_s": round(done / seconds, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "passes": done,
        "seconds": round(seconds, 3),
        "threads": torch.get_num_threads(),
        "last_logits": last_logits,
        "autocast_bf16": autocast_bf16,
    }


def main() -> None:
    """Parse arguments, load the model once, print one JSON line per (T, B)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=default_model())
    ap.add_argument("--prompt-len", type=int, nargs="+", default=[64])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[16])
    ap.add_argument("--passes", type=int, default=64, help="ablated sequences timed per (T, B)")
    ap.add_argument("--masks", type=Path, default=None, help="[m, L*H] uint8 .npy, 1 = keep")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random masks (no --masks)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--last-logits", action="store_true",
                    help="LM head on the last position only (logits_to_keep=1)")
    ap.add_argument("--autocast-bf16", action="store_true",
                    help="run under torch.autocast('cpu', dtype=torch.bfloat16)")
    args = ap.parse_args()
    if any(b < 1 for b in args.batch_sizes) or any(t < 1 for t in args.prompt_len):
        sys.exit("--batch-sizes and --prompt-len must be positive")
    if not (args.model / "model.safetensors").is_file():
        sys.exit(f"--model {args.model}: no model.safetensors (run models/fetch.sh)")

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(args.model)
    model = AutoModelForCausalLM.from_pretrained(
        args.model, dtype=torch.float32, attn_implementation="eager"
    ).eval()
    n_layers = model.config.num_hidden_layers
    n_heads = model.config.num_attention_heads
    masks = load_masks(args.masks, args.seed, max(args.passes, 1), n_layers, n_heads)
    masker = HeadMasker(model, n_heads)
    for t in args.prompt_len:
        ids = prompt_ids(tok, t)
        for b in args.batch_sizes:
            rec = run(model, masker, ids, masks, b, args.passes, n_layers, n_heads,
                      args.last_logits, args.autocast_bf16)
            print(json.dumps(rec), flush=True)


if __name__ == "__main__":
    main()
