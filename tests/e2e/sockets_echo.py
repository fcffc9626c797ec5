# Sockets under emu against native (tests/e2e/dynamic_test.cpp, Dynamic.SocketsMatchNative).
import socket, threading, os, sys, array
# TCP echo on 127.0.0.1 with a thread per side
srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0)); srv.listen(4)
port = srv.getsockname()[1]
def serve():
    conn, peer = srv.accept()
    with conn:
        while True:
            d = conn.recv(65536)
            if not d: break
            conn.sendall(d)
t = threading.Thread(target=serve); t.start()
c = socket.create_connection(("127.0.0.1", port))
c.settimeout(5)
total = b""
msg = b"x" * 200000
c.sendall(msg); c.shutdown(socket.SHUT_WR)
while True:
    d = c.recv(65536)
    if not d: break
    total += d
t.join(); c.close(); srv.close()
print("tcp echo", len(total) == len(msg), c.family.name)
# UDP
u1 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u1.bind(("127.0.0.1", 0))
u2 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u2.sendto(b"dgram", u1.getsockname())
data, addr = u1.recvfrom(100)
print("udp", data, addr[0])
# IPv6 loopback
try:
    s6 = socket.socket(socket.AF_INET6, socket.SOCK_STREAM); s6.bind(("::1", 0)); s6.listen(1)
    c6 = socket.create_connection(("::1", s6.getsockname()[1])); a6, _ = s6.accept()
    c6.sendall(b"six"); print("ipv6", a6.recv(10))
except OSError as e: print("ipv6 unavailable", e.errno)
# AF_UNIX socketpair passing an fd
a, b = socket.socketpair()
r, w = os.pipe()
socket.send_fds(a, [b"fd"], [w])
msg, fds, flags, addr = socket.recv_fds(b, 10, 4)
os.write(fds[0], b"through passed fd"); os.close(fds[0]); os.close(w)
print("scm_rights", msg, os.read(r, 100))
# getpeername on a non-socket
try: socket.socket(fileno=0).getpeername()
except OSError as e: print("notsock", e.errno)
print("timeout", c.gettimeout())
s = socket.socket(); s.settimeout(1.5); print("sockopt rcvtimeo", s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) > 0)
