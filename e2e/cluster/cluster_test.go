package cluster

import (
	"context"
	"net"
	"net/http"
	"net/mail"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caf-extranet/idp/e2e/harness"
)

// The fixtures every test of the package uses.
const (
	// captchaAnswer is IDP_CAPTCHA_TEST_ANSWER: every CAPTCHA accepts it, so
	// a test can answer a challenge drawn by any instance.
	captchaAnswer = "Kx7Rm"
	agentEmail    = "claire.dupont@mairie-lyon.fr"
	agentPassword = "perso2024"
	clientID      = "portail-rh"
	// redirectURI: nobody listens there; the browser stops at the redirect
	// and hands the URL to the relying party, as a real one would receive it.
	redirectURI = "http://127.0.0.1:9/callback"
)

// node is one `idp serve` process of the cluster.
type node struct {
	name string
	addr string   // where it listens
	env  []string // its IDP_* environment
	srv  *harness.Server
	// transport sends every request to this node whatever the URL's host:
	// the test's load balancer.
	transport *http.Transport
}

// cluster is several instances behind one public issuer. The issuer is the
// first node's address; requests for it are routed by the test to the node
// it chooses, as a load balancer would.
type cluster struct {
	t      *testing.T
	issuer string
	dbURL  string
	nodes  []*node
}

// commonEnv is what every instance of a cluster shares: the database, the
// public issuer, the test CAPTCHA answer, short worker intervals, and keys
// that sign as soon as they are published.
func commonEnv(dbURL, issuer string) []string {
	return []string{
		"IDP_DATABASE_URL=" + dbURL,
		"IDP_ISSUER=" + issuer,
		"IDP_CAPTCHA_TEST_ANSWER=" + captchaAnswer,
		"IDP_MAIL_POLL_INTERVAL=100ms",
		"IDP_RECOVERY_POLL_INTERVAL=100ms",
		"IDP_KEYS_PUBLISH_AHEAD=0s",
		"IDP_LOG_LEVEL=info",
	}
}

// startCluster runs n instances on dbURL, one after the other, each ready
// before the function returns. extra IDP_* variables go to every instance.
func startCluster(t *testing.T, dbURL string, n int, extra ...string) *cluster {
	t.Helper()
	issuerAddr := harness.FreeAddr(t)
	c := &cluster{t: t, issuer: "http://" + issuerAddr, dbURL: dbURL}
	for i := range n {
		addr := issuerAddr
		if i > 0 {
			addr = harness.FreeAddr(t)
		}
		vars := append(commonEnv(dbURL, c.issuer), "IDP_LISTEN="+addr)
		env := harness.Env(t, append(vars, extra...)...)
		// harness.Start waits for the issuer's /readyz, which is the first
		// node's; each node's own readiness is awaited below.
		srv := harness.Start(t, env)
		nd := &node{name: string(rune('A' + i)), addr: addr, env: env, srv: srv, transport: newTransport(addr)}
		waitReady(t, nd, 30*time.Second, srv.Logs)
		c.nodes = append(c.nodes, nd)
	}
	return c
}

// newTransport dials addr for every request.
func newTransport(addr string) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}
}

// waitReady polls the node's own /readyz until it answers 200.
func waitReady(t *testing.T, nd *node, within time.Duration, logs func() string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if readyStatus(nd) == http.StatusOK {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("instance %s (%s) not ready after %s:\n%s", nd.name, nd.addr, within, logs())
}

// readyStatus is the status of the node's /readyz, 0 when it does not answer.
func readyStatus(nd *node) int {
	client := &http.Client{Transport: nd.transport, Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + nd.addr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// admin runs an administrative command against the cluster's database.
func (c *cluster) admin(args ...string) string {
	c.t.Helper()
	return harness.Admin(c.t, c.nodes[0].env, args...)
}

// addAgent creates an active agent with a personal password.
func (c *cluster) addAgent(email, password string) {
	c.t.Helper()
	c.admin("user", "add", "--email", email, "--name", "Claire Dupont", "--organisation", "Mairie de Lyon", "--password", password)
}

// addClient registers the confidential relying application and returns its
// secret.
func (c *cluster) addClient() string {
	c.t.Helper()
	out := c.admin("client", "add", "--id", clientID, "--name", "Portail RH", "--redirect-uri", redirectURI)
	return harness.ClientSecret(c.t, out)
}

// logs is every instance's output, for failure messages.
func (c *cluster) logs() string {
	var sb strings.Builder
	for _, nd := range c.nodes {
		if nd.srv != nil {
			sb.WriteString("--- instance " + nd.name + "\n" + nd.srv.Logs())
		}
	}
	return sb.String()
}

// switchTransport routes each request to the node chosen last with use: a
// relying party's HTTP client behind the test's load balancer.
type switchTransport struct {
	c  *cluster
	to atomic.Int32
}

func (s *switchTransport) use(i int) { s.to.Store(int32(i)) }

func (s *switchTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return s.c.nodes[s.to.Load()].transport.RoundTrip(r)
}

// provisionalLine is the provisional password, alone on its line in the
// text part of the mail (12 characters by default).
var provisionalLine = regexp.MustCompile(`(?m)^\s*([A-Za-z2-9]{12})\s*$`)

// provisionalMails returns the provisional passwords mailed to email by any
// instance (each writes .eml files in its own data directory), oldest first.
func (c *cluster) provisionalMails(email string) []string {
	c.t.Helper()
	type found struct {
		at       time.Time
		password string
	}
	var all []found
	for _, nd := range c.nodes {
		if nd.srv == nil {
			continue
		}
		dir := filepath.Join(nd.srv.DataDir, "mail")
		entries, err := os.ReadDir(dir)
		if err != nil && !os.IsNotExist(err) {
			c.t.Fatal(err)
		}
		for _, en := range entries {
			if !strings.HasSuffix(en.Name(), ".eml") {
				continue
			}
			raw, err := os.ReadFile(filepath.Join(dir, en.Name()))
			if err != nil {
				c.t.Fatal(err)
			}
			m, err := mail.ReadMessage(strings.NewReader(string(raw)))
			if err != nil {
				c.t.Fatalf("%s: %v", en.Name(), err)
			}
			if !strings.Contains(m.Header.Get("To"), email) {
				continue
			}
			// Undo quoted-printable soft breaks, enough to read an ASCII line.
			text := strings.ReplaceAll(strings.ReplaceAll(string(raw), "=\r\n", ""), "\r\n", "\n")
			if mm := provisionalLine.FindStringSubmatch(text); mm != nil {
				at, _ := m.Header.Date()
				all = append(all, found{at, mm[1]})
			}
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
	out := make([]string, len(all))
	for i, f := range all {
		out[i] = f.password
	}
	return out
}

// waitProvisional waits until n provisional passwords were mailed to email
// and returns the last one.
func (c *cluster) waitProvisional(email string, n int) string {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if got := c.provisionalMails(email); len(got) >= n {
			return got[len(got)-1]
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("no provisional password mailed to %s after 20s (%d mails)\n%s", email, len(c.provisionalMails(email)), c.logs())
	return ""
}
