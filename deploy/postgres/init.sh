#!/bin/sh
# Run once by the postgres image, on the first start with an empty data volume
# (/docker-entrypoint-initdb.d). The roles PostgREST's documentation describes: authenticator logs in and
# switches to web_anon (no token) or to the token's role (web_user); a small api.todos table to call.
set -eu

psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v authenticator_password="$AUTHENTICATOR_PASSWORD" <<'SQL'
create schema api;

create table api.todos (
    id bigint generated always as identity primary key,
    task text not null,
    done boolean not null default false
);
insert into api.todos (task) values ('read the README'), ('mint a token with portcullis token');

create role web_anon nologin;
grant usage on schema api to web_anon;
grant select on api.todos to web_anon;

create role web_user nologin;
grant usage on schema api to web_user;
grant select, insert, update, delete on api.todos to web_user;

create role authenticator noinherit login password :'authenticator_password';
grant web_anon to authenticator;
grant web_user to authenticator;
SQL
