package browser

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/caf-extranet/idp/e2e/harness"
)

// relyingApp is a small web application that delegates its login to the
// provider with standard client libraries, unchanged: coreos/go-oidc for
// discovery and ID token verification, golang.org/x/oauth2 for the code flow
// with PKCE S256. Its callback shows « Connecté : <email> » only after the
// ID token was verified (signature, issuer, audience, expiry, nonce), so the
// browser visibly ends up in the application.
type relyingApp struct {
	Name string
	URL  string // http://127.0.0.1:PORT

	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier

	mu      sync.Mutex
	pending map[string]loginAttempt // by state
	logins  []verifiedLogin
	fails   []string
}

type loginAttempt struct{ nonce, pkce string }

// verifiedLogin is what the application learnt from a verified ID token.
type verifiedLogin struct {
	Subject, Email string
}

// startRelyingApp registers the application with `idp client add` (a
// confidential client with its redirect URI on loopback) and serves it.
func startRelyingApp(t *testing.T, idp *harness.Server, id, name string) *relyingApp {
	t.Helper()
	app := &relyingApp{Name: name, pending: map[string]loginAttempt{}}
	srv := httptest.NewUnstartedServer(app)
	t.Cleanup(srv.Close)
	app.URL = "http://" + srv.Listener.Addr().String()
	redirect := app.URL + "/callback"
	out := harness.Admin(t, idp.Env, "client", "add", "--id", id, "--name", name,
		"--redirect-uri", redirect, "--home-url", app.URL+"/")
	secret := harness.ClientSecret(t, out)

	provider, err := oidc.NewProvider(context.Background(), idp.URL)
	if err != nil {
		t.Fatalf("discovery of %s: %v", idp.URL, err)
	}
	app.oauth = oauth2.Config{ClientID: id, ClientSecret: secret, Endpoint: provider.Endpoint(),
		RedirectURL: redirect, Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
	app.verifier = provider.Verifier(&oidc.Config{ClientID: id})
	srv.Start()
	return app
}

func (app *relyingApp) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/":
		app.render(w, http.StatusOK, app.Name, `<p><a href="/login">Se connecter</a></p>`)
	case "/login":
		app.startLogin(w, r)
	case "/callback":
		app.callback(w, r)
	default:
		http.NotFound(w, r)
	}
}

func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// startLogin sends the browser to the provider with a fresh state, nonce
// and PKCE verifier.
func (app *relyingApp) startLogin(w http.ResponseWriter, r *http.Request) {
	state, nonce, pkce := randomHex(), randomHex(), oauth2.GenerateVerifier()
	app.mu.Lock()
	app.pending[state] = loginAttempt{nonce: nonce, pkce: pkce}
	app.mu.Unlock()
	http.Redirect(w, r, app.oauth.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(pkce)), http.StatusFound)
}

// callback exchanges the code and verifies the ID token.
func (app *relyingApp) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	app.mu.Lock()
	attempt, ok := app.pending[q.Get("state")]
	delete(app.pending, q.Get("state"))
	app.mu.Unlock()
	login, err := func() (verifiedLogin, error) {
		if e := q.Get("error"); e != "" {
			return verifiedLogin{}, fmt.Errorf("error %s: %s", e, q.Get("error_description"))
		}
		if !ok {
			return verifiedLogin{}, fmt.Errorf("unknown state %q", q.Get("state"))
		}
		tok, err := app.oauth.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(attempt.pkce))
		if err != nil {
			return verifiedLogin{}, fmt.Errorf("code exchange: %w", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		idt, err := app.verifier.Verify(r.Context(), raw)
		if err != nil {
			return verifiedLogin{}, fmt.Errorf("ID token: %w", err)
		}
		if idt.Nonce != attempt.nonce {
			return verifiedLogin{}, fmt.Errorf("nonce %q, want %q", idt.Nonce, attempt.nonce)
		}
		var claims struct {
			Email string `json:"email"`
		}
		if err := idt.Claims(&claims); err != nil {
			return verifiedLogin{}, err
		}
		return verifiedLogin{Subject: idt.Subject, Email: claims.Email}, nil
	}()
	app.mu.Lock()
	defer app.mu.Unlock()
	if err != nil {
		app.fails = append(app.fails, err.Error())
		app.render(w, http.StatusBadGateway, "Échec de la connexion", "<p>"+template.HTMLEscapeString(err.Error())+"</p>")
		return
	}
	app.logins = append(app.logins, login)
	app.render(w, http.StatusOK, app.Name, "<p>Connecté : "+template.HTMLEscapeString(login.Email)+"</p>")
}

func (app *relyingApp) render(w http.ResponseWriter, status int, heading, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>%s</title></head>`+
		`<body><main><h1>%s</h1>%s</main></body></html>`,
		template.HTMLEscapeString(app.Name), template.HTMLEscapeString(heading), body)
}

// loginsOf lists the verified logins of an agent so far.
func (app *relyingApp) loginsOf(email string) []verifiedLogin {
	app.mu.Lock()
	defer app.mu.Unlock()
	var out []verifiedLogin
	for _, l := range app.logins {
		if strings.EqualFold(l.Email, email) {
			out = append(out, l)
		}
	}
	return out
}

// failures lists the callbacks that did not end in a verified login.
func (app *relyingApp) failures() []string {
	app.mu.Lock()
	defer app.mu.Unlock()
	return append([]string(nil), app.fails...)
}
