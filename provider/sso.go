package provider

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/caf-extranet/idp/storage"
)

// Single sign-on without detours. The library's /authorize stores the auth
// request and sends the browser to the login page; the login page, finding a
// session, completed the request and sent the browser to the library's
// callback, which wrote a code and answered it: three requests, two of them
// only redirects, and three writes. When the browser already holds a session
// that satisfies the request, /authorize now stores the request completed
// with its code, in one write, and answers the code itself; after a password
// the login page completes the request and stores its code in one write and
// answers the code too. The rules are the same: the login UI decides about
// prompt and max_age, the gate about the agent.

// SessionFinder finds the browser's session able to complete a new auth
// request without any interaction (the login UI implements it: it owns the
// browser's cookies, the session and the prompt / max_age rules).
type SessionFinder interface {
	// BindBrowser binds the new auth request id to the browser (a cookie
	// set on w) and returns what the request keeps of the binding: the
	// login pages complete a request only for the browser that sent it to
	// /authorize.
	BindBrowser(w http.ResponseWriter, authRequestID string) string
	// MayHaveSession is a cheap look at the request (a session cookie):
	// false skips single sign-on at once.
	MayHaveSession(r *http.Request) bool
	// SessionFor returns the session that completes ar, if any, with its
	// agent as read with it.
	SessionFor(r *http.Request, ar storage.AuthRequest) (storage.Session, storage.User, bool, error)
}

// ssoAttempt travels in the request's context from SingleSignOn to
// CreateAuthRequest, and back with the request completed, if it was.
type ssoAttempt struct {
	finder SessionFinder
	r      *http.Request
	// binding holds the binding's cookie until the answer is known: only a
	// browser sent on to the login pages needs it.
	binding http.Header
	session bool         // the browser may have a session: try single sign-on
	created *authRequest // the request stored, completed or not
	done    *authRequest // the request completed with code
	code    string       // stored with the request
}

type ssoAttemptKey struct{}

func ssoAttemptFrom(ctx context.Context) *ssoAttempt {
	a, _ := ctx.Value(ssoAttemptKey{}).(*ssoAttempt)
	return a
}

// SingleSignOn wraps the authorization endpoint (next is the provider's
// handler): a request the browser's session completes is answered with the
// code (or an OAuth error from the library) instead of the redirect to the
// login page, and bound to no browser; one sent to the login pages goes
// with the cookie binding it to this browser (no other answer sets it); and
// prompt=none from a browser without a session gets login_required at once,
// as the login page would answer it (a browser that keeps no cookie, a
// cross-site iframe, could not even reach the request there).
func (p *Provider) SingleSignOn(finder SessionFinder, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Parsed here, the form is shared with the copies of r the library
		// makes, and can be read again once the library has answered (a
		// POST's body can be read only once): see heldErrorAsFormPost.
		if err := r.ParseForm(); err != nil {
			// What the library's Authorize answers to such a form.
			op.AuthRequestError(w, r, nil, oidc.ErrInvalidRequest().WithDescription("cannot parse form").WithParent(err), p.op)
			return
		}
		attempt := &ssoAttempt{finder: finder, r: r, binding: http.Header{}, session: finder.MayHaveSession(r)}
		r = r.WithContext(context.WithValue(r.Context(), ssoAttemptKey{}, attempt))
		rec := &heldResponse{header: http.Header{}}
		next.ServeHTTP(rec, r)
		toLogin := attempt.created != nil && rec.status == http.StatusFound &&
			rec.header.Get("Location") == loginURL(attempt.created.GetID())
		toLoginPages := func() {
			for _, c := range attempt.binding.Values("Set-Cookie") {
				rec.header.Add("Set-Cookie", c) // beside any the library set
			}
			rec.sendTo(w)
		}
		switch {
		case toLogin && attempt.done != nil:
			p.respondWithCode(w, r, attempt.done, attempt.code)
		case toLogin && !attempt.session && slices.Contains(attempt.created.r.Prompt, oidc.PromptNone):
			if err := p.answerError(w, r, attempt.created.r, "login_required", ""); err != nil {
				toLoginPages() // the login page decides
			}
		case toLogin:
			toLoginPages()
		case p.heldErrorAsFormPost(w, r, rec):
		default:
			rec.sendTo(w)
		}
	})
}

