package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/mail"
	"github.com/caf-extranet/idp/migrations"
	"github.com/caf-extranet/idp/storage"
)

// cli runs one idp command line in-process, as an administrator's script
// would, against the database of databaseURL.
type cli struct {
	t       *testing.T
	environ []string
}

func newCLI(t *testing.T, databaseURL string) *cli {
	dir := t.TempDir()
	return &cli{t: t, environ: []string{
		"IDP_DATABASE_URL=" + databaseURL, "IDP_DATA_DIR=" + filepath.Join(dir, "data"),
	}}
}

func (c *cli) run(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(context.Background(), args, c.environ, &out, &errb)
	return code, out.String(), errb.String()
}

func (c *cli) ok(args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(args...)
	if code != 0 {
		c.t.Fatalf("idp %s: exit %d, stderr %q", strings.Join(args, " "), code, errs)
	}
	return out
}

// fails checks a non-zero exit with a one-line message containing want.
func (c *cli) fails(want string, args ...string) {
	c.t.Helper()
	code, _, errs := c.run(args...)
	if code == 0 {
		c.t.Fatalf("idp %s succeeded, want an error", strings.Join(args, " "))
	}
	if strings.Count(strings.TrimRight(errs, "\n"), "\n") != 0 || !strings.Contains(errs, want) {
		c.t.Fatalf("idp %s: stderr %q, want one line containing %q", strings.Join(args, " "), errs, want)
	}
}

func TestAdminCommands(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		c := newCLI(t, dbURL)
		c.ok("migrate")
		out := c.ok("user", "add", "--email", " Agent@Partenaire.FR ", "--name", "Claire Dupont", "--organisation", "Mairie", "--password", "secret12")
		if !strings.Contains(out, "agent@partenaire.fr") {
			t.Fatalf("user add: %q", out)
		}
		// Onboarding without a password: a provisional one is mailed.
		out = c.ok("user", "add", "--email", "nouveau@partenaire.fr", "--name", "Nouvel Agent")
		if !strings.Contains(out, "provisional password mail") {
			t.Fatalf("user add without password: %q", out)
		}
		c.fails("already exists", "user", "add", "--email", "agent@partenaire.fr", "--name", "Double")
		c.fails("not a valid e-mail", "user", "add", "--email", "pas-une-adresse", "--name", "X")
		c.fails("outside ASCII", "user", "add", "--email", "hélène@mairie.fr", "--name", "Hélène")
		c.fails("--name is required", "user", "add", "--email", "x@partenaire.fr")
		c.fails("password policy", "user", "add", "--email", "y@partenaire.fr", "--name", "Y", "--password", "short")
		c.fails("no user with e-mail", "user", "disable", "--email", "inconnu@partenaire.fr")
		c.fails("--email is required", "user", "disable")
		c.fails("unknown subcommand", "user", "frobnicate")
		c.fails("flag provided but not defined", "user", "add", "--emial", "x@y.fr")

		list := c.ok("user", "list")
		if strings.Count(list, "\n") != 3 || !strings.Contains(list, "awaiting-first-login") || strings.Contains(list, "y@partenaire.fr") {
			t.Fatalf("user list after refused commands:\n%s", list)
		}
		c.ok("user", "disable", "--email", "agent@partenaire.fr")
		if list := c.ok("user", "list"); !strings.Contains(list, "disabled") {
			t.Fatalf("not disabled:\n%s", list)
		}
		c.fails("disabled", "user", "reset", "--email", "agent@partenaire.fr")
		c.ok("user", "enable", "--email", "agent@partenaire.fr")
		c.ok("user", "reset", "--email", "agent@partenaire.fr")

		out = c.ok("client", "add", "--id", "portail-rh", "--name", "Portail RH",
			"--redirect-uri", "https://rh.example.fr/callback", "--redirect-uri", "http://localhost:3000/cb",
			"--post-logout-redirect-uri", "https://rh.example.fr/", "--home-url", "https://rh.example.fr/")
		if !strings.Contains(out, "client_secret: ") {
			t.Fatalf("confidential client without secret: %q", out)
		}
		out = c.ok("client", "add", "--id", "spa", "--name", "SPA", "--redirect-uri", "https://spa.example.fr/cb", "--public")
		if strings.Contains(out, "client_secret") {
			t.Fatalf("public client got a secret: %q", out)
		}
		c.fails("already exists", "client", "add", "--id", "spa", "--name", "SPA", "--redirect-uri", "https://spa.example.fr/cb")
		c.fails("http is allowed only on localhost", "client", "add", "--id", "x", "--name", "X", "--redirect-uri", "http://example.fr/cb")
		c.fails("http is allowed only on localhost", "client", "add", "--id", "x", "--name", "X", "--redirect-uri", "http://127.attacker.example/cb")
		c.fails("not an absolute URL", "client", "add", "--id", "x", "--name", "X", "--redirect-uri", "/relative")
		c.fails("at least one --redirect-uri", "client", "add", "--id", "x", "--name", "X")
		c.fails("--id", "client", "add", "--id", "bad id!", "--name", "X", "--redirect-uri", "https://x.fr/cb")
		c.fails("no client with id", "client", "remove", "--id", "nope")
		list = c.ok("client", "list")
		if strings.Count(list, "\n") != 3 || !strings.Contains(list, "portail-rh") || !strings.Contains(list, "public") {
			t.Fatalf("client list:\n%s", list)
		}
		c.ok("client", "remove", "--id", "spa")
		trail := c.ok("audit", "list")
		for _, typ := range []string{"admin.user_created", "admin.user_disabled", "admin.user_enabled", "admin.client_added", "admin.client_removed"} {
			if !strings.Contains(trail, typ) {
				t.Fatalf("audit trail lacks %s:\n%s", typ, trail)
			}
		}
		if strings.Contains(c.ok("client", "list"), "spa.example.fr") {
			t.Fatal("client not removed")
		}
		c.ok("keys", "rotate") // the first start creates a key, then the rotation adds one
		keys := c.ok("keys", "list")
		c.ok("keys", "rotate")
		if strings.Count(c.ok("keys", "list"), "\n") != strings.Count(keys, "\n")+1 {
			t.Fatal("keys rotate added no key")
		}
	})
}

