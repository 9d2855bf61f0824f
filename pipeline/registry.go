package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"time"
)

// Target delivers batches. Deliver returns nil when every record of the batch
// was accepted. It returns an error otherwise; wrap it with Permanent when
// retrying cannot help, and use RetryAfter to ask for a minimum delay. The
// runner owns retries: a target never retries on its own.
type Target interface {
	Deliver(ctx context.Context, b *Batch) error
	Close() error
}

// Stage transforms a batch on its way to the target: a filter drops records,
// an enrichment replaces them. A nil or empty result means nothing is left to
// deliver and the batch counts as done.
type Stage interface {
	Process(ctx context.Context, b *Batch) (*Batch, error)
}

// Handler receives the batches of a source. Handle returns nil once the batch
// is done (delivered, filtered or sent to its on-failure destination); only
// then may the source commit its offsets. It returns an error only when ctx
// was cancelled first, and then the batch is not done.
type Handler interface {
	Handle(ctx context.Context, b *Batch) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, b *Batch) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, b *Batch) error { return f(ctx, b) }

// Source reads records and hands them to a Handler in batches, at most one
// batch in flight per partition. Run returns after ctx is cancelled and the
// in-flight batches were drained (or the drain timeout passed), offsets
// committed and the source closed.
type Source interface {
	Run(ctx context.Context, h Handler) error
}

// Env is what a component gets when it is built from its config.
type Env struct {
	// Pipe is the name of the pipe the component belongs to.
	Pipe string
	// Logger logs with the pipe's attributes.
	Logger *slog.Logger
	// DrainTimeout bounds how long in-flight batches may take to finish on
	// shutdown or partition revocation.
	DrainTimeout time.Duration
	// Source is the pipe's source config, for components that reach the
	// same cluster (a Kafka on-failure destination).
	Source SourceConfig
	// Status is the pipe's live status: a source reports its state
	// (running, failed with a reason), its group and its partitions'
	// offsets into it. Nil when the component is built outside a pipe.
	Status *Status
}

// SourceConfig is the decoded config of a source kind; it builds the source.
type SourceConfig interface {
	NewSource(env Env) (Source, error)
}

// TargetConfig is the decoded config of a target kind; it builds the target.
type TargetConfig interface {
	NewTarget(env Env) (Target, error)
}

// FilterConfig is the decoded `filter:` block of a pipe; it builds the stage
// that drops the records the pipe does not want. Exactly one implementation
// is registered, with RegisterSlot.
type FilterConfig interface {
	NewStage(env Env) (Stage, error)
}

// TransformConfig is the decoded `transform:` block of a pipe; it builds the
// stage that reshapes each record. Registered with RegisterSlot.
type TransformConfig interface {
	NewStage(env Env) (Stage, error)
}

// EnrichmentConfig is the decoded config of an enrichment kind (`enrichment:
// {lambda: ...}`); it builds the stage that calls out and replaces the batch
// with the answer.
type EnrichmentConfig interface {
	NewStage(env Env) (Stage, error)
}

// Kind is one registered component kind: its YAML name, a line of
// documentation, and a constructor of its empty config.
type Kind struct {
	Name      string
	Doc       string
	NewConfig func() any
}

var (
	registryMu sync.RWMutex
	registry   = map[reflect.Type]map[string]Kind{}
)

// RegisterSource registers a source kind under its YAML name. It panics on a
// duplicate name.
func RegisterSource[C SourceConfig](name, doc string, newConfig func() C) {
	register[SourceConfig](name, doc, func() any { return newConfig() })
}

// RegisterTarget registers a target kind under its YAML name. It panics on a
// duplicate name.
func RegisterTarget[C TargetConfig](name, doc string, newConfig func() C) {
	register[TargetConfig](name, doc, func() any { return newConfig() })
}

// RegisterEnrichment registers an enrichment kind under its YAML name.
func RegisterEnrichment[C EnrichmentConfig](name, doc string, newConfig func() C) {
	register[EnrichmentConfig](name, doc, func() any { return newConfig() })
}

// RegisterSlot registers the one config type of a slot that is not keyed by
// kind (FilterConfig, TransformConfig): the slot's YAML value decodes straight
// into it.
func RegisterSlot[I any, C any](doc string, newConfig func() C) {
	register[I]("", doc, func() any { return newConfig() })
}

func register[I any](name, doc string, newConfig func() any) {
	t := reflect.TypeFor[I]()
	registryMu.Lock()
	defer registryMu.Unlock()
	kinds := registry[t]
	if kinds == nil {
		kinds = map[string]Kind{}
		registry[t] = kinds
	}
	if _, dup := kinds[name]; dup {
		panic(fmt.Sprintf("pipeline: %s kind %q registered twice", t.Name(), name))
	}
	kinds[name] = Kind{Name: name, Doc: doc, NewConfig: newConfig}
}

// Kinds lists the registered kinds of a component interface (SourceConfig,
// TargetConfig ...), sorted by name.
func Kinds(iface reflect.Type) []Kind {
	registryMu.RLock()
	defer registryMu.RUnlock()
	var out []Kind
	for _, k := range registry[iface] {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func lookupKind(iface reflect.Type, name string) (Kind, bool) {
	registryMu.RLock()
	defer registryMu.RUnlock()
	k, ok := registry[iface][name]
	return k, ok
}

func isRegistry(t reflect.Type) bool {
	registryMu.RLock()
	defer registryMu.RUnlock()
	_, ok := registry[t]
	return ok || t == reflect.TypeFor[SourceConfig]() || t == reflect.TypeFor[TargetConfig]() ||
		t == reflect.TypeFor[EnrichmentConfig]() || t == reflect.TypeFor[DestinationConfig]() || t == reflect.TypeFor[FilterConfig]() || t == reflect.TypeFor[TransformConfig]()
}

// Previewer is implemented by targets that can say what they would send for
// a batch without sending it; `pipe test` prints it. A target without it is
// shown the batch envelope.
type Previewer interface {
	Preview(b *Batch, tctx *TemplateContext) []Request
}

// Request is one call a target would make.
type Request struct {
	// Records are the indexes in the batch of the records the call carries.
	Records []int
	// Summary names the call, such as "POST https://api.example.com/orders"
	// or "SendMessageBatch orders.fifo"; it holds no secret.
	Summary string
	// Attributes are the call's parameters by name (a message group id, a
	// header), secrets left out.
	Attributes map[string]string
	// Body is what the call sends.
	Body []byte
	// Err, when set, says why the records would fail before any call (a
	// record too large, a template that does not yield an object); the
	// call is not made.
	Err string
}
