-- Each service owns its own database (compose.yaml mounts this file too). PostgreSQL's image runs
-- it through psql once, when the data directory is created.
CREATE DATABASE runmesh_user;
CREATE DATABASE runmesh_run;
CREATE DATABASE runmesh_social;
CREATE DATABASE runmesh_race;
CREATE DATABASE runmesh_assist;
-- The assistant's retrieval index uses pgvector (the image is pgvector/pgvector). Creating an
-- extension needs a superuser, which the services' role need not be.
\connect runmesh_assist
CREATE EXTENSION IF NOT EXISTS vector;
