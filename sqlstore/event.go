package sqlstore

import "github.com/tidings/tidings"

// fieldLabel names a field of an item and how people call it.
type fieldLabel struct {
	field, label string
}

// setDetails lists the fields an add set, in the order of fields, leaving
// out empty values.
func setDetails(fields []fieldLabel, values map[string]string) []tidings.Detail {
	var out []tidings.Detail
	for _, f := range fields {
		v, ok := values[f.field]
		if !ok || v == "" {
			continue
		}
		v = tidings.ClipDetail(v)
		out = append(out, tidings.Detail{Field: f.field, Label: f.label, New: &v})
	}
	return out
}

// changeDetails lists the fields whose values differ, old and new. An empty
// value is shown as null; a long one is cut (after the comparison, so that a
// change past the cut still counts).
func changeDetails(fields []fieldLabel, before, after map[string]string) []tidings.Detail {
	var out []tidings.Detail
	for _, f := range fields {
		o, n := before[f.field], after[f.field]
		if o == n {
			continue
		}
		d := tidings.Detail{Field: f.field, Label: f.label}
		if o != "" {
			o = tidings.ClipDetail(o)
			d.Old = &o
		}
		if n != "" {
			n = tidings.ClipDetail(n)
			d.New = &n
		}
		out = append(out, d)
	}
	return out
}

// emitPersonal is emit with a text of its own for some recipients: the one a
// change is about reads "you".
func (tx *Tx) emitPersonal(ev *tidings.Event, candidates []int64, personal map[int64]string) error {
	validUntil := tx.now.Add(tx.db.MessageTTL)
	if err := tx.insertEvent(ev, validUntil); err != nil {
		return err
	}
	var projectID int64
	if ev.Project != nil {
		projectID = ev.Project.ID
	}
	kind := tidings.KindOf(ev.Process)
	seen := make(map[int64]bool, len(candidates))
	for _, id := range candidates {
		if seen[id] {
			continue
		}
		seen[id] = true
		ok, err := tx.wants(id, kind, projectID)
		if err != nil {
			return err
		}
		if ok {
			if err := tx.deliverOne(ev.ID, id, tx.now, validUntil, personal[id]); err != nil {
				return err
			}
		}
	}
	return nil
}
