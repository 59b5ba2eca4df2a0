-- Put a restored copy in the place of a live database and keep the live one, whole,
-- under another name (scripts/restore database DB --production). pg_restore --clean
-- into the live database would drop only what the dump holds: a table a later
-- migration added would survive while the migration table rolled back, and the
-- app's next migration would fail with "relation already exists".
--
--   psql -U postgres -d postgres -v live=DB -v copy=restore_DB -v kept=DB_before_STAMP \
--        -f hemma-swap-database.sql
--
-- The copy comes out as the program declares the database: owned by the live one's
-- owner, and PUBLIC's privileges revoked. No one can connect to either database
-- during the swap: the sessions still open on them are ended first. When anything
-- fails, the renames roll back together; connections to the live database are let
-- in again by the restore's next step, whatever happened.
\set ON_ERROR_STOP on
SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = :'live' \gset
ALTER DATABASE :"live" WITH ALLOW_CONNECTIONS false;
ALTER DATABASE :"copy" WITH ALLOW_CONNECTIONS false;
-- Wait up to 10 s for each session to end (PostgreSQL 14 and later).
SELECT count(pg_terminate_backend(pid, 10000)) AS sessions_ended FROM pg_stat_activity
WHERE datname IN (:'live', :'copy') AND pid <> pg_backend_pid();
BEGIN;
ALTER DATABASE :"live" RENAME TO :"kept";
ALTER DATABASE :"copy" RENAME TO :"live";
ALTER DATABASE :"live" OWNER TO :"owner";
REVOKE ALL ON DATABASE :"live" FROM PUBLIC;
ALTER DATABASE :"live" WITH ALLOW_CONNECTIONS true;
COMMIT;
ALTER DATABASE :"kept" WITH ALLOW_CONNECTIONS true;
