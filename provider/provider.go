// Package provider is the OpenID Connect side of the identity provider, and
// the only package that imports zitadel/oidc. It adapts the store to the
// library's op.Storage, owns the signing keys, and holds THE GATE: no code,
// token or userinfo for an agent who is pending a password change or
// disabled, whatever door is tried.
package provider

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"

	"github.com/caf-extranet/idp/storage"
)

// Config is what the provider needs from the configuration.
type Config struct {
	Issuer          string
	CodeTTL         time.Duration
	AccessTTL       time.Duration
	IDTokenTTL      time.Duration
	RefreshTTL      time.Duration
	AuthRequestTTL  time.Duration
	KeyAlgorithm    string
	KeyRotation     time.Duration
	KeyPublishAhead time.Duration
	// CryptoKey encrypts the opaque access tokens; KeyEncryptionKey the
	// signing keys' private parts. Both are shared by every instance.
	CryptoKey        [32]byte
	KeyEncryptionKey [32]byte
	// SessionCookieName is the login UI's SSO cookie, ended by logout.
	SessionCookieName string
	// DevMode lets public clients use http redirect URIs (issuer on localhost).
	DevMode bool
	// LogoutRedirect is where end_session goes without a post-logout URI.
	LogoutRedirect string
}

// Provider is the OpenID provider.
type Provider struct {
	op      *op.Provider
	storage *opStorage
	keys    *keyManager
	origins *originCache
	// documents serves discovery and the key set from memory.
	documents *documentCache
	// changes drops the caches above when another process changes what
	// they hold.
	changes *changeWatcher
	cfg     Config
	store   storage.Store
	now     func() time.Time
	log     *slog.Logger
}

// New builds the provider; it creates the first signing key when the
// database has none.
func New(ctx context.Context, store storage.Store, cfg Config, now func() time.Time, log *slog.Logger) (*Provider, error) {
	// A retired key stays published as long as the ID tokens it signed may
	// still come back: as id_token_hint at logout or with prompt=none,
	// long after they expired. An application that refreshes holds one
	// signed within the refresh token's lifetime.
	retireAfter := max(cfg.AccessTTL, cfg.IDTokenTTL, cfg.RefreshTTL)
	keys, err := newKeyManager(store, cfg.KeyEncryptionKey, cfg.KeyAlgorithm, cfg.KeyRotation, cfg.KeyPublishAhead, retireAfter, now, log)
	if err != nil {
		return nil, err
	}
	if err := keys.ensure(ctx); err != nil {
		return nil, fmt.Errorf("provider: signing keys: %w", err)
	}
	st := &opStorage{store: store, clients: newClientCache(store, now, clientCacheTTL), keys: keys, cfg: cfg, now: now, log: log}
	p := &Provider{storage: st, keys: keys, cfg: cfg, store: store, now: now, log: log,
		origins: &originCache{store: store, now: now}, documents: newDocumentCache(keys)}
	p.changes = &changeWatcher{store: store, log: log,
		onClients: []func(){st.clients.invalidate, p.origins.invalidate}, onKeys: []func(){keys.invalidate}}

	opCfg := &op.Config{
		CryptoKey:                cfg.CryptoKey,
		DefaultLogoutRedirectURI: cfg.LogoutRedirect,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedUILocales:       []language.Tag{language.French},
		SupportedScopes:          []string{oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopeOfflineAccess, scopeRoles},
		SupportedClaims: []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "amr", "at_hash",
			"azp", "email", "email_verified", "name", "organisation", "roles"},
	}
	opts := []op.Option{
		op.WithCORSOptions(&cors.Options{
			AllowedMethods:         []string{http.MethodGet, http.MethodPost},
			AllowedHeaders:         []string{"Authorization", "Content-Type", "Accept"},
			AllowOriginRequestFunc: p.corsAllowed,
		}),
		op.WithHttpInterceptors(p.endSessionCookie, p.documents.intercept, p.revocationWithoutHint, p.userinfoAnswers,
			p.clientEndpointAnswers, withGateMemo, p.tokenOutage),
	}
	if strings.HasPrefix(cfg.Issuer, "http://") {
		opts = append(opts, op.WithAllowInsecure())
	}
	p.op, err = op.NewProvider(opCfg, st, op.StaticIssuer(cfg.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("provider: %w", err)
	}
	p.documents.setPaths(oidc.DiscoveryEndpoint, p.op.KeysEndpoint().Relative())
	return p, nil
}

