-- The scratch database a restore goes into (scripts/restore database DB): made from
-- template0, as pg_restore wants, and with the live database's encoding and locale
-- when there is one, so that the copy can take the live one's place. It fails when
-- the scratch database exists: a restore never writes into one.
--
--   psql -U postgres -d postgres -v live=DB -v copy=restore_DB -f hemma-create-copy.sql
\set ON_ERROR_STOP on
SELECT format('CREATE DATABASE %I TEMPLATE template0', :'copy') || coalesce((
  SELECT format(' ENCODING %L LC_COLLATE %L LC_CTYPE %L',
                pg_encoding_to_char(encoding), datcollate, datctype)
  FROM pg_database WHERE datname = :'live'), '') \gexec
