package otp

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckTemplate(t *testing.T) {
	t.Parallel()
	ok := []struct{ name, body string }{
		{"Default", DefaultTemplate},
		{"Uppercase", "Code: {{CODE}}"},
		{"MixedCaseWithSpaces", "Code: {{ Code }}"},
		{"Tabs", "Code: {{\tcode\t}}"},
		{"BothPlaceholders", "{{code}} is valid for {{validMinutes}} minutes"},
		{"ValidMinutesAnyCase", "{{code}}, {{ VALIDMINUTES }} min"},
		{"Twice", "{{code}} {{code}}"},
		{"TripleBraces", "{{{code}}}"},
		{"LoneBracesAreText", "{ {{code}} } {{ and }"},
		{"UnclosedAfterCode", "{{code}} then {{oops"},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := CheckTemplate(tt.body); err != nil {
				t.Fatalf("CheckTemplate(%q): %v", tt.body, err)
			}
		})
	}
	bad := []struct{ name, body, says string }{
		{"Empty", "", "must contain {{code}}"},
		{"NoPlaceholder", "Your code is here", "must contain {{code}}"},
		{"OnlyValidMinutes", "Valid for {{validMinutes}} minutes", "must contain {{code}}"},
		{"SingleBraces", "Your code is {code}", "must contain {{code}}"},
		{"Unclosed", "Your code is {{code", "must contain {{code}}"},
		{"HalfClosed", "Your code is {{code}", "must contain {{code}}"},
		{"SpaceInsideName", "Your code is {{co de}}", "unknown placeholder"},
		{"UnknownPlaceholder", "{{code}} for {{name}}", "unknown placeholder {{name}}"},
		{"UnknownBeforeCode", "{{ user }}: {{code}}", "unknown placeholder {{user}}"},
		{"EmptyPlaceholder", "{{code}} {{}}", "unknown placeholder"},
		{"LongUnknownIsNotQuoted", "{{code}} {{" + strings.Repeat("x", 100) + "}}", "unknown placeholder:"},
	}
	for _, tt := range bad {
		t.Run("Err"+tt.name, func(t *testing.T) {
			t.Parallel()
			err := CheckTemplate(tt.body)
			if err == nil || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("CheckTemplate(%q) = %v, want an error saying %q", tt.body, err, tt.says)
			}
		})
	}
	if err := CheckTemplate("no code"); !errors.Is(err, ErrNoCode) {
		t.Fatalf("missing code: %v is not ErrNoCode", err)
	}
}

func TestRender(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body, want string }{
		{"Default", DefaultTemplate, "Your verification code is 042917"},
		{"CaseAndSpaces", "{{ Code }} / {{CODE}} / {{code}}", "042917 / 042917 / 042917"},
		{"ValidMinutes", "{{code}} valid {{validMinutes}} min, {{ ValidMinutes }} min", "042917 valid 7 min, 7 min"},
		{"TripleBraces", "{{{code}}}", "{042917}"},
		{"AdjacentPlaceholders", "{{code}}{{code}}", "042917042917"},
		{"UnknownLeftAsIs", "{{code}} {{name}}", "042917 {{name}}"},
		{"TextAround", "é{{code}}€", "é042917€"},
		{"NoPlaceholder", "plain", "plain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Render(tt.body, "042917", 7); got != tt.want {
				t.Fatalf("Render(%q) = %q, want %q", tt.body, got, tt.want)
			}
		})
	}
}

// A body of many openings must be checked in one pass, not one pass per
// opening; a quadratic scan of a 64 KiB body would take seconds.
func TestCheckTemplateIsLinear(t *testing.T) {
	t.Parallel()
	body := strings.Repeat("{{", 200_000) + strings.Repeat("{{a", 100_000) + "{{code}}"
	if err := CheckTemplate(body); err != nil {
		t.Fatalf("CheckTemplate: %v", err)
	}
	if got := Render(body, "1", 1); !strings.HasSuffix(got, "{{a1") {
		t.Fatalf("Render ends %q", got[len(got)-8:])
	}
}

func FuzzRender(f *testing.F) {
	for _, s := range []string{DefaultTemplate, "{{{code}}}", "{{ validMinutes }} {{code}", "{{a{{code}}}}"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		err := CheckTemplate(body)
		out := Render(body, "<CODE>", 5)
		if err == nil && !strings.Contains(out, "<CODE>") {
			t.Fatalf("CheckTemplate(%q) passed but Render left out the code: %q", body, out)
		}
		if !strings.Contains(body, "{{") && out != body {
			t.Fatalf("Render changed %q without a placeholder: %q", body, out)
		}
	})
}
