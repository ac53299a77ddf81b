// Package chdb opens ClickHouse connections the way every part of onair
// needs them: native protocol (ClickHouse 18.16's HTTP interface rejects
// clickhouse-go's settings), bound to the "default" database so that the
// onair database can be created by migrations; queries name their database.
package chdb

import (
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// Config says where ClickHouse is.
type Config struct {
	// Addr is the native-protocol address (host:port). Required.
	Addr string
	// User is the user; "" means "default".
	User string
	// Password is the user's password; "" means none.
	Password string
	// Database is the session's default database; "" means "default".
	// onair's own code names its database in every query.
	Database string
	// MaxOpenConns bounds the pool; 0 means 16.
	MaxOpenConns int
}

// Open returns a pooled connection; it does not dial until first use.
func Open(cfg Config) (driver.Conn, error) {
	if cfg.Addr == "" {
		return nil, fmt.Errorf("chdb: no ClickHouse address")
	}
	if cfg.User == "" {
		cfg.User = "default"
	}
	if cfg.Database == "" {
		cfg.Database = "default"
	}
	if cfg.MaxOpenConns == 0 {
		cfg.MaxOpenConns = 16
	}
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:         []string{cfg.Addr},
		Protocol:     clickhouse.Native,
		Auth:         clickhouse.Auth{Database: cfg.Database, Username: cfg.User, Password: cfg.Password},
		DialTimeout:  5 * time.Second,
		ReadTimeout:  60 * time.Second,
		MaxOpenConns: cfg.MaxOpenConns,
		MaxIdleConns: 4,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open ClickHouse at %s: %w", cfg.Addr, err)
	}
	return conn, nil
}

// ValidIdent reports whether s can be used unquoted as a ClickHouse
// database or table name in onair's SQL (letters, digits, underscores; not
// starting with a digit; at most 64 bytes). Names are spliced into queries,
// so anything else is refused.
func ValidIdent(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i, r := range s {
		ok := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (i > 0 && r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}
