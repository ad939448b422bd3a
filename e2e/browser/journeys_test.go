package browser

import (
	"strings"
	"testing"

	"github.com/caf-extranet/idp/storage/postgres/pgtest"
)

// The texts of the agency's procedure document, as the agent reads them.
const (
	portal          = "Portail Extranet"
	titleLogin      = "Connexion – " + portal
	titleForgot     = "Mot de passe oublié ? – " + portal
	titleSent       = "Demande de réinitialisation enregistrée – " + portal
	titleChange     = "Personnaliser votre mot de passe – " + portal
	titleUpdate     = "Mettre à jour votre mot de passe – " + portal
	errorPrefix     = "Erreur : "
	headingLogin    = "Connexion"
	headingForgot   = "Mot de passe oublié ?"
	headingSent     = "Demande de réinitialisation enregistrée"
	headingChange   = "Par mesure de sécurité, veuillez maintenant personnaliser votre mot de passe."
	headingUpdate   = "Mettre à jour votre mot de passe"
	fieldEmail      = "Adresse e-mail"
	fieldPassword   = "Mot de passe"
	fieldCaptcha    = "Saisissez le texte ci-dessus"
	fieldCurrent    = "Mot de passe actuel"
	fieldNew        = "Nouveau mot de passe"
	fieldConfirm    = "Confirmation mot de passe"
	buttonSubmit    = "Valider"
	linkCancel      = "Annuler"
	buttonCancel    = "Annuler"
	linkForgot      = "Mot de passe oublié ?"
	linkUpdate      = "Mettre à jour votre mot de passe"
	linkBackToLogin = "Retour à la page de connexion"
	captchaFailed   = "la vérification du texte a échoué"
	loginRefused    = "Identifiant ou mot de passe incorrect"
	loggedOut       = "Vous êtes déconnecté."
	mailSubject     = "Votre mot de passe"
	mailChanged     = "Votre mot de passe a été modifié"
	sentText        = "Si cette adresse correspond à un compte, un e-mail contenant un mot de passe provisoire vient de vous être envoyé."
	sentDelay       = "Vous devez recevoir, dans l'heure qui suit votre demande de réinitialisation de mot de passe, le mél « Votre mot de passe » dans votre messagerie."
	changedNotice   = "Votre mot de passe a été modifié. Connectez-vous avec votre nouveau mot de passe."
	// The relying application's own link to its login.
	appLogin = "Se connecter"
)

// legalNotice is parts of the document's notice, on every page.
func legalNotice() []string {
	return []string{
		"Ce service professionnel est réservé aux seules personnes habilitées.",
		"pourront être poursuivis au titre de la Loi n° 88-19 du 5 Janvier 1988 (dite loi Godfrain)",
		"vous ne devez jamais communiquer ni partager votre identifiant et votre mot de passe",
	}
}

// TestBrowserJourneys follows the procedure in Chromium against `idp serve`
// on SQLite and on PostgreSQL. Each journey has its own agent and its own
// browser context (cookies), so they do not depend on each other.
func TestBrowserJourneys(t *testing.T) {
	chrome := startChromium(t)
	x := loadAxe(t)
	t.Cleanup(func() { x.report(t) })
	engines := []struct {
		name string
		url  func(testing.TB) string
	}{
		{"sqlite", nil},
		{"postgres", pgtest.URL},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			dbURL := ""
			if e.url != nil {
				dbURL = e.url(t)
			}
			s := startStack(t, chrome, x, dbURL)
			t.Run("1_login_then_sso", func(t *testing.T) { journeyLoginThenSSO(t, s) })
			t.Run("2_forgotten_password", func(t *testing.T) {
				// The README's screenshots come from the SQLite run.
				journeyForgottenPassword(t, s, newScreenshots(t, e.name == "sqlite"))
			})
			t.Run("2_keyboard_only", func(t *testing.T) { journeyKeyboardOnly(t, s) })
			t.Run("3_unknown_address", func(t *testing.T) { journeyUnknownAddress(t, s) })
			t.Run("4_cancel", func(t *testing.T) { journeyCancel(t, s) })
			t.Run("5_pending_agent_other_app", func(t *testing.T) { journeyPendingOtherApp(t, s) })
			t.Run("6_voluntary_change", func(t *testing.T) { journeyVoluntaryChange(t, s) })
			t.Run("7_shared_pc", func(t *testing.T) { journeySharedPC(t, s) })
		})
	}
}