func TestCLIErrors(t *testing.T) {
	c := newCLI(t, "sqlite:"+filepath.Join(t.TempDir(), "idp.db"))
	for _, args := range [][]string{{"--help"}, {"version"}, {"serve", "--help"}, {"user", "--help"}, {"user", "add", "--help"},
		{"client", "--help"}, {"client", "add", "--help"}, {"keys", "--help"}, {"migrate", "--help"}} {
		if code, out, _ := c.run(args...); code != 0 || out == "" {
			t.Fatalf("idp %v: exit %d, output %q", args, code, out)
		}
	}
	c.fails("unknown command", "frobnicate")
	bad := &cli{t: t, environ: []string{"IDP_LISTEN=nowhere", "IDP_ISSUER=ftp://x"}}
	bad.fails("listen", "migrate")
	bad.fails("issuer", "migrate")
	down := &cli{t: t, environ: []string{"IDP_DATABASE_URL=postgres://postgres@127.0.0.1:1/test?connect_timeout=2"}}
	down.fails("PostgreSQL", "user", "list")
}

// TestCommandsReadTheFileNamedByIDPConfig: `IDP_CONFIG=/etc/idp.yaml idp
// ...` reads that file as --config would, rather than starting on the
// defaults (SQLite in ./data) without a word.
func TestCommandsReadTheFileNamedByIDPConfig(t *testing.T) {
	dir := t.TempDir()
	invalid := writeFile(t, "invalid.yaml", "listen: not-a-host-port\nlog:\n  level: loud\n")
	c := &cli{t: t, environ: []string{"IDP_CONFIG=" + invalid}}
	c.fails("log.level", "config", "check")

	dbPath := filepath.Join(dir, "from-the-file.db")
	valid := writeFile(t, "idp.yaml", "database_url: sqlite:"+dbPath+"\ndata_dir: "+filepath.Join(dir, "data")+"\n")
	c = &cli{t: t, environ: []string{"IDP_CONFIG=" + valid}}
	if out := c.ok("config", "check"); !strings.Contains(out, "file "+valid) {
		t.Fatalf("config check does not say it read %s: %q", valid, out)
	}
	c.ok("user", "add", "--email", "claire@mairie.fr", "--name", "Claire", "--password", "secret12")
	if _, err := os.Stat(dbPath); err != nil {
		t.Fatalf("user add did not use the database_url of IDP_CONFIG's file: %v", err)
	}
}

