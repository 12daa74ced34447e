package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	nethttp "net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"verifyd"
	"verifyd/auth"
	"verifyd/delivery"
	"verifyd/http"
	"verifyd/inbox"
	"verifyd/kannel"
	"verifyd/metrics"
	"verifyd/otp"
	"verifyd/phone"
	"verifyd/smpp"
	"verifyd/sqlite"
)

const serveSynopsis = `serve [--addr 127.0.0.1:8080] [--db sqlite:verifyd.db | --db postgres://...]
                     [--sms inbox | --sms smpp://SYSTEM_ID:PASSWORD@HOST:PORT?...
                      | --sms http://USERNAME:PASSWORD@HOST:PORT/cgi-bin/sendsms?...] [--dev] [flags]`

// serveConfig is the parsed command line of serve.
type serveConfig struct {
	addr            string
	db              database
	sms             string
	smpp            smpp.Config   // parsed from sms when it is smpp:// or smpps://
	kannel          kannel.Config // parsed from sms when it is http:// or https://
	dev             bool
	secretKeyFile   string
	defaultFrom     string
	tlsCert, tlsKey string
	shutdownTimeout time.Duration
	trustedProxies  []netip.Prefix
	logFormat       string
	deliveryLease   time.Duration
	metricsAddr     string
	replaceKey      bool
}

func parseServe(args []string, e *env) (*serveConfig, error) {
	fs := e.newFlags("serve", serveSynopsis)
	c := &serveConfig{}
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "address to listen on")
	dbFlag := fs.String("db", defaultDB, "database: sqlite:PATH or postgres://...")
	fs.StringVar(&c.sms, "sms", "inbox", "sender: inbox (messages kept for the dev inbox), smpp://SYSTEM_ID:PASSWORD@HOST:PORT?window=50&binds=1&... or a Kannel sendsms URL, http(s)://USERNAME:PASSWORD@HOST:PORT/cgi-bin/sendsms?receipts=BASE_URL&...")
	fs.BoolVar(&c.dev, "dev", false, "dev mode: create a dev account, keep a server key beside the database, serve the inbox page")
	fs.StringVar(&c.secretKeyFile, "secret-key-file", "", "file holding the server key (64 hex characters); VERIFYD_SECRET_KEY holds it directly")
	fs.StringVar(&c.defaultFrom, "default-from", "", "sender id for requests and accounts that name none")
	fs.StringVar(&c.tlsCert, "tls-cert", "", "certificate file: serve HTTPS (TLS 1.2+)")
	fs.StringVar(&c.tlsKey, "tls-key", "", "private key file for --tls-cert")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", 15*time.Second, "how long a stop may take to finish requests and submits in flight")
	fs.DurationVar(&c.deliveryLease, "delivery-lease", time.Minute, "how long a message being handed over is held; after a crash, its messages are retried once this has passed")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "serve /metrics on its own listener at this address instead of the API's")
	fs.BoolVar(&c.replaceKey, "replace-server-key", false, "record this server key as the database's, in place of the one it was written under (codes and texts pending under the old key then fail)")
	proxies := fs.String("trusted-proxies", "", "comma-separated CIDRs whose X-Forwarded-For is believed (turns on the per-IP limit)")
	fs.StringVar(&c.logFormat, "log-format", "", "json or text (default json, text with --dev)")
	pos, err := e.parse(fs, args)
	if err != nil {
		return nil, err
	}
	if len(pos) > 0 {
		return nil, usagef("serve takes no arguments, got %q", pos[0])
	}
	if c.db, err = parseDB(*dbFlag); err != nil {
		return nil, err
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return nil, usagef("--tls-cert and --tls-key go together")
	}
	// A mistake in the URL is a bad flag: found here, before the key, the
	// database or the listener can fail first.
	switch smsKind(c.sms) {
	case "inbox":
	case "smpp":
		if c.smpp, err = smpp.ParseURL(c.sms); err != nil {
			return nil, usagef("--sms: %v", err)
		}
	case "kannel":
		if c.kannel, err = kannel.ParseURL(c.sms); err != nil {
			return nil, usagef("--sms: %v", err)
		}
	default:
		return nil, usagef("--sms must be inbox, smpp://... or a Kannel sendsms URL, http(s)://...")
	}
	// The worker cuts a hand-over off at three quarters of its lease: a
	// lease under a second leaves a carrier no time to answer, so each
	// message would be sent again and again. Zero is not "the default".
	if c.deliveryLease < minLease {
		return nil, usagef("--delivery-lease %v: want at least %v (default 1m)", c.deliveryLease, minLease)
	}
	if c.shutdownTimeout < 0 {
		return nil, usagef("--shutdown-timeout %v: want a duration of 0 or more (default 15s)", c.shutdownTimeout)
	}
	if err := checkAddr(c.addr); err != nil {
		return nil, usagef("--addr %q: %v", c.addr, err)
	}
	if c.metricsAddr != "" {
		if err := checkAddr(c.metricsAddr); err != nil {
			return nil, usagef("--metrics-addr %q: %v", c.metricsAddr, err)
		}
	}
	for _, p := range strings.Split(*proxies, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			addr, aerr := netip.ParseAddr(p)
			if aerr != nil {
				return nil, usagef("--trusted-proxies: %q is not a CIDR or an address", p)
			}
			prefix = netip.PrefixFrom(addr, addr.BitLen())
		}
		c.trustedProxies = append(c.trustedProxies, prefix)
	}
	switch c.logFormat {
	case "":
		c.logFormat = "json"
		if c.dev {
			c.logFormat = "text"
		}
	case "json", "text":
	default:
		return nil, usagef("--log-format must be json or text")
	}
	if c.defaultFrom != "" {
		if code, details := verifyd.JudgeSender(c.defaultFrom); code != "" {
			return nil, usagef("--default-from %q: %s", c.defaultFrom, details)
		}
	}
	return c, nil
}

