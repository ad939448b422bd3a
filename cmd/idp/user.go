package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/config"
	"github.com/caf-extranet/idp/mail"
	"github.com/caf-extranet/idp/storage"
)

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
	switch sub {
	case "import":
		return cmdUserImport(ctx, rest, environ, stdout)
	case "add":
		return cmdUserAdd(ctx, rest, environ, stdout)
	case "list":
		return cmdUserList(ctx, rest, environ, stdout)
	case "disable", "enable", "reset":
		return cmdUserState(ctx, sub, rest, environ, stdout)
	}
	return &usageError{fmt.Sprintf("user: unknown subcommand %q (see idp user --help)", sub)}
}

func cmdUserAdd(ctx context.Context, args, environ []string, stdout io.Writer) error {
	fs, configPath := newFlagSet("user add", "user add --email E --name N [--organisation O] [--password P]", stdout)
	email := fs.String("email", "", "the agent's e-mail address")
	name := fs.String("name", "", "display name")
	org := fs.String("organisation", "", "partner organisation")
	password := fs.String("password", "", "personal password (default: a provisional one is mailed)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	c, err := loadConfig(*configPath, environ)
	if err != nil {
		return err
	}
	pol, err := c.Password.Policy.Rules()
	if err != nil {
		return err
	}
	// Checked before the database is opened: a wrong command line creates
	// or migrates nothing.
	nu, err := account.CheckNewUser(account.NewUser{Email: *email, Name: *name, Organisation: *org, Password: *password}, pol)
	if err != nil {
		return &usageError{"user add: " + flagProblems(err)}
	}
	return withAccounts(ctx, c, func(s migratingStore, a *account.Service) error {
		u, err := a.CreateUser(ctx, nu, adminMeta)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s created (id %s)\n", u.Email, u.ID)
		if nu.Password == "" {
			deliverNow(ctx, c, s, u.Email, stdout)
		}
		return nil
	})
}

func cmdUserList(ctx context.Context, args, environ []string, stdout io.Writer) error {
	fs, configPath := newFlagSet("user list", "user list", stdout)
	if err := parseFlags(fs, args); err != nil {
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
}

// cmdUserState is user disable, enable and reset.
func cmdUserState(ctx context.Context, sub string, args, environ []string, stdout io.Writer) error {
	fs, configPath := newFlagSet("user "+sub, "user "+sub+" --email E", stdout)
	email := fs.String("email", "", "the agent's e-mail address")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *email == "" {
		return &usageError{"user " + sub + ": --email is required"}
	}
	if p := emailLookupProblem(*email); p != "" {
		return &usageError{"user " + sub + ": " + p}
	}
	c, err := loadConfig(*configPath, environ)
	if err != nil {
		return err
	}
	return withAccounts(ctx, c, func(s migratingStore, a *account.Service) error {
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

// emailLookupProblem is what is wrong with --email, given to look an agent
// up: an address no account can have, that PostgreSQL would answer with a
// raw SQLSTATE error (invalid UTF-8, NUL). Only that: the agents imported
// under older rules stay within reach.
func emailLookupProblem(email string) string {
	if utf8.ValidString(email) && !strings.ContainsRune(email, 0) {
		return ""
	}
	return fmt.Sprintf("--email %q is not a valid e-mail address", email)
}

// flagProblems words the account rules' refusals (*account.InputError,
// joined) as the flags that carried the values: "--email is required;
// --name contains control characters or invalid UTF-8".
func flagProblems(err error) string {
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	msgs := make([]string, len(errs))
	for i, e := range errs {
		var ie *account.InputError
		if errors.As(e, &ie) {
			msgs[i] = "--" + ie.Field + " " + ie.Message
		} else {
			msgs[i] = e.Error()
		}
	}
	return strings.Join(msgs, "; ")
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

// withAccounts is withStoreOf plus the account service.
func withAccounts(ctx context.Context, c config.Config, fn func(migratingStore, *account.Service) error) error {
	return withStoreOf(ctx, c, func(c config.Config, s migratingStore) error {
		log := newLogger(c, io.Discard)
		a, err := newAccounts(c, s, time.Now, log, nil)
		if err != nil {
			return err
		}
		return fn(s, a)
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
