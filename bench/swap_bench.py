#!/usr/bin/env python3
"""Swap benchmark: a streaming guest whose working set is FACTOR x --mem, under emu with swap.

For every repetition and scheme it runs `emu --mem M --swap S guest-programs/<arch>/stream`
and then, in the same run and on the same disk (the swap file's directory), a plain
sequential write of as many bytes as the guest's swap-outs wrote (1 MiB writes, no fsync,
as emu's swap writes have none; the faster of two tries). Printed, as medians with min/max:

  stream MiB/s   guest bytes written + read per second of wall time
  major/s        pages read back from swap per second
  swap write     MiB/s over the whole run (effective) and inside the write calls (I/O)
  plain write    MiB/s of the plain sequential write of the same size
  I/O vs plain   the target: the swap's I/O write rate at least 50% of the plain write

Numbers, not a pass/fail test. JSON with the machine description goes to --json.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from bench_common import machine, stats

SCHEMES = ["global", "split", "atomic", "ptebit"]


def plain_write(directory, nbytes):
    """Seconds to write nbytes sequentially in 1 MiB blocks to a new file in directory."""
    block = b"\x5a" * (1 << 20)
    fd, path = tempfile.mkstemp(prefix="emu-plain-write-", dir=directory)
    try:
        start = time.perf_counter()
        left = nbytes
        while left > 0:
            left -= os.write(fd, block[:min(left, len(block))])
        return time.perf_counter() - start
    finally:
        os.close(fd)
        os.unlink(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build", help="build directory (emu and guest-programs)")
    ap.add_argument("--arch", default="x86_64", choices=["x86_64", "i386"])
    ap.add_argument("--scheme", nargs="+", default=SCHEMES, choices=SCHEMES)
    ap.add_argument("--mem", type=int, default=64, help="guest memory, MiB")
    ap.add_argument("--factor", type=float, default=2.0, help="working set as a multiple of --mem")
    ap.add_argument("--passes", type=int, default=3)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--swap-dir", default=os.environ.get("TMPDIR") or "/tmp", help="where swap and the plain write go")
    ap.add_argument("--json", default="results/swap-bench.json")
    args = ap.parse_args()

    emu = os.path.join(args.build, "emu", "emu")
    guest = os.path.join(args.build, "guest-programs", args.arch, "stream")
    for path in (emu, guest):
        if not os.access(path, os.X_OK):
            sys.exit(f"swap-bench: {path} missing: build first (cmake --build {args.build})")
    mib = int(args.mem * args.factor)
    swap_mib = max(4 * mib, 256)
    rows = {s: [] for s in args.scheme}
    total = args.reps * len(args.scheme)
    done = 0
    for rep in range(args.reps):
        for scheme in args.scheme:
            with tempfile.NamedTemporaryFile(suffix=".json") as stats_file:
                cmd = [emu, "--scheme", scheme, "--mem", f"{args.mem}M", "--swap", f"{swap_mib}M", "--swap-file",
                       args.swap_dir, "--stats-json", stats_file.name, guest, "-m", str(mib), "-p", str(args.passes)]
                start = time.perf_counter()
                p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                wall = time.perf_counter() - start
                if p.returncode != 0:
                    sys.exit(f"swap-bench: {' '.join(cmd)} failed ({p.returncode}): {p.stderr.strip()}")
                st = json.load(open(stats_file.name))
            swap = st["swap"]
            written = swap["bytes_written"]
            # The plain write right after emu's run and once more: the better of the two, so the
            # comparison never flatters the swap (page-cache state after a run varies).
            plain_secs = min(plain_write(args.swap_dir, written), plain_write(args.swap_dir, written)) \
                if written else float("nan")
            r = {
                "wall_s": wall,
                "stream_mib_s": 2.0 * mib * args.passes / wall,
                "major_per_s": st["mmu"]["fault_major"] / wall,
                "swap_written_mib": written / 2**20,
                "swap_write_effective_mib_s": written / 2**20 / wall,
                "swap_write_io_mib_s": written / 2**20 / (swap["write_ns"] * 1e-9) if swap["write_ns"] else 0.0,
                "plain_write_mib_s": written / 2**20 / plain_secs if written else 0.0,
            }
            r["io_vs_plain"] = r["swap_write_io_mib_s"] / r["plain_write_mib_s"] if r["plain_write_mib_s"] else 0.0
            rows[scheme].append(r)
            done += 1
            print(f"swap-bench: {done}/{total} runs ({scheme}, rep {rep + 1})", file=sys.stderr, flush=True)

    m = machine()
    print(f"# swap-bench: {args.arch} stream, working set {mib} MiB = {args.factor}x --mem {args.mem}M, "
          f"{args.passes} passes, swap in {args.swap_dir}, median (min-max) of {args.reps}")
    print(f"# host: {m['cpu']}, {m['cores']} cores, {m['memory_bytes'] >> 30} GiB")
    cols = ["stream_mib_s", "major_per_s", "swap_write_effective_mib_s", "swap_write_io_mib_s", "plain_write_mib_s",
            "io_vs_plain"]
    heads = ["stream MiB/s", "major faults/s", "swap write MiB/s (run)", "swap write MiB/s (I/O)",
             "plain write MiB/s", "I/O vs plain"]
    print(f"{'scheme':8}" + "".join(f"{h:>26}" for h in heads))
    out = {"machine": m, "config": vars(args), "results": {}}
    for scheme, runs in rows.items():
        cells = []
        out["results"][scheme] = {}
        for c in cols:
            s = stats([r[c] for r in runs])
            out["results"][scheme][c] = s
            fmt = "{:.2f}" if c == "io_vs_plain" else "{:.0f}"
            cells.append(f"{fmt.format(s['median'])} ({fmt.format(s['min'])}-{fmt.format(s['max'])})")
        print(f"{scheme:8}" + "".join(f"{c:>26}" for c in cells))
    if args.json:
        os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)
        print(f"swap-bench: wrote {args.json}", file=sys.stderr)


if __name__ == "__main__":
    main()
