#!/usr/bin/env bash
# Tests/Cluster/etcdctl.sh: Debian's etcdctl 3.4 against a three-member mTLS kvd cluster,
# differential against a three-member mTLS etcd 3.4 cluster. The same command sequence runs
# against both (endpoint health/status --cluster, member list, put/get/txn/del/compaction
# through different members, and refused requests); each step's stdout, stderr and exit
# status must be the same after normalising only what differs between two clusters by
# nature: member and cluster IDs, ports, member names (k1..k3 / e1..e3 -> n1..n3), raft
# terms and indexes, which member leads, database sizes and durations.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
cluster_init etcdctl
[[ -x $ETCD_BIN ]] || die "etcd binary '$ETCD_BIN' not found (apt-get install etcd-server)"

# run_sequence PREFIX: the command sequence against members PREFIX1..3, one output file per
# step in $COMPAT_TMP/out.PREFIX/, plus map.PREFIX (ID/port -> symbolic name) for normalising.
run_sequence() {
    local p=$1 out=$COMPAT_TMP/out.$1 n i
    mkdir -p "$out"
    wait_one_leader 10 "${p}1" "${p}2" "${p}3" >/dev/null || fail "$p: no single leader"
    # etcdctl prints member IDs in hex (simple/table) and decimal (json; bash arithmetic is
    # signed, printf %u makes IDs above 2^63 unsigned again).
    : >"$COMPAT_TMP/map.$p"
    for n in 1 2 3; do
        local id
        id=$(member_id "$p$n")
        printf '%s n%s\n%s n%s\n%s client:n%s\n%s peer:n%s\n' "$id" "$n" "$(printf '%u' "$((16#$id))")" "$n" \
            "${SERVER_CPORT[$p$n]}" "$n" "${SERVER_PPORT[$p$n]}" "$n" >>"$COMPAT_TMP/map.$p"
    done
    i=0
    step() {  # step MEMBER|all ARGS... (stdin passed through)
        local who=$1; shift
        i=$((i + 1))
        local f
        f=$(printf '%s/%02d' "$out" "$i")
        echo "\$ etcdctl $*" >"$f"
        local rc=0
        if [[ $who == all ]]; then cctl "$@" >>"$f" 2>"$f.err" || rc=$?
        else nctl "$p$who" "$@" >>"$f" 2>"$f.err" || rc=$?; fi
        # clientv3's retry warnings are logs with timestamps, not the command's output.
        grep -v '^{"level"' "$f.err" >>"$f"
        echo "exit $rc" >>"$f"
        rm -f "$f.err"
    }
    step all endpoint health --cluster
    step all endpoint health --cluster -w table
    step all endpoint status --cluster -w table
    step all endpoint status --cluster -w json
    step all member list -w table
    step 1 member list -w json
    step 1 member list
    step 1 put foo bar
    step 2 get foo -w json
    step 3 put foo baz --prev-kv
    step 2 get foo -w fields
    step 1 put dir/a 1
    step 3 put dir/b 2
    step 2 get dir/ --prefix --sort-by=MODIFY --order=DESCEND
    step 1 txn -w json <<<$'mod("foo") > "0"\n\nput dir/c 3\nget dir/ --prefix\n\nput nope x\n'
    step 3 get dir/ --prefix --keys-only --consistency=s
    step 2 del dir/ --prefix --prev-kv
    step 1 get foo --rev=2
    step 3 compaction 3
    step 2 get foo --rev=2
    step 1 get foo --rev=99
    step 2 put "" x
    step 3 get dir/ --prefix --count-only -w json
    step all endpoint hashkv --cluster -w table
}

# normalise PREFIX FILE: the text of one step with cluster-specific values replaced.
normalise() {
    python3 - "$COMPAT_TMP/map.$1" "$2" "$1" <<'EOF'
import json, re, sys
mapping = dict(line.split() for line in open(sys.argv[1]))
text = open(sys.argv[2]).read()
prefix = sys.argv[3]
VOLATILE = {"cluster_id", "raft_term", "dbSize", "dbSizeInUse", "raftIndex", "raftTerm", "raftAppliedIndex", "leader"}
def ids(text):
    text = re.sub(r"\b([0-9a-f]{12,16}|\d{15,20})\b", lambda m: mapping.get(m.group(1), "<id>"), text)
    return re.sub(r"127\.0\.0\.1:(\d+)", lambda m: "127.0.0.1:" + mapping.get(m.group(1), m.group(1)), text)
def walk(value, key=None):
    if key in VOLATILE:
        return "<n>"
    if isinstance(value, dict):
        return {k: walk(v, k) for k, v in value.items()}
    if isinstance(value, list):
        # Members and endpoints are listed by ID or completion order; IDs differ by cluster.
        items = [walk(v) for v in value]
        return sorted(items, key=json.dumps) if all(isinstance(v, dict) for v in items) else items
    if isinstance(value, int) and key in ("ID", "member_id"):
        return mapping.get(str(value), "<id>")
    if isinstance(value, str):
        return ids(value)
    return value
def table(line):
    # Column widths follow the content: compare cells, not padding.
    if line.startswith("+"):
        return re.sub(r"-+", "-", line)
    if line.startswith("|"):
        return "|".join(c.strip() for c in line.split("|"))
    return line
lines = []
for line in text.split("\n"):
    if line[:1] in ("[", "{"):
        try:
            line = "JSON " + json.dumps(walk(json.loads(line)))
        except ValueError:
            line = ids(line)
    else:
        line = table(ids(line))
    line = re.sub(r"\b%s([123])\b" % prefix, r"n\1", line)
    # kvd reports etcd 3.6.0 (checked on its own below), etcd 3.4.23.
    line = re.sub(r"\b3\.(4\.23|6\.0)\b", "<version>", line)
    line = re.sub(r"took = [0-9.]+[µnm]?s", "took = <d>", line)
    line = re.sub(r"(cluster_id|raft_term): \S+", r"\1: <n>", line)
    line = re.sub(r'"(ClusterID|RaftTerm)" : \d+', r'"\1" : <n>', line)
    # Table cells that depend on who leads, the database file and the Raft log.
    line = re.sub(r"\|\d+(\.\d+)? [kMG]?B\|", "|<size>|", line)
    line = re.sub(r"\|(true|false)\|false\|\d+\|\d+\|\d+\|", "|<leader>|false|<term>|<index>|<applied>|", line)
    line = re.sub(r"\|(true|false)\|[0-9.]+[µnm]?s\|", r"|\1|<d>|", line)
    lines.append(line)
# The first line is the command; the output's lines come in ID or completion order.
print("\n".join(lines[:1] + sorted(lines[1:])))
EOF
}

nodes_k=(k1 k2 k3); nodes_e=(e1 e2 e3)
cluster_start "${nodes_k[@]}"
run_sequence k
for n in "${nodes_k[@]}"; do node_stop "$n"; done
KVD_BIN=$ETCD_BIN cluster_start "${nodes_e[@]}"
run_sequence e

for f in "$COMPAT_TMP"/out.e/*; do
    s=$(basename "$f")
    want=$(normalise e "$f")
    got=$(normalise k "$COMPAT_TMP/out.k/$s")
    title=$(head -n 1 "$f")
    if [[ $want == "$got" ]]; then
        pass "$title"
    else
        fail "$title: kvd and etcd differ:
$(diff <(echo "$want") <(echo "$got") | head -n 20)"
    fi
done
# Step 04 is `endpoint status --cluster -w json` against kvd.
status_version=$(grep -o '"version":"[^"]*"' "$COMPAT_TMP/out.k/04" | head -n 1)
expect_eq "kvd's Status version (Kubernetes needs >= 3.5.13 for consistent lists from its cache)" '"version":"3.6.0"' "$status_version"
summary etcdctl
