-- Put a restored copy in the place of a live database and keep the live one, whole,
-- under another name (scripts/restore database DB --production). pg_restore --clean
-- into the live database would drop only what the dump holds: a table a later
-- migration added would survive while the migration table rolled back, and the
-- app's next migration would fail with "relation already exists".
--
--   psql -U postgres -d postgres -v live=DB -v copy=restore_DB -v kept=DB_before_STAMP \
--        -f hemma-swap-database.sql
--
-- The copy comes out as the live database is, apart from its content: its owner,
-- its connection limit, its privileges (the program's revoke from PUBLIC, and any
-- grant made by hand) and its settings (ALTER DATABASE ... SET, ALTER ROLE ... IN
-- DATABASE ... SET), which PostgreSQL keeps per database and no dump holds. A setting
-- that cannot be carried over stops the swap, naming it. No one can connect to
-- either database during the swap: the sessions still open on them are ended first.
-- When anything fails, nothing is renamed; connections to both databases are let in
-- again by the restore's next step, whatever happened.
\set ON_ERROR_STOP on
SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = :'live' \gset
ALTER DATABASE :"live" WITH ALLOW_CONNECTIONS false;
ALTER DATABASE :"copy" WITH ALLOW_CONNECTIONS false;
-- Wait up to 10 s for each session to end (PostgreSQL 14 and later).
SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 10000)) AS sessions_ended
FROM pg_stat_activity WHERE datname IN (:'live', :'copy') AND pid <> pg_backend_pid();
SELECT set_config('hemma.live', :'live', false), set_config('hemma.copy', :'copy', false);
BEGIN;
ALTER DATABASE :"copy" OWNER TO :"owner";
DO $$
DECLARE
  live oid := (SELECT oid FROM pg_database WHERE datname = current_setting('hemma.live'));
  copy text := current_setting('hemma.copy');
  copy_oid oid := (SELECT oid FROM pg_database WHERE datname = current_setting('hemma.copy'));
  r record;
  name text;
  target text;
  whose text;
  carried boolean;
BEGIN
  EXECUTE format('ALTER DATABASE %I CONNECTION LIMIT %s', copy,
                 (SELECT datconnlimit FROM pg_database WHERE oid = live));
  -- Privileges: the live one's own, in place of the defaults a new database has.
  IF (SELECT datacl FROM pg_database WHERE oid = live) IS NOT NULL THEN
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', copy);
    FOR r IN
      SELECT a.grantee, a.privilege_type, a.is_grantable
        FROM pg_database d, aclexplode(d.datacl) a WHERE d.oid = live
    LOOP
      EXECUTE format('GRANT %s ON DATABASE %I TO %s%s', r.privilege_type, copy,
        CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(r.grantee)) END,
        CASE WHEN r.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
  END IF;
  -- Settings, as stored (NAME=VALUE): the value as it is (a list such as
  -- search_path), else as one string; carried only when it is stored the same.
  FOR r IN
    SELECT s.setrole, x.item FROM pg_db_role_setting s, unnest(s.setconfig) AS x(item)
     WHERE s.setdatabase = live
  LOOP
    name := split_part(r.item, '=', 1);
    target := CASE WHEN r.setrole = 0 THEN format('DATABASE %I', copy)
                   ELSE format('ROLE %I IN DATABASE %I', pg_get_userbyid(r.setrole), copy) END;
    carried := false;
    FOR attempt IN 1..2 LOOP
      BEGIN
        EXECUTE format('ALTER %s SET %I TO %s', target, name,
          CASE attempt WHEN 1 THEN substr(r.item, length(name) + 2)
               ELSE quote_literal(substr(r.item, length(name) + 2)) END);
        carried := EXISTS (SELECT 1 FROM pg_db_role_setting
                           WHERE setdatabase = copy_oid AND setrole = r.setrole
                             AND r.item = ANY (setconfig));
      EXCEPTION WHEN others THEN
        carried := false;
      END;
      EXIT WHEN carried;
    END LOOP;
    IF NOT carried THEN
      whose := CASE WHEN r.setrole = 0 THEN 'the database' ELSE pg_get_userbyid(r.setrole) END;
      RAISE EXCEPTION 'cannot carry the setting % (of %) over to the restored copy: nothing was swapped; set it by hand after a restore into scratch',
        r.item, whose;
    END IF;
  END LOOP;
END
$$;
ALTER DATABASE :"live" RENAME TO :"kept";
ALTER DATABASE :"copy" RENAME TO :"live";
ALTER DATABASE :"live" WITH ALLOW_CONNECTIONS true;
COMMIT;
ALTER DATABASE :"kept" WITH ALLOW_CONNECTIONS true;
