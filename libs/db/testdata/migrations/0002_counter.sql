-- Test migration: runs once, so a second migrate must not add a second row.
create table dbtest.counter (n bigint generated always as identity primary key, note text);
insert into dbtest.counter (note) values ('0002 applied');
