package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/caf-extranet/idp/storage"
)

// janitor purges what has expired: auth requests, codes, sessions,
// challenges, provisional passwords, tokens, old sent mails and audit rows.
// Every instance runs it; the deletes are idempotent.
type janitor struct {
	store          storage.Store
	now            func() time.Time
	log            *slog.Logger
	auditRetention time.Duration
	mailRetention  time.Duration
}

func (j *janitor) runOnce(ctx context.Context) (int64, error) {
	now := j.now()
	var auditBefore time.Time
	if j.auditRetention > 0 {
		auditBefore = now.Add(-j.auditRetention)
	}
	return j.store.PurgeExpired(ctx, now, now.Add(-j.mailRetention), auditBefore)
}

func (j *janitor) run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := j.runOnce(ctx); err != nil && ctx.Err() == nil {
			j.log.ErrorContext(ctx, "purge failed", "err", err)
		} else if n > 0 {
			j.log.InfoContext(ctx, "purged expired rows", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
