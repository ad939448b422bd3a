package loginui

import (
	"io/fs"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// The legal notice, as the procedure document writes it, and its bold parts.
var legalNotice = []string{
	"Ce service professionnel est réservé aux seules personnes habilitées. Si vous n'êtes pas l'une d'entre elles, l'accès et le maintien dans ce site pourront être poursuivis au titre de la Loi n° 88-19 du 5 Janvier 1988 (dite loi Godfrain), de même que les tentatives pour fausser ou entraver son fonctionnement.",
	"En accédant à ce service, vous vous engagez à limiter l'utilisation des informations auxquelles vous avez accès aux missions et finalités définies dans la convention signée entre la Caf et votre organisme.",
	"Votre hiérarchie vous a communiqué des droits d'accès qui vous sont personnellement affectés, et qui ont été notifiés au gestionnaire des habilitations de la Caf. Afin de garantir la confidentialité des données, et d'éviter toute intrusion, vous ne devez jamais communiquer ni partager votre identifiant et votre mot de passe. En cas de non-respect, votre responsabilité personnelle pourra être recherchée et la convention dénoncée.",
}

var legalBold = []string{
	"est réservé aux seules personnes habilitées",
	"qui vous sont personnellement affectés",
	"vous ne devez jamais communiquer ni partager votre identifiant et votre mot de passe",
}

// allPages visits every page of the UI in the states that show it and
// returns them by name.
func allPages(t *testing.T) map[string]*page {
	e := newEnv(t)
	id := e.addAuthRequest(nil)
	pages := map[string]*page{}
	b := e.browser()
	pages["login"] = b.get("/login?authRequestID=" + id)
	pages["login error"] = b.submit(pages["login"], "/login", url.Values{"email": {agentEmail}, "password": {"faux"}})
	pages["forgot"] = b.get("/login/forgot?authRequestID=" + id)
	pages["forgot error"] = b.submit(pages["forgot"], "/login/forgot", url.Values{"email": {agentEmail}, "captcha": {"faux"}})
	pages["forgot question"] = b.submit(pages["forgot"], "/login/forgot", url.Values{"email": {agentEmail}, "question": {"x"}})
	pages["sent"] = b.get("/login/forgot/sent?authRequestID=" + id)
	pages["password"] = b.get("/login/password?authRequestID=" + id)
	pages["expired"] = b.get("/login?authRequestID=inconnu")
	pages["csrf"] = b.post("/login/password", url.Values{"email": {agentEmail}})
	pages["not found"] = b.get("/login/")
	pages["method not allowed"] = b.get("/logout")

	changing := e.browser()
	p := changing.get("/login?authRequestID=" + id)
	changing.submit(p, "/login", url.Values{"email": {agentEmail}, "password": {provisional}})
	pages["change"] = changing.get("/login/change?authRequestID=" + id)

	active := e.browser()
	active.loginAs(agentPassword)
	pages["space"] = active.get("/espace")
	for name, p := range pages {
		if p.resp.StatusCode == http.StatusSeeOther || p.doc == nil {
			t.Fatalf("%s: status %d, not a page:\n%s", name, p.resp.StatusCode, p.body)
		}
	}
	return pages
}

func TestEveryPageHasLegalNoticeLanguageAndNoScript(t *testing.T) {
	for name, p := range allPages(t) {
		t.Run(name, func(t *testing.T) {
			// The notice is one section of the page, above any form, where
			// the agency's document shows it.
			var footer []*html.Node
			for _, s := range findAll(p.doc, "section") {
				if attr(s, "class") == "legal" {
					footer = append(footer, s)
				}
			}
			if len(footer) != 1 {
				t.Fatalf("want one legal notice section, got %d", len(footer))
			}
			if forms := findAll(p.doc, "form"); len(forms) > 0 && !strings.Contains(p.body[:strings.Index(p.body, "<form")], `class="legal"`) {
				t.Error("the legal notice comes after the form")
			}
			var paragraphs []string
			for _, para := range findAll(footer[0], "p") {
				paragraphs = append(paragraphs, text(para))
			}
			if !slices.Equal(paragraphs, legalNotice) {
				t.Errorf("legal notice:\n%q\nwant:\n%q", paragraphs, legalNotice)
			}
			var bold []string
			for _, s := range findAll(footer[0], "strong") {
				bold = append(bold, text(s))
			}
			if !slices.Equal(bold, legalBold) {
				t.Errorf("bold parts %q, want %q", bold, legalBold)
			}
			if htmlEl := findAll(p.doc, "html")[0]; attr(htmlEl, "lang") != "fr" {
				t.Errorf("lang=%q", attr(htmlEl, "lang"))
			}
			if len(findAll(p.doc, "script")) > 0 || len(findAll(p.doc, "style")) > 0 {
				t.Error("page has a script or style element")
			}
			var walk func(*html.Node)
			walk = func(n *html.Node) {
				if n.Type == html.ElementNode && (hasAttr(n, "style") || slices.ContainsFunc(n.Attr, func(a html.Attribute) bool { return strings.HasPrefix(a.Key, "on") })) {
					t.Errorf("<%s> has an inline style or event handler", n.Data)
				}
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c)
				}
			}
			walk(p.doc)
			if len(findAll(p.doc, "title")) != 1 || text(findAll(p.doc, "title")[0]) == "" {
				t.Error("no title")
			}
			if n := len(findAll(p.doc, "h1")); n != 1 {
				t.Errorf("%d h1", n)
			}
		})
	}
}

