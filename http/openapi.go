package http

import (
	_ "embed"
	"net/http"
	"strconv"
)

// openAPIDoc is the OpenAPI 3.1 description of every route. It is written
// by hand, so that it says what clients need to know, and openapi_test.go
// keeps it true: it fails on a route the document lacks or names wrongly,
// and on any recorded request or answer the document does not allow.
//
//go:embed openapi.json
var openAPIDoc []byte

// handleOpenAPI is GET /openapi.json. It needs no credentials: client
// generators and API explorers fetch it before they have any.
func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(openAPIDoc)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	w.Write(openAPIDoc)
	return nil
}
