package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"verifyd"
	"verifyd/auth"
)

const devAccountName = "dev"

// devAccount makes sure the dev account exists and returns its credentials.
// The secret is kept beside the SQLite database (like the dev key) so that
// every dev start can print it; outside dev mode secrets exist only as
// digests. If the file is lost, the account gets a new secret.
func devAccount(ctx context.Context, store verifyd.Store, c *serveConfig, e *env) (string, string, error) {
	path := ""
	if c.db.kind == "sqlite" {
		path = c.db.dsn + ".dev-account"
		if b, err := os.ReadFile(path); err == nil {
			if user, secret, ok := strings.Cut(strings.TrimSpace(string(b)), ":"); ok {
				if a, err := store.FindAccountByName(ctx, user); err == nil && !a.Disabled &&
					string(a.SecretDigest) == string(auth.Digest(secret)) {
					return user, secret, nil
				}
			}
		}
	}
	a, err := store.FindAccountByName(ctx, devAccountName)
	exists := err == nil
	if !exists && verifyd.ErrorCode(err) != verifyd.ENOTFOUND {
		return "", "", err
	}
	if !exists {
		a = &verifyd.Account{Name: devAccountName, Settings: verifyd.Settings{DefaultFrom: "verifyd"}, Created: e.now().UTC()}
	}
	a.Disabled = false
	secret, err := auth.SetSecret(a, e.random)
	if err != nil {
		return "", "", err
	}
	if exists {
		err = store.UpdateAccount(ctx, a)
	} else {
		err = store.CreateAccount(ctx, a)
	}
	if err != nil {
		return "", "", fmt.Errorf("making the dev account: %w", err)
	}
	if path != "" {
		if err := os.WriteFile(path, []byte(devAccountName+":"+secret+"\n"), 0o600); err != nil && !errors.Is(err, os.ErrExist) {
			return "", "", fmt.Errorf("keeping the dev account's secret: %w", err)
		}
	}
	return devAccountName, secret, nil
}

// printDevBanner says where messages go: --dev with --sms smpp://... or a
// Kannel URL sends to that gateway (described by gateway, "the SMSC at
// ..."), and its inbox page stays empty.
func printDevBanner(e *env, url, user, secret, gateway string) {
	where, inbox := "the inbox, not to phones", "\n  inbox:    "+url+"/inbox"
	if gateway != "" {
		where, inbox = gateway+", not to the inbox", ""
	}
	fmt.Fprintf(e.stdout, `verifyd is running in dev mode: messages go to %[4]s.

  API:      %[1]s/webapi/verify%[5]s
  username: %[2]s
  secret:   %[3]s

Send a code:
  curl -X POST --user %[2]s:%[3]s -d '{"to": "447123123456", "from": "Test"}' %[1]s/webapi/verify
`, url, user, secret, where, inbox)
}