// TestAdminCommandsLeaveTheSchemaToMigrate: only `idp migrate` (and `idp
// serve`) move an existing schema. A newer binary run for `idp user list`
// against the servers' database would otherwise migrate it, and every
// running server would answer /readyz 503; the other commands refuse a
// schema at another version, naming `idp migrate`.
func TestAdminCommandsLeaveTheSchemaToMigrate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "idp.db")
	dbURL := "sqlite:" + path
	latest := migrateAllButLast(t, path)
	version := func() int {
		t.Helper()
		s, err := openStore(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		v, err := s.SchemaVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	c := newCLI(t, dbURL)
	for _, args := range [][]string{
		{"user", "list"},
		{"user", "add", "--email", "claire@mairie.fr", "--name", "Claire", "--password", "secret12"},
		{"client", "list"},
		{"keys", "rotate"},
		{"audit", "list"},
	} {
		c.fails("idp migrate", args...)
		if v := version(); v != latest-1 {
			t.Fatalf("idp %s moved the schema from %d to %d", strings.Join(args, " "), latest-1, v)
		}
	}
	c.ok("migrate")
	if v := version(); v != latest {
		t.Fatalf("idp migrate left the schema at %d, want %d", v, latest)
	}
	c.ok("user", "list")

	// A database newer than this binary (the servers were upgraded) is
	// refused as well: this binary does not know its tables.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'from_the_future', 0)`, latest+1); err != nil {
		t.Fatal(err)
	}
	c.fails("idp migrate", "user", "list")

	// A brand-new database has no server yet: the first command sets it
	// up, so `idp user add` works on a fresh machine before `idp serve`.
	fresh := newCLI(t, "sqlite:"+filepath.Join(t.TempDir(), "fresh.db"))
	fresh.ok("user", "add", "--email", "claire@mairie.fr", "--name", "Claire", "--password", "secret12")
}

// migrateAllButLast gives the SQLite database at path every migration but
// the last, as a server of the previous version left it, and returns the
// version this binary expects.
func migrateAllButLast(t *testing.T, path string) int {
	t.Helper()
	ms, err := migrations.Load(migrations.SQLite)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT`); err != nil {
		t.Fatal(err)
	}
	for _, m := range ms[:len(ms)-1] {
		if _, err := db.Exec(m.SQL); err != nil {
			t.Fatalf("migration %d: %v", m.Version, err)
		}
		if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, 0)`, m.Version, m.Name); err != nil {
			t.Fatal(err)
		}
	}
	return len(ms)
}

// TestREADMEConfigReference keeps the README's configuration table equal to
// the configuration struct (regenerate with `go run ./cmd/idp config reference`).
func TestREADMEConfigReference(t *testing.T) {
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	const start, end = "<!-- config-reference:start -->\n", "<!-- config-reference:end -->"
	s := string(raw)
	i, j := strings.Index(s, start), strings.Index(s, end)
	if i < 0 || j < i {
		t.Fatal("README lacks the config-reference markers")
	}
	if got := s[i+len(start) : j]; got != configReference() {
		t.Fatalf("README's configuration table is stale; replace it with the output of `go run ./cmd/idp config reference`")
	}
}

