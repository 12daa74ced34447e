package http

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"verifyd"
	"verifyd/gsm"
)

// The segment limit counts a body as the sender will send it. On an SMSC
// that reads data_coding 0 as ASCII, a text with an 'é' (one GSM 03.38
// character) cannot go as data_coding 0 and goes as UCS-2: 100 characters
// are one SMS in GSM 03.38 and two in UCS-2. Counted as GSM 03.38, such a
// body passed a one-segment limit and then went out in two.
func TestCreateSegmentLimitCountsTheSendersCharset(t *testing.T) {
	t.Parallel()
	body := "Café code {{code}} " + strings.Repeat("x", 75)
	req := `{"to":"447979080215","from":"Test","body":"` + body + `"}`
	oneSegment := withSettings(func(s *verifyd.Settings) { s.MaxSegments = 1 })
	for _, c := range []struct {
		charset gsm.Charset
		want    int
	}{
		{gsm.CharsetGSM, http.StatusAccepted},
		{gsm.CharsetASCII, http.StatusBadRequest},
		{gsm.CharsetLatin1, http.StatusAccepted},
	} {
		t.Run(c.charset.String(), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, oneSegment, withConfig(func(cfg *Config) { cfg.Charset = c.charset }))
			w := e.do("POST", "/webapi/verify", req)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d; body %s", w.Code, c.want, w.Body)
			}
			if c.want == http.StatusBadRequest {
				if got := failures(t, w); !slices.Equal(got, []string{"body:BodyInvalid"}) {
					t.Fatalf("failures %v", got)
				}
				if !strings.Contains(w.Body.String(), "takes 2 SMS segments") {
					t.Fatalf("body %s, want it to say 2 segments", w.Body)
				}
			}
		})
	}
}
