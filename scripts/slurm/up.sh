#!/usr/bin/env bash
# A SLURM cluster on loopback, for the slurm tests and for trying `hydra/launcher=slurm` on
# one machine:   sudo bash scripts/slurm/up.sh
#
# Two nodes, `node1` and `node2`, each a slurmd of its own on this machine (SLURM's
# multiple-slurmd mode), each offering all of its CPUs: one job per node for sweeps, and
# two-node jobs for the multi-node training test (trainer.num_nodes=2).
#
# Run as root. Idempotent: installs Debian's slurmctld, slurmd, slurm-client and munge only
# if they are missing, rewrites /etc/slurm/slurm.conf and cgroup.conf, starts munged,
# slurmctld and slurmd directly (no systemd; restarts the SLURM daemons when the config
# changed), waits until both nodes are idle and prints `sinfo`.
# Everything talks over 127.0.0.1; nothing is contacted beyond the apt mirror.
# Stop it with scripts/slurm/down.sh.
#
# Environment: SRLM_SLURM_WAIT (seconds to wait for the idle node, default 90),
#              SRLM_SLURM_MEM_RESERVE_MB (memory kept back from RealMemory, default 1024).
set -euo pipefail

die() { echo "slurm/up.sh: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons)"

PKGS=(slurmctld slurmd slurm-client munge)
WAIT_S=${SRLM_SLURM_WAIT:-90}
RESERVE_MB=${SRLM_SLURM_MEM_RESERVE_MB:-1024}
CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm

# --- packages ---------------------------------------------------------------------------
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "apt-get not found; install ${missing[*]} by hand"
  echo "slurm/up.sh: installing ${missing[*]}"
  # Package scripts must not try to start services (there is no init system here).
  made_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

# --- configuration ----------------------------------------------------------------------
cpus=$(nproc)
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
real_mb=$(( mem_mb - RESERVE_MB ))
[ "$real_mb" -gt 512 ] || real_mb=$(( mem_mb * 9 / 10 ))

NODES=(node1 node2)
mkdir -p "$CONF_DIR" "$LOG_DIR" /var/spool/slurmctld /run/slurm
for n in "${NODES[@]}"; do mkdir -p "/var/spool/slurmd/$n"; done
new_conf=$(cat <<EOF
# Written by srlm scripts/slurm/up.sh: a one-node cluster on loopback.
ClusterName=srlm
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
# No accounting database: sacct does not work; scontrol/squeue do.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# Keep finished jobs visible to 'scontrol show job' for an hour (tests read their state).
MinJobAge=3600
# Seconds between SIGTERM and SIGKILL when a job is cancelled or requeued.
KillWait=10
StateSaveLocation=/var/spool/slurmctld
# One slurmd per node on this machine: %n is the node's name.
SlurmdSpoolDir=/var/spool/slurmd/%n
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd-%n.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd-%n.log
NodeName=node1 NodeHostname=localhost NodeAddr=127.0.0.1 Port=6818 CPUs=$cpus RealMemory=$real_mb State=UNKNOWN
NodeName=node2 NodeHostname=localhost NodeAddr=127.0.0.1 Port=6819 CPUs=$cpus RealMemory=$real_mb State=UNKNOWN
PartitionName=debug Nodes=node1,node2 Default=YES MaxTime=INFINITE State=UP
EOF
)
new_cgroup=$(cat <<EOF
# Written by srlm scripts/slurm/up.sh. SLURM 22.05 has no "disabled" value; the cgroup
# plugins are not used (proctrack/linuxproc, task/none), v1 keeps slurmd from failing.
CgroupPlugin=cgroup/v1
EOF
)
changed=0
if [ "$(cat "$CONF_DIR/slurm.conf" 2>/dev/null)" != "$new_conf" ]; then
  printf '%s\n' "$new_conf" > "$CONF_DIR/slurm.conf"; changed=1
fi
if [ "$(cat "$CONF_DIR/cgroup.conf" 2>/dev/null)" != "$new_cgroup" ]; then
  printf '%s\n' "$new_cgroup" > "$CONF_DIR/cgroup.conf"; changed=1
fi

# --- munge ------------------------------------------------------------------------------
if [ ! -s /etc/munge/munge.key ]; then
  echo "slurm/up.sh: creating /etc/munge/munge.key"
  mkdir -p /etc/munge
  if command -v mungekey >/dev/null; then
    mungekey --create --keyfile=/etc/munge/munge.key
  else
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
fi
chown munge:munge /etc/munge/munge.key
chmod 400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  echo "slurm/up.sh: starting munged"
  runuser -u munge -- /usr/sbin/munged
  for _ in $(seq 20); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.5; done
  munge -n | unmunge >/dev/null || die "munged does not answer (see /var/log/munge/munged.log)"
fi

# --- SLURM daemons ----------------------------------------------------------------------
running() {  # running NAME PIDFILE: the pid file names a live process of that name
  local pid
  pid=$(cat "$2" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}
any_slurmd() {
  local n
  for n in "${NODES[@]}"; do running slurmd "/run/slurm/slurmd-$n.pid" && return 0; done
  # A slurmd of the earlier one-node layout (pid file /run/slurm/slurmd.pid).
  running slurmd /run/slurm/slurmd.pid
}
if [ "$changed" = 1 ] && { running slurmctld /run/slurm/slurmctld.pid || any_slurmd; }; then
  echo "slurm/up.sh: configuration changed; restarting the SLURM daemons"
  bash "$(dirname "$0")/down.sh" --slurm-only
fi
if ! running slurmctld /run/slurm/slurmctld.pid; then
  echo "slurm/up.sh: starting slurmctld"
  slurmctld || die "slurmctld did not start (see $LOG_DIR/slurmctld.log)"
fi
for n in "${NODES[@]}"; do
  if ! running slurmd "/run/slurm/slurmd-$n.pid"; then
    echo "slurm/up.sh: starting slurmd for node $n"
    slurmd -N "$n" || die "slurmd -N $n did not start (see $LOG_DIR/slurmd-$n.log)"
  fi
done

# --- wait for the nodes -----------------------------------------------------------------
deadline=$(( $(date +%s) + WAIT_S ))
for n in "${NODES[@]}"; do
  state=""
  while :; do
    state=$(sinfo -h -N -n "$n" -o '%T' 2>/dev/null | head -n1 || true)
    case "$state" in
      idle|mixed|allocated) break ;;
      down*|drain*)  # e.g. after an unclean stop; ReturnToService=2 normally handles it
        scontrol update NodeName="$n" State=RESUME 2>/dev/null || true ;;
    esac
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "slurm/up.sh: node $n did not become idle within ${WAIT_S}s (state: '${state:-no answer}')." >&2
      echo "--- tail $LOG_DIR/slurmctld.log" >&2; tail -n 20 "$LOG_DIR/slurmctld.log" >&2 || true
      echo "--- tail $LOG_DIR/slurmd-$n.log" >&2; tail -n 20 "$LOG_DIR/slurmd-$n.log" >&2 || true
      exit 1
    fi
    sleep 1
  done
done
sinfo
