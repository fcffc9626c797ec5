#!/usr/bin/env bash
# Puts Debian bookworm's statically linked busybox (package busybox-static) for amd64 AND i386
# into third_party/busybox/<amd64|i386>/ (git-ignored) and prints the paths of the two
# bin/busybox binaries on stdout, amd64 first. They are real-world static guests for emu
# (one binary, hundreds of applets: busybox sh -c '...', busybox sort, busybox md5sum, ...).
#
# Like third_party/install-unicorn.sh, apt runs with a private source list, lists and cache:
# the system's apt set-up (/etc/apt, /var/lib/apt/lists, /var/cache/apt) is never touched, no
# foreign architecture is added to dpkg, and root is not needed. apt still verifies bookworm's
# signed InRelease with the system keyring. Safe to run again: does nothing when both are there.
#   BUSYBOX_DEBIAN_MIRROR   the Debian mirror (default: the one the system uses, deb.debian.org)
set -euo pipefail

DEBIAN_MIRROR="${BUSYBOX_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SUITE="bookworm"
ARCHES=(amd64 i386)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"   # repo root, from this file's place
dest="$root/third_party/busybox"
log() { echo "[busybox] $*" >&2; }
die() { log "error: $*"; exit 1; }

# The binary inside an unpacked busybox-static (bookworm: bin/busybox; usr/bin as a fallback).
binary_in() {
  local d="$1" f
  for f in "$d/bin/busybox" "$d/usr/bin/busybox"; do
    if [ -x "$f" ]; then echo "$f"; return 0; fi
  done
  return 1
}

# 1. Already unpacked: print the paths and stop.
have_all=1
for arch in "${ARCHES[@]}"; do
  if ! binary_in "$dest/$arch" >/dev/null || ! compgen -G "$dest/$arch/.installed-*" >/dev/null; then have_all=0; fi
done
if [ "$have_all" = 1 ]; then
  log "busybox-static already in $dest; nothing to do"
  for arch in "${ARCHES[@]}"; do binary_in "$dest/$arch"; done
  exit 0
fi

# 2. Download both .debs from bookworm with private apt state.
for tool in apt-get apt-cache dpkg dpkg-deb; do
  command -v "$tool" >/dev/null || die "needs $tool (Debian/Ubuntu)"
done
work="$(mktemp -d)"
cleanup() {  # only ever transient
  local a
  rm -rf "$work"
  for a in "${ARCHES[@]}"; do rm -rf "$dest/$a.new" "$dest/$a.old"; done
}
trap cleanup EXIT
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
chmod 755 "$work"  # as root apt fetches as the _apt user, which must reach these dirs
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$work/debs"; fi
signed_by=""
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
if [ -r "$keyring" ]; then signed_by=" signed-by=$keyring"; fi
# Only the main suite (its point releases carry busybox's fixes; bookworm-security has no
# busybox), which keeps the download to two Packages indexes of about 9 MB each.
echo "deb [arch=$(IFS=,; echo "${ARCHES[*]}")$signed_by] $DEBIAN_MIRROR $DEBIAN_SUITE main" > "$work/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
  -o APT::Architecture=amd64 -o "APT::Architectures=$(IFS=,; echo "${ARCHES[*]}")"
  -o Debug::NoLocking=1 -q
)
log "fetching Debian $DEBIAN_SUITE's package index for ${ARCHES[*]} (private apt state in $work)"
apt-get "${apt_opts[@]}" update >&2 || die "apt-get update against $DEBIAN_SUITE failed (network? signature?)"
pkgs=()
for arch in "${ARCHES[@]}"; do
  apt-cache "${apt_opts[@]}" show "busybox-static:$arch" >/dev/null 2>&1 ||
    die "busybox-static:$arch is not in $DEBIAN_MIRROR $DEBIAN_SUITE"
  pkgs+=("busybox-static:$arch")
done
log "downloading ${pkgs[*]}"
(cd "$work/debs" && apt-get "${apt_opts[@]}" download "${pkgs[@]}" >&2) || die "download failed"

# 3. Unpack each into a staging dir next to its destination, then swap it in.
mkdir -p "$dest"
for arch in "${ARCHES[@]}"; do
  debs=("$work"/debs/busybox-static_*_"$arch".deb)
  [ -f "${debs[0]}" ] || die "no busybox-static .deb for $arch was downloaded"
  version="$(dpkg-deb -f "${debs[0]}" Version)"
  stage="$dest/$arch.new"
  rm -rf "$stage" "$dest/$arch.old"
  dpkg -x "${debs[0]}" "$stage"
  bin="$(binary_in "$stage")" || die "unexpected .deb layout: no bin/busybox in ${debs[0]##*/}"
  case "$arch:$(od -An -tx1 -j4 -N1 "$bin" | tr -d ' ')" in
    amd64:02 | i386:01) ;;  # ELF class: 64-bit for amd64, 32-bit for i386
    *) die "$bin is not a $arch ELF file" ;;
  esac
  touch "$stage/.installed-${version//:/_}"
  if [ -e "$dest/$arch" ]; then mv "$dest/$arch" "$dest/$arch.old"; fi
  mv "$stage" "$dest/$arch"
  rm -rf "$dest/$arch.old"
  log "busybox-static $version ($arch) ready in $dest/$arch"
done
for arch in "${ARCHES[@]}"; do binary_in "$dest/$arch"; done
