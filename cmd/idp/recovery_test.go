package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/caf-extranet/idp/config"
	"github.com/caf-extranet/idp/storage"
)

const testCaptcha = "Tq7Kp"

func withTestCaptcha(c *config.Config) { c.Captcha.TestAnswer = testCaptcha }

// requestRecovery goes through « Mot de passe oublié ? » from the login page
// the browser is on, and returns the confirmation page.
func requestRecovery(t *testing.T, b *browser, loginPage *page, email, captcha string) *page {
	t.Helper()
	forgotLink := findLink(t, loginPage, "Mot de passe oublié ?")
	p := b.get(forgotLink)
	p.mustContain("Adresse e-mail", "Saisissez le texte ci-dessus", "A quoi ça sert ?",
		"Cette fonctionnalité nous aide à empêcher des programmes automatisés de réinitialiser les mots de passe.",
		"Saisissez le texte tel qu'il apparaît dans l'image. N'insérez pas d'espace entre les lettres.",
		"réservé aux seules personnes habilitées")
	return b.submit(p.form("Valider").set("Adresse e-mail", email).set("Saisissez le texte ci-dessus", captcha))
}

func findLink(t *testing.T, p *page, text string) string {
	t.Helper()
	for _, a := range findAll(p.doc, isElem("a")) {
		if nodeText(a) == text {
			u, err := p.URL.Parse(attr(a, "href"))
			if err != nil {
				t.Fatal(err)
			}
			return u.String()
		}
	}
	t.Fatalf("no link %q on %s: %.800s", text, p.URL, p.text())
	return ""
}

