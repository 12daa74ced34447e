package smpp

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"verifyd/gsm"
)

// Mode is how a Client binds.
type Mode string

// The bind modes.
const (
	// ModeTRX binds one transceiver per bind: submits and receipts share
	// one connection.
	ModeTRX Mode = "trx"
	// ModeTXRX binds a transmitter and a receiver per bind, for SMSCs that
	// lack bind_transceiver.
	ModeTXRX Mode = "txrx"
)

// Validity is how submit_sm states its validity_period.
type Validity string

// The validity_period formats.
const (
	// ValidityAbsolute sends SMS.ValidUntil in UTC ("YYMMDDhhmmss000+"),
	// rounded down to the second, so it can never be later than the code's
	// expiry whatever the SMSC's clock or queue says.
	ValidityAbsolute Validity = "absolute"
	// ValidityRelative sends the time left ("…R"), rounded down to the
	// second, for SMSCs that refuse absolute times. The SMSC counts it from
	// when it reads the PDU, a little after it was written.
	ValidityRelative Validity = "relative"
)

// IDBase says how a carrier's receipts quote message ids compared with its
// submit_sm_resp.
type IDBase string

// The receipt id conversions.
const (
	// IDSame: receipts quote the id as submit_sm_resp gave it.
	IDSame IDBase = ""
	// IDHexToDec: receipts quote it in hexadecimal while submit_sm_resp gave
	// decimal; the receipt's id is read as hex and reported in decimal.
	IDHexToDec IDBase = "hex2dec"
	// IDDecToHex: receipts quote it in decimal while submit_sm_resp gave
	// hexadecimal; the receipt's id is read as decimal and reported in hex.
	IDDecToHex IDBase = "dec2hex"
)

// Config is one SMSC account. ParseURL reads it from
//
//	smpp://SYSTEM_ID:PASSWORD@HOST:PORT?window=50&binds=1&enquire=30s&timeout=10s&rate=0&system_type=&tls=0&ca=FILE&mode=trx&source_ton=&source_npi=&validity=absolute&receipt_id_base=&charset=gsm
//
// with these query parameters, all optional:
//
//   - window: requests in flight per bind before Send waits (default 50);
//     the SMSC sets the limit, the specification suggests 10.
//   - binds: connections opened to the SMSC, submits spread over them
//     (default 1). In txrx mode each is a transmitter plus a receiver.
//   - enquire: idle time after which an enquire_link is sent (default 30s);
//     an unanswered one within timeout closes the link and reconnects.
//   - timeout: how long a request waits for its response, and the bound on
//     connecting, binding and each write to the SMSC (default 10s). A
//     submit_sm with no answer in time fails temporarily; its outcome is
//     unknown. A write the SMSC does not take in time ends the session.
//   - rate: submit_sm per second across all binds, 0 for no limit (default);
//     fractions allowed ("0.5").
//   - system_type: sent in the bind; some providers require one ("SMS").
//   - tls: 1 to connect over TLS (default 0). Certificates are always
//     verified: against the system roots, or against ca when given.
//   - ca: a PEM file of the CA certificates that the SMSC's certificate must
//     chain to, instead of the system roots (implies tls=1).
//   - mode: trx (default) for bind_transceiver, txrx for a
//     bind_transmitter plus bind_receiver pair.
//   - source_ton, source_npi: the sender's TON and NPI, overriding the
//     choice made from the sender id (digits: 1/1, or 0/1 for a short code
//     of up to 6 digits; letters: 5/0).
//   - validity: absolute (default) or relative; see Validity.
//   - receipt_id_base: empty, hex2dec or dec2hex; see IDBase.
//   - charset: what the SMSC reads data_coding 0 (its default alphabet)
//     in: gsm (default) for GSM 03.38, ascii or latin1 for SMSCs (US
//     aggregators among them) that read it as ASCII or ISO 8859-1. A text
//     the charset cannot hold goes out in UCS-2 whatever it is; see
//     gsm.Charset.
//
// The scheme smpps:// is smpp:// with tls=1. The remaining fields are set
// in code: zero values mean the defaults documented on each.
type Config struct {
	SystemID    string
	Password    string
	Addr        string // host:port
	SystemType  string
	Window      int
	Binds       int
	EnquireLink time.Duration
	Timeout     time.Duration
	Rate        float64
	TLS         bool
	CAFile      string
	Mode        Mode
	// SourceTON and SourceNPI, when set, override the TON and NPI picked
	// from the sender id.
	SourceTON     *uint8
	SourceNPI     *uint8
	Validity      Validity
	ReceiptIDBase IDBase
	// Charset is what the SMSC reads data_coding 0 in; the zero value is
	// gsm.CharsetGSM.
	Charset gsm.Charset

	// ReconnectMin and ReconnectMax bound the jittered exponential backoff
	// between connection attempts (defaults 1s and 2m); it is reset after a
	// successful bind.
	ReconnectMin, ReconnectMax time.Duration
	// ThrottleMin and ThrottleMax bound the pause of a bind after
	// ESME_RTHROTTLED or ESME_RMSGQFUL (defaults 1s and 60s): it doubles on
	// consecutive throttles and drops back to ThrottleMin after an accepted
	// submit.
	ThrottleMin, ThrottleMax time.Duration
	// UnbindWait bounds how long Close waits for outstanding responses
	// before it unbinds anyway (default: Timeout).
	UnbindWait time.Duration
	// ReceiptWorkers is how many receipts per bind are recorded at once
	// (default 8), so one slow commit does not hold up the others.
	ReceiptWorkers int

	// Now is the clock (default time.Now); validity periods are computed
	// from it.
	Now func() time.Time
	// Rand returns a uniform float64 in [0, 1) for the backoff jitter
	// (default math/rand/v2.Float64).
	Rand func() float64
}

