// go-http: the plain net/http peer for the wsreactor benchmark's HTTP
// comparison. It answers GET / (and HEAD /) with a fixed text/html page whose
// body is exactly as long as the PAGE of wsreactor's examples/echo.rs
// (743 bytes), and 404 elsewhere. Keep-alive is net/http's default.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
	"strings"
)

var addr = flag.String("addr", "127.0.0.1:9003", "address to listen on")

// pageLen is len(PAGE) in examples/echo.rs; the body is padded to it so both
// servers send the same number of body bytes.
const pageLen = 743

var page = func() []byte {
	head := "<!doctype html>\n<html lang=\"en\">\n<meta charset=\"utf-8\">\n<title>go-http</title>\n<h1>go-http</h1>\n<p>"
	tail := "</p>\n</html>\n"
	body := head + strings.Repeat("x", pageLen-len(head)-len(tail)) + tail
	if len(body) != pageLen {
		panic("page length")
	}
	return []byte(body)
}()

var pageLenHeader = strconv.Itoa(pageLen)

func handler(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", pageLenHeader)
	if r.Method == http.MethodHead {
		return
	}
	w.Write(page)
}

func main() {
	flag.Parse()
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(handler)))
}
