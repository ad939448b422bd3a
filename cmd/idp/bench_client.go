package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/net/html"
	"golang.org/x/oauth2"
)

// The bench's clients behave as the real ones do: a browser keeps cookies,
// follows the provider's redirects and fills the hosted forms; the relying
// application uses coreos/go-oidc (discovery, ID token verification) and
// golang.org/x/oauth2 (code flow with PKCE, refresh), unchanged.

// benchTarget is the provider under test, as one relying application sees it.
type benchTarget struct {
	opts      benchOptions
	origin    string // scheme://host of the provider
	transport *http.Transport
	// backChannel is the relying application's HTTP client: no cookies, no
	// redirects.
	backChannel *http.Client
	rpCtx       context.Context // carries backChannel for x/oauth2 and go-oidc
	provider    *oidc.Provider
	oauth       oauth2.Config
	verifier    *oidc.IDTokenVerifier
	jwksURL     string
	// addresses numbers the browsers' X-Forwarded-For addresses.
	addresses syncCounter
}

// requestTimeout bounds every request of the bench: a stuck server shows up
// as errors, never as a hung bench.
const requestTimeout = 30 * time.Second

func newBenchTarget(ctx context.Context, o benchOptions) (*benchTarget, error) {
	u, err := url.Parse(o.url)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, &usageError{fmt.Sprintf("bench: --url %q is not an absolute URL", o.url)}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	// Enough idle connections that the workers never redial: a browser or
	// an application keeps its connections alive too.
	tr.MaxIdleConns = 4*max(o.workers, o.loginWorkers) + 16
	tr.MaxIdleConnsPerHost = tr.MaxIdleConns
	t := &benchTarget{opts: o, origin: u.Scheme + "://" + u.Host, transport: tr}
	// A random first address: runs that follow each other within the
	// throttles' windows do not present the same addresses again.
	t.addresses.n = mathrand.Uint64N(1 << 24)
	t.backChannel = &http.Client{Transport: tr, Timeout: requestTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.rpCtx = oidc.ClientContext(ctx, t.backChannel)
	t.provider, err = oidc.NewProvider(t.rpCtx, strings.TrimSuffix(o.url, "/"))
	if err != nil {
		return nil, fmt.Errorf("bench: discovery at %s: %w", o.url, err)
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := t.provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("bench: discovery document: %w", err)
	}
	t.jwksURL = meta.JWKSURI
	t.oauth = oauth2.Config{ClientID: o.clientID, ClientSecret: o.clientSecret, Endpoint: t.provider.Endpoint(),
		RedirectURL: o.redirectURI, Scopes: []string{oidc.ScopeOpenID, "email", "profile", oidc.ScopeOfflineAccess}}
	t.verifier = t.provider.Verifier(&oidc.Config{ClientID: o.clientID})
	return t, nil
}

// benchBrowser is one browser: its own cookies and, behind the load
// balancer the bench pretends to be, its own client address.
type benchBrowser struct {
	t      *benchTarget
	client *http.Client
	addr   string // sent as X-Forwarded-For when the bench is asked to
}

func (t *benchTarget) newBrowser() *benchBrowser {
	jar, _ := cookiejar.New(nil) // never fails without options
	b := &benchBrowser{t: t}
	n := t.addresses.next()
	b.addr = fmt.Sprintf("10.%d.%d.%d", n>>16&0xff, n>>8&0xff, n&0xff)
	b.client = &http.Client{Transport: t.transport, Jar: jar, Timeout: requestTimeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			// The browser follows the provider's own redirects and stops
			// where it would leave for the relying application.
			if req.URL.Scheme+"://"+req.URL.Host != t.origin || len(via) > 10 {
				return http.ErrUseLastResponse
			}
			return nil
		}}
	return b
}

// benchPage is a response as the browser saw it.
type benchPage struct {
	status   int
	url      *url.URL // after the redirects the browser followed
	location string
	body     []byte
}

