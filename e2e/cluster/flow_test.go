package cluster

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/caf-extranet/idp/storage/postgres/pgtest"
)

// Node indexes.
const (
	nodeA = 0
	nodeB = 1
)

// TestFlowMovesBetweenInstances: the whole « Mot de passe oublié ? »
// procedure, then the code flow, a refresh and single sign-on, moving
// between the two instances at every step. Nothing a step needs may live in
// one process's memory.
func TestFlowMovesBetweenInstances(t *testing.T) {
	t.Parallel()
	c := startCluster(t, pgtest.URL(t), 2)
	c.addAgent(agentEmail, agentPassword)
	secret := c.addClient()
	rp := c.newRP(t, secret)
	b := c.newBrowser(t)

	// /authorize on A stores the auth request; B shows its login page.
	p := b.get(nodeA, rp.on(nodeA).authURL())
	if p.status != http.StatusFound || p.location().Path != "/login" {
		t.Fatalf("authorize: status %d, location %q", p.status, p.header.Get("Location"))
	}
	authRequestID := p.location().Query().Get("authRequestID")
	p = b.follow(nodeB, p)
	p.mustContain("Mot de passe oublié ?")

	// A CAPTCHA drawn on A, answered wrong on B: refused. The challenge is
	// spent on both: the right answer replayed on A is refused too.
	forgot := "/login/forgot?authRequestID=" + authRequestID
	drawn := b.get(nodeA, forgot)
	_, hidden := drawn.form("/login/forgot")
	wrong := b.submit(nodeB, drawn, "/login/forgot", map[string]string{"email": agentEmail, "captcha": strings.ToLower(captchaAnswer)})
	if wrong.status != http.StatusOK {
		t.Fatalf("wrong answer: status %d", wrong.status)
	}
	wrong.mustContain("la vérification du texte a échoué")
	replay := b.submit(nodeA, drawn, "/login/forgot", map[string]string{"email": agentEmail, "captcha": captchaAnswer})
	replay.mustContain("la vérification du texte a échoué")
	if hidden.Get("challenge") == "" {
		t.Fatal("the forgot form carries no challenge")
	}

	// Drawn on A, answered right on B: the recovery request is recorded;
	// whichever instance's workers pick it up, the mail goes out once.
	drawn = b.get(nodeA, forgot)
	sent := b.submit(nodeB, drawn, "/login/forgot", map[string]string{"email": agentEmail, "captcha": captchaAnswer})
	if sent.status != http.StatusSeeOther || sent.location().Path != "/login/forgot/sent" {
		t.Fatalf("right answer: status %d, location %q: %.800s", sent.status, sent.header.Get("Location"), sent.text())
	}
	b.follow(nodeA, sent).mustContain("un e-mail contenant un mot de passe provisoire vient de vous être envoyé")
	provisional := c.waitProvisional(agentEmail, 1)

	// The provisional password is used on B (the form from A); the forced
	// change is shown by B and made on A.
	p = b.get(nodeA, "/login?authRequestID="+authRequestID)
	p = b.submit(nodeB, p, "/login", map[string]string{"email": agentEmail, "password": provisional})
	if p.status != http.StatusSeeOther || p.location().Path != "/login/change" {
		t.Fatalf("provisional login: status %d, location %q: %.800s", p.status, p.header.Get("Location"), p.text())
	}
	p = b.follow(nodeB, p)
	p.mustContain("Nouveau mot de passe")
	newPassword := "nouveau2025"
	// The change, made on A, answers the code for the request A stored
	// (its login page was shown by B).
	p = b.submit(nodeA, p, "/login/change", map[string]string{"current": provisional, "new": newPassword, "confirmation": newPassword})
	if p.status != http.StatusFound || p.location().Query().Get("code") == "" {
		t.Fatalf("forced change: status %d, location %q: %.800s", p.status, p.header.Get("Location"), p.text())
	}
	code := rp.code(p.location())

	// Code exchanged on A (the ID token verified with A's keys), refresh on
	// B (verified with the same keys), userinfo on A.
	tok, idt, err := rp.on(nodeA).exchange(code)
	if err != nil {
		t.Fatalf("code exchange on A: %v\n%s", err, c.logs())
	}
	refreshed, err := rp.on(nodeB).refresh(tok.RefreshToken)
	if err != nil {
		t.Fatalf("refresh on B: %v", err)
	}
	if refreshed.RefreshToken == "" || refreshed.RefreshToken == tok.RefreshToken {
		t.Fatal("refresh on B did not rotate the refresh token")
	}
	idt2, err := rp.verify(refreshed)
	if err != nil || idt2.Subject != idt.Subject {
		t.Fatalf("ID token from B: %v (subject %v, want %s)", err, idt2, idt.Subject)
	}
	info, err := rp.on(nodeA).provider.UserInfo(rp.ctx, oauth2.StaticTokenSource(refreshed))
	if err != nil || info.Email != agentEmail || info.Subject != idt.Subject {
		t.Fatalf("userinfo on A with B's access token: %v %+v", err, info)
	}
	// The old refresh token, reused on A, is refused (rotation is shared).
	if _, err := rp.on(nodeA).refresh(tok.RefreshToken); err == nil {
		t.Fatal("a rotated refresh token was accepted by the other instance")
	}

	// Single sign-on: the session opened on B and upgraded on A gets B's
	// /authorize to answer a code at once.
	p = b.get(nodeB, rp.on(nodeB).authURL())
	if p.status != http.StatusFound || p.location().Query().Get("code") == "" {
		t.Fatalf("SSO on B: status %d, location %q: %.800s", p.status, p.header.Get("Location"), p.text())
	}
	if _, _, err := rp.on(nodeB).exchange(rp.code(p.location())); err != nil {
		t.Fatalf("SSO code exchange on B: %v", err)
	}

	// Each instance did serve the steps the load balancer sent it.
	wantServed := map[int][]string{
		nodeA: {"GET /authorize", "GET /login/forgot", "POST /login/change", "POST /oauth/token"},
		nodeB: {"GET /login", "POST /login/forgot", "POST /login", "GET /login/change", "GET /authorize", "POST /oauth/token"},
	}
	onlyOn := map[int][]string{
		nodeA: {"POST /login/change"},
		nodeB: {"POST /login", "GET /login/change"},
	}
	for i, want := range wantServed {
		served := servedRequests(c.nodes[i].srv.Logs())
		for _, r := range want {
			if !served[r] {
				t.Errorf("instance %s never served %s", c.nodes[i].name, r)
			}
		}
		// ...and the steps only ever sent to the other never reached it.
		for _, r := range onlyOn[1-i] {
			if served[r] {
				t.Errorf("instance %s served %s, sent to the other", c.nodes[i].name, r)
			}
		}
	}
}

