package api

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/onair/onair/internal/openapi"
)

// serveOpenAPI is GET /openapi.yaml: the OpenAPI 3 document of every route.
func serveOpenAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/yaml; charset=utf-8", openapi.YAML)
}

// Undocumented returns the mounted routes ("GET /v1/x") that the OpenAPI
// document lacks. Every route must be documented: the document is the
// reference app developers get (GET /openapi.yaml).
func (s *Server) Undocumented() ([]string, error) {
	var out []string
	for _, r := range s.engine.Routes() {
		ok, err := openapi.Documented(r.Method, r.Path)
		if err != nil {
			return nil, err
		}
		if !ok {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out, nil
}

// warnUndocumented logs each undocumented route once, at Start (when
// every route is mounted).
func (s *Server) warnUndocumented() {
	routes, err := s.Undocumented()
	if err != nil {
		s.log.Warn("api: cannot read the OpenAPI document", "err", err)
		return
	}
	for _, r := range routes {
		s.log.Warn(openapi.UndocumentedMsg, "route", r)
	}
}
