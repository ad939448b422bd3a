package loginui

import (
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/caf-extranet/idp/account"
)

func (a *fakeAccounts) recoveryCalls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.recoveries)
}

func challengeID(t *testing.T, p *page) string {
	t.Helper()
	return attr(p.input(t, "challenge"), "value")
}

// wantCaptchaFailed checks a refused answer: the document's message next to
// the field, the address kept, nothing recorded, a fresh challenge drawn.
func wantCaptchaFailed(t *testing.T, e *env, p *page, email, previousChallenge string) {
	t.Helper()
	wantStatus(t, p, http.StatusOK)
	if got := p.fieldErrors(t, "captcha"); !slices.Equal(got, []string{"la vérification du texte a échoué"}) {
		t.Errorf("captcha errors %q", got)
	}
	if got := attr(p.input(t, "email"), "value"); got != email {
		t.Errorf("e-mail not kept: %q", got)
	}
	if got := e.accounts.recoveryCalls(); len(got) != 0 {
		t.Errorf("RequestRecovery called: %q", got)
	}
	if fresh := challengeID(t, p); fresh == "" || fresh == previousChallenge {
		t.Errorf("no fresh challenge: %q after %q", fresh, previousChallenge)
	}
	if len(findAll(p.doc, "img")) != 1 {
		t.Error("no new image")
	}
}

func TestForgotRightAnswerRecordsRecoveryAndRedirects(t *testing.T) {
	e := newEnv(t)
	id := e.addAuthRequest(nil)
	b := e.browser()
	p := b.get("/login/forgot?authRequestID=" + id)
	wantStatus(t, p, http.StatusOK)
	res := b.submit(p, "/login/forgot", url.Values{"email": {" " + agentEmail + " "}, "captcha": {testAnswer}})
	wantRedirect(t, res, "/login/forgot/sent?authRequestID="+id)
	if got := e.accounts.recoveryCalls(); !slices.Equal(got, []string{agentEmail}) {
		t.Fatalf("RequestRecovery calls %q", got)
	}
	sent := b.get(res.resp.Header.Get("Location"))
	wantStatus(t, sent, http.StatusOK)
	wantContains(t, sent, "Si cette adresse correspond à un compte, un e-mail contenant un mot de passe provisoire vient de vous être envoyé.")
	back := findAll(sent.doc, "a")
	if !slices.ContainsFunc(back, func(a *html.Node) bool { return attr(a, "href") == "/login?authRequestID="+id }) {
		t.Error("no link back to the login page of the same auth request")
	}
}

func TestForgotWorksWithoutAuthRequest(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.get("/login/forgot")
	res := b.submit(p, "/login/forgot", url.Values{"email": {agentEmail}, "captcha": {testAnswer}})
	wantRedirect(t, res, "/login/forgot/sent")
	if len(e.accounts.recoveryCalls()) != 1 {
		t.Fatal("RequestRecovery not called")
	}
}

func TestForgotWrongAnswers(t *testing.T) {
	cases := map[string]func(url.Values){
		"wrong":                func(v url.Values) { v.Set("captcha", "XyZtR") },
		"case differs":         func(v url.Values) { v.Set("captcha", strings.ToLower(testAnswer)) },
		"all capitals":         func(v url.Values) { v.Set("captcha", strings.ToUpper(testAnswer)) },
		"space between":        func(v url.Values) { v.Set("captcha", testAnswer[:3]+" "+testAnswer[3:]) },
		"surrounding spaces":   func(v url.Values) { v.Set("captcha", " "+testAnswer+" ") },
		"empty":                func(v url.Values) { v.Set("captcha", "") },
		"missing challenge":    func(v url.Values) { v.Del("challenge") },
		"unknown challenge":    func(v url.Values) { v.Set("challenge", "0123456789abcdef0123456789abcdef") },
		"over-long answer":     func(v url.Values) { v.Set("captcha", strings.Repeat(testAnswer, 100)) },
		"invalid UTF-8 answer": func(v url.Values) { v.Set("captcha", "AbC\xffdE") },
	}
	e := newEnv(t)
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			// Past any wrong-answer delay: each case is one first try
			// (the throttle has its own test).
			e.clock.Advance(time.Hour)
			b := e.browser()
			p := b.get("/login/forgot")
			before := challengeID(t, p)
			values := url.Values{"csrf": {b.cookie("idp_csrf")}, "email": {agentEmail}, "captcha": {testAnswer}, "challenge": {before}, "kind": {"image"}}
			mutate(values)
			res := b.post("/login/forgot", values)
			wantCaptchaFailed(t, e, res, agentEmail, before)
			// The challenge was spent by the wrong answer: the right one
			// no longer passes with it.
			values.Set("captcha", testAnswer)
			if values.Get("challenge") == before {
				e.clock.Advance(time.Hour) // past the wrong-answer delay
				again := b.post("/login/forgot", values)
				wantCaptchaFailed(t, e, again, agentEmail, before)
			}
		})
	}
}

