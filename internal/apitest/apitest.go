// Package apitest checks HTTP exchanges against onair's OpenAPI document
// (internal/openapi/openapi.yaml), so handler tests keep the document true: a
// test client built with Checker.Client or Checker.Transport validates
// every request it sends and every response it gets, and fails the test on
// a mismatch.
//
// The rules, per exchange:
//   - the route must be in the document; requests to unknown paths or
//     methods must get the documented 404/405 error reply;
//   - the response (status, headers, body) must be one the operation
//     documents;
//   - a request the document calls invalid must be refused with a 4xx (the
//     server may refuse more than the document can say, e.g. a ts 31 days
//     old, but never accept what it calls invalid).
//
// Any package's tests can use it: api's own handler tests, history's tests
// through a running onair, and the tests of routes added later.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/onair/onair/internal/openapi"
)

// router matches requests to the document's operations on any host: the
// document's servers list only names the dev default address.
var router = sync.OnceValues(func() (routers.Router, error) {
	doc, err := openapi.Document()
	if err != nil {
		return nil, err
	}
	anyHost := *doc
	anyHost.Servers = nil
	return gorillamux.NewRouter(&anyHost)
})

// Checker validates exchanges against the document and reports mismatches
// with t.Errorf. It is safe for concurrent use.
type Checker struct {
	t      testing.TB
	router routers.Router

	mu        sync.Mutex
	allowed   map[string]bool // paths a test mounts itself
	exchanges int
}

// New returns a Checker reporting to t.
func New(t testing.TB) *Checker {
	t.Helper()
	r, err := router()
	if err != nil {
		t.Fatalf("apitest: %v", err)
	}
	return &Checker{t: t, router: r, allowed: map[string]bool{}}
}

// Allow exempts paths (exact URL paths, e.g. "/v1/boom") that a test mounts
// for itself and that are not part of onair's API.
func (c *Checker) Allow(paths ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range paths {
		c.allowed[p] = true
	}
}

// Exchanges returns how many exchanges have been checked, so a test can
// assert its client really went through the Checker.
func (c *Checker) Exchanges() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.exchanges
}

// Client returns an http.Client whose transport checks every exchange,
// sending through base's transport (nil = http.DefaultTransport).
func (c *Checker) Client(base *http.Client) *http.Client {
	var rt http.RoundTripper
	if base != nil {
		rt = base.Transport
	}
	return &http.Client{Transport: c.Transport(rt)}
}

// Transport returns a RoundTripper that checks every exchange it carries
// through base (nil = http.DefaultTransport). Bodies are read in full, so
// it is for API calls, not for streams; upgrades (101) are not checked.
func (c *Checker) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return roundTripper{c: c, base: base}
}

type roundTripper struct {
	c    *Checker
	base http.RoundTripper
}

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	resp, err := rt.base.RoundTrip(req)
	if err != nil || resp.StatusCode == http.StatusSwitchingProtocols {
		return resp, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	if msg := rt.c.Check(req, reqBody, resp, respBody); msg != "" {
		rt.c.t.Errorf("apitest: %s %s: %s", req.Method, req.URL.RequestURI(), msg)
	}
	return resp, nil
}

// Check validates one exchange and returns what is wrong with it ("" =
// nothing). req's and resp's bodies are given separately (already read).
func (c *Checker) Check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) string {
	c.mu.Lock()
	c.exchanges++
	allowed := c.allowed[req.URL.Path]
	c.mu.Unlock()
	if allowed {
		return ""
	}
	ctx := context.Background()
	r := req.Clone(ctx)
	r.Body = io.NopCloser(bytes.NewReader(reqBody))
	if len(reqBody) > 0 && r.Header.Get("Content-Type") == "" {
		// onair reads every body as JSON whatever its Content-Type (the
		// document's info says so); validate it as such.
		r.Header.Set("Content-Type", "application/json")
	}
	route, params, err := c.router.FindRoute(r)
	if err != nil {
		return checkUnrouted(resp, respBody, err)
	}
	opts := &openapi3filter.Options{
		AuthenticationFunc:    openapi3filter.NoopAuthenticationFunc,
		MultiError:            true,
		IncludeResponseStatus: true,
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: opts}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(respBody)),
		Options:                opts,
	}
	var problems []string
	if err := openapi3filter.ValidateResponse(ctx, out); err != nil {
		problems = append(problems, fmt.Sprintf("response %d does not match the document: %v; body %s", resp.StatusCode, err, clip(respBody)))
	}
	if reqErr != nil && (resp.StatusCode < 400 || resp.StatusCode >= 500) {
		problems = append(problems, fmt.Sprintf("the document calls the request invalid (%v), yet the server answered %d; request body %s", reqErr, resp.StatusCode, clip(reqBody)))
	}
	return strings.Join(problems, "; ")
}

// checkUnrouted: a request the document has no operation for must get the
// generic 404 or 405 error reply.
func checkUnrouted(resp *http.Response, body []byte, findErr error) string {
	want := http.StatusNotFound
	var re *routers.RouteError
	if errors.As(findErr, &re) && re.Reason == routers.ErrMethodNotAllowed.Error() {
		want = http.StatusMethodNotAllowed
	}
	if resp.StatusCode != want {
		return fmt.Sprintf("no such operation in the document (%v), yet the server answered %d (want %d): an undocumented route?", findErr, resp.StatusCode, want)
	}
	doc, err := openapi.Document()
	if err != nil {
		return err.Error()
	}
	schema := doc.Components.Schemas["ErrorReply"].Value
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Sprintf("%d reply is not JSON: %v; body %s", resp.StatusCode, err, clip(body))
	}
	if err := schema.VisitJSON(v); err != nil {
		return fmt.Sprintf("%d reply is not the documented error shape: %v", resp.StatusCode, err)
	}
	return ""
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}
