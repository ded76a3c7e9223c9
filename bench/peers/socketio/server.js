// Socket.IO 4 fan-out node for bench/backplane.sh: a subscriber (?role=sub&topic=T) joins room T;
// a publisher (?role=pub&topic=T) emits "p" events whose argument (a Buffer) goes to room T as an
// "m" event — on every node when started with --redis, through @socket.io/redis-adapter (the
// classic adapter: PUBLISH per broadcast, at most once). WebSocket transport only, as the load
// generator connects (no long-polling, no compression).
//
//   node server.js --addr 127.0.0.1:PORT [--redis redis://127.0.0.1:6379]
"use strict";
const http = require("http");
const { Server } = require("socket.io");

function arg(name) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main() {
  const [host, port] = (arg("--addr") || "127.0.0.1:0").split(":");
  const server = http.createServer();
  const io = new Server(server, {
    transports: ["websocket"],
    perMessageDeflate: false,
    serveClient: false,
    maxHttpBufferSize: 1e6,
  });
  const redisUrl = arg("--redis");
  if (redisUrl) {
    const { createClient } = require("redis");
    const { createAdapter } = require("@socket.io/redis-adapter");
    const pub = createClient({ url: redisUrl });
    const sub = pub.duplicate();
    await Promise.all([pub.connect(), sub.connect()]);
    io.adapter(createAdapter(pub, sub));
  }
  io.on("connection", (socket) => {
    const { role, topic = "bench" } = socket.handshake.query;
    if (role === "sub") {
      socket.join(topic);
    } else if (role === "pub") {
      socket.on("p", (payload) => io.to(topic).emit("m", payload));
    }
  });
  server.listen(Number(port), host, () => {
    const address = server.address();
    console.log(`socket.io listening on ${address.address}:${address.port}`);
  });
  const stop = () => io.close(() => process.exit(0));
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
