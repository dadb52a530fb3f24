#!/usr/bin/env bash
# A single-node Slurm cluster on localhost, for tests and for trying sweeps without a real cluster.
#
#   scripts/slurm/local_cluster.sh install   # apt-get install slurm-wlm + munge if missing (needs root)
#   scripts/slurm/local_cluster.sh start     # munged + slurmctld + slurmd; prints `export SLURM_CONF=...`
#   scripts/slurm/local_cluster.sh status    # sinfo + squeue
#   scripts/slurm/local_cluster.sh stop      # cancel jobs, stop the daemons this script started
#   scripts/slurm/local_cluster.sh env       # print `export SLURM_CONF=...`
#
# SPATIALTREE_SLURM_CPUS=N declares N CPUs on the node instead of what `slurmd -C` finds (tests use
# it to run several single-threaded tiny jobs at once on a 2-core machine).
# Everything lives under one directory ($SPATIALTREE_SLURM_DIR, default /tmp/spatialtree-slurm):
# slurm.conf, state, spool, logs and pid files. Client commands (sbatch, squeue, scontrol) find
# the cluster through SLURM_CONF=$SPATIALTREE_SLURM_DIR/slurm.conf.
# Facts this relies on (Debian 12, slurm-wlm 22.05 + munge 0.5): munged must run as user munge with
# /run/munge owned by munge; the controller and the node are addressed as NAME(127.0.0.1) so no DNS
# is needed; proctrack/linuxproc and task/none work without systemd or cgroups.
set -euo pipefail

DIR="${SPATIALTREE_SLURM_DIR:-/tmp/spatialtree-slurm}"
CONF="$DIR/slurm.conf"
NODE="${SPATIALTREE_SLURM_NODE:-$(hostname -s)}"
CTLD_PORT="${SPATIALTREE_SLURM_CTLD_PORT:-6817}"
SLURMD_PORT="${SPATIALTREE_SLURM_SLURMD_PORT:-6818}"
export SLURM_CONF="$CONF"

log() { echo "[local_cluster] $*" >&2; }
die() { echo "[local_cluster] error: $*" >&2; exit 1; }

have_slurm() { command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
  && command -v munged >/dev/null; }

cmd_install() {
  if have_slurm; then log "slurm-wlm and munge already installed"; return 0; fi
  [ "$(id -u)" = 0 ] || die "installing slurm-wlm needs root (apt-get); run as root or install slurm-wlm and munge yourself"
  command -v apt-get >/dev/null || die "apt-get not found: install slurm-wlm and munge with your package manager"
  log "installing slurm-wlm and munge (apt-get, ~20 s)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null || die "apt-get update failed"
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null || die "apt-get install slurm-wlm munge failed"
  have_slurm || die "slurm-wlm installed but slurmctld/slurmd/sbatch/munged are still not on PATH"
}

munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
  if munge_ok; then log "munged already running"; return 0; fi
  id munge >/dev/null 2>&1 || die "user munge does not exist (is the munge package installed?)"
  mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    log "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key --force
    else dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; fi
  fi
  chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
  chmod 0700 /etc/munge /var/lib/munge /var/log/munge
  chmod 0755 /run/munge
  chmod 0400 /etc/munge/munge.key
  runuser -u munge -- munged --pid-file="/run/munge/munged.pid" || die "munged did not start"
  cp /run/munge/munged.pid "$DIR/munged.pid" 2>/dev/null || true
  for _ in $(seq 50); do munge_ok && return 0; sleep 0.1; done
  die "munged started but munge -n | unmunge fails"
}

write_conf() {
  local hw cpus sockets cores threads mem
  hw="$(slurmd -C | head -n1)"
  cpus="$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")"
  sockets="$(sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")"
  cores="$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")"
  threads="$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")"
  mem="$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")"
  mem=$(( mem * 9 / 10 ))
  local overrides=""
  if [ -n "${SPATIALTREE_SLURM_CPUS:-}" ] && [ "$SPATIALTREE_SLURM_CPUS" != "$cpus" ]; then
    # Declare more (or fewer) CPUs than the machine has, e.g. to run more tiny CPU jobs at once in tests.
    cpus="$SPATIALTREE_SLURM_CPUS"; sockets=1; cores="$cpus"; threads=1
    overrides="SlurmdParameters=config_overrides"
  fi
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/log"
  cat >"$CONF" <<EOF
