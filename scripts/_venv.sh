# Sourced by the scripts: find Python 3.11+, make .venv if it is missing, activate it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3.12 python3.13 python3.14 python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      PYTHON="$candidate"; break
    fi
  done
fi
if [ -z "$PYTHON" ]; then
  echo "error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi
VENV="${VENV:-.venv}"
CREATED=0
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
  CREATED=1
fi
# shellcheck disable=SC1091
. "$VENV/bin/activate"
if [ "$CREATED" = 1 ]; then  # a new virtualenv's pip may predate what pyproject needs
  python -m pip install --quiet --disable-pip-version-check --upgrade pip
fi