// heldErrorAsFormPost sends, as a form post, the OAuth error that the
// library's answer held in rec redirects to the relying application, when
// the request asked for response_mode=form_post: the library's own errors
// (a parameter it refuses, or one CreateAuthRequest refused) go to the query
// whatever the mode. It reports whether it answered; otherwise nothing is
// written. The library redirects an error only to a redirect URI it has
// checked against the client's, the one the form posts to.
func (p *Provider) heldErrorAsFormPost(w http.ResponseWriter, r *http.Request, rec *heldResponse) bool {
	if rec.status != http.StatusFound {
		return false
	}
	loc, err := url.Parse(rec.header.Get("Location"))
	if err != nil {
		return false
	}
	q := loc.Query()
	// The library adds its parameters after the redirect URI's own.
	last := func(name string) string {
		if v := q[name]; len(v) > 0 {
			return v[len(v)-1]
		}
		return ""
	}
	// Checked before the request is decoded again: nearly every answer held
	// here is the redirect to the login page, which carries no error.
	if last("error") == "" {
		return false
	}
	// Decoded as the library decoded it (r.Form was parsed before).
	req, err := op.ParseAuthorizeRequest(r, p.op.Decoder())
	if err != nil || req.ResponseMode != oidc.ResponseModeFormPost {
		return false
	}
	target, err := url.Parse(req.RedirectURI)
	if err != nil || loc.Scheme != target.Scheme || loc.Host != target.Host || loc.Path != target.Path {
		return false
	}
	if err := writeFormPost(w, req.RedirectURI, []formField{
		{"error", last("error")}, {"error_description", last("error_description")}, {"state", req.State},
	}); err != nil {
		p.log.WarnContext(r.Context(), "authorize: sending an error by form post failed", "error", err)
	}
	return true
}

// completeWithSession fills r with the session that completes it, when the
// SingleSignOn wrapper asked for it and the gate lets the agent through. Any
// doubt (no session, an error, a refusal) leaves r pending: the login page
// then decides and explains, as without single sign-on. The caller stores r
// with the attempt's code.
func (s *opStorage) completeWithSession(ctx context.Context, r *storage.AuthRequest) *ssoAttempt {
	attempt := ssoAttemptFrom(ctx)
	if attempt == nil || !attempt.session {
		return nil
	}
	sess, u, ok, err := attempt.finder.SessionFor(attempt.r, *r)
	if err != nil {
		s.log.WarnContext(ctx, "single sign-on: session lookup failed; the login page takes over", "error", err)
		return nil
	}
	if !ok {
		return nil
	}
	if !s.admitsAtOnce(ctx, u, r.ClientID) {
		return nil
	}
	completeWith(r, sess)
	attempt.code = storage.NewSecret()
	return attempt
}

// admitsAtOnce is the gate for single sign-on, with the agent the session
// lookup has just read: an open client needs no other read (its roles, if
// any, are read at the token request, where the gate applies again); a
// restricted one needs the agent's live habilitation.
func (s *opStorage) admitsAtOnce(ctx context.Context, u storage.User, clientID string) bool {
	if !userAllowedTokens(u) {
		return false
	}
	c, err := s.clients.get(ctx, clientID)
	if err != nil {
		return false
	}
	if !c.Restricted {
		return true
	}
	_, _, err = s.allowedFor(ctx, u.ID, clientID)
	return err == nil
}

// newAuthCode is the stored form of a code issued for request id.
func (s *opStorage) newAuthCode(id, code string) storage.AuthCode {
	return storage.AuthCode{CodeHash: storage.HashSecret(code), AuthRequestID: id, ExpiresAt: s.now().Add(s.cfg.CodeTTL)}
}