// TestAdminResetWithoutSMTPLeavesTheMailToTheServers: `idp user reset` run
// where the servers' mail settings are not (an operator's shell with only
// the shared database) must not write the provisional password to its own
// disk and mark it sent: it leaves it in the outbox, and a server sends it
// with its own transport.
func TestAdminResetWithoutSMTPLeavesTheMailToTheServers(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		server := newEnv(t, dbURL, nil)
		c := newCLI(t, dbURL)
		c.ok("user", "add", "--email", "claire@mairie.fr", "--name", "Claire", "--password", "secret12")
		if out := c.ok("user", "reset", "--email", "claire@mairie.fr"); !strings.Contains(out, "idp serve will send it") {
			t.Fatalf("user reset without smtp.addr: %q", out)
		}
		pending, err := server.srv.store.ListMails(ctx, storage.MailPending, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 1 || pending[0].To != "claire@mairie.fr" {
			t.Fatalf("pending mails after the reset: %+v, want the agent's provisional password", pending)
		}
		if n := provisionalMailedEvents(t, server.srv.store, "claire@mairie.fr"); n != 0 {
			t.Fatalf("%d provisional.mailed events before any server sent the mail", n)
		}

		server.deliverMail()
		if server.provisionalPassword("claire@mairie.fr") == "" {
			t.Fatal("the server did not send the provisional password")
		}
		if n := provisionalMailedEvents(t, server.srv.store, "claire@mairie.fr"); n != 1 {
			t.Fatalf("%d provisional.mailed events once the server sent it, want 1", n)
		}
	})
}

// TestAdminResetSendsOnlyItsOwnMailThroughSMTP: with smtp.addr, `idp user
// reset` sends the mail it queued at once, as the servers would, and
// leaves the rest of the outbox to them; its delivery is audited as theirs.
func TestAdminResetSendsOnlyItsOwnMailThroughSMTP(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		ctx := context.Background()
		relay := startRelay(t)
		c := newCLI(t, dbURL)
		c.environ = append(c.environ, "IDP_SMTP_ADDR="+relay.addr)
		c.ok("user", "add", "--email", "cible@partenaire.fr", "--name", "Cible", "--password", "secret12")
		s, err := openStore(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		queued := time.Now().Add(-time.Second)
		for _, id := range []string{"other-1", "other-2"} {
			m := storage.OutboxMail{ID: id, To: id + "@partenaire.fr", Subject: mail.SubjectPassword, TextBody: "x",
				Status: storage.MailPending, NextAttemptAt: queued, CreatedAt: queued}
			if err := s.EnqueueMail(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		if out := c.ok("user", "reset", "--email", "cible@partenaire.fr"); !strings.Contains(out, "sent through "+relay.addr) {
			t.Fatalf("user reset: %q", out)
		}
		if got := relay.recipients(); len(got) != 1 || got[0] != "cible@partenaire.fr" {
			t.Fatalf("the relay received mails for %q, want only cible@partenaire.fr", got)
		}
		pending, err := s.ListMails(ctx, storage.MailPending, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(pending) != 2 {
			t.Fatalf("%d mails left pending, want the 2 of other agents", len(pending))
		}
		sent, err := s.ListMails(ctx, storage.MailSent, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(sent) != 1 || sent[0].To != "cible@partenaire.fr" {
			t.Fatalf("mails sent by the command: %+v", sent)
		}
		if n := provisionalMailedEvents(t, s, "cible@partenaire.fr"); n != 1 {
			t.Fatalf("%d provisional.mailed events for the agent, want 1", n)
		}
	})
}

func provisionalMailedEvents(t *testing.T, s storage.Store, email string) int {
	t.Helper()
	events, err := s.ListAudit(context.Background(), storage.AuditFilter{Email: email})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range events {
		if e.Type == "provisional.mailed" {
			n++
		}
	}
	return n
}

// relay is an SMTP server on a loopback port that records each envelope
// recipient of the mails it accepts.
type relay struct {
	addr string
	mu   sync.Mutex
	to   []string
}

func startRelay(t *testing.T) *relay {
	t.Helper()
	r := &relay{}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &relaySession{r: r}, nil }))
	srv.Domain = "relay.test"
	srv.ReadTimeout, srv.WriteTimeout = 5*time.Second, 5*time.Second
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = l.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		srv.Close()
		l.Close() // in case Serve has not registered it yet
		<-done
	})
	return r
}

