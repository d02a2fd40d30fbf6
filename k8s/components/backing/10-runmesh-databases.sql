-- Each service owns its own database.
CREATE DATABASE runmesh_user;
CREATE DATABASE runmesh_run;
CREATE DATABASE runmesh_social;
CREATE DATABASE runmesh_race;
CREATE DATABASE runmesh_assist;
