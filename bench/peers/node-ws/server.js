// node-ws: the Node.js `ws` echo peer of the wsreactor benchmark, with permessage-deflate.
//
//   node server.js [--addr 127.0.0.1:9003] [--no-deflate]
//
// Every message is sent back as it came (text as text, binary as binary). permessage-deflate
// uses ws's defaults, written out below: context takeover in both directions (ws keeps a zlib
// deflate and inflate stream per connection once it has traffic), window bits 15, zlib level 6
// (Z_DEFAULT_COMPRESSION), memLevel 8, at most 10 zlib jobs at once (in libuv's thread pool).
// `threshold` is ws's default 1024; ws applies it only when server_no_context_takeover is in
// force, so with context takeover every message is compressed, whatever its size. Connections
// whose client offers no compression are plain WebSocket. See ../../README.md.
'use strict';

const { WebSocketServer } = require('ws');

let addr = '127.0.0.1:9003';
let deflate = true;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--addr' && i + 1 < argv.length) {
    addr = argv[++i];
  } else if (argv[i] === '--no-deflate') {
    deflate = false;
  } else {
    console.error(`node-ws: unknown argument ${argv[i]}`);
    process.exit(2);
  }
}
const colon = addr.lastIndexOf(':');
const host = addr.slice(0, colon);
const port = Number(addr.slice(colon + 1));

const perMessageDeflate = deflate && {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  threshold: 1024,
  concurrencyLimit: 10,
};

// Fan-out (the fanout1k, fanout10k scenarios): a connection on /sub/TOPIC joins TOPIC's set of
// subscribers; every message on /pub/TOPIC goes to each of them with ws.send (the broadcast loop
// of ws's README, over the topic's subscribers instead of all of wss.clients); the publisher
// gets no echo. ws frames each send separately (the header per send, the payload buffer shared).
const topics = new Map();

const wss = new WebSocketServer({ host, port, perMessageDeflate });
wss.on('connection', (ws, req) => {
  ws.on('error', () => ws.terminate());
  const path = (req.url || '/').split('?')[0];
  if (path.startsWith('/sub/')) {
    const topic = path.slice(5);
    let subs = topics.get(topic);
    if (!subs) topics.set(topic, (subs = new Set()));
    subs.add(ws);
    ws.on('close', () => subs.delete(ws));
  } else if (path.startsWith('/pub/')) {
    const topic = path.slice(5);
    ws.on('message', (data, isBinary) => {
      const subs = topics.get(topic);
      if (subs) subs.forEach((c) => c.send(data, { binary: isBinary }));
    });
  } else {
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  }
});
wss.on('error', (err) => {
  console.error(`node-ws: ${err.message}`);
  process.exit(1);
});
process.on('SIGTERM', () => process.exit(0));
