package api

import "github.com/gin-gonic/gin"

// PageCSP is the content-security policy of the pages onair serves (/live/,
// /analytics/): scripts and styles only from onair itself (the pages have
// no inline script; their libraries are embedded in the binary), requests
// only to onair (the API and its WebSocket), and no page may frame them.
// Inline style attributes are allowed: the charts set sizes on elements.
const PageCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// PageHeaders is the middleware of the browser pages: the content-security
// policy, no MIME sniffing, no framing (for browsers without
// frame-ancestors), and no referrer leaving the origin.
func PageHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", PageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	c.Next()
}
