#!/usr/bin/env bash
# fetch-cpython-tests.sh [amd64] [i386]
#
# Gets CPython's own regression tests, Debian bookworm's libpython3.11-testsuite, for
# tools/cpython-tests.py (CPython's tests as the oracle for emu's syscalls), and prints one path
# per ARCH on stdout (default: amd64 only):
#
#   amd64  third_party/cpython-tests/amd64/test: the complete `test` package, that is the
#          testsuite's modules (test_os.py, ...) merged with what libpython3.11-stdlib of the
#          same version ships of it (test/__init__.py, test/support/, libregrtest/). The runner
#          puts it into a private prefix beside a copy of the host's python3.11 (see there), so
#          `python3.11 -m unittest test.test_os` finds it as if the testsuite were installed.
#   i386   third_party/sysroots/i386-cpython-tests: an i386 Debian root (tools/make-sysroot.sh)
#          of libc6, bash, coreutils, python3.11 and libpython3.11-testsuite, for `emu -L`.
#
# Like tools/make-sysroot.sh and tools/fetch-busybox.sh, apt runs with a private source list,
# lists, cache and empty dpkg status: the system's apt set-up is never touched and root is not
# needed. Cached: a stamp names the format and the versions; a second run does nothing. Built
# aside and renamed, under a lock (flock on third_party/cpython-tests), so concurrent runs queue.
#   EMU_DEBIAN_MIRROR   the Debian mirror (default http://deb.debian.org/debian)
# Exit status: 0 done, 1 error, 2 the Debian archive cannot be reached (callers skip, loudly).
set -euo pipefail

DEBIAN_MIRROR="${EMU_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
DEBIAN_SUITE="bookworm"
PYVER="3.11"
STAMP_NAME=".cpython-tests-stamp"
STAMP_FORMAT=1  # bump when the layout made here changes, so old trees get rebuilt
I386_PACKAGES=(libc6 bash coreutils "python$PYVER" "libpython$PYVER-stdlib" "libpython$PYVER-testsuite")

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cache="$repo/third_party/cpython-tests"

log() { echo "[cpython-tests] $*" >&2; }
die() { log "error: $*"; exit 1; }
unreachable() {
  log "error: cannot reach the Debian archive at $DEBIAN_MIRROR: $*"
  exit 2
}

arches=("$@")
[ ${#arches[@]} -gt 0 ] || arches=(amd64)
for a in "${arches[@]}"; do
  case "$a" in
    amd64 | i386) ;;
    *) echo "usage: $0 [amd64] [i386]" >&2; exit 1 ;;
  esac
done

