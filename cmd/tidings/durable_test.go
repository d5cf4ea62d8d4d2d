package main

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestAcknowledgedPublishesSurviveKill9: every publish answered 202 by a
// server on SQLite with the default --sync normal is still there after the
// process is killed with SIGKILL in the middle of more publishes (SPEC §7
// Durability), and with --sync full too.
func TestAcknowledgedPublishesSurviveKill9(t *testing.T) {
	for _, sync := range []string{"normal", "full"} {
		t.Run(sync, func(t *testing.T) { testSurvivesKill9(t, sync) })
	}
}

func testSurvivesKill9(t *testing.T, syncMode string) {
	db := filepath.Join(t.TempDir(), "tidings.db")
	tokens := nodesOffice(t, db, "bob")
	n := startNode(t, db, "--sync", syncMode, "--user-publish-rate", "0")

	// Publishers go on while the process is killed: whatever was answered
	// 202 before the kill must be kept.
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	killed := make(chan struct{})
	for p := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				text := fmt.Sprintf("p%d-%d", p, i)
				body := fmt.Sprintf(`{"recipients":["bob"],"text":%q}`, text)
				req, _ := http.NewRequest("POST", n.url+"/api/v1/messages", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+tokens["alice"])
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // the process is gone
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					mu.Lock()
					acked[text] = true
					count := len(acked)
					mu.Unlock()
					if count == 300 {
						close(killed)
					}
				}
			}
		})
	}
	<-killed
	if err := n.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	n.cmd.Wait()
	wg.Wait()

	m := startNode(t, db)
	got := map[string]bool{}
	cursor := ""
	for {
		var p poll
		call(t, "GET", m.url+"/api/v1/poll?timeout=0&since="+cursor, tokens["bob"], nil, http.StatusOK, &p)
		for _, msg := range p.Messages {
			got[msg.Text] = true
		}
		cursor = p.Cursor
		if len(p.Messages) == 0 {
			break
		}
	}
	mu.Lock()
	defer mu.Unlock()
	lost := 0
	for text := range acked {
		if !got[text] {
			lost++
		}
	}
	if lost > 0 {
		t.Fatalf("%d of %d acknowledged publishes were lost to kill -9 (with --sync %s)", lost, len(acked), syncMode)
	}
	t.Logf("--sync %s: %d acknowledged publishes, all kept after kill -9", syncMode, len(acked))
}
