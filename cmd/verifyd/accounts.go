package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"

	"verifyd"
	"verifyd/auth"
	"verifyd/phone"
)

const accountsSynopsis = `accounts create NAME [--password-stdin] [--db ...]
       verifyd accounts list [--db ...]
       verifyd accounts disable NAME [--db ...]
       verifyd accounts enable NAME [--db ...]
       verifyd accounts set NAME key=value ... [--db ...]`

// Account names travel in HTTP Basic auth, so no colon, and in logs, so
// nothing that needs quoting.
var accountName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func accounts(ctx context.Context, args []string, e *env) error {
	fs := e.newFlags("accounts", accountsSynopsis)
	dbFlag := fs.String("db", defaultDB, "database: sqlite:PATH or postgres://...")
	passwordStdin := fs.Bool("password-stdin", false, "create: read a chosen password from standard input instead of generating a secret")
	pos, err := e.parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("accounts needs a subcommand: create, list, disable, enable or set")
	}
	sub, pos := pos[0], pos[1:]
	// Each subcommand's arguments, as its usage line writes them.
	wantArgs := map[string][]string{"create": {"NAME"}, "list": {}, "disable": {"NAME"}, "enable": {"NAME"}, "set": nil}
	want, known := wantArgs[sub]
	switch {
	case !known:
		return usagef("unknown accounts subcommand %q: use create, list, disable, enable or set", sub)
	case want != nil && len(want) == 0 && len(pos) > 0:
		return usagef("accounts %s takes no arguments, got %q", sub, pos[0])
	case want != nil && len(pos) != len(want):
		return usagef("accounts %s takes %s: verifyd accounts %[1]s %[2]s", sub, strings.Join(want, " "))
	case *passwordStdin && sub != "create":
		// Ignoring it would leave the operator believing a password was set.
		return usagef("--password-stdin goes with accounts create only: verifyd accounts create NAME --password-stdin")
	case sub == "set" && len(pos) < 2:
		return usagef("accounts set takes NAME and at least one key=value (keys: %s)", strings.Join(verifyd.SettingKeys(), ", "))
	}
	if sub != "list" && !accountName.MatchString(pos[0]) {
		return usagef("account name %q: use 1 to 64 letters, digits, '.', '_' or '-'", pos[0])
	}
	db, err := parseDB(*dbFlag)
	if err != nil {
		return err
	}
	store, err := openStore(ctx, db)
	if err != nil {
		return fmt.Errorf("opening the database: %w", err)
	}
	defer store.Close()

	switch sub {
	case "create":
		return createAccount(ctx, store, pos[0], *passwordStdin, e)
	case "list":
		return listAccounts(ctx, store, e)
	case "disable", "enable":
		a, err := store.FindAccountByName(ctx, pos[0])
		if err != nil {
			return accountErr(pos[0], err)
		}
		a.Disabled = sub == "disable"
		if err := store.UpdateAccount(ctx, a); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "account %s %sd\n", a.Name, sub)
		return nil
	default: // set
		a, err := store.FindAccountByName(ctx, pos[0])
		if err != nil {
			return accountErr(pos[0], err)
		}
		for _, kv := range settingOrder(pos[1:], &a.Settings) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return usagef("%q is not key=value", kv)
			}
			if err := a.Settings.Set(k, v); err != nil {
				return usageError{err.Error()}
			}
			if err := checkSetting(a.Settings, k); err != nil {
				return usageError{err.Error()}
			}
		}
		// create refuses a default sender on the reserved list (FromReserved),
		// so an account whose own default were reserved could send nothing
		// that names no from: the two must not meet.
		if d := a.Settings.DefaultFrom; d != "" && a.Settings.Reserved(d) {
			return usagef("defaultFrom %q is on the account's reservedFrom list: choose another default, or take it off the list", d)
		}
		if err := store.UpdateAccount(ctx, a); err != nil {
			return err
		}
		out, _ := json.Marshal(a.Settings)
		fmt.Fprintf(e.stdout, "account %s settings: %s\n", a.Name, out)
		return nil
	}
}

