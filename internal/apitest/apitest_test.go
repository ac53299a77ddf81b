package apitest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// exchange runs one request against a handler that answers status, header
// and body, and returns what Check says about it.
func exchange(t *testing.T, method, target, reqBody string, status int, header http.Header, body string) string {
	t.Helper()
	req := httptest.NewRequest(method, target, strings.NewReader(reqBody))
	req.Header.Set("Authorization", "Bearer x")
	resp := &http.Response{StatusCode: status, Header: http.Header{"Content-Type": {"application/json; charset=utf-8"}}, Body: io.NopCloser(strings.NewReader(body))}
	for k, v := range header {
		resp.Header[k] = v
	}
	return New(t).Check(req, []byte(reqBody), resp, []byte(body))
}

const progress = `{"biz":"audio","item_id":1,"position_ms":5,"ts":1763800000000}`

// TestCheckCatchesDrift: each way the server and the document can part is
// reported; the matching exchanges are not.
func TestCheckCatchesDrift(t *testing.T) {
	ok := func(msg string) {
		t.Helper()
		if msg != "" {
			t.Errorf("a matching exchange was reported: %s", msg)
		}
	}
	bad := func(msg, want string) {
		t.Helper()
		if !strings.Contains(msg, want) {
			t.Errorf("got %q, want a report containing %q", msg, want)
		}
	}
	accepted := `{"accepted":true,"first_today":false,"history_paused":false}`
	ok(exchange(t, "POST", "/v1/progress", progress, 202, nil, accepted))
	// a response field the document requires is missing
	bad(exchange(t, "POST", "/v1/progress", progress, 202, nil, `{"accepted":true}`), "does not match the document")
	// a status the operation does not document
	bad(exchange(t, "POST", "/v1/progress", progress, 200, nil, accepted), "does not match the document")
	// the server accepts what the document calls invalid (biz not a line)
	bad(exchange(t, "POST", "/v1/progress", strings.Replace(progress, "audio", "podcast", 1), 202, nil, accepted), "calls the request invalid")
	// ... but refusing it is fine, and so is refusing a valid request
	e400 := `{"error":{"code":"invalid_argument","message":"m","field":"biz"}}`
	ok(exchange(t, "POST", "/v1/progress", strings.Replace(progress, "audio", "podcast", 1), 400, nil, e400))
	ok(exchange(t, "POST", "/v1/progress", progress, 400, nil, e400))
	// an error reply that is not the documented shape
	bad(exchange(t, "POST", "/v1/progress", progress, 400, nil, `{"error":"bad"}`), "does not match the document")
	// a documented header missing (503 without Retry-After)
	e503 := `{"error":{"code":"unavailable","message":"m"}}`
	ok(exchange(t, "GET", "/v1/history", "", 503, http.Header{"Retry-After": {"1"}}, e503))
	bad(exchange(t, "GET", "/v1/history", "", 503, nil, e503), "does not match the document")
	// an undocumented route that answers
	bad(exchange(t, "GET", "/v1/not-in-the-document", "", 200, nil, `{"items":[]}`), "undocumented route")
	// unknown paths and methods get the documented error reply
	ok(exchange(t, "GET", "/nope", "", 404, nil, `{"error":{"code":"not_found","message":"m"}}`))
	ok(exchange(t, "PATCH", "/v1/progress", "", 405, nil, `{"error":{"code":"method_not_allowed","message":"m"}}`))
	bad(exchange(t, "GET", "/nope", "", 404, nil, `not found`), "not JSON")
}

// TestTransportChecks: the Transport checks what goes through it.
func TestTransportChecks(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok","version":"0.1.0"}`)
	}))
	defer srv.Close()
	c := New(t)
	resp, err := c.Client(srv.Client()).Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != `{"status":"ok","version":"0.1.0"}` || c.Exchanges() != 1 {
		t.Fatalf("body %q after the check, %d exchanges", b, c.Exchanges())
	}
}