// Defaults of the Config fields.
const (
	DefaultWindow      = 50
	DefaultEnquireLink = 30 * time.Second
	DefaultTimeout     = 10 * time.Second
)

// ParseURL reads a Config from an smpp:// URL (see Config). Its errors never
// quote the URL, since it holds the password.
func ParseURL(raw string) (Config, error) {
	var cfg Config
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, password included.
		if hasBadPort(raw) {
			return Config{}, errBadPort
		}
		return Config{}, errors.New("smpp: the URL does not parse (are special characters in the password %-escaped?)")
	}
	switch u.Scheme {
	case "smpp":
	case "smpps":
		cfg.TLS = true
	default:
		return Config{}, fmt.Errorf("smpp: URL scheme %q, want smpp or smpps", u.Scheme)
	}
	if u.User == nil || u.User.Username() == "" {
		return Config{}, errors.New("smpp: URL has no system_id (smpp://SYSTEM_ID:PASSWORD@HOST:PORT)")
	}
	cfg.SystemID = u.User.Username()
	cfg.Password, _ = u.User.Password()
	if u.Host == "" {
		return Config{}, errors.New("smpp: URL has no host")
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" || port == "" {
		return Config{}, errors.New("smpp: URL host must be HOST:PORT")
	}
	if !isPort(port) {
		// url.Parse takes any digits; 99999 would fail only at each dial.
		return Config{}, errBadPort
	}
	cfg.Addr = u.Host
	if u.Path != "" && u.Path != "/" {
		return Config{}, errors.New("smpp: URL has a path; parameters go in the query")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Config{}, errors.New("smpp: URL query is malformed")
	}
	for key, vals := range q {
		v := vals[len(vals)-1]
		if err := cfg.set(key, v); err != nil {
			return Config{}, err
		}
	}
	if err := cfg.validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// errBadPort does not quote the port: a URL written out of order could