// respondWithCode answers the relying application with a code stored with
// the request, as the library's AuthResponse would (redirect with code and
// state, or form post) but without its own write of a code: the request and
// its code went to the database in one write. Our clients use the code flow
// only; anything else is left to the library.
func (p *Provider) respondWithCode(w http.ResponseWriter, r *http.Request, a *authRequest, code string) {
	if a.GetResponseType() != oidc.ResponseTypeCode {
		op.AuthResponse(a, p.op, w, r)
		return
	}
	resp := &op.CodeResponseType{Code: code, State: a.GetState()}
	if a.GetResponseMode() == oidc.ResponseModeFormPost {
		if err := writeFormPost(w, a.GetRedirectURI(), []formField{{"code", code}, {"state", a.GetState()}}); err != nil {
			op.AuthRequestError(w, r, a, err, p.op)
		}
		return
	}
	target, err := op.AuthResponseURL(a.GetRedirectURI(), a.GetResponseType(), a.GetResponseMode(), resp, p.op.Encoder())
	if err != nil {
		op.AuthRequestError(w, r, a, err, p.op)
		return
	}
	http.Redirect(w, r, target, http.StatusFound)
}

// headerOnly is a ResponseWriter that only collects headers: BindBrowser
// sets its cookie there, for SingleSignOn to send or drop.
type headerOnly http.Header

func (h headerOnly) Header() http.Header         { return http.Header(h) }
func (h headerOnly) Write(b []byte) (int, error) { return len(b), nil }
func (h headerOnly) WriteHeader(int)             {}

// heldResponse holds the library's answer back until SingleSignOn knows
// whether it stands (the answers of /authorize are redirects and short
// error pages).
type heldResponse struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (h *heldResponse) Header() http.Header { return h.header }

func (h *heldResponse) WriteHeader(status int) {
	if h.status == 0 {
		h.status = status
	}
}

func (h *heldResponse) Write(b []byte) (int, error) {
	if h.status == 0 {
		h.status = http.StatusOK
	}
	return h.body.Write(b)
}

func (h *heldResponse) sendTo(w http.ResponseWriter) {
	for k, v := range h.header {
		w.Header()[k] = v
	}
	if h.status == 0 {
		h.status = http.StatusOK
	}
	w.WriteHeader(h.status)
	_, _ = w.Write(h.body.Bytes())
}

// Finish completes the auth request ar, as the login UI read it, with the
// session's agent and answers the relying application at once (the code, by
// redirect or form post), as the library's callback would. Before anything
// is written it returns storage.ErrNotFound (the request expired or went
// since it was read: its completion checks again) or
// storage.ErrNotHabilitated (a restricted client the agent may not enter);
// an agent the gate refuses (pending, disabled) gets the OAuth error
// interaction_required at the application, never a code.
func (p *Provider) Finish(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, sess storage.Session) error {
	ctx := r.Context()
	authRequestID := ar.ID
	// The agent and its habilitation in one read; the habilitation decides
	// first (the login UI then explains the refusal), then the gate.
	a, err := p.store.GetUserAccess(ctx, sess.UserID, ar.ClientID, p.now())
	agentGone := errors.Is(err, storage.ErrNotFound)
	if err != nil && !agentGone {
		return err
	}
	if !agentGone {
		if _, err := p.storage.accessWith(ctx, ar.ClientID, a.Habilitation); err != nil {
			return err
		}
	}
	completeWith(&ar, sess)
	done := &authRequest{r: ar, userAllowed: !agentGone && userAllowedTokens(a.User)}
	if !done.Done() {
		// Completed all the same (as the callback would find it), but no
		// code: the gate refuses the agent.
		if err := p.store.CompleteAuthRequest(ctx, authRequestID, sess.UserID, sess.ID, sess.AuthTime, sess.AMR); err != nil {
			return err
		}
		return p.authRequestError(w, r, done, oidc.ErrInteractionRequired().WithDescription("the agent must set a personal password first"))
	}
	code := storage.NewSecret()
	if err := p.store.CompleteAuthRequestWithCode(ctx, authRequestID, sess.UserID, sess.ID, sess.AuthTime, sess.AMR,
		p.storage.newAuthCode(authRequestID, code), p.now()); err != nil {
		return err
	}
	p.respondWithCode(w, r, done, code)
	return nil
}

// completeWith records in r that the agent of sess authenticated it, as the
// store's CompleteAuthRequest does for the stored request.
func completeWith(r *storage.AuthRequest, sess storage.Session) {
	r.UserID, r.SessionID, r.AuthTime, r.AMR, r.Done = sess.UserID, sess.ID, sess.AuthTime, sess.AMR, true
}
