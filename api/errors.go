package api

import (
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/internal/refusal"
)

// errKey is the gin context key under which WriteError leaves the error, so
// the observing middleware can label onair_api_errors_total and log it.
const errKey = "onair.api.error"

// WriteError answers e (refusal.Write: its status and api.md's JSON error
// body) and aborts the handler chain. Every domain package returns a
// *refusal.Error and every route answers through here, so a refusal maps to
// HTTP in one place. Metrics and logs are done by the server's middleware,
// once per request, from what WriteError leaves in the context.
func WriteError(c *gin.Context, e *refusal.Error) {
	c.Set(errKey, e)
	c.Abort()
	refusal.Write(c.Writer, e)
}

// errorFrom returns the refusal WriteError left in c, if any.
func errorFrom(c *gin.Context) *refusal.Error {
	if v, ok := c.Get(errKey); ok {
		e, _ := v.(*refusal.Error)
		return e
	}
	return nil
}

// writeJSON writes a pre-encoded JSON body with status.
func writeJSON(c *gin.Context, status int, body []byte) {
	h := c.Writer.Header()
	// one shared, never modified value slice, as gin's renderers do
	h["Content-Type"] = jsonContentType
	// net/http counts a body that fits its 2 KiB buffer itself; a known
	// length saves larger ones (history pages) chunked encoding and its
	// extra writes.
	if len(body) > 2048 {
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
	}
	c.Writer.WriteHeader(status)
	_, _ = c.Writer.Write(body)
}

var jsonContentType = []string{"application/json; charset=utf-8"}
