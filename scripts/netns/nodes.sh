#!/usr/bin/env bash
# Simulated cluster nodes on one machine: Linux network namespaces joined by a bridge, each with its own
# hostname (UTS namespace) and /etc/hosts. For trying multi-node torchrun, Slurm and Ray without a cluster.
#
#   scripts/netns/nodes.sh install          # apt-get install iproute2 (ip), util-linux (unshare, nsenter) if missing
#   scripts/netns/nodes.sh up [N]           # N nodes (default 2): node1..nodeN at SUBNET.1..SUBNET.N
#   scripts/netns/nodes.sh exec NODE CMD... # run CMD on NODE (its network, hostname and /etc/hosts)
#   scripts/netns/nodes.sh list             # "NODE ADDRESS NAMESPACE" per node
#   scripts/netns/nodes.sh pids NODE        # the processes running on NODE
#   scripts/netns/nodes.sh kill NODE        # pull the plug: link down, then SIGKILL every process on NODE
#   scripts/netns/nodes.sh revive NODE      # link up again (the node "rebooted"; start its daemons again)
#   scripts/netns/nodes.sh down             # kill every process on the nodes, delete the namespaces
#
# Environment: SPATIALTREE_NETNS_PREFIX (default "st"; namespaces PREFIX-node1.., PREFIX-switch, so several
# simulated clusters can exist at once), SPATIALTREE_NETNS_SUBNET (first three octets, default 10.231.0).
# Nothing is added to the machine's own network namespace: the bridge lives in PREFIX-switch, every node has
# one interface eth0 (a veth into the bridge) and its loopback. Hosts files go to /etc/netns/PREFIX-nodeI/hosts,
# which `exec` bind-mounts over /etc/hosts in a mount namespace of the command's own (the real /etc/hosts is
# never edited).
# A node is a network + hostname, not a VM: the filesystem (a "shared filesystem"), the CPUs and the process
# table are the machine's. Needs root.
set -euo pipefail

PREFIX="${SPATIALTREE_NETNS_PREFIX:-st}"
SUBNET="${SPATIALTREE_NETNS_SUBNET:-10.231.0}"
SWITCH="$PREFIX-switch"

log() { echo "[netns] $*" >&2; }
die() { echo "[netns] error: $*" >&2; exit 1; }

ns_of() { echo "$PREFIX-$1"; }
node_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^${PREFIX}-node[0-9]+$" | sort -V || true; }
need_root() { [ "$(id -u)" = 0 ] || die "network namespaces need root"; }
have_tools() { command -v ip >/dev/null && command -v unshare >/dev/null && command -v nsenter >/dev/null; }

cmd_install() {
  if have_tools; then log "ip, unshare and nsenter present"; return 0; fi
  need_root
  command -v apt-get >/dev/null || die "ip (iproute2) or unshare/nsenter (util-linux) missing and no apt-get: install them"
  log "installing iproute2 util-linux (apt-get)"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iproute2 util-linux >/dev/null \
    || die "apt-get install iproute2 util-linux failed"
  have_tools || die "iproute2/util-linux installed but ip/unshare/nsenter still not on PATH"
}

cmd_up() {
  local n="${1:-2}" i ns
  need_root
  have_tools || die "ip/unshare/nsenter missing: run '$0 install' first"
  [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 200 ] || die "node count must be 1..200, got '$n'"
  [ -z "$(node_namespaces)" ] || die "nodes with prefix '$PREFIX' already exist ($(node_namespaces | tr '\n' ' ')): '$0 down' first"
  ip netns add "$SWITCH"
  ip -n "$SWITCH" link set lo up
  ip -n "$SWITCH" link add br0 type bridge
  ip -n "$SWITCH" link set br0 up
  for i in $(seq "$n"); do
    ns="$(ns_of "node$i")"
    ip netns add "$ns"
    # the veth is created in the switch namespace with its peer in the node: no name ever exists in the host's
    ip -n "$SWITCH" link add "p$i" type veth peer name eth0 netns "$ns"
    ip -n "$SWITCH" link set "p$i" master br0
    ip -n "$SWITCH" link set "p$i" up
    ip -n "$ns" link set lo up
    ip -n "$ns" addr add "$SUBNET.$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    mkdir -p "/etc/netns/$ns"
    {
      echo "127.0.0.1 localhost"
      echo "::1 localhost ip6-localhost ip6-loopback"
      for j in $(seq "$n"); do echo "$SUBNET.$j node$j"; done
    } >"/etc/netns/$ns/hosts"
  done
  log "up: $n node(s) on $SUBNET.0/24 (prefix $PREFIX)"
  cmd_list
}

