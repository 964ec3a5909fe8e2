#!/usr/bin/env bash
# Runs a private clamd for the project's tests and the zero-setup mode.
#
#   scripts/clamd.sh start DIR   write DIR/db (the shipped signatures),
#                                DIR/clamd.conf, start clamd, wait until it
#                                answers PING, print its address
#                                (unix:DIR/clamd.sock)
#   scripts/clamd.sh stop DIR    SIGTERM the clamd of DIR and wait for it
#
# The configuration comes from scanner/clamav/clamd.conf.in, the template the
# Go code (clamav.WriteConfig / StartDaemon) uses too; the signatures from
# scanner/clamav/signatures/.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR" >&2; exit 2; }
[ $# -eq 2 ] || usage
cmd=$1
mkdir -p "$2"
dir=$(cd "$2" && pwd)
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../scanner/clamav" && pwd)
pidfile=$dir/clamd.pid

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case $cmd in
start)
  clamd=/usr/sbin/clamd
  [ -x "$clamd" ] || clamd=$(command -v clamd) || { echo "clamd is not installed (apt-get install clamav-daemon)" >&2; exit 1; }
  case $dir in *'#'*|*'&'*|*$'\n'*) echo "unsupported characters in $dir" >&2; exit 1;; esac
  [ ${#dir} -le 96 ] || { echo "$dir is too long for a unix socket path" >&2; exit 1; }
  if running; then echo "clamd already running in $dir (pid $(cat "$pidfile"))" >&2; exit 1; fi
  mkdir -p "$dir/db" "$dir/tmp"
  cp "$src"/signatures/* "$dir/db/"
  sed -e "s#@DIR@#$dir#g" -e "s#@FOREGROUND@#yes#" "$src/clamd.conf.in" > "$dir/clamd.conf"
  # Foreground yes, in the background of a session of its own: clamd's own
  # daemonizing races with itself (Cisco-Talos/clamav#798: the child
  # signals "ready" before the parent listens, and the parent exits 1
  # although the daemon runs on). Readiness is clamd answering PING.
  setsid "$clamd" -c "$dir/clamd.conf" >"$dir/clamd.stderr" 2>&1 </dev/null &
  pid=$!
  echo "$pid" > "$pidfile"
  ok=
  for _ in $(seq 120); do
    kill -0 "$pid" 2>/dev/null || break
    if command -v clamdscan >/dev/null; then
      clamdscan -c "$dir/clamd.conf" --ping 1 >/dev/null 2>&1 && { ok=1; break; }
    elif [ -S "$dir/clamd.sock" ]; then
      ok=1; break
    fi
    sleep 0.25
  done
  if [ -z "$ok" ]; then
    # clamd writes why to its log file, not to stderr.
    if kill -0 "$pid" 2>/dev/null; then
      echo "clamd did not answer PING within 30 s:" >&2
      kill -TERM "$pid"
    else
      echo "clamd failed to start:" >&2
    fi
    cat "$dir/clamd.stderr" >&2; tail -n 20 "$dir/clamd.log" >&2 2>/dev/null
    rm -f "$pidfile"
    exit 1
  fi
  echo "unix:$dir/clamd.sock"
  ;;
stop)
  if ! running; then rm -f "$pidfile"; exit 0; fi
  pid=$(cat "$pidfile")
  kill -TERM "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; exit 0; }; sleep 0.1; done
  echo "clamd (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
  ;;
*) usage ;;
esac
