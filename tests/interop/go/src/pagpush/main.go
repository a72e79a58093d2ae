// Command pagpush pushes with client_golang's push package (Debian's
// golang-github-prometheus-client-golang-dev, built in GOPATH mode), which
// sends delimited protobuf MetricFamily messages.
//
// Usage: pagpush <gateway url> push|delete
// "push": Push (PUT) then Add (POST) of the same collectors, grouped by a
// value containing '/' (sent as @base64) and one with a space.
package main

import (
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: pagpush <gateway url> push|delete")
		os.Exit(2)
	}
	url, step := os.Args[1], os.Args[2]
	pusher := func() *push.Pusher {
		return push.New(url, "go-batch").Grouping("path", "/var/tmp").Grouping("instance", "go one")
	}
	if step == "delete" {
		if err := pusher().Delete(); err != nil {
			fail(err)
		}
		return
	}

	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "go_requests_total",
		Help: "Requests handled by the Go job.",
	}, []string{"code"})
	requests.WithLabelValues("200").Add(5)
	requests.WithLabelValues("500").Add(1)
	latency := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "go_latency_seconds",
		Help:    "Latency.",
		Buckets: []float64{0.1, 1},
	})
	for _, v := range []float64{0.05, 0.5, 5} {
		latency.Observe(v)
	}
	depth := prometheus.NewGauge(prometheus.GaugeOpts{Name: "go_queue_depth", Help: "Queue depth."})
	depth.Set(4)
	sizes := prometheus.NewSummary(prometheus.SummaryOpts{
		Name:       "go_payload_bytes",
		Help:       "Payload sizes.",
		Objectives: map[float64]float64{0.5: 0.05},
	})
	sizes.Observe(100)

	with := func(p *push.Pusher) *push.Pusher {
		return p.Collector(requests).Collector(latency).Collector(depth).Collector(sizes)
	}
	if err := with(pusher()).Push(); err != nil {
		fail(err)
	}
	if err := with(pusher()).Add(); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "push failed:", err)
	os.Exit(1)
}