cmd_list() {
  local ns name
  for ns in $(node_namespaces); do
    name="${ns#"$PREFIX"-}"
    echo "$name ${SUBNET}.${name#node} $ns"
  done
}

check_node() {
  [[ "$1" =~ ^node[0-9]+$ ]] || die "a node is named nodeN, got '$1'"
  ip netns list | awk '{print $1}' | grep -qx "$(ns_of "$1")" || die "no node $1 (prefix $PREFIX): '$0 up' first"
}

cmd_exec() {
  local node="${1:?usage: $0 exec NODE CMD...}"; shift
  [ $# -gt 0 ] || die "usage: $0 exec NODE CMD..."
  check_node "$node"
  # The node's network (nsenter), then a mount namespace of its own with its hosts file over /etc/hosts and a
  # UTS namespace with its hostname. (Not `ip netns exec`: it also remounts /sys, which hides /sys/fs/cgroup,
  # and slurmd refuses to start without it.)
  local ns; ns="$(ns_of "$node")"
  exec nsenter --net="/run/netns/$ns" unshare --mount --uts sh -c \
    'mount --bind "$1" /etc/hosts && hostname "$0" && shift && exec "$@"' "$node" "/etc/netns/$ns/hosts" "$@"
}

cmd_pids() {
  check_node "$1"
  ip netns pids "$(ns_of "$1")"
}

kill_all() {  # kill_all NAMESPACE: SIGKILL until no process is left in it
  local ns="$1" pids
  for _ in $(seq 50); do
    pids="$(ip netns pids "$ns" 2>/dev/null || true)"
    [ -z "$pids" ] && return 0
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    sleep 0.1
  done
  die "processes still alive on $ns: $pids"
}

cmd_kill() {
  local node="${1:?usage: $0 kill NODE}" ns
  check_node "$node"
  ns="$(ns_of "$node")"
  ip -n "$ns" link set eth0 down   # first: a dead machine sends no FIN or RST to its peers
  kill_all "$ns"
  log "$node: link down, every process killed"
}

cmd_revive() {
  local node="${1:?usage: $0 revive NODE}"
  check_node "$node"
  ip -n "$(ns_of "$node")" link set eth0 up
  log "$node: link up"
}

cmd_down() {
  local ns
  for ns in $(node_namespaces); do
    kill_all "$ns"
    ip netns del "$ns"
    rm -rf "/etc/netns/$ns"
  done
  if ip netns list | awk '{print $1}' | grep -qx "$SWITCH"; then ip netns del "$SWITCH"; fi
  rmdir /etc/netns 2>/dev/null || true
  log "down (prefix $PREFIX)"
}

case "${1:-}" in
  install) cmd_install ;;
  up) shift; cmd_up "$@" ;;
  exec) shift; cmd_exec "$@" ;;
  list) cmd_list ;;
  pids) shift; cmd_pids "${1:?usage: $0 pids NODE}" ;;
  kill) shift; cmd_kill "$@" ;;
  revive) shift; cmd_revive "$@" ;;
  down) cmd_down ;;
  *) echo "usage: $0 {install|up [N]|exec NODE CMD...|list|pids NODE|kill NODE|revive NODE|down}" >&2; exit 2 ;;
esac
