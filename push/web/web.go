// Package web holds onair's live-room page: static HTML, CSS and JavaScript
// embedded in the binary (no build step, no CDN), served at /live/.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// Handler serves the page's files under prefix (e.g. "/live/").
func Handler(prefix string) http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil { // the embedded tree is fixed at build time
		panic(err)
	}
	files := http.FileServer(http.FS(sub))
	return http.StripPrefix(prefix, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}))
}
