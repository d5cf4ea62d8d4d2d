package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tidings/tidings"
)

// Pages of items, where their messages link to.
func todoURL(id int64) string        { return "/todos/" + strconv.FormatInt(id, 10) }
func noteURL(id int64) string        { return "/notes/" + strconv.FormatInt(id, 10) }
func appointmentURL(id int64) string { return "/appointments/" + strconv.FormatInt(id, 10) }

// itemReader returns who reads items: a user's id, or 0 for the system,
// which sees every project.
func itemReader(ctx context.Context) (int64, error) {
	if a := tidings.AuthFromContext(ctx); a != nil && a.System {
		return 0, nil
	}
	return callerID(ctx)
}

// itemNotFound is the answer for an item that does not exist and for one
// the caller may not see alike.
func itemNotFound(kind string, id int64) error {
	return tidings.Errorf(tidings.ENOTFOUND, "%s %d was not found.", kind, id)
}

// requireMember returns the name of a project userID is a member of, and
// ENOTFOUND for any other project.
func (tx *Tx) requireMember(projectID, userID int64) (string, error) {
	var name string
	err := tx.queryRow(`SELECT p.name FROM projects p JOIN members m ON m.project_id = p.id AND m.user_id = ? WHERE p.id = ?`,
		userID, projectID).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", projectNotFound(projectID)
	}
	return name, err
}

// readableProject checks, for a list, that reader (0: the system) may see
// the project.
func readableProject(ctx context.Context, q queryer, projectID, reader int64) error {
	var ok bool
	err := q.QueryRowContext(ctx, `SELECT CAST(? AS BIGINT) = 0 OR EXISTS (SELECT 1 FROM members WHERE project_id = projects.id AND user_id = ?) FROM projects WHERE id = ?`,
		reader, reader, projectID).Scan(&ok)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !ok {
		return projectNotFound(projectID)
	}
	return err
}

// listScope returns the condition that limits a list to one project, or to
// the reader's projects when projectID is 0, and its arguments. col is the
// item table's project column.
func listScope(ctx context.Context, q queryer, col string, projectID, reader int64) (string, []any, error) {
	if projectID != 0 {
		if err := readableProject(ctx, q, projectID, reader); err != nil {
			return "", nil, err
		}
		return col + " = ?", []any{projectID}, nil
	}
	if reader == 0 {
		return "", nil, tidings.Invalidf("project", "Name a project.")
	}
	return col + " IN (SELECT project_id FROM members WHERE user_id = ?)", []any{reader}, nil
}

// member is a project member as items refer to them.
type member struct {
	id          int64
	login, name string
}

// memberByLogin finds a member of the project by login; ok is false for a
// login that is unknown or not a member.
func (tx *Tx) memberByLogin(projectID int64, login string) (member, bool, error) {
	m := member{login: login}
	err := tx.queryRow(`SELECT u.id, u.name FROM users u JOIN members m ON m.user_id = u.id AND m.project_id = ? WHERE u.login = ?`,
		projectID, login).Scan(&m.id, &m.name)
	if errors.Is(err, sql.ErrNoRows) {
		return m, false, nil
	}
	return m, err == nil, err
}

// notMember is the EINVALID answer for a login that should name a member.
func notMember(field, login, project string) error {
	return tidings.Invalidf(field, "%s is not a member of %s.", strconv.Quote(login), project)
}

// without returns ids without the actor and without zeros (nobody), keeping
// the order.
func without(ids []int64, actor int64) []int64 {
	out := make([]int64, 0, len(ids))
	for _, v := range ids {
		if v != actor && v != 0 {
			out = append(out, v)
		}
	}
	return out
}

// Readable values in the details and texts of messages. Details are one per
// event, shared by its recipients, so times are in UTC.
const readableTime = "2006-01-02 15:04 MST"

// formatTime writes a time to the minute, or more precisely where it has
// seconds, so that every change of a time shows.
func formatTime(t time.Time) string {
	t = t.UTC()
	switch {
	case t.Nanosecond() != 0:
		return t.Format("2006-01-02 15:04:05.000 MST")
	case t.Second() != 0:
		return t.Format("2006-01-02 15:04:05 MST")
	}
	return t.Format(readableTime)
}

func formatDate(d *tidings.Date) string {
	if d == nil {
		return ""
	}
	return d.String()
}

// itemAddText is the sentence of an add: “Alice Adams added the todo “Fix
// the printer” in Office move”.
func itemAddText(actor *tidings.Actor, noun, title, project string) string {
	return fmt.Sprintf("%s added the %s “%s” in %s", actor.Name, noun, title, project)
}

// itemDeleteText is the sentence of a delete.
func itemDeleteText(actor *tidings.Actor, noun, title, project string) string {
	return fmt.Sprintf("%s deleted the %s “%s” in %s", actor.Name, noun, title, project)
}

// longFields are shown in a sentence by name only: their values are too long.
var longFields = map[string]bool{"description": true, "body": true}

// itemEditText is the sentence of an edit. One changed field is told with
// its values (“changed the priority of “Fix the printer” in Office move from
// normal to urgent”); several are listed by name (“changed “Fix the printer”
// in Office move: priority, due date”).
func itemEditText(actor *tidings.Actor, noun, oldTitle, title, project string, details []tidings.Detail) string {
	if len(details) != 1 {
		labels := make([]string, len(details))
		for i, d := range details {
			labels[i] = strings.ToLower(d.Label)
		}
		return fmt.Sprintf("%s changed “%s” in %s: %s", actor.Name, title, project, strings.Join(labels, ", "))
	}
	d := details[0]
	label := strings.ToLower(d.Label)
	switch {
	case d.Field == "title":
		return fmt.Sprintf("%s renamed the %s “%s” to “%s” in %s", actor.Name, noun, oldTitle, title, project)
	case longFields[d.Field]:
		return fmt.Sprintf("%s changed the %s of “%s” in %s", actor.Name, label, title, project)
	case d.Field == "assignee" && d.Old == nil:
		return fmt.Sprintf("%s assigned “%s” in %s to %s", actor.Name, title, project, *d.New)
	case d.Field == "assignee" && d.New == nil:
		return fmt.Sprintf("%s unassigned %s from “%s” in %s", actor.Name, *d.Old, title, project)
	case d.Old == nil:
		return fmt.Sprintf("%s set the %s of “%s” in %s to %s", actor.Name, label, title, project, *d.New)
	case d.New == nil:
		return fmt.Sprintf("%s removed the %s of “%s” in %s", actor.Name, label, title, project)
	}
	return fmt.Sprintf("%s changed the %s of “%s” in %s from %s to %s", actor.Name, label, title, project, *d.Old, *d.New)
}
