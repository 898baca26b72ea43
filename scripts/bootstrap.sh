# Sourced by scripts/attncli and scripts/test: make .venv and install attncli into it.
# ATTNCLI_EXTRAS (comma-separated) names the extras the caller needs: scripts/attncli asks for what
# running attncli needs (hf, plot); scripts/test adds dev (pytest, ruff, mypy, ...) to the same venv.
# The stamp file records the extras installed, so each set of extras is installed once.
# Needs only Python >= 3.10 and bash. torch is pinned (constraints.txt) so pip never pulls CUDA builds.
# Ctrl-C stops pip (and all it started) and says to run the same command again; a second set-up of
# the same venv started meanwhile is refused in one line (flock, or a lock directory without it).
set -eu
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ATTNCLI_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
STAMP="$VENV/.attncli-installed"
LOCK="$VENV/.attncli-lock"
LOG="$VENV/install.log"

_attncli_sorted() {  # "plot,hf dev" -> "dev,hf,plot"
  printf '%s\n' "$@" | tr ', ' '\n\n' | sed '/^$/d' | sort -u | paste -sd, -
}

_attncli_fresh() {  # the stamp is newer than pyproject.toml and constraints.txt and lists every extra asked for
  [ -f "$STAMP" ] && [ ! "$ROOT/pyproject.toml" -nt "$STAMP" ] && [ ! "$ROOT/constraints.txt" -nt "$STAMP" ] \
    || return 1
  local have extra
  have=",$(_attncli_sorted "$(cat "$STAMP")"),"
  for extra in ${_ATTNCLI_WANT//,/ }; do
    case "$have" in *",$extra,"*) ;; *) return 1 ;; esac
  done
}

_attncli_lock() {  # one set-up of $VENV at a time; a second is refused with one line
  if command -v flock >/dev/null 2>&1; then
    exec 9>>"$LOCK"
    flock -n 9 && return 0
  elif mkdir "$LOCK.d" 2>/dev/null; then
    _ATTNCLI_LOCKDIR="$LOCK.d"
    return 0
  fi
  echo "attncli: another set-up of $VENV is running; run the same command again when it has finished" >&2
  exit 1
}

_attncli_unlock() {
  if [ -n "${_ATTNCLI_LOCKDIR:-}" ]; then rmdir "$_ATTNCLI_LOCKDIR" 2>/dev/null || true; _ATTNCLI_LOCKDIR=""; fi
  exec 9>&-
}

_attncli_clear_line() {  # the terminal's progress line, blanked (spaces, no escape sequences)
  if [ -t 2 ]; then printf '\r%-79s\r' '' >&2; fi
}

_attncli_stop() {  # Ctrl-C (or TERM, HUP) during the set-up: end the job's whole process group, one line
  trap '' INT TERM HUP
  local job="${_ATTNCLI_JOB:-}" waited=0
  if [ -n "$job" ]; then
    kill -TERM -- "-$job" 2>/dev/null || true
    while kill -0 -- "-$job" 2>/dev/null && [ "$waited" -lt 50 ]; do sleep 0.1; waited=$((waited + 1)); done
    kill -KILL -- "-$job" 2>/dev/null || true
    wait "$job" 2>/dev/null || true
  fi
  _attncli_clear_line
  _attncli_unlock
  echo "attncli: set-up interrupted; run the same command again to resume" >&2
  exit 130
}

_attncli_start() {  # run "$@" in the background in its own process group, output to the log
  # NOTE: its own group, so that _attncli_stop ends pip and every process pip started; a plain
  # background job of a script ignores SIGINT and outlived the script's Ctrl-C as an orphan.
  set -m
  "$@" </dev/null >>"$LOG" 2>&1 &
  _ATTNCLI_JOB=$!
  set +m
}

_attncli_wait() {  # wait for the job: one progress line on a terminal, a heartbeat every 10 s in a pipe
  local doing="$1" next=10 collected phase=""
  SECONDS=0
  while kill -0 "$_ATTNCLI_JOB" 2>/dev/null; do
    sleep 1
    if [ "$doing" = "installing" ]; then
      # NOTE: a count, not pip's 40 "Collecting ..." lines: one line that fits 80 columns.
      # (pip writes "Processing" for a wheel it finds locally.)
      collected=$(grep -cE '^(Collecting|Processing) ' "$LOG" 2>/dev/null || true)
      phase=": ${collected:-0} packages collected"
      if grep -q '^Installing collected packages' "$LOG" 2>/dev/null; then
        phase=": unpacking $(grep '^Installing collected packages' "$LOG" | tr ',' '\n' | wc -l | tr -d ' ') packages"
      fi
    fi
    if [ -t 2 ]; then
      printf '\r%-79s' "attncli: $doing$phase (${SECONDS} s)" >&2
    elif [ "$SECONDS" -ge "$next" ]; then
      echo "attncli: still $doing$phase (${SECONDS} s)" >&2
      next=$((SECONDS + 10))
    fi
  done
  local rc=0
  wait "$_ATTNCLI_JOB" || rc=$?
  _ATTNCLI_JOB=""
  _attncli_clear_line
  if [ "$rc" -ne 0 ]; then
    tail -n 30 "$LOG" >&2
    _attncli_unlock
    echo "attncli: $doing failed (exit $rc); the full log is $LOG" >&2
    exit 1
  fi
}

_ATTNCLI_WANT="$(_attncli_sorted "${ATTNCLI_EXTRAS:-}")"
if ! _attncli_fresh; then
  mkdir -p "$VENV"
  _attncli_lock
  if ! _attncli_fresh; then  # NOTE: another run may have finished the set-up since the first look
    trap _attncli_stop INT TERM HUP
    : >"$LOG"
    if [ ! -x "$VENV/bin/python" ] || { [ ! -f "$VENV/.attncli-venv" ] && [ ! -f "$STAMP" ]; }; then
      # NOTE: a venv whose making was interrupted has no marker yet: made again over what is there.
      echo "attncli: creating $VENV" >&2
      _attncli_start "$PY" -m venv "$VENV"
      _attncli_wait "creating the venv"
      touch "$VENV/.attncli-venv"
    fi
    _ATTNCLI_ALL="$(_attncli_sorted "$_ATTNCLI_WANT" "$(cat "$STAMP" 2>/dev/null || true)")"
    echo "attncli: installing attncli[$_ATTNCLI_ALL] into $VENV (torch 2.13.0, CPU; about a minute)" >&2
    # NOTE: pip's output goes to the log (pip configs can be noisy); its last lines are shown on failure.
    _attncli_start "$VENV/bin/python" -m pip install -c "$ROOT/constraints.txt" -e "$ROOT[$_ATTNCLI_ALL]"
    _attncli_wait "installing"
    printf '%s\n' "$_ATTNCLI_ALL" >"$STAMP"
    trap - INT TERM HUP
    echo "attncli: installed in ${SECONDS} s; from now on run $VENV/bin/attncli (or: source $VENV/bin/activate)" >&2
  fi
  _attncli_unlock
fi
