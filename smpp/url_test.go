package smpp

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"verifyd/gsm"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	cfg, err := ParseURL("smpp://acme:s%40cr%3At@smsc.example:2775?window=10&binds=2&enquire=20s&timeout=5s" +
		"&rate=12.5&system_type=SMS&mode=txrx&source_ton=3&source_npi=0&validity=relative&receipt_id_base=hex2dec&charset=latin1")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SystemID != "acme" || cfg.Password != "s@cr:t" || cfg.Addr != "smsc.example:2775" ||
		cfg.Window != 10 || cfg.Binds != 2 || cfg.EnquireLink != 20*time.Second || cfg.Timeout != 5*time.Second ||
		cfg.Rate != 12.5 || cfg.SystemType != "SMS" || cfg.Mode != ModeTXRX || cfg.TLS ||
		cfg.SourceTON == nil || *cfg.SourceTON != 3 || cfg.SourceNPI == nil || *cfg.SourceNPI != 0 ||
		cfg.Validity != ValidityRelative || cfg.ReceiptIDBase != IDHexToDec || cfg.Charset != gsm.CharsetLatin1 {
		t.Fatalf("got %#v", cfg)
	}
}

func TestParseURLDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := ParseURL("smpp://acme:pw@127.0.0.1:2775")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SourceTON != nil || cfg.SourceNPI != nil || cfg.TLS || cfg.Charset != gsm.CharsetGSM {
		t.Fatalf("got %#v", cfg)
	}
	d := cfg.withDefaults()
	if d.Window != 50 || d.Binds != 1 || d.EnquireLink != 30*time.Second || d.Timeout != 10*time.Second ||
		d.Mode != ModeTRX || d.Validity != ValidityAbsolute || d.Rate != 0 {
		t.Fatalf("defaults %#v", d)
	}
}

func TestParseURLTLS(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]bool{
		"smpps://a:b@h:1":         true,
		"smpp://a:b@h:1?tls=1":    true,
		"smpp://a:b@h:1?ca=x.pem": true,
		"smpp://a:b@h:1?tls=0":    false,
	} {
		cfg, err := ParseURL(raw)
		if err != nil || cfg.TLS != want {
			t.Errorf("%s: TLS %v (%v), want %v", raw, cfg.TLS, err, want)
		}
	}
}

func TestParseURLErrorsNeverShowThePassword(t *testing.T) {
	t.Parallel()
	const pw = "Hunter2x"
	for name, raw := range map[string]string{
		"ErrScheme":          "http://acme:" + pw + "@h:1",
		"ErrNoPort":          "smpp://acme:" + pw + "@h",
		"ErrBadPort":         "smpp://acme:" + pw + "@h:port",
		"ErrPortOutOfRange":  "smpp://acme:" + pw + "@h:99999",
		"ErrPortZero":        "smpp://acme:" + pw + "@h:0",
		"ErrPortSlashInPw":   "smpp://acme:" + pw + "/@h:port",
		"ErrNoUser":          "smpp://h:1",
		"ErrWindow":          "smpp://acme:" + pw + "@h:1?window=0",
		"ErrBinds":           "smpp://acme:" + pw + "@h:1?binds=x",
		"ErrEnquire":         "smpp://acme:" + pw + "@h:1?enquire=-1s",
		"ErrTimeout":         "smpp://acme:" + pw + "@h:1?timeout=soon",
		"ErrRate":            "smpp://acme:" + pw + "@h:1?rate=-1",
		"ErrMode":            "smpp://acme:" + pw + "@h:1?mode=rx",
		"ErrTON":             "smpp://acme:" + pw + "@h:1?source_ton=300",
		"ErrValidity":        "smpp://acme:" + pw + "@h:1?validity=never",
		"ErrIDBase":          "smpp://acme:" + pw + "@h:1?receipt_id_base=oct",
		"ErrCharset":         "smpp://acme:" + pw + "@h:1?charset=utf8",
		"ErrUnknownParam":    "smpp://acme:" + pw + "@h:1?colour=red",
		"ErrPasswordTooLong": "smpp://acme:" + pw + "9@h:1",
		"ErrSystemIDTooLong": "smpp://" + strings.Repeat("a", 16) + ":" + pw + "@h:1",
		"ErrUnparsable":      "smpp://acme:" + pw + "@h:1%zz",
		"ErrPath":            "smpp://acme:" + pw + "@h:1/x",
	} {
		_, err := ParseURL(raw)
		if err == nil {
			t.Errorf("%s: parsed", name)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("%s: error shows the password: %v", name, err)
		}
	}
}

