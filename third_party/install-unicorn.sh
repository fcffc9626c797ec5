#!/usr/bin/env bash
# Puts Unicorn >= 2.1 where cmake/FindUnicorn.cmake looks (DESIGN.md decision 1). Bookworm's
# 2.0.1 has no UC_TLB_VIRTUAL / TLB hook, so we take Debian trixie's .deb files (they need only
# libc6 >= 2.34) and unpack them into third_party/unicorn-prefix/. apt runs with a private
# source list, lists and cache, so the system's apt set-up is never touched (and root is not
# needed); it still verifies trixie's signed InRelease with the system keyring.
# A system Unicorn >= 2.1 is used as it is.
set -euo pipefail

UNICORN_DEB_VERSION="2.1.1-2+b2"   # trixie's libunicorn2t64 / libunicorn-dev, amd64; pinned
UNICORN_MIN_VERSION="2.1"
DEBIAN_SOURCE="deb http://deb.debian.org/debian trixie main"

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"   # repo root, from this file's place
prefix="$root/third_party/unicorn-prefix"
stamp="$prefix/.installed-$UNICORN_DEB_VERSION"
log() { echo "[unicorn] $*" >&2; }
die() { log "error: $*"; exit 1; }
version_ge() { [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" = "$2" ]; }  # $1 >= $2

# 1. A system Unicorn that is new enough wins (pkg-config, else the header's UC_API_* macros;
#    UC_VERSION_MAJOR/MINOR are defined as these).
system_version() {
  local v h=/usr/include/unicorn/unicorn.h
  if v=$(pkg-config --modversion unicorn 2>/dev/null) && version_ge "$v" "$UNICORN_MIN_VERSION"; then
    echo "$v (pkg-config)"; return 0
  fi
  [ -f "$h" ] || return 1
  v=$(awk '$1 == "#define" && $2 ~ /^UC_API_(MAJOR|MINOR)$/ {printf "%s%s", s, $3; s="."}' "$h")
  [ -n "$v" ] && version_ge "$v" "$UNICORN_MIN_VERSION" && echo "$v ($h)"
}
if v=$(system_version); then log "system Unicorn $v found; nothing to do"; exit 0; fi

# 2. Already unpacked here.
if [ -f "$stamp" ]; then log "Unicorn $UNICORN_DEB_VERSION already in $prefix; nothing to do"; exit 0; fi

# 3. Download the two .debs from trixie with private apt state.
command -v apt-get >/dev/null || die "needs apt-get and dpkg (Debian/Ubuntu)"
[ "$(dpkg --print-architecture)" = amd64 ] || die "the pinned .debs are amd64 only"
work="$(mktemp -d)"
trap 'rm -rf "$work" "$prefix.new" "$prefix.old"' EXIT  # only ever transient
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
chmod 755 "$work"  # as root apt fetches as the _apt user, which must reach these dirs
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$work/debs"; fi
echo "$DEBIAN_SOURCE" > "$work/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
  -o APT::Architecture=amd64 -o Debug::NoLocking=1 -q
)
log "fetching Debian trixie's package index (private apt state in $work)"
apt-get "${apt_opts[@]}" update >&2 || die "apt-get update against trixie failed (network? signature?)"
for pkg in libunicorn2t64 libunicorn-dev; do
  # apt-get download's own error for a vanished version is vague: check the index first.
  apt-cache "${apt_opts[@]}" madison "$pkg" | awk -F' *[|] *' -v v="$UNICORN_DEB_VERSION" '$2 == v {f=1} END {exit !f}' ||
    die "$pkg=$UNICORN_DEB_VERSION is no longer served by trixie; set UNICORN_DEB_VERSION in $0" \
        "to one of: $(apt-cache "${apt_opts[@]}" madison "$pkg" | awk -F' *[|] *' '{printf "%s ", $2}')"
done
log "downloading libunicorn2t64 and libunicorn-dev $UNICORN_DEB_VERSION"
(cd "$work/debs" && apt-get "${apt_opts[@]}" download \
  "libunicorn2t64=$UNICORN_DEB_VERSION" "libunicorn-dev=$UNICORN_DEB_VERSION" >&2) || die "download failed"

# 4. Unpack into a staging dir next to the prefix, lay it out as include/ + lib/, then swap it in.
log "unpacking into $prefix"
for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$work/root"; done
stage="$prefix.new"
rm -rf "$stage" "$prefix.old"
mkdir -p "$stage/include" "$stage/lib"
cp -a "$work/root/usr/include/unicorn" "$stage/include/"
cp -a "$work/root/usr/lib/x86_64-linux-gnu/." "$stage/lib/"
rm -f "$stage/lib/libunicorn.a"  # 30 MB nobody links
# libunicorn.so must point at the versioned library inside the prefix: re-make it relative.
real="$(basename "$(readlink "$stage/lib/libunicorn.so" || true)")"
if [ ! -f "$stage/lib/$real" ]; then libs=("$stage"/lib/libunicorn.so.2*); real="$(basename "${libs[0]}")"; fi
ln -sfn "$real" "$stage/lib/libunicorn.so"
for f in lib/libunicorn.so include/unicorn/unicorn.h; do [ -f "$stage/$f" ] || die "unexpected .deb layout: no $f"; done
# Make unicorn.pc relocatable instead of pointing at /usr.
# shellcheck disable=SC2016  # ${pcfiledir} is for pkg-config, not the shell
sed -i -e 's|^libdir=.*|libdir=${pcfiledir}/..|' -e 's|^includedir=.*|includedir=${pcfiledir}/../../include|' \
  "$stage/lib/pkgconfig/unicorn.pc"
touch "$stage/.installed-$UNICORN_DEB_VERSION"
# Two renames, so a concurrent build never sees a half-filled prefix for long.
if [ -e "$prefix" ]; then mv "$prefix" "$prefix.old"; fi
mv "$stage" "$prefix"
rm -rf "$prefix.old"
log "Unicorn $UNICORN_DEB_VERSION ready in $prefix"
