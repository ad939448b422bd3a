package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/config"
	"github.com/caf-extranet/idp/mail"
	"github.com/caf-extranet/idp/storage"
	"github.com/caf-extranet/idp/storage/passhash"
)

// portalName is how agents name the service in mails.
const portalName = "Portail Extranet"

// loadConfig reads the configuration: defaults, file, IDP_* environment.
func loadConfig(path string, environ []string) (config.Config, error) {
	return config.Load(path, environ)
}

// newLogger builds the structured logger; it is passed down, never global.
func newLogger(c config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Log.Level)) // validated by config
	opts := &slog.HandlerOptions{Level: level}
	if c.Log.Format == "text" {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// newAccounts builds the account service.
func newAccounts(c config.Config, store storage.Store, now func() time.Time, log *slog.Logger, wakeMailer func()) (*account.Service, error) {
	pol, err := c.Password.Policy.Rules()
	if err != nil {
		return nil, err
	}
	hasher := passhash.NewHasher(c.Password.Hash.Params(), c.Password.Hash.MaxConcurrent)
	store = auditConsequences{store}
	return account.New(store, hasher, pol, account.Config{
		ProvisionalLength:         c.Provisional.Length,
		ProvisionalTTL:            c.Provisional.TTL,
		MaxMailsPerAccountPerHour: c.Recovery.MaxMailsPerAccountPerHour,
		MaxRequestsPerIPPerHour:   c.Recovery.MaxRequestsPerIPPerHour,
		SessionIdle:               c.Session.IdleTimeout,
		SessionAbsolute:           c.Session.AbsoluteTimeout,
		Portal:                    mail.Portal{URL: strings.TrimSuffix(c.Issuer, "/") + "/login", Name: portalName},
	}, now, log, wakeMailer), nil
}

// smtpTransport is the relay smtp.* configures, or nil when smtp.addr is
// empty. idp serve then writes mails to files; the administrative commands
// leave them to idp serve (deliverNow). One builder, so that a command
// that sends does so exactly as the servers do.
func smtpTransport(c config.Config) mail.Transport {
	if c.SMTP.Addr == "" {
		return nil
	}
	return mail.NewSMTPTransport(mail.SMTPConfig{
		Addr: c.SMTP.Addr, Username: c.SMTP.Username, Password: c.SMTP.Password,
		Helo: c.SMTP.Helo, StartTLS: c.SMTP.StartTLS, Timeout: c.SMTP.Timeout,
	})
}

// issuerIsLocal tells whether the issuer's host is localhost or loopback.
func issuerIsLocal(issuer string) bool { return config.OnLoopback(issuer) }

// withStore loads the configuration and opens the store, for the
// administrative commands: its schema must be this binary's (openCurrent).
func withStore(ctx context.Context, configPath string, environ []string, fn func(config.Config, migratingStore) error) error {
	c, err := loadConfig(configPath, environ)
	if err != nil {
		return err
	}
	return withStoreOf(ctx, c, fn)
}

// withStoreOf is withStore for a command that loaded the configuration
// itself, to check its command line against it (the password policy)
// before the database is opened.
func withStoreOf(ctx context.Context, c config.Config, fn func(config.Config, migratingStore) error) error {
	store, err := openCurrent(ctx, c.DatabaseURL)
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(c, store)
}