// minLease is the shortest --delivery-lease serve takes.
const minLease = time.Second

// listenHint is what to do when an address cannot be listened on: it is
// taken, or not this machine's.
const listenHint = "stop what listens there or choose another address (HOST:PORT of this machine; port 0 picks a free one)"

// checkAddr reports whether addr is a listen address, HOST:PORT.
func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want HOST:PORT, such as 127.0.0.1:8080")
	}
	if _, err := net.LookupPort("tcp", port); err != nil {
		return fmt.Errorf("port %q is not a port number (0 to 65535)", port)
	}
	return nil
}

// sender is what serve needs of a verifyd.Sender: the SMPP client also
// has to be started and stopped.
type sender interface {
	verifyd.Sender
	Close(ctx context.Context) error
}

// inboxSender adapts the inbox, which has nothing to close.
type inboxSender struct{ *inbox.Sender }

func (inboxSender) Close(context.Context) error { return nil }

func serve(ctx context.Context, args []string, e *env) (err error) {
	c, err := parseServe(args, e)
	if err != nil {
		return err
	}
	logs := newLineWriter(e.stderr)
	defer logs.Close()
	var logger *slog.Logger
	if c.logFormat == "text" {
		logger = slog.New(slog.NewTextHandler(logs, nil))
	} else {
		logger = slog.New(slog.NewJSONHandler(logs, nil))
	}
	// A signal during start-up cuts the step under way short (opening the
	// database, migrating it): that is the stop that was asked for, not a
	// failure, so it exits 0 like a stop after the start. A step that
	// failed on its own still fails.
	defer func() {
		if err != nil && ctx.Err() != nil && errors.Is(err, context.Canceled) {
			logger.Info("verifyd stopped during start-up", "cause", context.Cause(ctx).Error())
			err = nil
		}
	}()

	key, err := serverKey(c, e)
	if err != nil {
		return err
	}
	keyring, err := otp.NewKeyring(key)
	if err != nil {
		return err
	}
	// The certificate is read now, so that a missing or bad one fails the
	// start instead of the listener just after it announced HTTPS.
	var tlsConfig *tls.Config
	if c.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(c.tlsCert, c.tlsKey)
		if err != nil {
			return fmt.Errorf("--tls-cert %s, --tls-key %s: %w (want a PEM certificate chain and its private key)", c.tlsCert, c.tlsKey, err)
		}
		tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	// The SMSC's CA file likewise: the client reads it only when it dials,
	// and would retry a bind that cannot succeed for ever. It reads it
	// again at each bind, so a renewed file is taken without a restart.
	if c.smpp.CAFile != "" {
		if err := checkCAFile(c.smpp.CAFile); err != nil {
			return fmt.Errorf("--sms: %w (want a PEM file of the certificates that sign the SMSC's)", err)
		}
	}
	store, err := openStore(ctx, c.db)
	if err != nil {
		return fmt.Errorf("opening the database: %w", err)
	}
	defer store.Close()
	if err := bindServerKey(ctx, store, keyring, c.replaceKey, logger); err != nil {
		return err
	}

	// Listen before anything starts, so that a taken address fails at once.
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return fmt.Errorf("--addr: %w; %s", err, listenHint)
	}
	defer ln.Close() // after Shutdown, a no-op; before it, on an early error, the release

	var devUser, devSecret string
	if c.dev {
		if devUser, devSecret, err = devAccount(ctx, store, c, e); err != nil {
			return err
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	if s, ok := store.(*sqlite.Store); ok {
		m.WatchSQLite(s.WriteStats)
	}
	// The worker and the sender's receipts go through the same counting
	// wrapper of the store.
	msgs := m.Messages(store)

	metricsHandler := metrics.Handler(reg)
	var metricsSrv *nethttp.Server
	if c.metricsAddr != "" {
		mln, err := net.Listen("tcp", c.metricsAddr)
		if err != nil {
			return fmt.Errorf("--metrics-addr: %w; %s", err, listenHint)
		}
		metricsSrv = newHTTPServer(metricsListener(metricsHandler, logger), logger)
		go metricsSrv.Serve(mln)
		logger.Info("metrics listening", "url", "http://"+mln.Addr().String()+"/metrics")
		metricsHandler = nil     // not on the API listener as well
		defer metricsSrv.Close() // on an early error; after Shutdown, a no-op
	}

	// The sender starts last: nothing after it can fail before the server
	// runs, so it is always closed in order below.
	// The Kannel sender's delivery reports come back to the API (receipts),
	// and go through the same counting wrapper as SMPP receipts.
	snd, receipts, err := startSender(ctx, c, store, msgs, keyring, m, e, logger)
	if err != nil {
		return err
	}

	worker := delivery.New(delivery.Config{
		Store:  msgs,
		Sender: snd,
		Opener: keyring,
		Now:    e.now,
		Logger: logger,
		Lease:  c.deliveryLease,
	})
	handler := http.NewServer(http.Config{
		Store:          store,
		Auth:           auth.NewChecker(store, e.now, 30*time.Second),
		Keyring:        keyring,
		Lookup:         phone.Lookup{},
		Now:            e.now,
		Rand:           e.random,
		Logger:         logger,
		DefaultFrom:    c.defaultFrom,
		Charset:        c.smpp.Charset,
		Dev:            c.dev,
		InboxHosts:     inboxHosts(c.addr),
		TrustedProxies: c.trustedProxies,
		Ready: func(ctx context.Context) error {
			if err := store.Ping(ctx); err != nil {
				return err
			}
			return snd.Ready()
		},
		Wake:     worker.Wake,
		Observer: m,
		Metrics:  metricsHandler,
		Receipts: receipts,
		Recorder: msgs,
	})

	srv := newHTTPServer(handler, logger)
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
		srv.TLSConfig = tlsConfig
	}
	url := fmt.Sprintf("%s://%s", scheme, ln.Addr())

	workerCtx, stopWorker := context.WithCancel(context.WithoutCancel(ctx))
	var background sync.WaitGroup
	background.Go(func() { worker.Run(workerCtx) })
	background.Go(func() { maintain(workerCtx, store, e.now, logger, m) })

	served := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			served <- srv.ServeTLS(ln, "", "") // the certificate is in TLSConfig
		} else {
			served <- srv.Serve(ln)
		}
	}()
	note := "plain HTTP: put a TLS-terminating proxy in front of it"
	if c.tlsCert != "" {
		note = "HTTPS, TLS 1.2 and newer"
	}
	logger.Info("verifyd listening", "url", url, "transport", note, "db", c.db.kind, "sms", smsKind(c.sms), "dev", c.dev)
	if smsKind(c.sms) == "inbox" && !c.dev {
		// The default sender: a server set up without --sms would answer
		// every create 202 and record every message delivered.
		logger.Warn("no message reaches a phone: --sms is inbox, which keeps messages for the dev inbox (served only with --dev); " +
			"set --sms smpp://... or a Kannel sendsms URL, http(s)://..., to deliver codes")
	}
	if c.dev {
		gateway := ""
		switch smsKind(c.sms) {
		case "smpp":
			gateway = "the SMSC at " + c.smpp.Addr
		case "kannel":
			gateway = "the Kannel gateway at " + c.kannel.Endpoint
		}
		printDevBanner(e, url, devUser, devSecret, gateway)
		if a, ok := ln.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
			// The inbox needs no password and shows every code: fine on a
			// developer's loopback, a leak on an address others reach.
			logger.Warn("dev mode on an address other machines can reach: anyone who reaches it can read every code in the inbox; listen on 127.0.0.1, or drop --dev",
				"addr", ln.Addr().String())
		}
	}
	if e.started != nil {
		e.started(url)
	}

	// The stop's line says what stopped it (which signal), for the
	// operator reading the log after the fact.
	var cause error
	select {
	case err = <-served:
		// The listener failed on its own: still stop the rest cleanly.
		cause = err
	case <-ctx.Done():
		err, cause = nil, context.Cause(ctx)
	}
	logger.Info("verifyd stopping", "cause", cause.Error(), "timeout", c.shutdownTimeout)
	deadline, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	// The requests get the timeout less a share kept for the sender: a
	// client holding a request to the end would otherwise leave it no time
	// for the answers to its submits in flight and its unbind, and a bind
	// dropped without an unbind can keep the carrier refusing the next
	// start's bind for a while.
	requests, cancelRequests := context.WithTimeout(deadline, c.shutdownTimeout-senderShare(c.shutdownTimeout))
	defer cancelRequests()
	if serr := srv.Shutdown(requests); serr != nil {
		logger.Warn("requests still running at the shutdown deadline", "err", serr)
	}
	if metricsSrv != nil {
		metricsSrv.Shutdown(requests)
	}
	// Stop claiming, then close the sender: it refuses new submits (those
	// messages stay queued for the next start), lets the submits already
	// with the carrier get their answers, and unbinds. The worker records
	// every outcome before it returns.
	stopWorker()
	if cerr := snd.Close(deadline); cerr != nil {
		logger.Warn("closing the sender", "err", cerr)
	}
	background.Wait()
	logger.Info("verifyd stopped")
	if errors.Is(err, nethttp.ErrServerClosed) {
		err = nil
	}
	return err
}

