#!/usr/bin/env bash
# make-sysroot.sh ARCH DIR PACKAGE...
#
# Builds a guest root filesystem in DIR from Debian bookworm's PACKAGEs and everything they
# depend on (no Recommends), for ARCH = i386 or amd64, so that dynamically linked Debian
# programs run under `emu -L DIR` or `qemu-i386 -L DIR` (the guest's ld.so, libc and libraries
# all come from DIR). PACKAGE may carry apt's suffixes (bash=5.2.15-2+b13, libc6:i386).
#
# The root looks like an installed Debian 12 as far as files go: the packages' files are
# unpacked in merged-/usr layout (/bin, /sbin, /lib -> usr/..., and /lib64 on amd64), which
# ld.so's search path relies on. Maintainer scripts are not run (no /etc/passwd, no
# alternatives such as /usr/bin/awk, no ld.so.cache; ld.so's built-in paths cover the
# multiarch library directories).
#
# Like tools/fetch-busybox.sh and third_party/install-unicorn.sh, apt runs with a private source
# list, lists, cache and (empty) dpkg status: the system's apt set-up is never touched, no
# foreign architecture is added to dpkg, and root is not needed. apt still verifies bookworm's
# signed InRelease with the system keyring.
#
# Cached: DIR/.sysroot-stamp records ARCH and the package list; run again with the same
# arguments, it does nothing. A root is built in DIR.new and renamed to DIR when complete, so
# DIR is never a half-built root.
#   EMU_DEBIAN_MIRROR   the Debian mirror (default http://deb.debian.org/debian)
# Exit status: 0 done, 1 error (bad arguments, unknown package, ...), 2 the Debian archive
# cannot be reached (so tests that need a root can skip loudly instead of failing).
set -euo pipefail

DEBIAN_MIRROR="${EMU_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SUITE="bookworm"
STAMP_NAME=".sysroot-stamp"
STAMP_FORMAT=1  # bump when the layout this script makes changes, so old roots get rebuilt

log() { echo "[sysroot] $*" >&2; }
die() { log "error: $*"; exit 1; }
unreachable() { log "error: cannot reach the Debian archive at $DEBIAN_MIRROR: $*"; exit 2; }
usage() {
  echo "usage: $0 ARCH DIR PACKAGE...   (ARCH: i386 or amd64)" >&2
  exit 1
}

[ $# -ge 3 ] || usage
arch="$1"; dir="$2"; shift 2
case "$arch" in
  i386 | amd64) ;;
  *) log "error: unsupported ARCH '$arch'"; usage ;;
esac
case "$dir" in
  "" | / ) die "refusing to build a root in '$dir'" ;;
esac
dir="${dir%/}"
mkdir -p "$(dirname "$dir")"
dir="$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")"  # absolute: we cd around below
stamp="$dir/$STAMP_NAME"

# The stamp is the request, normalised (sorted, duplicates dropped), not the resolved versions:
# the same command gives the same root until someone deletes it, even after a point release.
packages="$(printf '%s\n' "$@" | sort -u | tr '\n' ' ')"
packages="${packages% }"
stamp_text="format=$STAMP_FORMAT
arch=$arch
suite=$DEBIAN_SUITE
packages=$packages"
stamp_matches() { [ -f "$stamp" ] && [ "$(sed -n 1,4p "$stamp")" = "$stamp_text" ]; }

if stamp_matches; then
  log "$dir is already a $arch root of: $packages; nothing to do"
  exit 0
fi

for tool in apt-get dpkg-deb tar; do
  command -v "$tool" >/dev/null || die "needs $tool (Debian/Ubuntu)"
done
# dpkg-deb -x replaces an existing symlink such as bin -> usr/bin with a real directory (tested
# with dpkg 1.21), so the .debs go through GNU tar, whose --keep-directory-symlink follows it.
tar_help="$(tar --help 2>/dev/null || true)"  # not piped into grep -q: SIGPIPE + pipefail
[[ "$tar_help" == *--keep-directory-symlink* ]] ||
  die "needs GNU tar >= 1.27 (for --keep-directory-symlink)"

