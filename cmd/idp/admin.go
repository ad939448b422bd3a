package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/config"
	"github.com/caf-extranet/idp/mail"
	"github.com/caf-extranet/idp/storage"
)

func cmdMigrate(ctx context.Context, args, environ []string, stdout io.Writer) error {
	fs, configPath := newFlagSet("migrate", "migrate [--config FILE]", stdout)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := loadConfig(*configPath, environ)
	if err != nil {
		return err
	}
	s, err := openStore(ctx, c.DatabaseURL)
	if err != nil {
		return err
	}
	defer s.Close()
	// A schema that newer servers migrated has nothing to gain from this
	// binary's migrations, and "schema at version N" would tell the
	// operator, whom the other commands sent here, that it is now current.
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		return fmt.Errorf("schema version: %w", err)
	}
	latest, err := latestMigration(c.DatabaseURL)
	if err != nil {
		return err
	}
	if v > latest {
		return &newerSchemaError{version: v, latest: latest}
	}
	if err := s.Migrate(ctx); err != nil {
		return fmt.Errorf("applying migrations: %w", err)
	}
	if v, err = s.SchemaVersion(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "schema at version %d\n", v)
	return nil
}

// newerSchemaError: the database was migrated by a newer idp than this one.
type newerSchemaError struct{ version, latest int }

func (e *newerSchemaError) Error() string {
	return fmt.Sprintf("schema at version %d, newer than this binary (its latest migration is %d): nothing done; "+
		"run the idp of the servers that migrated it", e.version, e.latest)
}

const userUsage = `Usage: idp user <subcommand> [flags]

Subcommands:
  add      --email E --name N [--organisation O] [--password P]
           without --password, a provisional password is mailed to the agent
  list     list the agents
  disable  --email E   (ends the agent's sessions and revokes its tokens)
  enable   --email E
  reset    --email E   mail a provisional password (helpdesk)
  import   --file F.csv   load agents in bulk (header email,name,organisation[,password_hash]);
           all or nothing; agents without a hash get no mail (use reset later)
`

var adminMeta = account.Meta{ClientIP: "cli", UserAgent: "idp-cli"}

func cmdUser(ctx context.Context, args, environ []string, stdout io.Writer) error {
	sub, rest, err := subcommand("user", args, stdout, userUsage)
	if err != nil {
		return err
	}
	fs, configPath := newFlagSet("user "+sub, "user "+sub+" [flags]", stdout)
	email := fs.String("email", "", "the agent's e-mail address")
	switch sub {
	case "import":
		return cmdUserImport(ctx, rest, environ, stdout)
	case "add":
		name := fs.String("name", "", "display name")
		org := fs.String("organisation", "", "partner organisation")
		password := fs.String("password", "", "personal password (default: a provisional one is mailed)")
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		return withAccounts(ctx, *configPath, environ, func(c config.Config, s migratingStore, a *account.Service) error {
			u, err := a.CreateUser(ctx, account.NewUser{Email: *email, Name: *name, Organisation: *org, Password: *password}, adminMeta)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "user %s created (id %s)\n", u.Email, u.ID)
			if *password == "" {
				deliverNow(ctx, c, s, u.Email, stdout)
			}
			return nil
		})
	case "list":
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		return withStore(ctx, *configPath, environ, func(_ config.Config, s migratingStore) error {
			users, err := s.ListUsers(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "EMAIL\tNAME\tORGANISATION\tSTATE\tID")
			for _, u := range users {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Email, u.Name, u.Organisation, userState(u), u.ID)
			}
			return tw.Flush()
		})
	case "disable", "enable", "reset":
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if *email == "" {
			return &usageError{"user " + sub + ": --email is required"}
		}
		return withAccounts(ctx, *configPath, environ, func(c config.Config, s migratingStore, a *account.Service) error {
			var err error
			switch sub {
			case "reset":
				err = a.ResetPassword(ctx, *email, adminMeta)
			default:
				err = a.SetDisabled(ctx, *email, sub == "disable", adminMeta)
			}
			if errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("no user with e-mail %s", storage.NormaliseEmail(*email))
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "user %s: %s done\n", storage.NormaliseEmail(*email), sub)
			if sub == "reset" {
				deliverNow(ctx, c, s, storage.NormaliseEmail(*email), stdout)
			}
			return nil
		})
	}
	return &usageError{fmt.Sprintf("user: unknown subcommand %q (see idp user --help)", sub)}
}

func userState(u storage.User) string {
	switch {
	case u.Disabled:
		return "disabled"
	case u.PendingPasswordChange:
		return "pending-change"
	case u.PasswordHash == "":
		return "awaiting-first-login"
	}
	return "active"
}

// withAccounts is withStore plus the account service.
func withAccounts(ctx context.Context, configPath string, environ []string, fn func(config.Config, migratingStore, *account.Service) error) error {
	return withStore(ctx, configPath, environ, func(c config.Config, s migratingStore) error {
		log := newLogger(c, io.Discard)
		a, err := newAccounts(c, s, time.Now, log, nil)
		if err != nil {
			return err
		}
		return fn(c, s, a)
	})
}