// checkCAFile reports whether path holds at least one PEM certificate.
func checkCAFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("CA file: %w", err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(b) {
		return fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return nil
}

// senderShare is the part of a graceful stop's time kept for closing the
// sender: a quarter, at most 5 s (an SMSC answers an unbind in
// milliseconds; what is left waits for the responses to submits in flight).
func senderShare(timeout time.Duration) time.Duration {
	return min(timeout/4, 5*time.Second)
}

// startSender starts the sender --sms names: the dev inbox, a Kannel
// gateway, or an SMPP client binding in the background. SMPP receipts go to
// receipts; Kannel's come to the API, read by the ReceiptReader returned
// (nil when the Kannel URL asks for none, or for the other senders).
func startSender(ctx context.Context, c *serveConfig, store verifyd.Store, receipts verifyd.ReceiptRecorder,
	keyring *otp.Keyring, m *metrics.Metrics, e *env, logger *slog.Logger) (sender, http.ReceiptReader, error) {
	switch smsKind(c.sms) {
	case "inbox":
		return inboxSender{inbox.New(store, keyring, e.now)}, nil, nil
	case "kannel":
		k, err := kannel.New(c.kannel, kannel.Options{Signer: keyring, Now: e.now, Rand: e.random})
		if err != nil {
			return nil, nil, err
		}
		logger.Info("Kannel sender", "gateway", c.kannel.Redacted(), "receipts", c.kannel.Receipts != "")
		if c.kannel.Receipts == "" {
			return k, nil, nil
		}
		return k, k, nil
	}
	cfg := c.smpp
	client := smpp.NewClient(cfg, receipts, logger)
	m.WatchSMPP(client.Stats)
	// Close, not the signal, ends the binds: it unbinds in order.
	client.Start(context.WithoutCancel(ctx))
	logger.Info("SMPP sender", "smsc", cfg.Redacted())
	return client, nil, nil
}

// inboxHosts is the host of addr when it is a name: a developer who serves
// --dev on devbox.lan:8080 opens the inbox by that name, which the inbox
// would otherwise refuse as one a page elsewhere could rebind.
func inboxHosts(addr string) []string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return nil
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	return []string{host}
}