func (r *relay) recipients() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.to)
}

type relaySession struct {
	r  *relay
	to []string
}

func (s *relaySession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *relaySession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}
func (s *relaySession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.r.mu.Lock()
	defer s.r.mu.Unlock()
	s.r.to = append(s.r.to, s.to...)
	return nil
}
func (s *relaySession) Reset()        { s.to = nil }
func (s *relaySession) Logout() error { return nil }

// TestConfiguredKeyWithSpaces: a secrets key that `idp config check`
// accepts (spaces around the base64, as a YAML block or an env file may
// leave them) also starts the server.
func TestConfiguredKeyWithSpaces(t *testing.T) {
	raw := bytes.Repeat([]byte("k"), 32)
	key, err := secretKey(context.Background(), nil, "op_crypto_key", " "+base64.StdEncoding.EncodeToString(raw)+" \n")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(key[:], raw) {
		t.Fatalf("key %x, want %x", key, raw)
	}
}

// TestConfigCheckRefusesLocalhostNamesForARemoteRelay: with only smtp.addr
// set to a real relay, the defaults would say EHLO localhost and MAIL
// FROM:<no-reply@localhost>, which Postfix refuses at RCPT (found by
// review); idp config check names both settings at once.
func TestConfigCheckRefusesLocalhostNamesForARemoteRelay(t *testing.T) {
	c := &cli{t: t, environ: []string{"IDP_ISSUER=https://services.caf.fr", "IDP_SMTP_ADDR=smtp.partenaires.caf.fr:25",
		"IDP_DATABASE_URL=sqlite:" + filepath.Join(t.TempDir(), "idp.db")}}
	code, _, errs := c.run("config", "check")
	if code == 0 || !strings.Contains(errs, "smtp.helo") || !strings.Contains(errs, "mail.from") {
		t.Fatalf("idp config check with a remote relay and localhost's names: exit %d, %q", code, errs)
	}
	c.environ = append(c.environ, "IDP_SMTP_HELO=idp.services.caf.fr", "IDP_MAIL_FROM=Portail Extranet <ne-pas-repondre@services.caf.fr>")
	c.ok("config", "check")
}

