#!/usr/bin/env bash
# Installs what emu needs on Debian 12 (only what is missing), then Unicorn 2.1 into the
# project-local prefix. Safe to run again: it does nothing when everything is there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

packages=(
  build-essential cmake pkg-config git ca-certificates
  clang libclang-rt-14-dev            # the -Wthread-safety build; libFuzzer (fuzz/, tools/fuzz.sh)
  gcc-multilib g++-multilib           # 32-bit (i386) guest programs
  googletest libgtest-dev libbenchmark-dev
  libcapstone-dev libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev
  python3 python3-matplotlib          # plots
  qemu-user                           # the i386 reference where the kernel cannot run i386, and the benchmark baseline
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] installing: ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
else
  echo "[setup] Debian packages present" >&2
fi
"$root/third_party/install-unicorn.sh"
