#!/usr/bin/env bash
# Type-checks and lints the `metal` build on Linux, where Metal cannot be compiled for real:
#
#   bash kernels/metal_check.sh      # about 3 minutes cold on 2 cores; CI runs it
#
# The objc2 crates refuse non-Apple targets unless told the Objective-C runtime is GNUstep, and
# objc2-metal links the Metal framework. So, in a scratch copy of this checkout (the working tree
# as it is, untracked files included), the check turns on objc2's GNUstep features, patches those
# two things out of copies of objc2-metal and objc2-foundation, and runs
# `cargo clippy --features metal --all-targets -- -D warnings`. Nothing is linked or run: this
# proves that spex's Metal code (src/model/gpu/metal.rs, tests/gpu.rs) compiles and is
# lint-clean against candle's Metal API. The kernel itself is tested on the host by
# src/model/testing/kernels_on_host.rs, and on a Mac by `cargo test --features metal`.
set -euo pipefail
cd "$(dirname "$0")/.."

root=$(pwd)
scratch="$root/target/metal-check"
rm -rf "$scratch/src-copy" "$scratch/patched"
mkdir -p "$scratch/src-copy" "$scratch/patched"

# The crates' sources, downloaded by cargo if need be.
manifest_of() {
    cargo metadata --format-version 1 --features metal --filter-platform aarch64-apple-darwin |
        python3 -c 'import json, sys
name = sys.argv[1]
print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"] == name))' "$1"
}
metal_dir=$(dirname "$(manifest_of objc2-metal)")
foundation_dir=$(dirname "$(manifest_of objc2-foundation)")
cp -r "$metal_dir" "$scratch/patched/objc2-metal"
cp -r "$foundation_dir" "$scratch/patched/objc2-foundation"
chmod -R u+w "$scratch/patched"

python3 - "$scratch/patched" <<'EOF'
import pathlib, sys
root = pathlib.Path(sys.argv[1])

def drop(path, text):
    p = root / path
    s = p.read_text()
    if text not in s:
        sys.exit(f"metal_check: {p} no longer has the text to patch: {text!r}")
    p.write_text(s.replace(text, "", 1))

# The framework link (unsupported off Apple; a check links nothing anyway).
drop("objc2-metal/src/generated/mod.rs", '#[link(name = "Metal", kind = "framework")]\nextern "C" {}\n')
# NSURL's path conversions, which candle-core calls, are compiled out under GNUstep.
drop("objc2-foundation/src/url.rs", '#![cfg(not(feature = "gnustep-1-7"))]')
EOF

git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$scratch/src-copy"
cd "$scratch/src-copy"
python3 - "$scratch/patched" <<'EOF'
import pathlib, sys
patched = sys.argv[1]
p = pathlib.Path("Cargo.toml")
s = p.read_text()
gnustep = '{ version = "*", features = ["gnustep-2-1"] }'
s = s.replace("[dependencies]\n", "[dependencies]\n" + "".join(
    f"{name} = {gnustep}\n" for name in ["objc2", "block2", "objc2-foundation"]), 1)
s += f'\n[patch.crates-io]\nobjc2-metal = {{ path = "{patched}/objc2-metal" }}\n'
s += f'objc2-foundation = {{ path = "{patched}/objc2-foundation" }}\n'
p.write_text(s)
EOF

CARGO_TARGET_DIR="$scratch/target" nice -n 19 cargo clippy --features metal --all-targets -- -D warnings
echo "metal_check: the metal build type-checks and is clippy-clean"