// TestMigrateRefusesANewerSchema (review): an older `idp migrate` run
// against a database that newer servers migrated printed "schema at
// version N" and exited 0, though this binary expects an older version;
// the other commands, refused, tell the operator to run `idp migrate`,
// which then "succeeds" and changes nothing.
func TestMigrateRefusesANewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "idp.db")
	c := newCLI(t, "sqlite:"+path)
	c.ok("migrate")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'from_the_future', 0)`); err != nil {
		t.Fatal(err)
	}
	code, out, errs := c.run("migrate")
	if code != 1 || out != "" || !strings.Contains(errs, "newer than this binary") {
		t.Fatalf("idp migrate on a schema newer than the binary: exit %d, stdout %q, stderr %q", code, out, errs)
	}
}

// TestRefusedCommandLineChangesNothing (review): a command line missing a
// required flag or holding an invalid value is refused only after the
// database was opened, and on a fresh path set up (created and migrated):
// the refused command leaves a new database behind, and its exit status is
// 1 where `idp user disable` without --email gets 2.
func TestRefusedCommandLineChangesNothing(t *testing.T) {
	for _, args := range [][]string{
		{"user", "add", "--name", "Claire"},            // no --email
		{"user", "add", "--email", "claire@mairie.fr"}, // no --name
		{"habilitation", "grant"},                      // no --email, no --client
		{"habilitation", "grant", "--email", "claire@mairie.fr"},
		{"habilitation", "revoke", "--client", "caf-pro"},                                     // no --email
		{"user", "add", "--email", "claire@mairie.fr", "--name", "Claire", "--password", "x"}, // against the policy
	} {
		path := filepath.Join(t.TempDir(), "idp.db")
		c := newCLI(t, "sqlite:"+path)
		code, _, errs := c.run(args...)
		if code != 2 {
			t.Errorf("idp %s: exit %d (%q), want 2 for a wrong command line", strings.Join(args, " "), code, errs)
		}
		if _, err := os.Stat(path); err == nil {
			t.Errorf("idp %s was refused but created and migrated the database %s", strings.Join(args, " "), path)
		}
	}
	path := filepath.Join(t.TempDir(), "idp.db")
	c := newCLI(t, "sqlite:"+path)
	c.fails("not a valid e-mail", "user", "add", "--email", "pas-une-adresse", "--name", "X")
	if _, err := os.Stat(path); err == nil {
		t.Errorf("a refused user add created and migrated the database %s", path)
	}
}

// TestWrongFlagPrintsNothingOnStdout (review): the flag package calls
// Usage on a parse error, and Usage prints the whole flag list to stdout:
// a script capturing a command's output gets the usage text besides the
// one-line error on stderr.
func TestWrongFlagPrintsNothingOnStdout(t *testing.T) {
	c := newCLI(t, "sqlite:"+filepath.Join(t.TempDir(), "idp.db"))
	for _, args := range [][]string{
		{"user", "add", "--emial", "claire@mairie.fr"},
		{"audit", "list", "--limit", "abc"},
		{"habilitation", "revoke", "--role", "x"},
	} {
		code, out, _ := c.run(args...)
		if code != 2 || out != "" {
			t.Errorf("idp %s: exit %d, stdout %q; want exit 2 and nothing on stdout", strings.Join(args, " "), code, out)
		}
	}
}

// TestFlagsOfOtherSubcommandsAreRefused (review): --email, --client, --id
// and --by are defined before the subcommand is known, so that a
// subcommand that has no use for them accepts and ignores them: `idp user
// list --email E` lists everyone, `idp habilitation import --file F
// --client C` imports rows for other clients too.
func TestFlagsOfOtherSubcommandsAreRefused(t *testing.T) {
	c := newCLI(t, "sqlite:"+filepath.Join(t.TempDir(), "idp.db"))
	c.ok("user", "add", "--email", "claire@mairie.fr", "--name", "Claire", "--password", "secret12")
	c.ok("user", "add", "--email", "paul@mairie.fr", "--name", "Paul", "--password", "secret12")
	for _, args := range [][]string{
		{"user", "list", "--email", "claire@mairie.fr"},
		{"client", "list", "--id", "caf-pro"},
		{"habilitation", "list", "--by", "someone"},
		{"habilitation", "import", "--file", writeFile(t, "h.csv", "email,client,roles,until\n"), "--client", "caf-pro"},
	} {
		if code, out, _ := c.run(args...); code != 2 {
			t.Errorf("idp %s: exit %d (stdout %q), want a usage error", strings.Join(args, " "), code, out)
		}
	}
}

