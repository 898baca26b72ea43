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
  echo "attncli: installing attncli and its dependencies into $VENV (torch pinned to 2.13.0; about a minute)" >&2
  LOG="$VENV/install.log"
  # NOTE: pip's output goes to a log (this machine's pip config is noisy); shown on failure. So that
  # the minute of installing is not a silent one, a terminal sees each package pip collects and a
  # heartbeat every 10 s; a pipe (CI) gets the heartbeat only.
  "$VENV/bin/python" -m pip install -c "$ROOT/constraints.txt" -e "$ROOT[$ATTNCLI_EXTRAS]" >"$LOG" 2>&1 &
  PIP=$!
  SHOWN=0
  SECONDS=0
  while kill -0 "$PIP" 2>/dev/null; do
    sleep 1
    if [ -t 2 ]; then
      NOW=$(grep -c '^Collecting\|^Installing collected' "$LOG" 2>/dev/null || true)
      if [ "${NOW:-0}" -gt "$SHOWN" ]; then
        grep '^Collecting\|^Installing collected' "$LOG" | sed -n "$((SHOWN + 1)),${NOW}p" | cut -c1-78 | sed 's/^/  /' >&2
        SHOWN=$NOW
      fi
    fi
    if [ $((SECONDS % 10)) -eq 0 ]; then
      echo "attncli: still installing (${SECONDS} s; log: $LOG)" >&2
    fi
  done
  if ! wait "$PIP"; then
    tail -n 30 "$LOG" >&2
    echo "attncli: installing failed; the full log is $LOG" >&2
    exit 1
  fi
  echo "attncli: installed in ${SECONDS} s; from now on run $VENV/bin/attncli (or: source $VENV/bin/activate)" >&2
  touch "$STAMP"
fi