// TestParseURLPort: a port that is not a number (or not one from 1 to
// 65535) is named as such, not as a password to escape; but a password with
// an unescaped '#', '/' or '?' cuts the host short where url.Parse looks for
// it, which reads as a bad port too, and is still pointed at the password.
func TestParseURLPort(t *testing.T) {
	t.Parallel()
	const (
		errPort     = "smpp: URL port is not a number from 1 to 65535 (smpp://SYSTEM_ID:PASSWORD@HOST:PORT)"
		errUnparsed = "smpp: the URL does not parse (are special characters in the password %-escaped?)"
	)
	for _, tc := range []struct {
		name, raw, want string
	}{
		{"OK", "smpp://sys:pw@host:2775", ""},
		{"OKHighest", "smpp://sys:pw@host:65535", ""},
		{"OKAtAndColonInPassword", "smpp://sys:p@s:wd@host:2775", ""},
		{"ErrPortNotANumber", "smpp://sys:pw@host:abc", errPort},
		{"ErrPortOutOfRange", "smpp://sys:pw@host:99999", errPort},
		{"ErrPortZero", "smpp://sys:pw@host:0", errPort},
		{"ErrPortNegative", "smpp://sys:pw@host:-1", errPort},
		{"ErrPortNotANumberIPv6", "smpp://sys:pw@[::1]:abc", errPort},
		{"ErrPortNotANumberWithQuery", "smpp://sys:pw@host:abc?window=5", errPort},
		{"ErrHashInPassword", "smpp://sys:p#ss@host:2775", errUnparsed},
		{"ErrSlashInPassword", "smpp://sys:p/ss@host:2775", errUnparsed},
		{"ErrQuestionMarkInPassword", "smpp://sys:p?ss@host:2775", errUnparsed},
		{"ErrSlashInPasswordAndPortNotANumber", "smpp://sys:p/ss@host:abc", errUnparsed},
		{"ErrAtColonAndSlashInPassword", "smpp://sys:p@h:x/y@host:2775", errUnparsed},
		{"ErrBadEscapeInPassword", "smpp://sys:p%zz@host:2775", errUnparsed},
		{"ErrCaretInPassword", "smpp://sys:p^w@host:2775", errUnparsed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := ParseURL(tc.raw)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("ParseURL: %v", err)
			case tc.want == "" && cfg.Addr != tc.raw[strings.LastIndex(tc.raw, "@")+1:]:
				t.Fatalf("Addr %q", cfg.Addr)
			case tc.want != "" && (err == nil || err.Error() != tc.want):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestParseURLCharset(t *testing.T) {
	t.Parallel()
	for query, want := range map[string]gsm.Charset{
		"":               gsm.CharsetGSM,
		"charset=gsm":    gsm.CharsetGSM,
		"charset=ascii":  gsm.CharsetASCII,
		"charset=latin1": gsm.CharsetLatin1,
		// The last of repeated parameters wins, as for the others.
		"charset=ascii&charset=latin1": gsm.CharsetLatin1,
	} {
		cfg, err := ParseURL("smpp://acme:pw@h:1?" + query)
		if err != nil || cfg.Charset != want {
			t.Errorf("?%s: charset %v (%v), want %v", query, cfg.Charset, err, want)
		}
		// Redacted, which serve logs, shows it unless it is the default.
		red := cfg.Redacted()
		if back, err := ParseURL(red); err != nil || back.Charset != want ||
			strings.Contains(red, "charset=") == (want == gsm.CharsetGSM) {
			t.Errorf("?%s: Redacted() = %s, which reads back as %v (%v)", query, red, back.Charset, err)
		}
	}
	for _, v := range []string{"", "GSM", "ASCII", "latin-1", "iso-8859-1", "utf8", "ucs2", "0"} {
		_, err := ParseURL("smpp://acme:pw@h:1?charset=" + v)
		want := `smpp: URL parameter charset="` + v + `": want gsm, ascii or latin1 (the character set the SMSC reads data_coding 0 in)`
		if err == nil || err.Error() != want {
			t.Errorf("charset=%s: error %v, want %q", v, err, want)
		}
	}
}

func TestConfigRedacted(t *testing.T) {
	t.Parallel()
	cfg, err := ParseURL("smpp://acme:Hunter2x@h:1?window=5&source_ton=5&ca=/etc/ca.pem&charset=ascii")
	if err != nil {
		t.Fatal(err)
	}
	want := "smpp://acme:xxxxx@h:1?ca=%2Fetc%2Fca.pem&charset=ascii&source_ton=5&tls=1&window=5"
	var logs strings.Builder
	slog.New(slog.NewTextHandler(&logs, nil)).Info("config", "cfg", cfg)
	for _, got := range []string{cfg.Redacted(), cfg.String(), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg), logs.String()} {
		if strings.Contains(got, "Hunter2x") {
			t.Fatalf("password shown: %s", got)
		}
	}
	if got := cfg.Redacted(); got != want {
		t.Fatalf("Redacted() = %q, want %q", got, want)
	}
	back, err := ParseURL(strings.Replace(cfg.Redacted(), "xxxxx", "Hunter2x", 1))
	if err != nil || back.Window != 5 || *back.SourceTON != 5 || back.CAFile != "/etc/ca.pem" || back.Charset != gsm.CharsetASCII {
		t.Fatalf("Redacted does not parse back: %v %#v", err, back)
	}
}
