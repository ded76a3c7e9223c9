#!/usr/bin/env python3
"""A plaintext-to-TLS bridge: listens on a local TCP port and relays each connection, byte for
byte, into a TLS connection of its own to the server, verifying the server's certificate
against a given CA file (and the name it is asked for). scripts/autobahn.sh --tls puts it in
front of the echo example, since the Autobahn runner (kosoku) has no TLS of its own.

    scripts/tls_bridge.py --connect 127.0.0.1:9001 --cafile cert.pem [--listen 127.0.0.1:0]
        [--server-name localhost]

Prints `tls bridge listening on HOST:PORT -> HOST:PORT` once it listens, then serves until
killed. Bytes are relayed as they come, each way (TCP_NODELAY on both sides, asyncio's
default), with flow control: a side whose peer cannot take more is not read. An end of stream
from the client closes the TLS side with close_notify; an end of stream from the server
(close_notify or FIN) goes on to the client as FIN; an error on either side resets the other.
A certificate that does not verify resets the client's connection at once (and is printed),
so it shows up as failed cases, never as a silent pass.
"""

import argparse
import asyncio
import ssl
import sys


def host_port(text):
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


class Side(asyncio.Protocol):
    """One side of a bridged connection; `peer` is the other side."""

    def __init__(self):
        self.transport = None
        self.peer = None
        self.eof = False  # this side sent its end of stream
        self.lost = False

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        self.peer.transport.write(data)

    # Flow control: while this side's outgoing buffer is full, stop reading the other side.
    def pause_writing(self):
        if self.peer is not None and not self.peer.lost:
            self.peer.transport.pause_reading()

    def resume_writing(self):
        if self.peer is not None and not self.peer.lost:
            self.peer.transport.resume_reading()


class Client(Side):
    """The plaintext connection from the client."""

    def __init__(self, args, context):
        super().__init__()
        self.args = args
        self.context = context

    def connection_made(self, transport):
        super().connection_made(transport)
        transport.pause_reading()
        asyncio.get_running_loop().create_task(self.connect())

    async def connect(self):
        loop = asyncio.get_running_loop()
        try:
            _, server = await loop.create_connection(
                lambda: Server(self),
                self.args.host,
                self.args.port,
                ssl=self.context,
                server_hostname=self.args.server_name,
            )
        except (OSError, ssl.SSLError) as err:
            print(f"tls bridge: {self.args.connect}: {err}", file=sys.stderr, flush=True)
            self.transport.abort()
            return
        if self.lost:
            server.transport.close()
            return
        self.peer = server
        self.transport.resume_reading()

    def eof_received(self):
        self.eof = True
        if self.peer is None or self.peer.lost:
            return False  # nothing more can come: close
        self.peer.transport.close()  # close_notify; TLS has no half-close here
        return True  # keep writing what the server still sends, until it ends

    def connection_lost(self, exc):
        self.lost = True
        if self.peer is not None and not self.peer.lost:
            if exc is None:
                self.peer.transport.close()
            else:
                self.peer.transport.abort()


class Server(Side):
    """The TLS connection to the server, for `client`."""

    def __init__(self, client):
        super().__init__()
        self.peer = client

    def eof_received(self):
        self.eof = True
        if not self.peer.lost and self.peer.transport.can_write_eof():
            self.peer.transport.write_eof()
        return False

    def connection_lost(self, exc):
        self.lost = True
        client = self.peer
        if client.lost:
            return
        if exc is not None:
            client.transport.abort()
        elif client.eof:
            client.transport.close()
        elif not self.eof:
            client.transport.write_eof()
            self.eof = True


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT (default %(default)s)")
    parser.add_argument("--connect", required=True, help="the TLS server, HOST:PORT")
    parser.add_argument("--cafile", required=True, help="PEM of the certificate(s) to trust")
    parser.add_argument(
        "--server-name", help="the name to ask for and verify (default: the --connect host)"
    )
    args = parser.parse_args()
    args.host, args.port = host_port(args.connect)
    args.server_name = args.server_name or args.host

    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.cafile)
    context.set_alpn_protocols(["http/1.1"])

    loop = asyncio.get_running_loop()
    listen_host, listen_port = host_port(args.listen)
    server = await loop.create_server(lambda: Client(args, context), listen_host, listen_port)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"tls bridge listening on {host}:{port} -> {args.connect}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
