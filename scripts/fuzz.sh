#!/usr/bin/env bash
# scripts/fuzz.sh [SECONDS] — coverage-guided fuzzing (libFuzzer) of the decoders that read bytes
# from outside, each for SECONDS (default 60):
#   raft-codec       Raft messages, entries and configuration changes (Sources/Raft/Codec.swift)
#   peer-stream      the receiving end of a Raft stream: hello and frames (Transport)
#   client-requests  Raft-log requests, Ranges and Txns: the API edge's checks, then a real MVCC store
#   snapshot-files   a peer's snapshot image and an etcd snapshot.db being restored
#   member-settings  kvd's command line and etcd's YAML config file, to a member configuration
# The targets (Fuzz/, built with KVD_FUZZ=1 and --sanitize=fuzzer into .build-fuzz, about 15
# minutes the first time on two cores) start from the committed corpus in Fuzz/corpus/NAME; what
# they find new goes to a scratch directory, merged into the corpus with FUZZ_MERGE=1. A crash
# fails the run and leaves its input in $OUT/NAME-crash-* (or -timeout-*, -oom-*), replayed with
#   .build-fuzz/debug/fuzz-NAME <file>
# (each crash found becomes a regression test in the module's unit tests). client-requests keeps
# one store for a whole run, so a crash there may need the inputs before it: replay the scratch
# directory too (`fuzz-client-requests -runs=0 DIR...` runs every input in order).
#   FUZZ_TARGETS="raft-codec peer-stream" scripts/fuzz.sh 300
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
seconds=${1:-60}
targets=${FUZZ_TARGETS:-raft-codec peer-stream client-requests snapshot-files member-settings}
out=${OUT:-$(mktemp -d -t kvd-fuzz-XXXXXX)}
mkdir -p "$out"
cd "$repo"

for name in $targets; do
    KVD_FUZZ=1 swift build --scratch-path .build-fuzz --sanitize=fuzzer --product "fuzz-$name" >"$out/build-$name.log" 2>&1 ||
        { tail -n 20 "$out/build-$name.log" >&2; echo "fuzz: cannot build fuzz-$name" >&2; exit 1; }
done

failed=0
for name in $targets; do
    corpus=Fuzz/corpus/$name scratch=$out/new-$name
    mkdir -p "$corpus" "$scratch"
    # Files as large as an etcd snapshot.db of a few keys; requests and frames stay small.
    maxlen=4096
    [[ $name == snapshot-files ]] && maxlen=65536
    # Each run's databases live in their own temporary directory, removed afterwards.
    # Swift's own crash report would take the crash from libFuzzer, which then saves no input.
    scratchdb=$(mktemp -d -p "$out")
    SWIFT_BACKTRACE=enable=no TMPDIR=$scratchdb timeout -k 10 $((seconds + 120)) ".build-fuzz/debug/fuzz-$name" "$scratch" "$corpus" \
        -max_total_time="$seconds" -max_len="$maxlen" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1 \
        -artifact_prefix="$out/$name-" >"$out/$name.log" 2>&1
    rc=$?
    rm -rf "$scratchdb"
    runs=$(grep -o 'Done [0-9]* runs' "$out/$name.log" | awk '{print $2}')
    if ((rc == 0)); then
        echo "fuzz-$name: clean for ${seconds}s (${runs:-?} inputs, corpus $(find "$corpus" -type f | wc -l) + $(find "$scratch" -type f | wc -l) new)"
    else
        failed=1
        echo "fuzz-$name: FAILED (exit $rc); inputs: $(ls "$out/$name"-crash-* "$out/$name"-timeout-* "$out/$name"-oom-* 2>/dev/null | paste -sd' ')"
        grep -E 'Fatal error|ERROR: libFuzzer|SUMMARY' "$out/$name.log" | head -n 5
    fi
    if [[ ${FUZZ_MERGE:-0} == 1 ]]; then
        ".build-fuzz/debug/fuzz-$name" -merge=1 -max_len="$maxlen" "$corpus" "$scratch" >"$out/merge-$name.log" 2>&1 ||
            echo "fuzz-$name: merge failed ($out/merge-$name.log)"
    fi
done
echo "fuzz: logs in $out"
exit $failed
