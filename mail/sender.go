package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/caf-extranet/idp/storage"
)

// Outbox is the part of storage.Store the sender needs.
type Outbox interface {
	ClaimMails(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]storage.OutboxMail, error)
	MailPending(ctx context.Context, id string) (bool, error)
	MarkMailSent(ctx context.Context, id string, now time.Time) error
	MarkMailRetry(ctx context.Context, id string, next time.Time, lastError string) error
	MarkMailFailed(ctx context.Context, id string, lastError string) error
}

// Transport hands one built message to its next hop. from and to are bare
// envelope addresses. An error for which IsPermanent is true is not retried.
type Transport interface {
	Send(ctx context.Context, from, to string, msg []byte) error
}

// Sender defaults.
const (
	DefaultPollInterval = 10 * time.Second
	DefaultLease        = 2 * time.Minute
	DefaultBatchSize    = 10
	DefaultGiveUpAfter  = 24 * time.Hour

	firstRetryDelay = 30 * time.Second
	maxRetryDelay   = 15 * time.Minute
	maxLastError    = 500 // bytes of an error kept in the outbox row
)

// SenderConfig configures a Sender; zero values get the defaults above.
type SenderConfig struct {
	// From is the From header, e.g. "Portail Extranet <no-reply@example.fr>";
	// its domain also names the Message-IDs.
	From         string
	PollInterval time.Duration
	// Lease is how long a claimed mail is reserved for this sender; it must
	// exceed the time a batch takes to send, or another instance may send a
	// mail again. The sender stops a batch once half the lease has gone.
	Lease     time.Duration
	BatchSize int
	// GiveUpAfter: a mail still undelivered this long after it was queued is
	// marked failed.
	GiveUpAfter time.Duration
	Now         func() time.Time
	Logger      *slog.Logger
	// OnDelivery, when set, is told the outcome of every delivery attempt
	// (DeliverySent, DeliveryDeferred or DeliveryFailed), for metrics and
	// the audit trail. It runs on the sender's goroutine once the outcome
	// is known: keep it short. m still holds the bodies, which may carry a
	// provisional password: never log them.
	OnDelivery func(ctx context.Context, m storage.OutboxMail, outcome string)
}

// Outcomes of a delivery attempt, as reported to SenderConfig.OnDelivery.
const (
	// DeliverySent: the next hop accepted the mail.
	DeliverySent = "sent"
	// DeliveryDeferred: a temporary failure; the mail will be retried.
	DeliveryDeferred = "deferred"
	// DeliveryFailed: refused for good, or retried until GiveUpAfter.
	DeliveryFailed = "failed"
)

// Validate reports a From the sender could never use.
func (c SenderConfig) Validate() error {
	_, err := parseAddress("From", c.From)
	return err
}

// Sender delivers the outbox. Any number of senders, in one process or many,
// may share one store: the store's leases keep them from sending a mail twice.
type Sender struct {
	outbox    Outbox
	transport Transport
	cfg       SenderConfig
	wake      chan struct{}
}

// NewSender returns a sender of o's mails through t.
func NewSender(o Outbox, t Transport, c SenderConfig) *Sender {
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.BatchSize <= 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.GiveUpAfter <= 0 {
		c.GiveUpAfter = DefaultGiveUpAfter
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.OnDelivery == nil {
		c.OnDelivery = func(context.Context, storage.OutboxMail, string) {}
	}
	return &Sender{outbox: o, transport: t, cfg: c, wake: make(chan struct{}, 1)}
}

// Wake asks Run for a pass now, e.g. right after a mail was queued. It never
// blocks: wakes that arrive during a pass are folded into one more pass.
func (s *Sender) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run sends the outbox every PollInterval (and on Wake) until ctx is done,
// then returns nil. A message being sent when ctx is cancelled is finished
// (bounded by the transport's own timeout) and recorded, so that it is
// neither lost nor sent twice; the rest of the batch waits for the next
// sender once its lease ends.
func (s *Sender) Run(ctx context.Context) error {
	for {
		_, claimed, err := s.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			s.cfg.Logger.ErrorContext(ctx, "mail outbox pass failed", "error", err)
		}
		if err == nil && claimed == s.cfg.BatchSize {
			continue // a full batch: there may be more due right now
		}
		timer := time.NewTimer(s.cfg.PollInterval)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil
		case <-s.wake:
			timer.Stop()
		case <-timer.C:
		}
	}
}

// RunOnce claims the mails due now and sends them; it returns how many went
// out. Delivery failures are recorded on the mails (retry or failed) and
// logged; the error reports what the sender could not record or claim.
func (s *Sender) RunOnce(ctx context.Context) (int, error) {
	sent, _, err := s.runOnce(ctx)
	return sent, err
}