// TestForgotReplayedChallengeFails: a challenge is spent by its first
// submission. Posted again by the browser that solved it, with the same
// address and answer, moments later, the form gets the same confirmation
// (TestForgotDoubleClickShowsTheConfirmation); from another browser, with
// another address or answer, or once resubmitWindow is over, it is a wrong
// answer, and nothing more is queued.
func TestForgotReplayedChallengeFails(t *testing.T) {
	e := newEnv(t)
	b, other := e.browser(), e.browser()
	p := b.get("/login/forgot")
	other.get("/login/forgot")
	values := url.Values{"csrf": {b.cookie("idp_csrf")}, "email": {agentEmail}, "captcha": {testAnswer}, "challenge": {challengeID(t, p)}}
	wantRedirect(t, b.post("/login/forgot", values), "/login/forgot/sent")
	with := func(field, value string) url.Values {
		v := maps.Clone(values)
		v.Set(field, value)
		return v
	}
	for _, c := range []struct {
		name   string
		b      *browser
		values url.Values
		later  time.Duration
	}{
		{"from another browser", other, with("csrf", other.cookie("idp_csrf")), 0},
		{"with another address", b, with("email", "autre@caf.example"), 0},
		{"with another answer", b, with("captcha", testAnswer+"x"), 0},
		{"once the window is over", b, values, resubmitWindow},
	} {
		e.clock.Advance(c.later)
		res := c.b.post("/login/forgot", c.values)
		if res.doc == nil {
			t.Errorf("replay %s accepted: %d to %q", c.name, res.resp.StatusCode, res.resp.Header.Get("Location"))
		} else if got := res.fieldErrors(t, "captcha"); !slices.Equal(got, []string{"la vérification du texte a échoué"}) {
			t.Errorf("replay %s: %d %q, want a wrong answer", c.name, res.resp.StatusCode, got)
		}
	}
	if got := e.accounts.recoveryCalls(); len(got) != 1 {
		t.Fatalf("RequestRecovery calls %q", got)
	}
}

// TestForgotDoubleClickShowsTheConfirmation: a double click on « Valider »
// posts the same form twice, and the browser shows the answer to the
// second. The first was accepted (a provisional password is on its way);
// the second, and a third, get the same 303 to the confirmation, not « la
// vérification du texte a échoué » with a new image (solved again, it
// would replace the first password, whose mail may be delivered already).
// Nothing more is queued and no wrong answer is counted.
func TestForgotDoubleClickShowsTheConfirmation(t *testing.T) {
	e := newEnv(t)
	id := e.addAuthRequest(nil)
	b := e.browser()
	p := b.get("/login/forgot?authRequestID=" + id)
	values := url.Values{"email": {agentEmail}, "captcha": {testAnswer}}
	wantRedirect(t, b.submit(p, "/login/forgot", values), "/login/forgot/sent?authRequestID="+id)
	for _, click := range []string{"second", "third"} {
		e.clock.Advance(resubmitWindow / 3)
		res := b.submit(p, "/login/forgot", values) // the same form
		if res.resp.StatusCode != http.StatusSeeOther {
			var errs []string
			if res.doc != nil {
				errs = res.summary()
			}
			t.Fatalf("%s click: %d %q, want the same 303 to the confirmation", click, res.resp.StatusCode, errs)
		}
		wantRedirect(t, res, "/login/forgot/sent?authRequestID="+id)
	}
	if got := e.accounts.recoveryCalls(); len(got) != 1 {
		t.Errorf("recoveries %q, want one", got)
	}
	th, err := e.store.GetThrottle(t.Context(), "captcha:wrong:"+account.ClientKey("127.0.0.1"))
	if err != nil || th.Failures != 0 {
		t.Errorf("wrong answers counted: %+v, %v", th, err)
	}
}