// settingOrder returns the key=value pairs of one accounts set in the order
// they are applied. A code length and the test numbers' codes must change
// together: while test numbers stand, a codeLength their codes do not have
// is refused, and so are test numbers whose codes have another length than
// the account's. When the command sets both, the test numbers standing are
// cleared and the new ones are applied last, against the code length the
// command leaves; their codes must then have that length.
func settingOrder(pairs []string, s *verifyd.Settings) []string {
	var rest, testNumbers []string
	codeLength := false
	for _, kv := range pairs {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case "testNumbers":
			testNumbers = append(testNumbers, kv)
			continue
		case "codeLength":
			codeLength = true
		}
		rest = append(rest, kv)
	}
	if !codeLength || len(testNumbers) == 0 {
		return pairs
	}
	s.TestNumbers = nil
	return append(rest, testNumbers...)
}

// checkSetting judges what Settings.Set cannot, the verifyd package
// knowing no phone numbers: every test number must be a valid number in
// international form, and every code of the countries allow-list must name a
// country, or create would quietly refuse the numbers meant to be allowed.
func checkSetting(s verifyd.Settings, key string) error {
	switch key {
	case "testNumbers":
		// create finds a test number by the digits phone.Parse gives the
		// request's number: an entry that is no number, or is one written
		// otherwise ("0044..."), would never match, and requests to it
		// would reach a carrier.
		for digits := range s.TestNumbers {
			if n, err := phone.Parse(digits, ""); err != nil || n.Digits != digits {
				want := ""
				if err == nil {
					want = ", such as " + n.Digits
				}
				return fmt.Errorf("testNumbers: %s is not a valid phone number in international form%s", digits, want)
			}
		}
	case "countries":
		for _, c := range s.Countries {
			if _, ok := phone.Alpha2(c); !ok {
				return fmt.Errorf("countries: %q is not an ISO 3166-1 country code; write alpha-2 (GB) or alpha-3 (GBR) codes, comma-separated", c)
			}
		}
	}
	return nil
}

func accountErr(name string, err error) error {
	if verifyd.ErrorCode(err) == verifyd.ENOTFOUND {
		return fmt.Errorf("no account named %q ('verifyd accounts list' shows them)", name)
	}
	return err
}

// createAccount makes an account and prints its generated secret, the one
// time it is ever shown, as the only line on stdout so scripts can take it.
func createAccount(ctx context.Context, store verifyd.Store, name string, passwordStdin bool, e *env) error {
	a := &verifyd.Account{Name: name, Created: e.now().UTC()}
	var secret string
	if passwordStdin {
		pw, err := readPassword(ctx, e.stdin)
		if err != nil {
			return err
		}
		if err := auth.SetPassword(a, pw, e.random); err != nil {
			return usageError{strings.TrimPrefix(err.Error(), "auth: ")}
		}
	} else {
		var err error
		if secret, err = auth.SetSecret(a, e.random); err != nil {
			return err
		}
	}
	if err := store.CreateAccount(ctx, a); err != nil {
		if verifyd.ErrorCode(err) == verifyd.ECONFLICT {
			return fmt.Errorf("an account named %q exists already: choose another name, or change it with 'verifyd accounts set'", name)
		}
		return err
	}
	if secret != "" {
		fmt.Fprintln(e.stdout, secret)
		fmt.Fprintf(e.stderr, "account %s created; its secret (above) is shown only this once\n", name)
	} else {
		fmt.Fprintf(e.stdout, "account %s created with the chosen password\n", name)
	}
	return nil
}

// readPassword takes the password from stdin, less one trailing newline.
// A signal ends the wait: a read from a terminal cannot be cancelled, so
// it is left behind, and the process is about to end anyway.
func readPassword(ctx context.Context, r io.Reader) (string, error) {
	type line struct {
		pw  string
		err error
	}
	read := make(chan line, 1)
	go func() {
		pw, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
		read <- line{pw, err}
	}()
	var l line
	select {
	case <-ctx.Done():
		return "", fmt.Errorf("reading the password: %w; no account was created", context.Cause(ctx))
	case l = <-read:
	}
	if l.err != nil && l.err != io.EOF {
		return "", fmt.Errorf("reading the password: %w", l.err)
	}
	return strings.TrimSuffix(strings.TrimSuffix(l.pw, "\n"), "\r"), nil
}

func listAccounts(ctx context.Context, store verifyd.Store, e *env) error {
	list, err := store.ListAccounts(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tSTATUS\tCREDENTIAL\tCREATED\tSETTINGS")
	for _, a := range list {
		status, cred := "active", "secret"
		if a.Disabled {
			status = "disabled"
		}
		if a.PasswordHash != "" {
			cred = "password"
		}
		settings, _ := json.Marshal(a.Settings)
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", a.Name, status, cred, a.Created.UTC().Format("2006-01-02"), settings)
	}
	return w.Flush()
}