// have the password there.
var errBadPort = errors.New("smpp: URL port is not a number from 1 to 65535 (smpp://SYSTEM_ID:PASSWORD@HOST:PORT)")

// hasBadPort reports whether raw, which url.Parse refused, fails for its
// port rather than its password. An unescaped '#', '/' or '?' in the
// password ends the host early, so url.Parse reads the start of the
// password as a port: the port is judged only when the user info ends with
// an '@' and nothing past the host has one.
func hasBadPort(raw string) bool {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return false
	}
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		if strings.Contains(rest[end:], "@") {
			return false
		}
		rest = rest[:end]
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return false
	}
	_, port, err := net.SplitHostPort(rest[at+1:])
	return err == nil && port != "" && !isPort(port)
}

// isPort reports whether s is a TCP port an SMSC can listen on.
func isPort(s string) bool {
	n, err := strconv.ParseUint(s, 10, 16)
	return err == nil && n > 0
}

func (c *Config) set(key, v string) error {
	bad := func(why string) error {
		return fmt.Errorf("smpp: URL parameter %s=%q: %s", key, v, why)
	}
	var err error
	switch key {
	case "window":
		c.Window, err = strconv.Atoi(v)
		if err != nil || c.Window < 1 {
			return bad("want a whole number of at least 1")
		}
	case "binds":
		c.Binds, err = strconv.Atoi(v)
		if err != nil || c.Binds < 1 || c.Binds > 64 {
			return bad("want a whole number from 1 to 64")
		}
	case "enquire":
		c.EnquireLink, err = time.ParseDuration(v)
		if err != nil || c.EnquireLink <= 0 {
			return bad("want a positive duration such as 30s")
		}
	case "timeout":
		c.Timeout, err = time.ParseDuration(v)
		if err != nil || c.Timeout <= 0 {
			return bad("want a positive duration such as 10s")
		}
	case "rate":
		c.Rate, err = strconv.ParseFloat(v, 64)
		if err != nil || c.Rate < 0 || c.Rate != c.Rate {
			return bad("want submits per second, 0 for no limit")
		}
	case "system_type":
		c.SystemType = v
	case "tls":
		switch v {
		case "0", "false", "":
			c.TLS = false
		case "1", "true":
			c.TLS = true
		default:
			return bad("want 0 or 1")
		}
	case "ca":
		c.CAFile = v
	case "mode":
		c.Mode = Mode(v)
		if c.Mode != ModeTRX && c.Mode != ModeTXRX {
			return bad("want trx or txrx")
		}
	case "source_ton", "source_npi":
		var p *uint8
		if v != "" {
			n, err := strconv.ParseUint(v, 10, 8)
			if err != nil {
				return bad("want a number from 0 to 255, or empty for automatic")
			}
			b := uint8(n)
			p = &b
		}
		if key == "source_ton" {
			c.SourceTON = p
		} else {
			c.SourceNPI = p
		}
	case "validity":
		c.Validity = Validity(v)
		if c.Validity != ValidityAbsolute && c.Validity != ValidityRelative {
			return bad("want absolute or relative")
		}
	case "receipt_id_base":
		c.ReceiptIDBase = IDBase(v)
		if c.ReceiptIDBase != IDSame && c.ReceiptIDBase != IDHexToDec && c.ReceiptIDBase != IDDecToHex {
			return bad("want hex2dec, dec2hex or empty")
		}
	case "charset":
		if c.Charset, err = gsm.ParseCharset(v); err != nil {
			return bad("want gsm, ascii or latin1 (the character set the SMSC reads data_coding 0 in)")
		}
	default:
		return fmt.Errorf("smpp: unknown URL parameter %q", key)
	}
	return nil
}