# amd64: the test package alone (the interpreter and the rest of the standard library are the
# host's; the testsuite is Architecture: all, and its C helpers such as _testcapi are in
# libpython3.11-stdlib, which the host has).
fetch_amd64() {
  local dest="$cache/amd64" stamp="$cache/amd64/$STAMP_NAME"
  stamp_ok() { [ -f "$stamp" ] && [ "$(sed -n 1p "$stamp")" = "format=$STAMP_FORMAT" ] && [ -f "$dest/test/test_os.py" ]; }
  if stamp_ok; then
    log "$dest already holds $(sed -n 's/^version=//p' "$stamp"); nothing to do"
    echo "$dest/test"
    return 0
  fi
  for tool in apt-get apt-cache dpkg-deb tar; do
    command -v "$tool" >/dev/null || die "needs $tool (Debian/Ubuntu)"
  done
  mkdir -p "$cache"
  # Lock the cache directory itself (no lock file to leave behind), then look again: another
  # run may have just made it.
  if command -v flock >/dev/null; then
    exec 9<"$cache"
    if ! flock -n 9; then
      log "another fetch in $cache is running; waiting for it"
      flock 9
    fi
    if stamp_ok; then
      log "$dest was just made by another run; nothing to do"
      echo "$dest/test"
      return 0
    fi
  fi

  local work stage="$dest.new"
  work="$(mktemp -d)"
  # shellcheck disable=SC2064  # expand now: these locals are gone when the trap runs
  trap "rm -rf '$work' '$stage' '$dest.old'" EXIT
  rm -rf "$stage" "$dest.old"
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs"
  : > "$work/status"
  chmod 755 "$work"  # as root apt fetches as the _apt user, which must reach these dirs
  if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$work/debs"; fi
  local signed_by="" keyring=/usr/share/keyrings/debian-archive-keyring.gpg
  if [ -r "$keyring" ]; then signed_by=" signed-by=$keyring"; fi
  echo "deb [arch=amd64$signed_by] $DEBIAN_MIRROR $DEBIAN_SUITE main" > "$work/sources.list"
  local apt_opts=(
    -o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
    -o "Dir::State::status=$work/status"
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
    -o APT::Architecture=amd64 -o APT::Architectures=amd64
    -o Debug::NoLocking=1 -q
  )
  log "fetching Debian $DEBIAN_SUITE's amd64 package index from $DEBIAN_MIRROR"
  # apt-get update exits 0 even when nothing could be fetched; judge by the index being there.
  apt-get "${apt_opts[@]}" update > "$work/update.log" 2>&1 || true
  if ! compgen -G "$work/lists/*_dists_${DEBIAN_SUITE}_main_binary-amd64_Packages*" >/dev/null; then
    cat "$work/update.log" >&2
    if grep -qiE "could not (connect|resolve)|failed to fetch|temporary failure|timed? ?out|connection|unable to connect|404" "$work/update.log"; then
      unreachable "no $DEBIAN_SUITE index could be fetched"
    fi
    die "apt-get update against $DEBIAN_SUITE failed (signature? see above)"
  fi
  # The testsuite and the stdlib must be the same version: the testsuite's modules import
  # test.support, which the stdlib package ships.
  local version
  version="$(apt-cache "${apt_opts[@]}" show "libpython$PYVER-testsuite" | sed -n 's/^Version: //p' | head -n1)"
  [ -n "$version" ] || die "libpython$PYVER-testsuite is not in $DEBIAN_MIRROR $DEBIAN_SUITE"
  local host_version
  host_version="$(dpkg-query -W -f='${Version}' "libpython$PYVER-stdlib" 2>/dev/null || true)"
  if [ -n "$host_version" ] && [ "$host_version" != "$version" ]; then
    log "note: the host's libpython$PYVER-stdlib is $host_version, the archive's testsuite $version (the archive keeps only its newest; the tests run against the host's interpreter)"
  fi
  log "downloading libpython$PYVER-testsuite and libpython$PYVER-stdlib $version"
  if ! (cd "$work/debs" && apt-get "${apt_opts[@]}" download \
          "libpython$PYVER-testsuite=$version" "libpython$PYVER-stdlib:amd64=$version") > "$work/download.log" 2>&1; then
    cat "$work/download.log" >&2
    if grep -qiE "could not (connect|resolve)|temporary failure|timed? ?out|connection|unable to connect" "$work/download.log"; then
      unreachable "downloading the .debs failed"
    fi
    die "downloading the .debs failed (see above)"
  fi
  mkdir -p "$work/x" "$stage"
  local deb
  for deb in "$work"/debs/*.deb; do
    log "unpacking the test package of ${deb##*/}"
    dpkg-deb --fsys-tarfile "$deb" |
      tar -x --no-same-owner -C "$work/x" --wildcards "./usr/lib/python$PYVER/test/*" ||
      die "unpacking ${deb##*/} failed"
  done
  mv "$work/x/usr/lib/python$PYVER/test" "$stage/test"
  for f in __init__.py support/__init__.py test_os.py test_threading.py test_subprocess.py; do
    [ -f "$stage/test/$f" ] || die "test/$f missing after unpacking (unexpected package layout)"
  done
  {
    echo "format=$STAMP_FORMAT"
    echo "version=$version"
    echo "suite=$DEBIAN_SUITE"
    echo "mirror=$DEBIAN_MIRROR"
    echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  } > "$stage/$STAMP_NAME"
  if [ -e "$dest" ]; then mv "$dest" "$dest.old"; fi
  mv "$stage" "$dest"
  rm -rf "$dest.old" "$work"
  trap - EXIT
  log "libpython$PYVER-testsuite $version ready in $dest ($(du -sh "$dest" | cut -f1))"
  echo "$dest/test"
}

fetch_i386() {
  local root="$repo/third_party/sysroots/i386-cpython-tests"
  # make-sysroot.sh has its own stamp, lock and exit status 2 for an unreachable archive;
  # its progress goes to stderr.
  "$here/make-sysroot.sh" i386 "$root" "${I386_PACKAGES[@]}" >&2
  echo "$root"
}

for a in "${arches[@]}"; do
  case "$a" in
    amd64) fetch_amd64 ;;
    i386) fetch_i386 ;;
  esac
done
