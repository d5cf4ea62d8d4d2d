package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

func (m *Main) runPublish(ctx context.Context, args []string) error {
	fs := flagSet("tidings publish", m.Stderr)
	server := fs.String("server", "http://127.0.0.1:8080", "the Tidings server")
	token := fs.String("token", "", "API token (scope publish or user)")
	to := fs.String("to", "", "comma-separated logins of the recipients")
	project := fs.Int64("project", 0, "id of a project whose members receive it")
	urgent := fs.Bool("urgent", false, "mark the message urgent")
	ttl := fs.Duration("ttl", 0, "how long the message stays valid (at most 24h; default: the server's)")
	validFrom := fs.String("valid-from", "", "RFC 3339 time from which it is delivered (default now)")
	module := fs.String("module", "", "the module the message is about (default message)")
	if err := m.parseFlags(fs, args); err != nil {
		return err
	}
	text := strings.TrimSpace(strings.Join(fs.Args(), " "))
	if text == "" {
		return usagef("publish needs the text of the message as its argument")
	}
	if *to == "" && *project == 0 {
		return usagef("publish needs --to or --project")
	}
	if *token == "" {
		return usagef("publish needs --token (or TIDINGS_TOKEN)")
	}
	if *ttl < 0 {
		return usagef("--ttl must be positive")
	}
	if *validFrom != "" {
		if _, err := time.Parse(time.RFC3339, *validFrom); err != nil {
			return usagef("--valid-from must be an RFC 3339 time such as 2026-11-24T17:45:00Z")
		}
	}
	body := map[string]any{"text": text, "urgent": *urgent}
	if *to != "" {
		var logins []string
		for _, l := range strings.Split(*to, ",") {
			if l = strings.TrimSpace(l); l != "" {
				logins = append(logins, l)
			}
		}
		body["recipients"] = logins
	}
	if *project != 0 {
		body["project"] = *project
	}
	if *ttl > 0 {
		body["ttl"] = ttl.String()
	}
	if *validFrom != "" {
		body["valid_from"] = *validFrom
	}
	if *module != "" {
		body["module"] = *module
	}
	buf, _ := json.Marshal(body)

	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(*server, "/")+"/api/v1/messages", bytes.NewReader(buf))
	if err != nil {
		return usagef("--server: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+*token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("publish to %s: %w", *server, err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusAccepted {
		var e struct {
			Error struct{ Code, Message, Field string } `json:"error"`
		}
		if json.Unmarshal(answer, &e) == nil && e.Error.Message != "" {
			msg := e.Error.Message
			if e.Error.Field != "" {
				msg = e.Error.Field + ": " + msg
			}
			return fmt.Errorf("server answered %d %s: %s", resp.StatusCode, e.Error.Code, msg)
		}
		return fmt.Errorf("server answered %s", resp.Status)
	}
	var res struct {
		Event      int64     `json:"event"`
		Recipients int       `json:"recipients"`
		ValidFrom  time.Time `json:"valid_from"`
		ValidUntil time.Time `json:"valid_until"`
	}
	if err := json.Unmarshal(answer, &res); err != nil {
		return errors.New("the server's answer is not what a Tidings server sends")
	}
	fmt.Fprintf(m.Stdout, "Published event %d to %d recipient(s), valid from %s until %s.\n",
		res.Event, res.Recipients, res.ValidFrom.Format(time.RFC3339), res.ValidUntil.Format(time.RFC3339))
	return nil
}