// toLoginPage opens the relying application and follows its login link to
// the provider's login page.
func (a *agent) toLoginPage(app *relyingApp, shot string) {
	a.t.Helper()
	a.open(app.URL + "/")
	a.follow(appLogin)
	a.onProvider("/login", headingLogin, titleLogin, shot)
}

// logIn fills the login form and validates it.
func (a *agent) logIn(email, password string) {
	a.t.Helper()
	a.fill(fieldEmail, email)
	a.fill(fieldPassword, password)
	a.press(buttonSubmit)
}

// Journey 1: relying application → login page → personal password → back
// in the application with a verified ID token; a second application then
// gets in without the login page being shown again.
func journeyLoginThenSSO(t *testing.T, s *stack) {
	email, password := "claire.dupont@mairie-lyon.fr", "motdepasse1"
	s.addAgent(t, email, "Claire Dupont", password)
	a := newAgent(t, s)

	a.toLoginPage(s.app1, "")
	a.sees(legalNotice()...)
	a.sees(linkForgot, "Pourquoi changer son mot de passe ?",
		"Pour des raisons de sécurité, pensez à changer régulièrement votre mot de passe.", linkUpdate)

	// A wrong password first: the one generic message, the address kept.
	a.logIn(email, "pas-le-bon1")
	a.onProvider("/login", headingLogin, errorPrefix+titleLogin, "")
	a.fieldError(fieldPassword, loginRefused)
	if got := a.value(fieldEmail); got != email {
		a.fatalf("address not kept after a refused login: %q", got)
	}

	a.logIn(email, password)
	a.inApp(s.app1, email)

	// Single sign-on: no provider page is committed to the history between
	// the second application's login link and its callback.
	before := len(a.history())
	a.open(s.app2.URL + "/")
	a.follow(appLogin)
	a.inApp(s.app2, email)
	for _, entry := range a.history()[before:] {
		if strings.HasPrefix(entry, s.idp.URL) {
			a.fatalf("the provider showed a page during single sign-on: %s", entry)
		}
	}
	if s1, s2 := s.app1.loginsOf(email)[0].Subject, s.app2.loginsOf(email)[0].Subject; s1 == "" || s1 != s2 {
		t.Fatalf("subjects differ between the applications: %q and %q", s1, s2)
	}
}

// policyCase is one refused forced change and the error the agent reads.
type policyCase struct {
	name                  string
	current, new, confirm string
	field, message        string
}

// policyCases: each rule of the document's convention broken alone, then
// the confirmation and the current password.
func policyCases(provisional string) []policyCase {
	return []policyCase{
		{"too short", provisional, "abc12", "abc12", fieldNew,
			"Le nouveau mot de passe doit contenir au moins 6 caractères."},
		{"no digit", provisional, "abcdefgh", "abcdefgh", fieldNew,
			"Le nouveau mot de passe doit contenir au moins un chiffre."},
		{"no lowercase letter", provisional, "ABCDEF12", "ABCDEF12", fieldNew,
			"Le nouveau mot de passe doit contenir au moins une lettre minuscule."},
		{"too long", provisional, "abcdefghij1234567890k", "abcdefghij1234567890k", fieldNew,
			"Le nouveau mot de passe doit contenir au plus 20 caractères."},
		{"confirmation differs", provisional, "personnel2026", "personnel2027", fieldConfirm,
			"La confirmation ne correspond pas au nouveau mot de passe."},
		{"current password wrong", "pasleprovisoire1", "personnel2026", "personnel2026", fieldCurrent,
			"Le mot de passe actuel est incorrect. Saisissez le mot de passe provisoire reçu par e-mail."},
	}
}

