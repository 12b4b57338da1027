-- countclip on PostgreSQL + pgvector: the fixed tables. Each build's vectors live in a table of
-- their own, countclip_vectors_<id>, created by the service (its vector(dim) type depends on
-- the model), so a query reads exactly one model's vectors.
CREATE EXTENSION IF NOT EXISTS vector;

CREATE TABLE countclip_builds (
  id              serial PRIMARY KEY,
  -- The build number the API reports (indexBuild); counts full (re)builds.
  build           integer NOT NULL,
  model_id        text NOT NULL,
  model_dir       text NOT NULL,
  start_model_dir text NOT NULL,
  dim             integer NOT NULL CHECK (dim > 0 AND dim <= 16000),
  table_name      text NOT NULL UNIQUE,
  state           text NOT NULL CHECK (state IN ('building', 'active', 'retired', 'failed')),
  created_at      timestamptz NOT NULL DEFAULT now(),
  activated_at    timestamptz
);
CREATE UNIQUE INDEX countclip_builds_one_active ON countclip_builds ((true)) WHERE state = 'active';

-- One row: which build answers queries. Adds take it FOR SHARE, a switch FOR UPDATE, so a
-- switch waits for in-flight adds and no add lands in a build after it was replaced.
CREATE TABLE countclip_state (
  singleton    boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  active_build integer REFERENCES countclip_builds (id)
);
INSERT INTO countclip_state (singleton, active_build) VALUES (true, NULL);

-- Original image bytes, by SHA-256: what a rebuild re-embeds from, shared by every process.
CREATE TABLE countclip_blobs (
  sha256     text PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  bytes      bytea NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
