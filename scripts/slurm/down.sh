#!/usr/bin/env bash
# Stop the loopback cluster started by scripts/slurm/up.sh: the slurmds, slurmctld, then munged.
# Jobs still running are killed with slurmd. `--slurm-only` leaves munged running.
# The packages, /etc/slurm and the state under /var/spool/slurm* stay; up.sh starts it again.
set -uo pipefail

[ "$(id -u)" = 0 ] || { echo "slurm/down.sh: must run as root" >&2; exit 1; }

stop() {  # stop NAME PIDFILE: TERM the process the pid file names, wait, then KILL
  local name=$1 pidfile=$2 pid
  pid=$(cat "$pidfile" 2>/dev/null) || return 0
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || { rm -f "$pidfile"; return 0; }
  echo "slurm/down.sh: stopping $name ($pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 40); do [ -d "/proc/$pid" ] || break; sleep 0.25; done
  if [ -d "/proc/$pid" ]; then kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$pidfile"
}

for pidfile in /run/slurm/slurmd-*.pid /run/slurm/slurmd.pid; do
  [ -e "$pidfile" ] && stop slurmd "$pidfile"
done
stop slurmctld /run/slurm/slurmctld.pid
if [ "${1:-}" != "--slurm-only" ]; then
  stop munged /run/munge/munged.pid
fi
exit 0