// Journey 2: « Mot de passe oublié ? » from start to finish, as the
// document tells it, with a screenshot of every page.
func journeyForgottenPassword(t *testing.T, s *stack, shots *screenshots) {
	email := "paul.martin@mairie-lyon.fr"
	s.addAgent(t, email, "Paul Martin", "ancien2024")
	a := newAgent(t, s)
	a.shots = shots

	a.toLoginPage(s.app1, "1-login")
	a.follow(linkForgot)
	a.onProvider("/login/forgot", headingForgot, titleForgot, "2-forgot")
	a.sees(legalNotice()...)
	a.sees("A quoi ça sert ?",
		"Cette fonctionnalité nous aide à empêcher des programmes automatisés de réinitialiser les mots de passe.",
		"Saisissez le texte tel qu'il apparaît dans l'image. N'insérez pas d'espace entre les lettres.")
	a.do("see the CAPTCHA image", waitNamed(roleImage, "Image contenant le texte à recopier"))

	// The text is case-sensitive: the answer in lower case is wrong.
	a.fill(fieldEmail, email)
	a.fill(fieldCaptcha, strings.ToLower(captchaAnswer))
	a.press(buttonSubmit)
	a.onProvider("/login/forgot", headingForgot, errorPrefix+titleForgot, "3-forgot-error")
	a.fieldError(fieldCaptcha, captchaFailed)
	a.noFieldError(fieldEmail)
	if got := a.value(fieldEmail); got != email {
		a.fatalf("« %s » not kept after a wrong CAPTCHA: %q", fieldEmail, got)
	}
	if got := a.value(fieldCaptcha); got != "" {
		a.fatalf("the wrong answer is still in the field: %q", got)
	}

	a.fill(fieldCaptcha, captchaAnswer)
	a.press(buttonSubmit)
	a.onProvider("/login/forgot/sent", headingSent, titleSent, "4-sent")
	a.sees(sentText, sentDelay)

	provisional := provisionalPassword(t, s.mail.waitFor(t, email, mailSubject, 1))

	a.follow(linkBackToLogin)
	a.onProvider("/login", headingLogin, titleLogin, "")
	a.logIn(email, provisional)
	a.onProvider("/login/change", headingChange, titleChange, "5-change")
	a.sees(legalNotice()...)
	a.sees("Le mot de passe personnel saisi doit respecter la convention suivante :",
		"au moins une lettre minuscule", "au moins un chiffre", "entre 6 et 20 caractères",
		"Pourquoi changer son mot de passe ?")

	cases := policyCases(provisional)
	for i, c := range cases {
		a.fill(fieldCurrent, c.current)
		a.fill(fieldNew, c.new)
		a.fill(fieldConfirm, c.confirm)
		a.press(buttonSubmit)
		shot := ""
		if i == 0 {
			shot = "6-change-error"
		}
		a.onProvider("/login/change", headingChange, errorPrefix+titleChange, shot)
		a.fieldError(c.field, c.message)
		// Only this error, next to its field: the other fields are not
		// marked, and every other case's message is absent.
		for _, f := range []string{fieldCurrent, fieldNew, fieldConfirm} {
			if f != c.field {
				a.noFieldError(f)
			}
		}
		for _, other := range cases {
			if other.message != c.message {
				a.doesNotSee(other.message)
			}
		}
		for _, f := range []string{fieldCurrent, fieldNew, fieldConfirm} {
			if got := a.value(f); got != "" {
				a.fatalf("%s: « %s » keeps a password after the refusal", c.name, f)
			}
		}
		if n := len(s.app1.loginsOf(email)); n != 0 {
			a.fatalf("%s: the application got %d ID token(s) before the change", c.name, n)
		}
	}

	a.fill(fieldCurrent, provisional)
	a.fill(fieldNew, "personnel2026")
	a.fill(fieldConfirm, "personnel2026")
	a.press(buttonSubmit)
	a.inApp(s.app1, email)
	s.mail.waitFor(t, email, mailChanged, 1)
	t.Logf("screenshots: %v", shots.taken)
}

