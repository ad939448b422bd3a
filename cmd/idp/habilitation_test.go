package main

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/caf-extranet/idp/storage"
)

const app3Redirect = "http://localhost:9003/app3/callback"

func rolesOf(t *testing.T, claims map[string]any) []string {
	t.Helper()
	raw, ok := claims["roles"].([]any)
	if !ok {
		t.Fatalf("no roles claim in %v", claims)
	}
	var out []string
	for _, r := range raw {
		out = append(out, r.(string))
	}
	return out
}

// TestHabilitations: a restricted application lets in only habilitated
// agents, with that application's roles only; revocation and expiry take
// effect at the next authorize and the next refresh.
func TestHabilitations(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil)
		agent := e.addAgent(agentEmail, "Claire Dupont", "Mairie de Lyon", agentPass)
		secret1 := e.addClient("app1", app1Redirect, false)
		secret3 := e.addClient("app3", app3Redirect, false)
		if err := e.srv.store.SetClientRestricted(e.ctx, "app3", true); err != nil {
			t.Fatal(err)
		}
		scopes := []string{oidc.ScopeOpenID, "email", "roles", oidc.ScopeOfflineAccess}
		rp1 := newRP(t, e, "app1", secret1, app1Redirect, scopes...)
		rp3 := newRP(t, e, "app3", secret3, app3Redirect, scopes...)
		b := newBrowser(t, e.issuer)

		// Not habilitated: no code, an explanation, and access_denied if the agent goes back.
		p := login(t, b, b.get(rp3.authURL()), agentEmail, agentPass)
		if p.Status != http.StatusForbidden || strings.Contains(p.Location(), "code=") {
			t.Fatalf("non-habilitated agent: status %d location %q", p.Status, p.Location())
		}
		p.mustContain("Accès non autorisé", "Vous n'êtes pas habilité à accéder à l'application « Application app3 »",
			"gestionnaire des habilitations")
		back := b.get(findLink(t, p, "Retourner à l'application"))
		if !strings.HasPrefix(back.Location(), app3Redirect) || !strings.Contains(back.Location(), "error=access_denied") ||
			!strings.Contains(back.Location(), "state="+rp3.state) {
			t.Fatalf("going back: %d %q", back.Status, back.Location())
		}
		// The secure space lists only what the agent may enter.
		space := b.get("/espace")
		if !strings.Contains(space.text(), "Application app1") || strings.Contains(space.text(), "Application app3") {
			t.Fatalf("secure space lists applications the agent may not enter: %s", space.text())
		}

		// Habilitated, with roles in app3; other roles in app1 stay there.
		grant := func(client string, roles []string, until *time.Time) {
			t.Helper()
			err := e.srv.store.GrantHabilitation(e.ctx, storage.Habilitation{UserID: agent.ID, ClientID: client,
				Roles: roles, Until: until, GrantedAt: e.clock.Now(), GrantedBy: "test"})
			if err != nil {
				t.Fatal(err)
			}
		}
		grant("app3", []string{"consultation", "declaration"}, nil)
		grant("app1", []string{"autre"}, nil)
		p = b.get(rp3.authURL())
		li3 := rp3.mustExchange(rp3.callback(p.Location()))
		if got := rolesOf(t, li3.claims); !slices.Equal(got, []string{"consultation", "declaration"}) {
			t.Fatalf("app3 roles %v", got)
		}
		ui, err := rp3.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(li3.token))
		if err != nil {
			t.Fatal(err)
		}
		var uic map[string]any
		_ = ui.Claims(&uic)
		if got := rolesOf(t, uic); !slices.Equal(got, []string{"consultation", "declaration"}) {
			t.Fatalf("userinfo roles %v", got)
		}
		p = b.get(rp1.authURL())
		li1 := rp1.mustExchange(rp1.callback(p.Location()))
		if got := rolesOf(t, li1.claims); !slices.Equal(got, []string{"autre"}) {
			t.Fatalf("app1 roles %v (another application's roles leaked?)", got)
		}

		// Revoked: the next refresh and the next authorize are refused.
		if err := e.srv.store.RevokeHabilitation(e.ctx, agent.ID, "app3"); err != nil {
			t.Fatal(err)
		}
		if _, err := refreshErr(rp3, li3.token.RefreshToken); err == nil {
			t.Fatal("refresh after revocation")
		}
		if p = b.get(rp3.authURL()); p.Status != http.StatusForbidden {
			t.Fatalf("authorize after revocation: %d %q", p.Status, p.Location())
		}
		if _, err := rp3.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(li3.token)); err == nil {
			t.Fatal("userinfo after revocation")
		}

		// Expired: the same, once the end date has passed.
		end := e.clock.Now().Add(time.Hour)
		grant("app3", []string{"consultation"}, &end)
		p = b.get(rp3.authURL())
		li3 = rp3.mustExchange(rp3.callback(p.Location()))
		e.clock.advance(time.Hour + time.Second)
		if _, err := refreshErr(rp3, li3.token.RefreshToken); err == nil {
			t.Fatal("refresh after expiry")
		}
		if p = b.get(rp3.authURL()); p.Status != http.StatusForbidden {
			t.Fatalf("authorize after expiry: %d %q", p.Status, p.Location())
		}
	})
}