// TestClientAddValidatesItsTexts (review): the name of a client is only
// checked for emptiness and redirect URIs only parsed: invalid UTF-8 is
// stored on SQLite (and is a raw "SQLSTATE 22021" on PostgreSQL), line
// breaks and tabs break `idp client list`, and a redirect URI holding a
// space (not a URI, and ambiguous in the space-separated list) is
// registered.
func TestClientAddValidatesItsTexts(t *testing.T) {
	c := newCLI(t, "sqlite:"+filepath.Join(t.TempDir(), "idp.db"))
	for i, args := range [][]string{
		{"--name", "Portail\xff", "--redirect-uri", "https://rh.example.fr/cb"},
		{"--name", "Portail\nRH", "--redirect-uri", "https://rh.example.fr/cb"},
		{"--name", "Portail RH", "--redirect-uri", "https://rh.example.fr/c b"},
	} {
		id := fmt.Sprintf("app%d", i)
		if code, out, _ := c.run(append([]string{"client", "add", "--id", id}, args...)...); code == 0 {
			t.Errorf("idp client add %q: accepted (%q)", args, out)
		}
	}
	if list := c.ok("client", "list"); strings.Count(list, "\n") != 1 {
		t.Errorf("client list after refused additions:\n%s", list)
	}
}

// TestHabilitationGrantValidatesRolesAndBy (review): a role that is not
// UTF-8 is stored on SQLite (a raw SQLSTATE error on PostgreSQL) and goes
// into ID tokens; an empty --by records a grant made by nobody.
func TestHabilitationGrantValidatesRolesAndBy(t *testing.T) {
	c := newCLI(t, "sqlite:"+filepath.Join(t.TempDir(), "idp.db"))
	c.ok("user", "add", "--email", "claire@mairie.fr", "--name", "Claire", "--password", "secret12")
	c.ok("client", "add", "--id", "caf-pro", "--name", "CAF Pro", "--redirect-uri", "https://pro.example.fr/cb")
	if code, _, _ := c.run("habilitation", "grant", "--email", "claire@mairie.fr", "--client", "caf-pro", "--role", "lect\xffeur"); code == 0 {
		t.Error("a role that is not UTF-8 was granted")
	}
	if code, _, _ := c.run("habilitation", "grant", "--email", "claire@mairie.fr", "--client", "caf-pro", "--by", ""); code == 0 {
		t.Error("a grant by nobody (--by \"\") was recorded")
	}
}

// TestNamesNobodyHasAreRefusedBeforeTheDatabase: an id, an e-mail, a name
// or a role that is not UTF-8 went to the database, which PostgreSQL
// answers with a raw "SQLSTATE 22021" (SQLite with "no client with id"):
// each is a wrong command line, refused on both engines before the
// database is opened.
func TestNamesNobodyHasAreRefusedBeforeTheDatabase(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		c := newCLI(t, dbURL)
		c.ok("user", "add", "--email", "claire@mairie.fr", "--name", "Claire", "--password", "secret12")
		c.ok("client", "add", "--id", "caf-pro", "--name", "CAF Pro", "--redirect-uri", "https://pro.example.fr/cb")
		for _, args := range [][]string{
			{"client", "remove", "--id", "caf\xff"},
			{"client", "restrict", "--id", "caf\xff"},
			{"client", "add", "--id", "app", "--name", "Portail\xff", "--redirect-uri", "https://rh.example.fr/cb"},
			{"client", "add", "--id", "app", "--name", "Portail", "--redirect-uri", "https://rh.example.fr/\xff"},
			{"user", "disable", "--email", "claire\xff@mairie.fr"},
			{"audit", "list", "--email", "claire\xff@mairie.fr"},
			{"habilitation", "grant", "--email", "claire@mairie.fr", "--client", "caf-pro", "--role", "lect\xffeur"},
			{"habilitation", "grant", "--email", "claire@mairie.fr", "--client", "caf-pro", "--by", "moi\xff"},
			{"habilitation", "grant", "--email", "claire@mairie.fr", "--client", "caf\xff"},
			{"habilitation", "revoke", "--email", "claire\xff@mairie.fr", "--client", "caf-pro"},
			{"habilitation", "list", "--client", "caf\xff"},
		} {
			if code, _, errs := c.run(args...); code != 2 || strings.Contains(errs, "SQLSTATE") {
				t.Errorf("idp %q: exit %d, stderr %q; want 2 and a word of ours", args, code, errs)
			}
		}
	})
}

