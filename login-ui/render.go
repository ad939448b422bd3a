package loginui

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

//go:embed templates/*.html
var templateFS embed.FS

// parsePages parses every page once, each with the shared layout and
// partials, at construction: a broken template stops the start-up instead of
// a request. Each page defines "content", rendered inside "layout".
func parsePages(c catalog) (map[string]*template.Template, error) {
	funcs := c.funcs()
	funcs["link"] = link
	names := []string{"login", "forgot", "sent", "change", "password", "space", "message", "logout"}
	pages := make(map[string]*template.Template, len(names))
	for _, name := range names {
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("loginui: parsing page %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// link is the URL of one of the pages for an auth request ("" for none),
// with optional extra query parameters as name, value pairs.
func link(path, authRequestID string, extra ...string) string {
	q := url.Values{}
	if authRequestID != "" {
		q.Set(paramAuthRequest, authRequestID)
	}
	for i := 0; i+1 < len(extra); i += 2 {
		q.Set(extra[i], extra[i+1])
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// view is what every page template gets.
type view struct {
	Lang   string
	Portal string
	// Title is the page's <title>; Heading its <h1> (Title when empty).
	Title   message
	Heading message
	// Notice is a confirmation shown above the form (e.g. after a change).
	Notice        message
	Errors        []summaryItem
	CSRF          string
	AuthRequestID string
	Fields        map[string]field
	// Data is the page's own content.
	Data any
}

// summaryItem is one line of the error summary, linked to its field.
type summaryItem struct {
	Field string // the input's id; "" for a form-level error
	Text  message
}

// field is one labelled input.
type field struct {
	ID, Name, Type string
	Label          message
	Hint           message
	Value          string
	Autocomplete   string
	InputMode      string
	// Verbatim turns off the phone keyboards' capitalisation and
	// correction: the CAPTCHA answer is case-sensitive.
	Verbatim bool
	// Describe lists ids of other help texts for the field (e.g. the
	// password policy).
	Describe []string
	Errors   []message
}

// DescribedBy is the aria-describedby of the input: its hint, the other help
// texts, its errors.
func (f field) DescribedBy() string {
	var ids []string
	if f.Hint.Key != "" {
		ids = append(ids, f.ID+"-hint")
	}
	ids = append(ids, f.Describe...)
	if len(f.Errors) > 0 {
		ids = append(ids, f.ID+"-error")
	}
	return strings.Join(ids, " ")
}

func newView(title message, authRequestID string) *view {
	return &view{Title: title, Heading: title, AuthRequestID: authRequestID, Fields: map[string]field{}}
}

// addField declares an input; the field's name is its id.
func (v *view) addField(f field) {
	if f.Name == "" {
		f.Name = f.ID
	}
	v.Fields[f.ID] = f
}

// fieldError shows m next to the field and in the summary.
func (v *view) fieldError(id string, m message) {
	f := v.Fields[id]
	f.Errors = append(f.Errors, m)
	v.Fields[id] = f
	v.Errors = append(v.Errors, summaryItem{Field: id, Text: m})
}

// formError shows m in the summary only.
func (v *view) formError(m message) {
	v.Errors = append(v.Errors, summaryItem{Text: m})
}

// render executes the page into a buffer first, so that a template error
// gives a clean error page rather than half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	v.Lang, v.Portal = h.catalog.lang, h.cfg.PortalName
	if v.CSRF == "" {
		v.CSRF = h.ensureCSRF(w, r)
	}
	var buf bytes.Buffer
	if err := h.pages[page].ExecuteTemplate(&buf, "layout", v); err != nil {
		h.internalError(w, r, "rendering "+page, err)
		return
	}
	writeHTML(w, status, buf.Bytes())
}

func writeHTML(w http.ResponseWriter, status int, body []byte) {
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// messagePage is the content of the simple pages: expired request, errors.
type messagePage struct {
	Paragraphs []message
	Links      []pageLink
}

type pageLink struct {
	Href string
	Text message
}

// renderMessage shows a page made of a few paragraphs and links.
func (h *Handler) renderMessage(w http.ResponseWriter, r *http.Request, status int, title message, content messagePage) {
	v := newView(title, "")
	v.Data = content
	h.render(w, r, status, "message", v)
}

// internalError logs err and shows the technical error page. Should that page
// itself fail, a plain French sentence is all the browser gets.
func (h *Handler) internalError(w http.ResponseWriter, r *http.Request, what string, err error) {
	h.log.ErrorContext(r.Context(), "login page failed", "step", what, "err", err)
	v := newView(msg("internal.title"), "")
	v.Lang, v.Portal = h.catalog.lang, h.cfg.PortalName
	v.Data = messagePage{
		Paragraphs: []message{msg("internal.text")},
		Links:      []pageLink{{Href: pathLogin, Text: msg("link.back_login")}},
	}
	var buf bytes.Buffer
	if err := h.pages["message"].ExecuteTemplate(&buf, "layout", v); err != nil {
		text, _ := h.catalog.get("internal.text")
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(text))
		return
	}
	writeHTML(w, http.StatusInternalServerError, buf.Bytes())
}

// renderExpired is the answer to an unknown or expired auth request.
func (h *Handler) renderExpired(w http.ResponseWriter, r *http.Request) {
	h.renderMessage(w, r, http.StatusBadRequest, msg("login.expired.title"), messagePage{
		Paragraphs: []message{msg("login.expired.text")},
		Links:      []pageLink{{Href: pathLogin, Text: msg("link.portal")}},
	})
}