// TestRecoveryProcedure is the agency's whole document: forgot password,
// CAPTCHA, mail, provisional login, forced change, then the relying
// application gets its verified ID token.
func TestRecoveryProcedure(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, withTestCaptcha)
		agent := e.addAgent(agentEmail, "Claire Dupont", "Mairie de Lyon", agentPass)
		secret1 := e.addClient("app1", app1Redirect, false)
		rp1 := newRP(t, e, "app1", secret1, app1Redirect)
		b := newBrowser(t, e.issuer)
		// Another browser where the agent is still logged in: the change ends it.
		elsewhere := newBrowser(t, e.issuer)
		rp1.mustExchange(rp1.callback(login(t, elsewhere, elsewhere.get(rp1.authURL()), agentEmail, agentPass).Location()))

		loginPage := b.get(rp1.authURL())
		// A wrong CAPTCHA: the document's error, the e-mail kept, no job.
		p := requestRecovery(t, b, loginPage, agentEmail, strings.ToLower(testCaptcha))
		p.mustContain("la vérification du texte a échoué")
		if got := p.form("Valider").value("Adresse e-mail"); got != agentEmail {
			t.Fatalf("e-mail not kept after a wrong CAPTCHA: %q", got)
		}
		e.deliverMail()
		if n := len(e.mails()); n != 0 {
			t.Fatalf("%d mails after a wrong CAPTCHA", n)
		}
		// The right one: the confirmation, then the mail « Votre mot de passe ».
		p = b.submit(p.form("Valider").set("Adresse e-mail", agentEmail).set("Saisissez le texte ci-dessus", testCaptcha))
		p.mustContain("Si cette adresse correspond à un compte, un e-mail contenant un mot de passe provisoire vient de vous être envoyé.")
		e.deliverMail()
		msgs := e.mails()
		if len(msgs) != 1 || msgs[0].Header.Get("Subject") == "" {
			t.Fatalf("mails: %d", len(msgs))
		}
		dec := new(mimeDecoder)
		if subj, _ := dec.DecodeHeader(msgs[0].Header.Get("Subject")); subj != "Votre mot de passe" {
			t.Fatalf("subject %q", subj)
		}
		provisional := e.provisionalPassword(agentEmail)
		raw, _ := io.ReadAll(msgs[0].Body)
		if !strings.Contains(decodeQP(string(raw)), e.issuer+"/login") {
			t.Fatal("the mail does not give the portal's address from the configured issuer")
		}

		// The personal password still works meanwhile (no lock-out by a stranger)...
		// but we log in with the provisional one, from the link back to the login page.
		p = b.get(findLink(t, p, "Retour à la page de connexion"))
		p = login(t, b, p, agentEmail, provisional)
		if p.Status != http.StatusOK {
			t.Fatalf("after provisional login: status %d location %q", p.Status, p.Location())
		}
		p.mustContain("Par mesure de sécurité, veuillez maintenant personnaliser votre mot de passe.",
			"Mot de passe actuel", "Nouveau mot de passe", "Confirmation mot de passe")

		// A policy error keeps the agent here, pending, with no code.
		bad := b.submit(p.form("Valider").set("Mot de passe actuel", provisional).
			set("Nouveau mot de passe", "abc").set("Confirmation mot de passe", "abc"))
		if bad.Status != http.StatusOK || bad.Location() != "" {
			t.Fatalf("policy error: status %d location %q", bad.Status, bad.Location())
		}
		bad.mustContain("Par mesure de sécurité")
		if u, _ := e.srv.store.GetUser(e.ctx, agent.ID); !u.PendingPasswordChange {
			t.Fatal("agent not pending after the provisional login")
		}

		// A valid personal password: straight back to the relying application.
		out := b.submit(bad.form("Valider").set("Mot de passe actuel", provisional).
			set("Nouveau mot de passe", "nouveau2026").set("Confirmation mot de passe", "nouveau2026"))
		li := rp1.mustExchange(rp1.callback(out.Location()))
		if li.idToken.Subject != agent.ID {
			t.Fatalf("subject %s", li.idToken.Subject)
		}
		// The other browser's session was revoked with the change.
		elsewhere.get(rp1.authURL()).mustContain("Mot de passe oublié ?")
		// The provisional password is gone, the old one refused, the new one works.
		b2 := newBrowser(t, e.issuer)
		for _, pw := range []string{provisional, agentPass} {
			p = login(t, b2, b2.get(rp1.authURL()), agentEmail, pw)
			p.mustContain("Identifiant ou mot de passe incorrect")
		}
		out = login(t, b2, b2.get(rp1.authURL()), agentEmail, "nouveau2026")
		rp1.mustExchange(rp1.callback(out.Location()))
		// And the agent was told: « Votre mot de passe a été modifié ».
		e.deliverMail()
		notified := false
		for _, m := range e.mails() {
			subj, _ := dec.DecodeHeader(m.Header.Get("Subject"))
			notified = notified || subj == "Votre mot de passe a été modifié"
		}
		if !notified {
			t.Fatal("no « Votre mot de passe a été modifié » mail")
		}
	})
}

// TestUnknownAddressSameAnswer: the answer never tells whether the address
// exists, and no mail goes out for an unknown or disabled one.
func TestUnknownAddressSameAnswer(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, withTestCaptcha)
		e.addAgent(agentEmail, "Claire Dupont", "", agentPass)
		e.addAgent("parti@partenaire.fr", "Parti", "", agentPass)
		if err := e.srv.accounts.SetDisabled(e.ctx, "parti@partenaire.fr", true, accountMeta); err != nil {
			t.Fatal(err)
		}
		var bodies []string
		for _, addr := range []string{agentEmail, "inconnu@partenaire.fr", "parti@partenaire.fr"} {
			b := newBrowser(t, e.issuer)
			p := requestRecovery(t, b, b.get("/login"), addr, testCaptcha)
			if p.Status != http.StatusOK {
				t.Fatalf("%s: status %d", addr, p.Status)
			}
			bodies = append(bodies, p.Body)
		}
		if bodies[0] != bodies[1] || bodies[0] != bodies[2] {
			t.Fatal("the confirmation differs between an existing and an unknown or disabled address")
		}
		e.deliverMail()
		msgs := e.mails()
		if len(msgs) != 1 || !strings.Contains(msgs[0].Header.Get("To"), agentEmail) {
			t.Fatalf("mails: %d (want exactly one, to the active agent)", len(msgs))
		}
	})
}

