// Package loginui serves the hosted login pages of the identity provider, in
// French: login, « Mot de passe oublié ? » with its CAPTCHA, the forced and the
// voluntary password change, and the portal's secure space.
//
// The pages are rendered on the server without any JavaScript, so that they
// work on old browsers and under a strict Content-Security-Policy; every text
// comes from one message catalog (catalog_fr.go). The package talks to the
// rest of the provider through the small interfaces below, satisfied by
// *account.Service, the provider's bridge and storage.Store.
package loginui

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/account/policy"
	"github.com/caf-extranet/idp/storage"
)

// Accounts is what the pages need from the account rules (*account.Service).
type Accounts interface {
	// LogIn authenticates, personal password first, then provisional, and
	// opens the browser's session (storage.SessionPasswordChange after a
	// provisional password), returning the cookie value to set.
	// account.ErrInvalidCredentials for unknown e-mail, wrong password and
	// disabled account alike.
	LogIn(ctx context.Context, email, password string, meta account.Meta) (account.Login, string, storage.Session, error)
	// RequestRecovery only records a job: same outcome whatever the address;
	// account.ErrThrottled, recording nothing, past the client address's
	// quota of requests.
	RequestRecovery(ctx context.Context, email string, meta account.Meta, receipt storage.ChallengeReceipt) error
	// CompleteForcedChange: current is the provisional password.
	// *account.ChangeError lists every problem at once; account.ErrNotPending
	// when there is nothing left to change.
	CompleteForcedChange(ctx context.Context, userID, current, newPassword, confirmation string, meta account.Meta) error
	// ChangePassword is the voluntary change; an unknown e-mail is reported
	// as CurrentWrong.
	ChangePassword(ctx context.Context, email, current, newPassword, confirmation string, meta account.Meta) error
	// StartSession opens a session of kind storage.SessionActive or
	// storage.SessionPasswordChange and returns the cookie value to set.
	StartSession(ctx context.Context, userID, kind string, authTime time.Time) (cookieValue string, s storage.Session, err error)
	// SessionAndUser looks up a cookie value and the session's agent:
	// storage.ErrNotFound when unknown or expired, or the agent is gone.
	SessionAndUser(ctx context.Context, cookieValue string) (storage.Session, storage.User, error)
	EndSession(ctx context.Context, cookieValue string) error
	// User returns an agent by id; storage.ErrNotFound when gone.
	User(ctx context.Context, id string) (storage.User, error)
	// Policy is the active password policy: the change forms show its
	// convention as help text.
	Policy() policy.Policy
}

// AuthRequests is what the pages need from the OpenID provider.
type AuthRequests interface {
	// AuthRequest returns storage.ErrNotFound when unknown or expired.
	AuthRequest(ctx context.Context, id string) (storage.AuthRequest, error)
	Client(ctx context.Context, id string) (storage.Client, error)
	// ClientsFor lists the applications the agent may enter (the open ones
	// and the restricted ones it is habilitated for).
	ClientsFor(ctx context.Context, userID string) ([]storage.Client, error)
	// Finish completes the auth request ar (as the caller read it) with the
	// session's agent and answers the relying application (its code) on w.
	// Before writing anything it returns storage.ErrNotFound (a request
	// expired meanwhile) or storage.ErrNotHabilitated; the provider's gate
	// still refuses a pending or disabled agent (an OAuth error at the
	// application).
	Finish(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, s storage.Session) error
	// AnswerError ends the auth request with an OAuth error (and its state)
	// sent to the relying application as the request's response_mode asks:
	// query, fragment or form post. Before writing anything it returns
	// storage.ErrNotFound when the request expired or went.
	AnswerError(w http.ResponseWriter, r *http.Request, authRequestID, oauthError, description string) error
	// LogoutHintSubject checks the id_token_hint of an end-session request:
	// valid when it is an ID token of the provider (signed by one of its
	// published keys, its issuer, a registered client as audience), expired
	// or not; subject is then its agent's id. err only when it could not be
	// checked.
	LogoutHintSubject(ctx context.Context, hint string) (subject string, valid bool, err error)
}

// Challenges stores the CAPTCHA challenges and the throttling counters
// (storage.Store satisfies it).
type Challenges interface {
	CreateCountedChallenge(ctx context.Context, key string, window time.Duration, max int64, c storage.Challenge, now time.Time) (int64, error)
	ConsumeChallenge(ctx context.Context, id string, now time.Time) (storage.Challenge, error)
	// TakeChallenge consumes the challenge (nil when there is none to
	// take) and reads key's throttle.
	TakeChallenge(ctx context.Context, id, key string, now time.Time) (*storage.Challenge, storage.Throttle, error)
	// ChallengeReceipt reads the receipts of
	// accepted forms (receipt.go).
	ChallengeReceipt(ctx context.Context, id string, now time.Time) (bool, error)
	AddDecayingFailure(ctx context.Context, key string, every time.Duration, now time.Time) (storage.Throttle, error)
	HitCounter(ctx context.Context, key string, window time.Duration, now time.Time) (int64, error)
}

