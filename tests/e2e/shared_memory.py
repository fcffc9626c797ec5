# Shared memory between processes, as python programs use it: multiprocessing's shared Value,
# Array and Lock (anonymous shared memory and a POSIX semaphore in /dev/shm), a
# multiprocessing.shared_memory block (shm_open), the mmap module's anonymous shared map
# across fork, and a shared file mapping written by a child and read back with read().
import mmap
import multiprocessing as mp
import os
import sys
import tempfile
from multiprocessing import shared_memory


def add_locked(value, lock, n):
    for _ in range(n):
        with lock:
            value.value += 1


def fill(array, start):
    for i in range(start, len(array), 2):
        array[i] = i * i


def main():
    ctx = mp.get_context("fork")
    value = ctx.Value("i", 0)
    lock = ctx.Lock()
    procs = [ctx.Process(target=add_locked, args=(value, lock, 500)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    print("Value under a Lock from 3 processes:", value.value, [p.exitcode for p in procs])

    array = ctx.Array("q", 64, lock=False)
    procs = [ctx.Process(target=fill, args=(array, s)) for s in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    print("Array filled by 2 processes:", sum(array), array[63])

    block = shared_memory.SharedMemory(create=True, size=4096)
    try:
        pid = os.fork()
        if pid == 0:
            other = shared_memory.SharedMemory(name=block.name)
            other.buf[:5] = b"hello"
            other.close()
            os._exit(0)
        os.waitpid(pid, 0)
        print("shared_memory block written by a child:", bytes(block.buf[:5]))
    finally:
        block.close()
        block.unlink()

    anon = mmap.mmap(-1, 8192)
    pid = os.fork()
    if pid == 0:
        anon[4096:4100] = b"anon"
        os._exit(0)
    os.waitpid(pid, 0)
    print("anonymous mmap across fork:", anon[4096:4100])

    with tempfile.TemporaryFile() as f:
        f.truncate(8192)
        shared = mmap.mmap(f.fileno(), 8192, mmap.MAP_SHARED)
        pid = os.fork()
        if pid == 0:
            shared[100:106] = b"mapped"
            os._exit(0)
        os.waitpid(pid, 0)
        f.seek(100)
        print("file mapping written by a child, read():", f.read(6))
        f.seek(200)
        f.write(b"written")
        f.flush()
        print("write() seen in the mapping:", shared[200:207])
        shared.close()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