func (s *Sender) runOnce(ctx context.Context) (sent, claimed int, err error) {
	if err := s.cfg.Validate(); err != nil {
		// Not the mails' fault: leave them queued for a fixed configuration.
		return 0, 0, err
	}
	claimedAt := s.cfg.Now()
	mails, err := s.outbox.ClaimMails(ctx, claimedAt, s.cfg.Lease, s.cfg.BatchSize)
	if err != nil {
		return 0, 0, fmt.Errorf("mail: claiming the outbox: %w", err)
	}
	var errs []error
	for _, m := range mails {
		if ctx.Err() != nil {
			break
		}
		if s.cfg.Now().Sub(claimedAt) > s.cfg.Lease/2 {
			// Too close to the lease's end: another sender could claim
			// the rest and send it at the same time as us.
			break
		}
		// Given up since the claim (a newer provisional password, the
		// account disabled...): its password is refused, so it stays.
		if pending, err := s.outbox.MailPending(ctx, m.ID); err != nil || !pending {
			if err != nil {
				errs = append(errs, fmt.Errorf("mail: %s: %w", m.ID, err))
			}
			continue
		}
		// The send and its record must complete together even if ctx is
		// cancelled now: a sent mail left pending would go out again.
		ok, err := s.deliver(context.WithoutCancel(ctx), m)
		if ok {
			sent++
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return sent, len(mails), errors.Join(errs...)
}

// deliver sends one mail and records the outcome. ok says the transport took
// the mail; err says the outcome could not be recorded.
func (s *Sender) deliver(ctx context.Context, m storage.OutboxMail) (ok bool, err error) {
	log := s.cfg.Logger.With("mail_id", m.ID, "to", m.To, "subject", m.Subject, "attempt", m.Attempts+1)
	sendErr := s.send(ctx, m, s.cfg.Now())
	now := s.cfg.Now()
	if sendErr == nil {
		// Reported even if the record below fails: the mail did go out.
		s.cfg.OnDelivery(ctx, m, DeliverySent)
		if err := s.outbox.MarkMailSent(ctx, m.ID, now); err != nil {
			log.ErrorContext(ctx, "mail sent but not recorded: it will be sent again", "error", err)
			return true, fmt.Errorf("mail: recording %s as sent: %w", m.ID, err)
		}
		log.InfoContext(ctx, "mail sent")
		return true, nil
	}

	lastError := truncate(sendErr.Error(), maxLastError)
	giveUpAt := m.CreatedAt.Add(s.cfg.GiveUpAfter)
	outcome := DeliveryFailed
	switch {
	case IsPermanent(sendErr):
		log.WarnContext(ctx, "mail rejected: not retried", "error", lastError)
		err = s.outbox.MarkMailFailed(ctx, m.ID, lastError)
	case !now.Before(giveUpAt):
		log.WarnContext(ctx, "mail undelivered: giving up", "error", lastError, "queued_at", m.CreatedAt)
		err = s.outbox.MarkMailFailed(ctx, m.ID, truncate("gave up: "+lastError, maxLastError))
	default:
		outcome = DeliveryDeferred
		next := now.Add(RetryDelay(m.Attempts + 1))
		log.InfoContext(ctx, "mail delivery deferred", "error", lastError, "next_attempt_at", next)
		err = s.outbox.MarkMailRetry(ctx, m.ID, next, lastError)
	}
	s.cfg.OnDelivery(ctx, m, outcome)
	if err != nil {
		return false, fmt.Errorf("mail: recording the failure of %s: %w", m.ID, err)
	}
	return false, nil
}

func (s *Sender) send(ctx context.Context, m storage.OutboxMail, now time.Time) error {
	envFrom, envTo, err := Envelope(s.cfg.From, m.To)
	if err != nil {
		return err
	}
	// The Message-ID is the outbox id: a retry after an uncertain delivery
	// carries the same id, which lets the recipient's system drop the copy.
	domain := envFrom[strings.LastIndexByte(envFrom, '@')+1:]
	msg, err := Build(s.cfg.From, m, m.ID+"@"+domain, now)
	if err != nil {
		return err
	}
	return s.transport.Send(ctx, envFrom, envTo, msg)
}

// RetryDelay is the wait after the n-th failed attempt (n >= 1): 30 s, 1 min,
// 2 min, 4 min... capped at 15 min.
func RetryDelay(n int) time.Duration {
	d := firstRetryDelay
	for i := 1; i < n; i++ {
		d *= 2
		if d >= maxRetryDelay {
			return maxRetryDelay
		}
	}
	return d
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so the stored text stays valid UTF-8.
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