# Two builds of the same DIR at once would share DIR.new: lock DIR's parent directory (a lock
# file would be litter, and removing it again is racy; builds of sibling roots merely queue),
# then look at the stamp again, since the other build may have just made what we want.
if command -v flock >/dev/null; then
  exec 9<"$(dirname "$dir")"
  if ! flock -n 9; then
    log "another build in $(dirname "$dir") is running; waiting for it"
    flock 9
  fi
  if stamp_matches; then log "$dir was just built by another run; nothing to do"; exit 0; fi
fi

stage="$dir.new"
work="$(mktemp -d)"
cleanup() {  # both are only ever transient; DIR itself is only replaced by the final rename
  rm -rf "$work" "$stage" "$dir.old"
}
trap cleanup EXIT
rm -rf "$stage" "$dir.old"

# 1. Private apt state: our own sources.list, lists, cache and an empty dpkg status (so the
#    host's installed packages neither satisfy nor constrain anything), only ARCH (so a foreign
#    architecture the host's dpkg may have is ignored), and no host pinning.
mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
: > "$work/status"
chmod 755 "$work"  # as root apt fetches as the _apt user, which must reach these dirs
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$work/debs"; fi
signed_by=""
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
if [ -r "$keyring" ]; then signed_by=" signed-by=$keyring"; fi
# Only the main suite, whose point releases carry the security fixes soon enough for a test
# root; this keeps the download to one Packages index of about 9 MB.
echo "deb [arch=$arch$signed_by] $DEBIAN_MIRROR $DEBIAN_SUITE main" > "$work/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
  -o "Dir::State::status=$work/status"
  -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
  -o "APT::Architecture=$arch" -o "APT::Architectures=$arch"
  -o Debug::NoLocking=1 -q
)

log "fetching Debian $DEBIAN_SUITE's $arch package index from $DEBIAN_MIRROR"
# apt-get update exits 0 even when nothing could be fetched (it only warns), so success is
# judged by whether the Packages index is there; the log tells a network failure from others.
apt-get "${apt_opts[@]}" update > "$work/update.log" 2>&1 || true
if ! compgen -G "$work/lists/*_dists_${DEBIAN_SUITE}_main_binary-${arch}_Packages*" >/dev/null; then
  cat "$work/update.log" >&2
  if grep -qiE "could not (connect|resolve)|failed to fetch|temporary failure|timed? ?out|connection|unable to connect|404" "$work/update.log"; then
    unreachable "no $DEBIAN_SUITE index could be fetched"
  fi
  die "apt-get update against $DEBIAN_SUITE failed (signature? see above)"
fi

# 2. Resolve dependencies with apt's own resolver: a simulated install onto the empty status
#    lists exactly what `apt-get install --no-install-recommends PACKAGE...` would put on a
#    bare system, choosing one alternative of each `a | b` and one provider of each virtual
#    package. (apt-cache depends --recurse follows every alternative and every provider; for
#    the test root that drags in perl, gawk and original-awk: 60 packages instead of 45.)
log "resolving dependencies of: $packages"
if ! apt-get "${apt_opts[@]}" -s --no-install-recommends install "$@" > "$work/resolve.log" 2>&1; then
  grep -E '^(E|W):|virtual package|^  ' "$work/resolve.log" >&2 || cat "$work/resolve.log" >&2
  unknown="$(sed -n 's/^E: Unable to locate package //p' "$work/resolve.log" | tr '\n' ' ')"
  if [ -n "$unknown" ]; then die "unknown package(s) for $arch in Debian $DEBIAN_SUITE: ${unknown% }"; fi
  die "cannot resolve '$packages' for $arch in Debian $DEBIAN_SUITE (see apt's messages above)"
fi
# Lines look like: Inst libc6 (2.36-9+deb12u14 Debian:12.15/oldstable [i386]) []
# The name may carry :arch; name=version names exactly the version apt chose.
mapfile -t resolved < <(awk '$1 == "Inst" { v = $3; sub(/^\(/, "", v); print $2 "=" v }' "$work/resolve.log")
[ "${#resolved[@]}" -gt 0 ] || die "apt resolved '$packages' to nothing (see $work/resolve.log)"