func TestHabilitationCommands(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		c := newCLI(t, dbURL)
		c.ok("user", "add", "--email", "claire@mairie.fr", "--name", "Claire", "--password", "secret12")
		c.ok("client", "add", "--id", "caf-pro", "--name", "CAF Pro", "--redirect-uri", "https://pro.example.fr/cb", "--restricted")
		if !strings.Contains(c.ok("client", "list"), "restricted") {
			t.Fatal("client add --restricted not shown as restricted")
		}
		c.fails("no user with e-mail inconnu@mairie.fr", "habilitation", "grant", "--email", "inconnu@mairie.fr", "--client", "caf-pro")
		c.fails("no client with id nope", "habilitation", "grant", "--email", "claire@mairie.fr", "--client", "nope")
		c.fails("not a date", "habilitation", "grant", "--email", "claire@mairie.fr", "--client", "caf-pro", "--until", "31/12/2027")
		c.fails("in the past", "habilitation", "grant", "--email", "claire@mairie.fr", "--client", "caf-pro", "--until", "2020-01-01")
		c.fails("--role", "habilitation", "grant", "--email", "claire@mairie.fr", "--client", "caf-pro", "--role", "a b")
		c.fails("holds no habilitation", "habilitation", "revoke", "--email", "claire@mairie.fr", "--client", "caf-pro")
		if list := c.ok("habilitation", "list"); strings.Count(list, "\n") != 1 {
			t.Fatalf("refused commands changed something:\n%s", list)
		}
		c.ok("habilitation", "grant", "--email", "Claire@Mairie.fr", "--client", "caf-pro", "--role", "consultation",
			"--role", "declaration", "--until", "2099-12-31", "--by", "gestionnaire@caf.fr")
		list := c.ok("habilitation", "list", "--client", "caf-pro")
		if !strings.Contains(list, "consultation;declaration") || !strings.Contains(list, "gestionnaire@caf.fr") {
			t.Fatalf("habilitation list:\n%s", list)
		}
		// CSV import: one bad row, nothing imported.
		dir := t.TempDir()
		bad := filepath.Join(dir, "bad.csv")
		os.WriteFile(bad, []byte("email,client,roles,until\nclaire@mairie.fr,caf-pro,consultation,\ninconnu@mairie.fr,caf-pro,,\n"), 0o600)
		c.fails("line 3", "habilitation", "import", "--file", bad)
		c.ok("habilitation", "revoke", "--email", "claire@mairie.fr", "--client", "caf-pro")
		if list := c.ok("habilitation", "list"); strings.Count(list, "\n") != 1 {
			t.Fatalf("revoke left:\n%s", list)
		}
		good := filepath.Join(dir, "good.csv")
		os.WriteFile(good, []byte("email,client,roles,until\nclaire@mairie.fr,caf-pro,consultation;declaration,2099-01-31\n"), 0o600)
		if out := c.ok("habilitation", "import", "--file", good); !strings.Contains(out, "1 habilitations imported") {
			t.Fatalf("import: %q", out)
		}
		c.ok("client", "restrict", "--id", "caf-pro", "--open")
		if strings.Contains(c.ok("client", "list"), "restricted") {
			t.Fatal("client restrict --open did not open the client")
		}
		c.fails("no client with id", "client", "restrict", "--id", "nope")
	})
}

