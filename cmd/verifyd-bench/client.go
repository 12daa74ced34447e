package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// client is one keep-alive HTTP/1.1 connection with the least work a client
// can do per request: the request is written from a reused buffer and the
// answer parsed by hand. The load generator shares two cores with the server
// it measures, and whatever CPU the client burns per request slows the fast
// baseline proportionally more than verifyd, flattering the ratio; a thin
// client keeps the ratio honest. It speaks exactly what verifyd and the
// baseline answer: Content-Length or chunked bodies, and Connection: close.
type client struct {
	addr string // host:port
	auth string // the Authorization header value, "" for none

	nc   net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	body []byte // the last answer's body, valid until the next call
}

func newClient(addr, user, secret string) *client {
	c := &client{addr: addr}
	if user != "" {
		c.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+secret))
	}
	return c
}

// errBadAnswer is an answer that is not well-formed HTTP.
var errBadAnswer = errors.New("malformed HTTP answer")

// do sends one request and returns the answer's status and body. The body
// slice is reused by the next call. On any error the connection is closed,
// and the next call dials again.
func (c *client) do(method, path string, body []byte) (int, []byte, error) {
	if c.nc == nil {
		nc, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
		if err != nil {
			return 0, nil, err
		}
		c.nc = nc
		c.r = bufio.NewReaderSize(nc, 16<<10)
		c.w = bufio.NewWriterSize(nc, 4<<10)
	}
	// Generous, since a loaded server may queue a request for a while; it
	// only keeps a dead server from hanging the run.
	c.nc.SetDeadline(time.Now().Add(30 * time.Second))
	status, closeAfter, err := c.roundTrip(method, path, body)
	if err != nil || closeAfter {
		c.close()
	}
	return status, c.body, err
}

func (c *client) roundTrip(method, path string, body []byte) (status int, closeAfter bool, err error) {
	w := c.w
	w.WriteString(method)
	w.WriteByte(' ')
	w.WriteString(path)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(c.addr)
	w.WriteString("\r\n")
	if c.auth != "" {
		w.WriteString("Authorization: ")
		w.WriteString(c.auth)
		w.WriteString("\r\n")
	}
	if body != nil {
		w.WriteString("Content-Type: application/json\r\nContent-Length: ")
		w.WriteString(strconv.Itoa(len(body)))
		w.WriteString("\r\n\r\n")
		w.Write(body)
	} else {
		w.WriteString("\r\n")
	}
	if err := w.Flush(); err != nil {
		return 0, false, err
	}
	return c.readAnswer(method == "HEAD")
}

// readAnswer parses the status line, the headers it needs and the body.
func (c *client) readAnswer(head bool) (status int, closeAfter bool, err error) {
	line, err := c.line()
	if err != nil {
		return 0, false, err
	}
	// "HTTP/1.1 202 Accepted"
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' {
		return 0, false, fmt.Errorf("%w: status line %q", errBadAnswer, line)
	}
	status, err = strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, false, fmt.Errorf("%w: status line %q", errBadAnswer, line)
	}
	length, chunked := -1, false
	for {
		h, err := c.line()
		if err != nil {
			return 0, false, err
		}
		if len(h) == 0 {
			break
		}
		name, value, ok := bytes.Cut(h, []byte(":"))
		if !ok {
			return 0, false, fmt.Errorf("%w: header %q", errBadAnswer, h)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(value)); err != nil || length < 0 {
				return 0, false, fmt.Errorf("%w: Content-Length %q", errBadAnswer, value)
			}
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(value, []byte("chunked"))
		case bytes.EqualFold(name, []byte("Connection")):
			closeAfter = bytes.EqualFold(value, []byte("close"))
		}
	}
	c.body = c.body[:0]
	switch {
	case head || status == 204 || status == 304 || status/100 == 1:
	case chunked:
		if err := c.readChunked(); err != nil {
			return 0, false, err
		}
	case length >= 0:
		c.body = grow(c.body, length)
		if _, err := io.ReadFull(c.r, c.body); err != nil {
			return 0, false, err
		}
	default:
		// No length: the body runs to the end of the connection.
		b, err := io.ReadAll(c.r)
		if err != nil {
			return 0, false, err
		}
		c.body = append(c.body, b...)
		closeAfter = true
	}
	return status, closeAfter, nil
}

func (c *client) readChunked() error {
	for {
		line, err := c.line()
		if err != nil {
			return err
		}
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		n, err := strconv.ParseUint(string(bytes.TrimSpace(line)), 16, 31)
		if err != nil {
			return fmt.Errorf("%w: chunk size %q", errBadAnswer, line)
		}
		if n == 0 {
			// Trailers, up to the blank line.
			for {
				t, err := c.line()
				if err != nil {
					return err
				}
				if len(t) == 0 {
					return nil
				}
			}
		}
		start := len(c.body)
		c.body = grow(c.body, start+int(n))
		if _, err := io.ReadFull(c.r, c.body[start:]); err != nil {
			return err
		}
		if crlf, err := c.line(); err != nil || len(crlf) != 0 {
			return fmt.Errorf("%w: chunk not followed by CRLF", errBadAnswer)
		}
	}
}

// line reads one CRLF-terminated line without its terminator. The slice is
// valid until the next read.
func (c *client) line() ([]byte, error) {
	l, err := c.r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, fmt.Errorf("%w: line over %d bytes", errBadAnswer, c.r.Size())
		}
		return nil, err
	}
	l = bytes.TrimSuffix(l[:len(l)-1], []byte("\r"))
	return l, nil
}

func (c *client) close() {
	if c.nc != nil {
		c.nc.Close()
		c.nc = nil
	}
}

// grow returns b resized to n bytes, its content kept, reusing its array
// when it is big enough.
func grow(b []byte, n int) []byte {
	if cap(b) >= n {
		return b[:n]
	}
	nb := make([]byte, n, max(n, 2*cap(b)))
	copy(nb, b)
	return nb
}
