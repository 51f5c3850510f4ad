#!/usr/bin/env bash
# Start a one-node Slurm cluster on this host, for `alignlab sweep --engine slurm` tests.
#
#   sudo scripts/slurm/start.sh     (root; Debian/Ubuntu packages: apt-get install -y slurm-wlm munge)
#   sudo scripts/slurm/stop.sh      stops exactly the daemons this script started
#
# It writes /etc/slurm/slurm.conf (refusing to replace one it did not write), creates a munge key
# if there is none, and starts munged, slurmctld and slurmd: one node with this host's CPUs and a
# `debug` partition. No accounting (no slurmdbd): `sacct` does not work, so job states come from
# `squeue` and the run folders. What it started is listed in $STATE/started for stop.sh.
set -euo pipefail

STATE=${ALIGNLAB_SLURM_STATE:-/tmp/alignlab-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by alignlab scripts/slurm/start.sh"

[ "$(id -u)" = 0 ] || { echo "start.sh: run as root (it starts system daemons)" >&2; exit 1; }
for cmd in munged slurmctld slurmd sinfo; do
    command -v "$cmd" >/dev/null || { echo "start.sh: $cmd not found: apt-get install -y slurm-wlm munge" >&2; exit 1; }
done
if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    echo "start.sh: $CONF exists and was not written by this script; not touching a real cluster" >&2
    exit 1
fi

mkdir -p "$STATE" /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
touch "$STATE/started"   # kept across calls: a daemon already running is not started (nor listed) again
HOST=$(hostname -s)
running() { kill -0 "$(cat "$1" 2>/dev/null)" 2>/dev/null; }

# munge: the key and the daemon (as the munge user, which the package creates)
if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
if ! munge -n >/dev/null 2>&1; then
    runuser -u munge -- munged
    echo munged >> "$STATE/started"
fi

cat > "$CONF" <<CONF
$MARK
ClusterName=alignlab
SlurmctldHost=$HOST
SlurmUser=root
AuthType=auth/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$HOST CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
CONF

if ! running "$STATE/slurmctld.pid"; then
    slurmctld -c   # -c: a clean start, no jobs from an earlier run of this script
    echo slurmctld >> "$STATE/started"
fi
if ! running "$STATE/slurmd.pid"; then
    slurmd
    echo slurmd >> "$STATE/started"
fi

for _ in $(seq 60); do
    if sinfo -h -o "%t" 2>/dev/null | grep -qE "^(idle|mix|alloc)"; then
        sinfo
        exit 0
    fi
    sleep 1
done
echo "start.sh: the node did not become idle in 60 s; see /var/log/slurm/" >&2
sinfo >&2 || true
exit 1