func TestForgotExpiredChallengeFails(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.get("/login/forgot")
	before := challengeID(t, p)
	e.clock.Advance(10*time.Minute + time.Second)
	res := b.submit(p, "/login/forgot", url.Values{"email": {agentEmail}, "captcha": {testAnswer}})
	wantCaptchaFailed(t, e, res, agentEmail, before)
}

func TestForgotChallengeBoundToItsBrowser(t *testing.T) {
	e := newEnv(t)
	victim, attacker := e.browser(), e.browser()
	p := victim.get("/login/forgot")
	attacker.get("/login/forgot")
	res := attacker.post("/login/forgot", url.Values{
		"csrf": {attacker.cookie("idp_csrf")}, "email": {agentEmail}, "captcha": {testAnswer}, "challenge": {challengeID(t, p)},
	})
	wantCaptchaFailed(t, e, res, agentEmail, challengeID(t, p))
}

func TestForgotChecksCaptchaBeforeTheAddress(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.get("/login/forgot")
	res := b.submit(p, "/login/forgot", url.Values{"email": {""}, "captcha": {"faux"}})
	if got := res.fieldErrors(t, "email"); len(got) != 0 {
		t.Errorf("the address was judged before the CAPTCHA: %q", got)
	}
	wantCaptchaFailed(t, e, res, "", challengeID(t, p))

	res = b.submit(res, "/login/forgot", url.Values{"email": {"pas-une-adresse"}, "captcha": {testAnswer}})
	if got := res.fieldErrors(t, "email"); len(got) != 1 || !strings.Contains(got[0], "adresse e-mail valide") {
		t.Errorf("e-mail errors %q", got)
	}
	if len(e.accounts.recoveryCalls()) != 0 || !res.hasInput("challenge") {
		t.Error("recorded, or no fresh challenge")
	}
}

// The answer to « Mot de passe oublié ? » must not tell whether the address
// has an account: same status, headers and body.
func TestForgotAnswerIdenticalWhateverTheAddress(t *testing.T) {
	e := newEnv(t)
	id := e.addAuthRequest(nil)
	b := e.browser()
	var posts, sents []*page
	for _, email := range []string{agentEmail, "personne@inconnu.example"} {
		p := b.get("/login/forgot?authRequestID=" + id)
		res := b.submit(p, "/login/forgot", url.Values{"email": {email}, "captcha": {testAnswer}})
		posts = append(posts, res)
		sents = append(sents, b.get(res.resp.Header.Get("Location")))
	}
	for _, pair := range [][]*page{posts, sents} {
		a, c := pair[0], pair[1]
		if a.resp.StatusCode != c.resp.StatusCode || a.body != c.body {
			t.Errorf("answers differ: %d vs %d\n%s\n---\n%s", a.resp.StatusCode, c.resp.StatusCode, a.body, c.body)
		}
		ha, hc := a.resp.Header.Clone(), c.resp.Header.Clone()
		ha.Del("Date")
		hc.Del("Date")
		if !headersEqual(ha, hc) {
			t.Errorf("headers differ:\n%v\n%v", ha, hc)
		}
	}
	if got := e.accounts.recoveryCalls(); len(got) != 2 {
		t.Fatalf("RequestRecovery calls %q", got)
	}
}