// Every input but hidden ones and buttons has a <label for> matching its id,
// ids are unique, and every aria-describedby points at existing elements.
func TestEveryInputIsLabelled(t *testing.T) {
	for name, p := range allPages(t) {
		t.Run(name, func(t *testing.T) {
			labels := map[string]bool{}
			for _, l := range findAll(p.doc, "label") {
				labels[attr(l, "for")] = true
			}
			ids := map[string]bool{}
			var walk func(*html.Node)
			walk = func(n *html.Node) {
				if n.Type == html.ElementNode && attr(n, "id") != "" {
					if ids[attr(n, "id")] {
						t.Errorf("duplicate id %q", attr(n, "id"))
					}
					ids[attr(n, "id")] = true
				}
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					walk(c)
				}
			}
			walk(p.doc)
			for _, in := range findAll(p.doc, "input") {
				typ := attr(in, "type")
				if typ == "hidden" || typ == "submit" {
					continue
				}
				id := attr(in, "id")
				if id == "" || !labels[id] {
					t.Errorf("input name=%q id=%q has no <label for>", attr(in, "name"), id)
				}
				for _, ref := range strings.Fields(attr(in, "aria-describedby")) {
					if byID(p.doc, ref) == nil {
						t.Errorf("input %q: aria-describedby %q points nowhere", id, ref)
					}
				}
			}
			for _, img := range findAll(p.doc, "img") {
				if attr(img, "alt") == "" {
					t.Error("image without alt text")
				}
			}
		})
	}
}