# 3. Download.
log "downloading ${#resolved[@]} packages"
if ! (cd "$work/debs" && apt-get "${apt_opts[@]}" download "${resolved[@]}") > "$work/download.log" 2>&1; then
  cat "$work/download.log" >&2
  if grep -qiE "could not (connect|resolve)|temporary failure|timed? ?out|connection|unable to connect" "$work/download.log"; then
    unreachable "downloading the .debs failed"
  fi
  die "downloading the .debs failed (see above)"
fi
debs=("$work"/debs/*.deb)
[ "${#debs[@]}" -eq "${#resolved[@]}" ] ||
  die "expected ${#resolved[@]} .debs, got ${#debs[@]} (see $work/download.log)"

# 4. Unpack in merged-/usr layout. The top-level links exist before anything is unpacked, and
#    tar --keep-directory-symlink extracts a package's ./bin/bash through bin -> usr/bin into
#    usr/bin/bash, as dpkg does on an installed merged-/usr system. These are the links
#    Debian 12's usrmerge / debootstrap make (lib64 only where the ABI uses it).
top_links=(bin sbin lib)
if [ "$arch" = amd64 ]; then top_links+=(lib64); fi
mkdir -p "$stage/usr"
for d in "${top_links[@]}"; do
  mkdir -p "$stage/usr/$d"
  ln -s "usr/$d" "$stage/$d"
done
log "unpacking into $stage"
for deb in "${debs[@]}"; do
  # --no-same-owner: the files belong to whoever builds the root (no root needed, none kept).
  dpkg-deb --fsys-tarfile "$deb" | tar -x --keep-directory-symlink --no-same-owner -C "$stage" -f - ||
    die "unpacking ${deb##*/} failed"
done
# A package that ships another lib directory (say /lib32 from an amd64 libc6-i386) made it a
# real directory: move it under usr/ and link it like usrmerge would.
for d in lib32 libx32 lib64; do
  if [ -d "$stage/$d" ] && [ ! -L "$stage/$d" ]; then
    mkdir -p "$stage/usr/$d"
    cp -a "$stage/$d/." "$stage/usr/$d/"
    rm -rf "${stage:?}/$d"
    ln -s "usr/$d" "$stage/$d"
  fi
done

# 5. Absolute symlinks (e.g. /usr/lib/<triplet>/libfoo.so -> /lib/<triplet>/libfoo.so.1) point
#    at the host's files once the root is not /: whoever opens them through DIR (the host's
#    kernel for emu -L and qemu -L) would follow them out of the root. Make them relative to
#    the link's own directory; find does not follow symlinks, so each path below is physical
#    and ../ from it is exact.
n_abs=0
while IFS= read -r -d '' link; do
  target="$(readlink "$link")"
  rel="${link#"$stage"/}"        # e.g. usr/lib/i386-linux-gnu/libz.so
  up=""
  depth="$(tr -cd / <<<"$rel" | wc -c)"  # directories between the root and the link
  for ((i = 0; i < depth; i++)); do up="../$up"; done
  ln -sfn "${up}${target#/}" "$link"
  n_abs=$((n_abs + 1))
done < <(find "$stage" -type l -lname '/*' -print0)
if [ "$n_abs" -gt 0 ]; then log "made $n_abs absolute symlinks relative"; fi

# 6. Check: no top-level real bin/lib directory left, and the loader is there.
for d in "${top_links[@]}"; do
  [ -L "$stage/$d" ] || die "$d in $stage is not a symlink (merged-/usr broken)"
done
case "$arch" in
  i386) loader=usr/lib/ld-linux.so.2 ;;
  amd64) loader=usr/lib64/ld-linux-x86-64.so.2 ;;
esac
if [ ! -e "$stage/$loader" ]; then log "warning: no /$loader in the root (was libc6 resolved?)"; fi

# 7. Stamp (request first, then what it resolved to, for the curious) and swap it in: two
#    renames, so a reader never sees a half-built DIR.
{
  echo "$stamp_text"
  echo "mirror=$DEBIAN_MIRROR"
  echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "resolved:"
  printf '  %s\n' "${resolved[@]}"
} > "$stage/$STAMP_NAME"
if [ -e "$dir" ] || [ -L "$dir" ]; then mv "$dir" "$dir.old"; fi
mv "$stage" "$dir"
rm -rf "$dir.old"
log "$arch root of ${#resolved[@]} packages ready in $dir ($(du -sh "$dir" | cut -f1))"
