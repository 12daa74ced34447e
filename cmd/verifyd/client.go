package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"verifyd/client"
)

// clientFlags are the connection flags of send and validate.
type clientFlags struct {
	url, user, password string
}

func (c *clientFlags) client() (*client.Client, error) {
	if c.url == "" || c.user == "" || c.password == "" {
		return nil, usagef("--url, --user and --password (or VERIFYD_URL, VERIFYD_USER, VERIFYD_PASSWORD) are required")
	}
	// Every refusal of the client's own check is a bad --url, said here in
	// the flag's terms, and without a password the URL may hold.
	u, err := url.Parse(c.url)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, usagef("--url %q: want the server's base URL, such as http://127.0.0.1:8080", redactDSN(c.url))
	case u.User != nil:
		return nil, usagef("--url %q holds credentials: give the server's base URL alone, and the account as --user and --password", redactDSN(c.url))
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, usagef("--url %q has a query or a fragment: want the server's base URL alone, such as http://127.0.0.1:8080", redactDSN(c.url))
	}
	return &client.Client{BaseURL: c.url, User: c.user, Password: c.password}, nil
}

// clientErr says what a failed call means for the one running the command:
// which flag to check, or what the server refused. A call cut short by a
// signal (ctx done) says only that.
func clientErr(ctx context.Context, err error) error {
	if e, ok := client.AsError(err); ok {
		msg := strings.TrimPrefix(e.Error(), "verifyd: ")
		switch e.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("the server refused the account (%s); check --user and --password (VERIFYD_USER, VERIFYD_PASSWORD)", msg)
		case http.StatusBadRequest:
			return fmt.Errorf("the server refused the request: %s", msg)
		}
		return fmt.Errorf("the server answered %s", msg)
	}
	var ue *url.Error
	if errors.As(err, &ue) && !ue.Timeout() && ctx.Err() == nil {
		return fmt.Errorf("%w; is verifyd serving at --url?", err)
	}
	// What is left is an answer the client could not read (a web page
	// where JSON was due): its text starts with the package's "verifyd: ",
	// which the line has already.
	if msg, ok := strings.CutPrefix(err.Error(), "verifyd: "); ok {
		return fmt.Errorf("%s; is verifyd serving at --url?", msg)
	}
	return err
}

func (e *env) clientFlags(name, synopsis string) (*clientFlags, *flag.FlagSet) {
	fs := e.newFlags(name, synopsis)
	c := &clientFlags{}
	fs.StringVar(&c.url, "url", "", "the server's base URL, e.g. http://127.0.0.1:8080")
	fs.StringVar(&c.user, "user", "", "account name")
	fs.StringVar(&c.password, "password", "", "account secret")
	return c, fs
}

func send(ctx context.Context, args []string, e *env) error {
	c, fs := e.clientFlags("send", "send --url URL --user NAME --password SECRET --to NUMBER [--from ID] [--country ISO3]")
	to := fs.String("to", "", "phone number, international form")
	from := fs.String("from", "", "sender id (default: the account's or the server's)")
	country := fs.String("country", "", "ISO 3166-1 alpha-3 country, allowing a national-form --to")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("send takes no arguments, got %q", pos[0])
	}
	if *to == "" {
		return usagef("--to is required")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	v, err := cl.Send(ctx, client.SendRequest{To: *to, From: *from, CountryIsoCode: *country})
	if err != nil {
		return clientErr(ctx, err)
	}
	fmt.Fprintln(e.stdout, v.RequestID)
	return nil
}

func validate(ctx context.Context, args []string, e *env) error {
	c, fs := e.clientFlags("validate", "validate --url URL --user NAME --password SECRET REQUEST_ID CODE")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 2 {
		return usagef("validate takes REQUEST_ID and CODE")
	}
	cl, err := c.client()
	if err != nil {
		return err
	}
	v, err := cl.Validate(ctx, pos[0], pos[1])
	if err != nil {
		return clientErr(ctx, err)
	}
	fmt.Fprintln(e.stdout, v.Status)
	return nil
}