// smsKind names the sender --sms asks for by its scheme (in any case, as
// URL schemes are); "" for none known.
func smsKind(s string) string {
	if s == "inbox" {
		return "inbox"
	}
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		return ""
	}
	switch strings.ToLower(scheme) {
	case "smpp", "smpps":
		return "smpp"
	case "http", "https":
		return "kannel"
	}
	return ""
}

// serverKey finds the server key: VERIFYD_SECRET_KEY, --secret-key-file,
// or in dev mode a key kept beside the SQLite database (made once).
func serverKey(c *serveConfig, e *env) ([]byte, error) {
	v := e.getenv("VERIFYD_SECRET_KEY")
	if v != "" && c.secretKeyFile != "" {
		// Taking one silently would serve with a key the operator did not
		// mean: stored codes and texts would not open.
		return nil, usagef("both VERIFYD_SECRET_KEY and --secret-key-file give a server key; unset one of them")
	}
	if v != "" {
		key, err := otp.ParseKey(v)
		if err != nil {
			return nil, fmt.Errorf("VERIFYD_SECRET_KEY: %w", err)
		}
		return key, nil
	}
	if c.secretKeyFile != "" {
		b, err := os.ReadFile(c.secretKeyFile)
		if err != nil {
			return nil, fmt.Errorf("--secret-key-file: %w; it must name a readable file holding a key from 'verifyd keygen' (or set VERIFYD_SECRET_KEY)", err)
		}
		key, err := otp.ParseKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("--secret-key-file %s: %w", c.secretKeyFile, err)
		}
		return key, nil
	}
	if !c.dev {
		return nil, errors.New("no server key: set VERIFYD_SECRET_KEY or --secret-key-file to a key from 'verifyd keygen' (or use --dev to try verifyd out)")
	}
	if c.db.kind != "sqlite" {
		return nil, errors.New("dev mode keeps its key beside a SQLite database; with PostgreSQL set VERIFYD_SECRET_KEY (from 'verifyd keygen')")
	}
	path := c.db.dsn + ".key"
	if b, err := os.ReadFile(path); err == nil {
		key, err := otp.ParseKey(string(b))
		if err != nil {
			return nil, fmt.Errorf("dev key %s: %w", path, err)
		}
		return key, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	hex, err := otp.GenerateKey(e.random)
	if err != nil {
		return nil, err
	}
	if err := writeNew(path, hex+"\n"); err != nil {
		// The key is the first file dev mode writes beside the database:
		// say what to check, as opening the database would.
		if dir := filepath.Dir(path); !isDir(dir) {
			return nil, fmt.Errorf("keeping the dev key: %w; the directory %s does not exist: create it, or give --db another path", err, dir)
		}
		if werr := checkWritable(c.db.dsn); werr != nil {
			return nil, fmt.Errorf("keeping the dev key: %w; %v: give this user the right to, or give --db another path", err, werr)
		}
		return nil, fmt.Errorf("keeping the dev key: %w", err)
	}
	return otp.ParseKey(hex)
}

