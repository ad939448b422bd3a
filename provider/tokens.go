package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/caf-extranet/idp/storage"
)

// grantOf tells which grant a token request belongs to, with the refresh
// token's details the new tokens inherit.
func grantOf(req op.TokenRequest) (grantID, clientID string, amr []string, authTime time.Time, err error) {
	switch r := req.(type) {
	case *authRequest:
		return r.r.ID, r.r.ClientID, r.r.AMR, r.r.AuthTime, nil
	case *refreshRequest:
		return r.t.GrantID, r.t.ClientID, r.t.AMR, r.t.AuthTime, nil
	default:
		return "", "", nil, time.Time{}, fmt.Errorf("provider: unsupported token request %T", req)
	}
}

func (s *opStorage) newAccessToken(grantID, clientID string, req op.TokenRequest, now time.Time) storage.AccessToken {
	return storage.AccessToken{
		ID: storage.NewID(), GrantID: grantID, ClientID: clientID, UserID: req.GetSubject(),
		Scopes: req.GetScopes(), Audience: req.GetAudience(),
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.AccessTTL),
	}
}

// codeReusedMessage is logged when a code is presented again (operators,
// and the cluster tests, look for it).
const codeReusedMessage = "authorization code reused: grant revoked"

// CreateAccessToken issues the access token of a code without
// offline_access (a refresh always comes with a new refresh token).
func (s *opStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	a, ok := req.(*authRequest)
	if !ok {
		return "", time.Time{}, fmt.Errorf("provider: unsupported token request %T for an access token alone", req)
	}
	if _, _, err := s.allowedFor(ctx, a.GetSubject(), a.r.ClientID); err != nil {
		return "", time.Time{}, oidc.ErrInvalidGrant().WithParent(err)
	}
	now := s.now()
	at := s.newAccessToken(a.r.ID, a.r.ClientID, req, now)
	if err := s.redeemCode(ctx, a, at, nil, now); err != nil {
		return "", time.Time{}, err
	}
	return at.ID, at.ExpiresAt, nil
}

// CreateAccessAndRefreshTokens issues a first pair from a code, or rotates a
// refresh token: the presented one is retired atomically; presenting it again
// revokes the whole family (the store does it).
func (s *opStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	grantID, clientID, amr, authTime, err := grantOf(req)
	if err != nil {
		return "", "", time.Time{}, err
	}
	if _, _, err := s.allowedFor(ctx, req.GetSubject(), clientID); err != nil {
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithParent(err)
	}
	now := s.now()
	at := s.newAccessToken(grantID, clientID, req, now)
	// The access token gets the scopes asked for now; a rotated refresh
	// token keeps those of the one it replaces (RFC 6749 §6): a client
	// that once asks for less does not lose the rest for good.
	rtScopes := req.GetScopes()
	if r, ok := req.(*refreshRequest); ok {
		rtScopes = r.t.Scopes
	}
	raw := storage.NewSecret()
	rt := storage.RefreshToken{
		ID: storage.NewID(), TokenHash: storage.HashSecret(raw), GrantID: grantID,
		ClientID: clientID, UserID: req.GetSubject(), Scopes: rtScopes,
		Audience: req.GetAudience(), AMR: amr, AuthTime: authTime,
		CreatedAt: now, ExpiresAt: now.Add(s.cfg.RefreshTTL),
	}
	switch r := req.(type) {
	case *authRequest:
		if err := s.redeemCode(ctx, r, at, &rt, now); err != nil {
			return "", "", time.Time{}, err
		}
	default:
		err = s.store.RotateRefreshToken(ctx, storage.HashSecret(current), at, rt, now)
		if errors.Is(err, storage.ErrAlreadyUsed) || errors.Is(err, storage.ErrNotFound) {
			return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("refresh token already used or revoked").WithParent(err)
		}
		if err != nil {
			return "", "", time.Time{}, err
		}
	}
	return at.ID, raw, at.ExpiresAt, nil
}

// redeemCode exchanges the code a was found by for the tokens, in one write
// that also deletes the auth request; the request's memo notes that, so that
// the library's DeleteAuthRequest right after costs nothing. The code is
// consumed here, after the library has checked PKCE and the client, so a
// failed check leaves it usable. A code redeemed meanwhile (a concurrent
// exchange won) gets invalid_grant, and the store has revoked the winner's
// tokens.
func (s *opStorage) redeemCode(ctx context.Context, a *authRequest, at storage.AccessToken, rt *storage.RefreshToken, now time.Time) error {
	if a.codeHash == "" {
		return errors.New("provider: tokens for an auth request are issued only for its code")
	}
	err := s.store.ExchangeAuthCode(ctx, a.codeHash, at, rt, now)
	switch {
	case errors.Is(err, storage.ErrAlreadyUsed):
		s.log.WarnContext(ctx, codeReusedMessage, "grant_id", a.r.ID)
		return oidc.ErrInvalidGrant().WithDescription("authorization code already used").WithParent(err)
	case errors.Is(err, storage.ErrNotFound):
		// Expired, or purged, since the library read it.
		return oidc.ErrInvalidGrant().WithDescription("invalid code").WithParent(err)
	case err != nil:
		return err
	}
	gateMemoFrom(ctx).noteAuthRequestDeleted(a.r.ID)
	return nil
}