// TestHabilitationImportReadsSpreadsheetExports: a spreadsheet's UTF-8
// export (byte-order mark, CRLF, header cells as typed, semicolons in a
// French one) is read as `user import` reads it.
func TestHabilitationImportReadsSpreadsheetExports(t *testing.T) {
	c := newCLI(t, "sqlite:"+filepath.Join(t.TempDir(), "idp.db"))
	c.ok("user", "add", "--email", "claire@mairie.fr", "--name", "Claire", "--password", "secret12")
	c.ok("client", "add", "--id", "caf-pro", "--name", "CAF Pro", "--redirect-uri", "https://pro.example.fr/cb", "--restricted")
	for _, f := range []struct{ name, content, roles string }{
		{"bom.csv", "\uFEFF Email ,Client,ROLES,until\r\nclaire@mairie.fr,caf-pro,consultation,2099-01-31\r\n", "consultation"},
		{"semicolons.csv", "\uFEFFemail;client;roles;until\r\nclaire@mairie.fr;caf-pro;\"consultation;declaration\";2099-01-31\r\n",
			"consultation;declaration"},
	} {
		if out := c.ok("habilitation", "import", "--file", writeFile(t, f.name, f.content)); !strings.Contains(out, "1 habilitations imported") {
			t.Fatalf("%s: %q", f.name, out)
		}
		if list := c.ok("habilitation", "list", "--client", "caf-pro"); !strings.Contains(list, " "+f.roles+" ") {
			t.Fatalf("%s: habilitation list:\n%s", f.name, list)
		}
	}
	c.fails(`the first line must be the header email,client,roles,until, not "email,client,role,until"`,
		"habilitation", "import", "--file", writeFile(t, "typo.csv", "email,client,role,until\n"))
}

// TestHabilitationImportRefusesDuplicateRows: two rows for one agent and
// one application (e-mails compared as stored, whatever their case) would
// leave only the second; the file is refused with both lines, along with
// its other problems, and nothing is granted.
func TestHabilitationImportRefusesDuplicateRows(t *testing.T) {
	c := newCLI(t, "sqlite:"+filepath.Join(t.TempDir(), "idp.db"))
	for _, e := range []string{"claire@mairie.fr", "paul@mairie.fr"} {
		c.ok("user", "add", "--email", e, "--name", "Agent", "--password", "secret12")
	}
	c.ok("client", "add", "--id", "caf-pro", "--name", "CAF Pro", "--redirect-uri", "https://pro.example.fr/cb", "--restricted")
	file := writeFile(t, "habs.csv", "email,client,roles,until\n"+
		"claire@mairie.fr,caf-pro,consultation,\n"+ // 2
		"paul@mairie.fr,caf-pro,consultation,\n"+ // 3: fine
		" Claire@Mairie.FR,caf-pro,declaration,\n"+ // 4: line 2's pair again
		"paul@mairie.fr,caf-pro,,2020-01-01\n") // 5: line 3's pair again, and ended
	code, _, errs := c.run("habilitation", "import", "--file", file)
	if code == 0 {
		t.Fatal("a file with duplicate rows was imported")
	}
	for _, want := range []string{
		"nothing imported",
		"line 4: claire@mairie.fr → caf-pro already on line 2",
		"line 5: paul@mairie.fr → caf-pro already on line 3; --until \"2020-01-01\" is in the past",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q: %s", want, errs)
		}
	}
	if strings.Contains(errs, "line 2:") || strings.Contains(errs, "line 3:") {
		t.Errorf("a first occurrence was reported as a problem: %s", errs)
	}
	if list := c.ok("habilitation", "list"); strings.Count(list, "\n") != 1 {
		t.Fatalf("a refused file granted:\n%s", list)
	}
}

// TestHabilitationImportListsEveryProblemDespiteABareQuote: as user
// import, a line that is not valid CSV is that line's problem; the lines
// before and after it are still checked and listed.
func TestHabilitationImportListsEveryProblemDespiteABareQuote(t *testing.T) {
	c := newCLI(t, "sqlite:"+filepath.Join(t.TempDir(), "idp.db"))
	c.ok("user", "add", "--email", "claire@mairie.fr", "--name", "Claire", "--password", "secret12")
	c.ok("client", "add", "--id", "caf-pro", "--name", "CAF Pro", "--redirect-uri", "https://pro.example.fr/cb")
	file := writeFile(t, "habs.csv", "email,client,roles,until\n"+
		"inconnu@mairie.fr,caf-pro,consultation,\n"+ // 2: no such agent
		"claire@mairie.fr,caf-pro,con\"sultation,\n"+ // 3: bare quote
		"claire@mairie.fr,caf-pro,consultation,2020-01-01\n"+ // 4: in the past
		"claire@mairie.fr,caf pro,consultation,2020-01-01\n") // 5: no client has such an id, in the past
	code, _, errs := c.run("habilitation", "import", "--file", file)
	if code == 0 {
		t.Fatal("imported")
	}
	for _, want := range []string{"line 2: no user with e-mail", "line 3: not valid CSV", "line 4: --until",
		`line 5: --client "caf pro" is not a client id (letters, digits, '.', '_' or '-', 1 to 64 characters); --until "2020-01-01" is in the past`} {
		if !strings.Contains(errs, want) {
			t.Errorf("stderr lacks %q: %s", want, errs)
		}
	}
}

