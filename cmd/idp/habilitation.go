package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/config"
	"github.com/caf-extranet/idp/storage"
)

const habilitationUsage = `Usage: idp habilitation <subcommand> [flags]

Subcommands:
  grant   --email E --client C [--role R]... [--until DATE] [--by NAME]
          creates or replaces the agent's habilitation for the application;
          DATE is YYYY-MM-DD (valid through that day, Paris time) or RFC 3339
  revoke  --email E --client C [--by NAME]
  list    [--email E | --client C]
  import  --file F.csv [--by NAME]   columns: email,client,roles,until
          (roles separated by ';', until optional); every problem is listed
          with its line, two rows for one agent and one application
          included, and nothing is imported if a row is wrong; the file
          is granted in one transaction, whole or not at all

Every change is written to the audit trail with who made it (--by, default
the operating-system user).
`

func cmdHabilitation(ctx context.Context, args, environ []string, stdout io.Writer) error {
	sub, rest, err := subcommand("habilitation", args, stdout, habilitationUsage)
	if err != nil {
		return err
	}
	// Each subcommand defines the flags it uses, and only those.
	fs, configPath := newFlagSet("habilitation "+sub, "habilitation "+sub+" [flags]", stdout)
	emailFlag := func() *string { return fs.String("email", "", "the agent's e-mail address") }
	clientFlag := func() *string { return fs.String("client", "", "the relying application's client id") }
	byFlag := func() *string {
		return fs.String("by", osUser(), "who makes the change (recorded in the audit trail)")
	}
	switch sub {
	case "grant":
		email, clientID, by := emailFlag(), clientFlag(), byFlag()
		var roles listFlag
		fs.Var(&roles, "role", "a role in the application (repeatable)")
		until := fs.String("until", "", "last day of validity (YYYY-MM-DD) or an RFC 3339 time")
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		// Checked before the database is opened: a wrong command line
		// creates or migrates nothing.
		now := time.Now()
		if _, _, problems := checkGrant(*email, *clientID, roles, *until, *by, now); len(problems) > 0 {
			return &usageError{"habilitation grant: " + strings.Join(problems, "; ")}
		}
		return withStore(ctx, *configPath, environ, func(_ config.Config, s migratingStore) error {
			h, err := buildHabilitation(ctx, s, *email, *clientID, roles, *until, *by, now)
			if err != nil {
				return err
			}
			if err := s.GrantHabilitation(ctx, h); err != nil {
				return err
			}
			auditHabilitation(ctx, s, "admin.habilitation_granted", h, *by)
			fmt.Fprintf(stdout, "habilitation granted: %s → %s\n", storage.NormaliseEmail(*email), h.ClientID)
			return nil
		})
	case "revoke":
		email, clientID, by := emailFlag(), clientFlag(), byFlag()
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if problems := append(checkAgentAndClient(*email, *clientID), checkBy(*by)...); len(problems) > 0 {
			return &usageError{"habilitation revoke: " + strings.Join(problems, "; ")}
		}
		return withStore(ctx, *configPath, environ, func(_ config.Config, s migratingStore) error {
			u, c, err := agentAndClient(ctx, s, *email, *clientID)
			if err != nil {
				return err
			}
			if err := s.RevokeHabilitation(ctx, u.ID, c.ID); err != nil {
				if errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("%s holds no habilitation for %s", u.Email, c.ID)
				}
				return err
			}
			auditHabilitation(ctx, s, "admin.habilitation_revoked", storage.Habilitation{UserID: u.ID, ClientID: c.ID}, *by)
			fmt.Fprintf(stdout, "habilitation revoked: %s → %s\n", u.Email, c.ID)
			return nil
		})
	case "list":
		email, clientID := emailFlag(), clientFlag()
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if problems := lookupProblems(*email, *clientID); len(problems) > 0 {
			return &usageError{"habilitation list: " + strings.Join(problems, "; ")}
		}
		return withStore(ctx, *configPath, environ, func(_ config.Config, s migratingStore) error {
			return listHabilitations(ctx, s, *email, *clientID, stdout)
		})
	case "import":
		by := byFlag()
		file := fs.String("file", "", "CSV file: email,client,roles,until")
		if err := parseFlags(fs, rest); err != nil {
			return err
		}
		if *file == "" {
			return &usageError{"habilitation import: --file is required"}
		}
		if problems := checkBy(*by); len(problems) > 0 {
			return &usageError{"habilitation import: " + strings.Join(problems, "; ")}
		}
		return withStore(ctx, *configPath, environ, func(_ config.Config, s migratingStore) error {
			bulk, ok := s.(storage.BulkImporter)
			if !ok {
				return errors.New("habilitation import: this database engine cannot import in bulk")
			}
			return importHabilitations(ctx, bulk, s, *file, *by, stdout)
		})
	}
	return &usageError{fmt.Sprintf("habilitation: unknown subcommand %q (see idp habilitation --help)", sub)}
}

func osUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "cli"
}

// checkAgentAndClient checks the names of an agent and an application as
// given, before any lookup.
func checkAgentAndClient(email, clientID string) []string {
	var problems []string
	if email == "" {
		problems = append(problems, "--email is required")
	}
	if clientID == "" {
		problems = append(problems, "--client is required")
	}
	return append(problems, lookupProblems(email, clientID)...)
}

// lookupProblems are the names given, when given, that nobody can have.
func lookupProblems(email, clientID string) []string {
	var problems []string
	if p := emailLookupProblem(email); email != "" && p != "" {
		problems = append(problems, p)
	}
	if p := clientIDProblem("--client", clientID); clientID != "" && p != "" {
		problems = append(problems, p)
	}
	return problems
}

// checkBy checks --by, recorded in the audit trail and in the grant:
// someone, as an agent's name is.
func checkBy(by string) []string {
	if _, err := account.ValidateText("by", by, true); err != nil {
		return []string{flagProblems(err)}
	}
	return nil
}

// agentAndClient resolves both names, checked (checkAgentAndClient),
// reporting both problems at once.
func agentAndClient(ctx context.Context, s storage.Store, email, clientID string) (storage.User, storage.Client, error) {
	var problems []string
	u, uerr := s.GetUserByEmail(ctx, email)
	c, cerr := s.GetClient(ctx, clientID)
	for _, e := range []struct {
		err  error
		what string
	}{{uerr, "no user with e-mail " + storage.NormaliseEmail(email)}, {cerr, "no client with id " + clientID}} {
		switch {
		case errors.Is(e.err, storage.ErrNotFound):
			problems = append(problems, e.what)
		case e.err != nil:
			return u, c, e.err
		}
	}
	if len(problems) > 0 {
		return u, c, &unknownNamesError{problems}
	}
	return u, c, nil
}

// unknownNamesError: the agent, the application or both do not exist.
type unknownNamesError struct{ problems []string }

func (e *unknownNamesError) Error() string { return strings.Join(e.problems, "; ") }

// parseUntil reads the last day of validity: a date means through the end
// of that day in Paris, where the agents work.
func parseUntil(v string, now time.Time) (*time.Time, error) {
	if v == "" {
		return nil, nil
	}
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		paris = time.FixedZone("CET", 3600)
	}
	var t time.Time
	if d, err := time.ParseInLocation("2006-01-02", v, paris); err == nil {
		t = d.AddDate(0, 0, 1)
	} else if t, err = time.Parse(time.RFC3339, v); err != nil {
		return nil, fmt.Errorf("--until %q: not a date (YYYY-MM-DD) nor an RFC 3339 time", v)
	}
	if !t.After(now) {
		return nil, fmt.Errorf("--until %q is in the past", v)
	}
	t = t.UTC()
	return &t, nil
}