func headersEqual(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestForgotNewImageKeepsAddressAndSpendsOldChallenge(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.get("/login/forgot")
	old := challengeID(t, p)
	res := b.submit(p, "/login/forgot", url.Values{"email": {agentEmail}, "refresh": {"Nouvelle image"}})
	wantStatus(t, res, http.StatusOK)
	if len(res.summary()) != 0 {
		t.Errorf("errors after « Nouvelle image »: %v", res.summary())
	}
	if attr(res.input(t, "email"), "value") != agentEmail || challengeID(t, res) == old {
		t.Fatal("address lost or same challenge")
	}
	replay := b.post("/login/forgot", url.Values{"csrf": {b.cookie("idp_csrf")}, "email": {agentEmail}, "captcha": {testAnswer}, "challenge": {old}})
	wantCaptchaFailed(t, e, replay, agentEmail, old)
}

var questionPattern = regexp.MustCompile(`^Combien font (.+) plus (.+) \? Répondez en chiffres\.$`)

// The non-visual alternative, with the real random question (no test
// answer): the question is read, computed and answered in the same field.
func TestForgotQuestionAlternative(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CaptchaTestAnswer = "" })
	b := e.browser()
	p := b.get("/login/forgot")
	q := b.submit(p, "/login/forgot", url.Values{"email": {agentEmail}, "question": {"x"}})
	wantStatus(t, q, http.StatusOK)
	if len(findAll(q.doc, "img")) != 0 || attr(q.input(t, "kind"), "value") != "question" {
		t.Fatal("question mode still shows an image")
	}

	// A wrong answer is refused, and another question is asked.
	wrong := b.submit(q, "/login/forgot", url.Values{"email": {agentEmail}, "captcha": {"999"}})
	if got := wrong.fieldErrors(t, "captcha"); !slices.Equal(got, []string{"la vérification du texte a échoué"}) {
		t.Fatalf("wrong answer: %q", got)
	}
	if attr(wrong.input(t, "kind"), "value") != "question" {
		t.Error("the failure went back to the image")
	}

	answer := solveQuestion(t, wrong)
	res := b.submit(wrong, "/login/forgot", url.Values{"email": {agentEmail}, "captcha": {answer}})
	wantRedirect(t, res, "/login/forgot/sent")
	if len(e.accounts.recoveryCalls()) != 1 {
		t.Fatal("RequestRecovery not called")
	}
}

// TestQuestionModeDoesNotTalkOfAMissingImage: once the agent asked for the
// question, the form has no image, and must not say « Image illisible ?
// Autres possibilités » above the question: a screen-reader user, for whom
// this alternative exists, would hear of an image that is not there. The
// image form keeps it, a way to the alternatives.
func TestQuestionModeDoesNotTalkOfAMissingImage(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CaptchaTestAnswer = "" })
	b := e.browser()
	p := b.get("/login/forgot")
	wantContains(t, p, "Image illisible ? Autres possibilités")
	q := b.submit(p, "/login/forgot", url.Values{"email": {agentEmail}, "question": {"1"}})
	wantStatus(t, q, http.StatusOK)
	if len(findAll(q.doc, "img")) != 0 || !strings.Contains(q.text(), "Combien font") {
		t.Fatal("not the question form")
	}
	if strings.Contains(q.text(), "Image illisible ?") {
		t.Fatalf("the question form, which has no image, says « Image illisible ? »: %.400s", q.text())
	}
}

// TestQuestionFormLegendSpeaksOfNoImage: the fieldset around « Autre
// question » and « Afficher une image à la place » has a legend of its own
// in the question form; « Vous ne pouvez pas lire l'image ? » would tell a
// screen-reader user, who chose the question, of an image that is not there.
func TestQuestionFormLegendSpeaksOfNoImage(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CaptchaTestAnswer = "" })
	b := e.browser()
	q := b.submit(b.get("/login/forgot"), "/login/forgot", url.Values{"email": {agentEmail}, "question": {"1"}})
	wantStatus(t, q, http.StatusOK)
	if len(findAll(q.doc, "img")) != 0 {
		t.Fatal("not the question form")
	}
	legends := findAll(q.doc, "legend")
	if len(legends) == 0 {
		t.Fatal("the question form's options have no legend")
	}
	for _, l := range legends {
		if strings.Contains(text(l), "image") {
			t.Errorf("question form's legend %q speaks of an image", text(l))
		}
	}
}

// solveQuestion reads the label of the answer field and computes it.
func solveQuestion(t *testing.T, p *page) string {
	t.Helper()
	var label string
	for _, l := range findAll(p.doc, "label") {
		if attr(l, "for") == "captcha" {
			label = text(l)
		}
	}
	m := questionPattern.FindStringSubmatch(label)
	if m == nil {
		t.Fatalf("label %q is not a question", label)
	}
	words := map[string]int{}
	c := catalogFR()
	for n := 1; n <= questionMaxOperand; n++ {
		words[c.text["number."+strconv.Itoa(n)]] = n
	}
	a, okA := words[m[1]]
	b, okB := words[m[2]]
	if !okA || !okB {
		t.Fatalf("unknown number words in %q", label)
	}
	return strconv.Itoa(a + b)
}

