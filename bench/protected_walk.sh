#!/bin/sh
# The cost of the search for protected paths (server/src/jail/protected.rs), measured as a user
# meets it: 5 `run_command("true")` in one `punie sandbox` snippet (each command walks the
# workspace before it starts and the quarantine walks it again after), in a nearly empty
# workspace and in larger ones; the snippet's `elapsed_ms` for each, three rounds.
#
#     /work/bin/heavy bench/protected_walk.sh [target/debug/punie] [workspace ...]
#
# Without workspaces it makes `source-tree`: 18,888 directories (17 x 10 x 10 x 10, and their
# parents), three empty files in each leaf. Extra workspaces are measured as they are (a copy
# of the cargo registry's sources, `cp -al`, is a tree of real crates).
set -eu
punie=$(realpath "${1:-target/debug/punie}")
[ $# -gt 0 ] && shift
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir "$scratch/empty"
python3 - "$scratch/source-tree" <<'EOF'
import os, sys
root = sys.argv[1]
for a in range(17):
    for b in range(10):
        for c in range(10):
            for d in range(10):
                leaf = f"{root}/p{a}/m{b}/s{c}/x{d}"
                os.makedirs(leaf)
                for f in range(3):
                    open(f"{leaf}/f{f}.py", "w").close()
EOF
printf 'for i in range(5):\n    run_command("true")\n' > "$scratch/snippet.py"
for round in 1 2 3; do
    for ws in "$scratch/empty" "$scratch/source-tree" "$@"; do
        dirs=$(find "$ws" -type d | wc -l)
        ms=$("$punie" sandbox --allow-commands --workspace "$ws" < "$scratch/snippet.py" 2>/dev/null |
            python3 -c 'import json, sys; r = json.load(sys.stdin); assert r["ok"], r; print(r["elapsed_ms"])')
        echo "round $round  $(basename "$ws")  $dirs directories  $ms ms for 5 commands"
    done
done