// deliverNow sends the mails queued for to at once through the SMTP relay,
// so that the agent need not wait for idp serve's next poll; what fails
// stays in the outbox for the servers. Only to's mails, and only through
// smtp.addr: without it this machine's idp serve would write mails to files,
// but the command cannot know the servers' settings (an operator's shell
// often has only IDP_DATABASE_URL), and writing the provisional password to
// this disk would mark it sent, audit it as mailed, and the agent would
// never get it. Left pending, the servers send it as they send every mail.
func deliverNow(ctx context.Context, c config.Config, s migratingStore, to string, stdout io.Writer) {
	t := smtpTransport(c)
	if t == nil {
		fmt.Fprintln(stdout, "provisional password mail queued; idp serve will send it (no smtp.addr here)")
		return
	}
	log := newLogger(c, io.Discard)
	audit := &mailAuditor{store: s, now: time.Now, log: log}
	sender := mail.NewSender(recipientOutbox{s, to}, t, mail.SenderConfig{From: c.Mail.From, PollInterval: time.Second,
		Lease: mailLease, BatchSize: 10, GiveUpAfter: c.Mail.GiveUpAfter, Now: time.Now, Logger: log,
		OnDelivery: audit.onDelivery})
	if n, err := sender.RunOnce(ctx); err == nil && n > 0 {
		fmt.Fprintf(stdout, "provisional password mail sent through %s\n", c.SMTP.Addr)
		return
	}
	fmt.Fprintln(stdout, "provisional password mail queued; idp serve will send it")
}

// recipientOutbox is the outbox as deliverNow sees it: the mails to one
// address.
type recipientOutbox struct {
	migratingStore
	to string
}

func (o recipientOutbox) ClaimMails(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]storage.OutboxMail, error) {
	return o.ClaimMailsTo(ctx, o.to, now, lease, limit)
}

const clientUsage = `Usage: idp client <subcommand> [flags]

Subcommands:
  add     --id ID --name N --redirect-uri URI [--redirect-uri URI2]
          [--post-logout-redirect-uri URI] [--home-url URL] [--public] [--no-refresh] [--restricted]
          a confidential client's secret is printed once; only its hash is kept
  list    list the relying applications
  restrict --id ID [--open]   only habilitated agents may enter (--open: everyone again)
  remove  --id ID
`

var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func cmdClient(ctx context.Context, args, environ []string, stdout io.Writer) error {
	sub, rest, err := subcommand("client", args, stdout, clientUsage)
	if err != nil {
		return err
	}
	fs, configPath := newFlagSet("client "+sub, "client "+sub+" [flags]", stdout)
	id := fs.String("id", "", "client id")
	switch sub {
	case "add":
		name := fs.String("name", "", "display name of the application")
		var redirects, postLogout listFlag
		fs.Var(&redirects, "redirect-uri", "redirect URI, exact match (repeatable)")
		fs.Var(&postLogout, "post-logout-redirect-uri", "post-logout redirect URI (repeatable)")
		home := fs.String("home-url", "", "the application's home page, linked from the secure space")
		public := fs.Bool("public", false, "public client (no secret, PKCE required)")
		noRefresh := fs.Bool("no-refresh", false, "never issue refresh tokens to this client")
		restricted := fs.Bool("restricted", false, "only agents habilitated for it may enter (see idp habilitation)")
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		c, err := newClient(*id, *name, redirects, postLogout, *home, *public, !*noRefresh)
		if err != nil {
			return err
		}
		c.Restricted = *restricted
		secret := ""
		if !c.Public {
			b := make([]byte, 32)
			if _, err := rand.Read(b); err != nil {
				return err
			}
			secret = base64.RawURLEncoding.EncodeToString(b)
			c.SecretHash = storage.HashSecret(secret)
		}
		return withStore(ctx, *configPath, environ, func(_ config.Config, s migratingStore) error {
			c.CreatedAt = time.Now()
			if err := s.CreateClient(ctx, c); err != nil {
				if errors.Is(err, storage.ErrDuplicate) {
					return fmt.Errorf("a client with id %s already exists", c.ID)
				}
				return err
			}
			auditAdmin(ctx, s, "admin.client_added", storage.User{}, "client="+c.ID+" by="+osUser())
			fmt.Fprintf(stdout, "client %s created\n", c.ID)
			if secret != "" {
				fmt.Fprintf(stdout, "client_secret: %s\n(shown once: store it now, only its hash is kept)\n", secret)
			}
			return nil
		})
	case "list":
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		return withStore(ctx, *configPath, environ, func(_ config.Config, s migratingStore) error {
			clients, err := s.ListClients(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tTYPE\tACCESS\tREDIRECT URIS\tHOME")
			for _, c := range clients {
				typ := "confidential"
				if c.Public {
					typ = "public"
				}
				access := "open"
				if c.Restricted {
					access = "restricted"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, typ, access, strings.Join(c.RedirectURIs, " "), c.HomeURL)
			}
			return tw.Flush()
		})
	case "restrict":
		open := fs.Bool("open", false, "open the client to every active agent again")
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if *id == "" {
			return &usageError{"client restrict: --id is required"}
		}
		return withStore(ctx, *configPath, environ, func(_ config.Config, s migratingStore) error {
			if err := s.SetClientRestricted(ctx, *id, !*open); err != nil {
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no client with id %s", *id)
				}
				return err
			}
			state := "restricted to habilitated agents"
			if *open {
				state = "open to every active agent"
			}
			auditAdmin(ctx, s, "admin.client_access", storage.User{}, "client="+*id+" "+state+" by="+osUser())
			fmt.Fprintf(stdout, "client %s %s\n", *id, state)
			return nil
		})
	case "remove":
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if *id == "" {
			return &usageError{"client remove: --id is required"}
		}
		return withStore(ctx, *configPath, environ, func(_ config.Config, s migratingStore) error {
			if err := s.DeleteClient(ctx, *id); err != nil {
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no client with id %s", *id)
				}
				return err
			}
			auditAdmin(ctx, s, "admin.client_removed", storage.User{}, "client="+*id+" by="+osUser())
			fmt.Fprintf(stdout, "client %s removed\n", *id)
			return nil
		})
	}
	return &usageError{fmt.Sprintf("client: unknown subcommand %q (see idp client --help)", sub)}
}