# Written by scripts/slurm/local_cluster.sh: a single-node cluster on localhost.
ClusterName=spatialtree-local
SlurmctldHost=${NODE}(127.0.0.1)
SlurmctldPort=${CTLD_PORT}
SlurmdPort=${SLURMD_PORT}
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=cred_expire=5
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,sched_interval=1,bf_interval=1
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
ReturnToService=2
MinJobAge=3600
KillWait=10
JobRequeue=1
StateSaveLocation=${DIR}/state
SlurmdSpoolDir=${DIR}/spool
SlurmctldPidFile=${DIR}/slurmctld.pid
SlurmdPidFile=${DIR}/slurmd.pid
SlurmctldLogFile=${DIR}/log/slurmctld.log
SlurmdLogFile=${DIR}/log/slurmd.log
${overrides}
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${cpus} Sockets=${sockets} CoresPerSocket=${cores} ThreadsPerCore=${threads} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=${NODE} Default=YES MaxTime=INFINITE State=UP
EOF
}

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

cmd_start() {
  have_slurm || die "slurm-wlm/munge not installed: run '$0 install' first"
  [ "$(id -u)" = 0 ] || die "starting slurmd needs root"
  mkdir -p "$DIR"
  if pid_alive "$DIR/slurmctld.pid" && pid_alive "$DIR/slurmd.pid"; then
    log "already running ($CONF)"; echo "export SLURM_CONF=$CONF"; return 0
  fi
  start_munge
  write_conf
  pid_alive "$DIR/slurmctld.pid" || slurmctld -i -c -f "$CONF" || die "slurmctld did not start (see $DIR/log/slurmctld.log)"
  pid_alive "$DIR/slurmd.pid" || slurmd -N "$NODE" -f "$CONF" || die "slurmd did not start (see $DIR/log/slurmd.log)"
  local state=""
  for _ in $(seq 150); do
    state="$(sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n1 || true)"
    case "$state" in
      idle|mixed|allocated) log "up: node $NODE $state ($CONF)"; echo "export SLURM_CONF=$CONF"; return 0 ;;
      down*|drain*) scontrol update NodeName="$NODE" State=RESUME >/dev/null 2>&1 || true ;;
    esac
    sleep 0.2
  done
  die "node $NODE did not become idle (state '$state'); logs in $DIR/log"
}

stop_pid() {  # stop_pid PIDFILE NAME
  local pf="$1" pid
  pid_alive "$pf" || { rm -f "$pf"; return 0; }
  pid="$(cat "$pf")"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { rm -f "$pf"; return 0; }; sleep 0.1; done
  log "$2 (pid $pid) did not stop on SIGTERM; sending SIGKILL"
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pf"
}

cmd_stop() {
  if pid_alive "$DIR/slurmctld.pid"; then
    local jobs
    jobs="$(squeue -h -o %A 2>/dev/null || true)"
    if [ -n "$jobs" ]; then
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for _ in $(seq 50); do [ -z "$(squeue -h -t RUNNING,COMPLETING -o %A 2>/dev/null || true)" ] && break; sleep 0.2; done
    fi
  fi
  stop_pid "$DIR/slurmd.pid" slurmd
  stop_pid "$DIR/slurmctld.pid" slurmctld
  # munged only if this script started it (a system munged is left alone), and not while another
  # local cluster (another SPATIALTREE_SLURM_DIR) still authenticates through it.
  if [ -s "$DIR/munged.pid" ]; then
    if pgrep -x slurmctld >/dev/null 2>&1; then
      log "munged left running: another slurmctld on this machine uses it"; rm -f "$DIR/munged.pid"
    else
      stop_pid "$DIR/munged.pid" munged
    fi
  fi
  log "stopped"
}

cmd_status() {
  if ! pid_alive "$DIR/slurmctld.pid"; then echo "local cluster: stopped ($DIR)"; return 3; fi
  echo "local cluster: running (SLURM_CONF=$CONF)"
  sinfo
  squeue
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 {install|start|stop|status|env}" >&2; exit 2 ;;
esac
