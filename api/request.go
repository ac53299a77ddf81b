package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/ingest"
	"github.com/onair/onair/internal/refusal"
)

// The request helpers every route reads its input with: a path id, a JSON
// body, a bounded integer query parameter. Each returns the refusal naming
// the input at fault and leaves writing it to the handler, so a route's
// input rules read the same everywhere.

// maxID is the largest id api.md allows (2⁶³−1).
const maxID = 1<<63 - 1

// pathID reads the path parameter name as an id in 1..2⁶³−1; a refusal
// names the parameter.
func pathID(c *gin.Context, name string) (uint64, *refusal.Error) {
	raw := c.Param(name)
	id, err := strconv.ParseUint(raw, 10, 64)
	if err != nil || id == 0 || id > maxID {
		return 0, refusal.Invalidf(name, "%s must be an integer in 1..%d, got %q", name, uint64(maxID), raw)
	}
	return id, nil
}

// queryInt reads the optional integer parameter name of q: absent or empty
// is def, else decimal digits (no sign) for a number in lo..hi (0 <= lo),
// given once (api.md: a parameter given twice is refused, since which one
// counts would be a guess).
func queryInt(q url.Values, name string, def, lo, hi int) (int, *refusal.Error) {
	v, e := single(q, name)
	if e != nil || v == "" {
		return def, e
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n < uint64(lo) || n > uint64(hi) {
		return 0, refusal.Invalidf(name, "%s must be an integer in %d..%d, got %q", name, lo, hi, v)
	}
	return int(n), nil
}

// single returns the value of a parameter that may be given at most once
// ("" when absent).
func single(q url.Values, name string) (string, *refusal.Error) {
	vs := q[name]
	switch len(vs) {
	case 0:
		return "", nil
	case 1:
		return vs[0], nil
	}
	return "", refusal.Invalidf(name, "%s is given %d times; give it once", name, len(vs))
}

// bodyRule is how a route reads its JSON body.
type bodyRule struct {
	// max is the largest body in bytes (one of exactly max is fine);
	// beyond, the refusal is 413.
	max int
	// emptyIsZero: an empty (or blank) body leaves the value zero, so the
	// domain names the missing field; otherwise it is malformed JSON.
	emptyIsZero bool
}

// Body rules of the routes.
var (
	// ingestBody: the events routes, the radio admin routes and the
	// history settings (ingest's 1 MiB).
	ingestBody = bodyRule{max: ingest.MaxBodyBytes}
	// roomBody: the live-room routes; open and close take an optional body.
	roomBody = bodyRule{max: 64 << 10, emptyIsZero: true}
)

// decodeJSON reads a JSON body under rule into v. A field of the wrong
// type is refused naming it; malformed JSON with no field.
func decodeJSON(c *gin.Context, v any, rule bodyRule) *refusal.Error {
	bp, e := readBody(c, rule.max)
	if e != nil {
		return e
	}
	defer putBody(bp)
	if rule.emptyIsZero && len(bytes.TrimSpace(*bp)) == 0 {
		return nil
	}
	if err := json.Unmarshal(*bp, v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te) && te.Field == "":
			return refusal.Invalidf("", "body must be a JSON object, got JSON %s", te.Value)
		case te != nil:
			return refusal.Invalidf(te.Field, "must be a %s, got JSON %s", te.Type, te.Value)
		}
		return refusal.Invalidf("", "body is not valid JSON: %v", err)
	}
	return nil
}

// bodyTooLarge is the 413 of a body over max bytes.
func bodyTooLarge(max int) *refusal.Error {
	return refusal.New(refusal.TooLarge, "", "request body exceeds %d bytes", max)
}

// Bodies are read into pooled buffers: the decoders copy every string they
// keep, so a buffer is free again as soon as decoding returns. Buffers that
// grew past maxPooledBody are left to the GC so one large batch does not
// pin a megabyte per pooled buffer. A new buffer is small (512 B, a
// progress report's size): a connection waiting for its body holds it.
const maxPooledBody = 64 << 10

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

func putBody(b *[]byte) {
	if cap(*b) <= maxPooledBody {
		*b = (*b)[:0]
		bodyPool.Put(b)
	}
}

// readBody reads the whole request body, at most max bytes (a body of
// exactly that size is fine) → 413 beyond. The caller returns the buffer
// with putBody.
//
// The buffer grows as bytes arrive, never ahead of them: a Content-Length
// is a promise, not bytes, and a client that announces 1 MiB and sends one
// byte must cost what it sent, not a megabyte (issue 26: 1 000 stalled
// uploads would pin 1 GiB). The announced length only caps each growth, so
// a body that does arrive is read with no copy past its size.
func readBody(c *gin.Context, max int) (*[]byte, *refusal.Error) {
	r := c.Request
	if r.ContentLength > int64(max) {
		return nil, bodyTooLarge(max)
	}
	bp := bodyPool.Get().(*[]byte)
	b := (*bp)[:0]
	rd := http.MaxBytesReader(c.Writer, r.Body, int64(max))
	for {
		if len(b) == cap(b) {
			b = grow(b, r.ContentLength)
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			*bp = b
			putBody(bp)
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return nil, bodyTooLarge(max)
			}
			return nil, refusal.Invalidf("", "cannot read request body: %v", err)
		}
	}
	*bp = b
	return bp, nil
}

// grow returns full b with room for more: twice its capacity, but no more
// than the announced length needs (+1: room for the read that reports EOF).
// Called only when b is full, so a buffer is at most twice what arrived.
func grow(b []byte, announced int64) []byte {
	n := 2 * cap(b)
	if announced >= int64(len(b)) && announced+1 < int64(n) {
		n = int(announced) + 1
	}
	if n <= len(b) {
		n = len(b) + 4096
	}
	nb := make([]byte, len(b), n)
	copy(nb, b)
	return nb
}
