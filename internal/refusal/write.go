package refusal

import (
	"net/http"
	"strconv"

	"github.com/onair/onair/internal/jsonstr"
)

// Write answers e: its status, Content-Type, Retry-After when e has one,
// WWW-Authenticate on a 401, and the JSON body of api.md:
// {"error": {"code", "message", "field"}} and, for a batch, "errors".
// Every refusal of every route, the WebSocket upgrade's included, goes
// through here, so the shape cannot drift between packages.
func Write(w http.ResponseWriter, e *Error) {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	if e.RetryAfterMs > 0 {
		h.Set("Retry-After", strconv.FormatInt((e.RetryAfterMs+999)/1000, 10))
	}
	if e.Kind == Unauthenticated {
		h.Set("WWW-Authenticate", `Bearer realm="onair"`)
	}
	w.WriteHeader(e.Status())
	_, _ = w.Write(AppendJSON(make([]byte, 0, 128), e))
}

// AppendJSON appends e's JSON body, newline-terminated (as
// json.Encoder ends its values). An entry of "errors" always has its
// field (api.md), in the order code, field, message.
func AppendJSON(b []byte, e *Error) []byte {
	b = append(b, `{"error":{"code":`...)
	b = jsonstr.Append(b, e.Code())
	b = append(b, `,"message":`...)
	b = jsonstr.Append(b, e.Message)
	if e.Field != "" {
		b = append(b, `,"field":`...)
		b = jsonstr.Append(b, e.Field)
	}
	b = append(b, '}')
	if len(e.Details) > 0 {
		b = append(b, `,"errors":[`...)
		for i, d := range e.Details {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"code":`...)
			b = jsonstr.Append(b, d.Code())
			b = append(b, `,"field":`...)
			b = jsonstr.Append(b, d.Field)
			b = append(b, `,"message":`...)
			b = jsonstr.Append(b, d.Message)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}', '\n')
}
