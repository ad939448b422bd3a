package account_test

import (
	"testing"
	"time"

	"github.com/caf-extranet/idp/account"
	"github.com/caf-extranet/idp/storage"
)

// TestReenabledAgentKeepsTheDeliveredPassword: an account created
// without a password; its welcome mail is delivered (the sender marked it
// sent), then an administrator disables and enables the account before the
// agent's first login. The agent types the password of the only mail it
// ever got: refused. The personal password of an agent survives a
// disable/enable; the provisional one it did receive no longer does.
func TestReenabledAgentKeepsTheDeliveredPassword(t *testing.T) {
	engines(t, func(t *testing.T, f *fixture) {
		if _, err := f.svc.CreateUser(f.ctx, account.NewUser{Email: "paul@mairie.fr", Name: "Paul"}, meta); err != nil {
			t.Fatal(err)
		}
		mails := f.mailsTo("paul@mairie.fr")
		if len(mails) != 1 {
			t.Fatalf("%d mails, want the welcome mail", len(mails))
		}
		m := passwordLine.FindStringSubmatch(mails[0].TextBody)
		if m == nil {
			t.Fatal("no password in the welcome mail")
		}
		provisional := m[1]
		if err := f.st.MarkMailSent(f.ctx, mails[0].ID, f.clock()); err != nil { // delivered
			t.Fatal(err)
		}
		f.advance(10 * time.Minute)
		if err := f.svc.SetDisabled(f.ctx, "paul@mairie.fr", true, meta); err != nil {
			t.Fatal(err)
		}
		if err := f.svc.SetDisabled(f.ctx, "paul@mairie.fr", false, meta); err != nil {
			t.Fatal(err)
		}
		pending := 0
		for _, m := range f.mailsTo("paul@mairie.fr") {
			if m.Status == storage.MailPending {
				pending++
			}
		}
		l, err := logIn(f.svc, f.ctx, "paul@mairie.fr", provisional, meta)
		if err != nil || !l.Provisional {
			t.Errorf("enabled again, the agent logs in with the password of the welcome mail it received: %v (pending mails: %d): "+
				"the only mail it ever got carries a refused password, and nothing is on its way", err, pending)
		}
	})
}
