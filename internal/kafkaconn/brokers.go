package kafkaconn

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Brokers splits bootstrap server entries, each a host:port or several
// separated by commas, into one host:port per broker. problems says what
// is wrong with the entries that are not host:port, and when there are
// more than max brokers (max <= 0: no limit).
func Brokers(entries []string, max int) (brokers, problems []string) {
	for _, entry := range entries {
		for _, hp := range strings.Split(entry, ",") {
			hp = strings.TrimSpace(hp)
			host, port, err := net.SplitHostPort(hp)
			if err != nil || host == "" {
				problems = append(problems, fmt.Sprintf("%q is not host:port", hp))
				continue
			}
			if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
				problems = append(problems, fmt.Sprintf("%q: port must be 1 to 65535", hp))
				continue
			}
			brokers = append(brokers, hp)
		}
	}
	if max > 0 && len(brokers) > max {
		problems = append(problems, fmt.Sprintf("takes at most %d servers, got %d", max, len(brokers)))
	}
	return brokers, problems
}