// servedRequests reads an instance's JSON request log: "METHOD /path" of
// every request it answered.
func servedRequests(logs string) map[string]bool {
	served := map[string]bool{}
	for _, line := range strings.Split(logs, "\n") {
		var entry struct {
			Msg, Method, Path string
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Msg == "request" {
			served[entry.Method+" "+entry.Path] = true
		}
	}
	return served
}

// TestInstancesShareKeys: both instances publish the same JWKS, created once
// although both started on an empty database; a rotation reaches both
// instances, and a token the other instance signs with the new key verifies
// against the keys this one publishes.
func TestInstancesShareKeys(t *testing.T) {
	t.Parallel()
	c := startCluster(t, pgtest.URL(t), 2)
	kidsA, kidsB := publishedKids(t, c, nodeA), publishedKids(t, c, nodeB)
	if len(kidsA) != 1 || !slices.Equal(kidsA, kidsB) {
		t.Fatalf("JWKS: A publishes %v, B publishes %v; want the same single key", kidsA, kidsB)
	}

	oldKid := kidsA[0]

	// The rotation is made by another process of the same deployment (`idp
	// keys rotate`); each instance sees it at its next read of the change
	// generations, once a second (the key cache's own lifetime is 5 min).
	c.admin("keys", "rotate")
	deadline := time.Now().Add(10 * time.Second) // a loaded CI machine; the TTL alone would take 5 min
	for !(len(kidsA) == 2 && slices.Equal(kidsA, kidsB)) {
		if time.Now().After(deadline) {
			t.Fatalf("after a rotation: A publishes %v, B publishes %v", kidsA, kidsB)
		}
		time.Sleep(500 * time.Millisecond)
		kidsA, kidsB = publishedKids(t, c, nodeA), publishedKids(t, c, nodeB)
	}
	newKid := kidsA[0]
	if newKid == oldKid {
		newKid = kidsA[1]
	}

	// B signs with the new key (published ahead by 0 s); the relying party
	// verifies the ID token with the key set it fetched from A.
	c.addAgent(agentEmail, agentPassword)
	rp := c.newRP(t, c.addClient())
	b := c.newBrowser(t)
	p := b.follow(nodeB, b.get(nodeB, rp.on(nodeB).authURL()))
	p = b.submit(nodeB, p, "/login", map[string]string{"email": agentEmail, "password": agentPassword})
	code := rp.code(p.location())
	rp.on(nodeB)
	tok, err := rp.oauth.Exchange(rp.ctx, code, oauth2.VerifierOption(rp.pkce))
	if err != nil {
		t.Fatalf("exchange on B: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if kid := tokenKid(t, raw); kid != newKid {
		t.Fatalf("B signed with %s, want the new key %s (old: %s)", kid, newKid, oldKid)
	}
	rp.on(nodeA)
	if _, err := rp.verifier.Verify(rp.ctx, raw); err != nil {
		t.Fatalf("B's token does not verify with A's keys: %v", err)
	}
}

// TestClientRemovalReachesEveryInstance: a client removed by `idp client
// remove` is refused by an instance that had it cached, within about a
// second (its client cache's own lifetime is 5 min).
func TestClientRemovalReachesEveryInstance(t *testing.T) {
	t.Parallel()
	c := startCluster(t, pgtest.URL(t), 2)
	secret := c.addClient()
	// An unknown refresh token, sent by the authenticated client: B reads
	// the client, caches it, and answers that the grant is invalid.
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"inconnu"}}
	status, body, err := c.tokenCall(nodeB, secret, form)
	if err != nil || status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("before the removal: %d %v %v; want 400 invalid_grant", status, body, err)
	}
	c.admin("client", "remove", "--id", clientID)
	removed := time.Now()
	for {
		status, body, err = c.tokenCall(nodeB, secret, form)
		if err == nil && status == http.StatusUnauthorized && body["error"] == "invalid_client" {
			break
		}
		if time.Since(removed) > 10*time.Second { // a loaded CI machine; the TTL alone would take 5 min
			t.Fatalf("10 s after the removal, B still answers %d %v %v; want 401 invalid_client", status, body, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("B refused the removed client %v after the removal", time.Since(removed).Round(10*time.Millisecond))
}

// publishedKids are the key ids of node i's JWKS, sorted.
func publishedKids(t *testing.T, c *cluster, i int) []string {
	t.Helper()
	client := &http.Client{Transport: c.nodes[i].transport, Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + c.nodes[i].addr + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &set); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("JWKS of %s: %d %v %s", c.nodes[i].name, resp.StatusCode, err, raw)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return kids
}

// tokenKid is the key id in a JWT's header.
func tokenKid(t *testing.T, jwt string) string {
	t.Helper()
	head, _, ok := strings.Cut(jwt, ".")
	if !ok {
		t.Fatalf("not a JWT: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Kid
}
