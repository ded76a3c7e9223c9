// gorilla-echo: the goroutine-per-connection WebSocket echo peer for the
// wsreactor benchmark. It is gorilla/websocket's own echo example reduced to
// the echo: one goroutine per connection doing ReadMessage -> WriteMessage,
// with the example's Upgrader buffer sizes (1024/1024) and every origin allowed.
//
// -compress sets EnableCompression on the Upgrader (the deflate scenarios only):
// gorilla then accepts permessage-deflate with server_no_context_takeover and
// client_no_context_takeover (the only mode it implements), compresses every
// text and binary message it writes (no size threshold) at its default level 1,
// with pooled flate writers, and ignores client_max_window_bits.
//
// /sub/TOPIC and /pub/TOPIC are the fan-out scenarios' hub (hub.go).
//
// -tls-cert and -tls-key (PEM files) serve wss:// instead: net/http's
// ListenAndServeTLS, crypto/tls with its defaults (TLS 1.2 and 1.3, session
// tickets on; the handshake runs in the connection's goroutine). The server
// also offers h2 by ALPN, which a WebSocket client does not ask for, so the
// upgrade is HTTP/1.1 as without TLS. Key exchange: X25519 with Debian's Go
// 1.19 (crypto/tls offers the hybrid X25519MLKEM768 by default from Go 1.24
// on; the Rust peers negotiate it), see ../../../README.md.
//
// Built in GOPATH mode against Debian's golang-github-gorilla-websocket-dev
// (see ../../build.sh).
package main

import (
	"flag"
	"log"
	"net/http"

	"github.com/gorilla/websocket"
)

var (
	addr     = flag.String("addr", "127.0.0.1:9002", "address to listen on")
	compress = flag.Bool("compress", false, "negotiate permessage-deflate (EnableCompression)")
	tlsCert  = flag.String("tls-cert", "", "certificate chain (PEM): serve wss:// (with -tls-key)")
	tlsKey   = flag.String("tls-key", "", "private key (PEM) of -tls-cert")
)

var upgrader = websocket.Upgrader{
	ReadBufferSize:  1024,
	WriteBufferSize: 1024,
	CheckOrigin:     func(r *http.Request) bool { return true },
}

func echo(w http.ResponseWriter, r *http.Request) {
	c, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		// Upgrade has already answered the client (e.g. 400 for plain HTTP).
		return
	}
	defer c.Close()
	for {
		mt, message, err := c.ReadMessage()
		if err != nil {
			return
		}
		if err := c.WriteMessage(mt, message); err != nil {
			return
		}
	}
}

func main() {
	flag.Parse()
	upgrader.EnableCompression = *compress
	http.HandleFunc("/", echo)
	http.HandleFunc("/sub/", subscribe)
	http.HandleFunc("/pub/", publish)
	if (*tlsCert == "") != (*tlsKey == "") {
		log.Fatal("-tls-cert and -tls-key go together")
	}
	if *tlsCert != "" {
		log.Fatal(http.ListenAndServeTLS(*addr, *tlsCert, *tlsKey, nil))
	}
	log.Fatal(http.ListenAndServe(*addr, nil))
}