// Config holds the pages' settings.
type Config struct {
	// SecureCookies: the issuer is https, so cookies are Secure and use the
	// __Host- prefix, and SecurityHeaders sends HSTS.
	SecureCookies bool
	// CaptchaLength is the number of characters of the CAPTCHA text (5 or 6).
	CaptchaLength int
	// CaptchaTTL is how long a CAPTCHA challenge may be answered.
	CaptchaTTL time.Duration
	// CaptchaTestAnswer, when set, is the answer of every challenge (the
	// image still draws it): for automated end-to-end tests only.
	CaptchaTestAnswer string
	// ReloginAfterChange: after the forced change the agent logs in again
	// with the new password instead of going straight to the application.
	ReloginAfterChange bool
	// PortalName is shown in the page titles and header, e.g.
	// "services.caf.fr".
	PortalName string
	// AuthRequestTTL is how long an auth request lives: its browser's
	// binding cookie lives as long (a minute when zero, in tests).
	AuthRequestTTL time.Duration
}

// Deps are the handler's collaborators.
type Deps struct {
	Accounts
	AuthRequests
	Challenges
	Config Config
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// ClientIP returns the client address of a request (the composition root
	// knows which proxies to trust); nil means the host of RemoteAddr.
	ClientIP func(*http.Request) string
	// ChallengeKey is the HMAC key of the CAPTCHA answer and binding hashes,
	// and of the forced change form's agent field (agentField), shared by
	// every instance (at least 32 bytes).
	ChallengeKey []byte
}

// Handler serves the login pages.
type Handler struct {
	accounts   Accounts
	requests   AuthRequests
	challenges Challenges
	cfg        Config
	now        func() time.Time
	log        *slog.Logger
	clientIP   func(*http.Request) string
	captcha    *captchaMaker
	pages      map[string]*template.Template
	catalog    catalog
	// allow is the Allow header of each page's path (allowedMethods): the
	// catch-all asks it of every request the pages did not take.
	allow map[string]string
}

// minChallengeKey: a shorter HMAC key would make the stored answer hashes
// cheaper to attack than the answers themselves.
const minChallengeKey = 32

// New checks the dependencies and parses the templates once.
func New(deps Deps) (*Handler, error) {
	switch {
	case deps.Accounts == nil:
		return nil, errors.New("loginui: Accounts is required")
	case deps.AuthRequests == nil:
		return nil, errors.New("loginui: AuthRequests is required")
	case deps.Challenges == nil:
		return nil, errors.New("loginui: Challenges is required")
	case deps.Logger == nil:
		return nil, errors.New("loginui: Logger is required")
	case len(deps.ChallengeKey) < minChallengeKey:
		return nil, errors.New("loginui: ChallengeKey must be at least 32 bytes")
	case deps.Config.CaptchaTTL <= 0:
		return nil, errors.New("loginui: CaptchaTTL must be positive")
	}
	captcha, err := newCaptchaMaker(deps.Config.CaptchaLength, deps.Config.CaptchaTestAnswer, deps.ChallengeKey)
	if err != nil {
		return nil, err
	}
	cat := catalogFR()
	pages, err := parsePages(cat)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		accounts: deps.Accounts, requests: deps.AuthRequests, challenges: deps.Challenges,
		cfg: deps.Config, now: deps.Now, log: deps.Logger, clientIP: deps.ClientIP,
		captcha: captcha, pages: pages, catalog: cat,
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.clientIP == nil {
		h.clientIP = remoteHost
	}
	h.allow = allowedMethods(h.routes())
	return h, nil
}

// remoteHost is the default ClientIP: the peer address, without its port.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// clientKey names the request's client in the CAPTCHA counters, as the
// account rules name it in theirs (account.ClientKey: an IPv6 client counts
// by its /64).
func (h *Handler) clientKey(r *http.Request) string {
	return account.ClientKey(h.clientIP(r))
}

// meta describes a request for the audit trail and the throttles. The
// User-Agent is cut and made valid UTF-8 whatever its length: Go's server
// passes a header's bytes through, and PostgreSQL refuses invalid UTF-8 in
// text, which would fail the write the audit event goes with (the login's
// session, the recovery job).
func (h *Handler) meta(r *http.Request, authRequestID string) account.Meta {
	ua := r.UserAgent()
	if len(ua) > maxUserAgent {
		ua = ua[:maxUserAgent]
	}
	return account.Meta{ClientIP: h.clientIP(r), UserAgent: strings.ToValidUTF8(ua, ""), AuthRequestID: authRequestID}
}

// maxUserAgent bounds what the audit trail stores of a header anyone can set.
const maxUserAgent = 512
