package mail

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// deliveryLog records what SenderConfig.OnDelivery heard.
type deliveryLog struct {
	mu  sync.Mutex
	got []string // "<to> <outcome>"
}

func (d *deliveryLog) hook(_ context.Context, m storage.OutboxMail, outcome string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, m.To+" "+outcome)
}

func (d *deliveryLog) list() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.got)
}

// TestOnDeliveryHearsEveryOutcome: the hook is told sent, deferred and
// failed, once per attempt, with the mail it concerns.
func TestOnDeliveryHearsEveryOutcome(t *testing.T) {
	var d deliveryLog
	f := newSenderFixture(t, SenderConfig{OnDelivery: d.hook})
	f.server.setReject(func(stage string, session int) error {
		switch {
		case stage == "rcpt" && session == 1:
			return smtpReply(451, "greylisted")
		}
		return nil
	})
	f.enqueue(t, PasswordChanged(testPortal, "first@example.fr", "", t0, t0))
	f.runOnce(t)
	if got := d.list(); !slices.Equal(got, []string{"first@example.fr deferred"}) {
		t.Fatalf("after a 451: %v", got)
	}
	f.clock.Advance(time.Minute)
	f.runOnce(t)
	if got := d.list(); !slices.Equal(got, []string{"first@example.fr deferred", "first@example.fr sent"}) {
		t.Fatalf("after the retry: %v", got)
	}

	f.server.setReject(func(stage string, _ int) error {
		if stage == "rcpt" {
			return smtpReply(550, "no such user")
		}
		return nil
	})
	f.enqueue(t, PasswordChanged(testPortal, "ghost@example.fr", "", f.clock.Now(), f.clock.Now()))
	f.runOnce(t)
	if got := d.list(); len(got) != 3 || got[2] != "ghost@example.fr failed" {
		t.Fatalf("after a 550: %v", got)
	}
}

// TestOnDeliveryOptional: a sender without the hook works as before.
func TestOnDeliveryOptional(t *testing.T) {
	f := newSenderFixture(t, SenderConfig{})
	f.enqueue(t, PasswordChanged(testPortal, "agent@example.fr", "", t0, t0))
	if n := f.runOnce(t); n != 1 {
		t.Fatalf("sent %d", n)
	}
}
