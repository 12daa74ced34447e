package smpp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"verifyd"
	"verifyd/gsm"
	"verifyd/smpp/smpptest"
)

func latin1(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r))
	}
	return b
}

// TestSendCharset sends through a fake SMSC that reads data_coding 0 in the
// charset the URL names, and checks each submit_sm's data_coding and
// short_message octet for octet.
func TestSendCharset(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		query  string
		cs     gsm.Charset
		text   string
		coding byte
		sm     [][]byte // short_message of each part, without its UDH
	}{
		// GSM 03.38, as before: '@' 0x00, '$' 0x02, '_' 0x11, '{' ESC 0x28.
		{"GSMDefault", "", gsm.CharsetGSM, "Code @ $5_{", 0,
			[][]byte{{'C', 'o', 'd', 'e', ' ', 0x00, ' ', 0x02, '5', 0x11, 0x1B, 0x28}}},
		{"GSMNamed", "charset=gsm", gsm.CharsetGSM, "Code @ $5_{", 0,
			[][]byte{{'C', 'o', 'd', 'e', ' ', 0x00, ' ', 0x02, '5', 0x11, 0x1B, 0x28}}},

		{"ASCII", "charset=ascii", gsm.CharsetASCII, "Code @ $5_ {1} [2] ~\\|^", 0,
			[][]byte{[]byte("Code @ $5_ {1} [2] ~\\|^")}},
		// '`' has no place in GSM 03.38, '£' none in ASCII: UCS-2.
		{"ASCIIBacktick", "charset=ascii", gsm.CharsetASCII, "`1`", 8,
			[][]byte{{0x00, 0x60, 0x00, 0x31, 0x00, 0x60}}},
		{"ASCIIPound", "charset=ascii", gsm.CharsetASCII, "£5", 8, [][]byte{{0x00, 0xA3, 0x00, 0x35}}},
		// 161 characters, 162 septets: the '{' that would straddle the
		// 153-septet boundary opens part two.
		{"ASCIILong", "charset=ascii", gsm.CharsetASCII, strings.Repeat("a", 152) + "{" + "bbbbbbbb", 0,
			[][]byte{[]byte(strings.Repeat("a", 152)), []byte("{bbbbbbbb")}},
		// 151 characters but 161 septets on the air: two parts.
		{"ASCIILongInSeptets", "charset=ascii", gsm.CharsetASCII, strings.Repeat("~", 10) + strings.Repeat("c", 141), 0,
			[][]byte{[]byte(strings.Repeat("~", 10) + strings.Repeat("c", 133)), []byte(strings.Repeat("c", 8))}},

		{"Latin1", "charset=latin1", gsm.CharsetLatin1, "Código: 123456 @ £5 ¿ñ? `{}`", 0,
			[][]byte{latin1("Código: 123456 @ £5 ¿ñ? `{}`")}},
		{"Latin1Euro", "charset=latin1", gsm.CharsetLatin1, "€5", 8, [][]byte{{0x20, 0xAC, 0x00, 0x35}}},
		// 141 octets: 134 and 7.
		{"Latin1Long", "charset=latin1", gsm.CharsetLatin1, strings.Repeat("é", 140) + "!", 0,
			[][]byte{latin1(strings.Repeat("é", 134)), latin1(strings.Repeat("é", 6) + "!")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := smpptest.NewServer(t, smpptest.Options{SystemID: "verifyd", Password: "secret1", Charset: tc.cs})
			cfg := testConfig(t, srv.URL("verifyd", "secret1", tc.query))
			if cfg.Charset != tc.cs {
				t.Fatalf("charset %v, want %v", cfg.Charset, tc.cs)
			}
			c := startClient(t, cfg, newRecorder(), nil)
			waitReady(t, c)
			ids, err := c.Send(context.Background(), sms(tc.text))
			if err != nil {
				t.Fatal(err)
			}
			subs := srv.Submits()
			if len(subs) != len(tc.sm) || len(ids) != len(tc.sm) {
				t.Fatalf("%d submits, %d ids, want %d", len(subs), len(ids), len(tc.sm))
			}
			for i, s := range subs {
				body := s.ShortMessage
				if len(tc.sm) > 1 {
					udh := []byte{0x05, 0x00, 0x03, byte(s.Ref), byte(len(tc.sm)), byte(i + 1)}
					if s.ESMClass != 0x40 || !bytes.HasPrefix(body, udh) {
						t.Fatalf("part %d: esm_class %#x short_message % X, want UDH % X", i+1, s.ESMClass, body, udh)
					}
					body = body[len(udh):]
				}
				if s.DataCoding != tc.coding || !bytes.Equal(body, tc.sm[i]) || s.TextErr != nil {
					t.Errorf("part %d: data_coding %d short_message % X (%v), want %d % X",
						i+1, s.DataCoding, body, s.TextErr, tc.coding, tc.sm[i])
				}
			}
			if got := smpptest.Reassemble(subs); len(got) != 1 || got[0] != tc.text {
				t.Fatalf("the SMSC read %q, want %q", got, tc.text)
			}
		})
	}
}

