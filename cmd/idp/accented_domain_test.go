package main

import (
	"net/http"
	"testing"
)

// TestAccentedDomainIsTheAgentsAddress: accounts hold the ASCII form of an
// address (idp user add refuses any other: « a domain with accents in
// punycode »). An agent who types it as printed, with the accented domain,
// in a browser that submits type=email as typed (Firefox, old browsers),
// was answered « Identifiant ou mot de passe incorrect » with the right
// password, and its « Mot de passe oublié ? » mailed nobody. The domain
// now takes its ASCII form wherever an address is normalised: login,
// recovery and the voluntary change find the account.
func TestAccentedDomainIsTheAgentsAddress(t *testing.T) {
	const stored, typed = "agent@xn--socit-esab.fr", "Agent@Société.fr"
	e := newEnv(t, sqliteURL(t), withTestCaptcha)
	e.addAgent(stored, "Agent Accent", "Société", "motdepasse1")

	b := newBrowser(t, e.issuer)
	p := b.submit(b.get("/login").form("Valider").set("Adresse e-mail", typed).set("Mot de passe", "motdepasse1"))
	if p.Status != http.StatusOK || p.URL.Path != "/espace" {
		t.Fatalf("right password, accented domain: %d at %s %.300q", p.Status, p.URL.Path, p.text())
	}
	p.mustContain(stored)

	r := newBrowser(t, e.issuer)
	requestRecovery(t, r, r.get("/login"), typed, testCaptcha).mustContain("vient de vous être envoyé")
	e.deliverMail()
	provisional := e.provisionalPassword(stored)

	c := newBrowser(t, e.issuer)
	p = c.submit(c.get("/login/password").form("Valider").set("Adresse e-mail", typed).
		set("Mot de passe actuel", provisional).set("Nouveau mot de passe", "nouveau12").set("Confirmation mot de passe", "nouveau12"))
	p.mustContain("Votre mot de passe a été modifié.")
}