// TestForgotQuestionAnswersHaveTheirOwnQuota: a program answers the
// question alternative as easily as an agent, so the requests answered by a
// question are counted per client address: past maxQuestionRecoveriesPerWindow
// in the hour the form says « Trop de tentatives » (429), the address kept,
// and nothing is recorded. A question's challenge posted as an image's still
// counts; the image path of the same address is not held by it; the quota
// comes back after the hour.
func TestForgotQuestionAnswersHaveTheirOwnQuota(t *testing.T) {
	e := newEnv(t) // the test answer answers the questions too
	b := e.browser()
	answerQuestion := func(extra url.Values) *page {
		t.Helper()
		q := b.submit(b.get("/login/forgot"), "/login/forgot", url.Values{"email": {agentEmail}, "question": {"1"}})
		wantStatus(t, q, http.StatusOK)
		values := url.Values{"email": {agentEmail}, "captcha": {testAnswer}}
		for k, v := range extra {
			values[k] = v
		}
		return b.submit(q, "/login/forgot", values)
	}
	for range maxQuestionRecoveriesPerWindow {
		wantRedirect(t, answerQuestion(nil), "/login/forgot/sent")
	}
	for name, extra := range map[string]url.Values{"question": nil, "question posted as an image": {"kind": {"image"}}} {
		p := answerQuestion(extra)
		wantStatus(t, p, http.StatusTooManyRequests)
		wantContains(t, p, "Trop de tentatives. Veuillez réessayer dans quelques minutes.")
		if got := attr(p.input(t, "email"), "value"); got != agentEmail {
			t.Errorf("%s: address not kept: %q", name, got)
		}
	}
	if n := len(e.accounts.recoveryCalls()); n != maxQuestionRecoveriesPerWindow {
		t.Fatalf("%d requests recorded from question answers, want %d", n, maxQuestionRecoveriesPerWindow)
	}

	p := b.submit(b.get("/login/forgot"), "/login/forgot", url.Values{"email": {agentEmail}, "captcha": {testAnswer}})
	wantRedirect(t, p, "/login/forgot/sent")

	e.clock.Advance(questionWindow)
	wantRedirect(t, answerQuestion(nil), "/login/forgot/sent")
}

func TestForgotTestAnswerIsHonouredOnlyWhenSet(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.CaptchaTestAnswer = "" })
	b := e.browser()
	p := b.get("/login/forgot")
	res := b.submit(p, "/login/forgot", url.Values{"email": {agentEmail}, "captcha": {testAnswer}})
	wantCaptchaFailed(t, e, res, agentEmail, challengeID(t, p))
}

func TestForgotThrottlesChallengesPerAddress(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	for i := 0; i < maxChallengesPerWindow; i++ {
		wantStatus(t, b.get("/login/forgot"), http.StatusOK)
	}
	p := b.get("/login/forgot")
	wantStatus(t, p, http.StatusTooManyRequests)
	wantContains(t, p, "Trop de tentatives. Veuillez réessayer dans quelques minutes.")
	if p.hasInput("challenge") || len(findAll(p.doc, "img")) != 0 {
		t.Fatal("a challenge was drawn beyond the throttle")
	}
	// The window ends.
	e.clock.Advance(captchaWindow + time.Second)
	wantStatus(t, b.get("/login/forgot"), http.StatusOK)
}

// Wrong answers: free ones, then growing delays (1 s, 2 s, ...), per client
// address, even for the right answer.
func TestForgotThrottlesWrongAnswers(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.get("/login/forgot")
	p = useFreeWrongAnswers(t, b, p)
	p = b.submit(p, "/login/forgot", url.Values{"email": {agentEmail}, "captcha": {testAnswer}})
	wantStatus(t, p, http.StatusTooManyRequests)
	wantContains(t, p, "Trop de tentatives. Veuillez réessayer dans quelques minutes.")
	if p.hasInput("challenge") {
		t.Fatal("a challenge was drawn beyond the throttle")
	}
	if attr(p.input(t, "email"), "value") != agentEmail {
		t.Error("address lost")
	}
	if n := len(e.accounts.recoveries); n != 0 {
		t.Fatalf("%d recovery requests recorded while throttled", n)
	}
	// After the delay, one more try; a new wrong answer doubles the wait.
	e.clock.Advance(1100 * time.Millisecond)
	p = b.get("/login/forgot")
	p = b.submit(p, "/login/forgot", url.Values{"email": {agentEmail}, "captcha": {"faux"}})
	wantStatus(t, p, http.StatusOK)
	e.clock.Advance(1100 * time.Millisecond)
	p = b.submit(p, "/login/forgot", url.Values{"email": {agentEmail}, "captcha": {testAnswer}})
	wantStatus(t, p, http.StatusTooManyRequests)
	e.clock.Advance(time.Second)
	p = b.get("/login/forgot")
	p = b.submit(p, "/login/forgot", url.Values{"email": {agentEmail}, "captcha": {testAnswer}})
	wantRedirect(t, p, "/login/forgot/sent")
}

