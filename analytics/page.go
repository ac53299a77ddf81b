package analytics

import (
	"embed"
	"io/fs"
)

// web holds the analytics page and uPlot 1.6.32 (MIT, from npm; see
// web/uPlot.LICENSE), served from the binary: no CDN at run time.
//
//go:embed web
var web embed.FS

// Page returns the analytics page's files (index.html, app.js, uPlot), for
// the HTTP edge to serve (api.MountAnalytics, at api.AnalyticsPagePath).
func Page() fs.FS {
	sub, err := fs.Sub(web, "web")
	if err != nil { // "web" is a valid path: cannot happen
		panic(err)
	}
	return sub
}
