#!/usr/bin/env bash
# Sets up everything, then runs lint, type checks and every test suite, each framework in its own process.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh || exit 1
export PATH="$PWD/.venv/bin:$PATH"
if command -v clang-14 >/dev/null 2>&1 && ! command -v clang >/dev/null 2>&1; then
    export CC=clang-14
fi

failed=()
step() {
    local name=$1; shift
    echo "==> $name"
    "$@" || failed+=("$name")
}

step ruff ruff check .
step ruff-format ruff format --check .
step mypy mypy
# The tests too, a folder at a time: each has its own conftest.py, which one mypy run would take for one module.
for suite in packages/*/tests tests; do
    [ -d "$suite" ] && step "mypy $suite" mypy "$suite"
done
for suite in packages/*/tests tests; do
    [ -d "$suite" ] || continue
    step "pytest $suite" python -m pytest "$suite" -q
done

if [ ${#failed[@]} -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "all checks passed"