// Handler serves the OIDC endpoints: discovery, JWKS (/keys), /authorize and
// its callback, /oauth/token, /oauth/introspect, /userinfo, /revoke,
// /end_session.
func (p *Provider) Handler() http.Handler { return p.op }

// RotateKeys publishes a new signing key (see keyManager.Rotate).
func (p *Provider) RotateKeys(ctx context.Context, force bool) (bool, error) {
	return p.keys.Rotate(ctx, force)
}

// RunKeyRotator rotates keys when due, until ctx is done.
func (p *Provider) RunKeyRotator(ctx context.Context) { p.keys.run(ctx, time.Minute) }

// RunChangeWatcher keeps the instance's caches of clients and keys in step
// with changes made anywhere, until ctx is done (see changeWatcher).
func (p *Provider) RunChangeWatcher(ctx context.Context) { p.changes.run(ctx, changeWatchInterval) }

// endSessionCookie hands the browser's logout to TerminateSessionFromRequest
// on the end_session endpoint: the library calls it only once it has
// accepted the request, so a refused request (an invalid id_token_hint, an
// unregistered post_logout_redirect_uri) leaves the browser signed in. A
// logout the agent asked for (confirmed on the login pages' form, or with a
// hint naming the agent) is ended by loginui.ConfirmLogout before the
// library answers, whatever it answers.
func (p *Provider) endSessionCookie(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == p.op.EndSessionEndpoint().Relative() {
			l := &browserLogout{w: w, cookieName: p.cfg.SessionCookieName, secure: strings.HasPrefix(p.cfg.Issuer, "https://")}
			if c, err := r.Cookie(p.cfg.SessionCookieName); err == nil {
				l.cookie = c.Value
			}
			r = r.WithContext(context.WithValue(r.Context(), browserLogoutKey{}, l))
		}
		next.ServeHTTP(w, r)
	})
}

// corsAllowed: cross-origin calls only to the endpoints a browser
// application calls (token, userinfo, JWKS, discovery), and only from the
// origin of a registered redirect URI. The library's default allows every
// origin everywhere.
func (p *Provider) corsAllowed(r *http.Request, origin string) bool {
	switch r.URL.Path {
	case p.op.TokenEndpoint().Relative(), p.op.UserinfoEndpoint().Relative(),
		p.op.KeysEndpoint().Relative(), p.op.RevocationEndpoint().Relative(), oidc.DiscoveryEndpoint:
	default:
		return false
	}
	return p.origins.allowed(r.Context(), origin)
}

// --- the login UI's side (loginui.AuthRequests) ---

// AuthRequest returns a pending auth request.
func (p *Provider) AuthRequest(ctx context.Context, id string) (storage.AuthRequest, error) {
	return p.store.GetAuthRequest(ctx, id, p.now())
}

// Client returns a relying application.
func (p *Provider) Client(ctx context.Context, id string) (storage.Client, error) {
	return p.store.GetClient(ctx, id)
}

// Clients lists the relying applications.
func (p *Provider) Clients(ctx context.Context) ([]storage.Client, error) {
	return p.store.ListClients(ctx)
}

// AnswerError ends an auth request with an OAuth error sent back to the
// relying application, as the request's response_mode asks (query, fragment
// or form post: an application renewing silently with response_mode=fragment
// would never see an error put in the query). storage.ErrNotFound, before
// anything is written, when the request expired or went.
func (p *Provider) AnswerError(w http.ResponseWriter, r *http.Request, authRequestID, oauthError, description string) error {
	ar, err := p.store.GetAuthRequest(r.Context(), authRequestID, p.now())
	if err != nil {
		return err
	}
	return p.answerError(w, r, ar, oauthError, description)
}

