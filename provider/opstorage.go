package provider

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/caf-extranet/idp/storage"
)

// opStorage adapts the store to the library's op.Storage. It is the only
// place where the library's state lives, and it all goes to the database.
type opStorage struct {
	store storage.Store
	// clients serves the client reads of every request from memory (see
	// clientCacheTTL for how changes reach it).
	clients *clientCache
	keys    *keyManager
	cfg     Config
	now     func() time.Time
	log     *slog.Logger
}

var (
	_ op.Storage                        = (*opStorage)(nil)
	_ op.CanSetUserinfoFromRequest      = (*opStorage)(nil)
	_ op.CanTerminateSessionFromRequest = (*opStorage)(nil)
)

// errGate is what every door answers for a pending or disabled agent.
var errGate = errors.New("provider: the agent must set a personal password first, or is disabled")

func (s *opStorage) Health(ctx context.Context) error { return s.store.Ping(ctx) }

// CreateAuthRequest stores the request after our own rules on top of the
// library's: PKCE is required for public clients and must be S256 (the
// library would accept "plain", and a challenge without a method defaults to
// plain). hintSubject is the sub of the id_token_hint the library verified
// ("" without one): kept with the request, so that only that agent's session
// completes it without a login (see storage.AuthRequest.IDTokenHintSubject).
func (s *opStorage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, hintSubject string) (op.AuthRequest, error) {
	c, err := s.clients.get(ctx, req.ClientID)
	if err != nil {
		return nil, oidc.ErrInvalidClient().WithParent(err)
	}
	if bad := unstorableParam(req); bad != "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("%s must be valid UTF-8 without NUL bytes", bad)
	}
	if req.CodeChallenge != "" && req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("code_challenge_method must be S256")
	}
	if c.Public && req.CodeChallenge == "" {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE (code_challenge with S256) is required for this client")
	}
	scopes := slices.Clone(req.Scopes)
	if !c.AllowRefresh {
		scopes = slices.DeleteFunc(scopes, func(sc string) bool { return sc == oidc.ScopeOfflineAccess })
	}
	now := s.now()
	r := storage.AuthRequest{
		ID: storage.NewID(), ClientID: req.ClientID, RedirectURI: req.RedirectURI,
		State: req.State, Nonce: req.Nonce, Scopes: scopes,
		ResponseType: string(req.ResponseType), ResponseMode: string(req.ResponseMode),
		CodeChallenge: req.CodeChallenge, CodeChallengeMethod: string(req.CodeChallengeMethod),
		Prompt: req.Prompt, LoginHint: req.LoginHint, UILocales: req.UILocales.String(),
		IDTokenHintSubject: hintSubject, CreatedAt: now, ExpiresAt: now.Add(s.cfg.AuthRequestTTL),
	}
	if req.MaxAge != nil {
		m := int64(*req.MaxAge)
		r.MaxAge = &m
	}
	attempt := s.completeWithSession(ctx, &r)
	switch a := ssoAttemptFrom(ctx); {
	case a != nil && attempt == nil:
		r.BrowserBinding = a.finder.BindBrowser(headerOnly(a.binding), r.ID)
	case attempt != nil:
		// Answered at once, the request never meets the login pages: no
		// cookie for the browser to keep, and a binding no browser holds
		// (an empty one is a request from before bindings, open to all).
		r.BrowserBinding = storage.HashSecret(storage.NewSecret())
	}
	if attempt != nil {
		err = s.store.CreateAuthRequestWithCode(ctx, r, s.newAuthCode(r.ID, attempt.code))
	} else {
		err = s.store.CreateAuthRequest(ctx, r)
	}
	if err != nil {
		return nil, fmt.Errorf("provider: storing auth request: %w", err)
	}
	a := &authRequest{r: r, userAllowed: attempt != nil}
	if attempt != nil {
		attempt.done = a
	}
	if sso := ssoAttemptFrom(ctx); sso != nil {
		sso.created = a
	}
	return a, nil
}

func (s *opStorage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	r, err := s.store.GetAuthRequest(ctx, id, s.now())
	if err != nil {
		return nil, oidc.ErrInvalidRequest().WithDescription("unknown or expired authorization request").WithParent(err)
	}
	return s.gated(ctx, r)
}

// gated loads the authenticated agent's state for the gate.
func (s *opStorage) gated(ctx context.Context, r storage.AuthRequest) (*authRequest, error) {
	a := &authRequest{r: r}
	if r.UserID == "" {
		return a, nil
	}
	_, _, err := s.allowedFor(ctx, r.UserID, r.ClientID)
	if a.userAllowed, err = gateVerdict(err); err != nil {
		return nil, err
	}
	return a, nil
}

// gateVerdict reads the gate's answer: allowed, refused (no error), or an
// error that is not a refusal.
func gateVerdict(err error) (bool, error) {
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, errGate), errors.Is(err, storage.ErrNotHabilitated), errors.Is(err, storage.ErrNotFound):
		return false, nil
	}
	return false, err
}

