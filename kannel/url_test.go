package kannel

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestParseURL(t *testing.T) {
	t.Parallel()
	cfg, err := ParseURL("https://verifyd:s3cr%23t@sms.example.net:13013/cgi-bin/sendsms?smsc=carrier1&priority=1&timeout=3s&receipts=https://verifyd.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Endpoint: "https://sms.example.net:13013/cgi-bin/sendsms",
		Username: "verifyd",
		Password: "s3cr#t",
		Params:   url.Values{"smsc": {"carrier1"}, "priority": {"1"}},
		Timeout:  3 * time.Second,
		Receipts: "https://verifyd.example.com",
	}
	if fmt.Sprint(cfg.Params) != fmt.Sprint(want.Params) || cfg.Endpoint != want.Endpoint || cfg.Username != want.Username ||
		cfg.Password != want.Password || cfg.Timeout != want.Timeout || cfg.Receipts != want.Receipts {
		t.Fatalf("ParseURL = %#v\nwant %#v\n(password %q)", cfg, want, cfg.Password)
	}
	if s := fmt.Sprintf("%v %s %#v %+v", cfg, cfg, cfg, cfg); strings.Contains(s, "s3cr") {
		t.Fatalf("printing the Config shows the password: %s", s)
	}

	t.Run("Defaults", func(t *testing.T) {
		cfg, err := ParseURL("http://u:p@127.0.0.1:13013/cgi-bin/sendsms")
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Timeout != 0 || cfg.Receipts != "" || len(cfg.Params) != 0 || cfg.Endpoint != "http://127.0.0.1:13013/cgi-bin/sendsms" {
			t.Fatalf("ParseURL = %#v", cfg)
		}
	})
}

// Every refusal names what is wrong without quoting the URL: the password
// is in it, and in some mistakes it is where the host or a value should be.
func TestParseURLErrorsNeverShowThePassword(t *testing.T) {
	t.Parallel()
	const pw = "Pw9zQ"
	for _, tc := range []struct{ raw, want string }{
		{"smpp://u:" + pw + "@h:1/cgi-bin/sendsms", "scheme"},
		{"http://h:13013/cgi-bin/sendsms", "no username"},
		{"http://u@h:13013/cgi-bin/sendsms", "no password"},
		{"http://u:@h:13013/cgi-bin/sendsms", "no password"},
		{"http://u:" + pw + "@:13013/cgi-bin/sendsms", "no host"},
		{"http://u:" + pw + "@h:99999/cgi-bin/sendsms", "port"},
		{"http://u:" + pw + "@h:0/cgi-bin/sendsms", "port"},
		{"http://u:" + pw + "@h:sms/cgi-bin/sendsms", "port is not a number"},
		{"http://u:" + pw + "@h:13013", "no path"},
		{"http://u:" + pw + "@h:13013/", "no path"},
		{"http://u:ab#" + pw + "@h:13013/cgi-bin/sendsms", "does not parse"},
		{"http://u:ab?" + pw + "@h:13013/cgi-bin/sendsms", "does not parse"},
		{"http://u:" + pw + "@h:13013/cgi-bin/sendsms#" + pw, "fragment"},
		{"http://u:" + pw + "@h:13013/cgi-bin/sendsms?a=%zz", "malformed"},
		{"http://u:" + pw + "@h:13013/cgi-bin/sendsms?timeout=soon", "timeout"},
		{"http://u:" + pw + "@h:13013/cgi-bin/sendsms?timeout=-1s", "timeout"},
		{"http://u:" + pw + "@h:13013/cgi-bin/sendsms?receipts=verifyd.example.com", "receipts"},
		{"http://u:" + pw + "@h:13013/cgi-bin/sendsms?receipts=ftp://verifyd.example.com", "receipts"},
		{"http://u:" + pw + "@h:13013/cgi-bin/sendsms?receipts=https://verifyd.example.com/?x=1", "receipts"},
		{"http://u:" + pw + "@h:13013/cgi-bin/sendsms?receipts=https://verifyd.example.com:99999", "receipts"},
		{"http://u:x@h:13013/cgi-bin/sendsms?password=" + pw, `"password" is set by verifyd`},
		{"http://u:x@h:13013/cgi-bin/sendsms?pass=" + pw, `"pass" is set by verifyd`},
		{"http://u:x@h:13013/cgi-bin/sendsms?text=" + pw, `"text" is set by verifyd`},
		{"http://u:x@h:13013/cgi-bin/sendsms?dlr-url=" + pw, `"dlr-url" is set by verifyd`},
		{"http://u:x@h:13013/cgi-bin/sendsms?Coding=" + pw, `"Coding" is set by verifyd`},
	} {
		_, err := ParseURL(tc.raw)
		if err == nil {
			t.Errorf("ParseURL(%s) accepted", tc.raw)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseURL(%s) = %q, want it to say %q", tc.raw, err, tc.want)
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("ParseURL(%s) = %q shows the password", tc.raw, err)
		}
	}
}
