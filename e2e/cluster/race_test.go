package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/caf-extranet/idp/storage/postgres/pgtest"
)

// contenders is how many goroutines race for one thing, split over the two
// instances.
const contenders = 20

// race runs fn(i) on n goroutines released at the same moment and returns
// how many returned true.
func race(n int, fn func(i int) bool) int {
	var (
		start = make(chan struct{})
		wg    sync.WaitGroup
		mu    sync.Mutex
		wins  int
	)
	for i := range n {
		wg.Go(func() {
			<-start
			if fn(i) {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	return wins
}

// codeReused is what an instance logs when a used code is presented again.
const codeReused = "authorization code reused"

// tokenCall posts a token-endpoint request through node i, authenticated as
// the confidential client, and returns the status and the JSON answer.
func (c *cluster) tokenCall(i int, secret string, form url.Values) (int, map[string]any, error) {
	return c.call(i, "/oauth/token", secret, form)
}

// call posts form to an endpoint of the provider through node i,
// authenticated as the confidential client.
func (c *cluster) call(i int, path, secret string, form url.Values) (int, map[string]any, error) {
	req, err := http.NewRequest(http.MethodPost, c.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	resp, err := (&http.Client{Transport: c.nodes[i%len(c.nodes)].transport, Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(raw, &body); err != nil {
		return resp.StatusCode, nil, fmt.Errorf("%s answered %d, not JSON: %.300s", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, body, nil
}

// loginForCode logs the browser in with a personal password (the login page
// on B, the form posted on A, which answers the code) and returns the code
// the application gets.
func (c *cluster) loginForCode(b *browser, rp *relyingParty, email, password string) string {
	b.t.Helper()
	p := b.follow(nodeB, b.get(nodeA, rp.authURL()))
	p = b.submit(nodeA, p, "/login", map[string]string{"email": email, "password": password})
	if p.status != http.StatusFound {
		b.t.Fatalf("login: status %d: %.800s", p.status, p.text())
	}
	return rp.code(p.location())
}

// TestRacesAcrossInstances: for each thing that may be used once, many
// goroutines over both instances try at the same moment; exactly one wins.
// For a code and a refresh token the others are reuses, which revoke what
// the winner obtained: nothing usable outlives the race.
func TestRacesAcrossInstances(t *testing.T) {
	t.Parallel()
	c := startCluster(t, pgtest.URL(t), 2)
	c.addAgent(agentEmail, agentPassword)
	secret := c.addClient()
	rp := c.newRP(t, secret)

	t.Run("one code exchanged twice", func(t *testing.T) {
		code := c.loginForCode(c.newBrowser(t), rp, agentEmail, agentPassword)
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
			"redirect_uri": {redirectURI}, "code_verifier": {rp.pkce}}
		reusesBefore := strings.Count(c.logs(), codeReused)
		var issued []string
		var mu sync.Mutex
		wins := race(contenders, func(i int) bool {
			status, body, err := c.tokenCall(i, secret, form)
			if err != nil {
				t.Error(err)
				return false
			}
			if status == http.StatusOK && body["access_token"] != nil {
				mu.Lock()
				issued = append(issued, body["access_token"].(string))
				mu.Unlock()
				return true
			}
			if body["error"] != "invalid_grant" {
				t.Errorf("a losing exchange answered %d %v, want invalid_grant", status, body)
			}
			return false
		})
		// One exchange consumed the code and answered with tokens; each of
		// the others was a reuse, which revokes the grant, the tokens the
		// first one was issuing at that very moment included.
		reuses := func() int { return strings.Count(c.logs(), codeReused) - reusesBefore }
		for deadline := time.Now().Add(5 * time.Second); reuses() < contenders-1 && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond) // the instances' output reaches us through pipes
		}
		if n := reuses(); n != contenders-1 {
			t.Fatalf("%d exchanges were taken for reuses, want %d: the code was consumed %d times", n, contenders-1, contenders-n)
		}
		if wins != 1 {
			t.Fatalf("%d exchanges of one code got tokens, want exactly 1", wins)
		}
		for _, at := range issued {
			status, body, err := c.call(nodeB, "/oauth/introspect", secret, url.Values{"token": {at}})
			if err != nil || status != http.StatusOK || body["active"] != false {
				t.Fatalf("the tokens of a reused code are still active: %d %v %v", status, body, err)
			}
		}
	})

	t.Run("one refresh token rotated twice", func(t *testing.T) {
		code := c.loginForCode(c.newBrowser(t), rp, agentEmail, agentPassword)
		tok, _, err := rp.on(nodeA).exchange(code)
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
		var mu sync.Mutex
		var issued []string
		wins := race(contenders, func(i int) bool {
			status, body, err := c.tokenCall(i, secret, form)
			if err != nil {
				t.Error(err)
				return false
			}
			if status == http.StatusOK && body["refresh_token"] != nil {
				mu.Lock()
				issued = append(issued, body["refresh_token"].(string))
				mu.Unlock()
				return true
			}
			if body["error"] != "invalid_grant" {
				t.Errorf("a losing refresh answered %d %v, want invalid_grant", status, body)
			}
			return false
		})
		if wins != 1 {
			t.Fatalf("%d rotations of one refresh token succeeded, want exactly 1", wins)
		}
		// The reuse revoked the family: the winner's new token is dead too.
		status, body, _ := c.tokenCall(nodeB, secret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {issued[0]}})
		if status == http.StatusOK {
			t.Fatalf("the family survived a reuse: %v", body)
		}
	})

	t.Run("one CAPTCHA answered twice", func(t *testing.T) {
		const email = "marc.petit@mairie-lyon.fr"
		c.addAgent(email, agentPassword)
		b := c.newBrowser(t)
		drawn := b.get(nodeA, "/login/forgot")
		action, form := drawn.form("/login/forgot")
		form.Set("email", email)
		form.Set("captcha", captchaAnswer)
		wins := race(contenders, func(i int) bool {
			req, _ := http.NewRequest(http.MethodPost, action, strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := b.client(i % 2).Do(req)
			if err != nil {
				t.Error(err)
				return false
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusSeeOther && strings.HasSuffix(resp.Header.Get("Location"), "/login/forgot/sent") {
				return true
			}
			// A loser sees the confirmation too once the winner recorded
			// its receipt (the same form from the same browser: a double
			// click), and before that the CAPTCHA error, or, once ten
			// losers have failed from this one address, the wrong-answer
			// throttle (429), which spends the challenge unread: either
			// way no second request is recorded (the mails, below).
			throttled := resp.StatusCode == http.StatusTooManyRequests && strings.Contains(string(raw), "Trop de tentatives")
			if !throttled && !strings.Contains(string(raw), "la vérification du texte a échoué") {
				t.Errorf("a losing answer got %d without the CAPTCHA error: %.500s", resp.StatusCode, raw)
			}
			return false
		})
		if wins < 1 {
			t.Fatalf("no answer to the CAPTCHA was accepted")
		}
		// One request recorded, whatever the confirmations, hence one mail (the per-account limit, 3 an
		// hour, would let duplicates through).
		c.waitProvisional(email, 1)
		time.Sleep(time.Second) // several poll intervals of both workers
		if n := len(c.provisionalMails(email)); n != 1 {
			t.Fatalf("%d provisional passwords mailed, want 1", n)
		}
	})

	t.Run("one provisional password used twice", func(t *testing.T) {
		const email = "lea.martin@mairie-lyon.fr"
		// Without --password the account starts with a mailed provisional one.
		c.admin("user", "add", "--email", email, "--name", "Léa Martin")
		provisional := c.waitProvisional(email, 1)

		// Each browser logs in with it, which opens a change-only session...
		browsers := make([]*browser, contenders)
		forms := make([]url.Values, contenders)
		actions := make([]string, contenders)
		for i := range browsers {
			b := c.newBrowser(t)
			p := b.get(i%2, "/login")
			p = b.submit((i+1)%2, p, "/login", map[string]string{"email": email, "password": provisional})
			if p.status != http.StatusSeeOther || p.location().Path != "/login/change" {
				t.Fatalf("provisional login %d: status %d: %.500s", i, p.status, p.text())
			}
			p = b.follow(i%2, p)
			actions[i], forms[i] = p.form("/login/change")
			forms[i].Set("current", provisional)
			forms[i].Set("new", fmt.Sprintf("gagnant%02d", i))
			forms[i].Set("confirmation", fmt.Sprintf("gagnant%02d", i))
			browsers[i] = b
		}
		// ...and all of them set a personal password at the same moment.
		var mu sync.Mutex
		winner := -1
		wins := race(contenders, func(i int) bool {
			req, _ := http.NewRequest(http.MethodPost, actions[i], strings.NewReader(forms[i].Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := browsers[i].client((i + 1) % 2).Do(req)
			if err != nil {
				t.Error(err)
				return false
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Errorf("change %d: status %d: %.500s", i, resp.StatusCode, raw)
			}
			if resp.StatusCode == http.StatusSeeOther && strings.HasSuffix(resp.Header.Get("Location"), "/espace") {
				mu.Lock()
				winner = i
				mu.Unlock()
				return true
			}
			return false
		})
		if wins != 1 {
			t.Fatalf("%d forced changes with one provisional password succeeded, want exactly 1", wins)
		}
		// Only the winner's password opens the account now.
		for i, pw := range []string{fmt.Sprintf("gagnant%02d", winner), fmt.Sprintf("gagnant%02d", (winner+1)%contenders), provisional} {
			b := c.newBrowser(t)
			p := b.submit(nodeB, b.get(nodeA, "/login"), "/login", map[string]string{"email": email, "password": pw})
			ok := p.status == http.StatusSeeOther && p.location().Path == "/espace"
			if ok != (i == 0) {
				t.Fatalf("login with password #%d after the race: status %d, location %q", i, p.status, p.header.Get("Location"))
			}
		}
	})
}
