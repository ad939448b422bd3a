package provider

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"net/http"
)

// writeFormPost answers a relying application that asked for
// response_mode=form_post: a page whose form posts fields to redirectURI.
//
// The library's own page submits itself from an inline onload handler,
// which the Content-Security-Policy every answer carries (default-src
// 'self') forbids: in a browser it stayed blank. This page's script runs
// under a nonce of its own, and a browser without JavaScript gets a button.
func writeFormPost(w http.ResponseWriter, redirectURI string, fields []formField) error {
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return err
	}
	nonce := base64.RawStdEncoding.EncodeToString(n[:])
	var buf bytes.Buffer
	if err := formPostPage.Execute(&buf, struct {
		RedirectURI string
		Fields      []formField
		Nonce       string
	}{redirectURI, fields, nonce}); err != nil {
		return err
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; frame-ancestors 'none'")
	w.WriteHeader(http.StatusOK)
	_, err := buf.WriteTo(w)
	return err
}

// formField is one hidden field of a form post; empty values are left out.
type formField struct{ Name, Value string }

var formPostPage = template.Must(template.New("form_post").Parse(`<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>Retour à l'application</title></head>
<body>
<form method="post" action="{{.RedirectURI}}">
{{range .Fields}}{{if .Value}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}{{end}}<noscript><button type="submit">Continuer vers l'application</button></noscript>
</form>
<script nonce="{{.Nonce}}">document.forms[0].submit();</script>
</body></html>
`))