// writeNew writes a private file that must not exist yet, so that two
// servers starting at once cannot overwrite each other's key.
func writeNew(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// newHTTPServer is the http.Server of every listener serve opens (the API
// and --metrics-addr), with a deadline on each phase of a connection: a
// client that sends its request slowly, stops reading its answer, or keeps
// an idle connection open cannot hold a connection, and its goroutine and
// buffers, for ever.
func newHTTPServer(h nethttp.Handler, logger *slog.Logger) *nethttp.Server {
	return &nethttp.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// bindServerKey refuses a server key other than the one the database was
// written under: under it every stored code's MAC fails (a right code
// answered CodeNotVerified, an attempt used up) and every queued text
// cannot be opened. --replace-server-key takes the new key on purpose, for
// a key that leaked.
func bindServerKey(ctx context.Context, store verifyd.Store, keyring *otp.Keyring, replace bool, logger *slog.Logger) error {
	err := store.BindServerKey(ctx, keyring.Fingerprint(), replace)
	if verifyd.ErrorCode(err) == verifyd.ECONFLICT {
		return errors.New("the server key is not the one this database was written under: start with that key " +
			"(VERIFYD_SECRET_KEY or --secret-key-file), or add --replace-server-key to make this one the database's " +
			"(requests pending under the old key then cannot be verified, and their queued texts fail)")
	}
	if err != nil {
		return fmt.Errorf("checking the server key against the database: %w", err)
	}
	if replace {
		logger.Warn("the database now takes this server key; requests pending under the one before cannot be verified")
	}
	return nil
}

// metricsListener is the handler of the --metrics-addr listener: GET /metrics
// alone, under the API's wire rules (paths, credentials in the query, JSON
// 404 and 405), as on the API's listener.
func metricsListener(metrics nethttp.Handler, logger *slog.Logger) nethttp.Handler {
	return http.NewMetricsServer(metrics, logger)
}
