package loginui

import "net/http"

// contentSecurityPolicy allows nothing but this origin's stylesheet and the
// CAPTCHA's data: image. There is no form-action: a POST answered by a 303 to
// a relying application would be blocked by browsers that apply form-action
// to redirects.
const contentSecurityPolicy = "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'"

// hstsValue: one year, subdomains included.
const hstsValue = "max-age=31536000; includeSubDomains"

// SecurityHeaders sets the response headers every page needs. Pages are
// never cached (Cache-Control: no-store); a handler serving something
// cacheable, like the stylesheet, overrides Cache-Control itself. hsts adds
// Strict-Transport-Security: only when the issuer is https.
func SecurityHeaders(next http.Handler, hsts bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", contentSecurityPolicy)
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Cache-Control", "no-store")
		if hsts {
			hd.Set("Strict-Transport-Security", hstsValue)
		}
		next.ServeHTTP(w, r)
	})
}
