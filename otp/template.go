package otp

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// DefaultTemplate is the text of a code when the request gives no body.
const DefaultTemplate = "Your verification code is {{code}}"

// The placeholders a template may hold, written in any case and with spaces
// inside the braces ("{{ Code }}").
const (
	placeholderCode         = "code"
	placeholderValidMinutes = "validminutes"
)

// ErrNoCode is CheckTemplate's error for a body without {{code}}: a text
// without its code must never be sent.
var ErrNoCode = errors.New("the body must contain {{code}}, where the code goes")

// CheckTemplate reports whether body can be rendered: it holds {{code}} at
// least once, and no placeholder other than {{code}} and {{validMinutes}}.
// Its errors are sentences fit to show the client.
func CheckTemplate(body string) error {
	hasCode := false
	var unknown error
	scan(body, func(name string) (string, bool) {
		switch strings.ToLower(name) {
		case placeholderCode:
			hasCode = true
		case placeholderValidMinutes:
		default:
			if unknown == nil {
				unknown = unknownPlaceholder(name)
			}
		}
		return "", false
	})
	if unknown != nil {
		return unknown
	}
	if !hasCode {
		return ErrNoCode
	}
	return nil
}

func unknownPlaceholder(name string) error {
	const known = "only {{code}} and {{validMinutes}} are known"
	if len(name) > 20 || !isName(name) {
		return fmt.Errorf("the body has an unknown placeholder: %s", known)
	}
	return fmt.Errorf("the body has an unknown placeholder {{%s}}: %s", name, known)
}

// Render returns body with every {{code}} replaced by code and every
// {{validMinutes}} by validMinutes. Any other text, unknown placeholders
// included, is left as it is; CheckTemplate refuses those beforehand.
func Render(body, code string, validMinutes int) string {
	minutes := strconv.Itoa(validMinutes)
	return scan(body, func(name string) (string, bool) {
		switch strings.ToLower(name) {
		case placeholderCode:
			return code, true
		case placeholderValidMinutes:
			return minutes, true
		}
		return "", false
	})
}

// scan finds the placeholders of body, "{{" and "}}" with no brace between,
// and returns body with each replaced by what fn returns for its name (the
// text between, spaces trimmed), or left as it is when fn returns false.
// Braces that do not pair up so are text. It reads body once, so a body of
// a thousand "{{" costs no more than any other.
func scan(body string, fn func(name string) (string, bool)) string {
	var out strings.Builder
	done := 0 // body[:done] is written to out
	for i := 0; i < len(body); {
		open := strings.Index(body[i:], "{{")
		if open < 0 {
			break
		}
		open += i
		// The inside ends at the first brace after the opening one.
		end := open + 2
		for end < len(body) && body[end] != '{' && body[end] != '}' {
			end++
		}
		switch {
		case end >= len(body):
			i = len(body)
		case body[end] == '{':
			// "{{{code}}": the placeholder may open at the brace before.
			i = end - 1
		case !strings.HasPrefix(body[end:], "}}"):
			i = end + 1
		default:
			i = end + 2
			if r, ok := fn(strings.TrimSpace(body[open+2 : end])); ok {
				out.WriteString(body[done:open])
				out.WriteString(r)
				done = i
			}
		}
	}
	if done == 0 {
		return body
	}
	out.WriteString(body[done:])
	return out.String()
}

// isName reports whether s looks like a placeholder's name (ASCII letters,
// digits and underscores), and so is safe and useful to quote in an error.
func isName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}
