#!/usr/bin/env bash
# The project's one test command (README.md, .ci/run): formatting, lints, docs, then every test
# against sqs-local in process, LocalStack (the reference SQS emulator) and Redis.
#
# Installs what it needs: LocalStack into a cached virtualenv from the pinned
# scripts/localstack-requirements.txt, and redis-server with apt-get when none answers.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== [%s] %s\n' "$(date +%T)" "$*"; }
die() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo is not on PATH: install the Rust toolchain (rustup)."
command -v python3 >/dev/null || die "python3 is not on PATH: it is needed to run LocalStack."

cleanup_pids=()
cleanup() {
  for pid in "${cleanup_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${cleanup_pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

log "cargo fmt --check"
cargo fmt --all -- --check

log "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

log "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked

# --- Packaging: the published crates build and pass their doctests from their tarballs -------
# Only the three crates we publish: packaging the examples, the demo and the benches (publish =
# false) would build each of them again from a tarball, for nothing.
log "cargo package (sqs-handler-macros, sqs-local, sqs-handler build from their tarballs)"
cargo package -p sqs-handler-macros -p sqs-local -p sqs-handler --locked
scripts/package-doctests.sh

# --- LocalStack: the reference endpoint for the conformance suite -----------------------------
cache="${XDG_CACHE_HOME:-$HOME/.cache}/sqs-handler"
req=scripts/localstack-requirements.txt
venv="$cache/localstack-$(sha256sum "$req" | cut -c1-12)"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import localstack' 2>/dev/null; then
  log "installing LocalStack into $venv (pinned: $req)"
  mkdir -p "$cache"
  rm -rf "$venv"
  if ! python3 -m venv "$venv" 2>/dev/null; then
    python3 -m pip install --quiet --user virtualenv || die "cannot create a virtualenv: install python3-venv (apt-get install python3-venv) or virtualenv."
    python3 -m virtualenv --quiet "$venv"
  fi
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req" \
    || { rm -rf "$venv"; die "pip could not install LocalStack from $req"; }
fi

ls_port=$(free_port)
ls_dir=$(mktemp -d)
log "starting LocalStack on 127.0.0.1:$ls_port"
SQS_DISABLE_CLOUDWATCH_METRICS=1 LOCALSTACK_HOST="127.0.0.1:$ls_port" DNS_ADDRESS=0 \
  SQS_ENDPOINT_STRATEGY=path GATEWAY_LISTEN="127.0.0.1:$ls_port" SERVICES=sqs \
  LOCALSTACK_VOLUME_DIR="$ls_dir" FILESYSTEM_ROOT="$ls_dir/fs" \
  "$venv/bin/python" -m localstack.runtime.main >"$ls_dir/localstack.log" 2>&1 &
cleanup_pids+=($!)
ready=""
for _ in $(seq 1 120); do
  if python3 -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$ls_port/_localstack/health', timeout=1)" 2>/dev/null; then
    ready=1; break
  fi
  sleep 0.5
done
[ -n "$ready" ] || { tail -20 "$ls_dir/localstack.log" >&2; die "LocalStack did not answer on 127.0.0.1:$ls_port within 60 s (log above)."; }
export SQS_REFERENCE_ENDPOINT="http://127.0.0.1:$ls_port"

# --- Redis -----------------------------------------------------------------------------------
redis_ping() { # host port
  python3 - "$1" "$2" <<'PY' 2>/dev/null
import socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1)
s.sendall(b"PING\r\n")
sys.exit(0 if s.recv(16).startswith(b"+PONG") else 1)
PY
}
if [ -n "${REDIS_URL:-}" ]; then
  hostport=${REDIS_URL#redis://}; hostport=${hostport%%/*}; hostport=${hostport##*@}
  redis_ping "${hostport%%:*}" "${hostport##*:}" || die "REDIS_URL=$REDIS_URL does not answer PING: start that Redis or unset REDIS_URL."
elif redis_ping 127.0.0.1 6379; then
  export REDIS_URL="redis://127.0.0.1:6379"
else
  if ! command -v redis-server >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "installing redis-server with apt-get"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
      die "no Redis answers on 127.0.0.1:6379 and redis-server is not installed: install it (apt-get install redis-server) or set REDIS_URL."
    fi
  fi
  redis_port=$(free_port)
  log "starting a throwaway redis-server on 127.0.0.1:$redis_port"
  redis-server --bind 127.0.0.1 --port "$redis_port" --save "" --appendonly no >/dev/null 2>&1 &
  cleanup_pids+=($!)
  for _ in $(seq 1 50); do redis_ping 127.0.0.1 "$redis_port" && break; sleep 0.1; done
  redis_ping 127.0.0.1 "$redis_port" || die "the redis-server started on port $redis_port does not answer."
  export REDIS_URL="redis://127.0.0.1:$redis_port"
fi

# The standalone sqs-local binary, which the demo's fault tests run as a process of its own.
cargo build --locked -p sqs-local --features cli --bin sqs-local

log "cargo test (SQS_REFERENCE_ENDPOINT=$SQS_REFERENCE_ENDPOINT REDIS_URL=$REDIS_URL)"
cargo test --workspace --locked
