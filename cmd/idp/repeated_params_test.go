package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// TestAuthorizeRefusesARepeatedParameter (RFC 6749 §3.1, §4.1.2.1): a
// parameter sent twice is invalid_request, never "the last one wins". The
// error goes back to the registered redirect_uri, the way response_mode
// asks, when client_id and redirect_uri were each sent once; otherwise the
// agent gets the error page.
func TestAuthorizeRefusesARepeatedParameter(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		rp1.signIn(t, b)

		p := b.get(rp1.authURL() + "&state=second")
		loc, err := url.Parse(p.Location())
		if err != nil || !strings.HasPrefix(p.Location(), app1Redirect) {
			t.Fatalf("state twice: status %d, location %q", p.Status, p.Location())
		}
		if q := loc.Query(); q.Get("error") != "invalid_request" || q.Has("code") || q.Has("state") {
			t.Fatalf("state twice: %q, want invalid_request without a code or a state", loc.RawQuery)
		}

		p = b.get(rp1.authURL(oauth2.SetAuthURLParam("response_mode", "form_post")) + "&scope=openid")
		fields := formPostFields(t, p, app1Redirect)
		if fields["error"] != "invalid_request" || fields["state"] != rp1.state || fields["code"] != "" {
			t.Fatalf("scope twice, form_post: fields %v", fields)
		}

		for _, extra := range []string{"&redirect_uri=" + url.QueryEscape(app1Redirect), "&client_id=app1", "&client_id=app2"} {
			p = b.get(rp1.authURL() + extra)
			if p.Status != http.StatusBadRequest || p.Location() != "" {
				t.Fatalf("%s: status %d, location %q; want the error page", extra, p.Status, p.Location())
			}
			p.mustContain("Connexion impossible", "Code technique : invalid_request")
		}
	})
}

// TestLogoutRefusesARepeatedParameter: at /end_session too a parameter sent
// twice is refused, and the session stays: the confirmation page read the
// first id_token_hint, the library the last, so
// "?id_token_hint=x&id_token_hint=" was a logout without a hint that the
// confirmation page never saw.
func TestLogoutRefusesARepeatedParameter(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		li := rp1.signIn(t, b)
		raw, _ := li.token.Extra("id_token").(string)
		for _, query := range []string{
			"id_token_hint=x&id_token_hint=",
			url.Values{"id_token_hint": {raw, raw}}.Encode(),
			url.Values{"id_token_hint": {raw}, "state": {"a", "b"}}.Encode(),
		} {
			p := b.get("/end_session?" + query)
			if p.Status != http.StatusBadRequest || p.Location() != "" {
				t.Fatalf("%s: status %d at %s, location %q", query, p.Status, p.URL, p.Location())
			}
			p.mustContain("Code technique : invalid_request")
			if !signedIn(t, b, rp1) {
				t.Fatalf("%s ended the session", query)
			}
		}
	})
}

// TestAnEmptyNamedParameterDoesNotHideARepeat: a parameter whose name is
// empty, repeated ("&=&="), sorts before every other: taken for "no
// repeat", it let state=a&state=b through, and the library took the last
// state.
func TestAnEmptyNamedParameterDoesNotHideARepeat(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		rp1.signIn(t, b)
		p := b.get(rp1.authURL() + "&=&=&state=second")
		loc, _ := url.Parse(p.Location())
		if q := loc.Query(); q.Get("error") != "invalid_request" || q.Has("code") {
			t.Fatalf("state twice behind an empty-named pair: status %d, location %q; want invalid_request", p.Status, p.Location())
		}
	})
}

// TestRepeatedUnknownParameterIsIgnored (RFC 6749 §3.1: the server MUST
// ignore the request parameters it does not know; RFC 8707: resource may
// be repeated, and a server without resource indicators ignores it): an
// application that asks for two resources, or whose link carries a repeated
// tracking parameter, gets its code.
func TestRepeatedUnknownParameterIsIgnored(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, _, rp1, _ := twoApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		rp1.signIn(t, b)
		for _, extra := range []string{
			"&resource=" + url.QueryEscape("https://api1.example/") + "&resource=" + url.QueryEscape("https://api2.example/"),
			"&utm_source=a&utm_source=b",
		} {
			p := b.get(rp1.authURL() + extra)
			if !strings.Contains(p.Location(), "code=") {
				t.Errorf("%s: status %d, location %q: an unrecognised parameter sent twice refused the request", extra, p.Status, p.Location())
			}
		}
	})
}
