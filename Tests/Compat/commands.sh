# shellcheck shell=bash
# Tests/Compat/commands.sh: the scripted etcdctl (ETCDCTL_API=3) command sequence
# shared by differential.sh and kvctl-vs-etcdctl.sh.
#
# Each step is one client invocation:
#   step  ARGS...           run with stdin from /dev/null
#   stepi STDIN ARGS...     run with STDIN (printf %b-free, used verbatim) on stdin
# The sequence is deterministic on a fresh single-member server: revisions,
# versions and compactions depend only on the steps before. No command prints
# timing (no `endpoint health`, no `took`).
#
# Coverage (issue 2's kvctl list): put (--prev-kv, --ignore-value, --ignore-lease,
# value from stdin, errors), get (--prefix, --from-key, --limit, --rev incl.
# compacted/future, --keys-only, --count-only, --print-value-only, --sort-by
# CREATE/KEY/MODIFY/VALUE/VERSION, --order ASCEND/DESCEND, range end, -w json,
# -w fields, --hex), del (--prefix, --from-key, --prev-kv, missing key, range end),
# txn (compares value/version/create/mod/lease with = != < >, success/failure,
# -w json/fields, -i, invalid txns), compaction (--physical, twice, future),
# argument errors and their exit codes; lease (list, timetolive, revoke,
# keep-alive --once of a missing lease), alarm list/disarm, defrag, watch of a
# compacted revision and watch/snapshot argument errors.
#
# Marks (STEP_FLAGS):
#   client_only_panic  etcdctl 3.4 itself panics before sending anything (any
#                      lease() compare, an unknown operator such as ==); only the
#                      first stderr line and the exit code (2) are compared, and
#                      kvctl-vs-etcdctl skips these steps.
#   etcdctl34_lacks    a flag etcdctl 3.4 does not have (get --count-only, added in
#                      3.5): etcdctl prints usage and exits 1; kvctl-vs-etcdctl skips.
#   kvctl_lacks        a command kvctl does not have: only the server differential
#                      runs it.

STEP_ARGS=()
STEP_STDIN=()
STEP_FLAGS=()

