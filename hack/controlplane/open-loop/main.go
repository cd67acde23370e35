// Command open-loop sends HTTP requests at a fixed rate, whether or not earlier
// ones have been answered (open loop), and prints one JSON line of what it
// measured. The benchmarks' fixed-rate latency figures come from it
// (bench/open-loop.ts runs it): a Go generator's own scheduling and GC add far
// less to a sub-millisecond tail than a Node one's event loop. The pacer, the
// attack workers and the latency estimator are vegeta's
// (github.com/tsenart/vegeta/v12/lib); this program only wires them up.
//
//	open-loop -url http://10.0.0.2:8080/ -rate 1000 -count 5000 [-connections 16]
//	          [-method POST -body review.json -header 'content-type: application/json']
//	          [-ca ca.crt] [-warmup 1s] [-timeout 10s]
//
// Bad arguments: a message on stderr, exit 2. Failed requests are not an
// error: they are counted in the JSON (failures, firstError), exit 0.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

const vegetaModule = "github.com/tsenart/vegeta/v12"

// sourceKey is set by hack/controlplane/build.sh to a hash of this module's
// sources; -version prints it so that build.sh rebuilds a stale binary.
var sourceKey = "dev"

type headerFlags []string

func (h *headerFlags) String() string     { return strings.Join(*h, ", ") }
func (h *headerFlags) Set(v string) error { *h = append(*h, v); return nil }

type config struct {
	url         *url.URL
	method      string
	rate        int
	count       uint64
	duration    time.Duration
	connections int
	body        []byte
	header      http.Header
	tls         *tls.Config
	warmup      time.Duration
	timeout     time.Duration
}

