package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestOAuthErrorsFollowTheResponseMode: the errors the login pages send back
// (prompt=none without a session) reach the application where its
// response_mode put them: the fragment, or a form posted to it.
func TestOAuthErrorsFollowTheResponseMode(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		p := b.get(rp1.authURL(oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("response_mode", "fragment")))
		loc, err := url.Parse(p.Location())
		if err != nil || !strings.HasPrefix(p.Location(), app1Redirect) || loc.RawQuery != "" {
			t.Fatalf("prompt=none, fragment: status %d, location %q", p.Status, p.Location())
		}
		frag, _ := url.ParseQuery(loc.Fragment)
		if frag.Get("error") != "login_required" || frag.Get("state") == "" {
			t.Fatalf("prompt=none, fragment: %q", loc.Fragment)
		}

		p = b.get(rp1.authURL(oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("response_mode", "form_post")))
		fields := formPostFields(t, p, app1Redirect)
		if fields["error"] != "login_required" || fields["state"] != rp1.state {
			t.Fatalf("prompt=none, form_post: fields %v", fields)
		}
	})
}

// formPostFields checks a form post page (one form to action, submitted by
// a script the page's Content-Security-Policy lets run, a button without
// JavaScript) and returns its fields.
func formPostFields(t *testing.T, p *page, action string) map[string]string {
	t.Helper()
	if p.Status != http.StatusOK || p.doc == nil {
		t.Fatalf("status %d, want a page with a form; location %q", p.Status, p.Location())
	}
	forms := findAll(p.doc, isElem("form"))
	if len(forms) != 1 || attr(forms[0], "action") != action {
		t.Fatalf("want one form posting to %s: %s", action, p.Body)
	}
	scripts := findAll(p.doc, isElem("script"))
	csp := p.Header.Get("Content-Security-Policy")
	if len(scripts) != 1 || attr(scripts[0], "nonce") == "" || !strings.Contains(csp, "'nonce-"+attr(scripts[0], "nonce")+"'") {
		t.Fatalf("the submitting script may not run: CSP %q, page %s", csp, p.Body)
	}
	if strings.Contains(csp, "unsafe-inline") || !strings.Contains(p.Body, "<noscript><button") {
		t.Fatalf("CSP %q or no button without JavaScript: %s", csp, p.Body)
	}
	fields := map[string]string{}
	for _, in := range findAll(forms[0], isElem("input")) {
		fields[attr(in, "name")] = attr(in, "value")
	}
	return fields
}

// TestDiscoveryListsWhatIsServed: the discovery document offers the code
// flow only, refresh, and the response modes the provider answers in; not
// the library's implicit flow, JWT bearer grant or device endpoint.
func TestDiscoveryListsWhatIsServed(t *testing.T) {
	e, _, _, _ := twoApps(t, "sqlite:"+t.TempDir()+"/idp.db")
	resp, err := http.Get(e.issuer + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"response_types_supported": "[code]",
		"grant_types_supported":    "[authorization_code refresh_token]",
		"response_modes_supported": "[query fragment form_post]",
		"issuer":                   e.issuer,
	} {
		if got := fmt.Sprint(d[key]); got != want {
			t.Errorf("%s = %s, want %s", key, got, want)
		}
	}
	if _, ok := d["device_authorization_endpoint"]; ok {
		t.Errorf("device_authorization_endpoint advertised: %v", d["device_authorization_endpoint"])
	}
}

// TestAuthorizeErrorsFollowFormPost (OAuth 2.0 Form Post Response Mode §2):
// the errors /authorize itself refuses a request with, ours (a public
// client without PKCE) and the library's (prompt=none with another value),
// reach an application that asked for response_mode=form_post as a form
// posted to it, never in a query string it does not read.
func TestAuthorizeErrorsFollowFormPost(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, _, rp2 := twoApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		// Each URL is made in turn: authURL draws the state the answer must carry.
		for name, authURL := range map[string]func() string{
			"public client without PKCE": func() string {
				u := rp2.authURL(oauth2.SetAuthURLParam("response_mode", "form_post"))
				return strings.NewReplacer("code_challenge=", "x=", "code_challenge_method=", "y=").Replace(u)
			},
			"prompt=none with login": func() string {
				return rp2.authURL(oauth2.SetAuthURLParam("response_mode", "form_post"), oauth2.SetAuthURLParam("prompt", "none login"))
			},
		} {
			u := authURL()
			p := b.get(u)
			if p.Location() != "" {
				t.Fatalf("%s: response_mode=form_post error answered by a redirect: status %d, location %q", name, p.Status, p.Location())
			}
			fields := formPostFields(t, p, app2Redirect)
			if fields["error"] != "invalid_request" || fields["state"] != rp2.state || fields["error_description"] == "" {
				t.Fatalf("%s: form fields %v", name, fields)
			}
		}
	})
}
