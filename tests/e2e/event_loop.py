# Event loops under emu against native (tests/e2e/dynamic_test.cpp, Dynamic.EventLoopsMatchNative):
# an asyncio TCP echo server and clients on 127.0.0.1 (epoll), the selectors the stdlib offers
# (select, poll, epoll) on a socketpair, signals woken through the loop (set_wakeup_fd),
# eventfd, memfd, interval timers (real and CPU-time) and sigtimedwait.
import asyncio, os, selectors, signal, socket, time

async def handle(reader, writer):
    while data := await reader.readline():
        writer.write(data.upper())
        await writer.drain()
    writer.close()

async def client(port, n):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    got = []
    for i in range(n):
        writer.write(f"line {i}\n".encode())
        await writer.drain()
        got.append(await reader.readline())
    writer.close()
    await writer.wait_closed()
    return got

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    results = await asyncio.gather(*(client(port, 20) for _ in range(5)))
    print("asyncio echo", all(r == [f"LINE {i}\n".encode() for i in range(20)] for r in results))
    # A signal handler run by the loop (its wakeup fd), and a timeout.
    fired = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, fired.set)
    os.kill(os.getpid(), signal.SIGUSR1)
    await asyncio.wait_for(fired.wait(), 5)
    print("loop signal handler", fired.is_set())
    try:
        await asyncio.wait_for(asyncio.sleep(10), 0.05)
    except asyncio.TimeoutError:
        print("wait_for timeout")
    server.close()
    await server.wait_closed()

print("loop", type(asyncio.new_event_loop()._selector).__name__)
asyncio.run(main())

for cls in (selectors.SelectSelector, selectors.PollSelector, selectors.EpollSelector):
    a, b = socket.socketpair()
    with cls() as sel:
        sel.register(a, selectors.EVENT_READ, "a")
        idle = sel.select(0)
        b.send(b"ping")
        ready = [(k.data, ev) for k, ev in sel.select(1)]
        print(cls.__name__, idle, ready)
    a.close(); b.close()

efd = os.eventfd(0, os.EFD_NONBLOCK)
with selectors.EpollSelector() as sel:
    sel.register(efd, selectors.EVENT_READ)
    print("eventfd idle", sel.select(0))
    os.eventfd_write(efd, 5)
    print("eventfd ready", len(sel.select(1)), os.eventfd_read(efd))

mfd = os.memfd_create("loop")
os.write(mfd, b"in memory")
print("memfd", os.pread(mfd, 20, 0))

ticks = []
signal.signal(signal.SIGALRM, lambda *a: ticks.append(1))
signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
deadline = time.monotonic() + 5
while len(ticks) < 5 and time.monotonic() < deadline:
    signal.pause()
signal.setitimer(signal.ITIMER_REAL, 0)
print("itimer ticks", len(ticks) >= 5)

signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR2])
os.kill(os.getpid(), signal.SIGUSR2)
info = signal.sigtimedwait([signal.SIGUSR2], 5)
print("sigtimedwait", info.si_signo == signal.SIGUSR2, info.si_pid == os.getpid())

# ITIMER_VIRTUAL counts the process's CPU time: it fires in a busy loop, not while sleeping.
vticks = []
signal.signal(signal.SIGVTALRM, lambda *a: vticks.append(1))
signal.setitimer(signal.ITIMER_VIRTUAL, 0.05)
time.sleep(0.2)
slept = len(vticks)
deadline = time.monotonic() + 10
while not vticks and time.monotonic() < deadline:
    pass
print("virtual itimer: none while sleeping", slept == 0, "fired when busy", len(vticks) == 1)
