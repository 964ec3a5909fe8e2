package metrics

import (
	"fmt"
	"slices"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
)

// QueueStates are the state label values of assetscan_queue_size. Their
// sum per queue is asynq's queue size.
var QueueStates = []string{"pending", "active", "scheduled", "retry", "archived", "completed", "aggregating"}

// QueueCollector returns a collector of assetscan_queue_size{queue,state}
// and assetscan_queue_latency_seconds{queue} for the named asynq queues,
// read through insp at every scrape (a few Redis round trips per queue).
//
// A queue that does not exist yet (nothing was ever enqueued to it) is
// reported with zeros. If Redis cannot be read, the collector reports an
// error for the scrape and no queue series; Handler still serves the other
// metrics.
func QueueCollector(insp *asynq.Inspector, queues []string) prometheus.Collector {
	return &queueCollector{
		insp:   insp,
		queues: slices.Clone(queues),
		size: prometheus.NewDesc("assetscan_queue_size",
			"Tasks in an asynq queue, by queue and state (pending, active, scheduled, retry, archived, completed, aggregating).",
			[]string{"queue", "state"}, nil),
		latency: prometheus.NewDesc("assetscan_queue_latency_seconds",
			"Age of the oldest pending task of an asynq queue (0 when none is pending).",
			[]string{"queue"}, nil),
	}
}

type queueCollector struct {
	insp          *asynq.Inspector
	queues        []string
	size, latency *prometheus.Desc
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.size
	ch <- c.latency
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	// GetQueueInfo fails for a queue asynq has not seen yet, with an error
	// that cannot be told apart from outside asynq; ask which exist first.
	known, err := c.insp.Queues()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.size, fmt.Errorf("asynq queues: %w", err))
		return
	}
	for _, q := range c.queues {
		var info asynq.QueueInfo
		if slices.Contains(known, q) {
			p, err := c.insp.GetQueueInfo(q)
			if err != nil {
				ch <- prometheus.NewInvalidMetric(c.size, fmt.Errorf("asynq queue %s: %w", q, err))
				continue
			}
			info = *p
		}
		for i, n := range []int{info.Pending, info.Active, info.Scheduled, info.Retry, info.Archived, info.Completed, info.Aggregating} {
			ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(n), q, QueueStates[i])
		}
		ch <- prometheus.MustNewConstMetric(c.latency, prometheus.GaugeValue, info.Latency.Seconds(), q)
	}
}
