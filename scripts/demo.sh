#!/usr/bin/env bash
# Sets everything up, then runs the main job: `punie ask` on the sample workspace with the
# default model, printing the answer. Idempotent.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$repo_root/scripts/bootstrap.sh"

# Work on a copy so the run's transcript (.punie/) does not land in the repository.
workspace="$(mktemp -d)"
trap 'rm -rf "$workspace"' EXIT
cp -R "$repo_root/tests/fixtures/workspace/." "$workspace/"
question="${1:-What does this project do? Read README.md and answer in two sentences.}"
say "punie ask --workspace <a copy of tests/fixtures/workspace> \"$question\""
"$repo_root/target/debug/punie" ask --workspace "$workspace" "$question"
