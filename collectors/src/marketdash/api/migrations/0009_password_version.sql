-- Counts the password changes of each user: every token carries the count it was issued under, and a
-- token issued before the last change is refused (a stolen token dies with the password it came from).
ALTER TABLE users ADD COLUMN IF NOT EXISTS password_version int NOT NULL DEFAULT 0;
