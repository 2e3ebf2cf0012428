#!/usr/bin/env bash
# Write (or, with --check, verify) the locked requirements from pyproject.toml.
#   core.txt  the core install (make baseline)
#   all.txt   every extra (make test, CI)
# Pinned versions already in a lock are kept where pyproject.toml still allows them, so a
# new release elsewhere never changes the lock; --check fails when pyproject.toml changed
# without the lock. Usage: lock.sh UV [--check]
set -euo pipefail
uv=$1
mode=${2:-write}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
export UV_PYTHON_DOWNLOADS=never
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for name in core all; do
    extras=()
    [ "$name" = all ] && extras=(--all-extras)
    [ -f "$here/$name.txt" ] && cp "$here/$name.txt" "$work/$name.txt"
    (cd "$root" && "$uv" pip compile pyproject.toml "${extras[@]}" --universal --python-version 3.12 \
        --generate-hashes --no-header --quiet -o "$work/$name.txt")
    if [ "$mode" = --check ]; then
        if ! diff -q "$here/$name.txt" "$work/$name.txt" >/dev/null 2>&1; then
            echo "requirements/$name.txt does not match pyproject.toml: run 'make lock' and commit it" >&2
            diff "$here/$name.txt" "$work/$name.txt" | head -20 >&2 || true
            status=1
        fi
    else
        cp "$work/$name.txt" "$here/$name.txt"
    fi
done
exit $status