// TestPerIPQuotaIsNotAPromiseOfAMail: past the per-IP hourly quota of
// recovery requests (an office behind one NAT address), the request of an
// existing, active agent is not queued. The page must not then say « un
// e-mail contenant un mot de passe provisoire vient de vous être envoyé »
// and that it comes within the hour: it answers « Trop de tentatives »
// (429), the address kept, as the CAPTCHA throttles do. The quota depends on
// the client address only, so this tells nothing about the e-mail address.
func TestPerIPQuotaIsNotAPromiseOfAMail(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, withTestCaptcha)
		e.addAgent(agentEmail, "Claire Dupont", "", agentPass)
		for i := range e.cfg.Recovery.MaxRequestsPerIPPerHour {
			b := newBrowser(t, e.issuer)
			requestRecovery(t, b, b.get("/login"), "collegue"+strconv.Itoa(i)+"@partenaire.fr", testCaptcha).
				mustContain("vient de vous être envoyé")
		}
		b := newBrowser(t, e.issuer)
		p := requestRecovery(t, b, b.get("/login"), agentEmail, testCaptcha)
		if p.Status != http.StatusTooManyRequests || strings.Contains(p.text(), "vient de vous être envoyé") {
			t.Fatalf("past the per-IP quota: status %d, want 429 and no promise of a mail: %.600s", p.Status, p.text())
		}
		p.mustContain("Trop de tentatives. Veuillez réessayer dans quelques minutes.")
		if got := inputValue(p, "email"); got != agentEmail {
			t.Errorf("address not kept: %q", got)
		}
		e.deliverMail()
		for _, m := range e.mails() {
			if strings.Contains(m.Header.Get("To"), agentEmail) {
				t.Fatal("a mail went to the agent whose request was over the quota")
			}
		}
	})
}

// TestProgramAnsweringQuestionsIsHeldToTheQuestionQuota: a program that
// never looks at the image asks for the question alternative, reads the
// label of the answer field with a regular expression and the twenty number
// words of the catalog, and answers right every time: the question, there
// for agents who cannot read the image, stops no program (README, « The
// CAPTCHA and its non-visual alternative »). What holds it is a count: from
// one address, 2 requests answered by a question are accepted an hour
// (login-ui's maxQuestionRecoveriesPerWindow); the next get « Trop de
// tentatives » (429) and send nothing, though the address's quota of
// recovery requests (20) and the agent's (3 mails) have room left.
func TestProgramAnsweringQuestionsIsHeldToTheQuestionQuota(t *testing.T) {
	const questionQuota = 2
	words := strings.Fields("un deux trois quatre cinq six sept huit neuf dix onze douze treize quatorze quinze seize dix-sept dix-huit dix-neuf vingt")
	number := func(w string) int { return slices.Index(words, w) + 1 }
	question := regexp.MustCompile(`Combien font (\S+) plus (\S+) \?`)
	engines(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, nil) // real challenges: no test answer
		e.addAgent(agentEmail, "Claire Dupont", "", agentPass)
		accepted := 0
		for i := range questionQuota + 3 {
			b := newBrowser(t, e.issuer)
			q := b.submit(b.get("/login/forgot").form("Je ne peux pas lire l'image : me poser une question").set("Adresse e-mail", agentEmail))
			var label string
			for _, l := range findAll(q.doc, isElem("label")) {
				if attr(l, "for") == "captcha" {
					label = nodeText(l)
				}
			}
			m := question.FindStringSubmatch(label)
			if m == nil || number(m[1]) == 0 || number(m[2]) == 0 {
				t.Fatalf("no question a program can read in %q", label)
			}
			answer := strconv.Itoa(number(m[1]) + number(m[2]))
			p := b.submit(q.form("Valider").set("Adresse e-mail", agentEmail).set("Combien font", answer))
			switch {
			case strings.Contains(p.text(), "vient de vous être envoyé"):
				accepted++
			case p.Status == http.StatusTooManyRequests && strings.Contains(p.text(), "Trop de tentatives"):
			default:
				t.Fatalf("answer %d: status %d: %.600s", i+1, p.Status, p.text())
			}
		}
		e.deliverMail()
		// Each accepted request issues a provisional password with its
		// mail; the newer gives up the older one's mail if still pending.
		queued, err := e.srv.store.ListMails(e.ctx, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		mailed := 0
		for _, m := range queued {
			if m.To == agentEmail {
				mailed++
			}
		}
		if accepted != questionQuota || mailed != questionQuota {
			t.Fatalf("a program answering questions from one address: %d requests accepted and %d mails queued in an hour, want %d",
				accepted, mailed, questionQuota)
		}
	})
}