// TestRefusedKeysRotateStoresNoSecret (review): run from a shell without
// the servers' secrets.key_encryption_key, `idp keys rotate` is refused
// (the keys cannot be decrypted) but first stores a key-encryption key of
// its own in the database.
func TestRefusedKeysRotateStoresNoSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idp.db")
	c := newCLI(t, "sqlite:"+path)
	kek := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("k"), 32))
	servers := &cli{t: t, environ: append(slices.Clone(c.environ), "IDP_SECRETS_KEY_ENCRYPTION_KEY="+kek)}
	servers.ok("keys", "rotate")
	count := func() int {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		if err := db.QueryRow(`SELECT COUNT(*) FROM secrets WHERE name = 'key_encryption_key'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := count()
	c.fails("cannot be decrypted", "keys", "rotate")
	if after := count(); after != before {
		t.Fatalf("the refused keys rotate stored a key_encryption_key (%d row(s) before, %d after)", before, after)
	}
}

// TestKeysRotateWithAWrongKEKStoresNothing: with the servers' crypto key
// configured, `idp keys rotate` from a shell holding another
// key-encryption key stored an op_crypto_key of its own before it found
// the signing keys undecryptable.
func TestKeysRotateWithAWrongKEKStoresNothing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "idp.db")
	c := newCLI(t, "sqlite:"+path)
	key := func(b byte) string { return base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)) }
	servers := &cli{t: t, environ: append(slices.Clone(c.environ),
		"IDP_SECRETS_KEY_ENCRYPTION_KEY="+key('k'), "IDP_SECRETS_CRYPTO_KEY="+key('c'))}
	servers.ok("keys", "rotate")
	secrets := func() []string {
		db, err := sql.Open("sqlite", path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rows, err := db.Query(`SELECT name FROM secrets ORDER BY name`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var names []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			names = append(names, n)
		}
		return names
	}
	before := secrets()
	shell := &cli{t: t, environ: append(slices.Clone(c.environ), "IDP_SECRETS_KEY_ENCRYPTION_KEY="+key('w'))}
	shell.fails("cannot be decrypted", "keys", "rotate")
	if after := secrets(); !slices.Equal(after, before) {
		t.Fatalf("the refused keys rotate stored secrets: %q before, %q after", before, after)
	}
}

// provisionalFails is the store of an `idp user add` interrupted (Ctrl-C,
// a database outage) after the account was written, while its provisional
// password was being hashed or stored.
type provisionalFails struct{ migratingStore }

func (provisionalFails) IssueProvisionalPassword(context.Context, storage.ProvisionalIssue) error {
	return context.Canceled
}

// TestUserAddInterruptedLeavesNoAccount (review): `idp user add` without
// --password writes the account, then hashes and stores its provisional
// password in a second step; when that step fails the command exits 1 with
// "account: storing provisional password of <id>: context canceled", yet
// the account stays, with no password and no mail, and running the command
// again answers "already exists".
func TestUserAddInterruptedLeavesNoAccount(t *testing.T) {
	ctx := context.Background()
	s, err := openCurrent(ctx, "sqlite:"+filepath.Join(t.TempDir(), "idp.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := loadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := newAccounts(c, provisionalFails{s}, time.Now, newLogger(c, io.Discard), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateUser(ctx, account.NewUser{Email: "claire@mairie.fr", Name: "Claire"}, adminMeta); err == nil {
		t.Fatal("the failure was not reported")
	}
	if u, err := s.GetUserByEmail(ctx, "claire@mairie.fr"); err == nil {
		t.Fatalf("user add failed but left the account %s (state %s)", u.ID, userState(u))
	}
}
