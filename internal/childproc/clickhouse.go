package childproc

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// ClickHouseConfig configures StartClickHouse.
type ClickHouseConfig struct {
	// Dir holds config.xml, users.xml, the data under data/ and the logs
	// under log/. Required; created when missing. Reusing a Dir keeps the data.
	Dir string
	// TCPPort is the native protocol port, the one clickhouse-go uses.
	// 0 picks a free port.
	TCPPort int
	// HTTPPort is the HTTP port (clickhouse-go's HTTP transport does not work
	// with 18.16, but clickhouse-client and curl do). 0 picks a free port.
	HTTPPort int
	// Bin is the clickhouse-server binary. "" means "clickhouse-server" from
	// PATH, falling back to /usr/sbin/clickhouse-server, where Debian puts it
	// outside a normal user's PATH.
	Bin string
	// Log receives start and stop messages. nil discards them.
	Log *slog.Logger
}

// StartClickHouse writes a self-contained config.xml and users.xml into
// cfg.Dir and starts clickhouse-server with them, returning once `SELECT 1`
// succeeds over the native protocol (60 s at most; 18.16 needs well under a
// second on an empty directory).
//
// Nothing refers to /etc/clickhouse-server or /var/lib/clickhouse, and there
// is no interserver, TLS, ZooKeeper or remote_servers section, so any number
// of servers can run side by side on one machine.
func StartClickHouse(ctx context.Context, cfg ClickHouseConfig) (*Server, error) {
	return retryPicked(cfg.TCPPort == 0 || cfg.HTTPPort == 0, func() (*Server, error) { return startClickHouse(ctx, cfg) })
}

func startClickHouse(ctx context.Context, cfg ClickHouseConfig) (*Server, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("childproc: ClickHouseConfig.Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, err
	}
	for _, sub := range []string{"data", "tmp", "user_files", "format_schemas", "log"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("cannot create clickhouse dir: %w", err)
		}
	}
	bin := cfg.Bin
	if bin == "" {
		bin = "clickhouse-server"
		if _, err := exec.LookPath(bin); err != nil {
			bin = "/usr/sbin/clickhouse-server"
		}
	}
	tcpPort, err := pickPort(cfg.TCPPort)
	if err != nil {
		return nil, err
	}
	httpPort, err := pickPort(cfg.HTTPPort)
	if err != nil {
		return nil, err
	}
	if tcpPort == httpPort {
		return nil, fmt.Errorf("childproc: ClickHouse TCP and HTTP ports are both %d", tcpPort)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.xml"), []byte(clickHouseConfigXML(dir, tcpPort, httpPort)), 0o644); err != nil {
		return nil, fmt.Errorf("cannot write config.xml: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "users.xml"), []byte(clickHouseUsersXML), 0o644); err != nil {
		return nil, fmt.Errorf("cannot write users.xml: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(tcpPort))
	s := &Server{
		name:         "clickhouse-server",
		bin:          bin,
		args:         []string{"--config-file=" + filepath.Join(dir, "config.xml")},
		dir:          dir,
		logPath:      filepath.Join(dir, "log", "stdout.log"),
		serverLog:    filepath.Join(dir, "log", "clickhouse-server.err.log"),
		ports:        []int{tcpPort, httpPort},
		addr:         addr,
		httpAddr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(httpPort)),
		ready:        func(ctx context.Context) error { return clickHouseSelect1(ctx, addr) },
		readyTimeout: 60 * time.Second,
		log:          orDiscard(cfg.Log),
	}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// clickHouseSelect1 runs a real query: the TCP port opens before the server
// has loaded its tables' metadata, and a query is what callers need.
func clickHouseSelect1(ctx context.Context, addr string) error {
	conn, err := clickhouse.Open(&clickhouse.Options{
		Addr:        []string{addr},
		Protocol:    clickhouse.Native,
		DialTimeout: time.Second,
	})
	if err != nil {
		return err
	}
	defer conn.Close()
	var one uint8
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		return err
	}
	if one != 1 {
		return fmt.Errorf("SELECT 1 returned %d", one)
	}
	return nil
}

// clickHouseConfigXML keeps the caches small (the packaged config reserves
// 5 GB of mark cache, too much for several test servers on one machine) and
// logs warnings only, to the server's own files under dir/log.
func clickHouseConfigXML(dir string, tcpPort, httpPort int) string {
	return fmt.Sprintf(`<?xml version="1.0"?>
<!-- Written by onair (internal/childproc); rewritten on every start. -->
<yandex>
    <logger>
        <level>warning</level>
        <log>%[1]s/log/clickhouse-server.log</log>
        <errorlog>%[1]s/log/clickhouse-server.err.log</errorlog>
        <size>100M</size>
        <count>2</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>%[2]d</tcp_port>
    <http_port>%[3]d</http_port>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>134217728</uncompressed_cache_size>
    <mark_cache_size>134217728</mark_cache_size>
    <path>%[1]s/data/</path>
    <tmp_path>%[1]s/tmp/</tmp_path>
    <user_files_path>%[1]s/user_files/</user_files_path>
    <format_schema_path>%[1]s/format_schemas/</format_schema_path>
    <users_config>%[1]s/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mlock_executable>false</mlock_executable>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
</yandex>
`, dir, tcpPort, httpPort)
}

// clickHouseUsersXML has a passwordless default user reachable from
// loopback only in practice (the server listens on 127.0.0.1), and an
// unlimited quota so load tests are not throttled. poll_interval 1 (default
// 10): on SIGTERM an idle client connection holds the server up to one poll
// interval, and pooled clients keep idle connections open, so stops took ~10 s.
const clickHouseUsersXML = `<?xml version="1.0"?>
<!-- Written by onair (internal/childproc); rewritten on every start. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
            <poll_interval>1</poll_interval>
        </default>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>::/0</ip>
                <ip>127.0.0.1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
`
