#!/usr/bin/env bash
# Runs a fuzz target (fuzz/, cargo-fuzz + libFuzzer) for a number of seconds on the stable
# toolchain, and prints one summary line: target, seconds, executions, crash or not.
#
#   scripts/fuzz.sh list                 # the targets
#   scripts/fuzz.sh <target> [seconds]   # default 60; an hour is 3600
#   scripts/fuzz.sh all [seconds]        # every target in turn, for that long each
#
# Stable rustc cannot take `-Zsanitizer`, so targets build with `-s none` (no AddressSanitizer:
# atmls forbids unsafe code, and libFuzzer's coverage instrumentation, `-Cpasses=sancov-module`
# with its `-Cllvm-args`, is stable). libfuzzer-sys compiles libFuzzer with the `cc` crate, so
# g++ is enough; clang is not needed. `-O` builds optimized; fuzz/Cargo.toml's release profile
# keeps debug assertions and overflow checks on.
#
# New inputs go to fuzz/work/<target>/ (not committed); fuzz/corpus/<target>/ and
# fuzz/regressions/<target>/ are read as seeds. A crash is written to fuzz/artifacts/<target>/:
# fix it, then keep the input in fuzz/regressions/<target>/ (tests/fuzz_corpus.rs replays it).
set -euo pipefail
cd "$(dirname "$0")/.."

targets() { sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^atmls-fuzz$'; }

what="${1:?usage: scripts/fuzz.sh list | <target> [seconds] | all [seconds]}"
secs="${2:-60}"
if [ "$what" = list ]; then
    targets
    exit 0
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

run() {
    local t="$1" log
    mkdir -p "fuzz/work/$t" "fuzz/corpus/$t" "fuzz/regressions/$t" "fuzz/artifacts/$t"
    log="fuzz/artifacts/$t/last-run.log"
    cargo fuzz build -O -s none "$t"
    local rc=0
    # -timeout: one input taking 10 s is a finding (work bounded per input); -rss_limit_mb:
    # so is an allocation past 2 GiB.
    cargo fuzz run -O -s none "$t" "fuzz/work/$t" "fuzz/corpus/$t" "fuzz/regressions/$t" -- \
        -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1 >"$log" 2>&1 || rc=$?
    local execs
    execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
    echo "fuzz $t: ${secs}s, ${execs:-?} executions, $([ $rc = 0 ] && echo 'no crash' || echo "CRASH (rc $rc, $log)")"
    return $rc
}

if [ "$what" = all ]; then
    status=0
    for t in $(targets); do run "$t" || status=1; done
    exit $status
fi
run "$what"
