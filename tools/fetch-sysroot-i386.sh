#!/usr/bin/env bash
# Builds (or reuses) the i386 guest root the tests run dynamically linked Debian programs in,
# third_party/sysroots/i386 (git-ignored), and prints its path on stdout:
#   emu -L "$root" "$root/usr/bin/bash" -c 'echo hi'
# It holds bookworm's libc6, bash, coreutils and python3.11 with the standard library; their
# dependencies (libssl3 for hashlib, libffi8, libexpat1, ... ) come with them, which is all
# python3.11 needs to import json, hashlib, subprocess and threading. See tools/make-sysroot.sh
# (private apt state, no root needed, cached by a stamp: a second run does nothing).
# Exit status 2: the Debian archive cannot be reached (tests should skip, saying so).
set -euo pipefail

PACKAGES=(libc6 bash coreutils python3.11 libpython3.11-stdlib)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)/third_party/sysroots/i386"   # from this file's place
"$here/make-sysroot.sh" i386 "$root" "${PACKAGES[@]}"
echo "$root"
