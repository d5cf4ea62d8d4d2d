package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A publish is answered as Tidings answers one, so that the load generator
// reads an answer of the same kind and size.
func TestHandlerAnswersAPublish(t *testing.T) {
	srv := httptest.NewServer(handler())
	defer srv.Close()
	for range 3 { // on one kept-alive connection
		resp, err := http.Post(srv.URL+"/api/v1/messages", "application/json", strings.NewReader(`{"recipients":["bob"],"text":"hi"}`))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var got struct {
			EventID int64 `json:"event_id"`
		}
		if resp.StatusCode != http.StatusAccepted || json.Unmarshal(body, &got) != nil || got.EventID == 0 {
			t.Fatalf("answer %d %q", resp.StatusCode, body)
		}
	}
}
