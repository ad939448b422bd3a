package mail

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

type hookTransport struct {
	inner  Transport
	before func(n int)
	n      int
}

func (h *hookTransport) Send(ctx context.Context, from, to string, msg []byte) error {
	h.n++
	if h.before != nil {
		h.before(h.n)
	}
	return h.inner.Send(ctx, from, to, msg)
}

// TestSenderSkipsAMailGivenUpSinceItsClaim: idp serve's
// sender has claimed a batch (a notice for someone else, then the agent's
// provisional mail A). While it sends the first, the helpdesk runs
// `idp user reset` for the agent: IssueProvisionalPassword gives A up
// (status failed, bodies cleared) and deliverNow sends B at once. idp serve
// then sends A from the copy it claimed: the agent's last mail carries the
// password B replaced, and the outbox row says "sent". A was given up before
// it was handed to the relay; README: "the agent no longer gets, after the
// right mail, one whose password is refused".
// TestSenderSkipsAMailGivenUpSinceItsClaim: idp serve is partway through a
// batch when the helpdesk runs idp user reset; the reset gives up the
// agent's older mail, which serve had claimed, and delivers the new one at
// once. serve sent the older one from its claim all the same, last, and
// recorded it sent (found by review); it now asks first.
func TestSenderSkipsAMailGivenUpSinceItsClaim(t *testing.T) {
	ctx := context.Background()
	store := openStore(t, "")
	srv := startSMTPServer(t, smtpServerOptions{})
	clock := newFakeClock(t0)
	smtpT := NewSMTPTransport(SMTPConfig{Addr: srv.Addr, Timeout: 5 * time.Second})

	u := createAgent(t, store)
	issue := func(password string) storage.OutboxMail {
		t.Helper()
		return issueProvisionalIn(t, store, clock, u, password)
	}

	notice := PasswordChanged(testPortal, "collegue@example.fr", "Paul Martin", t0.Add(-time.Second), t0.Add(-time.Second))
	if err := store.EnqueueMail(ctx, notice); err != nil {
		t.Fatal(err)
	}
	a := issue("mdpA2x7kQpRt")

	// deliverNow's sender: the agent's mails only (recipientOutbox).
	admin := NewSender(recipientOutbox{store, u.Email}, smtpT, SenderConfig{From: testFrom, Lease: 2 * time.Minute, Now: clock.Now})
	hook := &hookTransport{inner: smtpT, before: func(n int) {
		if n != 1 {
			return
		}
		clock.Advance(2 * time.Second)
		issue("mdpB9w4mNzHs") // idp user reset: A is given up
		if got := mailByID(t, store, a.ID); got.Status != storage.MailFailed {
			t.Fatalf("A after the reset: %s, want failed", got.Status)
		}
		if _, err := admin.RunOnce(ctx); err != nil { // deliverNow
			t.Errorf("deliverNow: %v", err)
		}
	}}
	serve := NewSender(store, hook, SenderConfig{From: testFrom, Lease: 2 * time.Minute, BatchSize: 20, Now: clock.Now})
	if _, err := serve.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}

	var order []string
	for _, r := range srv.Messages() {
		text := textOf(t, r)
		switch {
		case strings.Contains(text, "mdpA2x7kQpRt"):
			order = append(order, "A (replaced)")
		case strings.Contains(text, "mdpB9w4mNzHs"):
			order = append(order, "B (current)")
		}
	}
	t.Logf("the agent's mails, in the order received: %v", order)
	if len(order) > 0 && order[len(order)-1] == "A (replaced)" {
		t.Errorf("the agent's last mail carries the provisional password that `idp user reset` replaced: they type it and are refused")
	}
	if got := mailByID(t, store, a.ID); got.Status != storage.MailFailed || got.LastError != storage.ProvisionalMailSuperseded {
		t.Errorf("A's outbox row: status %q, last error %q; it was given up as %q", got.Status, got.LastError, storage.ProvisionalMailSuperseded)
	}
}

type recipientOutbox struct {
	Outbox
	to string
}

func (o recipientOutbox) ClaimMails(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]storage.OutboxMail, error) {
	return o.Outbox.(interface {
		ClaimMailsTo(context.Context, string, time.Time, time.Duration, int) ([]storage.OutboxMail, error)
	}).ClaimMailsTo(ctx, o.to, now, lease, limit)
}
