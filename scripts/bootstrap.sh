#!/usr/bin/env bash
# Creates .venv with every aither package (editable) and the test stack. Idempotent; safe on a fresh machine.
#   scripts/bootstrap.sh          everything `make test` needs
#   scripts/bootstrap.sh --demo   only what `make demo` needs: aither-core, aither-sklearn, aither-server
set -euo pipefail
cd "$(dirname "$0")/.."
demo=false
[ "${1:-}" = "--demo" ] && demo=true

PYTHON=${PYTHON:-python3}
if ! command -v uv >/dev/null 2>&1; then
    "$PYTHON" -m pip install --quiet uv
fi
UV=$(command -v uv || echo "$PYTHON -m uv")

# tinygrad's CPU device compiles kernels with clang.
if ! $demo && ! command -v clang >/dev/null 2>&1 && ! command -v clang-14 >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq clang-14 >/dev/null) \
            || echo "bootstrap: could not install clang-14; tinygrad tests will fail" >&2
    else
        echo "bootstrap: clang not found and cannot apt-get it; tinygrad tests will fail" >&2
    fi
fi

# The dashboard's browser tests drive Debian's headless Chromium through its chromedriver (no browser download).
if ! $demo && ! command -v chromedriver >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
            || echo "bootstrap: could not install chromium; the dashboard's browser tests will fail" >&2
    else
        echo "bootstrap: chromedriver not found and cannot apt-get it; the dashboard's browser tests will fail" >&2
    fi
fi
# The server's test suite runs every test on PostgreSQL too, in a throwaway cluster of Debian's binaries.
if ! $demo && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
        (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null) \
            || echo "bootstrap: could not install postgresql; the server's PostgreSQL tests will fail" >&2
    else
        echo "bootstrap: PostgreSQL (initdb) not found and cannot apt-get it; the server's tests will fail" >&2
    fi
fi

[ -x .venv/bin/python ] || $UV venv --quiet --python "$PYTHON" .venv

# uv does not read pip's configuration: point it at the local wheel folder so torch is the CPU build.
find_links=()
if [ -d /opt/wheels ]; then find_links=(--find-links /opt/wheels); fi

if $demo; then
    $UV pip install --quiet --python .venv/bin/python "${find_links[@]}" \
        -e packages/aither-core -e packages/aither-sklearn -e packages/aither-server "scikit-learn>=1.5" "pandas>=2"
    exit 0
fi

editables=()
for pkg in packages/*/; do
    [ -f "$pkg/pyproject.toml" ] && editables+=(-e "$pkg")
done

$UV pip install --quiet --python .venv/bin/python "${find_links[@]}" \
    "${editables[@]}" -e . -r requirements/test.txt
