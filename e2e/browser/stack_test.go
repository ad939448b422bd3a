package browser

import (
	"context"
	"testing"

	"github.com/caf-extranet/idp/e2e/harness"
)

// captchaAnswer is the answer every CAPTCHA accepts in these tests
// (IDP_CAPTCHA_TEST_ANSWER, allowed only for a loopback issuer); the image
// still shows random text, which the agent could not type anyway.
const captchaAnswer = "Tq7Kp9"

// stack is one deployment under test: `idp serve` as a process on one
// database engine, the mail server it sends to, two relying applications,
// and the shared browser.
type stack struct {
	idp        *harness.Server
	mail       *mailbox
	app1, app2 *relyingApp
	chrome     context.Context
	axe        *axe
}

// startStack starts a provider on the database at dbURL ("" for the
// harness's SQLite file) with the test CAPTCHA answer, real SMTP delivery
// to an in-test server and short worker intervals.
func startStack(t *testing.T, chrome context.Context, x *axe, dbURL string) *stack {
	t.Helper()
	mb := startMailbox(t)
	extra := []string{
		"IDP_CAPTCHA_TEST_ANSWER=" + captchaAnswer,
		"IDP_SMTP_ADDR=" + mb.Addr,
		"IDP_MAIL_POLL_INTERVAL=200ms",
		"IDP_RECOVERY_POLL_INTERVAL=200ms",
	}
	if dbURL != "" {
		extra = append(extra, "IDP_DATABASE_URL="+dbURL)
	}
	idp := harness.Start(t, harness.Env(t, extra...))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("idp serve logs:\n%s", idp.Logs())
		}
	})
	return &stack{
		idp:    idp,
		mail:   mb,
		app1:   startRelyingApp(t, idp, "portail-rh", "Portail RH"),
		app2:   startRelyingApp(t, idp, "gestion-aides", "Gestion des aides"),
		chrome: chrome,
		axe:    x,
	}
}

// addAgent creates an agent with a personal password, as an administrator
// does with `idp user add`. Each journey has its own agent, so that journeys
// never share an account nor its per-account mail limit.
func (s *stack) addAgent(t *testing.T, email, name, password string) {
	t.Helper()
	harness.Admin(t, s.idp.Env, "user", "add", "--email", email, "--name", name,
		"--organisation", "Mairie de Lyon", "--password", password)
}
