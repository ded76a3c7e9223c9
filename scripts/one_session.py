#!/usr/bin/env python3
# One WebSocket session, by hand, for docs/walkthrough.md: connect, upgrade, one text message,
# the close handshake, EOF. Standard library only.
#
#   python3 scripts/one_session.py 127.0.0.1:9001
import base64, os, socket, struct, sys
host, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:9001").split(":")
s = socket.create_connection((host, int(port)))
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
head = b""
while not head.endswith(b"\r\n\r\n"):
    head += s.recv(1)
def frame(op, payload):
    mask = os.urandom(4)
    return bytes([0x80 | op, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
def read_frame():
    h = s.recv(2)
    n = h[1] & 0x7f
    data = b""
    while len(data) < n:
        data += s.recv(n - len(data))
    return h[0] & 0x0f, data
s.sendall(frame(1, b"hi"))
print("echo:", read_frame())
s.sendall(frame(8, struct.pack("!H", 1000)))
print("close:", read_frame())
print("eof:", s.recv(10) == b"")
s.close()
