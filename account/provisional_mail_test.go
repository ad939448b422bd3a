package account_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/storage"
)

// TestPersonalLoginEndsThePendingProvisionalMail: a recovery asked while the
// relay is down, then a login with the personal password, which cancels the
// provisional one: its mail, still pending, no longer goes (found by review:
// the agent got a password that was refused).
func TestPersonalLoginEndsThePendingProvisionalMail(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		f.agent("claire@mairie.fr", "secret12")
		provisional := f.recover("claire@mairie.fr") // queued, not yet sent
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", "secret12", meta); err != nil {
			t.Fatal(err)
		}
		if _, err := logIn(f.svc, f.ctx, "claire@mairie.fr", provisional, meta); !errors.Is(err, account.ErrInvalidCredentials) {
			t.Fatalf("the provisional password after a personal login: %v, want it cancelled", err)
		}
		for _, m := range f.mailsTo("claire@mairie.fr") {
			if m.Status == storage.MailPending && strings.Contains(m.TextBody, provisional) {
				t.Errorf("mail %s (%q) is still pending and carries the provisional password the personal login cancelled", m.ID, m.Subject)
			}
		}
	})
}

// TestReenabledAgentHoldsNoPasswordWithoutItsMail: disabling gives up the
// pending mail of the first password, and takes the password along, so that
// an agent enabled again is not left with a valid password it never
// received (found by review); it asks for a new one.
func TestReenabledAgentHoldsNoPasswordWithoutItsMail(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		u, err := f.svc.CreateUser(f.ctx, account.NewUser{Email: "paul@mairie.fr", Name: "Paul"}, meta)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.svc.SetDisabled(f.ctx, "paul@mairie.fr", true, meta); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.SetDisabled(f.ctx, "paul@mairie.fr", false, meta); err != nil {
			t.Fatal(err)
		}
		_, provErr := f.st.GetProvisionalPassword(f.ctx, u.ID, f.clock())
		pending := 0
		for _, m := range f.mailsTo("paul@mairie.fr") {
			t.Logf("mail %q: %s %q", m.Subject, m.Status, m.LastError)
			if m.Status == storage.MailPending {
				pending++
			}
		}
		if provErr == nil && pending == 0 {
			t.Errorf("re-enabled agent: a valid provisional password and no pending mail carrying it: the agent can never log in without a new request")
		}
	})
}
