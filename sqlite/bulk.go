package sqlite

import (
	"encoding/hex"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Bulk statements take their rows as one JSON array bound to one parameter
// and read it with json_each: one prepared statement serves any number of
// rows, binding one text costs the writer far less than binding every
// value, and most of the encoding happens on the caller's goroutine rather
// than on the writer's.

// rows builds the JSON array of a bulk statement, one object per row.
type rows struct {
	b   []byte
	ok  bool // false once a text was not valid UTF-8, which JSON cannot carry as is
	obj bool // an object is open
	n   int  // fields in the open object
}

func newRows(capacity int) *rows {
	r := &rows{b: make([]byte, 0, capacity), ok: true}
	r.b = append(r.b, '[')
	return r
}

// row opens the next object.
func (r *rows) row() *rows {
	r.close()
	if len(r.b) > 1 {
		r.b = append(r.b, ',')
	}
	r.b = append(r.b, '{')
	r.obj, r.n = true, 0
	return r
}

func (r *rows) close() {
	if r.obj {
		r.b = append(r.b, '}')
		r.obj = false
	}
}

func (r *rows) key(k string) {
	if r.n > 0 {
		r.b = append(r.b, ',')
	}
	r.n++
	r.b = append(r.b, '"')
	r.b = append(r.b, k...)
	r.b = append(r.b, '"', ':')
}

// str adds a text field.
func (r *rows) str(k, v string) *rows {
	r.key(k)
	r.b = appendString(r.b, v, &r.ok)
	return r
}

// int adds an integer field.
func (r *rows) int(k string, v int64) *rows {
	r.key(k)
	r.b = strconv.AppendInt(r.b, v, 10)
	return r
}

// blob adds a blob field as hex (null for nil), for unhex() to read back.
func (r *rows) blob(k string, v []byte) *rows {
	r.key(k)
	if v == nil {
		r.b = append(r.b, "null"...)
		return r
	}
	r.b = append(r.b, '"')
	r.b = hex.AppendEncode(r.b, v)
	r.b = append(r.b, '"')
	return r
}

// text ends the array and returns it; ok is false when a value cannot go
// through JSON unchanged, and the caller takes the statement-per-row way.
func (r *rows) text() (s string, ok bool) {
	r.close()
	r.b = append(r.b, ']')
	return string(r.b), r.ok
}

// strings is a JSON array of texts.
func stringsJSON(vs []string) (string, bool) {
	ok := true
	b := make([]byte, 0, 2+len(vs)*24)
	b = append(b, '[')
	for i, v := range vs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, v, &ok)
	}
	return string(append(b, ']')), ok
}

// jsonSafe reports whether s goes through JSON into SQLite unchanged.
func jsonSafe(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// appendString appends s as a JSON string. It clears ok for invalid UTF-8,
// which SQLite would store as is when bound but not through JSON.
func appendString(b []byte, s string, ok *bool) []byte {
	const hexDigits = "0123456789abcdef"
	if !utf8.ValidString(s) {
		*ok = false
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		if c == 0 {
			*ok = false // SQLite's JSON functions end a text at a NUL
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		default:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
		start = i + 1
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// joinRows joins the JSON arrays part(0) to part(n-1) into one.
func joinRows(n int, part func(int) string) string {
	size := 1
	for i := range n {
		size += len(part(i))
	}
	b := make([]byte, 0, size)
	b = append(b, '[')
	for i := range n {
		p := part(i)
		if len(p) <= 2 {
			continue // []
		}
		if len(b) > 1 {
			b = append(b, ',')
		}
		b = append(b, p[1:len(p)-1]...)
	}
	return string(append(b, ']'))
}
