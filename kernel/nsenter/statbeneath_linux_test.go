package nsenter_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/caddy-netns/caddy-netns/kernel/nsenter"
)

// StatBeneath finds what a directory's entries hold, never where a link
// among them leads, except a /proc namespace link at the end.
func TestStatBeneath(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "sub", "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{"dirlink": "sub", "filelink": "sub/file", "root": "/proc/self/root"} {
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	fileID, err := nsenter.StatID(file)
	if err != nil {
		t.Fatal(err)
	}
	own, err := nsenter.Current()
	if err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(os.Getpid())
	for _, tc := range []struct {
		dir, rel string
		want     nsenter.ID
		err      string
	}{
		{dir, "sub/file", fileID, ""},
		{dir + "/sub", "file", fileID, ""},
		{dir, "dirlink/file", nsenter.ID{}, "dirlink is a symbolic link"},
		{dir, "filelink", nsenter.ID{}, "filelink is a symbolic link"},
		{dir, "root" + dir + "/sub/file", nsenter.ID{}, "root is a symbolic link"},
		{dir, "sub/../sub/file", nsenter.ID{}, "not a plain relative path"},
		{dir, "sub//file", nsenter.ID{}, "not a plain relative path"},
		{dir, "sub/file/x", nsenter.ID{}, "not a directory"},
		{dir, "missing", nsenter.ID{}, "no such file"},
		{"/proc", pid + "/ns/net", own, ""},
		{"/proc", "self/ns/net", nsenter.ID{}, "self is a symbolic link"},
		{"/proc", pid + "/root/proc/" + pid + "/ns/net", nsenter.ID{}, "root is a symbolic link"},
	} {
		got, err := nsenter.StatBeneath(tc.dir, tc.rel)
		switch {
		case tc.err == "" && (err != nil || got != tc.want):
			t.Errorf("%s %s: %v %v, want %v", tc.dir, tc.rel, got, err, tc.want)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s %s: %v %v, want error %q", tc.dir, tc.rel, got, err, tc.err)
		}
	}
}