// checkGrant checks a habilitation as given, before any lookup: the
// command refuses a wrong command line before it opens the database. It
// returns the roles trimmed and the end of validity, or the problems.
func checkGrant(email, clientID string, roles []string, until, by string, now time.Time) ([]string, *time.Time, []string) {
	problems := checkAgentAndClient(email, clientID)
	end, err := parseUntil(until, now)
	if err != nil {
		problems = append(problems, err.Error())
	}
	clean := make([]string, 0, len(roles))
	for _, r := range roles {
		r = strings.TrimSpace(r)
		if !validRole(r) {
			problems = append(problems, fmt.Sprintf("--role %q: 1 to 64 characters of UTF-8, no spaces, commas, semicolons or control characters", r))
			continue
		}
		clean = append(clean, r)
	}
	return clean, end, append(problems, checkBy(by)...)
}

// validRole: a role goes into ID tokens and is listed ';'-separated.
func validRole(r string) bool {
	return r != "" && len(r) <= 64 && utf8.ValidString(r) && !strings.ContainsFunc(r, func(c rune) bool {
		return c == ',' || c == ';' || unicode.IsSpace(c) || unicode.In(c, unicode.Cc, unicode.Cf)
	})
}

// buildHabilitation checks a habilitation (checkGrant) and resolves its
// agent and application; every problem at once.
func buildHabilitation(ctx context.Context, s storage.Store, email, clientID string, roles []string, until, by string, now time.Time) (storage.Habilitation, error) {
	clean, end, problems := checkGrant(email, clientID, roles, until, by, now)
	var u storage.User
	var c storage.Client
	if len(checkAgentAndClient(email, clientID)) == 0 { // else among the problems
		var err error
		var unknown *unknownNamesError
		u, c, err = agentAndClient(ctx, s, email, clientID)
		switch {
		case errors.As(err, &unknown):
			problems = append(unknown.problems, problems...)
		case err != nil:
			return storage.Habilitation{}, err // the database's, not the habilitation's
		}
	}
	if len(problems) > 0 {
		return storage.Habilitation{}, errors.New(strings.Join(problems, "; "))
	}
	return storage.Habilitation{UserID: u.ID, ClientID: c.ID, Roles: clean, Until: end, GrantedAt: now, GrantedBy: by}, nil
}

func auditHabilitation(ctx context.Context, s storage.Store, typ string, h storage.Habilitation, by string) {
	u, _ := s.GetUser(ctx, h.UserID)
	auditAdmin(ctx, s, typ, u, habilitationDetail(h, by))
}

// habilitationDetail is the audit trail's account of h, changed by by.
func habilitationDetail(h storage.Habilitation, by string) string {
	detail := fmt.Sprintf("client=%s by=%s", h.ClientID, by)
	if len(h.Roles) > 0 {
		detail += " roles=" + strings.Join(h.Roles, ";")
	}
	if h.Until != nil {
		detail += " until=" + h.Until.Format(time.RFC3339)
	}
	return detail
}

// auditAdmin records an administrative action. A failure to record is
// reported but does not undo the action, which has happened.
func auditAdmin(ctx context.Context, s storage.Store, typ string, u storage.User, detail string) {
	if err := s.AppendAudit(ctx, adminEvent(typ, u, detail)); err != nil {
		fmt.Fprintln(os.Stderr, "idp: warning: audit event not recorded:", err)
	}
}

// adminEvent is the audit event of an administrative action on u (none when
// u is the zero User).
func adminEvent(typ string, u storage.User, detail string) storage.AuditEvent {
	return storage.AuditEvent{Time: time.Now(), Type: typ, UserID: u.ID, Email: u.Email,
		ClientIP: adminMeta.ClientIP, UserAgent: adminMeta.UserAgent, Detail: detail}
}

