package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"verifyd"
)

// statuses is the one table from the domain's error codes to HTTP statuses.
// A code missing here, or an error that is not a *verifyd.Error, is a 500.
var statuses = map[string]int{
	verifyd.EINVALID:      http.StatusBadRequest,
	verifyd.EUNAUTHORIZED: http.StatusUnauthorized,
	verifyd.EFORBIDDEN:    http.StatusForbidden,
	verifyd.ENOTFOUND:     http.StatusNotFound,
	verifyd.ECONFLICT:     http.StatusConflict,
	verifyd.EMISMATCH:     http.StatusUnprocessableEntity,
	verifyd.ETOOLARGE:     http.StatusRequestEntityTooLarge,
	verifyd.EUNAVAILABLE:  http.StatusServiceUnavailable,
	verifyd.EINTERNAL:     http.StatusInternalServerError,
}

// unauthorizedText is the body of every 401, word for word Comapi's.
const unauthorizedText = "No authorization header supplied or invalid username or password"

// errorBody is the JSON of every error but 400, 413 and 401.
type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// handler is a route's function: it writes a success itself and returns
// any failure for renderError.
type handler func(w http.ResponseWriter, r *http.Request) error

// handle adapts a handler to http.Handler.
func (s *Server) handle(h handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.renderError(w, r, err)
		}
	})
}

// renderError writes err as the API answers it. Only *verifyd.Error
// messages reach the client; any other error is logged and answered with
// "internal error".
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, err error) {
	var e *verifyd.Error
	if !errors.As(err, &e) {
		s.log.Error("internal error", "request", requestID(r.Context()), "err", err)
		writeJSON(w, http.StatusInternalServerError, errorBody{Code: verifyd.EINTERNAL, Message: "internal error"})
		return
	}
	status, ok := statuses[e.Code]
	if !ok {
		status = http.StatusInternalServerError
	}
	switch {
	case status == http.StatusInternalServerError:
		s.log.Error("internal error", "request", requestID(r.Context()), "err", err)
		writeJSON(w, status, errorBody{Code: verifyd.EINTERNAL, Message: "internal error"})
	case status == http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Basic realm="verifyd"`)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		w.Write([]byte(unauthorizedText))
	case len(e.Failures) > 0:
		if e.RetryAfter > 0 {
			secs := int64((e.RetryAfter + 999_999_999) / 1_000_000_000)
			w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
		}
		writeJSON(w, status, e.Failures)
	default:
		if status == http.StatusServiceUnavailable {
			s.log.Warn("unavailable", "request", requestID(r.Context()), "err", err)
		}
		writeJSON(w, status, errorBody{Code: e.Code, Message: e.Message})
	}
}

// writeJSON writes v as the body of a JSON answer.
func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONBytes(w, status, mustMarshal(v))
}

// writeJSONBytes writes b, JSON already encoded, as the answer.
func writeJSONBytes(w http.ResponseWriter, status int, b []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	w.Write(b)
}

// mustMarshal is marshal for the answers' own values, made of plain
// structs: failing to encode one is a programming error.
func mustMarshal(v any) []byte {
	b, err := marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// marshal encodes v as JSON with a trailing newline, keeping '<', '>' and
// '&' readable (the answers are never embedded in HTML).
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
