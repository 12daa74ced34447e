package kannel

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Config is one sendsms account of a Kannel smsbox (or of a gateway that
// copies its interface). ParseURL reads it from
//
//	http://USERNAME:PASSWORD@HOST:PORT/cgi-bin/sendsms?timeout=10s&receipts=https://verifyd.example.com&smsc=...
//
// or https://..., whose certificate is verified against the system roots.
// The query holds verifyd's own options:
//
//   - timeout: how long one sendsms request may take, connecting included
//     (default 10s). A request cut off fails temporarily: whether the
//     gateway took the message is unknown, and it is sent again.
//   - receipts: verifyd's own base URL as Kannel reaches it
//     (https://verifyd.example.com). With it, each message asks for
//     delivery reports (dlr-mask 19: delivered, not delivered, refused by
//     the SMSC) at ReceiptPath under that base; without it none are asked
//     for, and messages stay Submitted.
//
// Any other parameter (smsc=, priority=, account=, ...) is sent as is with
// every message. The parameters verifyd sets itself for each message
// (username, password, from, to, text, charset, coding, validity, dlr-mask,
// dlr-url and their older spellings) cannot be given there.
type Config struct {
	// Endpoint is the sendsms URL without its user info or query.
	Endpoint string
	Username string
	Password string
	// Params are the operator's fixed parameters, sent with every message.
	Params url.Values
	// Timeout bounds one sendsms request (default DefaultTimeout).
	Timeout time.Duration
	// Receipts is verifyd's external base URL; empty asks for no reports.
	Receipts string
}

// DefaultTimeout bounds a sendsms request when the URL sets no timeout.
const DefaultTimeout = 10 * time.Second

// ReceiptPath is the route of verifyd's API that a delivery report URL
// points to, and the http package serves (Sender.ReceiptPath).
const ReceiptPath = "/sms/receipts/kannel"

// reserved are the sendsms parameters verifyd sets for each message, in
// every spelling Kannel reads, so an operator's copy could only clash.
var reserved = map[string]bool{
	"username": true, "user": true, "password": true, "pass": true,
	"from": true, "to": true, "text": true, "charset": true, "coding": true,
	"validity": true, "dlr-mask": true, "dlrmask": true, "dlr-url": true, "dlrurl": true,
	"udh": true, "binfo": true,
}

// ParseURL reads a Config from an http:// or https:// sendsms URL (see
// Config). Its errors never quote the URL, since it holds the password.
func ParseURL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password included. A port that
		// is not a number, and an unescaped '#', '/' or '?' in the
		// password (which ends the host there, so that the password's
		// start is read as the port), fail alike: name both.
		var ue *url.Error
		if errors.As(err, &ue) && strings.HasPrefix(ue.Err.Error(), "invalid port") {
			return Config{}, errors.New("kannel: the URL does not parse: its port is not a number from 1 to 65535, or a special character in the password is not %-escaped")
		}
		return Config{}, errors.New("kannel: the URL does not parse (are special characters in the password %-escaped?)")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Config{}, fmt.Errorf("kannel: URL scheme %q, want http or https", u.Scheme)
	}
	if u.User == nil || u.User.Username() == "" {
		return Config{}, errors.New("kannel: URL has no username (http://USERNAME:PASSWORD@HOST:PORT/cgi-bin/sendsms)")
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" {
		return Config{}, errors.New("kannel: URL has no password (http://USERNAME:PASSWORD@HOST:PORT/cgi-bin/sendsms)")
	}
	if u.Hostname() == "" {
		return Config{}, errors.New("kannel: URL has no host")
	}
	if p := u.Port(); p != "" && !isPort(p) {
		// url.Parse takes any digits; 99999 would fail only at each send.
		return Config{}, errors.New("kannel: URL port is not a number from 1 to 65535")
	}
	if u.Path == "" || u.Path == "/" {
		return Config{}, errors.New("kannel: URL has no path; Kannel's is /cgi-bin/sendsms")
	}
	if u.Fragment != "" {
		return Config{}, errors.New("kannel: URL has a #fragment (is a '#' in the password %-escaped as %23?)")
	}
	cfg := Config{Username: u.User.Username(), Password: pw, Params: url.Values{}}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Config{}, errors.New("kannel: URL query is malformed")
	}
	for key, vals := range q {
		v := vals[len(vals)-1]
		switch key {
		case "timeout":
			cfg.Timeout, err = time.ParseDuration(v)
			if err != nil || cfg.Timeout <= 0 {
				return Config{}, fmt.Errorf("kannel: URL parameter timeout=%q: want a positive duration such as 10s", v)
			}
		case "receipts":
			if cfg.Receipts, err = parseBase(v); err != nil {
				return Config{}, err
			}
		default:
			if reserved[strings.ToLower(key)] {
				// Not the value: it may be the password.
				return Config{}, fmt.Errorf("kannel: URL parameter %q is set by verifyd for each message; the username and password go before the host", key)
			}
			cfg.Params[key] = vals
		}
	}
	u.User, u.RawQuery, u.ForceQuery = nil, "", false
	cfg.Endpoint = u.String()
	return cfg, nil
}

// parseBase checks the receipts option: an absolute http(s) URL that the
// report route can be appended to.
func parseBase(v string) (string, error) {
	bad := func(why string) error {
		return fmt.Errorf("kannel: URL parameter receipts=%q: %s", v, why)
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", bad("want verifyd's base URL as the gateway reaches it, such as https://verifyd.example.com (%-escape it if it has a query)")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", bad("want a base URL with no user, query or fragment")
	}
	if p := u.Port(); p != "" && !isPort(p) {
		return "", bad("the port is not a number from 1 to 65535")
	}
	return strings.TrimRight(u.String(), "/"), nil
}

func isPort(s string) bool {
	n, err := strconv.ParseUint(s, 10, 16)
	return err == nil && n > 0
}

// Redacted returns the Config as a URL with the password replaced by
// "xxxxx", for logs and error messages.
func (c Config) Redacted() string {
	u, err := url.Parse(c.Endpoint)
	if err != nil {
		return "kannel://invalid"
	}
	u.User = url.UserPassword(c.Username, "xxxxx")
	q := url.Values{}
	for k, v := range c.Params {
		q[k] = v
	}
	if c.Timeout > 0 {
		q.Set("timeout", c.Timeout.String())
	}
	if c.Receipts != "" {
		q.Set("receipts", c.Receipts)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// String is Redacted, so that printing a Config never shows the password.
func (c Config) String() string { return c.Redacted() }

// GoString is Redacted too, for %#v.
func (c Config) GoString() string { return c.Redacted() }
