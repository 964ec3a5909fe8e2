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
  sed -e "s#@DIR@#$dir#g" -e "s#@FOREGROUND@#no#" "$src/clamd.conf.in" > "$dir/clamd.conf"
  # Foreground no: clamd forks once its database is loaded.
  if ! "$clamd" -c "$dir/clamd.conf" >"$dir/clamd.stderr" 2>&1; then
    echo "clamd failed to start:" >&2; cat "$dir/clamd.stderr" >&2; exit 1
  fi
  ok=
  if command -v clamdscan >/dev/null; then
    clamdscan -c "$dir/clamd.conf" --ping 30:1 >/dev/null 2>&1 && ok=1
  else
    for _ in $(seq 60); do [ -S "$dir/clamd.sock" ] && running && { ok=1; break; }; sleep 0.5; done
  fi
  if [ -z "$ok" ]; then
    echo "clamd did not answer PING within 30 s:" >&2; cat "$dir/clamd.stderr" >&2
    running && kill -TERM "$(cat "$pidfile")"
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
