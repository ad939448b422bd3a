package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"time"
)

// benchScenarios are the scenarios in the order they run by default.
var benchScenarios = []string{"login", "sso", "refresh", "forgot", "discovery"}

// iteration is one measured unit of work of a worker; it returns how many
// operations (the throughput's unit) it completed.
type iteration func(ctx context.Context) (ops int, err error)

// prepare readies one worker (a browser with a session, a refresh token...)
// before the clock starts.
type prepare func(ctx context.Context, worker int) (iteration, error)

// scenario returns the preparation of the named scenario.
func (t *benchTarget) scenario(name string) (prepare, error) {
	switch name {
	case "login":
		return func(context.Context, int) (iteration, error) {
			return func(ctx context.Context) (int, error) {
				_, err := t.login(ctx, t.newBrowser(), t.randomAgent())
				return 1, err
			}, nil
		}, nil
	case "sso":
		return func(ctx context.Context, _ int) (iteration, error) {
			b := t.newBrowser()
			if _, err := t.login(ctx, b, t.randomAgent()); err != nil {
				return nil, fmt.Errorf("first login: %w", err)
			}
			return func(ctx context.Context) (int, error) {
				_, err := t.sso(ctx, b)
				return 1, err
			}, nil
		}, nil
	case "refresh":
		return func(ctx context.Context, _ int) (iteration, error) {
			tok, err := t.login(ctx, t.newBrowser(), t.randomAgent())
			if err != nil {
				return nil, fmt.Errorf("first login: %w", err)
			}
			current := tok.RefreshToken
			if current == "" {
				return nil, fmt.Errorf("no refresh token: the client must allow refresh (offline_access)")
			}
			return func(ctx context.Context) (int, error) {
				next, err := t.refresh(ctx, current)
				if err != nil {
					// The family may be gone: start a new one, as an
					// application would after sending the user to log in.
					if tok, lerr := t.login(ctx, t.newBrowser(), t.randomAgent()); lerr == nil {
						current = tok.RefreshToken
					}
					return 0, err
				}
				current = next.RefreshToken
				return 1, nil
			}, nil
		}, nil
	case "forgot":
		if t.opts.captchaAnswer == "" {
			return nil, &usageError{"bench: the forgot scenario needs the server's captcha.test_answer " +
				"(IDP_CAPTCHA_TEST_ANSWER in the bench's environment too, or --captcha-answer)"}
		}
		return func(context.Context, int) (iteration, error) {
			return func(ctx context.Context) (int, error) {
				return 1, t.forgot(ctx, t.newBrowser())
			}, nil
		}, nil
	case "discovery":
		return func(_ context.Context, worker int) (iteration, error) {
			discovery := strings.TrimSuffix(t.opts.url, "/") + "/.well-known/openid-configuration"
			n := worker
			return func(ctx context.Context) (int, error) {
				n++
				if n%2 == 0 {
					return 1, t.document(ctx, discovery)
				}
				return 1, t.document(ctx, t.jwksURL)
			}, nil
		}, nil
	}
	return nil, &usageError{fmt.Sprintf("bench: unknown scenario %q (known: %s)", name, strings.Join(benchScenarios, ","))}
}

// randomAgent picks one of the seeded agents.
func (t *benchTarget) randomAgent() string {
	return benchAgentEmail(t.opts.email, rand.IntN(max(t.opts.agents, 1)))
}

// benchAgentEmail is the i-th seeded agent's address: the pattern with its %d
// verb filled, or the pattern itself when it has none (a single agent).
func benchAgentEmail(pattern string, i int) string {
	if !strings.Contains(pattern, "%") {
		return pattern
	}
	return fmt.Sprintf(pattern, i)
}

// runScenario prepares every worker, then lets them all loop over their
// iteration for the duration, from a common start.
func runScenario(ctx context.Context, name string, prep prepare, workers, procs int, duration time.Duration, meter *cpuMeter) (*benchResult, error) {
	its := make([]iteration, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { its[w], errs[w] = prep(ctx, w) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("bench %s: preparing a worker: %w", name, err)
		}
	}

	tallies := make([]*workerTally, workers)
	if procs > 0 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
	}
	meter.begin()
	start := time.Now()
	deadline := start.Add(duration)
	for w := range workers {
		tallies[w] = &workerTally{latencies: make([]time.Duration, 0, 1024)}
		wg.Go(func() {
			tl := tallies[w]
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				n, err := its[w](ctx)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					tl.fail(err)
					continue
				}
				tl.ops += n
				tl.latencies = append(tl.latencies, time.Since(t0))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	meter.end()
	return mergeTallies(name, elapsed, tallies), ctx.Err()
}