func (b *benchBrowser) do(ctx context.Context, method, target string, form url.Values) (*benchPage, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("User-Agent", "idp-bench (browser)")
	if b.t.opts.forwardedFor {
		// Copied by net/http onto the redirects it follows.
		req.Header.Set("X-Forwarded-For", b.addr)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	buf, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &benchPage{status: resp.StatusCode, url: resp.Request.URL, location: resp.Header.Get("Location"), body: buf}, nil
}

// pageError describes an unexpected page briefly (its title says what it is).
func pageError(step string, p *benchPage) error {
	title := ""
	if i := bytes.Index(p.body, []byte("<title>")); i >= 0 {
		rest := p.body[i+len("<title>"):]
		if j := bytes.Index(rest, []byte("</title>")); j >= 0 {
			title = strings.TrimSpace(string(rest[:j]))
		}
	}
	return fmt.Errorf("%s: status %d at %s (%q)", step, p.status, p.url.Path, title)
}

// hostedForm is a form of a hosted page: where it posts and its hidden
// fields (CSRF token, challenge id...).
type hostedForm struct {
	action string
	values url.Values
}

// findForm returns the first form of the page whose action's path is
// actionPath, with its hidden fields; image reports whether the form holds a
// data: image (the CAPTCHA).
func findForm(p *benchPage, actionPath string) (f hostedForm, image bool, err error) {
	z := html.NewTokenizer(bytes.NewReader(elideDataURIs(p.body)))
	in := false
	for {
		switch z.Next() {
		case html.ErrorToken:
			if in {
				return f, image, nil
			}
			return f, false, fmt.Errorf("no form posting to %s on %s", actionPath, p.url.Path)
		case html.StartTagToken, html.SelfClosingTagToken:
			tn, hasAttr := z.TagName()
			if !in && string(tn) != "form" || in && string(tn) != "input" && string(tn) != "img" {
				continue
			}
			var action, typ, name, value, src string
			for hasAttr {
				var k, v []byte
				k, v, hasAttr = z.TagAttr()
				switch string(k) {
				case "action":
					action = string(v)
				case "type":
					typ = string(v)
				case "name":
					name = string(v)
				case "value":
					value = string(v)
				case "src":
					src = string(v)
				}
			}
			switch {
			case !in:
				a, err := p.url.Parse(action)
				if err == nil && a.Path == actionPath {
					in, f = true, hostedForm{action: a.String(), values: url.Values{}}
				}
			case string(tn) == "input" && typ == "hidden" && name != "":
				f.values.Set(name, value)
			case string(tn) == "img" && strings.HasPrefix(src, "data:image/"):
				image = true
			}
		case html.EndTagToken:
			if tn, _ := z.TagName(); in && string(tn) == "form" {
				return f, image, nil
			}
		}
	}
}

// dataImage opens an inline image's source: the CAPTCHA is drawn into the
// page as a data: URI.
var dataImage = []byte(`src="data:image/`)

// elideDataURIs returns body without the payloads of its inline images
// (each source left as "data:image/"). The tokenizer would otherwise read
// the CAPTCHA's base64, most of the page, a byte at a time: the bench's
// work, not the server's, on the cores they share. Only a source inside an
// <img> tag is cut: the same characters in text are left alone.
func elideDataURIs(body []byte) []byte {
	var out []byte
	for from := 0; ; {
		i := bytes.Index(body[from:], dataImage)
		if i < 0 {
			break
		}
		i += from
		start := i + len(dataImage)
		tag := bytes.LastIndexByte(body[:i], '<')
		if tag < 0 || !bytes.HasPrefix(body[tag:], []byte("<img ")) || bytes.IndexByte(body[tag:i], '>') >= 0 {
			from = start // not an image's source
			continue
		}
		end := bytes.IndexByte(body[start:], '"')
		if end < 0 {
			break // unterminated: left to the tokenizer
		}
		if out == nil {
			out = make([]byte, 0, len(body))
		}
		out = append(out, body[:start]...)
		body, from = body[start+end:], 0
	}
	if out == nil {
		return body
	}
	return append(out, body...)
}

// flow is one login of the relying application: its state, nonce and PKCE
// verifier.
type flow struct {
	state, nonce, verifier string
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func (t *benchTarget) newFlow() (flow, string) {
	f := flow{state: randomToken(), nonce: randomToken(), verifier: oauth2.GenerateVerifier()}
	return f, t.oauth.AuthCodeURL(f.state, oidc.Nonce(f.nonce), oauth2.S256ChallengeOption(f.verifier))
}

// errNoCode: the browser did not come back to the relying application with
// a code.
var errNoCode = errors.New("no authorization code")

// code reads the redirect to the relying application.
func (t *benchTarget) code(f flow, p *benchPage) (string, error) {
	if p.status != http.StatusFound && p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, t.opts.redirectURI) {
		return "", fmt.Errorf("%w: %w", errNoCode, pageError("back to the application", p))
	}
	u, err := url.Parse(p.location)
	if err != nil {
		return "", err
	}
	q := u.Query()
	if e := q.Get("error"); e != "" {
		return "", fmt.Errorf("%w: the application got %s: %s", errNoCode, e, q.Get("error_description"))
	}
	if q.Get("state") != f.state {
		return "", fmt.Errorf("%w: state mismatch", errNoCode)
	}
	return q.Get("code"), nil
}

// exchange trades the code with its PKCE verifier and verifies the ID token
// (signature, issuer, audience, expiry, nonce).
func (t *benchTarget) exchange(ctx context.Context, f flow, code string) (*oauth2.Token, error) {
	ctx = oidc.ClientContext(ctx, t.backChannel)
	tok, err := t.oauth.Exchange(ctx, code, oauth2.VerifierOption(f.verifier))
	if err != nil {
		return nil, fmt.Errorf("code exchange: %w", err)
	}
	idt, err := t.verifyIDToken(ctx, tok)
	if err != nil {
		return nil, err
	}
	if idt.Nonce != f.nonce {
		return nil, errors.New("ID token: nonce mismatch")
	}
	return tok, nil
}

func (t *benchTarget) verifyIDToken(ctx context.Context, tok *oauth2.Token) (*oidc.IDToken, error) {
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, errors.New("token response without id_token")
	}
	idt, err := t.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("ID token: %w", err)
	}
	return idt, nil
}

