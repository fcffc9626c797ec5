#!/usr/bin/env python3
"""Writes the seed corpora of fuzz/corpus/<harness>/ (committed; run again to refresh them).

    python3 fuzz/make_seeds.py [--guests BUILD/guest-programs]

elf_loader: the headers of our guest programs (static, static-PIE; both architectures) and of
the host's dynamic programs and their interpreters: each file cut to its first 4 KiB with every
PT_LOAD's p_filesz clamped to what is left, so that the seeds are small and still load, plus
hand-made ones (#! scripts, a minimal ELF of each class). The other harnesses get hand-made
inputs in their own formats (see each harness's header comment); the syscall sequences name
calls by their place in fuzz/syscalls.cpp's allow-lists, read from that file.
"""
import argparse
import os
import re
import struct
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
CORPUS = FUZZ / "corpus"
MAX_LEN = 4096


def put(harness, name, data):
    d = CORPUS / harness
    d.mkdir(parents=True, exist_ok=True)
    assert len(data) <= MAX_LEN, (harness, name, len(data))
    (d / name).write_bytes(bytes(data))


# ---- elf_loader ----

def cut_elf(data, keep=MAX_LEN - 1):
    """The first `keep` bytes, with p_filesz of each PT_LOAD clamped to the bytes kept."""
    data = bytearray(data[:keep])
    if data[:4] != b"\x7fELF":
        return None
    is64 = data[4] == 2
    if is64:
        phoff, = struct.unpack_from("<Q", data, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    else:
        phoff, = struct.unpack_from("<I", data, 0x1C)
        phentsize, phnum = struct.unpack_from("<HH", data, 0x2A)
    if phoff + phentsize * phnum > len(data):
        return None
    for i in range(phnum):
        at = phoff + i * phentsize
        if is64:
            p_type, _flags, off, _va, _pa, filesz = struct.unpack_from("<IIQQQQ", data, at)
            if p_type == 1:
                struct.pack_into("<Q", data, at + 32, max(0, min(filesz, len(data) - off)) if off <= len(data) else 0)
        else:
            p_type, off, _va, _pa, filesz = struct.unpack_from("<IIIII", data, at)
            if p_type == 1:
                struct.pack_into("<I", data, at + 16, max(0, min(filesz, len(data) - off)) if off <= len(data) else 0)
    return bytes(data)


def tiny_elf(is64):
    if is64:
        eh = struct.pack("<4sBBBBB7sHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, b"\0" * 7, 2, 62, 1,
                         0x400078, 64, 0, 0, 64, 56, 1, 0, 0, 0)
        ph = struct.pack("<IIQQQQQQ", 1, 5, 0, 0x400000, 0x400000, 0x80, 0x2000, 0x1000)
        return eh + ph + b"\x90" * 8
    eh = struct.pack("<4sBBBBB7sHHIIIIIHHHHHH", b"\x7fELF", 1, 1, 1, 0, 0, b"\0" * 7, 2, 3, 1,
                     0x8048054, 52, 0, 0, 52, 32, 1, 0, 0, 0)
    ph = struct.pack("<IIIIIIII", 1, 0, 0x8048000, 0x8048000, 0x60, 0x2000, 5, 0x1000)
    return eh + ph + b"\x90" * 12


def elf_seeds(guests):
    # mode byte: bit 0 open_program, bit 1 also as an interpreter, bit 2 ASLR.
    picked = []
    for arch in ("x86_64", "i386"):
        for prog in ("hello", "hello-pie", "signals"):
            picked.append((f"{arch}-{prog}", Path(guests) / arch / prog))
    for name, path in (("host-true", "/bin/true"), ("host-ld.so", "/lib64/ld-linux-x86-64.so.2"),
                       ("i386-ld.so", str(FUZZ.parent / "third_party/sysroots/i386/lib/ld-linux.so.2"))):
        picked.append((name, Path(os.path.realpath(path))))
    for name, path in picked:
        if not path.is_file():
            print(f"skipped {path} (not there)")
            continue
        cut = cut_elf(path.read_bytes())
        if cut is None:
            print(f"skipped {path} (headers beyond 4 KiB)")
            continue
        put("elf_loader", f"{name}", bytes([0]) + cut)
        put("elf_loader", f"{name}-program", bytes([1]) + cut)
        put("elf_loader", f"{name}-interp", bytes([6]) + cut)
    put("elf_loader", "tiny64", bytes([3]) + tiny_elf(True))
    put("elf_loader", "tiny32", bytes([3]) + tiny_elf(False))
    for i, script in enumerate((b"#!/bin/sh -e\necho hi\n", b"#!/usr/bin/env python3\n", b"#! \t/bin/true  a b \n",
                                b"#!/nonexistent\n", b"#!" + b"x" * 300, b"#!/proc/self/exe\n")):
        put("elf_loader", f"script{i}", bytes([1]) + script)


# ---- initial_stack ----

def strings(items):
    out = bytearray([len(items)])
    for s in items:
        if isinstance(s, tuple):  # (fill byte, length in 16-byte units)
            out += bytes([0xF0, s[0]]) + struct.pack("<H", s[1])
        else:
            out += bytes([len(s)]) + s
    return out


def stack_input(i386, argv, envp, execfn=b"/bin/prog", entry=0x401000, phdr=0x400040, phnum=9, phent=56, base=0):
    return (bytes([1 if i386 else 0]) + struct.pack("<QQHHQ", entry, phdr, phnum, phent, base) +
            bytes([len(execfn)]) + execfn + strings(argv) + strings(envp))


def stack_seeds():
    put("initial_stack", "typical64", stack_input(False, [b"/bin/ls", b"-l", b"/"], [b"PATH=/bin", b"HOME=/root"]))
    put("initial_stack", "typical32", stack_input(True, [b"busybox", b"sh"], [b"TERM=xterm"], phdr=0x8048034, phent=32))
    put("initial_stack", "empty", stack_input(False, [], [], execfn=b""))
    put("initial_stack", "big-arg", stack_input(False, [b"a", (0x41, 0x8000)], [b"X=1"]))
    put("initial_stack", "too-big", stack_input(True, [(0x42, 0xffff)] * 12, []))
    put("initial_stack", "many", stack_input(False, [b"x"] * 200, [b"E=" + bytes([0x30 + i % 10]) for i in range(50)]))


# ---- syscalls ----

def allow_lists():
    src = (FUZZ / "syscalls.cpp").read_text()
    out = {}
    for key, arch in (("kSpecs64", "x86_64"), ("kSpecs32", "i386")):
        body = src[src.index(f"const Spec {key}[] = {{"):]
        body = body[:body.index("};")]
        out[arch] = [int(n) for n in re.findall(r"(?:pass|rule|or_flags)\((\d+)", body)]
    return out


SEL_SMALL, SEL_U32, SEL_U64, SEL_DATA, SEL_OBJ, SEL_FD, SEL_RESULT, SEL_SPECIAL, SEL_HINT = range(9)
# Objects in the harness's table (fuzz/syscalls.cpp, class Table), by place.
OBJ = {name: i for i, name in enumerate([
    "file0", "dir0", "dir0/file1", "new", "newdir", ".", "", "/proc/self/maps", "/proc/self/status",
    "/proc/self/stat", "/proc/self/fd", "/proc/self/fd/3", "/proc/self/exe", "/proc/self/auxv",
    "/proc/self/cmdline", "/proc/self/cwd", "/proc/self/fdinfo/3", "/proc/self/task", "/proc/self/mem",
    "/proc/self/limits", "/proc/self/mountinfo", "/dev/null", "/dev/zero", "/dev/urandom", "/dev/stdout",
    "/proc/cpuinfo", "/proc/meminfo", "/etc/passwd", "user.fuzz", "new\nline", "sockaddr", "iov",
    "msghdr", "cmsg", "sigset_all", "sigset_usr1", "itimer", "timespec64", "pollfds", "sigaction",
    "sigaction_mask", "sigevent", "sigevent_signo", "epoll_event"])}


def arg(kind, value=0):
    if kind == SEL_SMALL:
        return bytes([SEL_SMALL, value & 0xFF])
    if kind == SEL_U32:
        return bytes([SEL_U32]) + struct.pack("<I", value & 0xFFFFFFFF)
    if kind == SEL_U64:
        return bytes([SEL_U64]) + struct.pack("<Q", value & 0xFFFFFFFFFFFFFFFF)
    if kind == SEL_DATA:
        return bytes([SEL_DATA]) + struct.pack("<H", value)
    if kind in (SEL_OBJ, SEL_FD, SEL_RESULT, SEL_SPECIAL):
        return bytes([kind, value])
    if kind == SEL_HINT:
        return bytes([SEL_HINT]) + struct.pack("<H", value)
    raise ValueError(kind)


def call(table, nr, *args):
    args = list(args) + [arg(SEL_SMALL, 0)] * (6 - len(args))
    return bytes([0x10]) + struct.pack("<H", table.index(nr)) + b"".join(args)


def obj(name):
    return arg(SEL_OBJ, OBJ[name])


def syscall_seeds():
    lists = allow_lists()
    x, i = lists["x86_64"], lists["i386"]
    head64, head32 = bytes([0]) + struct.pack("<H", 16) + b"fuzz data blob!!", bytes([1]) + struct.pack("<H", 0)
    d, fd, small, res, u32 = SEL_DATA, SEL_FD, SEL_SMALL, SEL_RESULT, SEL_U32
    seeds = {
        "maps64": head64 + call(x, 257, arg(small, -100), obj("/proc/self/maps"), arg(small, 0)) +
        call(x, 0, arg(res, 0), arg(d, 0), arg(u32, 4096)) + call(x, 3, arg(res, 0)),
        "files64": head64 + call(x, 257, arg(small, -100), obj("new"), arg(u32, 0o102), arg(u32, 0o644)) +
        call(x, 1, arg(res, 0), arg(d, 0), arg(small, 16)) + call(x, 8, arg(res, 0), arg(small, 0), arg(small, 0)) +
        call(x, 0, arg(res, 0), arg(d, 64), arg(small, 16)) + call(x, 5, arg(res, 0), arg(d, 256)) +
        call(x, 217, arg(fd, 8), arg(d, 1024), arg(u32, 2048)) + call(x, 82, obj("new"), obj("newdir")) +
        call(x, 83, obj("dir0"), arg(u32, 0o755)) + call(x, 87, obj("file0")),
        "memory64": head64 + call(x, 9, arg(small, 0), arg(u32, 0x3000), arg(small, 3), arg(small, 0x22),
                                  arg(small, -1), arg(small, 0)) +
        call(x, 10, arg(res, 0), arg(u32, 0x1000), arg(small, 1)) + call(x, 25, arg(res, 0), arg(u32, 0x3000),
                                                                         arg(u32, 0x8000), arg(small, 1)) +
        call(x, 28, arg(res, 2), arg(u32, 0x1000), arg(small, 4)) + call(x, 11, arg(res, 2), arg(u32, 0x8000)) +
        call(x, 12, arg(small, 0)) + call(x, 9, arg(small, 0), arg(u32, 0x2000), arg(small, 1), arg(small, 2),
                                          arg(fd, 9), arg(small, 0)),
        "pipes64": head64 + call(x, 293, arg(d, 512), arg(small, 0)) + call(x, 1, arg(fd, 6), arg(d, 0), arg(small, 16)) +
        call(x, 7, obj("pollfds"), arg(small, 2), arg(small, 0)) + call(x, 0, arg(fd, 5), arg(d, 128), arg(small, 64)) +
        call(x, 46, arg(fd, 3), obj("msghdr"), arg(small, 0)) + call(x, 47, arg(fd, 4), obj("msghdr"), arg(small, 0)) +
        call(x, 32, arg(fd, 3)) + call(x, 72, arg(fd, 5), arg(small, 4), arg(small, 0)) + call(x, 3, arg(fd, 4)),
        "signals64": head64 + call(x, 13, arg(small, 10), obj("sigaction"), arg(d, 64), arg(small, 8)) +
        call(x, 14, arg(small, 0), obj("sigset_usr1"), arg(d, 128), arg(small, 8)) +
        call(x, 62, arg(SEL_SPECIAL, 0), arg(small, 10)) + call(x, 127, arg(d, 136), arg(small, 8)) +
        call(x, 128, obj("sigset_usr1"), arg(d, 200), arg(small, 0), arg(small, 8)) +
        call(x, 289, arg(small, -1), obj("sigset_all"), arg(small, 8), arg(small, 0)) +
        call(x, 222, arg(small, 1), obj("sigevent"), arg(d, 300)) +
        call(x, 223, arg(small, 0), arg(small, 0), obj("timespec64"), arg(small, 0)) + call(x, 226, arg(small, 0)),
        "events64": head64 + call(x, 291, arg(small, 0)) + call(x, 233, arg(res, 0), arg(small, 1), arg(fd, 3),
                                                               obj("epoll_event")) +
        call(x, 232, arg(res, 0), arg(d, 0), arg(small, 8), arg(small, 0)) + call(x, 290, arg(small, 3), arg(small, 0)) +
        call(x, 283, arg(small, 1), arg(small, 0)) + call(x, 286, arg(res, 4), arg(small, 0), obj("timespec64"),
                                                          arg(small, 0)) +
        call(x, 318, arg(d, 0), arg(small, 32), arg(small, 0)) + call(x, 63, arg(d, 0)) + call(x, 99, arg(d, 0)) +
        call(x, 202, arg(d, 0), arg(small, 0), arg(small, 0), arg(small, 0)),
        "maps32": head32 + call(i, 295, arg(small, -100), obj("/proc/self/maps"), arg(small, 0)) +
        call(i, 3, arg(res, 0), arg(d, 0), arg(u32, 4096)) + call(i, 197, arg(res, 0), arg(d, 0)),
        "memory32": head32 + call(i, 192, arg(small, 0), arg(u32, 0x3000), arg(small, 3), arg(small, 0x22),
                                  arg(small, -1), arg(small, 0)) +
        call(i, 125, arg(res, 0), arg(u32, 0x1000), arg(small, 1)) + call(i, 91, arg(res, 0), arg(u32, 0x3000)) +
        call(i, 45, arg(small, 0)),
        "sockets32": head32 + call(i, 360, arg(small, 1), arg(small, 1), arg(small, 0), arg(d, 0)) +
        call(i, 102, arg(small, 16), obj("msghdr")) + call(i, 361, arg(fd, 3), obj("sockaddr"), arg(small, 12)) +
        call(i, 370, arg(fd, 3), obj("msghdr"), arg(small, 0)) + call(i, 372, arg(fd, 4), obj("msghdr"), arg(small, 0)) +
        call(i, 168, obj("pollfds"), arg(small, 2), arg(small, 0)) + call(i, 140, arg(fd, 9), arg(small, 0),
                                                                          arg(small, 4), arg(d, 0), arg(small, 0)),
        "time32": head32 + call(i, 265, arg(small, 1), arg(d, 0)) + call(i, 403, arg(small, 0), arg(d, 16)) +
        call(i, 78, arg(d, 32), arg(small, 0)) + call(i, 162, arg(d, 0), arg(small, 0)) + call(i, 122, arg(d, 64)) +
        call(i, 27, arg(small, 0)) + call(i, 104, arg(small, 0), obj("itimer"), arg(small, 0)),
    }
    for name, data in seeds.items():
        put("syscalls", name, data)


# ---- sigreturn ----

def sigreturn_seeds():
    regs = b"".join(struct.pack("<Q", 0x1111 * (k + 1)) for k in range(18))
    for flags in (0, 1, 3, 4, 5):
        stack = bytes(range(256))
        sp = bytes([0x40]) + struct.pack("<I", 0x2000 + 0x100)
        body = bytes([flags]) + struct.pack("<H", len(stack)) + stack
        if flags & 4:  # round trip: delivery, then registers
            body += bytes([10]) + struct.pack("<iiii", 1, 0, 0, 0) + bytes([0]) + struct.pack("<QQ", 0, 0)
            body += struct.pack("<ii", 0, 0) + struct.pack("<QQ", 0x401000, 0x401100) + bytes([5])
            body += struct.pack("<Q", 0x4000) + bytes([1]) + sp + struct.pack("<H", 0)
        body += regs + sp
        put("sigreturn", f"flags{flags}", body)


# ---- procfs_maps ----

def maps_seeds():
    def anon(addr_pages, pages, bits, name=0):
        return bytes([0, 0x40]) + struct.pack("<H", addr_pages) + bytes([pages - 1, 0x20, bits, name])

    def file(addr_pages, pages, bits, name):
        return (bytes([1, 0x40]) + struct.pack("<H", addr_pages) + bytes([pages - 1, 0x20, bits, 0xC0, len(name)]) +
                name + struct.pack("<HI", 0, 0x3000))

    put("procfs_maps", "mixed64", bytes([0]) + anon(0, 4, 3) + file(16, 3, 5, b"/lib/libfuzz.so") +
        anon(32, 2, 3, 1) + bytes([2, 0x40]) + struct.pack("<H", 1) + bytes([0]) +
        bytes([3, 0x40]) + struct.pack("<H", 16) + bytes([0, 1]) + bytes([4, 0x40]) + struct.pack("<H", 64) +
        bytes([4, 0x40]) + struct.pack("<H", 80))
    put("procfs_maps", "gdt32", bytes([1]) + anon(0, 1, 3, 3) + anon(8, 1, 3, 2) + file(9, 1, 1, b"/odd name (deleted)"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--guests", default=str(FUZZ.parent / "build/guest-programs"))
    a = ap.parse_args()
    elf_seeds(a.guests)
    stack_seeds()
    syscall_seeds()
    sigreturn_seeds()
    maps_seeds()
    total = sum(f.stat().st_size for f in CORPUS.rglob("*") if f.is_file())
    print(f"{sum(1 for f in CORPUS.rglob('*') if f.is_file())} seed files, {total} bytes")


if __name__ == "__main__":
    main()
