// Package openapi holds onair's OpenAPI 3 document (openapi.yaml, embedded
// in the binary and served at GET /openapi.yaml) and reads it: which
// routes it documents. internal/apitest checks handler tests' requests and
// responses against it; api.Server warns at start-up about any mounted
// route the document lacks.
//
// A new route joins the document in the same change that mounts it: the
// suite fails otherwise (see internal/apitest and testenv.StartOnair).
//
// It lives under internal/ beside those test helpers, which read it, so
// nothing under internal/ imports a package above it; api serves it.
package openapi

import (
	"context"
	_ "embed"
	"fmt"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
)

// UndocumentedMsg is the warning api.Server.Start logs for each mounted
// route the document lacks; testenv.StartOnair fails a test on it.
const UndocumentedMsg = "route missing from the OpenAPI document internal/openapi/openapi.yaml"

// YAML is the document as served.
//
//go:embed openapi.yaml
var YAML []byte

// Document parses and validates YAML once; every caller shares the result
// and must not modify it.
var Document = sync.OnceValues(func() (*openapi3.T, error) {
	doc, err := openapi3.NewLoader().LoadFromData(YAML)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapi.yaml is not a valid OpenAPI 3 document: %w", err)
	}
	return doc, nil
})

// Documented reports whether the document has an operation for method on
// a gin route pattern ("/v1/history/:biz/:item_id"; gin's ":name" and
// "*name" segments are OpenAPI's "{name}"). Routes under /debug/ (pprof,
// off by default) are not part of the API and count as documented.
func Documented(method, ginPath string) (bool, error) {
	if strings.HasPrefix(ginPath, "/debug/") {
		return true, nil
	}
	doc, err := Document()
	if err != nil {
		return false, err
	}
	item := doc.Paths.Find(Path(ginPath))
	return item != nil && item.GetOperation(strings.ToUpper(method)) != nil, nil
}

// Path turns a gin route pattern into the OpenAPI path template.
func Path(ginPath string) string {
	segs := strings.Split(ginPath, "/")
	for i, s := range segs {
		if len(s) > 1 && (s[0] == ':' || s[0] == '*') {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}
