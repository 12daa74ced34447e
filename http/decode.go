package http

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"verifyd"
)

// maxBody is the largest request body read; a larger one is a 413.
const maxBody = 64 << 10

// readBody reads the whole request body, refusing one over maxBody.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, &verifyd.Error{
			Code:    verifyd.ETOOLARGE,
			Message: "the request body is too large",
			Failures: []verifyd.Failure{{
				Property: "",
				Code:     verifyd.FailInvalidJSON,
				Details:  "The request body is larger than 64 KiB.",
			}},
		}
	}
	if err != nil {
		// The client went away mid-body; nothing useful can be answered.
		return nil, invalidJSON("", "The request body could not be read.")
	}
	return b, nil
}

// invalidJSON is the failure of a body or a field that is not the JSON it
// should be.
func invalidJSON(property, details string) *verifyd.Error {
	return verifyd.Invalid(verifyd.Failure{Property: property, Code: verifyd.FailInvalidJSON, Details: details})
}

// decodeObject unmarshals body into dst, a struct of json.RawMessage fields
// (so that no field's type can fail the whole body). The body may be one
// object or an array of exactly one, whatever the Content-Type said, and a
// trailing comma before a closing brace or bracket is forgiven because the
// Comapi PHP sample sends one.
func decodeObject(body []byte, dst any) *verifyd.Error {
	body = bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")) // a BOM some Windows clients send
	body = dropTrailingCommas(body)
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return invalidJSON("", "The request body is empty; send a JSON object.")
	}
	if trimmed[0] == '[' {
		var items []json.RawMessage
		if err := json.Unmarshal(trimmed, &items); err != nil {
			return invalidJSON("", "The request body is not valid JSON.")
		}
		if len(items) != 1 {
			return invalidJSON("", "The request body must be one JSON object, or an array holding exactly one.")
		}
		trimmed = bytes.TrimSpace(items[0])
	}
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return invalidJSON("", "The request body must be a JSON object.")
	}
	if err := json.Unmarshal(trimmed, dst); err != nil {
		return invalidJSON("", "The request body is not valid JSON.")
	}
	return nil
}

// dropTrailingCommas removes each comma that only whitespace separates from
// a following '}' or ']', outside strings. Commas inside strings, escaped
// quotes included, are left alone, so valid JSON is never changed.
func dropTrailingCommas(b []byte) []byte {
	if bytes.IndexByte(b, ',') < 0 {
		return b
	}
	var out []byte // allocated only when a comma is dropped
	inString, escaped := false, false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == ',':
			j := i + 1
			for j < len(b) && (b[j] == ' ' || b[j] == '\t' || b[j] == '\n' || b[j] == '\r') {
				j++
			}
			if j < len(b) && (b[j] == '}' || b[j] == ']') && followsValue(b[:i]) {
				if out == nil {
					out = append(make([]byte, 0, len(b)), b[:i]...)
				}
				continue
			}
		}
		if out != nil {
			out = append(out, c)
		}
	}
	if out == nil {
		return b
	}
	return out
}

// followsValue reports whether the last non-space byte of b ends a value,
// so that only a comma after a member is dropped, never the one in "{,}".
func followsValue(b []byte) bool {
	b = bytes.TrimRight(b, " \t\r\n")
	if len(b) == 0 {
		return false
	}
	switch b[len(b)-1] {
	case '{', '[', ',', ':':
		return false
	}
	return true
}

// jsonKind names the JSON type of a raw value, "" for an absent one.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		return "string"
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "bool"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// optionalString reads a field that must be a string when present. It
// reports ok=false for a value of another type; null and absence are "".
func optionalString(raw json.RawMessage) (s string, present, ok bool) {
	switch jsonKind(raw) {
	case "", "null":
		return "", false, true
	case "string":
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", false, false
		}
		return s, true, true
	}
	return "", false, false
}

// timeLayouts are the timestamp forms accepted: RFC 3339 with any offset and
// any fraction, the same without an offset, which is taken as UTC, and the
// other ISO 8601 offsets (+0200, +02) that PHP's DATE_ISO8601 and Java's
// SimpleDateFormat write.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z0700",
	"2006-01-02T15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z0700",
	"2006-01-02 15:04:05.999999999Z07",
}

// parseTime reads an incoming timestamp into UTC.
func parseTime(s string) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if len(s) > 64 {
		return time.Time{}, false
	}
	// RFC 3339 allows a lowercase 't' and 'z'; Go's layouts do not.
	s = strings.ToUpper(s)
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// timestamp writes a time as UTC RFC 3339 with milliseconds, the form
// Comapi's answers use: 2015-10-21T13:28:06.419Z.
type timestamp time.Time

// MarshalJSON implements json.Marshaler.
func (t timestamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + formatTime(time.Time(t)) + `"`), nil
}

// UnmarshalJSON implements json.Unmarshaler, for clients of this package's
// answers (the tests, and the command line's send and validate).
func (t *timestamp) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, ok := parseTime(s)
	if !ok {
		return fmt.Errorf("%q is not a timestamp", s)
	}
	*t = timestamp(v)
	return nil
}

// formatTime formats t as the API writes timestamps.
func formatTime(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000Z")
}
