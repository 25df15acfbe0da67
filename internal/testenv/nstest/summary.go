package nstest

import (
	"fmt"
	"testing"
)

// Summary prints one reliability line, "reliability: <property>: <tried>:
// <n>, failed: <failed>", to the test log and to standard output, so the
// figures can be quoted (CI greps for them).
func Summary(t testing.TB, property, tried string, n, failed int) {
	t.Helper()
	line := fmt.Sprintf("reliability: %s: %s: %d, failed: %d", property, tried, n, failed)
	t.Log(line)
	fmt.Println(line)
}