// Journey 3: an address nobody has gets the same confirmation and no mail.
func journeyUnknownAddress(t *testing.T, s *stack) {
	known, unknown := "agent.connu@mairie-lyon.fr", "personne.inconnue@mairie-lyon.fr"
	s.addAgent(t, known, "Agent Connu", "ancien2024")

	confirmation := func(address string) string {
		a := newAgent(t, s)
		a.toLoginPage(s.app1, "")
		a.follow(linkForgot)
		a.onProvider("/login/forgot", headingForgot, titleForgot, "")
		a.fill(fieldEmail, address)
		a.fill(fieldCaptcha, captchaAnswer)
		a.press(buttonSubmit)
		a.onProvider("/login/forgot/sent", headingSent, titleSent, "")
		a.sees(sentText)
		return a.text()
	}
	// The unknown address first: jobs are processed, and their mails sent,
	// oldest first, so once the known agent's mail has arrived a mail for the
	// unknown address would have arrived before it.
	forUnknown := confirmation(unknown)
	forKnown := confirmation(known)
	if forUnknown != forKnown {
		t.Fatalf("the confirmation differs:\nunknown: %s\nknown: %s", forUnknown, forKnown)
	}
	s.mail.waitFor(t, known, mailSubject, 1)
	if got := s.mail.to(unknown); len(got) != 0 {
		t.Fatalf("%d mail(s) sent to an unknown address", len(got))
	}
}

// Journey 4: « Annuler » goes back to the login page of the same request,
// which still leads to the application.
func journeyCancel(t *testing.T, s *stack) {
	email, password := "lea.bernard@mairie-lyon.fr", "motdepasse1"
	s.addAgent(t, email, "Léa Bernard", password)
	a := newAgent(t, s)
	a.toLoginPage(s.app1, "")
	login := a.location()

	a.follow(linkForgot)
	a.onProvider("/login/forgot", headingForgot, titleForgot, "")
	if got, want := a.location().Query().Get("authRequestID"), login.Query().Get("authRequestID"); got == "" || got != want {
		a.fatalf("the forgot form lost the request: %q, want %q", got, want)
	}
	a.fill(fieldEmail, email)
	a.follow(linkCancel)
	a.onProvider("/login", headingLogin, titleLogin, "")
	if got := a.location(); got.String() != login.String() {
		a.fatalf("« Annuler » went to %s, want the login page %s", got, login)
	}
	a.logIn(email, password)
	a.inApp(s.app1, email)
}

// Journey 5: an agent holding only a provisional password opens another
// relying application: the change form again, no code, no token, until the
// change, after which that application gets its ID token.
func journeyPendingOtherApp(t *testing.T, s *stack) {
	email := "marc.petit@mairie-lyon.fr"
	s.addAgent(t, email, "Marc Petit", "ancien2024")
	a := newAgent(t, s)
	a.toLoginPage(s.app1, "")
	a.follow(linkForgot)
	a.fill(fieldEmail, email)
	a.fill(fieldCaptcha, captchaAnswer)
	a.press(buttonSubmit)
	a.onProvider("/login/forgot/sent", headingSent, titleSent, "")
	provisional := provisionalPassword(t, s.mail.waitFor(t, email, mailSubject, 1))

	a.toLoginPage(s.app1, "")
	a.logIn(email, provisional)
	a.onProvider("/login/change", headingChange, titleChange, "")

	// The first application again, then the other one: the change form each
	// time, and neither application receives anything.
	for _, app := range []*relyingApp{s.app1, s.app2} {
		a.open(app.URL + "/")
		a.follow(appLogin)
		a.onProvider("/login/change", headingChange, titleChange, "")
	}
	for _, app := range []*relyingApp{s.app1, s.app2} {
		if n, f := len(app.loginsOf(email)), app.failures(); n != 0 || len(f) != 0 {
			a.fatalf("%s got %d ID token(s) and %v before the change", app.Name, n, f)
		}
	}

	a.fill(fieldCurrent, provisional)
	a.fill(fieldNew, "personnel2026")
	a.fill(fieldConfirm, "personnel2026")
	a.press(buttonSubmit)
	// The change completes the request the agent came with last.
	a.inApp(s.app2, email)
}

