package loginui

import (
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"
)

// Input limits.
const (
	// maxFormBytes bounds a posted form; the largest legitimate one is a few
	// hundred bytes.
	maxFormBytes = 64 << 10
	// maxPasswordBytes: a longer password never reaches the hasher.
	maxPasswordBytes = 1024
	// maxEmailBytes is the longest valid address (RFC 5321 path limit).
	maxEmailBytes = 254
	// maxAuthRequestID bounds the auth request id taken from the URL.
	maxAuthRequestID = 128
)

// paramAuthRequest is the query parameter carrying the pending OpenID auth
// request from page to page.
const paramAuthRequest = "authRequestID"

// authRequestParam returns the auth request id of the URL ("" when there is
// none). ok is false for a value no provider would have issued: the login
// page then answers as for an expired request, and the other pages drop it.
func authRequestParam(r *http.Request) (id string, ok bool) {
	id = r.URL.Query().Get(paramAuthRequest)
	if len(id) > maxAuthRequestID {
		return "", false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~') {
			return "", false
		}
	}
	return id, true
}

// postForm wraps every POST handler: it bounds and parses the body, then
// checks the CSRF token before next sees anything.
func (h *Handler) postForm(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				h.renderMessage(w, r, http.StatusRequestEntityTooLarge, msg("too_large.title"), messagePage{
					Paragraphs: []message{msg("too_large.text")},
					Links:      []pageLink{{Href: retryLink(r), Text: msg("link.retry")}},
				})
				return
			}
			h.renderMessage(w, r, http.StatusBadRequest, msg("bad_form.title"), messagePage{
				Paragraphs: []message{msg("bad_form.text")},
				Links:      []pageLink{{Href: retryLink(r), Text: msg("link.retry")}},
			})
			return
		}
		if !h.validCSRF(r) {
			h.renderMessage(w, r, http.StatusForbidden, msg("csrf.title"), messagePage{
				Paragraphs: []message{msg("csrf.text")},
				Links:      []pageLink{{Href: retryLink(r), Text: msg("link.retry")}},
			})
			return
		}
		next(w, r)
	}
}

// retryLink is the GET of the page a refused form came from, for the same
// auth request. Logging out has no page of its own: back to the secure space.
func retryLink(r *http.Request) string {
	id, _ := authRequestParam(r)
	if r.URL.Path == pathLogout {
		return pathSpace
	}
	return link(r.URL.Path, id)
}

// formFields holds the posted values a handler asked for. A value that is
// not valid UTF-8 or holds a NUL byte is dropped and its field listed in
// bad, so the page can say so next to it.
type formFields struct {
	values map[string]string
	bad    []string
}

func readFields(r *http.Request, names ...string) formFields {
	f := formFields{values: make(map[string]string, len(names))}
	for _, name := range names {
		v := r.PostForm.Get(name)
		if !utf8.ValidString(v) || strings.IndexByte(v, 0) >= 0 {
			f.bad = append(f.bad, name)
			continue
		}
		f.values[name] = v
	}
	return f
}

func (f formFields) get(name string) string { return f.values[name] }

// pressed reports whether the form carried the submit button called name.
func pressed(r *http.Request, name string) bool {
	_, ok := r.PostForm[name]
	return ok
}

// markBad puts the invalid-text error next to each listed field the view has.
func (v *view) markBad(bad []string) {
	for _, name := range bad {
		if _, ok := v.Fields[name]; ok {
			v.fieldError(name, msg("errors.invalid_text"))
		}
	}
}

// overlongEmail reports an address longer than any account's
// (account.ValidateEmail caps them at maxEmailBytes once normalised). The
// password forms answer it as wrong credentials without asking the account
// rules: nothing can match it, and its throttle key would be too long for
// PostgreSQL's index.
func overlongEmail(s string) bool {
	return len(strings.TrimSpace(s)) > maxEmailBytes
}

// plausibleEmail is the only check made on an address before it is used:
// something@something, within the length limit, without spaces or control
// characters. Whether an account has it is never asked here.
func plausibleEmail(s string) bool {
	if len(s) > maxEmailBytes {
		return false
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return false
	}
	for _, c := range s {
		if c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}