func (s *opStorage) TokenRequestByRefreshToken(ctx context.Context, raw string) (op.RefreshTokenRequest, error) {
	t, err := s.store.GetRefreshToken(ctx, storage.HashSecret(raw), s.now())
	if err != nil {
		if errors.Is(err, storage.ErrAlreadyUsed) {
			s.log.WarnContext(ctx, "refresh token reused: family revoked", "grant_id", t.GrantID)
		}
		return nil, err
	}
	if _, _, err := s.allowedFor(ctx, t.UserID, t.ClientID); err != nil {
		return nil, err
	}
	return &refreshRequest{t: t, scopes: t.Scopes}, nil
}

func (s *opStorage) TerminateSession(ctx context.Context, userID, clientID string) error {
	return nil // replaced by TerminateSessionFromRequest
}

// TerminateSessionFromRequest ends the browser's SSO session (handed over
// by the end-session interceptor) and returns the validated post-logout
// redirect. The library calls it once the request is accepted: only then
// are the session and its cookie gone, unless the login pages ended them
// already because the agent asked (see endSessionCookie).
func (s *opStorage) TerminateSessionFromRequest(ctx context.Context, req *op.EndSessionRequest) (string, error) {
	l, _ := ctx.Value(browserLogoutKey{}).(*browserLogout)
	if l == nil {
		return req.RedirectURI, nil
	}
	if l.cookie != "" {
		err := s.store.DeleteSession(ctx, storage.HashSecret(l.cookie))
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return "", err
		}
	}
	l.clearCookie()
	return req.RedirectURI, nil
}

// browserLogout travels in the context from the end-session interceptor to
// TerminateSessionFromRequest: the browser's session cookie, and the answer
// on which to clear it.
type browserLogout struct {
	w          http.ResponseWriter
	cookie     string // the session cookie's value; empty without one
	cookieName string
	secure     bool
}

type browserLogoutKey struct{}

func (l *browserLogout) clearCookie() {
	http.SetCookie(l.w, &http.Cookie{Name: l.cookieName, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: l.secure, SameSite: http.SameSiteLaxMode})
}

// refreshRef prefixes what GetRefreshTokenInfo hands back as a "token id",
// so that RevokeToken can tell a refresh token from an access token id.
const refreshRef = "refresh:"

// RevokeToken revokes an access token by id, or a refresh token (by the
// reference GetRefreshTokenInfo returned), in which case the whole grant goes
// (RFC 7009 §2.1). Unknown tokens count as revoked (RFC 7009 §2.2); a token
// of another client is refused.
func (s *opStorage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	if hash, ok := strings.CutPrefix(tokenOrID, refreshRef); ok {
		t, err := s.store.GetRefreshToken(ctx, hash, s.now())
		if err != nil {
			return revocationLookupError(err)
		}
		if t.ClientID != clientID {
			return tokenOfAnotherClient()
		}
		if err := s.store.RevokeGrant(ctx, t.GrantID); err != nil {
			return oidc.ErrServerError().WithParent(err)
		}
		return nil
	}
	if userID == "" {
		return nil
	}
	t, err := s.store.GetAccessToken(ctx, tokenOrID, s.now())
	if err != nil {
		return revocationLookupError(err)
	}
	if t.ClientID != clientID {
		return tokenOfAnotherClient()
	}
	if err := s.store.RevokeAccessToken(ctx, t.ID); err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

// tokenOfAnotherClient refuses the revocation of a token issued to another
// client (RFC 7009 §2.1) as RFC 6749 §5.2 names it: invalid_grant, 400. The
// client did authenticate: invalid_client (401 with a challenge) would tell
// it that its own credentials are wrong.
func tokenOfAnotherClient() *oidc.Error {
	return oidc.ErrInvalidGrant().WithDescription("the token was not issued to this client")
}

// revocationLookupError answers a revocation whose token could not be
// read. A token unknown, expired, revoked or already rotated (whose family
// the read revoked) is revoked as far as the client is concerned: 200
// (RFC 7009 §2.2). A database that failed is no such answer: the client
// must not believe a live token dead, and may retry (§2.2.1: the
// server_error goes out as 503, see clientEndpointAnswers).
func revocationLookupError(err error) *oidc.Error {
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrAlreadyUsed) {
		return nil
	}
	return oidc.ErrServerError().WithParent(err)
}

func (s *opStorage) GetRefreshTokenInfo(ctx context.Context, clientID, raw string) (string, string, error) {
	t, err := s.store.GetRefreshToken(ctx, storage.HashSecret(raw), s.now())
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrAlreadyUsed) {
		return "", "", op.ErrInvalidRefreshToken // perhaps an access token
	}
	if err != nil {
		return "", "", err // the library answers server_error
	}
	return t.UserID, refreshRef + t.TokenHash, nil
}
