"""Write tests/data/smollm2_reference_logits.json: Hugging Face last-position logits on SmolLM2.

Reference for spex's forward pass: transformers `LlamaForCausalLM` in f32 with eager attention on
the dequantized folder `$SPEX_HOME/models/smollm2-135m-instruct-hf` (made by models/fetch.sh).
Token ids come from the folder's tokenizer with no special tokens added. One case ablates heads by
zeroing their 64-column slices of each listed layer's `self_attn.o_proj` input (forward pre-hook).
Fails unless "The capital of France is" predicts " Paris" first.

Usage (reference venv pinned in tests/reference/requirements-ref.txt):
    /work/venv-ref/bin/python tests/reference/make_reference_logits.py [--out PATH]
"""

import argparse
import hashlib
import json
import os
import platform
import sys
from pathlib import Path

import numpy as np
import safetensors
import tokenizers
import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer

TOP_K = 20
PROBE_STRIDE = 97
PARAGRAPH = (
    "The old lighthouse stood on a rocky point at the edge of the bay. Every night for ninety "
    "years its keeper climbed the spiral stairs, trimmed the wick and polished the great lens, "
    "so that fishing boats coming home through fog and storm could find the narrow channel "
    "between the reefs. When the keeper finally retired, the town"
)
ABLATED_HEADS = [[0, 3], [4, 0], [11, 7], [19, 2], [29, 8]]


def spex_home() -> Path:
    """SPEX_HOME, defaulting to ~/.cache/spex as in the assets contract."""
    return Path(os.environ.get("SPEX_HOME", Path.home() / ".cache" / "spex"))


def sha256(path: Path) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def mmlu_prompt(home: Path) -> str:
    """lm-eval's 0-shot MMLU context for the first abstract_algebra test row (no continuation)."""
    path = home / "data" / "mmlu" / "abstract_algebra" / "test.jsonl"
    with path.open(encoding="utf-8") as f:
        row = json.loads(f.readline())
    options = "".join(f"{letter}. {c}\n" for letter, c in zip("ABCD", row["choices"]))
    return (
        "The following are multiple choice questions (with answers) about abstract algebra.\n\n"
        f"{row['question'].strip()}\n{options}Answer:"
    )


def head_mask_hook(heads: list[int], n_heads: int):
    """Forward pre-hook for o_proj zeroing the given heads of its input [B, T, n_heads*hd]."""

    def hook(_module, args):
        (x,) = args
        b, t, d = x.shape
        x = x.view(b, t, n_heads, d // n_heads).clone()
        x[:, :, heads, :] = 0.0
        return (x.view(b, t, d),)

    return hook


def last_logits(model, ids: list[int], ablated: list[list[int]]) -> torch.Tensor:
    """f32 logits [vocab] at the last position, with the listed [layer, head] pairs ablated."""
    n_heads = model.config.num_attention_heads
    by_layer: dict[int, list[int]] = {}
    for layer, head in ablated:
        by_layer.setdefault(layer, []).append(head)
    handles = [
        model.model.layers[layer].self_attn.o_proj.register_forward_pre_hook(
            head_mask_hook(heads, n_heads)
        )
        for layer, heads in sorted(by_layer.items())
    ]
    try:
        with torch.no_grad():
            out = model(torch.tensor([ids]), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return out.logits[0, -1].float()


def case(model, tok, text: str, ablated: list[list[int]]) -> dict:
    """One reference case in the contract's format."""
    ids = tok(text, add_special_tokens=False)["input_ids"]
    logits = last_logits(model, ids, ablated)
    top = torch.argsort(logits, descending=True, stable=True)[:TOP_K]
    probe = list(range(0, logits.shape[0], PROBE_STRIDE))
    return {
        "text": text,
        "input_ids": ids,
        "ablated_heads": ablated,
        "top_ids": top.tolist(),
        "top_logits": [float(v) for v in logits[top]],
        "probe_ids": probe,
        "probe_logits": [float(v) for v in logits[probe]],
        "logsumexp": float(torch.logsumexp(logits.double(), dim=0)),
    }


def main() -> None:
    """Compute all cases and write the JSON file."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("tests/data/smollm2_reference_logits.json"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    home = spex_home()
    folder = home / "models" / "smollm2-135m-instruct-hf"
    gguf_path = home / "models" / "smollm2-135m-instruct" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    for p in (folder / "model.safetensors", gguf_path):
        if not p.is_file():
            sys.exit(f"missing {p}: run models/fetch.sh first")

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(
        folder, dtype=torch.float32, attn_implementation="eager"
    ).eval()

    cases = [
        case(model, tok, "The capital of France is", []),
        case(model, tok, "One, two, three, four,", []),
        case(model, tok, PARAGRAPH, []),
        case(model, tok, mmlu_prompt(home), []),
        case(model, tok, PARAGRAPH, ABLATED_HEADS),
    ]
    paris = tok.decode([cases[0]["top_ids"][0]])
    if paris != " Paris":
        sys.exit(f"sanity check failed: 'The capital of France is' -> {paris!r}, expected ' Paris'")
    for c in cases:
        print(
            f"{len(c['input_ids']):3d} tokens, ablated {len(c['ablated_heads'])}: "
            f"top-1 {tok.decode([c['top_ids'][0]])!r} ({c['top_logits'][0]:.4f})"
        )

    result = {
        "made_by": "python tests/reference/make_reference_logits.py"
        f" --threads {args.threads} (SPEX_HOME={home})",
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "tokenizers": tokenizers.__version__,
            "safetensors": safetensors.__version__,
            "numpy": np.__version__,
            "attn_implementation": "eager",
            "dtype": "float32",
            "model_safetensors_sha256": sha256(folder / "model.safetensors"),
        },
        "model": sha256(gguf_path),
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
