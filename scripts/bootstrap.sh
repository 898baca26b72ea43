# Sourced by scripts/attncli and scripts/test: make .venv and install attncli into it.
# Needs only Python >= 3.10. torch is pinned (constraints.txt) so pip never pulls CUDA builds.
set -eu
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ATTNCLI_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
STAMP="$VENV/.attncli-installed"
if [ ! -x "$VENV/bin/python" ]; then
  echo "attncli: creating $VENV" >&2
  "$PY" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$ROOT/pyproject.toml" -nt "$STAMP" ] || [ "$ROOT/constraints.txt" -nt "$STAMP" ]; then
  echo "attncli: installing attncli and its dependencies into $VENV (torch pinned to 2.13.0)" >&2
  LOG="$VENV/install.log"
  # NOTE: pip's output goes to a log (this machine's pip config is noisy); shown on failure.
  if ! "$VENV/bin/python" -m pip install -c "$ROOT/constraints.txt" -e "$ROOT[$ATTNCLI_EXTRAS]" >"$LOG" 2>&1; then
    tail -n 30 "$LOG" >&2
    echo "attncli: installing failed; the full log is $LOG" >&2
    exit 1
  fi
  touch "$STAMP"
fi
