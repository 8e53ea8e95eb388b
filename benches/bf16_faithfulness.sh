#!/usr/bin/env bash
# How faithful `--dtype bf16` (bf16 projection products on the CPU) is to f32 on the default
# model: predictions on the lm-eval parity questions (the first 200 validation rows of each cloze
# set, copa's 100; the first 4 test rows of every MMLU subject, which hold the 200 of
# tests/data/lmeval_mmlu_sample.json), and one head attribution run in both dtypes (held-out R^2
# of the default decoder, top-10 interactions shared).
#
#   SPEX=target/release/spex OUT=runs/bf16 bash benches/bf16_faithfulness.sh
#
# Prints one line per set (acc and acc_norm agreement, accuracies) and the attribution figures.
set -euo pipefail
cd "$(dirname "$0")/.."
SPEX=${SPEX:-target/release/spex}
OUT=${OUT:-runs/bf16_faithfulness}
HEADS=${HEADS:---task arc-easy --limit 40 --layers 27-29 --value loglik-norm --budget 400 --held-out 100 --seed 7}
mkdir -p "$OUT"
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $(date -u +%FT%TZ)"
echo "SPEX_CPU_KERNELS=${SPEX_CPU_KERNELS:-auto}"

for set in arc-easy arc-challenge sciq openbookqa piqa hellaswag winogrande boolq copa mmlu; do
  split=validation limit=200
  [ "$set" = mmlu ] && split=test limit=4
  for dtype in f32 bf16; do
    [ -s "$OUT/$set-$dtype.json" ] && continue
    "$SPEX" eval --task "$set" --split "$split" --limit "$limit" --dtype "$dtype" \
      --json "$OUT/$set-$dtype.json" > /dev/null 2> "$OUT/$set-$dtype.log"
  done
done
python3 - "$OUT" <<'EOF'
import json, sys
out = sys.argv[1]
sets = "arc-easy arc-challenge sciq openbookqa piqa hellaswag winogrande boolq copa mmlu".split()
total = same = 0
for s in sets:
    a, b = (json.load(open(f"{out}/{s}-{d}.json")) for d in ("f32", "bf16"))
    qa, qb = a["questions"], b["questions"]
    assert len(qa) == len(qb), s
    acc = sum(x["pred"] == y["pred"] for x, y in zip(qa, qb))
    norm = [x.get("pred_norm") == y.get("pred_norm") for x, y in zip(qa, qb) if x.get("pred_norm") is not None]
    total += len(qa); same += acc
    print(f"{s}: {len(qa)} questions, acc predictions equal {acc}/{len(qa)}, "
          f"acc_norm predictions equal {sum(norm)}/{len(norm)}, "
          f"acc f32 {a['accuracy']:.4f} bf16 {b['accuracy']:.4f}")
print(f"all sets: acc predictions equal {same}/{total} ({100 * same / total:.1f} %)")
EOF

for dtype in f32 bf16; do
  if [ ! -s "$OUT/heads-$dtype/comparison.json" ]; then
    start=$(date +%s)
    # shellcheck disable=SC2086
    "$SPEX" heads $HEADS --dtype "$dtype" --out "$OUT/heads-$dtype" > /dev/null 2> "$OUT/heads-$dtype.log"
    echo "heads $dtype: $(( $(date +%s) - start )) s"
  fi
done
python3 - "$OUT" <<'EOF'
import json, sys
out = sys.argv[1]
top = {}
for d in ("f32", "bf16"):
    comp = json.load(open(f"{out}/heads-{d}/comparison.json"))
    inter = json.load(open(f"{out}/heads-{d}/interactions.json"))
    terms = [t for t in inter["interactions"] if t["players"]]
    terms.sort(key=lambda t: -abs(t["value"]))
    top[d] = {tuple(t["players"]) for t in terms[:10]}
    r2 = {m["method"]: round(m["r2_held_out"], 4) for m in comp["methods"]}
    print(f"heads {d}: R^2 on {comp['unseen_masks']} unseen masks {r2}")
print(f"top-10 interactions shared: {len(top['f32'] & top['bf16'])}/10")
EOF
