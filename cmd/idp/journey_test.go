package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/caf-extranet/idp/config"
)

// The journey's own secrets, chosen so that none is a substring of anything
// the provider would write for another reason.
const (
	journeyCaptcha     = "Zq8Wm3"
	journeyWrongPass   = "mauvais4417"
	journeyForcedPass  = "choisi2026k"
	journeyVoluntaryPW = "voulu2027q"
)

func withJourneyCaptcha(c *config.Config) { c.Captcha.TestAnswer = journeyCaptcha }

// seenResponse is one HTTP answer a test client received from the provider.
type seenResponse struct {
	Method string
	Path   string
	Query  string
	Status int
	Header http.Header
	Body   string // HTML pages only (for the inline-script check)
}

// responseLog collects every answer, redirects included, that the clients
// it wraps received.
type responseLog struct {
	mu sync.Mutex
	rs []seenResponse
}

func (l *responseLog) all() []seenResponse {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]seenResponse(nil), l.rs...)
}

// recordingTransport records each response (headers, and the body of HTML
// pages) before handing it on.
type recordingTransport struct {
	next http.RoundTripper
	log  *responseLog
	// header is added to every request (e.g. X-Forwarded-For).
	header http.Header
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if len(rt.header) > 0 {
		req = req.Clone(req.Context())
		for k, vs := range rt.header {
			req.Header[k] = vs
		}
	}
	next := rt.next
	if next == nil {
		next = http.DefaultTransport
	}
	resp, err := next.RoundTrip(req)
	if err != nil || rt.log == nil {
		return resp, err
	}
	seen := seenResponse{Method: req.Method, Path: req.URL.Path, Query: req.URL.RawQuery, Status: resp.StatusCode, Header: resp.Header.Clone()}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		body, rerr := readAllAndRestore(resp)
		if rerr != nil {
			return nil, rerr
		}
		seen.Body = body
	}
	rt.log.mu.Lock()
	rt.log.rs = append(rt.log.rs, seen)
	rt.log.mu.Unlock()
	return resp, nil
}

// journey is what a full run through the provider used and saw.
type journey struct {
	secrets   map[string]string // what it is → value
	responses *responseLog
	agentID   string
}

func (j *journey) secret(name, value string) {
	if value == "" {
		return
	}
	j.secrets[name] = value
}

func (j *journey) tokens(when string, tok *oauth2.Token) {
	j.secret(when+" access token", tok.AccessToken)
	j.secret(when+" refresh token", tok.RefreshToken)
	if idt, ok := tok.Extra("id_token").(string); ok {
		j.secret(when+" ID token", idt)
	}
}

// cookies records every cookie the browser holds for the provider: session
// and CSRF cookies are bearer secrets.
func (j *journey) cookies(who string, b *browser) {
	u, _ := url.Parse(b.origin + "/")
	for _, c := range b.client.Jar.Cookies(u) {
		j.secret(who+" cookie "+c.Name, c.Value)
	}
}