func listHabilitations(ctx context.Context, s storage.Store, email, clientID string, stdout io.Writer) error {
	f := storage.HabilitationFilter{ClientID: clientID}
	if email != "" {
		u, err := s.GetUserByEmail(ctx, email)
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("no user with e-mail %s", storage.NormaliseEmail(email))
		}
		if err != nil {
			return err
		}
		f.UserID = u.ID
	}
	if clientID != "" {
		if _, err := s.GetClient(ctx, clientID); errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("no client with id %s", clientID)
		}
	}
	hs, err := s.ListHabilitations(ctx, f)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EMAIL\tCLIENT\tROLES\tUNTIL\tGRANTED BY")
	for _, h := range hs {
		u, _ := s.GetUser(ctx, h.UserID)
		until := "-"
		if h.Until != nil {
			until = h.Until.Format(time.RFC3339)
			if !h.Until.After(time.Now()) {
				until += " (ended)"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.Email, h.ClientID, strings.Join(h.Roles, ";"), until, h.GrantedBy)
	}
	return tw.Flush()
}

// habilitationHeader is the header row of `habilitation import`'s file.
const habilitationHeader = "email,client,roles,until"

// importHabilitations validates every row first and grants nothing if one is
// wrong, with each problem's line number. The rows are then granted in one
// transaction: a failure while granting (a database error, an agent or an
// application removed meanwhile, an interrupted command) grants none of
// them either.
func importHabilitations(ctx context.Context, bulk storage.BulkImporter, s storage.Store, path, by string, stdout io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, header, err := readCSVHeader(f)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("%s: reading the header row: %w", path, err)
	}
	if got := strings.Join(header, ","); got != habilitationHeader {
		return fmt.Errorf("%s: the first line must be the header %s, not %q", path, habilitationHeader, got)
	}
	now := time.Now()
	var hs []storage.Habilitation
	var emails []string // hs[i]'s agent's, for the audit trail
	var problems []string
	// A second row for an agent and an application would replace the
	// first: the file is refused instead, for its author to say which.
	// E-mails are compared as the store compares them.
	first := map[[2]string]int{} // (normalised e-mail, client id) → line
	for {
		row, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			if p := csvProblem(err); p != nil {
				problems = append(problems, p.String()) // as user import: every line's problem
				continue
			}
			return fmt.Errorf("%s: nothing imported: %w", path, err)
		}
		line, _ := r.FieldPos(0)
		if len(row) != 4 {
			problems = append(problems, fmt.Sprintf("line %d: want 4 columns, got %d", line, len(row)))
			continue
		}
		var msgs []string
		if pair := [2]string{storage.NormaliseEmail(row[0]), row[1]}; pair[0] != "" && pair[1] != "" {
			if l, dup := first[pair]; dup {
				msgs = append(msgs, fmt.Sprintf("%s → %s already on line %d", pair[0], pair[1], l))
			} else {
				first[pair] = line
			}
		}
		var roles []string
		if strings.TrimSpace(row[2]) != "" {
			roles = strings.Split(row[2], ";")
		}
		h, err := buildHabilitation(ctx, s, row[0], row[1], roles, strings.TrimSpace(row[3]), by, now)
		if err != nil {
			msgs = append(msgs, err.Error())
		}
		if len(msgs) > 0 {
			problems = append(problems, fmt.Sprintf("line %d: %s", line, strings.Join(msgs, "; ")))
			continue
		}
		hs = append(hs, h)
		emails = append(emails, storage.NormaliseEmail(row[0]))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s: nothing imported: %s", path, strings.Join(problems, "; "))
	}
	if err := bulk.GrantHabilitations(ctx, hs); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("%s: nothing imported: an agent or an application of the file was removed meanwhile: %w", path, err)
		}
		return fmt.Errorf("%s: nothing imported: %w", path, err)
	}
	events := make([]storage.AuditEvent, len(hs))
	for i, h := range hs {
		events[i] = adminEvent("admin.habilitation_granted", storage.User{ID: h.UserID, Email: emails[i]}, habilitationDetail(h, by))
	}
	// As auditAdmin: the habilitations are granted, recorded or not.
	if err := bulk.AppendAuditBatch(ctx, events); err != nil {
		fmt.Fprintln(os.Stderr, "idp: warning: audit events not recorded:", err)
	}
	fmt.Fprintf(stdout, "%d habilitations imported\n", len(hs))
	return nil
}
