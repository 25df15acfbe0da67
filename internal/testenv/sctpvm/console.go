package sctpvm

import (
	"fmt"
	"strconv"
	"strings"
)

// console follows the guest's serial console and collects the marker lines
// that init prints around each test binary.
type console struct {
	marker  string
	booted  bool
	done    bool
	current string         // binary running now
	status  map[string]int // binary -> exit status
	insmod  []string       // modules that failed to load
}

func newConsole(marker string) *console {
	return &console{marker: marker, status: make(map[string]int)}
}

// line handles one console line. Kernel messages may precede a marker on
// the same line, so the marker is looked for anywhere in it.
func (c *console) line(s string) {
	i := strings.Index(s, c.marker+" ")
	if i < 0 {
		return
	}
	f := strings.Fields(s[i+len(c.marker):])
	if len(f) == 0 {
		return
	}
	switch f[0] {
	case "BOOTED":
		c.booted = true
	case "INSMOD-FAILED":
		if len(f) > 1 {
			c.insmod = append(c.insmod, f[1])
		}
	case "BEGIN":
		if len(f) > 1 {
			c.current = f[1]
		}
	case "END":
		if len(f) > 2 {
			if rc, err := strconv.Atoi(f[2]); err == nil {
				c.status[f[1]] = rc
				if c.current == f[1] {
					c.current = ""
				}
			}
		}
	case "DONE":
		c.done = true
	}
}

// verdict returns one error per binary that did not exit 0, and one for an
// incomplete run.
func (c *console) verdict(bins []testBinary) []error {
	var errs []error
	if !c.booted {
		errs = append(errs, fmt.Errorf("guest never ran its init"))
	}
	for _, m := range c.insmod {
		errs = append(errs, fmt.Errorf("guest could not load module %s", m))
	}
	for _, b := range bins {
		rc, ok := c.status[b.Name]
		switch {
		case !ok && b.Name == c.current:
			errs = append(errs, fmt.Errorf("%s (%s): no exit status: guest stopped while it ran", b.Name, b.ImportPath))
		case !ok:
			errs = append(errs, fmt.Errorf("%s (%s): did not run", b.Name, b.ImportPath))
		case rc != 0:
			errs = append(errs, fmt.Errorf("%s (%s): FAIL, exit status %d (see the guest output above)", b.Name, b.ImportPath, rc))
		}
	}
	if c.booted && !c.done {
		errs = append(errs, fmt.Errorf("guest did not finish its run"))
	}
	return errs
}
