-- Retention finds finished reminders by due time (the index of pending ones
-- does not cover them). SQLite's reminders_due(status, due_at) already does.
CREATE INDEX reminders_finished ON reminders(due_at) WHERE status IN ('sent', 'missed', 'cancelled');