// TestForgotCountsAnIPv6NetworkAsOneAddress: a client changing the low 64
// bits of its IPv6 address at each request (it holds the whole /64) meets
// the CAPTCHA throttles as one address, drawing, answering wrong and
// answering questions alike.
func TestForgotCountsAnIPv6NetworkAsOneAddress(t *testing.T) {
	var n atomic.Int64
	rotating := func(*http.Request) string { return fmt.Sprintf("2001:db8:1:2::%x", n.Add(1)) }

	e := newEnvBehind(t, rotating)
	b := e.browser()
	for i := 0; i < maxChallengesPerWindow; i++ {
		wantStatus(t, b.get("/login/forgot"), http.StatusOK)
	}
	wantStatus(t, b.get("/login/forgot"), http.StatusTooManyRequests)

	e = newEnvBehind(t, rotating)
	b = e.browser()
	p := b.get("/login/forgot")
	p = useFreeWrongAnswers(t, b, p)
	p = b.submit(p, "/login/forgot", url.Values{"email": {agentEmail}, "captcha": {testAnswer}})
	wantStatus(t, p, http.StatusTooManyRequests)
	if n := len(e.accounts.recoveryCalls()); n != 0 {
		t.Fatalf("%d recovery requests recorded while throttled", n)
	}

	e = newEnvBehind(t, rotating)
	b = e.browser()
	for range maxQuestionRecoveriesPerWindow + 1 {
		q := b.submit(b.get("/login/forgot"), "/login/forgot", url.Values{"email": {agentEmail}, "question": {"1"}})
		p = b.submit(q, "/login/forgot", url.Values{"email": {agentEmail}, "captcha": {testAnswer}})
	}
	wantStatus(t, p, http.StatusTooManyRequests)
	if n := len(e.accounts.recoveryCalls()); n != maxQuestionRecoveriesPerWindow {
		t.Fatalf("%d question-answered requests recorded from one /64, want %d", n, maxQuestionRecoveriesPerWindow)
	}
}

// The answer refused by the throttle spent its challenge all the same: once
// the delay is over, the same challenge with the right answer is wrong.
func TestForgotThrottledAnswerSpendsItsChallenge(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.get("/login/forgot")
	p = useFreeWrongAnswers(t, b, p)
	wantStatus(t, b.submit(p, "/login/forgot", url.Values{"email": {agentEmail}, "captcha": {testAnswer}}), http.StatusTooManyRequests)
	e.clock.Advance(1100 * time.Millisecond)
	again := b.submit(p, "/login/forgot", url.Values{"email": {agentEmail}, "captcha": {testAnswer}})
	wantStatus(t, again, http.StatusOK)
	if got := again.fieldErrors(t, "captcha"); !slices.Equal(got, []string{"la vérification du texte a échoué"}) {
		t.Fatalf("the throttled try's challenge, posted again: captcha errors %q, want it refused", got)
	}
	if n := len(e.accounts.recoveries); n != 0 {
		t.Fatalf("%d recovery requests recorded, want none", n)
	}
}

// A refused CSRF check spends nothing: the challenge still works after.
func TestForgotCSRFFailureSpendsNothing(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.get("/login/forgot")
	res := b.post("/login/forgot", url.Values{"csrf": {"faux"}, "email": {agentEmail}, "captcha": {testAnswer}, "challenge": {challengeID(t, p)}})
	wantStatus(t, res, http.StatusForbidden)
	wantRedirect(t, b.submit(p, "/login/forgot", url.Values{"email": {agentEmail}, "captcha": {testAnswer}}), "/login/forgot/sent")
}

// useFreeWrongAnswers submits the forgot form from p with a wrong CAPTCHA
// answer as many times as the free wrong answers allow, each answered with
// the form again, and returns the last page.
func useFreeWrongAnswers(t *testing.T, b *browser, p *page) *page {
	t.Helper()
	for range freeWrongAnswers {
		p = b.submit(p, "/login/forgot", url.Values{"email": {agentEmail}, "captcha": {"faux"}})
		wantStatus(t, p, http.StatusOK)
	}
	return p
}
