// The fan-out side of gorilla-echo (the wsreactor benchmark's fanout1k, fanout10k scenarios):
// gorilla's chat-example hub pattern, one hub per topic. A connection on /sub/TOPIC registers
// with TOPIC's hub and gets a client with a buffered send channel (256, as in the chat example)
// drained by its own writePump goroutine; its readPump only reads (control frames, close) and
// unregisters at the end. Every message on /pub/TOPIC is made into one
// websocket.PreparedMessage (the frame is encoded once and shared by every subscriber, as
// wsreactor's publications are) and sent to the hub's broadcast channel; the hub goroutine
// offers it to every client's send channel and, like the chat example, drops a client whose
// channel is full. The publisher gets no echo.
package main

import (
	"net/http"
	"strings"
	"sync"

	"github.com/gorilla/websocket"
)

type client struct {
	hub  *hub
	conn *websocket.Conn
	send chan *websocket.PreparedMessage
}

type hub struct {
	clients    map[*client]bool
	broadcast  chan *websocket.PreparedMessage
	register   chan *client
	unregister chan *client
}

func newHub() *hub {
	return &hub{
		clients:    make(map[*client]bool),
		broadcast:  make(chan *websocket.PreparedMessage, 256),
		register:   make(chan *client),
		unregister: make(chan *client),
	}
}

func (h *hub) run() {
	for {
		select {
		case c := <-h.register:
			h.clients[c] = true
		case c := <-h.unregister:
			if _, ok := h.clients[c]; ok {
				delete(h.clients, c)
				close(c.send)
			}
		case m := <-h.broadcast:
			for c := range h.clients {
				select {
				case c.send <- m:
				default:
					close(c.send)
					delete(h.clients, c)
				}
			}
		}
	}
}

var (
	hubsMu sync.Mutex
	hubs   = map[string]*hub{}
)

func hubOf(topic string) *hub {
	hubsMu.Lock()
	defer hubsMu.Unlock()
	h, ok := hubs[topic]
	if !ok {
		h = newHub()
		hubs[topic] = h
		go h.run()
	}
	return h
}

func (c *client) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.conn.Close()
	}()
	for {
		if _, _, err := c.conn.ReadMessage(); err != nil {
			return
		}
	}
}

func (c *client) writePump() {
	defer c.conn.Close()
	for m := range c.send {
		if err := c.conn.WritePreparedMessage(m); err != nil {
			return
		}
	}
	c.conn.WriteMessage(websocket.CloseMessage, []byte{})
}

func subscribe(w http.ResponseWriter, r *http.Request) {
	h := hubOf(strings.TrimPrefix(r.URL.Path, "/sub/"))
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &client{hub: h, conn: conn, send: make(chan *websocket.PreparedMessage, 256)}
	h.register <- c
	go c.writePump()
	go c.readPump()
}

func publish(w http.ResponseWriter, r *http.Request) {
	h := hubOf(strings.TrimPrefix(r.URL.Path, "/pub/"))
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	defer conn.Close()
	for {
		mt, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		m, err := websocket.NewPreparedMessage(mt, data)
		if err != nil {
			return
		}
		h.broadcast <- m
	}
}
