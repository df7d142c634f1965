# shellcheck shell=bash
# Tests/Jepsen/netns.sh: a private network of namespaces for fault tests, and the
# faults themselves (cut, one-way drop, split, link down, delay/loss, heal).
#
# Layout (nothing is created in the host's namespace; every interface lives inside
# a namespace this library made, so the 10.77.0.0/24 range exists only in here):
#
#      $NETNS_PREFIX-sw   (switch: bridge br0, one veth end per host: p1..pN, pc)
#        |- $NETNS_PREFIX-n1  eth0 10.77.0.11     member 1
#        |- $NETNS_PREFIX-n2  eth0 10.77.0.12     member 2
#        |- ...               eth0 10.77.0.(10+i)
#        `- $NETNS_PREFIX-cl  eth0 10.77.0.100    the client (load, checks)
#
# Use:
#   . Tests/Jepsen/netns.sh
#   netns_setup 3                 # prefix from NETNS_PREFIX (default kvdj-$$)
#   netns_exec 2 cmd ...          # run in member 2's namespace (same PID as cmd: ip netns exec execs)
#   netns_client cmd ...          # run in the client's namespace
#   net_isolate 1                 # member 1 cannot talk to the other members (client still reaches it)
#   net_isolate_full 1            # ... nor to the client
#   net_split "1 2" "3"           # no traffic between the two groups
#   net_drop_oneway 1 2           # packets from 1 to 2 are dropped (2 -> 1 still flows)
#   net_cut 1 2                   # both directions between 1 and 2
#   net_link_down 3 / net_link_up 3   # the switch port of member 3
#   net_delay 2 50 10 / net_loss 2 20 # tc netem on member 2's eth0 (if tc and sch_netem exist)
#   net_heal                      # everything back: rules flushed, links up, qdiscs removed
#   netns_teardown                # delete every namespace made (kill your processes first)
#
# Drops are iptables rules on the receiver's INPUT chain (a packet from A to B is
# dropped on arrival at B), the closest thing to a lossy wire; a cut is a drop in
# both directions. Every fault is appended to $NET_LOG (if set) with a timestamp.

NETNS_PREFIX=${NETNS_PREFIX:-kvdj-$$}
NETNS_SUBNET=10.77.0
NETNS_N=0
NETNS_MADE=()
NET_LOG=${NET_LOG:-}
IPT=${IPT:-iptables}

_net_log() {
    [[ -n $NET_LOG ]] && echo "$(date +%s.%N) $*" >>"$NET_LOG"
    return 0
}

netns_name() { echo "$NETNS_PREFIX-n$1"; }
netns_client_name() { echo "$NETNS_PREFIX-cl"; }
netns_ip() { echo "$NETNS_SUBNET.$((10 + $1))"; }
netns_client_ip() { echo "$NETNS_SUBNET.100"; }

# netns_check: the tools this library needs, and the right to make namespaces.
netns_check() {
    local t
    for t in ip "$IPT"; do
        command -v "$t" >/dev/null || { echo "netns: '$t' not found (Debian packages iproute2, iptables)" >&2; return 1; }
    done
    [[ $(id -u) == 0 ]] || { echo "netns: must run as root (network namespaces)" >&2; return 1; }
}

# _netns_host NS IP PORT: a namespace with lo up and eth0 (IP/24) plugged into the switch as PORT.
_netns_host() {
    local ns=$1 ip=$2 port=$3 sw=$NETNS_PREFIX-sw
    ip netns add "$ns" || return 1
    NETNS_MADE+=("$ns")
    ip -n "$ns" link set lo up
    # Both ends are made inside namespaces: no interface ever appears in the host's namespace.
    ip -n "$sw" link add "$port" type veth peer name eth0 netns "$ns" || return 1
    ip -n "$sw" link set "$port" master br0
    ip -n "$sw" link set "$port" up
    ip -n "$ns" addr add "$ip/24" dev eth0
    ip -n "$ns" link set eth0 up
    # Fail fast on a cut instead of waiting out a long kernel retransmit: no effect on correctness.
    ip netns exec "$ns" sysctl -qw net.ipv4.tcp_retries2=8 2>/dev/null || true
}

# netns_setup N: switch + N member namespaces + client namespace.
netns_setup() {
    local n=$1 i sw=$NETNS_PREFIX-sw
    netns_check || return 1
    NETNS_N=$n
    ip netns add "$sw" || return 1
    NETNS_MADE+=("$sw")
    ip -n "$sw" link set lo up
    ip -n "$sw" link add br0 type bridge || return 1
    ip -n "$sw" link set br0 up
    for ((i = 1; i <= n; i++)); do
        _netns_host "$(netns_name "$i")" "$(netns_ip "$i")" "p$i" || return 1
    done
    _netns_host "$(netns_client_name)" "$(netns_client_ip)" pc || return 1
    _net_log "setup $n members, prefix $NETNS_PREFIX"
}