// TestNodeSMPPReadsLatin1 checks the ascii and latin1 charsets against
// node-smpp set to read data_coding 0 as ISO 8859-1 (its own default reads
// it as GSM 03.38): a preload script, given to node through NODE_OPTIONS,
// sets node-smpp's encodings.default before server.js starts. ASCII is a
// subset of Latin-1, so both charsets' texts must arrive intact.
func TestNodeSMPPReadsLatin1(t *testing.T) {
	t.Parallel()
	_, file, _, _ := runtime.Caller(0)
	lib, _ := json.Marshal(filepath.Join(filepath.Dir(file), "testdata", "nodesmsc", "node_modules", "smpp"))
	preload := filepath.Join(t.TempDir(), "latin1.js")
	js := "require(" + string(lib) + ").encodings.default = 'LATIN1';\n"
	if err := os.WriteFile(preload, []byte(js), 0o644); err != nil {
		t.Fatal(err)
	}
	n := smpptest.StartNode(t, "verifyd", "s3cret", "NODE_OPTIONS=--require="+preload)

	for _, tc := range []struct {
		charset string
		text    string
		coding  int
		parts   int
	}{
		{"ascii", "Your code is 123456 @ $5 _ {ok} [x] ~ \\ | ^", 0, 1},
		{"ascii", strings.Repeat("Code: 123456 @ {$} ", 8), 0, 2},
		{"ascii", "Your code is `123456`", 8, 1},
		{"latin1", "Código: 123456 @ £5 ¿ñ? `{}` ÿ", 0, 1},
		{"latin1", strings.Repeat("Ihr Code für verifyd: 123456 @ ", 5), 0, 2},
		{"latin1", "Your code: 123456 €", 8, 1},
	} {
		c := startClient(t, testConfig(t, n.URL("verifyd", "s3cret", "charset="+tc.charset)), nil, nil)
		waitReady(t, c)
		mark := n.Mark()
		ids, err := c.Send(context.Background(), &verifyd.SMS{RequestID: tc.text[:10], To: "15005550006", From: "447700900999", Text: tc.text})
		if err != nil {
			t.Fatal(err)
		}
		msg := n.Wait(t, mark, is("message"))
		if msg.Text != tc.text {
			t.Errorf("charset=%s: node-smpp read\n%q\nwant\n%q", tc.charset, msg.Text, tc.text)
		}
		subs := 0
		for _, e := range n.Events(mark) {
			if e.Event == "submit" {
				subs++
				if e.DataCoding != tc.coding {
					t.Errorf("charset=%s %q: data_coding %d, want %d", tc.charset, tc.text, e.DataCoding, tc.coding)
				}
			}
		}
		if subs != tc.parts || len(ids) != tc.parts {
			t.Errorf("charset=%s %q: %d submits, %d ids, want %d", tc.charset, tc.text, subs, len(ids), tc.parts)
		}
	}
}
