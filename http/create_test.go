package http

import (
	"bytes"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"verifyd"
)

var uuidV4 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// The seed's own examples, sent as its samples send them.
func TestCreateSeedExamples(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct {
		name, path, body string
		edit             func(r *http.Request)
	}{
		{"CurlObject", "/webapi/verify", "{\n    \"from\": \"Test\",\n    \"to\": \"447979080215\"\n}", nil},
		{"CSharpArray", "/webapi/verify", `[{"from":"Test","to":"447979080215"}]`, nil},
		{"JavaUnirest", "/webapi/verify", "{\n    \"from\": \"Test\",\n    \"to\": \"447979080215\"\n}\n", nil},
		{"PHPSendcodeTrailingComma", "/webapi/verify/sendcode", "{\n    \"from\": \"Test\",\n    \"to\": \"447979080215\",\n}", nil},
		{"JQueryHeaders", "/webapi/verify", `[{"from":"Test","to":"447979080215"}]`, func(r *http.Request) {
			r.Header.Set("username", e.user)
			r.Header.Set("password", e.secret)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			edit := c.edit
			if edit == nil {
				edit = func(r *http.Request) { r.SetBasicAuth(e.user, e.secret) }
			}
			w := e.doWith("POST", c.path, c.body, func(r *http.Request) {
				r.Header.Set("Content-Type", "application/json")
				edit(r)
			})
			if w.Code != http.StatusAccepted {
				t.Fatalf("status %d, body %s", w.Code, w.Body)
			}
			var got map[string]string
			decodeInto(t, w, &got)
			if !uuidV4.MatchString(got["requestId"]) {
				t.Errorf("requestId %q is not a lowercase UUID v4", got["requestId"])
			}
			want := map[string]string{
				"requestId":    got["requestId"],
				"phoneNumber":  "447979080215",
				"status":       "CodeNotVerified",
				"numberStatus": "On",
				"created":      "2025-03-04T10:20:30.419Z",
			}
			if !mapsEqual(got, want) {
				t.Errorf("answer = %v, want %v", got, want)
			}
			if text := e.text(got["requestId"]); !regexp.MustCompile(`^Your verification code is \d{6}$`).MatchString(text) {
				t.Errorf("queued text = %q", text)
			}
		})
	}
	e.noLeaks("447979080215")
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestCreateQueuesTheMessage(t *testing.T) {
	t.Parallel()
	woken := 0
	e := newEnv(t, withConfig(func(cfg *Config) { cfg.Wake = func() { woken++ } }))
	vc := e.create(`{"to":"+44 7979 080215","from":"Shop","body":"{{code}} is your {{ CODE }}; {{validMinutes}} min","validUntil":"2025-03-04T12:35:00+02:00"}`)
	if vc.PhoneNumber != "447979080215" {
		t.Fatalf("phoneNumber = %q", vc.PhoneNumber)
	}
	ms, err := e.store.ClaimMessages(t.Context(), e.clock(), time.Minute, 10)
	if err != nil || len(ms) != 1 {
		t.Fatalf("claimed %d messages, err %v", len(ms), err)
	}
	m := ms[0]
	if m.RequestID != vc.RequestID || m.To != "447979080215" || m.From != "Shop" || m.AccountID != e.account.ID {
		t.Fatalf("message = %+v", m)
	}
	// 12:35+02:00 is 10:35Z, 14m30s after the clock: validMinutes rounds up.
	if want := time.Date(2025, 3, 4, 10, 35, 0, 0, time.UTC); !m.Deadline.Equal(want) {
		t.Fatalf("deadline = %v, want %v", m.Deadline, want)
	}
	text, err := e.keyring.Open(m.RequestID, m.Sealed)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^(\d{6}) is your (\d{6}); 15 min$`).Match(text) {
		t.Fatalf("text = %q", text)
	}
	if strings.Contains(string(m.Sealed), string(text[:6])) {
		t.Fatal("the stored message holds the code in plaintext")
	}
	if woken != 1 {
		t.Fatalf("Wake called %d times, want 1", woken)
	}
	got, err := e.store.FindVerification(t.Context(), e.account.ID, vc.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != verifyd.StatePending || got.MaxAttempts != 5 || got.Country != "GB" || !got.ValidUntil.Equal(m.Deadline) {
		t.Fatalf("verification = %+v", got)
	}
	if !e.keyring.Equal(got.CodeMAC, e.keyring.MAC(vc.RequestID, "447979080215", string(text[:6]))) {
		t.Fatal("the stored MAC is not the MAC of the sent code")
	}
	e.noLeaks(string(text[:6]), "447979080215")
}

func TestCreateDefaults(t *testing.T) {
	t.Parallel()
	t.Run("ServerSender", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withConfig(func(cfg *Config) { cfg.DefaultFrom = "Verifyd" }))
		for _, from := range []string{``, `"from":null,`, `"from":"",`, `"from":"   ",`} {
			vc := e.create(`{` + from + `"to":"447979080215"}`)
			ms, _ := e.store.ClaimMessages(t.Context(), e.clock(), time.Minute, 10)
			if len(ms) != 1 || ms[0].From != "Verifyd" || ms[0].RequestID != vc.RequestID {
				t.Fatalf("%s: messages %+v", from, ms)
			}
		}
	})
	t.Run("SpacesAroundTheSenderAreDropped", func(t *testing.T) {
		// A carrier shows a sender as given: " Shop " would be a blank
		// or a refused source address.
		t.Parallel()
		e := newEnv(t)
		e.create(`{"from":" Te st ","to":"447979080215"}`)
		ms, _ := e.store.ClaimMessages(t.Context(), e.clock(), time.Minute, 10)
		if len(ms) != 1 || ms[0].From != "Te st" {
			t.Fatalf("messages %+v", ms)
		}
	})
	t.Run("AccountSenderWins", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t,
			withConfig(func(cfg *Config) { cfg.DefaultFrom = "Verifyd" }),
			withSettings(func(s *verifyd.Settings) { s.DefaultFrom = "MyShop" }))
		e.create(`{"to":"447979080215"}`)
		ms, _ := e.store.ClaimMessages(t.Context(), e.clock(), time.Minute, 10)
		if len(ms) != 1 || ms[0].From != "MyShop" {
			t.Fatalf("messages %+v", ms)
		}
	})
	t.Run("AccountValidityAndCodeLength", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withSettings(func(s *verifyd.Settings) { s.ValidMinutes = 3; s.CodeLength = 8 }))
		vc := e.create(`{"to":"447979080215","from":"Test","body":"{{code}} ({{validMinutes}})"}`)
		if text := e.text(vc.RequestID); !regexp.MustCompile(`^\d{8} \(3\)$`).MatchString(text) {
			t.Fatalf("text = %q", text)
		}
		v, _ := e.store.FindVerification(t.Context(), e.account.ID, vc.RequestID)
		if want := t0.Add(3 * time.Minute); !v.ValidUntil.Equal(want) {
			t.Fatalf("validUntil = %v, want %v", v.ValidUntil, want)
		}
	})
	t.Run("NationalFormWithCountry", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		if vc := e.create(`{"to":"07123 123456","from":"Test","countryIsoCode":"gbr"}`); vc.PhoneNumber != "447123123456" {
			t.Fatalf("phoneNumber = %q", vc.PhoneNumber)
		}
	})
	t.Run("UntilWithoutOffsetIsUTC", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		vc := e.create(`{"to":"447979080215","from":"Test","validUntil":"2025-03-04T10:30:00"}`)
		v, _ := e.store.FindVerification(t.Context(), e.account.ID, vc.RequestID)
		if want := time.Date(2025, 3, 4, 10, 30, 0, 0, time.UTC); !v.ValidUntil.Equal(want) {
			t.Fatalf("validUntil = %v, want %v", v.ValidUntil, want)
		}
	})
	t.Run("ExactlyThirtyMinutes", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		e.create(`{"to":"447979080215","from":"Test","validUntil":"` + formatTime(t0.Add(30*time.Minute)) + `"}`)
	})
}

func TestCreateNumberStatus(t *testing.T) {
	t.Parallel()
	t.Run("LandlineIsNotProvisionedAndSent", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		vc := e.create(`{"to":"442071234567","from":"Test"}`)
		if vc.NumberStatus != verifyd.NumberNotProvisioned || vc.Status != verifyd.CodeNotVerified {
			t.Fatalf("answer = %+v", vc)
		}
		if e.text(vc.RequestID) == "" {
			t.Fatal("nothing was queued for a landline")
		}
	})
	t.Run("ErrLandlineBlocked", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, withSettings(func(s *verifyd.Settings) { s.BlockLandlines = true }))
		w := e.do("POST", "/webapi/verify", `{"to":"442071234567","from":"Test"}`)
		if got := failures(t, w); w.Code != 400 || !slices.Equal(got, []string{"to:NumberTypeNotAllowed"}) {
			t.Fatalf("%d %v", w.Code, got)
		}
		e.create(`{"to":"447979080215","from":"Test"}`)
	})
	t.Run("DeadIsNotSent", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		vc := e.create(`{"to":"` + deadNumber + `","from":"Test"}`)
		if vc.NumberStatus != verifyd.NumberDead || vc.Status != verifyd.CodeNotSent {
			t.Fatalf("answer = %+v", vc)
		}
		if text := e.text(vc.RequestID); text != "" {
			t.Fatalf("a text was queued for a dead number: %q", text)
		}
		if w := e.validate(vc.RequestID, "123456"); w.Code != http.StatusNoContent {
			t.Fatalf("validate of a NotSent request: %d %s", w.Code, w.Body)
		}
	})
}

// Every rule of API.md section 3's table, alone and together.
func TestCreateFailures(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSettings(func(s *verifyd.Settings) {
		s.ReservedFrom = []string{"Bank"}
	}))
	long := strings.Repeat("x", 460) + "{{code}}"
	for _, c := range []struct {
		name, body string
		want       []string
	}{
		{"NotJSON", `to=447979080215`, []string{":InvalidJson"}},
		{"Empty", ``, []string{":InvalidJson"}},
		{"Truncated", `{"to":"447979080215"`, []string{":InvalidJson"}},
		{"Number", `42`, []string{":InvalidJson"}},
		{"EmptyArray", `[]`, []string{":InvalidJson"}},
		{"TwoElementArray", `[{"to":"447979080215","from":"Test"},{"to":"447979080215","from":"Test"}]`, []string{":InvalidJson"}},
		{"ArrayOfNumber", `[1]`, []string{":InvalidJson"}},
		{"ToMissing", `{"from":"Test"}`, []string{"to:ToEmpty"}},
		{"ToBlank", `{"to":"   ","from":"Test"}`, []string{"to:ToEmpty"}},
		{"ToNull", `{"to":null,"from":"Test"}`, []string{"to:ToEmpty"}},
		{"ToNumber", `{"to":447979080215,"from":"Test"}`, []string{"to:InvalidJson"}},
		{"ToSeedBadNumber", `{"from":"Test","to":"4479790802150"}`, []string{"to:ToInvalid"}},
		{"ToLetters", `{"from":"Test","to":"call me"}`, []string{"to:ToInvalid"}},
		{"ToNationalWithoutCountry", `{"from":"Test","to":"07123123456"}`, []string{"to:ToInvalid"}},
		{"ToInvalidInCountry", `{"from":"Test","to":"0712","countryIsoCode":"GBR"}`, []string{"to:ToInvalid"}},
		{"CountryAlpha2", `{"from":"Test","to":"07123123456","countryIsoCode":"GB"}`, []string{"countryIsoCode:CountryIsoCodeInvalid"}},
		{"CountryUnknownLeavesToUnjudged", `{"from":"Test","to":"garbage","countryIsoCode":"XXX"}`, []string{"countryIsoCode:CountryIsoCodeInvalid"}},
		{"CountryUnknownToEmpty", `{"from":"Test","to":"","countryIsoCode":"XXX"}`, []string{"to:ToEmpty", "countryIsoCode:CountryIsoCodeInvalid"}},
		{"CountryNumber", `{"from":"Test","to":"447979080215","countryIsoCode":826}`, []string{"countryIsoCode:InvalidJson"}},
		{"FromEmptyWithoutDefaults", `{"to":"447979080215"}`, []string{"from:FromEmpty"}},
		{"FromBlankWithoutDefaults", `{"to":"447979080215","from":"   "}`, []string{"from:FromEmpty"}},
		{"FromOneDigit", `{"to":"447979080215","from":"1"}`, []string{"from:FromUnderMinTextLength"}},
		{"FromSixteenDigits", `{"to":"447979080215","from":"1234567890123456"}`, []string{"from:FromExceedsMaxNumericLength"}},
		{"FromOneLetter", `{"to":"447979080215","from":"A"}`, []string{"from:FromUnderMinTextLength"}},
		{"FromTwelveLetters", `{"to":"447979080215","from":"ABCDEFGHIJKL"}`, []string{"from:FromExceedsMaxTextLength"}},
		{"FromAccent", `{"to":"447979080215","from":"Tëst"}`, []string{"from:FromContainsDisallowedCharacters"}},
		{"FromBadAndLongReportsOnce", `{"to":"447979080215","from":"Bad!ThisIsTooLong"}`, []string{"from:FromContainsDisallowedCharacters"}},
		{"FromReservedAnyCase", `{"to":"447979080215","from":"BANK"}`, []string{"from:FromReserved"}},
		{"FromNumber", `{"to":"447979080215","from":12345}`, []string{"from:InvalidJson"}},
		{"BodyWithoutCode", `{"to":"447979080215","from":"Test","body":"Hello"}`, []string{"body:BodyInvalid"}},
		{"BodyUnknownPlaceholder", `{"to":"447979080215","from":"Test","body":"{{code}} {{name}}"}`, []string{"body:BodyInvalid"}},
		{"BodyTooManySegments", `{"to":"447979080215","from":"Test","body":"` + long + `"}`, []string{"body:BodyInvalid"}},
		{"BodyObject", `{"to":"447979080215","from":"Test","body":{}}`, []string{"body:InvalidJson"}},
		{"UntilNotATime", `{"to":"447979080215","from":"Test","validUntil":"tomorrow"}`, []string{"validUntil:InvalidJson"}},
		{"UntilNumber", `{"to":"447979080215","from":"Test","validUntil":1741083630}`, []string{"validUntil:InvalidJson"}},
		{"UntilPast", `{"to":"447979080215","from":"Test","validUntil":"2025-03-04T10:20:30.418Z"}`, []string{"validUntil:ValidUntilMinExceeded"}},
		{"UntilTooFar", `{"to":"447979080215","from":"Test","validUntil":"2025-03-04T10:50:30.420Z"}`, []string{"validUntil:ValidUntilMaxExceeded"}},
		{"UntilTooFarByOffset", `{"to":"447979080215","from":"Test","validUntil":"2025-03-04T10:30:00-01:00"}`, []string{"validUntil:ValidUntilMaxExceeded"}},
		{"EveryFieldInOrder", `{"to":"","from":"1","body":"x","validUntil":"bad"}`,
			[]string{"to:ToEmpty", "from:FromUnderMinTextLength", "body:BodyInvalid", "validUntil:InvalidJson"}},
		{"ArrayEveryField", `[{"to":"4479790802150","countryIsoCode":"GBR","from":"Bank","validUntil":"2020-01-01T00:00:00Z"}]`,
			[]string{"to:ToInvalid", "from:FromReserved", "validUntil:ValidUntilMinExceeded"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := e.do("POST", "/webapi/verify", c.body)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("status %d, body %s", w.Code, w.Body)
			}
			if got := failures(t, w); !slices.Equal(got, c.want) {
				t.Fatalf("failures = %v, want %v", got, c.want)
			}
		})
	}
	t.Run("NothingWasWritten", func(t *testing.T) {
		ms, err := e.store.ClaimMessages(t.Context(), e.clock(), time.Minute, 10)
		if err != nil || len(ms) != 0 {
			t.Fatalf("refused creates queued %d messages (err %v)", len(ms), err)
		}
	})
}

func TestCreateCountryAllowList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, withSettings(func(s *verifyd.Settings) { s.Countries = []string{"FRA", "US"} }))
	w := e.do("POST", "/webapi/verify", `{"to":"447979080215","from":"Test"}`)
	if got := failures(t, w); w.Code != 400 || !slices.Equal(got, []string{"to:CountryNotAllowed"}) {
		t.Fatalf("%d %v", w.Code, got)
	}
	e.create(`{"to":"33612345678","from":"Test"}`)
	e.create(`{"to":"15417543010","from":"Test"}`)
}

func TestCreateThrottled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for range 5 {
		e.create(`{"to":"447979080215","from":"Test"}`)
		e.advance(time.Minute)
	}
	refused := func(wantRetry string) {
		t.Helper()
		w := e.do("POST", "/webapi/verify", `{"to":"447979080215","from":"Test"}`)
		if got := failures(t, w); w.Code != 400 || !slices.Equal(got, []string{"to:Throttled"}) {
			t.Fatalf("%d %v", w.Code, got)
		}
		if got := w.Header().Get("Retry-After"); got != wantRetry {
			t.Fatalf("Retry-After = %q, want %q", got, wantRetry)
		}
	}
	// 5 per 10 minutes, sent a minute apart: at +5m the next may go when
	// the first is 10 minutes old, at +10m.
	refused("300")
	e.advance(299 * time.Second)
	refused("1")
	e.advance(time.Second)
	e.create(`{"to":"447979080215","from":"Test"}`)
	// Then the window is full again until the second leaves it, at +11m.
	refused("60")

	t.Run("OtherNumbersAreNotLimited", func(t *testing.T) {
		e.create(`{"to":"447979080216","from":"Test"}`)
	})
	t.Run("LimitsOff", func(t *testing.T) {
		e := newEnv(t, withSettings(func(s *verifyd.Settings) { s.LimitsOff = true }))
		for range 7 {
			e.create(`{"to":"447979080215","from":"Test"}`)
		}
	})
}

// Behind a trusted proxy the per-IP limit counts each client apart, and is
// an account-wide failure (property "").
func TestCreateThrottledPerClientIP(t *testing.T) {
	t.Parallel()
	e := newEnv(t,
		withConfig(func(cfg *Config) { cfg.TrustedProxies = mustPrefixes("192.0.2.0/24") }), // httptest's peer
		withSettings(func(s *verifyd.Settings) { s.Limits = map[string]string{"ip": "1/1m"} }))
	send := func(client, to string) *httptest.ResponseRecorder {
		return e.doWith("POST", "/webapi/verify", `{"to":"`+to+`","from":"Test"}`, func(r *http.Request) {
			r.SetBasicAuth(e.user, e.secret)
			r.Header.Set("X-Forwarded-For", client)
		})
	}
	if w := send("198.51.100.1", "447979080215"); w.Code != http.StatusAccepted {
		t.Fatalf("first: %d %s", w.Code, w.Body)
	}
	w := send("198.51.100.1", "447979080216")
	if got := failures(t, w); w.Code != 400 || !slices.Equal(got, []string{":Throttled"}) || w.Header().Get("Retry-After") != "60" {
		t.Fatalf("same client: %d %v %v", w.Code, got, w.Header())
	}
	if w := send("198.51.100.2", "447979080216"); w.Code != http.StatusAccepted {
		t.Fatalf("other client: %d %s", w.Code, w.Body)
	}
}

// Request ids and codes must come from the configured random source (crypto/rand
// in production), never from math/rand or a time-seeded generator. With a
// source of known bytes, each create's id and code are fixed: the id is the
// first 16 bytes with the UUID v4 bits set, and the code is the next bytes
// below 250, each taken mod 10. The source runs dry after the last byte, so
// a create that read more than it should would fail too.
func TestCreateDrawsFromConfiguredRand(t *testing.T) {
	t.Parallel()
	idBytes := [][]byte{
		{0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0xff, 0x77, 0xff, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff},
		{0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x00, 0x67, 0x00, 0xab, 0xcd, 0xef, 0x10, 0x32, 0x54, 0x76},
	}
	// Codes' bytes, 250 to 255 among them, which Draw throws away.
	codeBytes := [][]byte{
		{13, 250, 255, 42, 7, 199, 0, 86},
		{249, 9, 251, 120, 33, 64, 5},
	}
	var stream []byte
	for i := range idBytes {
		stream = append(stream, idBytes[i]...)
		stream = append(stream, codeBytes[i]...)
	}
	e := newEnv(t, withConfig(func(cfg *Config) { cfg.Rand = bytes.NewReader(stream) }))
	for i := range idBytes {
		b := slices.Clone(idBytes[i])
		b[6] = b[6]&0x0f | 0x40
		b[8] = b[8]&0x3f | 0x80
		h := hex.EncodeToString(b)
		wantID := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
		var wantCode []byte
		for _, c := range codeBytes[i] {
			if c < 250 {
				wantCode = append(wantCode, '0'+c%10)
			}
		}
		vc := e.create(`{"to":"447979080215","from":"Test"}`)
		if vc.RequestID != wantID {
			t.Fatalf("create %d: requestId = %q, want %q", i, vc.RequestID, wantID)
		}
		if code := e.code(vc.RequestID); code != string(wantCode) {
			t.Fatalf("create %d: code = %q, want %q", i, code, wantCode)
		}
	}
}
