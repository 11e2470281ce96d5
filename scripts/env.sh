# Shared environment for Tiffin's scripts (sourced, not run).
# A persistent cargo target dir outside the clone: risc0's C++ kernels take ~26 minutes to
# build on 2 cores, so fresh clones (CI) must reuse earlier builds.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/tiffin-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
TIFFIN_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export TIFFIN_ROOT

# The one build every script runs. Building the whole workspace with all targets activates
# every crate's dev-dependencies, so cargo resolves ONE feature set for risc0 and its
# dependencies; building a single binary would resolve another and rebuild risc0's C++
# kernels (~26 minutes) every time scripts alternate.
tiffin_build() {
  cargo build --workspace --all-targets "$@"
}