// clientRemovedMeanwhile is another administrator removing an application
// of the file while it is imported, after its rows were checked.
type clientRemovedMeanwhile struct {
	storage.BulkImporter
	store    storage.Store
	clientID string
}

func (c clientRemovedMeanwhile) GrantHabilitations(ctx context.Context, hs []storage.Habilitation) error {
	if err := c.store.DeleteClient(ctx, c.clientID); err != nil {
		return err
	}
	return c.BulkImporter.GrantHabilitations(ctx, hs)
}

// TestHabilitationImportIsAllOrNothing: a failure while granting (here the
// application of the last row removed once the rows were checked) grants
// none of the file's rows, and the audit trail records none; the same file
// imported afterwards is granted and recorded whole.
func TestHabilitationImportIsAllOrNothing(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		ctx := t.Context()
		c := newCLI(t, dbURL)
		for _, e := range []string{"a@mairie.fr", "b@mairie.fr"} {
			c.ok("user", "add", "--email", e, "--name", "Agent", "--password", "secret12")
		}
		addClients := func() {
			for _, id := range []string{"caf-pro", "caf-partenaires"} {
				c.ok("client", "add", "--id", id, "--name", id, "--redirect-uri", "https://pro.example.fr/cb", "--restricted")
			}
		}
		addClients()
		file := writeFile(t, "habs.csv", "email,client,roles,until\n"+
			"a@mairie.fr,caf-pro,consultation,\n"+
			"b@mairie.fr,caf-pro,consultation,\n"+
			"a@mairie.fr,caf-partenaires,,\n")
		granted := func(s storage.Store) (habilitations, events int) {
			t.Helper()
			hs, err := s.ListHabilitations(ctx, storage.HabilitationFilter{})
			if err != nil {
				t.Fatal(err)
			}
			audit, err := s.ListAudit(ctx, storage.AuditFilter{})
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range audit {
				if e.Type == "admin.habilitation_granted" {
					events++
				}
			}
			return len(hs), events
		}

		s, err := openMigrated(ctx, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		removed := clientRemovedMeanwhile{BulkImporter: s.(storage.BulkImporter), store: s, clientID: "caf-partenaires"}
		var out strings.Builder
		err = importHabilitations(ctx, removed, s, file, "test", &out)
		if !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "nothing imported: an agent or an application of the file was removed meanwhile") {
			t.Fatalf("import with an application removed meanwhile: %v (stdout %q)", err, out.String())
		}
		if hs, events := granted(s); hs != 0 || events != 0 {
			t.Fatalf("a failed import left %d habilitation(s) and %d audit event(s) of grants", hs, events)
		}

		c.ok("client", "remove", "--id", "caf-pro")
		addClients()
		if out := c.ok("habilitation", "import", "--file", file); !strings.Contains(out, "3 habilitations imported") {
			t.Fatalf("import: %q", out)
		}
		if hs, events := granted(s); hs != 3 || events != 3 {
			t.Fatalf("after the import: %d habilitation(s) and %d audit event(s) of grants, want 3 and 3", hs, events)
		}
	})
}

// TestPromptNoneWithoutHabilitationAnswersTheClient (OIDC Core 3.1.2.1):
// prompt=none must not display anything, so an agent signed in but not
// habilitated for a restricted application gets no « Accès non autorisé »
// page: the application gets access_denied, the answer the page's « Retourner
// à l'application » would have sent it.
func TestPromptNoneWithoutHabilitationAnswersTheClient(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		secret3 := e.addClient("app3", app3Redirect, false)
		if err := e.srv.store.SetClientRestricted(e.ctx, "app3", true); err != nil {
			t.Fatal(err)
		}
		rp3 := newRP(t, e, "app3", secret3, app3Redirect)
		b := newBrowser(t, e.issuer)
		rp1.signIn(t, b)
		p := b.get(rp3.authURL(oauth2.SetAuthURLParam("prompt", "none")))
		if !strings.HasPrefix(p.Location(), app3Redirect) || !strings.Contains(p.Location(), "error=access_denied") ||
			!strings.Contains(p.Location(), "state="+rp3.state) {
			t.Fatalf("prompt=none, not habilitated: status %d at %s, location %q; want access_denied at the application", p.Status, p.URL.Path, p.Location())
		}
		// Without prompt=none the page still explains.
		if p = b.get(rp3.authURL()); p.Status != http.StatusForbidden {
			t.Fatalf("not habilitated, without prompt=none: status %d, location %q", p.Status, p.Location())
		}
		p.mustContain("Accès non autorisé")
	})
}