step() { STEP_ARGS+=("$(printf '%q ' "$@")"); STEP_STDIN+=(""); STEP_FLAGS+=(""); }
stepi() { local in=$1; shift; STEP_ARGS+=("$(printf '%q ' "$@")"); STEP_STDIN+=("$in"); STEP_FLAGS+=(""); }
# mark the last step
mark() { STEP_FLAGS[${#STEP_FLAGS[@]} - 1]=$1; }

nl=$'\n'

# ---- put ---------------------------------------------------------------------
step put foo bar                                   # rev 2
step put foo bar2 --prev-kv                        # rev 3, prints previous kv
step put foo1 v1                                   # 4
step put foo2 v2                                   # 5
step put foo3 v3                                   # 6
step put zoo z1                                    # 7
step put a/1 x                                     # 8
step put a/2 y                                     # 9
step put b bval                                    # 10
step put foo2 v2b -w json                          # 11
step put foo3 v3b --prev-kv -w json                # 12
step put foo1 v1b --prev-kv -w fields              # 13
step put foo --ignore-value                        # 14 (value stays bar2)
step put foo --ignore-value --prev-kv -w json      # 15
step put foo v4 --ignore-lease                     # 16
step put nokey --ignore-value                      # error: key not found
step put nokey2 val --ignore-lease                 # error: key not found
step put '' emptykey                               # error: key is not provided
step put foo --ignore-value extra                  # arg error, exit 128
step put                                           # arg error, exit 128
stepi "from-stdin" put stdinkey                    # 17: value read from stdin
step put multi "line1${nl}line2"                   # 18
step put utf "é\"q"                                # 19
step put hexk "$(printf 'a\001b')"                 # 20
step put empty ''                                  # 21: empty value is fine
step put 'sp ace' 'v w'                            # 22
stepi "$(head -c 1600000 /dev/zero | tr '\0' x)" put big   # > 1.5 MiB: request is too large

# ---- get ---------------------------------------------------------------------
step get foo
step get foo -w json
step get foo -w fields
step get foo --hex
step get hexk --hex -w fields
step get multi -w fields
step get utf
step get missing
step get missing -w json
step get foo --prefix
step get foo --prefix -w json
step get foo --prefix --limit 2
step get foo --prefix --limit 2 -w json
step get foo --prefix --limit 2 -w fields
step get b --from-key --keys-only
step get '' --from-key --keys-only
step get foo foo3
step get a/1 a/3 -w json
step get foo --rev 2
step get foo --rev 3 -w json
step get foo --keys-only --prefix
step get foo --keys-only -w json
step get foo --count-only --prefix -w json        # etcdctl 3.4 has no --count-only
mark etcdctl34_lacks
step get '' --prefix --keys-only -w json
step get foo --print-value-only
step get foo --prefix --print-value-only
step get foo --prefix --sort-by CREATE --order DESCEND
step get foo --prefix --sort-by KEY --order DESCEND
step get foo --prefix --sort-by MODIFY --order ASCEND
step get foo --prefix --sort-by VALUE --order DESCEND
step get foo --prefix --sort-by VERSION --order DESCEND -w json
step get foo --prefix --order DESCEND
step get foo --prefix --sort-by MODIFY
step get foo --prefix --sort-by=create --order=descend
step --dial-timeout=3s --command-timeout=7s get foo -w simple   # global flags
step get foo --write-out=json --hex
step --hex=true get foo --prefix --limit=1 -w fields
step get empty -w json
step get 'sp ace'
step get '' --prefix --keys-only
step get foo --prefix --limit -1
step get foo --rev -3
step get foo --prefix --sort-by=VALUE --order=DESCEND --limit 2 -w json
step get foo --prefix --order=DESCEND --limit 1 -w json
step get foo --prefix --sort-by=VERSION --limit 3
step get foo --prefix --limit 2 --rev 12 -w json
step get zoo foo                                   # range end before key: nothing
step get foo --consistency=s -w json
step get foo --rev 1000                            # future revision
step get foo --sort-by FOO                         # exit 4
step get foo --order UP                            # exit 4
step get                                           # exit 128
step get foo bar --prefix                          # exit 128
step get foo --prefix --from-key                   # exit 128

# ---- txn ---------------------------------------------------------------------
stepi "value(\"foo\") = \"v4\"${nl}${nl}put t1 yes${nl}${nl}put t1 no${nl}${nl}" txn
stepi "value(\"foo\") != \"v4\"${nl}${nl}put t1 yes${nl}${nl}put t1 no${nl}get foo${nl}${nl}" txn
stepi "version(\"foo\") > \"2\"${nl}create(\"foo\") < \"5\"${nl}${nl}get foo --prefix --limit 2${nl}del t1 --prev-kv${nl}${nl}put t2 f${nl}${nl}" txn -w json
stepi "mod(\"foo1\") = \"13\"${nl}ver(\"zoo\") < \"2\"${nl}${nl}put t3 a --prev-kv${nl}put t4 b${nl}${nl}${nl}" txn -w fields
stepi "c(\"nothere\") = \"0\"${nl}m(\"foo\") != \"0\"${nl}val(\"zoo\") > \"z\"${nl}${nl}get zoo${nl}${nl}get foo${nl}${nl}" txn
stepi "val(\"zoo\") < \"a\"${nl}${nl}put t5 x${nl}${nl}del zoo --prev-kv${nl}put t5 y${nl}${nl}" txn -w json
stepi "${nl}put t6 a${nl}put t7 b${nl}${nl}${nl}" txn
stepi "${nl}get foo --rev 2${nl}get foo --prefix --keys-only --limit 1${nl}get foo --sort-by=VALUE --order=DESCEND --prefix${nl}${nl}${nl}" txn -w json
stepi "${nl}$(for i in $(seq 1 129); do echo "put many$i x"; done)${nl}${nl}${nl}" txn    # > 128 ops
stepi "${nl}$(for i in $(seq 1 128); do echo "put many$i x"; done)${nl}${nl}${nl}" txn    # exactly 128 ops
stepi "${nl}put t11 a${nl}del t11${nl}${nl}${nl}" txn    # put and delete of one key: duplicate
stepi "value(\"nothere\") != \"x\"${nl}${nl}put t12 a${nl}${nl}put t12 b${nl}${nl}" txn   # value cmp on a missing key
stepi "version(\"nothere\") = \"0\"${nl}mod(\"nothere\") < \"1\"${nl}create(\"nothere\") = \"0\"${nl}${nl}get t12${nl}${nl}${nl}" txn
stepi "value(\"foo\") > \"v3\"${nl}value(\"foo\") < \"v5\"${nl}value(\"foo1\") < \"v1c\"${nl}${nl}get t12 --print-value-only${nl}${nl}${nl}" txn -w fields
stepi "value(\"foo\") = \"v4\"${nl}value(\"foo\") = \"nope\"${nl}${nl}put t13 a${nl}${nl}del t12 --prev-kv${nl}${nl}" txn  # one false compare fails all
stepi "${nl}del t6${nl}del t6${nl}${nl}${nl}" txn        # two deletes of one key
stepi "${nl}${nl}${nl}" txn -w json                  # empty txn: no revision change
stepi "value(\"foo\") = \"v4\"${nl}${nl}put t8 a${nl}${nl}${nl}" txn -i
stepi "${nl}put dup 1${nl}put dup 2${nl}${nl}${nl}" txn     # duplicate key error
stepi "value(\"foo\") == \"v4\"${nl}${nl}${nl}${nl}" txn    # bad operator: etcdctl panics
mark client_only_panic
stepi "bogus(\"foo\") = \"v4\"${nl}${nl}${nl}${nl}" txn     # unknown target, exit 3
stepi "value foo = v4${nl}${nl}${nl}${nl}" txn              # malformed, exit 3
stepi "${nl}frob foo${nl}${nl}${nl}" txn                    # invalid request, exit 3
stepi "version(\"foo\") = \"x\"${nl}${nl}${nl}${nl}" txn    # non-numeric version, exit 3
stepi "lease(\"foo\") = 0${nl}${nl}${nl}${nl}" txn          # unquoted, exit 3
stepi "lease(\"foo\") = \"0\"${nl}${nl}put t9 a${nl}${nl}${nl}" txn
mark client_only_panic
stepi "${nl}put t10 a${nl}" txn                             # EOF in failure branch
step txn extra                                              # exit 128

# ---- del ---------------------------------------------------------------------
step del t6
step del t6                                        # missing: 0
step del foo1 --prev-kv
step del foo1 --prev-kv -w json
step del a/ --prefix --prev-kv -w fields
step del t2 t5                                     # range end
step del t7 --from-key -w json
step del '' --from-key --prev-kv -w json     # hmm: deletes rest? see below
step del
step del a --prefix --from-key
step get '' --from-key
step put after del                                 # fresh key after deletes
step put foo reborn                                # recreate a deleted key: version 1
step get foo -w json
step del zoo foo                                   # range end before key: 0

# ---- compaction ----------------------------------------------------------------
step compaction 5
step compaction 5                                  # already compacted
step compaction 3                                  # below compacted
step get foo --rev 4                               # compacted
step get foo --rev 5 -w json
step compaction 100000                             # future revision
step compaction --physical 10
step get foo1 --rev 12 -w json
step get foo1 --rev 9                              # compacted
step compaction 0
step compaction abc                                # exit 1 (parse error)
step compaction                                    # exit 128
step get after -w json

# ---- lease, alarm, defrag, watch, snapshot (deterministic parts) ------------------
# No lease is granted here: lease IDs differ from server to server (etcd's include
# the time). kvctl-vs-etcdctl.sh part 3 grants, renews and revokes with IDs masked.
# NB: `alarm list -w json` and `watch --rev 3 foo -w json` are in part 3 too: kvd
# differs from etcd 3.4 there (it sends a header with alarm lists, and the current
# revision in the header of a compacted watch's cancel, where etcd sends none).
step lease list
step lease list -w json
step lease timetolive 1                            # no such lease: "already expired"
step lease timetolive 1 --keys -w json             # "ttl":-1, "keys":null
step lease revoke 1                                # lease not found, exit 1
step lease keep-alive --once 1                     # lease not found, exit 2
step lease grant                                   # exit 128
step lease grant abc                               # bad TTL, exit 128
step lease revoke xyz                              # bad lease ID, exit 128
step alarm list
step alarm disarm -w json                          # nothing to disarm: {}
step alarm list extra                              # exit 128
step defrag
step defrag -w json                                # the same line in every format
step watch                                         # exit 128
step watch a b --prefix                            # exit 128
step watch --rev 3 foo                             # compacted: canceled, exit 5
step watch foo --                                  # a separator but no command, exit 128
step watch --rev 3 foo -- echo never               # compacted before any event: no command runs
step snapshot status /nonexistent                  # exit 1
step snapshot save                                 # exit 128
step version

# ---- auth (disabled): users and roles are kept as etcd keeps them -----------------
# `auth enable` once a root user exists is left out: the later steps run without credentials
# (authentication itself is Tests/Cluster/auth.sh's).
step auth enable                                   # root user does not exist
step auth disable
step user list
step role list
step user get alice                                # user name not found
step role get readers                              # role name not found
step user delete alice
step user grant-role alice readers
step role delete readers
step role grant-permission readers read foo
stepi "secret" user passwd alice --interactive=false
step user add root:rootpw
step user add root:again                           # user name already exists
step user add :nopw                                # user name is empty
step user add alice:pw -w json
step user add bob --no-password
stepi "pw2" user add carol --interactive=false
step user add dave --new-user-password=pw3
step user list
step user list -w json
step role add readers
step role add readers                              # role name already exists
step role add writers -w json
step role list -w json
step role grant-permission readers read foo
step role grant-permission readers readwrite a b
step role grant-permission readers write --prefix p/
step role grant-permission readers read --from-key z
step role grant-permission readers write foo       # changes foo's type
step role grant-permission nosuch read foo
step role grant-permission readers bogus foo       # bad permission type
step role get readers
step role get readers -w json
step user grant-role alice readers
step user grant-role alice readers                 # again: no change
step user grant-role alice nosuch
step user grant-role alice root                    # the root role need not exist
step user grant-role nobody readers
step user get alice
step user get alice --detail
step user get alice -w json
step user revoke-role alice root
step user revoke-role alice root                   # role is not granted to the user
step role revoke-permission readers foo
step role revoke-permission readers foo            # permission is not granted
step role revoke-permission readers a b
step role revoke-permission readers --prefix p/
step role get readers -w json
step role get readers -w fields
step role list -w fields
step user add eve:pw -w fields
step user get alice -w fields                      # fields not supported
step user list -w table                            # table not supported
step user get alice --detail -w json
step user add                                      # argument errors, exit 128
step user add a b
step user grant-role alice
step role grant-permission readers read
step role grant-permission readers read a --prefix --from-key
step role grant-permission readers read a b --prefix
step role grant-permission readers read a b --from-key
step role grant-permission readers readwrite '' --prefix   # the whole key space
step role revoke-permission readers '' --from-key   # revokes it
step role revoke-permission readers
step role get readers
step auth enable extra
step auth disable extra
step user grant-role bob writers
step role delete readers                           # taken from alice too
step user get alice -w json
step role list
stepi "newpw" user passwd bob --interactive=false
step user passwd nobody --interactive=false        # EOF on stdin
step user delete alice
step user delete alice                             # user name not found
step user list
step user get bob --detail

# ---- headers etcd leaves out ------------------------------------------------------
step alarm list -w json                            # no header at all
step watch foo --rev 1 -w json                     # compacted: the cancel carries no revision