# netns_teardown: delete every namespace this library made (their veths go with them).
netns_teardown() {
    local ns
    for ns in "${NETNS_MADE[@]}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
    NETNS_MADE=()
}

netns_exec() { local i=$1; shift; ip netns exec "$(netns_name "$i")" "$@"; }
netns_client() { ip netns exec "$(netns_client_name)" "$@"; }

# _drop FROM_IP TO_MEMBER: packets from FROM_IP are dropped on arrival at member TO_MEMBER.
_drop() {
    ip netns exec "$(netns_name "$2")" "$IPT" -w 5 -A INPUT -s "$1" -j DROP
}

# net_drop_oneway A B: packets from member A to member B are dropped (B -> A still flows).
net_drop_oneway() {
    _drop "$(netns_ip "$1")" "$2"
    _net_log "drop $1 -> $2"
}

# net_cut A B: no traffic between members A and B.
net_cut() {
    _drop "$(netns_ip "$1")" "$2"
    _drop "$(netns_ip "$2")" "$1"
    _net_log "cut $1 <-> $2"
}

# net_isolate I: member I is cut from every other member (the client still reaches it).
net_isolate() {
    local i=$1 j
    for ((j = 1; j <= NETNS_N; j++)); do
        ((j == i)) || net_cut "$i" "$j"
    done
    _net_log "isolate $i"
}

# net_isolate_full I: member I is cut from the other members and from the client.
net_isolate_full() {
    net_isolate "$1"
    _drop "$(netns_client_ip)" "$1"
    ip netns exec "$(netns_client_name)" "$IPT" -w 5 -A INPUT -s "$(netns_ip "$1")" -j DROP
    _net_log "isolate-full $1"
}

# net_split "A B" "C ...": no traffic between the two groups of members.
net_split() {
    local a b
    for a in $1; do
        for b in $2; do net_cut "$a" "$b"; done
    done
    _net_log "split [$1] [$2]"
}

# net_link_down I / net_link_up I: unplug/replug member I's switch port (also cuts the client).
net_link_down() { ip -n "$NETNS_PREFIX-sw" link set "p$1" down && _net_log "link-down $1"; }
net_link_up() { ip -n "$NETNS_PREFIX-sw" link set "p$1" up && _net_log "link-up $1"; }

# net_has_netem: tc exists and the kernel accepts a netem qdisc.
net_has_netem() {
    command -v tc >/dev/null || return 1
    local ns
    ns=$(netns_client_name)
    ip netns exec "$ns" tc qdisc add dev lo root netem delay 1ms 2>/dev/null || return 1
    ip netns exec "$ns" tc qdisc del dev lo root 2>/dev/null
    return 0
}

# net_delay I MS [JITTER_MS]: delay every packet member I sends.
net_delay() {
    ip netns exec "$(netns_name "$1")" tc qdisc replace dev eth0 root netem delay "${2}ms" "${3:-0}ms" &&
        _net_log "delay $1 ${2}ms ${3:-0}ms"
}

# net_loss I PCT: drop PCT% of the packets member I sends.
net_loss() {
    ip netns exec "$(netns_name "$1")" tc qdisc replace dev eth0 root netem loss "${2}%" &&
        _net_log "loss $1 ${2}%"
}

# net_heal: flush all drop rules, replug all ports, remove all qdiscs.
net_heal() {
    local i ns
    for ((i = 1; i <= NETNS_N; i++)); do
        ns=$(netns_name "$i")
        ip netns exec "$ns" "$IPT" -w 5 -F INPUT 2>/dev/null
        ip netns exec "$ns" "$IPT" -w 5 -F OUTPUT 2>/dev/null
        ip netns exec "$ns" tc qdisc del dev eth0 root 2>/dev/null
        ip -n "$NETNS_PREFIX-sw" link set "p$i" up 2>/dev/null
    done
    ip netns exec "$(netns_client_name)" "$IPT" -w 5 -F INPUT 2>/dev/null
    _net_log "heal"
    return 0
}

# net_rules: the current drop rules of every member (for logs).
net_rules() {
    local i
    for ((i = 1; i <= NETNS_N; i++)); do
        echo "n$i: $(ip netns exec "$(netns_name "$i")" "$IPT" -w 5 -S INPUT 2>/dev/null | grep -c DROP) drops"
    done
}
