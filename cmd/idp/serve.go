package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/config"
	loginui "github.com/caf-extranet/idp/login-ui"
	"github.com/caf-extranet/idp/mail"
	"github.com/caf-extranet/idp/provider"
	"github.com/caf-extranet/idp/storage"
)

// mailLease is how long a sender holds the mails it claimed, idp serve's
// and the admin commands' alike: it starts no send after the first half,
// and config holds smtp.timeout under that half, so that no send outlives
// the hold and another sender never takes the same mail again.
const mailLease = 2 * config.MaxSMTPTimeout

// shutdownGrace bounds how long in-flight requests may finish after SIGTERM.
const shutdownGrace = 20 * time.Second

func cmdServe(ctx context.Context, args, environ []string, stdout, stderr io.Writer) error {
	fs, configPath := newFlagSet("serve", "serve [--config FILE]", stdout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := loadConfig(*configPath, environ)
	if err != nil {
		return err
	}
	log := newLogger(c, stderr)
	if limit, set := memoryLimit(c, environ); set {
		debug.SetMemoryLimit(limit)
		log.Info("memory limit set", "bytes", limit)
	}
	srv, err := newServer(ctx, c, time.Now, log)
	if err != nil {
		return err
	}
	defer srv.store.Close()
	// The OIDC library logs only through slog.Default: pointing it at our
	// logger makes its lines structured too. Only the process's entry point
	// does this; everything else gets its logger passed in.
	slog.SetDefault(srv.log)
	return srv.run(ctx, stdout)
}

// server is everything `idp serve` runs: the HTTP handler and the workers.
type server struct {
	cfg     config.Config
	log     *slog.Logger
	store   migratingStore
	handler http.Handler
	// adminHandler serves /metrics and /debug/pprof on http.admin_listen.
	adminHandler http.Handler
	provider     *provider.Provider
	accounts     *account.Service
	sender       *mail.Sender
	janitor      *janitor
	metrics      *metrics
	// certCheckEvery: how often the TLS files are looked at for a renewal.
	certCheckEvery time.Duration
}

// newServer builds the whole application from the configuration, on the
// database it migrates first.
func newServer(ctx context.Context, c config.Config, now func() time.Time, log *slog.Logger) (*server, error) {
	store, err := openMigrated(ctx, c.DatabaseURL)
	if err != nil {
		return nil, err
	}
	s, err := newServerOn(ctx, c, store, now, log)
	if err != nil {
		store.Close()
		return nil, err
	}
	return s, nil
}

// newServerOn builds the application on an open store, which the caller
// closes: `idp keys rotate` needs the provider without migrating.
func newServerOn(ctx context.Context, c config.Config, store migratingStore, now func() time.Time, log *slog.Logger) (*server, error) {
	log = slog.New(withRequestIDs(log.Handler()))
	s := &server{cfg: c, log: log, store: store, certCheckEvery: defaultCertCheck}
	if err := s.build(ctx, now); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *server) build(ctx context.Context, now func() time.Time) error {
	c := s.cfg
	secure := strings.HasPrefix(c.Issuer, "https://")
	cryptoKey, err := secretKey(ctx, s.store, secretCrypto, c.Secrets.CryptoKey)
	if err != nil {
		return err
	}
	kek, err := secretKey(ctx, s.store, secretKEK, c.Secrets.KeyEncryptionKey)
	if err != nil {
		return err
	}
	captchaKey, err := secretKey(ctx, s.store, secretCaptcha, "")
	if err != nil {
		return err
	}
	s.metrics = newMetrics()
	if p, ok := s.store.(interface{ Pool() *pgxpool.Pool }); ok {
		s.metrics.watchPool(p.Pool())
	}
	// Every component gets the observed store: the metrics count what
	// passes through it.
	store := &observedStore{Store: s.store, m: s.metrics}
	mailAudit := &mailAuditor{store: store, now: now, log: s.log}

	transport := smtpTransport(c)
	if transport == nil {
		transport = mail.NewFileTransport(c.MailDir(), s.log)
	}
	s.sender = mail.NewSender(store, transport, mail.SenderConfig{
		From: c.Mail.From, PollInterval: c.Mail.PollInterval, Lease: mailLease, BatchSize: 20,
		GiveUpAfter: c.Mail.GiveUpAfter, Now: now, Logger: s.log,
		OnDelivery: func(ctx context.Context, m storage.OutboxMail, outcome string) {
			s.metrics.mailDeliveries.WithLabelValues(outcome).Inc()
			mailAudit.onDelivery(ctx, m, outcome)
		},
	})
	s.accounts, err = newAccounts(c, store, now, s.log, s.sender.Wake)
	if err != nil {
		return err
	}
	s.provider, err = provider.New(ctx, store, provider.Config{
		Issuer: c.Issuer, CodeTTL: c.Tokens.CodeTTL, AccessTTL: c.Tokens.AccessTTL,
		IDTokenTTL: c.Tokens.IDTokenTTL, RefreshTTL: c.Tokens.RefreshTTL, AuthRequestTTL: c.Tokens.AuthRequestTTL,
		KeyAlgorithm: c.Keys.Algorithm, KeyRotation: c.Keys.RotationPeriod, KeyPublishAhead: c.Keys.PublishAhead,
		CryptoKey: cryptoKey, KeyEncryptionKey: kek,
		SessionCookieName: loginui.SessionCookieName(secure),
		DevMode:           issuerIsLocal(c.Issuer),
		LogoutRedirect:    strings.TrimSuffix(c.Issuer, "/") + "/login?info=logged_out",
	}, now, s.log)
	if err != nil {
		return err
	}
	proxies, err := parseProxies(c.HTTP.TrustedProxies)
	if err != nil {
		return err
	}
	ui, err := loginui.New(loginui.Deps{
		Accounts: s.accounts, AuthRequests: s.provider, Challenges: store,
		Config: loginui.Config{
			SecureCookies: secure, CaptchaLength: c.Captcha.Length, CaptchaTTL: c.Captcha.TTL,
			CaptchaTestAnswer: c.Captcha.TestAnswer, ReloginAfterChange: c.Login.ReloginAfterChange,
			PortalName: portalName, AuthRequestTTL: c.Tokens.AuthRequestTTL,
		},
		Now: now, Logger: s.log, ClientIP: proxies.clientIP, ChallengeKey: captchaKey[:],
	})
	if err != nil {
		return err
	}
	s.janitor = &janitor{store: store, now: now, log: s.log, auditRetention: c.Audit.Retention, mailRetention: 30 * 24 * time.Hour}

	r := mux.NewRouter()
	r.Use(markRoute)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) }).Methods(http.MethodGet)
	r.HandleFunc("/readyz", s.ready).Methods(http.MethodGet)
	s.adminHandler = adminRoutes(s.metrics)
	if c.HTTP.AdminListen == "" {
		r.Handle("/metrics", s.metrics.handler()).Methods(http.MethodGet)
	}
	ui.Routes(r)
	op := s.provider.Handler()
	// The browser-facing OIDC endpoints show a French page for the errors
	// the library cannot redirect to the relying application.
	// A browser whose session completes the request gets its code straight
	// from /authorize (provider.SingleSignOn).
	// Both refuse one of their parameters sent twice before anything reads
	// one of its values (provider.OneValueEach); at /end_session the
	// confirmation form's fields are among them.
	r.Handle("/authorize", ui.OAuthErrorPages(s.provider.OneValueEach(s.provider.SingleSignOn(ui, op))))
	// The library's callback would give a new code for any completed request
	// to whoever knows its id; the login pages answer the code themselves
	// (provider.Finish), so nothing leads there.
	r.Handle("/authorize/callback", http.HandlerFunc(ui.NotFound))
	r.Handle("/end_session", ui.OAuthErrorPages(s.provider.OneValueEach(ui.ConfirmLogout(op), loginui.LogoutFormFields()...)))
	// The library's answer to a path of none of its endpoints, and to a
	// page's path with another method, is a French page (ui.NotFoundPages).
	r.PathPrefix("/").Handler(ui.NotFoundPages(op)).Name(providerRouteName)
	s.handler = observe(s.log, s.metrics, proxies, loginui.SecurityHeaders(r, secure))
	return nil
}

