-- One PostgreSQL server, one database per service (POSTGRES_DB creates "master").
CREATE DATABASE replica;
