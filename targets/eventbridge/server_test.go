package eventbridge

import (
	"testing"

	"github.com/pipe-run/pipe/internal/testenv"
)

// The PutEvents server of internal/testenv plays EventBridge.
type (
	server   = testenv.PutEvents
	putEntry = testenv.PutEntry
	event    = testenv.PutEvent
)

func newServer(t testing.TB) *server { return testenv.StartPutEvents(t) }
