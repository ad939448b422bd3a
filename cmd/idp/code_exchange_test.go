package main

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"golang.org/x/oauth2"
)

// wantTokenError checks that a token request failed with the OAuth error
// code want.
func wantTokenError(t *testing.T, err error, want, what string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != want {
		t.Fatalf("%s: %v, want %s", what, err, want)
	}
}

// TestCodeExchangeChecksBeforeRedeeming: the code is redeemed only once the
// exchange has passed PKCE and the client's authentication, so a failed
// attempt leaves the code to the legitimate exchange; a replay after a
// successful exchange is refused and kills what that exchange gave.
func TestCodeExchangeChecksBeforeRedeeming(t *testing.T) {
	engines(t, func(t *testing.T, dbURL string) {
		e, secret1, rp1, rp2 := twoApps(t, dbURL)
		b := newBrowser(t, e.issuer)
		codeFor := func(rp *relyingParty) string {
			t.Helper()
			p := b.get(rp.authURL())
			if p.Status != http.StatusFound { // no session yet: the form
				p = login(t, b, p, agentEmail, agentPass)
			}
			return rp.callback(p.Location())
		}
		wrongVerifier := func(rp *relyingParty, code string) error {
			_, err := rp.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(oauth2.GenerateVerifier()))
			return err
		}

		t.Run("wrong code_verifier, then the right one", func(t *testing.T) {
			for _, rp := range []*relyingParty{rp1, rp2} {
				code := codeFor(rp)
				wantTokenError(t, wrongVerifier(rp, code), "invalid_grant", rp.oauth.ClientID+": wrong verifier")
				li := rp.mustExchange(code)
				if rp == rp1 && !introspect(t, e, "app1", secret1, li.token.AccessToken) {
					t.Fatal("the tokens of the legitimate exchange are not active")
				}
			}
		})
		t.Run("wrong client secret, then the right one", func(t *testing.T) {
			code := codeFor(rp1)
			bad := *rp1
			bad.oauth.ClientSecret = "not-the-secret"
			_, err := bad.exchange(code)
			wantTokenError(t, err, "invalid_client", "wrong secret")
			li := rp1.mustExchange(code)
			if !introspect(t, e, "app1", secret1, li.token.AccessToken) {
				t.Fatal("the tokens of the legitimate exchange are not active")
			}
		})
		t.Run("replay after a successful exchange", func(t *testing.T) {
			code := codeFor(rp1)
			li := rp1.mustExchange(code)
			if _, err := rp1.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(li.token)); err != nil {
				t.Fatalf("userinfo before the replay: %v", err)
			}
			_, err := rp1.exchange(code)
			wantTokenError(t, err, "invalid_grant", "replay")
			if introspect(t, e, "app1", secret1, li.token.AccessToken) {
				t.Fatal("the first exchange's access token is still active after the replay")
			}
			if _, err := rp1.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(li.token)); err == nil {
				t.Fatal("userinfo answers the first exchange's access token after the replay")
			}
			// A replay with a wrong verifier is still a replay.
			wantTokenError(t, wrongVerifier(rp1, code), "invalid_grant", "replay with a wrong verifier")
		})
	})
}