func parse(args []string) (*config, bool, error) {
	fs := flag.NewFlagSet("open-loop", flag.ContinueOnError)
	fs.SetOutput(os.Stderr)
	var (
		rawURL   = fs.String("url", "", "target URL (http or https), required")
		method   = fs.String("method", "GET", "HTTP method")
		rate     = fs.Int("rate", 0, "requests per second, > 0")
		count    = fs.Uint64("count", 0, "requests to send (this or -duration)")
		duration = fs.Duration("duration", 0, "how long to send (this or -count)")
		conns    = fs.Int("connections", 16, "keep-alive connections at most; a request finding all busy waits for one, and the wait counts")
		bodyFile = fs.String("body", "", "file whose bytes are every request's body")
		caFile   = fs.String("ca", "", "PEM file of the CA the server's certificate must chain to (https)")
		warmup   = fs.Duration("warmup", 0, "before measuring: open every connection, then send at -rate for this long; discarded")
		timeout  = fs.Duration("timeout", 10*time.Second, "per-request timeout (a timed-out request is a failure)")
		version  = fs.Bool("version", false, "print the version and exit")
		headers  headerFlags
	)
	fs.Var(&headers, "header", "'Name: value', repeatable")
	if err := fs.Parse(args); err != nil {
		return nil, false, err
	}
	if *version {
		return nil, true, nil
	}
	if fs.NArg() > 0 {
		return nil, false, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	u, err := url.Parse(*rawURL)
	switch {
	case *rawURL == "":
		return nil, false, errors.New("-url is required")
	case err != nil:
		return nil, false, fmt.Errorf("-url %q: %v", *rawURL, err)
	case (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		return nil, false, fmt.Errorf("-url %q: want http://host[:port]/path or https://...", *rawURL)
	case *rate <= 0:
		return nil, false, fmt.Errorf("-rate %d: must be > 0 requests per second", *rate)
	case (*count == 0) == (*duration <= 0):
		return nil, false, errors.New("give exactly one of -count (> 0) and -duration (> 0)")
	case *conns <= 0:
		return nil, false, fmt.Errorf("-connections %d: must be > 0", *conns)
	case *warmup < 0 || *timeout <= 0:
		return nil, false, errors.New("-warmup must be >= 0 and -timeout > 0")
	}
	c := &config{url: u, method: *method, rate: *rate, count: *count, duration: *duration, connections: *conns,
		header: http.Header{}, warmup: *warmup, timeout: *timeout, tls: &tls.Config{}}
	for _, h := range headers {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.TrimSpace(name) == "" {
			return nil, false, fmt.Errorf("-header %q: want 'Name: value'", h)
		}
		c.header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	if *bodyFile != "" {
		if c.body, err = os.ReadFile(*bodyFile); err != nil {
			return nil, false, fmt.Errorf("-body: %v", err)
		}
	}
	if *caFile != "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return nil, false, fmt.Errorf("-ca: %v", err)
		}
		c.tls.RootCAs = x509.NewCertPool()
		if !c.tls.RootCAs.AppendCertsFromPEM(pem) {
			return nil, false, fmt.Errorf("-ca %s: no PEM certificate in it", *caFile)
		}
	}
	return c, false, nil
}

// client is shared by the warm-up and the measured attack (a vegeta Attacker
// stops for good after one attack), so the measured one starts on open
// connections. HTTP/1.1 only, like the Node clients it replaces; never through
// an HTTP(S)_PROXY from the environment; redirects are not followed.
func client(c *config) *http.Client {
	return &http.Client{
		Timeout: c.timeout,
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:     c.tls,
			ForceAttemptHTTP2:   false,
			TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
			MaxIdleConnsPerHost: c.connections,
			MaxConnsPerHost:     c.connections,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// countPacer is vegeta's constant pacer, stopped after n hits (-count).
type countPacer struct {
	vegeta.ConstantPacer
	n uint64
}

func (p countPacer) Pace(elapsed time.Duration, hits uint64) (time.Duration, bool) {
	if p.n > 0 && hits >= p.n {
		return 0, true
	}
	return p.ConstantPacer.Pace(elapsed, hits)
}

// attack runs one vegeta attack; with `each`, every result is passed to it.
func attack(hc *http.Client, target vegeta.Target, pacer vegeta.Pacer, d time.Duration, each func(*vegeta.Result)) {
	a := vegeta.NewAttacker(vegeta.Client(hc))
	for r := range a.Attack(vegeta.NewStaticTargeter(target), pacer, d, "") {
		if each != nil {
			each(r)
		}
	}
}

type quantiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// ms: a duration in milliseconds, to the microsecond.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func quantilesOf(l *vegeta.LatencyMetrics) quantiles {
	return quantiles{P50: ms(l.Quantile(0.5)), P90: ms(l.Quantile(0.9)), P99: ms(l.Quantile(0.99)), P999: ms(l.Quantile(0.999)), Max: ms(l.Max)}
}

type report struct {
	Generator   string         `json:"generator"`
	URL         string         `json:"url"`
	Method      string         `json:"method"`
	Connections int            `json:"connections"`
	TargetRate  int            `json:"targetRate"`
	Requests    uint64         `json:"requests"`
	Rate        float64        `json:"achievedRate"`
	DurationS   float64        `json:"durationS"`
	Success     uint64         `json:"success"`
	Failures    uint64         `json:"failures"`
	StatusCodes map[string]int `json:"statusCodes"`
	FirstError  string         `json:"firstError,omitempty"`
	// Latency from the moment a worker took the request up (vegeta's own figure).
	LatencyMs quantiles `json:"latencyMs"`
	// How late each request left against its slot start + (seq+1)/rate, and
	// the latency counted from that slot: a generator that fell behind shows
	// here instead of vanishing from latencyMs (coordinated omission).
	SendLagMs    quantiles `json:"sendLagMs"`
	FromDueMs    quantiles `json:"fromDueMs"`
	KeptUp       bool      `json:"keptUp"`
	KeptUpReason string    `json:"keptUpReason,omitempty"`
}

// Behind the rate: vegeta's achieved rate under 99% of the target, or more
// than 1% of the requests leaving over maxLag after their slot. Up to ~1 ms
// late is normal: Go's timers wake on a 1 ms grid when the runtime is idle.
const maxLag = 5 * time.Millisecond

func run(c *config) report {
	hc := client(c)
	target := vegeta.Target{Method: c.method, URL: c.url.String(), Body: c.body, Header: c.header}
	pacer := vegeta.ConstantPacer{Freq: c.rate, Per: time.Second}
	if c.warmup > 0 {
		// Every connection at once (an unpaced burst), then the rate itself.
		attack(hc, target, countPacer{vegeta.ConstantPacer{}, uint64(c.connections)}, 0, nil)
		attack(hc, target, pacer, c.warmup, nil)
	}
	var m vegeta.Metrics
	var lag, fromDue vegeta.LatencyMetrics
	interval := time.Second / time.Duration(c.rate)
	began := time.Now()
	attack(hc, target, countPacer{pacer, c.count}, c.duration, func(r *vegeta.Result) {
		m.Add(r)
		late := max(0, r.Timestamp.Sub(began.Add(time.Duration(r.Seq+1)*interval)))
		lag.Add(late)
		fromDue.Add(late + r.Latency)
	})
	m.Close()
	hc.CloseIdleConnections()

	rep := report{
		Generator: "vegeta " + vegetaVersion(), URL: c.url.String(), Method: c.method, Connections: c.connections,
		TargetRate: c.rate, Requests: m.Requests, Rate: math.Round(m.Rate*10) / 10, DurationS: math.Round(m.Duration.Seconds()*1e3) / 1e3,
		StatusCodes: m.StatusCodes, LatencyMs: quantilesOf(&m.Latencies), SendLagMs: quantilesOf(&lag), FromDueMs: quantilesOf(&fromDue),
	}
	rep.Success = uint64(math.Round(m.Success * float64(m.Requests)))
	rep.Failures = m.Requests - rep.Success
	if len(m.Errors) > 0 {
		rep.FirstError = m.Errors[0]
	} else if rep.Failures > 0 {
		codes := make([]string, 0, len(m.StatusCodes))
		for code := range m.StatusCodes {
			codes = append(codes, code)
		}
		sort.Strings(codes)
		rep.FirstError = "status codes " + strings.Join(codes, ",")
	}
	switch {
	case m.Requests == 0:
		rep.KeptUpReason = "no request was sent"
	case m.Requests > 1 && m.Rate < 0.99*float64(c.rate):
		rep.KeptUpReason = fmt.Sprintf("sent %.1f/s of %d/s", m.Rate, c.rate)
	case lag.Quantile(0.99) > maxLag:
		rep.KeptUpReason = fmt.Sprintf("1%% of the requests left %.3f ms or more after their slot (over %s)", ms(lag.Quantile(0.99)), maxLag)
	default:
		rep.KeptUp = true
	}
	return rep
}

func vegetaVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == vegetaModule {
				return d.Version
			}
		}
	}
	return "(unknown)"
}

func main() {
	c, version, err := parse(os.Args[1:])
	if version {
		fmt.Printf("open-loop %s vegeta %s\n", sourceKey, vegetaVersion())
		return
	}
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "open-loop: %v\n", err)
		os.Exit(2)
	}
	if err := json.NewEncoder(os.Stdout).Encode(run(c)); err != nil {
		fmt.Fprintf(os.Stderr, "open-loop: %v\n", err)
		os.Exit(1)
	}
}