func TestPagesShowTheDocumentsWording(t *testing.T) {
	pages := allPages(t)
	wantContains(t, pages["login"], "Adresse e-mail", "Mot de passe", "Valider", "Mot de passe oublié ?",
		"Pourquoi changer son mot de passe ?", "Pour des raisons de sécurité, pensez à changer régulièrement votre mot de passe.",
		"Mettre à jour votre mot de passe")
	wantContains(t, pages["forgot"], "Adresse e-mail", "Saisissez le texte ci-dessus",
		"A quoi ça sert ?", "Cette fonctionnalité nous aide à empêcher des programmes automatisés de réinitialiser les mots de passe.",
		"Saisissez le texte tel qu'il apparaît dans l'image. N'insérez pas d'espace entre les lettres.",
		"Valider", "Annuler", "Nouvelle image", "Je ne peux pas lire l'image : me poser une question")
	wantContains(t, pages["forgot error"], "la vérification du texte a échoué")
	wantContains(t, pages["sent"], "Si cette adresse correspond à un compte, un e-mail contenant un mot de passe provisoire vient de vous être envoyé.",
		"« Votre mot de passe »", "SPAM", "« Courrier indésirable »")
	wantContains(t, pages["change"], "Par mesure de sécurité, veuillez maintenant personnaliser votre mot de passe.",
		"Mot de passe actuel", "Nouveau mot de passe", "Confirmation mot de passe", "Valider",
		"Pourquoi changer son mot de passe ?", "au moins une lettre minuscule", "au moins un chiffre", "entre 6 et 20 caractères")
	wantContains(t, pages["password"], "Mettre à jour votre mot de passe", "Adresse e-mail", "Mot de passe actuel",
		"Nouveau mot de passe", "Confirmation mot de passe", "Valider", "Annuler")
	wantContains(t, pages["expired"], "Votre demande de connexion a expiré")
	wantContains(t, pages["csrf"], "La session du formulaire a expiré. Veuillez recommencer.")
	wantContains(t, pages["space"], "Camille Martin", agentEmail, "Mairie de Lille", "Portail RSA", "Statistiques",
		"Mettre à jour votre mot de passe", "Se déconnecter")

	// The image has a data: PNG and an alt text that does not give the answer.
	img := findAll(pages["forgot"].doc, "img")
	if len(img) != 1 || !strings.HasPrefix(attr(img[0], "src"), "data:image/png;base64,") {
		t.Fatalf("CAPTCHA image: %v", img)
	}
	if alt := attr(img[0], "alt"); alt != "Image contenant le texte à recopier" || strings.Contains(alt, testAnswer) {
		t.Errorf("alt=%q", alt)
	}
	// The question alternative asks in French words.
	if !strings.Contains(pages["forgot question"].text(), "Combien font") {
		t.Error("no question alternative")
	}
	// The answer field must not be capitalised by phones' keyboards.
	if in := pages["forgot"].input(t, "captcha"); attr(in, "autocapitalize") != "off" {
		t.Error("CAPTCHA field is auto-capitalised")
	}
	// The policy help is linked to the new password field.
	if in := pages["change"].input(t, "new"); !slices.Contains(strings.Fields(attr(in, "aria-describedby")), policyHelpID) {
		t.Error("policy help not linked to « Nouveau mot de passe »")
	}
	// Status codes of the error pages.
	wantStatus(t, pages["expired"], http.StatusBadRequest)
	wantStatus(t, pages["csrf"], http.StatusForbidden)
	// The error summary is announced and links to the field.
	summary := byID(pages["login error"].doc, "error-summary-title")
	if summary == nil || attr(summary.Parent, "role") != "alert" {
		t.Fatal("error summary missing or not role=alert")
	}
	if a := findAll(summary.Parent, "a"); len(a) != 1 || attr(a[0], "href") != "#password" {
		t.Errorf("summary links: %v", a)
	}
	if title := text(findAll(pages["login error"].doc, "title")[0]); !strings.HasPrefix(title, "Erreur") {
		t.Errorf("title %q does not say there is an error", title)
	}
}

// Every text key the templates use is in the catalog. Rendering with a
// missing key fails (and the pages above render), but some keys show only in
// rare states.
func TestCatalogHasEveryKeyTheTemplatesUse(t *testing.T) {
	c := catalogFR()
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil || len(files) == 0 {
		t.Fatal(files, err)
	}
	call := regexp.MustCompile(`\{\{-?\s*\(?(t|tf|th) "([^"]+)"`)
	found := 0
	for _, f := range files {
		raw, err := fs.ReadFile(templateFS, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range call.FindAllStringSubmatch(string(raw), -1) {
			found++
			if m[1] == "th" {
				_, err = c.html(m[2])
			} else {
				_, err = c.get(m[2])
			}
			if err != nil {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
	if found < 30 {
		t.Fatalf("only %d text calls found: the pattern is broken", found)
	}
	for _, name := range []string{"password_changed", "logged_out", "change_lapsed"} {
		key, ok := noticeKey(name)
		if _, err := c.get(key); !ok || err != nil {
			t.Error(name, err)
		}
	}
	for n := 1; n <= questionMaxOperand; n++ {
		if _, err := c.resolve(msg("number." + strconv.Itoa(n))); err != nil {
			t.Error(err)
		}
	}
}