// validate checks what the wire format limits, so a bad account fails at
// start-up instead of at every bind. Messages name fields, never values.
func (c *Config) validate() error {
	switch {
	case len(c.SystemID) >= maxSystemID:
		return fmt.Errorf("smpp: system_id is %d characters, at most %d allowed", len(c.SystemID), maxSystemID-1)
	case len(c.Password) >= maxPassword:
		return fmt.Errorf("smpp: password is %d characters, at most %d allowed", len(c.Password), maxPassword-1)
	case len(c.SystemType) >= maxSystemType:
		return fmt.Errorf("smpp: system_type is %d characters, at most %d allowed", len(c.SystemType), maxSystemType-1)
	case strings.ContainsRune(c.SystemID+c.Password+c.SystemType, 0):
		return errors.New("smpp: system_id, password and system_type cannot hold a NUL")
	}
	if c.CAFile != "" {
		c.TLS = true
	}
	return nil
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Window <= 0 {
		c.Window = DefaultWindow
	}
	if c.Binds <= 0 {
		c.Binds = 1
	}
	if c.EnquireLink <= 0 {
		c.EnquireLink = DefaultEnquireLink
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Mode == "" {
		c.Mode = ModeTRX
	}
	if c.Validity == "" {
		c.Validity = ValidityAbsolute
	}
	if c.ReconnectMin <= 0 {
		c.ReconnectMin = time.Second
	}
	if c.ReconnectMax <= 0 {
		c.ReconnectMax = 2 * time.Minute
	}
	c.ReconnectMax = max(c.ReconnectMax, c.ReconnectMin)
	if c.ThrottleMin <= 0 {
		c.ThrottleMin = time.Second
	}
	if c.ThrottleMax <= 0 {
		c.ThrottleMax = time.Minute
	}
	c.ThrottleMax = max(c.ThrottleMax, c.ThrottleMin)
	if c.UnbindWait <= 0 {
		c.UnbindWait = c.Timeout
	}
	if c.ReceiptWorkers <= 0 {
		c.ReceiptWorkers = 8
	}
	if c.CAFile != "" {
		c.TLS = true
	}
	return c
}

// Redacted returns the Config as an smpp:// URL with the password replaced
// by "xxxxx", for logs and error messages.
func (c Config) Redacted() string {
	u := url.URL{Scheme: "smpp", Host: c.Addr}
	if c.Password != "" {
		u.User = url.UserPassword(c.SystemID, "xxxxx")
	} else {
		u.User = url.User(c.SystemID)
	}
	q := url.Values{}
	if c.Window > 0 {
		q.Set("window", strconv.Itoa(c.Window))
	}
	if c.Binds > 0 {
		q.Set("binds", strconv.Itoa(c.Binds))
	}
	if c.EnquireLink > 0 {
		q.Set("enquire", c.EnquireLink.String())
	}
	if c.Timeout > 0 {
		q.Set("timeout", c.Timeout.String())
	}
	if c.Rate > 0 {
		q.Set("rate", strconv.FormatFloat(c.Rate, 'g', -1, 64))
	}
	if c.SystemType != "" {
		q.Set("system_type", c.SystemType)
	}
	if c.TLS {
		q.Set("tls", "1")
	}
	if c.CAFile != "" {
		q.Set("ca", c.CAFile)
	}
	if c.Mode != "" {
		q.Set("mode", string(c.Mode))
	}
	if c.SourceTON != nil {
		q.Set("source_ton", strconv.Itoa(int(*c.SourceTON)))
	}
	if c.SourceNPI != nil {
		q.Set("source_npi", strconv.Itoa(int(*c.SourceNPI)))
	}
	if c.Validity != "" {
		q.Set("validity", string(c.Validity))
	}
	if c.ReceiptIDBase != "" {
		q.Set("receipt_id_base", string(c.ReceiptIDBase))
	}
	if c.Charset != gsm.CharsetGSM {
		q.Set("charset", c.Charset.String())
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// String is Redacted, so that printing a Config with %v or slog never shows
// the password.
func (c Config) String() string { return c.Redacted() }

// GoString is Redacted too, for %#v.
func (c Config) GoString() string { return c.Redacted() }