// inputValue is the value of the page's input named name.
func inputValue(p *page, name string) string {
	for _, in := range findAll(p.doc, isElem("input")) {
		if attr(in, "name") == name {
			return attr(in, "value")
		}
	}
	return ""
}

// TestPendingAgentGetsNothing tries every door while the agent holds only a
// provisional password: authorize callback, prompt=none, a second client,
// code exchange, refresh and userinfo with tokens obtained before.
func TestPendingAgentGetsNothing(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e := newEnv(t, dbURL, withTestCaptcha)
		agent := e.addAgent(agentEmail, "Claire Dupont", "", agentPass)
		secret1 := e.addClient("app1", app1Redirect, false)
		e.addClient("app2", app2Redirect, true)
		rp1 := newRP(t, e, "app1", secret1, app1Redirect, oidc.ScopeOpenID, "email", oidc.ScopeOfflineAccess)
		rp2 := newRP(t, e, "app2", "", app2Redirect)

		// Before: a refresh token, an access token, and a code not yet exchanged.
		b := newBrowser(t, e.issuer)
		li := rp1.signIn(t, b)
		p := b.get(rp1.authURL())
		pendingCode, pendingPKCE := rp1.callback(p.Location()), rp1.pkce

		// A provisional password is issued and used.
		if err := e.srv.accounts.ResetPassword(e.ctx, agentEmail, accountMeta); err != nil {
			t.Fatal(err)
		}
		e.deliverMail()
		provisional := e.provisionalPassword(agentEmail)
		pb := newBrowser(t, e.issuer)
		p = login(t, pb, pb.get(rp1.authURL()), agentEmail, provisional)
		p.mustContain("Par mesure de sécurité")
		authReqID := p.URL.Query().Get("authRequestID")

		// The callback, even if the request were marked complete.
		sess := storage.Session{UserID: agent.ID, ID: "x", AMR: []string{"pwd"}}
		if err := e.srv.store.CompleteAuthRequest(e.ctx, authReqID, sess.UserID, sess.ID, sess.AuthTime, sess.AMR); err != nil {
			t.Fatal(err)
		}
		p = pb.get("/authorize/callback?id=" + url.QueryEscape(authReqID))
		if strings.Contains(p.Location(), "code=") {
			t.Fatalf("callback gave a code to a pending agent: %s", p.Location())
		}
		// A second client, with the pending browser: the change form, no code.
		p = pb.get(rp2.authURL())
		if strings.Contains(p.Location(), "code=") {
			t.Fatalf("second client got a code: %s", p.Location())
		}
		p.mustContain("Par mesure de sécurité")
		// prompt=none: an error for the relying application, no code.
		p = pb.get(rp2.authURL(oauth2.SetAuthURLParam("prompt", "none")))
		if !strings.Contains(p.Location(), "error=interaction_required") && !strings.Contains(p.Location(), "error=login_required") {
			t.Fatalf("prompt=none for a pending agent: %d %q", p.Status, p.Location())
		}
		// Code exchange (with the right verifier), refresh, userinfo.
		rp1.pkce = pendingPKCE
		if _, err := rp1.exchange(pendingCode); err == nil {
			t.Fatal("code exchanged for a pending agent")
		}
		if _, err := refreshErr(rp1, li.token.RefreshToken); err == nil {
			t.Fatal("refresh for a pending agent")
		}
		if _, err := rp1.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(li.token)); err == nil {
			t.Fatal("userinfo for a pending agent")
		}
	})
}

