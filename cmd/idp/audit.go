package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/caf-extranet/idp/config"
	"github.com/caf-extranet/idp/mail"
	"github.com/caf-extranet/idp/storage"
)

const auditUsage = `Usage: idp audit <subcommand> [flags]

Subcommands:
  list    [--email E] [--since D] [--limit N]
          the audit trail, newest first: time, type, e-mail, client IP,
          user agent, detail. --since takes an RFC 3339 date or time
          (2026-03-01, 2026-03-01T08:00:00+01:00) or a duration back from
          now (90m, 24h, 7d).
`

// defaultAuditLimit keeps an unfiltered listing readable.
const defaultAuditLimit = 100

func cmdAudit(ctx context.Context, args, environ []string, stdout io.Writer) error {
	sub, rest, err := subcommand("audit", args, stdout, auditUsage)
	if err != nil {
		return err
	}
	if sub != "list" {
		return &usageError{fmt.Sprintf("audit: unknown subcommand %q (see idp audit --help)", sub)}
	}
	fs, configPath := newFlagSet("audit list", "audit list [--email E] [--since D] [--limit N]", stdout)
	email := fs.String("email", "", "only the events of this e-mail address")
	since := fs.String("since", "", "only events at or after this RFC 3339 date/time, or this long ago (24h, 7d)")
	limit := decimalFlag(defaultAuditLimit)
	fs.Var(&limit, "limit", "at most this many events (1 to 10000)")
	if err := parseFlags(fs, rest); err != nil {
		return err
	}
	f := storage.AuditFilter{Email: storage.NormaliseEmail(*email), Limit: int(limit)}
	if limit < 1 || limit > 10000 {
		return &usageError{fmt.Sprintf("audit list: --limit %d: must be between 1 and 10000", limit)}
	}
	if p := emailLookupProblem(*email); p != "" {
		return &usageError{"audit list: " + p}
	}
	if *since != "" {
		if f.Since, err = parseSince(*since, time.Now()); err != nil {
			return &usageError{"audit list: --since " + err.Error()}
		}
	}
	return withStore(ctx, *configPath, environ, func(_ config.Config, s migratingStore) error {
		events, err := s.ListAudit(ctx, f)
		if err != nil {
			return err
		}
		return printAudit(stdout, events)
	})
}

// parseSince reads --since: an RFC 3339 time, a date (midnight UTC), or a
// duration back from now ("7d" is 7×24h, since time.ParseDuration has no
// days).
func parseSince(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(v)
	if days, ok := strings.CutSuffix(v, "d"); ok && err != nil {
		n, nerr := strconv.Atoi(days)
		if nerr == nil && n >= 0 && n <= 36500 {
			d, err = time.Duration(n)*24*time.Hour, nil
		}
	}
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("%q: want an RFC 3339 date or time (2026-03-01, 2026-03-01T08:00:00Z) or a duration (24h, 7d)", v)
	}
	return now.Add(-d), nil
}

// printAudit writes the events as a table. Every field is cleaned of
// control characters: a user agent is whatever a client sent, and must not
// drive the administrator's terminal nor break the columns.
func printAudit(w io.Writer, events []storage.AuditEvent) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tTYPE\tEMAIL\tCLIENT IP\tUSER AGENT\tDETAIL")
	for _, e := range events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.UTC().Format(time.RFC3339),
			cell(e.Type), cell(e.Email), cell(e.ClientIP), cell(e.UserAgent), cell(e.Detail))
	}
	return tw.Flush()
}

// cell makes a value safe for one table cell: controls (tabs, newlines,
// escape sequences) and invisible format characters (bidirectional
// overrides that would reorder the line) become '?', and an empty value a
// dash.
func cell(s string) string {
	if s == "" {
		return "-"
	}
	return strings.Map(func(r rune) rune {
		if unicode.In(r, unicode.Cc, unicode.Cf) || r == unicode.ReplacementChar {
			return '?'
		}
		return r
	}, s)
}

// mailAuditor records in the audit trail that a provisional password mail
// left (or could not leave) the outbox: the helpdesk can then tell an agent
// whether "the mail never came" is ours or their mailbox's.
type mailAuditor struct {
	store storage.Store
	now   func() time.Time
	log   *slog.Logger
}

// onDelivery is wired as mail.SenderConfig.OnDelivery.
func (a *mailAuditor) onDelivery(ctx context.Context, m storage.OutboxMail, outcome string) {
	if m.Subject != mail.SubjectPassword {
		return // only mails carrying a provisional password are audited
	}
	typ := ""
	switch outcome {
	case mail.DeliverySent:
		typ = "provisional.mailed"
	case mail.DeliveryFailed:
		typ = "provisional.mail_failed"
	default:
		return // a deferred attempt is retried: its outcome comes later
	}
	e := storage.AuditEvent{Time: a.now(), Type: typ, Email: m.To, Detail: "mail " + m.ID}
	if u, err := a.store.GetUserByEmail(ctx, m.To); err == nil {
		e.UserID = u.ID
	} else if !errors.Is(err, storage.ErrNotFound) {
		a.log.WarnContext(ctx, "audit: looking up mail recipient", "mail_id", m.ID, "err", err)
	}
	if err := a.store.AppendAudit(ctx, e); err != nil {
		a.log.ErrorContext(ctx, "audit event lost", "type", typ, "mail_id", m.ID, "err", err)
	}
}

// auditConsequences is the store the account service gets (newAccounts):
// the contract ends every session and revokes every token of an agent in
// the same transaction as a password change (ChangePassword) or a disable
// (SetUserDisabled). The trail records that consequence as an event of its
// own, "sessions.revoked", right after the event of its cause, whose time,
// agent, client IP and user agent it copies; a search for revocations then
// finds them all.
type auditConsequences struct{ storage.Store }

// revocationNotes are the causes of a "sessions.revoked" event.
var revocationNotes = map[string]string{
	"password.changed":    "password changed: the agent's sessions ended and its tokens were revoked",
	"admin.user_disabled": "account disabled: the agent's sessions ended and its tokens were revoked",
}

func (s auditConsequences) AppendAudit(ctx context.Context, e storage.AuditEvent) error {
	if err := s.Store.AppendAudit(ctx, e); err != nil {
		return err
	}
	note, ok := revocationNotes[e.Type]
	if !ok {
		return nil
	}
	e.ID, e.Type, e.Detail = 0, "sessions.revoked", note
	return s.Store.AppendAudit(ctx, e)
}