// names lists the secrets' names, sorted, for stable messages.
func (j *journey) names() []string {
	var out []string
	for k := range j.secrets {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// recordClient makes c record into the journey's log.
func (j *journey) recordClient(c *http.Client) {
	c.Transport = &recordingTransport{log: j.responses}
}

// runJourney takes one agent through everything the provider serves: a
// wrong then a right personal password, the code flow with a confidential
// client, userinfo, refresh, the secure space; « Mot de passe oublié ? »
// with the CAPTCHA, the provisional password, the forced change, tokens
// again; the voluntary change; a replayed code and a replayed refresh token;
// the error pages; logout. The env must have been built with
// withJourneyCaptcha.
func runJourney(t *testing.T, e *testEnv) *journey {
	t.Helper()
	j := &journey{secrets: map[string]string{}, responses: &responseLog{}}
	agent := e.addAgent(agentEmail, "Claire Dupont", "Mairie de Lyon", agentPass)
	j.agentID = agent.ID
	secret := e.addClient("app1", app1Redirect, false)
	j.secret("client secret", secret)
	j.secret("personal password", agentPass)
	j.secret("wrong password", journeyWrongPass)
	j.secret("CAPTCHA answer", journeyCaptcha)
	j.secret("forced-change password", journeyForcedPass)
	j.secret("voluntary-change password", journeyVoluntaryPW)

	rp := newRP(t, e, "app1", secret, app1Redirect, oidc.ScopeOpenID, "email", "profile", oidc.ScopeOfflineAccess)
	rpClient := &http.Client{}
	j.recordClient(rpClient)
	rp.ctx = context.WithValue(rp.ctx, oauth2.HTTPClient, rpClient)

	// 1. The personal password, wrong then right; tokens, userinfo, refresh.
	b := newBrowser(t, e.issuer)
	j.recordClient(b.client)
	p := login(t, b, b.get(rp.authURL()), agentEmail, journeyWrongPass)
	p.mustContain("Identifiant ou mot de passe incorrect")
	out := b.submit(p.form("Valider").set("Adresse e-mail", agentEmail).set("Mot de passe", agentPass))
	code := rp.callback(out.Location())
	j.secret("first code", code)
	li := rp.mustExchange(code)
	j.tokens("first login", li.token)
	if _, err := rp.provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(li.token)); err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	refreshed := refresh(t, rp, li.token.RefreshToken)
	j.tokens("refreshed", refreshed)
	// Replays: the code, and the refresh token already rotated.
	if _, err := rp.exchange(code); err == nil {
		t.Fatal("a replayed code was accepted")
	}
	if _, err := refreshErr(rp, li.token.RefreshToken); err == nil {
		t.Fatal("a replayed refresh token was accepted")
	}
	space := b.get("/espace")
	space.mustContain("Mettre à jour votre mot de passe")
	j.cookies("first browser", b)

	// 2. « Mot de passe oublié ? », the provisional password, the forced change.
	b2 := newBrowser(t, e.issuer)
	j.recordClient(b2.client)
	p = requestRecovery(t, b2, b2.get(rp.authURL()), agentEmail, journeyCaptcha)
	p.mustContain("Si cette adresse correspond à un compte")
	e.deliverMail()
	provisional := e.provisionalPassword(agentEmail)
	j.secret("provisional password", provisional)
	p = login(t, b2, b2.get(findLink(t, p, "Retour à la page de connexion")), agentEmail, provisional)
	p.mustContain("Par mesure de sécurité")
	j.cookies("changing browser", b2)
	out = b2.submit(p.form("Valider").set("Mot de passe actuel", provisional).
		set("Nouveau mot de passe", journeyForcedPass).set("Confirmation mot de passe", journeyForcedPass))
	code2 := rp.callback(out.Location())
	j.secret("second code", code2)
	li2 := rp.mustExchange(code2)
	j.tokens("after the change", li2.token)
	j.tokens("refreshed after the change", refresh(t, rp, li2.token.RefreshToken))
	j.cookies("second browser", b2)

	// 3. The secure space, its link to the voluntary change, logout.
	p = b2.get("/espace")
	changeLink := findLink(t, p, "Mettre à jour votre mot de passe")
	out = b2.submit(p.form("Se déconnecter"))
	if out.Status != http.StatusOK {
		t.Fatalf("logout: status %d at %s", out.Status, out.URL)
	}

	// 4. The voluntary change, in a browser without a session.
	b3 := newBrowser(t, e.issuer)
	j.recordClient(b3.client)
	p = b3.get(changeLink)
	p = b3.submit(p.form("Valider").set("Adresse e-mail", agentEmail).set("Mot de passe actuel", journeyForcedPass).
		set("Nouveau mot de passe", journeyVoluntaryPW).set("Confirmation mot de passe", journeyVoluntaryPW))
	if p.Status != http.StatusOK || !strings.Contains(p.URL.RawQuery, "password_changed") {
		t.Fatalf("voluntary change: status %d at %s", p.Status, p.URL)
	}
	j.cookies("third browser", b3)

	// 5. Error pages (an expired login, an unknown client), the stylesheet,
	// discovery and the keys; the notifications go out.
	b3.get("/login?authRequestID=inconnu")
	b3.get("/authorize?client_id=inconnu&response_type=code&scope=openid&redirect_uri=" + url.QueryEscape(app1Redirect))
	b3.get("/static/style.css")
	// What relying applications fetch with their own clients.
	b3.get("/.well-known/openid-configuration")
	b3.get("/keys")
	e.deliverMail()
	return j
}

// readAllAndRestore reads a response's body and puts it back for the caller.
func readAllAndRestore(resp *http.Response) (string, error) {
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return "", err
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return string(b), nil
}
