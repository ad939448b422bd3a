package loginui

import (
	"net/url"
	"os"
	"testing"
)

func TestZZDump(t *testing.T) {
	e := newEnv(t)
	id := e.addAuthRequest(nil)
	b := e.browser()
	p := b.get("/login/forgot?authRequestID=" + id)
	p2 := b.submit(p, "/login/forgot", url.Values{"email": {"x@y.fr"}, "captcha": {"faux"}})
	os.WriteFile("/tmp/forgot.html", []byte(p2.body), 0o644)
	p3 := b.get("/login?authRequestID=" + id)
	p4 := b.submit(p3, "/login", url.Values{"email": {"x@y.fr"}, "password": {"faux"}})
	os.WriteFile("/tmp/login.html", []byte(p4.body), 0o644)
}
