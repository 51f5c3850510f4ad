#!/usr/bin/env bash
# Stop the daemons scripts/slurm/start.sh started (and only those), cancelling leftover jobs.
set -uo pipefail

STATE=${ALIGNLAB_SLURM_STATE:-/tmp/alignlab-slurm}
[ -f "$STATE/started" ] || { echo "stop.sh: nothing started by start.sh ($STATE/started missing)"; exit 0; }

stop_pidfile() {  # stop_pidfile NAME PIDFILE: SIGTERM, then SIGKILL after 10 s
    local pid
    pid=$(cat "$2" 2>/dev/null) || return 0
    kill "$pid" 2>/dev/null || return 0
    for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.5; done
    echo "stop.sh: $1 ($pid) ignored SIGTERM; killing it" >&2
    kill -9 "$pid" 2>/dev/null || true
}

if grep -qx slurmctld "$STATE/started"; then
    scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
    stop_pidfile slurmd "$STATE/slurmd.pid"
    stop_pidfile slurmctld "$STATE/slurmctld.pid"
fi
if grep -qx munged "$STATE/started"; then
    stop_pidfile munged /run/munge/munged.pid
fi
rm -f "$STATE/started"
echo "stop.sh: stopped the daemons start.sh started"