// Journey 6: « Mettre à jour votre mot de passe » changes a personal
// password; the old one is refused afterwards, the new one lets the agent in.
func journeyVoluntaryChange(t *testing.T, s *stack) {
	email, old, renewed := "sophie.laurent@mairie-lyon.fr", "ancien2024", "nouveau2025"
	s.addAgent(t, email, "Sophie Laurent", old)
	a := newAgent(t, s)
	a.toLoginPage(s.app1, "")
	a.follow(linkUpdate)
	a.onProvider("/login/password", headingUpdate, titleUpdate, "")
	a.sees(legalNotice()...)
	a.sees("Le mot de passe personnel saisi doit respecter la convention suivante :")

	a.fill(fieldEmail, email)
	a.fill(fieldCurrent, old)
	a.fill(fieldNew, renewed)
	a.fill(fieldConfirm, renewed)
	a.press(buttonSubmit)
	a.onProvider("/login", headingLogin, titleLogin, "")
	a.sees(changedNotice)
	s.mail.waitFor(t, email, mailChanged, 1)

	a.logIn(email, old)
	a.onProvider("/login", headingLogin, errorPrefix+titleLogin, "")
	a.fieldError(fieldPassword, loginRefused)

	a.logIn(email, renewed)
	a.inApp(s.app1, email)
}

// Journey 7: on a shared PC, an agent logs in with a provisional password
// and leaves the change form. The next agent, opening an application, gets
// that change form; « Annuler » ends the restricted session and shows the
// login page of the same request, where the next agent logs in.
func journeySharedPC(t *testing.T, s *stack) {
	first, next, nextPassword := "julien.moreau@mairie-lyon.fr", "ines.garnier@mairie-lyon.fr", "motdepasse1"
	s.addAgent(t, first, "Julien Moreau", "ancien2024")
	s.addAgent(t, next, "Inès Garnier", nextPassword)
	a := newAgent(t, s)
	a.toLoginPage(s.app1, "")
	a.follow(linkForgot)
	a.fill(fieldEmail, first)
	a.fill(fieldCaptcha, captchaAnswer)
	a.press(buttonSubmit)
	a.onProvider("/login/forgot/sent", headingSent, titleSent, "")
	provisional := provisionalPassword(t, s.mail.waitFor(t, first, mailSubject, 1))
	a.toLoginPage(s.app1, "")
	a.logIn(first, provisional)
	a.onProvider("/login/change", headingChange, titleChange, "")

	// The next agent at the PC.
	a.open(s.app2.URL + "/")
	a.follow(appLogin)
	a.onProvider("/login/change", headingChange, titleChange, "")
	change := a.location()
	a.press(buttonCancel)
	a.onProvider("/login", headingLogin, titleLogin, "")
	a.sees(loggedOut)
	if got, want := a.location().Query().Get("authRequestID"), change.Query().Get("authRequestID"); got == "" || got != want {
		a.fatalf("« Annuler » lost the request: %q, want %q", got, want)
	}
	a.logIn(next, nextPassword)
	a.inApp(s.app2, next)
}
