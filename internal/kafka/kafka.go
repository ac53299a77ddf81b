// Package kafka holds onair's topic names, an embedded single-broker Kafka
// (kfake) for `make run` and tests, and small client helpers.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topic names. Records of TopicEvents are keyed by user id, TopicPushes by
// room id, so that one consumer owns a user (or a room) at a time.
const (
	TopicEvents  = "events"
	TopicPushes  = "pushes"
	TopicCatalog = "catalog"
)

// DefaultPartitions is the partition count of topics created without one.
const DefaultPartitions = 8

// EmbeddedConfig configures StartEmbedded.
type EmbeddedConfig struct {
	// Addr is the broker's listen address, e.g. "127.0.0.1:19092". A port of
	// 0 (or "" for the whole address) picks a free port on 127.0.0.1.
	Addr string
	// DataDir persists topics, records and committed offsets there, and
	// reloads them on start. "" keeps everything in memory.
	DataDir string
	// Partitions is the partition count of the seeded topics. 0 means 8.
	Partitions int
	// Topics are created on the first start. nil means events, pushes and
	// catalog; an empty non-nil slice creates none.
	Topics []string
	// SyncWrites fsyncs every produced batch: survives power loss, at a large
	// cost in throughput. Without it a batch is durable once the OS flushes
	// it, or at Close (like Kafka's defaults).
	SyncWrites bool
	// Log receives kfake's warnings and errors. nil discards them.
	Log *slog.Logger
}

// Embedded is a single-broker, in-process Kafka.
type Embedded struct {
	c     *kfake.Cluster
	addrs []string
	log   *slog.Logger
}

// StartEmbedded starts the broker. With a DataDir, a restart on the same
// directory reloads topics, records and committed group offsets; the seeded
// topics are created only when the directory holds no state yet, so a
// changed Partitions does not repartition existing topics.
func StartEmbedded(cfg EmbeddedConfig) (*Embedded, error) {
	host, port := "127.0.0.1", 0
	if cfg.Addr != "" {
		h, p, err := net.SplitHostPort(cfg.Addr)
		if err != nil {
			return nil, fmt.Errorf("kafka: invalid embedded address %q: %w", cfg.Addr, err)
		}
		if port, err = strconv.Atoi(p); err != nil || port < 0 || port > 65535 {
			return nil, fmt.Errorf("kafka: invalid embedded port in %q", cfg.Addr)
		}
		if h != "" {
			host = h
		}
	}
	parts := cfg.Partitions
	if parts == 0 {
		parts = DefaultPartitions
	}
	if parts < 0 {
		return nil, fmt.Errorf("kafka: negative partition count %d", parts)
	}
	topics := cfg.Topics
	if topics == nil {
		topics = []string{TopicEvents, TopicPushes, TopicCatalog}
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []kfake.Opt{
		kfake.Ports(port), // one port, so one broker
		// kfake always binds 127.0.0.1; ListenFn honours the configured
		// host and lets a taken port produce an error that says so.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			a := net.JoinHostPort(host, strconv.Itoa(port))
			ln, err := net.Listen(network, a)
			if err != nil {
				return nil, fmt.Errorf("kafka: cannot listen on %s (another onair dev or Kafka running?): %w", a, err)
			}
			return ln, nil
		}),
		kfake.DefaultNumPartitions(parts),
		kfake.WithLogger(slogLogger{log}),
	}
	if len(topics) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(parts), topics...))
	}
	if cfg.DataDir != "" {
		opts = append(opts, kfake.DataDir(cfg.DataDir))
	}
	if cfg.SyncWrites {
		opts = append(opts, kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, err
	}
	e := &Embedded{c: c, addrs: c.ListenAddrs(), log: log}
	log.Info("embedded kafka started", "addrs", e.addrs, "data_dir", cfg.DataDir)
	return e, nil
}

// Addrs returns the seed brokers to give kgo.SeedBrokers.
func (e *Embedded) Addrs() []string { return e.addrs }

// Cluster returns the kfake cluster, for fault injection in tests
// (Control, KeepControl, SleepControl, ...).
func (e *Embedded) Cluster() *kfake.Cluster { return e.c }

// Close stops the broker. With a DataDir it first writes the state to disk,
// which is what makes a restart find every produced record. Idempotent.
func (e *Embedded) Close() {
	e.c.Close()
	e.log.Info("embedded kafka stopped", "addrs", e.addrs)
}

// EnsureTopics creates the missing topics with the given partition count
// (replication factor: the cluster default); existing ones are left as they
// are, so it is safe to call on every start.
func EnsureTopics(ctx context.Context, cl *kgo.Client, partitions int, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	adm := kadm.NewClient(cl)
	resps, err := adm.CreateTopics(ctx, int32(partitions), -1, nil, topics...)
	if err != nil {
		return fmt.Errorf("cannot create topics %v: %w", topics, err)
	}
	var errs []error
	for _, r := range resps.Sorted() {
		if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("cannot create topic %q: %w", r.Topic, r.Err))
		}
	}
	return errors.Join(errs...)
}

// slogLogger adapts kfake's logger; kfake logs every request at info level,
// so only warnings and errors are passed on.
type slogLogger struct{ l *slog.Logger }

func (s slogLogger) Logf(level kfake.LogLevel, format string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		s.l.Error("kfake: " + fmt.Sprintf(format, args...))
	case kfake.LogLevelWarn:
		s.l.Warn("kfake: " + fmt.Sprintf(format, args...))
	}
}