// ready: the database answers and its schema is the one this binary expects.
func (s *server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		http.Error(w, "database unreachable", http.StatusServiceUnavailable)
		return
	}
	if err := checkSchema(ctx, s.cfg.DatabaseURL, s.store); err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ready\n"))
}

// run serves until ctx is done, then drains: in-flight requests finish, the
// mail sender finishes the message it is sending.
func (s *server) run(ctx context.Context, stdout io.Writer) error {
	if s.cfg.Captcha.TestAnswer != "" {
		s.log.Warn("captcha.test_answer is set: every CAPTCHA accepts a fixed answer; for automated tests on localhost only")
	}
	ln, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w", s.cfg.Listen, err)
	}
	var (
		adminSrv *http.Server
		adminLn  net.Listener
	)
	if a := s.cfg.HTTP.AdminListen; a != "" {
		if adminLn, err = net.Listen("tcp", a); err != nil {
			_ = ln.Close()
			return fmt.Errorf("listen %s (http.admin_listen): %w", a, err)
		}
		// No write timeout: a CPU profile or a trace streams for as long as
		// it was asked to run.
		adminSrv = &http.Server{Handler: s.adminHandler, ReadHeaderTimeout: 10 * time.Second,
			ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	}
	httpSrv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.sender.Run(workCtx) })
	wg.Go(func() { s.accounts.RunRecoveryWorker(workCtx, s.cfg.Recovery.PollInterval) })
	wg.Go(func() { s.provider.RunKeyRotator(workCtx) })
	wg.Go(func() { s.provider.RunChangeWatcher(workCtx) })
	wg.Go(func() { s.janitor.run(workCtx, 10*time.Minute) })

	errc := make(chan error, 2)
	if adminSrv != nil {
		go func() { errc <- adminSrv.Serve(adminLn) }()
		s.log.Info("idp administration endpoints", "listen", adminLn.Addr().String())
		fmt.Fprintf(stdout, "idp administration endpoints on %s (/metrics, /debug/pprof)\n", adminLn.Addr())
	}
	tlsOn := s.cfg.TLS.CertFile != ""
	go func() {
		if tlsOn {
			certs, err := newCertReloader(s.cfg.TLS.CertFile, s.cfg.TLS.KeyFile, s.certCheckEvery, s.log)
			if err != nil {
				errc <- err
				return
			}
			httpSrv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, GetCertificate: certs.get}
			errc <- httpSrv.ServeTLS(ln, "", "")
			return
		}
		errc <- httpSrv.Serve(ln)
	}()
	s.log.Info("idp serving", "listen", ln.Addr().String(), "issuer", s.cfg.Issuer, "tls", tlsOn)
	fmt.Fprintf(stdout, "idp listening on %s (issuer %s)\n", ln.Addr(), s.cfg.Issuer)

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	_ = httpSrv.Shutdown(shutdownCtx)
	if adminSrv != nil {
		_ = adminSrv.Shutdown(shutdownCtx)
	}
	stopWork()
	wg.Wait()
	s.log.Info("idp stopped")
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

// checkSchema compares the applied migrations with the embedded ones.
func checkSchema(ctx context.Context, databaseURL string, store storage.Store) error {
	v, err := store.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("schema version: %w", err)
	}
	want, err := latestMigration(databaseURL)
	if err != nil {
		return err
	}
	if v != want {
		return fmt.Errorf("schema version %d, this binary expects %d", v, want)
	}
	return nil
}

// memoryLimit is the soft memory limit the server gives the Go runtime when
// the administrator did not (GOMEMLIMIT): a baseline for the server itself
// plus what the bounded Argon2id hashes in flight need. Without it the
// garbage collector lets each hash's 19 MiB pile up between cycles, and 64
// concurrent logins would take more memory than the hashes ever hold at once.
func memoryLimit(c config.Config, environ []string) (int64, bool) {
	for _, kv := range environ {
		if strings.HasPrefix(kv, "GOMEMLIMIT=") {
			return 0, false
		}
	}
	concurrent := c.Password.Hash.MaxConcurrent
	if concurrent <= 0 {
		concurrent = runtime.NumCPU()
	}
	const baseline = 24 << 20
	return baseline + 2*int64(concurrent)*int64(c.Password.Hash.MemoryKiB)<<10, true
}