// AuthRequestByCode finds the code's auth request without consuming the
// code: the library checks PKCE and the client after this call, and a failed
// check must leave the code to the legitimate exchange. The code is redeemed
// with the tokens (redeemCode). A code already exchanged gets invalid_grant,
// and the store revokes what its exchange obtained.
func (s *opStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	hash := storage.HashSecret(code)
	r, access, err := s.store.AuthRequestByCode(ctx, hash, s.now())
	if errors.Is(err, storage.ErrAlreadyUsed) {
		s.log.WarnContext(ctx, codeReusedMessage)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	// The agent and its habilitation came with the request: the gate
	// judges them without a read of its own, and the rest of the token
	// request finds its answer in the request's memo.
	a := &authRequest{r: r}
	_, _, err = s.judge(ctx, r.ClientID, access)
	if a.userAllowed, err = gateVerdict(err); err != nil {
		return nil, err
	}
	if !a.Done() {
		return nil, errGate
	}
	a.codeHash = hash
	return a, nil
}

func (s *opStorage) SaveAuthCode(ctx context.Context, id, code string) error {
	return s.store.SaveAuthCode(ctx, storage.AuthCode{
		CodeHash: storage.HashSecret(code), AuthRequestID: id, ExpiresAt: s.now().Add(s.cfg.CodeTTL),
	})
}

// DeleteAuthRequest: the library calls it right after creating the tokens
// of a code, whose exchange has already deleted the request in its own
// transaction (redeemCode notes it in the request's memo): no second write.
func (s *opStorage) DeleteAuthRequest(ctx context.Context, id string) error {
	if gateMemoFrom(ctx).authRequestDeleted(id) {
		return nil
	}
	err := s.store.DeleteAuthRequest(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

// GetClientByClientID: an unknown client is a plain error (the library turns
// it into invalid_client / an error page, never a redirect).
func (s *opStorage) GetClientByClientID(ctx context.Context, id string) (op.Client, error) {
	c, err := s.clients.get(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		// An OAuth error, not a plain one: the library would answer a plain
		// error with server_error on end_session.
		return nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return &client{c: c, idTokenLifetime: s.cfg.IDTokenTTL, devMode: s.cfg.DevMode}, nil
}

// AuthorizeClientIDSecret checks a confidential client's secret. Secrets are
// 256-bit random values, so a SHA-256 hash is stored (see cmd/idp client add)
// and compared in constant time: a slow password hash would only slow every
// token request down.
//
// Every refusal is the same invalid_client, its cause only logged: the
// library writes this error's text as it is in some answers (introspection),
// which must not tell whether a client exists or is public.
func (s *opStorage) AuthorizeClientIDSecret(ctx context.Context, id, secret string) error {
	c, err := s.clients.get(ctx, id)
	var cause string
	switch {
	case errors.Is(err, storage.ErrNotFound):
		cause = "unknown client"
	case err != nil:
		s.log.ErrorContext(ctx, "client authentication: reading the client failed", "client_id", id, "error", err)
		return oidc.ErrServerError().WithDescription("client authentication is unavailable")
	case c.Public || c.SecretHash == "":
		cause = "public client sent a secret"
	case subtle.ConstantTimeCompare([]byte(storage.HashSecret(secret)), []byte(c.SecretHash)) != 1:
		cause = "wrong client secret"
	default:
		return nil
	}
	s.log.WarnContext(ctx, "client authentication refused", "client_id", id, "reason", cause)
	// A new value each time: the library may add to the error it gets.
	return oidc.ErrInvalidClient().WithDescription("client authentication failed")
}

func (s *opStorage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil // deprecated by the library; SetUserinfoFromRequest does the work
}

func (s *opStorage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	u, roles, err := s.allowedFor(ctx, req.GetSubject(), req.GetClientID())
	if err != nil {
		return err
	}
	fillUserinfo(info, u, roles, scopes)
	return nil
}

// SetUserinfoFromToken answers invalid_token for a token that no longer
// opens userinfo (unknown, revoked, expired, or refused by the gate) and
// server_error when the database fails; userinfoAnswers gives both their
// status.
func (s *opStorage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	t, err := s.store.GetAccessToken(ctx, tokenID, s.now())
	if err == nil && t.UserID != subject {
		err = storage.ErrNotFound
	}
	if err != nil {
		return s.userinfoRefusal(ctx, err)
	}
	u, roles, err := s.allowedFor(ctx, t.UserID, t.ClientID)
	if err != nil {
		return s.userinfoRefusal(ctx, err)
	}
	fillUserinfo(info, u, roles, t.Scopes)
	return nil
}

// userinfoRefusal is the OAuth error for why userinfo refuses a token. The
// gate's refusals are invalid_token too: the client then refreshes, is
// refused as well, and sends the agent to the login, where the change form
// (or the refusal) waits. A database fault is not the token's: saying
// invalid_token would make the client throw away a token that works again
// a minute later.
func (s *opStorage) userinfoRefusal(ctx context.Context, err error) *oidc.Error {
	if errors.Is(err, storage.ErrNotFound) || errors.Is(err, errGate) || errors.Is(err, storage.ErrNotHabilitated) {
		return (&oidc.Error{ErrorType: invalidToken}).WithDescription("access token invalid, expired or revoked").WithParent(err)
	}
	s.log.ErrorContext(ctx, "userinfo: reading the token or its agent failed", "error", err)
	return oidc.ErrServerError().WithDescription("temporary fault, try again").WithParent(err)
}

func (s *opStorage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	// Any error answers {"active": false}: the library marks the token
	// active only when this returns nil.
	t, err := s.store.GetAccessToken(ctx, tokenID, s.now())
	if err != nil {
		return err
	}
	if t.UserID != subject || !slices.Contains(t.Audience, clientID) && t.ClientID != clientID {
		return errors.New("provider: token not issued to the introspecting client")
	}
	u, roles, err := s.allowedFor(ctx, t.UserID, t.ClientID)
	if err != nil {
		return err
	}
	info := new(oidc.UserInfo)
	fillUserinfo(info, u, roles, t.Scopes)
	resp.SetUserInfo(info)
	resp.Active = true
	resp.Scope = t.Scopes
	resp.ClientID = t.ClientID
	resp.Audience = t.Audience
	resp.Expiration = oidc.FromTime(t.ExpiresAt)
	resp.IssuedAt = oidc.FromTime(t.CreatedAt)
	resp.TokenType = oidc.BearerToken
	return nil
}

// allowedFor returns the agent and its roles in the client only if the gate
// lets tokens out: an enabled agent with a personal password, habilitated
// when the client is restricted. Checked at every door (code, refresh,
// userinfo, introspection), so a change takes effect at the next request.
func (s *opStorage) allowedFor(ctx context.Context, userID, clientID string) (storage.User, []string, error) {
	memo := gateMemoFrom(ctx)
	if u, roles, ok := memo.get(userID, clientID); ok {
		return u, roles, nil
	}
	// One query for the agent and its habilitation: the gate runs on every
	// token request.
	a, err := s.store.GetUserAccess(ctx, userID, clientID, s.now())
	if err != nil {
		return storage.User{}, nil, err
	}
	return s.judge(ctx, clientID, a)
}

// judge is the gate on the agent and its habilitation for clientID, a, as
// read at the request's start; a permission is remembered for the request.
func (s *opStorage) judge(ctx context.Context, clientID string, a storage.UserAccess) (storage.User, []string, error) {
	if !userAllowedTokens(a.User) {
		return storage.User{}, nil, errGate
	}
	roles, err := s.accessWith(ctx, clientID, a.Habilitation)
	if err != nil {
		return storage.User{}, nil, err
	}
	gateMemoFrom(ctx).put(a.User.ID, clientID, a.User, roles)
	return a.User, roles, nil
}

func fillUserinfo(info *oidc.UserInfo, u storage.User, roles, scopes []string) {
	info.Subject = u.ID
	for _, sc := range scopes {
		switch sc {
		case scopeRoles:
			if roles == nil {
				roles = []string{}
			}
			info.AppendClaims("roles", roles)
		case oidc.ScopeEmail:
			info.Email = u.Email
			info.EmailVerified = oidc.Bool(true)
		case oidc.ScopeProfile:
			info.Name = u.Name
			if u.Organisation != "" {
				info.AppendClaims("organisation", u.Organisation)
			}
		}
	}
}

func (s *opStorage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *opStorage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("provider: JWT profile grants are not supported")
}

func (s *opStorage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("provider: JWT profile grants are not supported")
}

func (s *opStorage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	return s.keys.signingKey(ctx)
}

// SignatureAlgorithms is discovery's id_token_signing_alg_values_supported:
// the algorithms of the keys that sign, will sign or have signed, not only
// the configured one (see keyManager.algorithms). Never an error: the
// library would list none.
func (s *opStorage) SignatureAlgorithms(ctx context.Context) ([]jose.SignatureAlgorithm, error) {
	return s.keys.algorithms(ctx), nil
}

func (s *opStorage) KeySet(ctx context.Context) ([]op.Key, error) {
	return s.keys.publicKeys(ctx)
}

// unstorableParam names the first request parameter that is not valid UTF-8
// or holds a NUL byte: refused as invalid_request rather than reaching the
// database, where PostgreSQL would reject it as a server error.
func unstorableParam(req *oidc.AuthRequest) string {
	params := []struct{ name, value string }{
		{"state", req.State}, {"nonce", req.Nonce}, {"login_hint", req.LoginHint},
		{"code_challenge", req.CodeChallenge}, {"response_mode", string(req.ResponseMode)},
		{"redirect_uri", req.RedirectURI}, {"prompt", strings.Join(req.Prompt, " ")},
		{"scope", strings.Join(req.Scopes, " ")}, {"ui_locales", req.UILocales.String()},
	}
	for _, p := range params {
		if !utf8.ValidString(p.value) || strings.ContainsRune(p.value, 0) {
			return p.name
		}
	}
	return ""
}