// newClient validates a client registration; every problem at once.
func newClient(id, name string, redirects, postLogout []string, home string, public, allowRefresh bool) (storage.Client, error) {
	var problems []string
	if !clientIDPattern.MatchString(id) {
		problems = append(problems, fmt.Sprintf("--id %q: letters, digits, '.', '_' or '-', 1 to 64 characters", id))
	}
	if strings.TrimSpace(name) == "" {
		problems = append(problems, "--name is required")
	}
	if len(redirects) == 0 {
		problems = append(problems, "at least one --redirect-uri is required")
	}
	for _, u := range redirects {
		if err := checkRedirectURI(u); err != nil {
			problems = append(problems, "--redirect-uri "+err.Error())
		}
	}
	for _, u := range postLogout {
		if err := checkRedirectURI(u); err != nil {
			problems = append(problems, "--post-logout-redirect-uri "+err.Error())
		}
	}
	if home != "" {
		if err := checkRedirectURI(home); err != nil {
			problems = append(problems, "--home-url "+err.Error())
		}
	}
	if len(problems) > 0 {
		return storage.Client{}, &usageError{"client add: " + strings.Join(problems, "; ")}
	}
	return storage.Client{ID: id, Name: strings.TrimSpace(name), Public: public, RedirectURIs: redirects,
		PostLogoutRedirectURIs: postLogout, HomeURL: home, AllowRefresh: allowRefresh}, nil
}

// checkRedirectURI accepts absolute https URLs, and http ones on loopback
// hosts (development), without fragment.
func checkRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	if u.Hostname() == "" { // "https://:8443/cb": a port, no host
		return fmt.Errorf("%q has no host name", raw)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return fmt.Errorf("%q must not have a fragment", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !config.OnLoopback(raw) {
			return fmt.Errorf("%q: http is allowed only on localhost; use https", raw)
		}
	default:
		return fmt.Errorf("%q: scheme must be https (or http on localhost)", raw)
	}
	return nil
}

const keysUsage = `Usage: idp keys <subcommand> [flags]

Subcommands:
  rotate   publish a new signing key now; it signs after keys.publish_ahead
  list     list the signing keys
`

func cmdKeys(ctx context.Context, args, environ []string, stdout io.Writer) error {
	sub, rest, err := subcommand("keys", args, stdout, keysUsage)
	if err != nil {
		return err
	}
	fs, configPath := newFlagSet("keys "+sub, "keys "+sub+" [flags]", stdout)
	switch sub {
	case "rotate":
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		c, err := loadConfig(*configPath, environ)
		if err != nil {
			return err
		}
		store, err := openCurrent(ctx, c.DatabaseURL)
		if err != nil {
			return err
		}
		defer store.Close()
		srv, err := newServerOn(ctx, c, store, time.Now, newLogger(c, io.Discard))
		if err != nil {
			return err
		}
		rotated, err := srv.provider.RotateKeys(ctx, true)
		if err != nil {
			return err
		}
		if !rotated {
			return errors.New("another instance rotated the keys at the same moment; nothing done")
		}
		auditAdmin(ctx, srv.store, "admin.keys_rotated", storage.User{}, "by="+osUser())
		fmt.Fprintf(stdout, "new signing key published; it signs from %s\n", time.Now().Add(c.Keys.PublishAhead).Format(time.RFC3339))
		return nil
	case "list":
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		return withStore(ctx, *configPath, environ, func(_ config.Config, s migratingStore) error {
			keys, err := s.ListSigningKeys(ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KID\tALG\tCREATED\tSIGNS FROM")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.Algorithm, k.CreatedAt.Format(time.RFC3339), k.NotBefore.Format(time.RFC3339))
			}
			return tw.Flush()
		})
	}
	return &usageError{fmt.Sprintf("keys: unknown subcommand %q (see idp keys --help)", sub)}
}
