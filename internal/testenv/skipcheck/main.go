// Command skipcheck reads `go test -json` on stdin, writes the plain test
// output to the file named by its argument, prints the package result
// lines, and fails when a test skipped without saying that the same run
// covers it elsewhere (sctptest.Elsewhere). test.sh runs it.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

// elsewhere is sctptest.Elsewhere (not imported: this command must build
// without the test tree's dependencies).
const elsewhere = "[runs elsewhere]"

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go test -json ./... | skipcheck LOGFILE")
		os.Exit(2)
	}
	log, err := os.Create(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "skipcheck:", err)
		os.Exit(2)
	}
	defer log.Close()

	output := map[string]*strings.Builder{} // package + " " + test
	var skipped []string
	failed := false
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			// Not an event (a build error printed as text): keep it.
			fmt.Fprintln(log, sc.Text())
			fmt.Println(sc.Text())
			failed = true
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			log.WriteString(e.Output)
			if e.Test == "" && (strings.HasPrefix(e.Output, "ok ") || strings.HasPrefix(e.Output, "FAIL") || strings.HasPrefix(e.Output, "?")) {
				fmt.Print(e.Output)
			}
			if e.Test != "" {
				b := output[key]
				if b == nil {
					b = new(strings.Builder)
					output[key] = b
				}
				b.WriteString(e.Output)
			}
		case "skip":
			if e.Test != "" && !strings.Contains(output[key].String(), elsewhere) {
				skipped = append(skipped, key+": "+reason(output[key].String()))
			}
		case "fail":
			if e.Test != "" {
				fmt.Printf("--- FAIL: %s (%s)\n", e.Test, e.Package)
			}
			failed = true
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "skipcheck: reading go test output:", err)
		os.Exit(2)
	}
	if len(skipped) > 0 {
		sort.Strings(skipped)
		fmt.Fprintln(os.Stderr, "tests skipped (every test must run; see the README's Tests section):")
		for _, s := range skipped {
			fmt.Fprintln(os.Stderr, "  "+s)
		}
		failed = true
	}
	if failed {
		os.Exit(1)
	}
}

// reason is the skip message: the output lines that are not the test's
// own === and --- lines.
func reason(out string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "===") || strings.HasPrefix(t, "---") {
			continue
		}
		lines = append(lines, t)
	}
	return strings.Join(lines, " | ")
}
