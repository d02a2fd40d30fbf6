-- Each service owns its own database.
CREATE DATABASE runmesh_user;
CREATE DATABASE runmesh_race;
