// go-http: the plain net/http peer for the wsreactor benchmark's HTTP
// comparison. It answers GET / (and HEAD /) with the page of the file given by
// -page, which run.sh points at the echo example's own page
// (examples/echo/page.html), so the body is the same bytes as wsreactor's, with
// the same Content-Type (text/html; charset=utf-8); anything else gets the
// echo example's 404 body. Keep-alive is net/http's default.
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"strconv"
)

var (
	addr     = flag.String("addr", "127.0.0.1:9003", "address to listen on")
	pagePath = flag.String("page", "", "file served on GET / (required: the echo example's examples/echo/page.html)")
)

// notFound is the echo example's 404 body (Response::not_found).
const notFound = "404 Not Found\n"

func main() {
	flag.Parse()
	if *pagePath == "" {
		log.Fatal("go-http: -page is required (the echo example's examples/echo/page.html)")
	}
	page, err := os.ReadFile(*pagePath)
	if err != nil {
		log.Fatalf("go-http: -page: %v", err)
	}
	pageLen := strconv.Itoa(len(page))
	handler := func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if r.URL.Path != "/" || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			h.Set("Content-Type", "text/plain; charset=utf-8")
			h.Set("Content-Length", strconv.Itoa(len(notFound)))
			w.WriteHeader(http.StatusNotFound)
			w.Write([]byte(notFound))
			return
		}
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Content-Length", pageLen)
		if r.Method == http.MethodHead {
			return
		}
		w.Write(page)
	}
	log.Fatal(http.ListenAndServe(*addr, http.HandlerFunc(handler)))
}
