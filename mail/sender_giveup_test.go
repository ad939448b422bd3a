package mail

import (
	"context"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// TestMailGivenUpDuringItsSendKeepsItsWhy: the sender has asked
// MailPending (yes) and is in its SMTP conversation with a slow relay when
// the agent asks again (or idp user reset runs): A is given up with
// last_error ProvisionalMailSuperseded. The relay then answers 421, and
// MarkMailRetry writes its error over A's, on a mail now failed for good.
// README (Audit): "a pending mail given up because its password was
// replaced ... has no event of its own: ... the outbox's last_error says
// why".
func TestMailGivenUpDuringItsSendKeepsItsWhy(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, "")
	srv := startSMTPServer(t, smtpServerOptions{})
	srv.setReject(func(stage string, _ int) error {
		if stage == "session" {
			return smtpReply(421, "relay busy, try again later")
		}
		return nil
	})
	clock := newFakeClock(t0)
	u := createAgent(t, store)
	issue := func(password string) storage.OutboxMail {
		t.Helper()
		return issueProvisionalIn(t, store, clock, u, password)
	}
	a := issue("mdpA2x7kQpRt")
	var outcomes []string
	hook := &hookTransport{
		inner: NewSMTPTransport(SMTPConfig{Addr: srv.Addr, Timeout: 5 * time.Second}),
		before: func(n int) {
			if n == 1 {
				clock.Advance(time.Second)
				issue("mdpB9w4mNzHs") // during A's SMTP conversation
			}
		},
	}
	s := NewSender(store, hook, SenderConfig{From: testFrom, Now: clock.Now, BatchSize: 1,
		OnDelivery: func(_ context.Context, m storage.OutboxMail, outcome string) {
			if m.ID == a.ID {
				outcomes = append(outcomes, outcome)
			}
		}})
	if _, err := s.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	got := mailByID(t, store, a.ID)
	t.Logf("A: status %q, attempts %d, last_error %q; outcomes reported for A: %v", got.Status, got.Attempts, got.LastError, outcomes)
	if got.Status != storage.MailFailed || got.LastError != storage.ProvisionalMailSuperseded {
		t.Errorf("A, given up by the newer password during its send: status %q, last_error %q; want failed, %q",
			got.Status, got.LastError, storage.ProvisionalMailSuperseded)
	}
}
