package http

import (
	"testing"

	"verifyd"
)

// The validate body is untrusted input like the create body (SECURITY.md:
// every parser of a JSON body has a fuzz test). Whatever it holds, judging
// it never panics, accepts only a code of exactly the account's length in
// ASCII digits (anything else could use up an attempt or reach the MAC), and
// refuses with one failure on the code or on the body as a whole.
func FuzzJudgeCode(f *testing.F) {
	for _, s := range []string{
		`{"code":"123456"}`, `{"code":123456}`, `{"code":12}`, `[{"code":" 123456 "}]`, `{"code":"１２３４５６"}`,
		`{"code":-12345}`, `{"code":1e5}`, `{"code":null}`, `{"code":["123456"]}`, `{"code":"12345\u0000"}`,
		`{"code":"123456",}`, `[]`, `[{},{}]`, `"123456"`, ``, `{"code":"0123456789"}`,
	} {
		f.Add([]byte(s), 6)
	}
	f.Fuzz(func(t *testing.T, body []byte, length int) {
		if length < 4 || length > 10 {
			length = 4 + (length%7+7)%7
		}
		code, err := judgeCode(body, length)
		if err == nil {
			if len(code) != length || !verifyd.IsDigits(code) {
				t.Fatalf("%q accepted as code %q for length %d", body, code, length)
			}
			for i := 0; i < len(code); i++ {
				if code[i] < '0' || code[i] > '9' {
					t.Fatalf("%q accepted as code %q, which is not ASCII digits", body, code)
				}
			}
			return
		}
		if err.Code != verifyd.EINVALID || len(err.Failures) != 1 || err.Failures[0].Details == "" {
			t.Fatalf("%q: error %+v", body, err)
		}
		switch fl := err.Failures[0]; {
		case fl.Property == "code" && (fl.Code == verifyd.FailInvalidJSON || fl.Code == verifyd.FailCodeInvalid):
		case fl.Property == "" && fl.Code == verifyd.FailInvalidJSON:
		default:
			t.Fatalf("%q: failure %+v", body, fl)
		}
	})
}
