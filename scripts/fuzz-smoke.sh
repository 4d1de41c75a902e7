#!/usr/bin/env bash
# Runs every fuzz target in fuzz/ for a short, bounded time: with libFuzzer
# when cargo-fuzz and a nightly toolchain are installed, otherwise the same
# target bodies (doorward::fuzz_targets, shared with fuzz/) as seeded
# property tests on stable. It always says which ran; it never skips.
#
#   FUZZ_SECONDS=N    seconds per target (default 10)
#   FUZZ_ENGINE=auto  or `libfuzzer` (fail if unavailable) or `property`
#
# Costs measured on the 2-core CI machine: the property tests reuse the
# test suite's build, so 12 targets x 10 s, two at a time, take about a minute.
# libFuzzer needs `cargo install cargo-fuzz --locked` (88 s) and an
# instrumented build of doorward (see README, Fuzzing) before the same
# 80 s of fuzzing, which is why CI does not install it.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-10}"
engine="${FUZZ_ENGINE:-auto}"
# Every [[bin]] of the fuzz crate is a target (its package is doorward-fuzz).
targets=$(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/Cargo.toml)

have_libfuzzer() {
  cargo +nightly --version >/dev/null 2>&1 && cargo fuzz --version >/dev/null 2>&1
}

if [ "$engine" = auto ]; then
  if have_libfuzzer; then engine=libfuzzer; else engine=property; fi
fi
case "$engine" in
  libfuzzer)
    echo "== fuzz: libFuzzer (cargo-fuzz on nightly), ${seconds}s per target: $(echo $targets)"
    for target in $targets; do
      echo "-- $target"
      (cd fuzz && cargo +nightly fuzz run -O "$target" -- -max_total_time="$seconds" -print_final_stats=1)
    done
    ;;
  property)
    echo "== fuzz: cargo-fuzz or a nightly toolchain is missing, so the same targets run as"
    echo "   seeded property tests on stable, ${seconds}s per target: $(echo $targets)"
    DOORWARD_FUZZ_SECONDS="$seconds" cargo test --locked --lib fuzz_targets::property -- --test-threads=2 --nocapture
    ;;
  *)
    echo "FUZZ_ENGINE must be auto, libfuzzer or property, not \`$engine\`" >&2
    exit 2
    ;;
esac