// refresh redeems a refresh token as x/oauth2 does when an access token has
// expired, and verifies the new ID token.
func (t *benchTarget) refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	ctx = oidc.ClientContext(ctx, t.backChannel)
	tok, err := t.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		return nil, fmt.Errorf("refresh: %w", err)
	}
	if tok.RefreshToken == "" || tok.RefreshToken == refreshToken {
		return nil, errors.New("refresh: the refresh token was not rotated")
	}
	if _, err := t.verifyIDToken(ctx, tok); err != nil {
		return nil, err
	}
	return tok, nil
}

// login is the whole first login of a fresh browser: authorize, the login
// page, the credentials, the code, the token exchange, the ID token.
func (t *benchTarget) login(ctx context.Context, b *benchBrowser, email string) (*oauth2.Token, error) {
	f, authURL := t.newFlow()
	p, err := b.do(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, fmt.Errorf("authorize: %w", err)
	}
	if p.status != http.StatusOK {
		return nil, pageError("login page", p)
	}
	form, _, err := findForm(p, "/login")
	if err != nil {
		return nil, err
	}
	form.values.Set("email", email)
	form.values.Set("password", t.opts.password)
	p, err = b.do(ctx, http.MethodPost, form.action, form.values)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	code, err := t.code(f, p)
	if err != nil {
		return nil, err
	}
	return t.exchange(ctx, f, code)
}

// sso is a login of a browser that holds a session: authorize, straight
// back with a code, the token exchange, the ID token.
func (t *benchTarget) sso(ctx context.Context, b *benchBrowser) (*oauth2.Token, error) {
	f, authURL := t.newFlow()
	p, err := b.do(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, fmt.Errorf("authorize: %w", err)
	}
	code, err := t.code(f, p)
	if err != nil {
		return nil, err
	}
	return t.exchange(ctx, f, code)
}

// forgot draws the « Mot de passe oublié ? » page with its CAPTCHA and
// submits it with the test answer, for an address nobody has (the answer is
// the same for every address; an unknown one keeps the background worker
// from hashing provisional passwords meanwhile).
func (t *benchTarget) forgot(ctx context.Context, b *benchBrowser) error {
	p, err := b.do(ctx, http.MethodGet, t.origin+"/login/forgot", nil)
	if err != nil {
		return fmt.Errorf("forgot page: %w", err)
	}
	if p.status != http.StatusOK {
		return pageError("forgot page", p)
	}
	form, image, err := findForm(p, "/login/forgot")
	if err != nil {
		return err
	}
	if !image || form.values.Get("challenge") == "" {
		return errors.New("forgot page: no CAPTCHA image")
	}
	form.values.Set("email", "inconnu-"+randomToken()[:12]+"@bench.example.fr")
	form.values.Set("captcha", t.opts.captchaAnswer)
	p, err = b.do(ctx, http.MethodPost, form.action, form.values)
	if err != nil {
		return fmt.Errorf("forgot submit: %w", err)
	}
	// The browser followed the 303 to the confirmation page.
	if p.status != http.StatusOK || p.url.Path != "/login/forgot/sent" {
		return pageError("forgot submit", p)
	}
	return nil
}

// document GETs a public document as a relying application does.
func (t *benchTarget) document(ctx context.Context, target string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	resp, err := t.backChannel.Do(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || n == 0 {
		return fmt.Errorf("%s: status %d, %d bytes", target, resp.StatusCode, n)
	}
	return nil
}

// isLoopback tells whether the provider is on this machine (then the floors
// measured here are its floors).
func isLoopback(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
