# shellcheck shell=bash
# Installs s3s-fs, a small real S3-protocol server (SigV4 auth, buckets as directories, multipart),
# used by tiffin-storage's tests and the local cluster scripts as the S3 backend of the cold store.
#
# Usage:   source scripts/lib/s3s-fs.sh && ensure_s3s_fs
# Result:  $HOME/.cache/tiffin-tools/bin/s3s-fs (override the root with TIFFIN_TOOLS_ROOT).
#
# Pinned to 0.14.1: 0.17 needs rustc 1.96. Idempotent: does nothing when the binary exists and
# reports the pinned version; takes about 2 minutes of compiling otherwise.

S3S_FS_VERSION="0.14.1"

ensure_s3s_fs() {
  local root="${TIFFIN_TOOLS_ROOT:-$HOME/.cache/tiffin-tools}"
  local bin="$root/bin/s3s-fs"
  if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$S3S_FS_VERSION"; then
    printf '[setup] s3s-fs %s present (%s)\n' "$S3S_FS_VERSION" "$bin" >&2
    return 0
  fi
  if ! command -v cargo >/dev/null; then
    printf '[setup] cargo not found: needed to install s3s-fs\n' >&2
    return 1
  fi
  printf '[setup] installing s3s-fs %s into %s (about 2 minutes)\n' "$S3S_FS_VERSION" "$root" >&2
  cargo install --locked "s3s-fs@$S3S_FS_VERSION" --features binary --root "$root" --force \
    || cargo install "s3s-fs@$S3S_FS_VERSION" --features binary --root "$root" --force
}