// oauthErrorFor is the library's error of the OAuth errors the login pages
// send back.
func oauthErrorFor(name string) (*oidc.Error, error) {
	switch name {
	case "login_required":
		return oidc.ErrLoginRequired(), nil
	case "interaction_required":
		return oidc.ErrInteractionRequired(), nil
	case "access_denied":
		return oidc.ErrAccessDenied(), nil
	}
	return nil, fmt.Errorf("provider: no OAuth error %q for the login pages", name)
}

// answerError is AnswerError for the request ar, read or just created; the
// request is deleted first.
func (p *Provider) answerError(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, oauthError, description string) error {
	e, err := oauthErrorFor(oauthError)
	if err != nil {
		return err
	}
	if description != "" {
		e = e.WithDescription("%s", description)
	}
	if err := p.store.DeleteAuthRequest(r.Context(), ar.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	return p.authRequestError(w, r, &authRequest{r: ar}, e)
}

// authRequestError answers the relying application with the OAuth error
// err, as a's response_mode asks. The library's op.AuthRequestError knows
// the query and the fragment only: it puts the error in the query for
// form_post too, where an application listening for a POST never sees it.
// An error the library would not redirect (no redirect URI, or one that
// disables redirects) is left to it. Its error is writeFormPost's.
func (p *Provider) authRequestError(w http.ResponseWriter, r *http.Request, a *authRequest, err error) error {
	// Only an OAuth error's own words go to the application: anything else
	// is a server_error without description, its cause only logged.
	e := oidc.DefaultToServerError(err, "")
	if a.GetResponseMode() != oidc.ResponseModeFormPost || a.GetRedirectURI() == "" || e.IsRedirectDisabled() {
		op.AuthRequestError(w, r, a, err, p.op)
		return nil
	}
	p.log.Log(r.Context(), e.LogLevel(), "auth request error sent by form post", "oidc_error", e)
	return writeFormPost(w, a.GetRedirectURI(), []formField{
		{"error", string(e.ErrorType)}, {"error_description", e.Description}, {"state", a.GetState()},
	})
}

// RunKeyRotatorOnce does one pass of the rotator (rotation when due, pruning
// of retired keys) and refreshes this instance's cache.
func (p *Provider) RunKeyRotatorOnce(ctx context.Context) error {
	if _, err := p.keys.Rotate(ctx, false); err != nil {
		return err
	}
	return p.keys.reload(ctx)
}

// LogoutHintSubject checks an end-session request's id_token_hint for the
// login UI, which asks the agent first unless the hint names the agent of
// the browser's session (RP-Initiated Logout 1.0, §2). valid: the hint is an
// ID token of ours (signed by one of the published keys, our issuer) issued
// to registered clients; it may have expired, as an application's ID token
// at logout usually has. The library's own check at the endpoint does not
// look at the audience. err only when the clients could not be read.
func (p *Provider) LogoutHintSubject(ctx context.Context, hint string) (subject string, valid bool, err error) {
	// Called in front of the library's handler, whose middleware would
	// have put the issuer in the context.
	verifier := p.op.IDTokenHintVerifier(op.ContextWithIssuer(ctx, p.cfg.Issuer))
	claims, err := op.VerifyIDTokenHint[*oidc.IDTokenClaims](ctx, hint, verifier)
	if err != nil && !errors.As(err, &op.IDTokenHintExpiredError{}) {
		return "", false, nil
	}
	aud := claims.GetAudience()
	if len(aud) == 0 {
		return "", false, nil
	}
	for _, clientID := range aud {
		_, err := p.storage.clients.get(ctx, clientID)
		if errors.Is(err, storage.ErrNotFound) {
			return "", false, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("provider: reading the id_token_hint's client: %w", err)
		}
	}
	return claims.GetSubject(), true, nil
}
