# shellcheck shell=bash
# Tests/Faults/faults.sh: the fault libraries, built for a test.
#
#   . Tests/Faults/faults.sh
#   build_fault_libraries DIR    # DIR/diskfault.so (slow or failing syncs), DIR/powerloss.so (the sync
#                                # log), DIR/clockshift.so (a wall clock off by an offset)
#   fault_preload DIR            # the LD_PRELOAD value that loads all three
#   power_cut_files LOG MODE SEED  # after a kill -9: cut the member's files back (powerloss.py's line)
#
# diskfault.so and powerloss.so both wrap fsync and fdatasync; loaded together, diskfault.so comes
# first, so a delayed or failed sync is decided before powerloss.so logs what a real one made
# durable. clockshift.so wraps the wall clock alone.

FAULTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

build_fault_libraries() {
    local dir=$1 compiler lib
    compiler=$(dirname "$(command -v swift 2>/dev/null || echo /usr/bin/swift)")/clang
    [[ -x $compiler ]] || compiler=cc
    for lib in diskfault powerloss clockshift; do
        "$compiler" -shared -fPIC -O2 -o "$dir/$lib.so" "$FAULTS_DIR/$lib.c" -ldl || return 1
    done
}

fault_preload() { echo "$1/diskfault.so $1/powerloss.so $1/clockshift.so"; }

power_cut_files() { python3 "$FAULTS_DIR/powerloss.py" "$@"; }
