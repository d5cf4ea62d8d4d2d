package http

import "github.com/tidings/tidings"

// The transports, as Metrics names them.
const (
	TransportPoll      = "poll"
	TransportSSE       = "sse"
	TransportWebSocket = "websocket"
)

// Metrics is told of the server's deliveries, so that an operator can watch
// them. The server knows no metrics system: an implementation turns these
// calls into its own. Its methods must be quick and safe for concurrent
// use.
type Metrics interface {
	// DeliveryOpened and DeliveryClosed bracket each long poll while it is
	// held and each stream while it is open.
	DeliveryOpened(transport string)
	DeliveryClosed(transport string)

	// Delivered is called after a stream sent a batch of messages, or a
	// long poll took one as its answer.
	Delivered(transport string, messages []*tidings.Message)
}

// noMetrics counts nothing, for a Server without Metrics.
type noMetrics struct{}

func (noMetrics) DeliveryOpened(string)                {}
func (noMetrics) DeliveryClosed(string)                {}
func (noMetrics) Delivered(string, []*tidings.Message) {}

func (s *Server) metrics() Metrics {
	if s.Metrics == nil {
		return noMetrics{}
	}
	return s.Metrics
}
