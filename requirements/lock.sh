#!/usr/bin/env bash
# Write (or, with --check, verify) the locked requirements from pyproject.toml.
#   core.txt   the core install (make baseline)
#   all.txt    every extra (make test, CI)
#   build.txt  the build backend installing the project ([build-system] requires)
#   tools.txt  uv itself, which make installs with pip (its pin kept: a new uv is a choice)
# Pinned versions already in a lock are kept where pyproject.toml still allows them, so a
# new release elsewhere never changes the lock; --check fails when pyproject.toml changed
# without the lock (it compares the pins, not the hashes of their files). Usage: lock.sh UV [--check]
set -euo pipefail
uv=$1
mode=${2:-write}
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
export UV_PYTHON_DOWNLOADS=never
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
unhashed() { grep -v '^ *--hash=' "$1" | sed 's/ *\\$//'; }
# [build-system] requires, written on one line in pyproject.toml
grep '^requires = \[' "$root/pyproject.toml" | grep -o '"[^"]*"' | tr -d '"' >"$work/build.in"
echo uv >"$work/tools.in"
for name in core all build tools; do
    source=(pyproject.toml)
    [ "$name" = all ] && source+=(--all-extras)
    [ "$name" = build ] && source=(- --no-annotate)
    [ "$name" = tools ] && source=("$work/tools.in" --no-annotate)
    [ -f "$here/$name.txt" ] && cp "$here/$name.txt" "$work/$name.txt"
    (cd "$root" && "$uv" pip compile "${source[@]}" --universal --python-version 3.12 \
        --generate-hashes --no-header --quiet -o "$work/$name.txt" <"$work/build.in")
    if [ "$mode" = --check ]; then
        # pins and markers, not hashes: a wheel a registry adds to a pinned release later
        # changes the hashes but not what is installed from the committed lock
        if ! diff -q <(unhashed "$here/$name.txt") <(unhashed "$work/$name.txt") >/dev/null 2>&1; then
            echo "requirements/$name.txt does not match pyproject.toml: run 'make lock' and commit it" >&2
            diff <(unhashed "$here/$name.txt") <(unhashed "$work/$name.txt") | head -20 >&2 || true
            status=1
        fi
    else
        cp "$work/$name.txt" "$here/$name.txt"
    fi
done
# make baseline installs core.txt over an environment make dev filled from all.txt: every core
# pin must be the same there, or the baseline would move packages the extras depend on
pins() { grep -o '^[A-Za-z0-9._-]*==[^ ]*' "$1" | sort; }
differ=$(comm -23 <(pins "$here/core.txt") <(pins "$here/all.txt"))
if [ -n "$differ" ]; then
    echo "requirements/core.txt pins what requirements/all.txt pins otherwise or not at all:" >&2
    echo "$differ" | head -20 >&2
    status=1
fi
exit $status
