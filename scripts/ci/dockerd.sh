#!/usr/bin/env bash
# Start or stop a Docker daemon for CI on a host without one (no systemd, no registry, loopback only).
# `start` launches dockerd in the background only when no daemon answers, waits until it does and
# records the PID, so `stop` ends exactly the daemon this script started and never someone else's.
# The daemon runs with --bridge=none --iptables=false: containers and builds use `--network host`.
set -euo pipefail

STATE_DIR="${DOCKERD_STATE_DIR:-/var/run/sidecar-ci}"
PID_FILE="$STATE_DIR/dockerd.pid"
LOG_FILE="${DOCKERD_LOG:-$STATE_DIR/dockerd.log}"
WAIT_SECONDS="${DOCKERD_WAIT_SECONDS:-60}"

daemon_answers() { docker info >/dev/null 2>&1; }

start() {
  if daemon_answers; then
    echo "dockerd: a daemon already answers; not starting another"
    return 0
  fi
  command -v dockerd >/dev/null || { echo "dockerd: not installed (apt-get install docker.io)" >&2; exit 1; }
  mkdir -p "$STATE_DIR"
  # setsid: the daemon must outlive this script and the CI step that ran it.
  setsid dockerd --storage-driver overlay2 --iptables=false --ip-masq=false --bridge=none \
    >"$LOG_FILE" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$PID_FILE"
  for _ in $(seq 1 "$WAIT_SECONDS"); do
    if daemon_answers; then
      echo "dockerd: started (pid $pid, log $LOG_FILE)"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "dockerd: exited during start-up; last lines of $LOG_FILE:" >&2
      tail -n 30 "$LOG_FILE" >&2 || true
      rm -f "$PID_FILE"
      exit 1
    fi
    sleep 1
  done
  echo "dockerd: did not answer within ${WAIT_SECONDS}s; last lines of $LOG_FILE:" >&2
  tail -n 30 "$LOG_FILE" >&2 || true
  exit 1
}

stop() {
  if [[ ! -f "$PID_FILE" ]]; then
    echo "dockerd: no daemon started by this script"
    return 0
  fi
  local pid
  pid="$(cat "$PID_FILE")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 30); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 1
    done
    if kill -0 "$pid" 2>/dev/null; then
      echo "dockerd: pid $pid still running after 30s; sending SIGKILL" >&2
      kill -KILL "$pid" || true
    fi
  fi
  rm -f "$PID_FILE"
  echo "dockerd: stopped (pid $pid)"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if daemon_answers; then echo "dockerd: answering"; else echo "dockerd: not answering"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 64 ;;
esac