// TestForcedChangePostedTwice: a double click on « Valider » of the forced
// change (two POSTs with the same restricted session, the second sent while
// the first is being hashed) must not end with the browser showing
// « Mot de passe provisoire expiré » — the password WAS changed — nor with
// the new session's cookie cleared by the losing answer: each answer goes
// on to the application, as the login form's do (TestLoginFormPostedTwice,
// TestDoubleClickAfterTyposLogsIn), or to the login page, which goes on
// with the session the browser holds.
func TestForcedChangePostedTwice(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		// Slow enough hashes that the second click arrives during the first's work.
		e := newEnv(t, dbURL, func(c *config.Config) {
			withTestCaptcha(c)
			c.Password.Hash.Iterations = 12
		})
		e.addAgent(agentEmail, "Claire Dupont", "Mairie de Lyon", agentPass)
		secret1 := e.addClient("app1", app1Redirect, false)
		rp1 := newRP(t, e, "app1", secret1, app1Redirect)
		b := newBrowser(t, e.issuer)
		loginPage := b.get(rp1.authURL())
		requestRecovery(t, b, loginPage, agentEmail, testCaptcha)
		e.deliverMail()
		provisional := e.provisionalPassword(agentEmail)
		change := login(t, b, b.get(rp1.authURL()), agentEmail, provisional)
		change.mustContain("Par mesure de sécurité, veuillez maintenant personnaliser votre mot de passe.")
		f := change.form("Valider").set("Mot de passe actuel", provisional).
			set("Nouveau mot de passe", "nouveau2026").set("Confirmation mot de passe", "nouveau2026")

		var wg sync.WaitGroup
		answers := make([]*page, 2)
		for i := range answers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				answers[i] = b.submit(f)
			}()
		}
		wg.Wait()
		for i, p := range answers {
			cleared := false
			for _, c := range p.Header.Values("Set-Cookie") {
				if strings.HasPrefix(c, "idp_session=;") {
					cleared = true
				}
			}
			t.Logf("answer %d: status %d, location %.60q, cleared session cookie %v", i, p.Status, p.Location(), cleared)
			if strings.Contains(p.text(), "Mot de passe provisoire expiré") || cleared {
				t.Errorf("answer %d to the double click says the provisional password expired (cookie cleared: %v), though the change was made: %.300s",
					i, cleared, p.text())
			}
		}
		// The agent, whose password is changed, still holds a session.
		if sso := b.get(rp1.authURL()); sso.Status != http.StatusFound || !strings.Contains(sso.Location(), "code=") {
			t.Errorf("after the double click the browser has no session: %d %q", sso.Status, sso.Location())
		}
	})
}

// TestLoginPageThrottles: after five failures the login page answers 429
// with the French message, even for the right password, until the delay
// has passed.
func TestLoginPageThrottles(t *testing.T) {
	e := newEnv(t, "sqlite:"+t.TempDir()+"/idp.db", nil)
	e.addAgent(agentEmail, "Claire Dupont", "", agentPass)
	b := newBrowser(t, e.issuer)
	for range 5 {
		login(t, b, b.get("/login"), agentEmail, "mauvais").mustContain("Identifiant ou mot de passe incorrect")
	}
	p := login(t, b, b.get("/login"), agentEmail, agentPass)
	if p.Status != http.StatusTooManyRequests {
		t.Fatalf("sixth attempt at once: status %d", p.Status)
	}
	p.mustContain("Trop de tentatives. Veuillez réessayer dans quelques minutes.")
	e.clock.advance(2 * time.Second)
	if p = login(t, b, b.get("/login"), agentEmail, agentPass); p.URL.Path != "/espace" {
		t.Fatalf("after the delay: status %d at %s", p.Status, p.URL)
	}
}
