#!/usr/bin/env bash
# Unicorn 2.1 for emu (DESIGN.md decision 1): bookworm's 2.0.1 identity-maps addresses and has
# no TLB hook, so we take Debian trixie's .deb files (they need only libc6 >= 2.34) and unpack
# them into a project-local prefix. apt runs with private lists and cache, so the system's
# apt configuration is never touched; it still verifies trixie's signed index with the
# system keyring. A system Unicorn >= 2.1 is used as it is.
set -euo pipefail

UNICORN_VERSION="2.1.1-2+b2"  # tested; pinned
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
prefix="$here/unicorn-prefix"
stamp="$prefix/.installed-$UNICORN_VERSION"
log() { echo "[unicorn] $*" >&2; }

system_version() {
  local h=/usr/include/unicorn/unicorn.h
  [ -f "$h" ] || return 1
  local major minor
  major=$(awk '/#define UC_API_MAJOR/ {print $3}' "$h")
  minor=$(awk '/#define UC_API_MINOR/ {print $3}' "$h")
  [ -n "$major" ] && [ -n "$minor" ] || return 1
  if [ "$major" -gt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -ge 1 ]; }; then echo "$major.$minor"; return 0; fi
  return 1
}

if v=$(system_version); then log "system Unicorn $v found; nothing to do"; exit 0; fi
if [ -f "$stamp" ]; then log "Unicorn $UNICORN_VERSION already in $prefix"; exit 0; fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"  # apt drops to the _apt user for downloads
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
echo "deb http://deb.debian.org/debian trixie main" > "$work/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
  -o APT::Architecture=amd64 -o Debug::NoLocking=1 -q
)
log "reading Debian trixie's package index (private apt state in $work)"
apt-get "${apt_opts[@]}" update >&2
log "downloading libunicorn2t64 and libunicorn-dev $UNICORN_VERSION"
if ! (cd "$work/debs" && apt-get "${apt_opts[@]}" download \
        "libunicorn2t64=$UNICORN_VERSION" "libunicorn-dev=$UNICORN_VERSION" >&2); then
  log "error: Unicorn $UNICORN_VERSION is not served by trixie any more;"
  log "       update UNICORN_VERSION in $0 to a version 'apt-cache policy libunicorn-dev' lists there"
  exit 1
fi

log "unpacking into $prefix"
rm -rf "$prefix" "$work/root"
for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$work/root"; done
mkdir -p "$prefix/include" "$prefix/lib"
cp -a "$work/root/usr/include/unicorn" "$prefix/include/"
cp -a "$work/root/usr/lib/x86_64-linux-gnu/." "$prefix/lib/"
rm -f "$prefix/lib/libunicorn.a"  # 30 MB nobody links
# The -dev package's libunicorn.so is a relative link to the versioned library: keep it so.
real=$(cd "$prefix/lib" && ls libunicorn.so.2* | head -n 1)
ln -sf "$real" "$prefix/lib/libunicorn.so"
[ -e "$prefix/lib/libunicorn.so" ] || { log "error: libunicorn.so missing after unpacking"; exit 1; }
touch "$stamp"
log "Unicorn $UNICORN_VERSION ready in $prefix"
