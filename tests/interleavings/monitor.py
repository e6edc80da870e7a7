"""Invariant monitors inside PostgreSQL: triggers that record, in a table of the test
database, every write that breaks an invariant, whichever process or connection made it.

Recorded violations (``harness_violation.kind``):

- ``consumed twice``: an UPDATE of a message row that was already consumed and changes its
  consumption (``date_consumed`` or ``outcome``): a message applied a second time.
- ``unconsumed``: a consumed message made unconsumed again.
- ``target backwards``: a target moving to an earlier status (rank pending 0 < building 1 <
  waiting 2 < complete 3), or from one complete status to another.
- ``build from complete``: a build leaving a complete status other than by a restart
  (complete → ``building`` with a higher generation) or by a rerun of a step (passed or
  failed → ``building`` in the same generation, with an applied ``rerun`` message).

Used by the interleavings harness (in its test transaction) and by the race tests (the
triggers live as long as the test database). Triggers see every connection, so a Celery
worker breaking an invariant is caught too.
"""

from django.db import connection

INSTALL_SQL = """
CREATE TABLE IF NOT EXISTS harness_violation (
    id bigserial PRIMARY KEY, kind text NOT NULL, row_id bigint NOT NULL, detail text
);
CREATE OR REPLACE FUNCTION harness_target_rank(status text) RETURNS int AS $$
    SELECT CASE status WHEN 'pending' THEN 0 WHEN 'building' THEN 1 WHEN 'waiting' THEN 2
                       ELSE 3 END
$$ LANGUAGE sql IMMUTABLE;
CREATE OR REPLACE FUNCTION harness_check_message() RETURNS trigger AS $$
BEGIN
    IF OLD.is_consumed AND NEW.is_consumed AND (
        OLD.date_consumed IS DISTINCT FROM NEW.date_consumed
        OR OLD.outcome IS DISTINCT FROM NEW.outcome) THEN
        INSERT INTO harness_violation (kind, row_id, detail)
        VALUES ('consumed twice', OLD.id, OLD.outcome || ' then ' || NEW.outcome);
    ELSIF OLD.is_consumed AND NOT NEW.is_consumed THEN
        INSERT INTO harness_violation (kind, row_id, detail) VALUES ('unconsumed', OLD.id, '');
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION harness_check_target() RETURNS trigger AS $$
BEGIN
    IF harness_target_rank(NEW.status) < harness_target_rank(OLD.status)
       OR (harness_target_rank(OLD.status) = 3 AND NEW.status <> OLD.status) THEN
        INSERT INTO harness_violation (kind, row_id, detail)
        VALUES ('target backwards', OLD.id, OLD.status || ' -> ' || NEW.status);
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION harness_check_build() RETURNS trigger AS $$
BEGIN
    IF OLD.status IN ('passed', 'failed', 'aborted', 'error', 'deadlocked')
       AND NEW.status <> OLD.status
       AND NOT (NEW.status = 'building' AND NEW.generation > OLD.generation)
       AND NOT (NEW.status = 'building' AND OLD.status IN ('passed', 'failed')
                AND EXISTS (SELECT 1 FROM builds_buildmessage m
                            WHERE m.build_id = OLD.id AND m.type = 'rerun'
                              AND m.is_consumed AND m.outcome LIKE 'rerun of step % applied'))
    THEN
        INSERT INTO harness_violation (kind, row_id, detail)
        VALUES ('build from complete', OLD.id, OLD.status || ' -> ' || NEW.status);
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS harness_message ON builds_buildmessage;
CREATE TRIGGER harness_message BEFORE UPDATE ON builds_buildmessage
    FOR EACH ROW EXECUTE FUNCTION harness_check_message();
DROP TRIGGER IF EXISTS harness_target ON builds_buildtarget;
CREATE TRIGGER harness_target BEFORE UPDATE ON builds_buildtarget
    FOR EACH ROW EXECUTE FUNCTION harness_check_target();
DROP TRIGGER IF EXISTS harness_build ON builds_build;
CREATE TRIGGER harness_build BEFORE UPDATE ON builds_build
    FOR EACH ROW EXECUTE FUNCTION harness_check_build();
"""

UNINSTALL_SQL = """
DROP TRIGGER IF EXISTS harness_message ON builds_buildmessage;
DROP TRIGGER IF EXISTS harness_target ON builds_buildtarget;
DROP TRIGGER IF EXISTS harness_build ON builds_build;
DROP TABLE IF EXISTS harness_violation;
"""


def install() -> None:
    """Create the violation table and the triggers (idempotent)."""
    with connection.cursor() as cursor:
        cursor.execute(INSTALL_SQL)


def uninstall() -> None:
    """Drop the triggers and the violation table."""
    with connection.cursor() as cursor:
        cursor.execute(UNINSTALL_SQL)


def violations() -> list[tuple[str, int, str]]:
    """Every violation recorded so far, as (kind, row id, detail)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT kind, row_id, detail FROM harness_violation ORDER BY id")
        return list(cursor.fetchall())
