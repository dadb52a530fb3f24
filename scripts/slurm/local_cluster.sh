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
#
# Several nodes: with SPATIALTREE_SLURM_NETNS=PREFIX the cluster runs on the simulated nodes of
# scripts/netns/nodes.sh (SPATIALTREE_NETNS_PREFIX=PREFIX ... up N): slurmctld and slurmd on node1, one
# slurmd on every other node, each addressed by its own IP (NodeAddr). Client commands must then run on a
# node too: scripts/netns/nodes.sh exec node1 sbatch ... (node1 is the login node). A node that died
# (nodes.sh kill) comes back with nodes.sh revive NODE + `start` again (it starts the missing slurmd).
# SPATIALTREE_SLURM_SLURMD_TIMEOUT=S: seconds before a silent node is set DOWN (Slurm's default 300).
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
NETNS="${SPATIALTREE_SLURM_NETNS:-}"
NODES_SH="$(cd "$(dirname "$0")/.." && pwd)/netns/nodes.sh"
SLURMD_TIMEOUT="${SPATIALTREE_SLURM_SLURMD_TIMEOUT:-300}"

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

# Netns mode: the simulated nodes ("NAME ADDRESS NAMESPACE" lines) and how to run a command on one.
netns_nodes() { SPATIALTREE_NETNS_PREFIX="$NETNS" "$NODES_SH" list; }
on_node() { local node="$1"; shift; SPATIALTREE_NETNS_PREFIX="$NETNS" "$NODES_SH" exec "$node" "$@"; }
client() { if [ -n "$NETNS" ]; then on_node node1 "$@"; else "$@"; fi; }  # sinfo/squeue/scancel/scontrol
node_names() { if [ -n "$NETNS" ]; then netns_nodes | awk '{print $1}'; else echo "$NODE"; fi; }
slurmd_pid_file() { if [ -n "$NETNS" ]; then echo "$DIR/slurmd-$1.pid"; else echo "$DIR/slurmd.pid"; fi; }

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
  local ctld="${NODE}(127.0.0.1)" node_lines partition="$NODE" what="a single-node cluster on localhost"
  local spool="$DIR/spool" slurmd_pid="$DIR/slurmd.pid" slurmd_log="$DIR/log/slurmd.log"
  node_lines="NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${cpus} Sockets=${sockets} CoresPerSocket=${cores} ThreadsPerCore=${threads} RealMemory=${mem} State=UNKNOWN"
  if [ -n "$NETNS" ]; then
    local name addr _ns
    ctld="node1($(netns_nodes | awk '$1 == "node1" {print $2}'))"
    node_lines=""
    while read -r name addr _ns; do
      node_lines+="NodeName=${name} NodeAddr=${addr} CPUs=${cpus} Sockets=${sockets} CoresPerSocket=${cores} ThreadsPerCore=${threads} RealMemory=${mem} State=UNKNOWN"$'\n'
    done < <(netns_nodes)
    partition="$(node_names | paste -sd, -)"
    spool="$DIR/spool/%n" slurmd_pid="$DIR/slurmd-%n.pid" slurmd_log="$DIR/log/slurmd-%n.log"  # one per node
    what="$(node_names | wc -l) simulated nodes (network namespaces, prefix $NETNS)"
  fi
  cat >"$CONF" <<EOF
# Written by scripts/slurm/local_cluster.sh: ${what}.
ClusterName=spatialtree-local
SlurmctldHost=${ctld}
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
SlurmdTimeout=${SLURMD_TIMEOUT}
StateSaveLocation=${DIR}/state
SlurmdSpoolDir=${spool}
SlurmctldPidFile=${DIR}/slurmctld.pid
SlurmdPidFile=${slurmd_pid}
SlurmctldLogFile=${DIR}/log/slurmctld.log
SlurmdLogFile=${slurmd_log}
${overrides}
${node_lines}
PartitionName=debug Nodes=${partition} Default=YES MaxTime=INFINITE State=UP
EOF
}

pid_alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

cmd_start() {
  have_slurm || die "slurm-wlm/munge not installed: run '$0 install' first"
  [ "$(id -u)" = 0 ] || die "starting slurmd needs root"
  mkdir -p "$DIR"
  local nodes node up=1 state="" pending
  nodes="$(node_names)"
  [ -n "$nodes" ] || die "no simulated nodes with prefix '$NETNS': run SPATIALTREE_NETNS_PREFIX=$NETNS $NODES_SH up N first"
  pid_alive "$DIR/slurmctld.pid" || up=0
  for node in $nodes; do pid_alive "$(slurmd_pid_file "$node")" || up=0; done
  if [ "$up" = 1 ]; then log "already running ($CONF)"; echo "export SLURM_CONF=$CONF"; return 0; fi
  start_munge
  write_conf
  for node in $nodes; do [ -z "$NETNS" ] || mkdir -p "$DIR/spool/$node"; done
  if ! pid_alive "$DIR/slurmctld.pid"; then
    client slurmctld -i -c -f "$CONF" || die "slurmctld did not start (see $DIR/log/slurmctld.log)"
  fi
  for node in $nodes; do
    pid_alive "$(slurmd_pid_file "$node")" && continue
    if [ -n "$NETNS" ]; then on_node "$node" slurmd -N "$node" -f "$CONF"; else slurmd -N "$NODE" -f "$CONF"; fi \
      || die "slurmd on $node did not start (see $DIR/log)"
  done
  for _ in $(seq 150); do
    pending=""
    for node in $nodes; do
      state="$(client sinfo -h -n "$node" -o %T 2>/dev/null | head -n1 || true)"
      case "$state" in
        idle|mixed|allocated|completing) ;;
        down*|drain*) pending+=" $node($state)"; client scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true ;;
        *) pending+=" $node($state)" ;;
      esac
    done
    if [ -z "$pending" ]; then
      log "up: $(echo $nodes | tr '\n' ' ')($CONF)"
      [ -n "$NETNS" ] && log "client commands run on a node: $NODES_SH exec node1 sbatch ... (SPATIALTREE_NETNS_PREFIX=$NETNS)"
      echo "export SLURM_CONF=$CONF"
      return 0
    fi
    sleep 0.2
  done
  die "nodes not up:$pending; logs in $DIR/log"
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
    jobs="$(client squeue -h -o %A 2>/dev/null || true)"
    if [ -n "$jobs" ]; then
      # shellcheck disable=SC2086
      client scancel $jobs 2>/dev/null || true
      for _ in $(seq 50); do [ -z "$(client squeue -h -t RUNNING,COMPLETING -o %A 2>/dev/null || true)" ] && break; sleep 0.2; done
    fi
  fi
  local pf
  for pf in "$DIR"/slurmd.pid "$DIR"/slurmd-*.pid; do
    if [ -e "$pf" ]; then stop_pid "$pf" "slurmd ($(basename "$pf"))"; fi
  done
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
  client sinfo
  client squeue
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 {install|start|stop|status|env}" >&2; exit 2 ;;
esac
