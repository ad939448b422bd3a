package mail

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

var testPortal = Portal{URL: "https://extranet.example.fr/", Name: "Portail Extranet"}

// linesOf splits a text body into its lines.
func linesOf(s string) []string { return strings.Split(s, "\n") }

func hasLine(body, want string) bool {
	for _, l := range linesOf(body) {
		if l == want {
			return true
		}
	}
	return false
}

func TestProvisionalPasswordMail(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 50, 0, 0, time.UTC)
	expires := time.Date(2026, 11, 26, 13, 5, 0, 0, time.UTC) // 14 h 05 in Paris (CET)
	m := ProvisionalPassword(testPortal, "agent@example.fr", "Marie Dupont", "Kp7-vQ2m-Xz9r", expires, now)

	if m.Subject != "Votre mot de passe" {
		t.Errorf("Subject = %q", m.Subject)
	}
	if m.To != "agent@example.fr" || m.Status != storage.MailPending || !m.CreatedAt.Equal(now) || !m.NextAttemptAt.Equal(now) || m.Attempts != 0 {
		t.Errorf("mail = %+v, want pending, due and created at now", m)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(m.ID) {
		t.Errorf("ID = %q, want 128-bit hex", m.ID)
	}
	if !hasLine(m.TextBody, "Kp7-vQ2m-Xz9r") {
		t.Errorf("the password is not on a line of its own:\n%s", m.TextBody)
	}
	for _, want := range []string{
		"Bonjour Marie Dupont,",
		"jeudi 26 novembre 2026 à 14 h 05",
		"https://extranet.example.fr/",
		"adresse e-mail et ce mot de passe provisoire",
		"choisir votre mot de passe personnel",
		"votre mot de passe actuel reste valable",
		"gestionnaire d'habilitations",
	} {
		if !strings.Contains(m.TextBody, want) {
			t.Errorf("text part lacks %q:\n%s", want, m.TextBody)
		}
	}
	for _, want := range []string{
		`<html lang="fr">`,
		"Kp7-vQ2m-Xz9r",
		"jeudi 26 novembre 2026 à 14 h 05",
		`href="https://extranet.example.fr/"`,
		"Bonjour Marie Dupont,",
		"gestionnaire d&#39;habilitations",
	} {
		if !strings.Contains(m.HTMLBody, want) {
			t.Errorf("HTML part lacks %q:\n%s", want, m.HTMLBody)
		}
	}
}

func TestMailIDsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := PasswordChanged(testPortal, "a@example.fr", "", time.Now(), time.Now()).ID
		if seen[id] {
			t.Fatalf("id %s given twice", id)
		}
		seen[id] = true
	}
}

func TestAccountCreatedMail(t *testing.T) {
	now := time.Date(2026, 7, 1, 6, 0, 0, 0, time.UTC)
	expires := time.Date(2026, 7, 1, 7, 0, 0, 0, time.UTC) // 9 h 00 in Paris (CEST)
	m := AccountCreated(testPortal, "new@example.fr", "", "Zq4-Lm8", expires, now)
	if m.Subject != SubjectPassword {
		t.Errorf("Subject = %q", m.Subject)
	}
	if !hasLine(m.TextBody, "Zq4-Lm8") {
		t.Errorf("the password is not on a line of its own:\n%s", m.TextBody)
	}
	for _, want := range []string{
		"Bonjour,",
		"administrateur vient de vous créer un compte",
		"mercredi 1er juillet 2026 à 9 h 00",
		"https://extranet.example.fr/",
		"choisir votre mot de passe personnel",
		"gestionnaire d'habilitations",
	} {
		if !strings.Contains(m.TextBody, want) {
			t.Errorf("text part lacks %q:\n%s", want, m.TextBody)
		}
	}
	if strings.Contains(m.TextBody, "Vous avez demandé") {
		t.Error("the onboarding mail claims the agent asked for it")
	}
}

func TestPasswordChangedMail(t *testing.T) {
	at := time.Date(2026, 3, 29, 1, 30, 0, 0, time.UTC) // first day of summer time: 3 h 30 in Paris
	m := PasswordChanged(testPortal, "agent@example.fr", "Marie", at, at.Add(time.Second))
	if m.Subject != "Votre mot de passe a été modifié" {
		t.Errorf("Subject = %q", m.Subject)
	}
	if !m.CreatedAt.Equal(at.Add(time.Second)) {
		t.Errorf("CreatedAt = %v", m.CreatedAt)
	}
	for _, body := range []string{m.TextBody, m.HTMLBody} {
		for _, want := range []string{
			"dimanche 29 mars 2026 à 3 h 30",
			"« Mot de passe oublié ? »",
			"gestionnaire d",
			"https://extranet.example.fr/",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("body lacks %q:\n%s", want, body)
			}
		}
		if strings.Contains(body, "provisoire :") {
			t.Errorf("the change notice reads like a password mail:\n%s", body)
		}
	}
}

func TestHTMLEscapesHostileValues(t *testing.T) {
	hostile := `<script>alert(1)</script>"><img src=x onerror=alert(2)>`
	p := Portal{URL: "javascript:alert(3)", Name: "<b>Portail</b>"}
	m := ProvisionalPassword(p, "a@example.fr", hostile, `<p>&"'`, time.Now(), time.Now())

	for _, bad := range []string{"<script", "<img", "<b>", `href="javascript:`, `<p>&"`} {
		if strings.Contains(m.HTMLBody, bad) {
			t.Errorf("HTML part contains %q unescaped:\n%s", bad, m.HTMLBody)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;img src=x onerror=alert(2)&gt;", "&lt;p&gt;&amp;&#34;&#39;"} {
		if !strings.Contains(m.HTMLBody, want) {
			t.Errorf("HTML part lacks the escaped %q:\n%s", want, m.HTMLBody)
		}
	}
	// The text part is not HTML: it says exactly what was given.
	if !strings.Contains(m.TextBody, "Bonjour "+hostile+",") || !hasLine(m.TextBody, `<p>&"'`) {
		t.Errorf("text part altered the values:\n%s", m.TextBody)
	}
}

func TestFrenchDateTime(t *testing.T) {
	for _, tc := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 11, 26, 13, 5, 0, 0, time.UTC), "jeudi 26 novembre 2026 à 14 h 05"},
		{time.Date(2026, 8, 15, 22, 0, 0, 0, time.UTC), "dimanche 16 août 2026 à 0 h 00"},
		{time.Date(2027, 1, 31, 23, 59, 0, 0, time.UTC), "lundi 1er février 2027 à 0 h 59"},
		{time.Date(2026, 12, 31, 10, 7, 0, 0, time.FixedZone("X", -5*3600)), "jeudi 31 décembre 2026 à 16 h 07"},
	} {
		if got := frenchDateTime(tc.at); got != tc.want {
			t.Errorf("frenchDateTime(%v) = %q, want %q", tc.at, got, tc.want)
		}
	}
}

func TestDefaultPortalName(t *testing.T) {
	m := PasswordChanged(Portal{URL: "https://x.example.fr/"}, "a@example.fr", "", time.Now(), time.Now())
	if !strings.Contains(m.TextBody, "Portail Extranet") {
		t.Errorf("no portal name:\n%s", m.TextBody)
	}
}
