-- Hand a restored copy of a database to the role that owns the live one, as the
-- app's own migrations would have left it: the database, and every schema, table,
-- view, sequence, type, routine, collation, statistics object, text search
-- configuration and dictionary, operator (with its classes and families),
-- conversion, publication and large object that pg_restore created in it.
-- pg_restore ran as postgres with --no-owner, so until now all of it is postgres's,
-- and the app's next migration would fail with "must be owner of table".
--
--   psql -U postgres -d COPY -v live=LIVE -f hemma-hand-over.sql
--
-- What postgres did not create is left alone: the public schema of a database made
-- on PostgreSQL 15 and later belongs to pg_database_owner (whoever owns the
-- database), an extension's objects to the extension, and a sequence owned by a
-- column moves with its table.
\set ON_ERROR_STOP on
SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = :'live' \gset
SELECT set_config('hemma.owner', :'owner', false);
ALTER DATABASE :"DBNAME" OWNER TO :"owner";
DO $$
DECLARE
  owner text := current_setting('hemma.owner');
  r record;
BEGIN
  FOR r IN
    SELECT n.oid, n.nspname FROM pg_namespace n
    WHERE n.nspowner = 'postgres'::regrole
      AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_namespace'::regclass AND d.objid = n.oid
                        AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER SCHEMA %I OWNER TO %I', r.nspname, owner);
  END LOOP;
  FOR r IN
    SELECT c.oid::regclass AS name, c.relkind FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relowner = 'postgres'::regrole
      AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
      AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
                        AND d.deptype IN ('a', 'i', 'e'))
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I',
      CASE r.relkind WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW'
        WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
      r.name, owner);
  END LOOP;
  -- Enums, domains, ranges and free-standing composite types; a table's row type
  -- and an array type follow their table or element.
  FOR r IN
    SELECT t.oid::regtype AS name, t.typtype FROM pg_type t
    JOIN pg_namespace n ON n.oid = t.typnamespace
    LEFT JOIN pg_class c ON c.oid = t.typrelid
    WHERE t.typowner = 'postgres'::regrole
      AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
      AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND c.relkind = 'c'))
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                        AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I',
      CASE r.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, r.name, owner);
  END LOOP;
  FOR r IN
    SELECT p.oid::regprocedure AS name, p.prokind FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE p.proowner = 'postgres'::regrole
      AND n.nspname NOT LIKE 'pg\_%' AND n.nspname <> 'information_schema'
      AND NOT EXISTS (SELECT 1 FROM pg_depend d
                      WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                        AND d.deptype = 'e')
  LOOP
    EXECUTE format('ALTER %s %s OWNER TO %I',
      CASE r.prokind WHEN 'a' THEN 'AGGREGATE' WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
      r.name, owner);
  END LOOP;
  -- The other kinds, each from its own catalog: what ALTER calls it, and its name.
  FOR r IN
    SELECT 'ALTER COLLATION ' || quote_ident(n.nspname) || '.' || quote_ident(o.collname) AS alter,
           'pg_collation'::regclass AS catalog, o.oid, n.nspname
      FROM pg_collation o JOIN pg_namespace n ON n.oid = o.collnamespace
     WHERE o.collowner = 'postgres'::regrole
    UNION ALL
    SELECT 'ALTER STATISTICS ' || quote_ident(n.nspname) || '.' || quote_ident(o.stxname),
           'pg_statistic_ext'::regclass, o.oid, n.nspname
      FROM pg_statistic_ext o JOIN pg_namespace n ON n.oid = o.stxnamespace
     WHERE o.stxowner = 'postgres'::regrole
    UNION ALL
    SELECT 'ALTER TEXT SEARCH CONFIGURATION ' || o.oid::regconfig::text,
           'pg_ts_config'::regclass, o.oid, n.nspname
      FROM pg_ts_config o JOIN pg_namespace n ON n.oid = o.cfgnamespace
     WHERE o.cfgowner = 'postgres'::regrole
    UNION ALL
    SELECT 'ALTER TEXT SEARCH DICTIONARY ' || o.oid::regdictionary::text,
           'pg_ts_dict'::regclass, o.oid, n.nspname
      FROM pg_ts_dict o JOIN pg_namespace n ON n.oid = o.dictnamespace
     WHERE o.dictowner = 'postgres'::regrole
    UNION ALL
    SELECT 'ALTER OPERATOR ' || o.oid::regoperator::text,
           'pg_operator'::regclass, o.oid, n.nspname
      FROM pg_operator o JOIN pg_namespace n ON n.oid = o.oprnamespace
     WHERE o.oprowner = 'postgres'::regrole
    UNION ALL
    SELECT 'ALTER OPERATOR CLASS ' || quote_ident(n.nspname) || '.' || quote_ident(o.opcname)
             || ' USING ' || quote_ident(a.amname),
           'pg_opclass'::regclass, o.oid, n.nspname
      FROM pg_opclass o JOIN pg_namespace n ON n.oid = o.opcnamespace
      JOIN pg_am a ON a.oid = o.opcmethod
     WHERE o.opcowner = 'postgres'::regrole
    UNION ALL
    SELECT 'ALTER OPERATOR FAMILY ' || quote_ident(n.nspname) || '.' || quote_ident(o.opfname)
             || ' USING ' || quote_ident(a.amname),
           'pg_opfamily'::regclass, o.oid, n.nspname
      FROM pg_opfamily o JOIN pg_namespace n ON n.oid = o.opfnamespace
      JOIN pg_am a ON a.oid = o.opfmethod
     WHERE o.opfowner = 'postgres'::regrole
    UNION ALL
    SELECT 'ALTER CONVERSION ' || quote_ident(n.nspname) || '.' || quote_ident(o.conname),
           'pg_conversion'::regclass, o.oid, n.nspname
      FROM pg_conversion o JOIN pg_namespace n ON n.oid = o.connamespace
     WHERE o.conowner = 'postgres'::regrole
  LOOP
    CONTINUE WHEN r.nspname LIKE 'pg\_%' OR r.nspname = 'information_schema';
    CONTINUE WHEN EXISTS (SELECT 1 FROM pg_depend d
                          WHERE d.classid = r.catalog AND d.objid = r.oid AND d.deptype = 'e');
    EXECUTE format('%s OWNER TO %I', r.alter, owner);
  END LOOP;
  FOR r IN SELECT o.pubname FROM pg_publication o WHERE o.pubowner = 'postgres'::regrole LOOP
    EXECUTE format('ALTER PUBLICATION %I OWNER TO %I', r.pubname, owner);
  END LOOP;
  FOR r IN SELECT o.oid FROM pg_largeobject_metadata o WHERE o.lomowner = 'postgres'::regrole
  LOOP
    EXECUTE format('ALTER LARGE OBJECT %s OWNER TO %I', r.oid, owner);
  END LOOP;
END
$$;
